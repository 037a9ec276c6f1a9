"""State files an app meets at start: an earlier version's plain JSON, a zero-length file.

Both used to stop the app at start (StateCorruptedError). Now a plain-JSON object is read as
the state of the earlier version and migrated on the next save (the plain file becomes the
previous generation, so nothing is lost), and a zero-length file is damage: the loader falls
back to the previous generation, or starts empty when there is none (zero bytes hold no
state), and sets the damaged file aside instead of deleting it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_impl.production_patterns import StateCorruptedError, StatePersistenceManager

EARLIER = {
    "current_goal": "Plan a multi-day trip to Mars",
    "preferences": {"duration": "7 days", "interests": ["space exploration"]},
    "step": 3,
    "note": "Zürich → 火星",
}


def _damaged(directory: Path) -> list[Path]:
    return sorted(directory.glob("state.json.damaged-*"))


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_a_plain_json_state_of_an_earlier_version_is_loaded_and_migrated(
    tmp_path: Path, ensure_ascii: bool
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(json.dumps(EARLIER, indent=2, ensure_ascii=ensure_ascii).encode("utf-8"))
    manager = StatePersistenceManager(path)
    report = manager.load_state()
    assert report.source == "current"
    assert report.migrated_from == "plain JSON"
    assert not report.fell_back
    assert manager.as_dict() == EARLIER
    manager.set_state("step", 4)
    manager.save_state()
    # The plain file is kept as the previous generation; the current one is the framed format.
    assert json.loads((tmp_path / "state.json.prev").read_bytes()) == EARLIER
    assert path.read_bytes().startswith(b"PYTEST-EDGE-STATE v1 ")
    restarted = StatePersistenceManager(path)
    assert restarted.load_state().migrated_from is None
    assert restarted.as_dict() == {**EARLIER, "step": 4}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"[1, 2, 3]", "not a pytest-edge state file"),
        (b'{"a": 1', "not a pytest-edge state file, nor a plain-JSON state"),
        (b'{"a": NaN}', "NaN"),
    ],
)
def test_plain_json_that_is_not_a_state_object_is_damage(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateCorruptedError, match=why):
        StatePersistenceManager(path).load_state()
    assert path.read_bytes() == content, "a file that cannot be read was changed"


def test_a_zero_length_file_falls_back_to_the_previous_generation_and_is_set_aside(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    writer = StatePersistenceManager(path)
    writer.set_state("step", 1)
    writer.save_state()
    writer.set_state("step", 2)
    writer.save_state()
    path.write_bytes(b"")  # what a power cut leaves of a file written in place
    manager = StatePersistenceManager(path)
    report = manager.load_state()
    assert report.fell_back
    assert report.source == "previous"
    assert report.problem is not None
    assert "zero-length" in report.problem
    assert manager.get_state("step") == 1
    [aside] = _damaged(tmp_path)
    assert report.set_aside == (aside,)
    assert aside.read_bytes() == b""
    # The next save keeps the generation it fell back to as the previous one.
    manager.set_state("step", 3)
    manager.save_state()
    assert StatePersistenceManager(tmp_path / "state.json.prev").load_state().generation == 1
    assert StatePersistenceManager(path).load_state().source == "current"


def test_a_zero_length_file_without_a_previous_generation_starts_empty_and_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"")
    manager = StatePersistenceManager(path)
    report = manager.load_state()
    assert report.source == "none"
    assert report.problem is not None
    assert "zero-length" in report.problem
    assert manager.keys() == []
    assert len(report.set_aside) == 1
    manager.set_state("step", 1)
    manager.save_state()
    assert StatePersistenceManager(path).load_state().source == "current"


def test_a_damaged_file_is_set_aside_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    writer = StatePersistenceManager(path)
    for step in (1, 2):
        writer.set_state("step", step)
        writer.save_state()
    garbage = b"PYTEST-EDGE-STATE v1 crc32=00000000\n{}\nsomething a human may want to read"
    path.write_bytes(garbage)
    manager = StatePersistenceManager(path)
    assert manager.load_state().fell_back
    manager.set_state("step", 3)
    manager.save_state()
    [aside] = _damaged(tmp_path)
    assert aside.read_bytes() == garbage


def test_a_writer_that_never_loaded_sets_a_damaged_file_aside_before_saving(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"not state at all")
    manager = StatePersistenceManager(path)
    manager.set_state("a", 1)
    report = manager.save_state()
    assert report.set_aside == tuple(_damaged(tmp_path))
    assert [p.read_bytes() for p in _damaged(tmp_path)] == [b"not state at all"]


def test_remove_files_also_removes_set_aside_copies(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"")
    manager = StatePersistenceManager(path)
    manager.load_state()
    manager.set_state("a", 1)
    manager.save_state()
    manager.remove_files()
    assert list(tmp_path.iterdir()) == []
