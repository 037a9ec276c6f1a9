"""StatePersistenceManager: round trips, damage detection, fallback, I/O and fsync errors."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl import production_patterns
from reference_impl.production_patterns import (
    StateCorruptedError,
    StateDurabilityError,
    StatePersistenceManager,
    StateWriteError,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


def _saved(directory: Path, state: dict[str, Any], saves: int = 1) -> StatePersistenceManager:
    manager = StatePersistenceManager(directory / "state.json")
    for _ in range(saves):
        for key, value in state.items():
            manager.set_state(key, value)
        manager.save_state()
    return manager


def test_round_trip_and_summary(tmp_path: Path) -> None:
    manager = _saved(tmp_path, {"goal": "Mars", "prefs": {"days": 7, "tags": ["a"]}})
    summary = manager.get_state_summary()
    assert summary["keys"] == ["goal", "prefs"]
    assert summary["generation"] == 1
    assert summary["unsaved_changes"] is False
    restarted = StatePersistenceManager(tmp_path / "state.json")
    report = restarted.load_state()
    assert report.source == "current"
    assert not report.fell_back
    assert restarted.get_state("prefs") == {"days": 7, "tags": ["a"]}
    assert restarted.get_state("missing", "default") == "default"


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_save_load_round_trips_any_json_value(state: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _saved(Path(directory), state)
        restarted = StatePersistenceManager(Path(directory) / "state.json")
        restarted.load_state()
        assert restarted.as_dict() == state


@given(st.data())
def test_any_truncation_is_detected(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        _saved(Path(directory), {"k": data.draw(json_values)})
        content = path.read_bytes()
        # A fraction, not an index: the file length varies (it holds the save time). At least
        # one byte: a zero-length file is no state, not damage to detect
        # (test_healing_state_migration.py).
        cut = max(1, int(data.draw(st.floats(0.0, 1.0, exclude_max=True)) * len(content)))
        path.write_bytes(content[:cut])
        with pytest.raises(StateCorruptedError, match=r"no valid state for .*state\.json"):
            StatePersistenceManager(path).load_state()


@given(st.data())
def test_any_bit_flip_is_detected(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "state.json"
        _saved(Path(directory), {"k": data.draw(json_values)})
        content = bytearray(path.read_bytes())
        position = int(data.draw(st.floats(0.0, 1.0, exclude_max=True)) * len(content) * 8)
        content[position // 8] ^= 1 << (position % 8)
        path.write_bytes(bytes(content))
        with pytest.raises(StateCorruptedError):
            StatePersistenceManager(path).load_state()


@pytest.mark.parametrize("damage", [bytes.upper, lambda crc: crc[:2] + b"_" + crc[3:]])
def test_a_checksum_field_not_as_written_is_damage(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    # Found by hypothesis (test_any_bit_flip_is_detected): bit 5 of a hex letter turns "d" into
    # "D", and int(..., 16) read both alike, so that flipped bit went undetected.
    path = tmp_path / "state.json"
    # A checksum of digits only (~2% of them; the saved timestamp changes it) has no letter to
    # upper-case: save again until the damage really changes the field.
    for attempt in range(50):
        for old in tmp_path.iterdir():  # one generation only: no fallback to an older one
            old.unlink()
        _saved(tmp_path, {"k": "ba", "attempt": attempt})
        head, _, rest = path.read_bytes().partition(b" crc32=")
        crc, newline, tail = rest.partition(b"\n")
        if damage(crc) != crc:
            break
    path.write_bytes(head + b" crc32=" + damage(crc) + newline + tail)
    with pytest.raises(StateCorruptedError, match="damaged checksum field"):
        StatePersistenceManager(path).load_state()


def test_damaged_newest_falls_back_to_the_previous_generation_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    manager = StatePersistenceManager(path)
    manager.set_state("step", 1)
    manager.save_state()
    manager.set_state("step", 2)
    report = manager.save_state()
    assert report.rotated_previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.prev"]
    path.write_bytes(path.read_bytes()[:-5])  # torn newest file
    restarted = StatePersistenceManager(path)
    loaded = restarted.load_state()
    assert loaded.fell_back
    assert loaded.source == "previous"
    assert loaded.generation == 1
    assert loaded.problem is not None
    assert "state.json" in loaded.problem
    assert restarted.get_state("step") == 1
    assert "fell back to the previous generation" in caplog.text


def test_saving_after_a_fallback_keeps_the_good_previous_generation(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _saved(tmp_path, {"step": 1}, saves=2)
    path.write_bytes(b"garbage")
    restarted = StatePersistenceManager(path)
    restarted.load_state()
    restarted.set_state("step", 3)
    restarted.save_state()
    path.write_bytes(b"garbage again")
    # The damaged file was not rotated into .prev: the old good generation is still there.
    assert StatePersistenceManager(path).load_state().source == "previous"


def test_nothing_valid_raises_a_typed_error_naming_both_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _saved(tmp_path, {"a": 1}, saves=2)
    path.write_bytes(b"x")
    (tmp_path / "state.json.prev").write_bytes(b"")
    with pytest.raises(StateCorruptedError) as info:
        StatePersistenceManager(path).load_state()
    message = str(info.value)
    assert "state.json: not a pytest-edge state file" in message
    assert "state.json.prev: not a pytest-edge state file" in message
    assert [p.name for p, _ in info.value.problems] == ["state.json", "state.json.prev"]


def test_no_file_at_all_is_an_empty_state_not_an_error(tmp_path: Path) -> None:
    manager = StatePersistenceManager(tmp_path / "state.json")
    report = manager.load_state()
    assert report.source == "none"
    assert manager.keys() == []


def test_a_newer_format_version_is_not_read_as_garbage(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _saved(tmp_path, {"a": 1})
    path.write_bytes(path.read_bytes().replace(b"STATE v1 ", b"STATE v9 ", 1))
    with pytest.raises(StateCorruptedError, match=r"format version 9 is not supported"):
        StatePersistenceManager(path).load_state()


def test_deleted_current_file_with_a_previous_generation_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _saved(tmp_path, {"a": 1}, saves=2)
    path.unlink()
    report = StatePersistenceManager(path).load_state()
    assert report.fell_back
    assert report.problem is not None
    assert "missing" in report.problem


def test_a_new_history_drops_an_orphaned_previous_generation(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    _saved(tmp_path, {"a": 1}, saves=2)
    path.unlink()
    fresh = StatePersistenceManager(path)
    fresh.set_state("b", 2)
    fresh.save_state()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_remove_files_deletes_every_generation(tmp_path: Path) -> None:
    manager = _saved(tmp_path, {"a": 1}, saves=3)
    manager.remove_files()
    assert list(tmp_path.iterdir()) == []


def test_get_state_returns_a_snapshot(tmp_path: Path) -> None:
    manager = StatePersistenceManager(tmp_path / "state.json")
    value = {"items": [1]}
    manager.set_state("v", value)
    value["items"].append(2)  # after set_state: not part of the state
    got = manager.get_state("v")
    got["items"].append(3)
    assert manager.get_state("v") == {"items": [1]}


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (object(), r"state\['bad'\] is a object"),
        ({"when": {1, 2}}, r"state\['bad'\]\['when'\] is a set"),
        ([1, math.nan], r"state\['bad'\]\[1\] is nan"),
        ({1: "x"}, r"state\['bad'\] has a non-string key 1"),
        (b"bytes", r"state\['bad'\] is a bytes"),
    ],
)
def test_non_json_values_raise_type_error_before_anything_is_written(
    tmp_path: Path, value: object, match: str
) -> None:
    manager = _saved(tmp_path, {"good": 1})
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(TypeError, match=match):
        manager.set_state("bad", value)
    manager.save_state()
    assert manager.keys() == ["good"]
    assert (tmp_path / "state.json").read_bytes().split(b"\n", 2)[2] == before.split(b"\n", 2)[2]


def test_non_string_key_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"state keys must be str, got int 3"):
        StatePersistenceManager(tmp_path / "s.json").set_state(3, "x")  # type: ignore[arg-type]


def _failing(
    name: str, error_no: int, *, after: int = 0
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        calls = {"n": 0}

        def fake(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(error_no, os.strerror(error_no))
            return real(*args, **kwargs)

        return fake

    return wrap


def test_disk_full_on_write_keeps_the_old_file_and_a_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    manager = _saved(tmp_path, {"step": 1})
    manager.set_state("step", 2)
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", _failing("write", errno.ENOSPC)(os.write))
        with pytest.raises(StateWriteError, match=r"writing .*state\.json\.tmp-.* failed") as info:
            manager.save_state()
    assert info.value.errno == errno.ENOSPC
    assert not isinstance(info.value, StateDurabilityError)
    assert json.loads(path.read_bytes().split(b"\n", 2)[2]) == {"step": 1}
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    manager.save_state()  # not fatal: the retry works
    restarted = StatePersistenceManager(path)
    restarted.load_state()
    assert restarted.get_state("step") == 2


def test_fsync_error_is_fatal_and_never_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    manager = _saved(tmp_path, {"step": 1})
    manager.set_state("step", 2)
    fsync_calls: list[int] = []
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        fsync_calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(StateDurabilityError, match=r"fsync of .*state\.json\.tmp-.* failed"):
            manager.save_state()
    assert len(fsync_calls) == 1, "fsync must not be retried"
    assert os.fsync is real_fsync
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert json.loads(path.read_bytes().split(b"\n", 2)[2]) == {"step": 1}
    with pytest.raises(StateDurabilityError, match=r"refusing to save .* Restart and load_state"):
        manager.save_state()
    restarted = StatePersistenceManager(path)
    restarted.load_state()
    assert restarted.get_state("step") == 1


def test_directory_fsync_error_is_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = _saved(tmp_path, {"step": 1})
    with monkeypatch.context() as patch:
        # The first fsync (the temp file) works, the directory's fails.
        patch.setattr(os, "fsync", _failing("fsync", errno.EIO, after=1)(os.fsync))
        with pytest.raises(StateDurabilityError, match=r"fsync of directory .* failed"):
            manager.save_state()
    with pytest.raises(StateDurabilityError, match=r"refusing to save"):
        manager.save_state()


def test_filesystem_without_hard_links_copies_the_previous_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    manager = _saved(tmp_path, {"step": 1})
    manager.set_state("step", 2)
    with monkeypatch.context() as patch:
        patch.setattr(os, "link", _failing("link", errno.EPERM)(os.link))
        assert manager.save_state().rotated_previous
    path.write_bytes(b"damaged")
    restarted = StatePersistenceManager(path)
    assert restarted.load_state().source == "previous"
    assert restarted.get_state("step") == 1


def test_stray_temp_files_are_never_left_by_a_successful_save(tmp_path: Path) -> None:
    _saved(tmp_path, {"a": "x" * 1000}, saves=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.prev"]


def test_module_uses_python_level_io_so_fault_injection_reaches_it() -> None:
    # Fault injection patches os.write/os.fsync/os.replace/open; the module must look them up
    # on the os module at call time rather than binding them at import.
    source = Path(production_patterns.__file__).read_text()
    assert "from os import" not in source
    for call in ("os.write(", "os.fsync(", "os.replace(", "os.open("):
        assert call in source


def test_any_python_string_round_trips_even_lone_surrogates(tmp_path: Path) -> None:
    _saved(tmp_path, {"s": "caf\u00e9 \ud800 \U0001f680", "\udfff": 1})
    restarted = StatePersistenceManager(tmp_path / "state.json")
    restarted.load_state()
    assert restarted.as_dict() == {"s": "caf\u00e9 \ud800 \U0001f680", "\udfff": 1}


def test_large_and_small_values_are_framed_in_key_order(tmp_path: Path) -> None:
    state = {"a": 1, "big": "x" * 200_000, "c": ["y" * 70_000, 2], "d": {"e": None}}
    _saved(tmp_path, state, saves=2)
    restarted = StatePersistenceManager(tmp_path / "state.json")
    restarted.load_state()
    assert restarted.as_dict() == state
    assert restarted.keys() == list(state)


def test_temp_files_of_killed_processes_are_swept_on_restart(tmp_path: Path) -> None:
    import subprocess
    import sys

    _saved(tmp_path, {"a": 1})
    # A real process that has exited: its pid names the stale temp file.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = tmp_path / f"state.json.tmp-{dead.stdout.strip()}-deadbeef"
    stale.write_bytes(b"half a save")
    live = tmp_path / f"state.json.tmp-{os.getpid()}-cafe0001"
    live.write_bytes(b"a save in progress in a live process")
    unrelated = tmp_path / "other.json.tmp-1-x"
    unrelated.write_bytes(b"not ours")
    restarted = StatePersistenceManager(tmp_path / "state.json")
    assert restarted.load_state().source == "current"
    assert not stale.exists()
    assert live.exists()
    assert unrelated.exists()


def test_save_follows_the_crash_safe_order_of_operations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """link previous -> write temp -> fsync temp -> replace -> fsync directory, nothing else."""
    manager = _saved(tmp_path, {"step": 1})
    manager.set_state("step", 2)
    trace: list[tuple[str, str]] = []
    fd_names: dict[int, str] = {}

    def name(path: Any) -> str:
        text = os.fspath(path)
        base = Path(text).name
        if ".tmp-" in base:
            return base.split(".tmp-")[0] + ".tmp"
        return "<dir>" if Path(text) == tmp_path else base

    def traced(op: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if op == "open":
                fd_names[result] = name(args[0])
                trace.append((op, fd_names[result]))
            elif op in ("write", "fsync", "close"):
                trace.append((op, fd_names.get(args[0], "?")))
            else:
                trace.append((op, " -> ".join(name(a) for a in args[:2])))
            return result

        return wrapper

    with monkeypatch.context() as patch:
        for op in ("open", "write", "fsync", "close", "replace", "link", "unlink"):
            patch.setattr(os, op, traced(op, getattr(os, op)))
        manager.save_state()
    writes = [entry for entry in trace if entry[0] == "write"]
    assert writes
    assert all(target == "state.json.tmp" for _, target in writes)
    compact = [
        entry for i, entry in enumerate(trace) if entry[0] != "write" or trace[i - 1] != entry
    ]
    assert compact == [
        ("link", "state.json -> state.json.tmp"),
        ("replace", "state.json.tmp -> state.json.prev"),
        ("open", "state.json.tmp"),
        ("write", "state.json.tmp"),
        ("fsync", "state.json.tmp"),
        ("close", "state.json.tmp"),
        ("replace", "state.json.tmp -> state.json"),
        ("open", "<dir>"),
        ("fsync", "<dir>"),
        ("close", "<dir>"),
    ]


def test_read_only_filesystem_is_a_write_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = StatePersistenceManager(tmp_path / "state.json")
    manager.set_state("a", 1)
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", _failing("open", errno.EROFS)(os.open))
        with pytest.raises(StateWriteError, match=r"creating .*state\.json\.tmp-.* failed") as info:
            manager.save_state()
    assert info.value.errno == errno.EROFS
    assert list(tmp_path.iterdir()) == []
    manager.save_state()


def test_failed_replace_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    manager = _saved(tmp_path, {"step": 1})
    manager.set_state("step", 2)
    with monkeypatch.context() as patch:
        # The first replace keeps the previous generation; the second, over the file, fails.
        patch.setattr(os, "replace", _failing("replace", errno.EIO, after=1)(os.replace))
        with pytest.raises(StateWriteError, match=r"replacing .*state\.json failed"):
            manager.save_state()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.prev"]
    restarted = StatePersistenceManager(path)
    assert restarted.load_state().source == "current"
    assert restarted.get_state("step") == 1
