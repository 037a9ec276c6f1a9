"""save/load across restarts: atomic, data not code, a bad file is named and loses nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reference_impl.context_optimization import (
    ContextConfig,
    ContextStateError,
    ThreeTieredContextSystem,
)

_CONFIG = ContextConfig(max_context_tokens=400, buffer_tokens=80, summary_tokens=80)


def _conversation(system: ThreeTieredContextSystem, turns: int) -> None:
    for n in range(turns):
        system.add_message(
            "user" if n % 2 == 0 else "assistant",
            f"Turn {n}: the warehouse number {n} ships batteries late in December.",
        )


def _snapshot(system: ThreeTieredContextSystem) -> tuple[object, ...]:
    return (
        system.config,
        system.messages,
        system.buffer,
        system.summaries,
        system.get_statistics(),
        system.get_final_prompt("which warehouse ships late?"),
    )


def test_round_trip_restores_every_tier(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    with ThreeTieredContextSystem(_CONFIG) as system:
        system.add_message("user", "My dog is called Biscuit.")
        _conversation(system, 40)
        system.set_context_window(300)
        system.flush()
        system.save(path)
        before = _snapshot(system)
    with ThreeTieredContextSystem.load(path) as restored:
        assert _snapshot(restored) == before
        restored.set_context_window(400)
        assert restored.config == _CONFIG  # the original budgets came back too
        assert "Biscuit" in restored.get_final_prompt("What is my dog called?")
        restored.add_message("user", "and one more turn")
        assert restored.messages[-1].index == 41


def test_the_file_is_data_not_code(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    with ThreeTieredContextSystem(_CONFIG) as system:
        _conversation(system, 5)
        system.save(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "pytest-edge/context-state"
    assert document["version"] == 1


def test_spilled_turns_survive_a_restart(tmp_path: Path) -> None:
    config = ContextConfig(max_context_tokens=400, buffer_tokens=60, max_semantic_items=10)
    spill = tmp_path / "spill.sqlite"
    with ThreeTieredContextSystem(config, spill_path=spill) as system:
        system.add_message("user", "The spare key hides under the blue flowerpot.")
        _conversation(system, 40)
        system.save(tmp_path / "context.json")
        assert system.get_statistics()["semantic_spilled"] == 31
    with ThreeTieredContextSystem.load(tmp_path / "context.json") as restored:
        assert restored.get_statistics()["semantic_spilled"] == 31
        assert "blue flowerpot" in restored.get_final_prompt("where is the spare key?")
    spill.rename(tmp_path / "moved.sqlite")
    with pytest.raises(ContextStateError, match=r"spill\.sqlite: missing: .* 31 spilled turns"):
        ThreeTieredContextSystem.load(tmp_path / "context.json")
    assert not spill.exists()  # not silently recreated empty
    with ThreeTieredContextSystem.load(
        tmp_path / "context.json", spill_path=tmp_path / "moved.sqlite"
    ) as moved:
        assert "blue flowerpot" in moved.get_final_prompt("where is the spare key?")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) // 2], "torn or not JSON"),
        (lambda data: b"", "torn or not JSON"),
        (lambda data: b'{"hello": "world"}', "not a pytest-edge context state"),
        (lambda data: b"\x80\x81 binary junk", "torn or not JSON"),
        (lambda data: data.replace(b"warehouse number 3 ", b"warehouse number 8 "), "checksum"),
        (lambda data: data.replace(b'"version": 1', b'"version": 99'), "version 99"),
    ],
)
def test_a_torn_foreign_or_altered_file_is_a_typed_error_naming_it(
    tmp_path: Path, damage: object, reason: str
) -> None:
    path = tmp_path / "context.json"
    with ThreeTieredContextSystem(_CONFIG) as system:
        _conversation(system, 12)
        system.save(path)
    damaged = damage(path.read_bytes())  # type: ignore[operator]
    path.write_bytes(damaged)
    with pytest.raises(ContextStateError, match=reason) as error:
        ThreeTieredContextSystem.load(path)
    assert str(path) in str(error.value)
    assert error.value.path == path
    assert path.read_bytes() == damaged  # left for inspection, not overwritten


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "context.json"
    with ThreeTieredContextSystem(_CONFIG) as system:
        _conversation(system, 6)
        system.save(path)
        previous = path.read_bytes()
        _conversation(system, 20)

        def no_replace(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", no_replace)
        with pytest.raises(OSError, match="No space left"):
            system.save(path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["context.json"]
    with ThreeTieredContextSystem.load(path) as restored:
        assert len(restored.messages) == 6
