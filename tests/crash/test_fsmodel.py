"""The power-loss model: what survives, what may vanish, what may tear."""

from __future__ import annotations

import base64
import os
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.crash.fsmodel import VARIANTS, FsModel, Snapshot, _apply_torn, cut_positions


def _write(path: str, ino: int, off: int, data: bytes) -> dict[str, Any]:
    return {
        "t": "write",
        "path": path,
        "ino": ino,
        "off": off,
        "data": base64.b64encode(data).decode(),
    }


def _create(path: str, ino: int) -> dict[str, Any]:
    return {"t": "open", "path": path, "ino": ino, "flags": os.O_CREAT | os.O_WRONLY}


def _states(model: FsModel, seed: int = 0) -> dict[str, dict[str, bytes]]:
    return {
        v: dict(model.crash_state(0, v, random.Random(seed)).snapshot.files)
        for v in (*VARIANTS, "random-0", "random-1")
    }


def test_new_file_is_durable_only_after_its_directory_is_fsynced() -> None:
    model = FsModel(Snapshot({}, frozenset()))
    for record in (_create("a", 1), _write("a", 1, 0, b"hello"), {"t": "fsync", "ino": 1}):
        model.apply(record)
    assert _states(model)["nothing-pending"] == {}
    assert _states(model)["metadata-only"] == {"a": b"hello"}
    model.apply({"t": "dirsync", "path": "."})
    assert all(files == {"a": b"hello"} for files in _states(model).values())


def test_unsynced_write_may_vanish_but_fsynced_data_persists() -> None:
    model = FsModel(Snapshot({"a": b"old!"}, frozenset(), {10: "a"}))
    model.apply(_write("a", 10, 0, b"new!"))
    states = _states(model)
    assert states["nothing-pending"] == {"a": b"old!"}
    assert states["all-pending"] == {"a": b"new!"}
    model.apply({"t": "fsync", "ino": 10})
    assert all(files == {"a": b"new!"} for files in _states(model).values())


def test_truncating_open_can_leave_an_empty_file() -> None:
    model = FsModel(Snapshot({"a": b"data"}, frozenset(), {10: "a"}))
    model.apply({"t": "open", "path": "a", "ino": 10, "flags": os.O_TRUNC | os.O_WRONLY})
    assert _states(model)["all-pending"] == {"a": b""}


def test_rename_without_directory_fsync_may_not_persist() -> None:
    model = FsModel(Snapshot({"a": b"A"}, frozenset(), {10: "a"}))
    model.apply({"t": "rename", "src": "a", "dst": "b"})
    states = _states(model)
    assert states["nothing-pending"] == {"a": b"A"}
    assert states["all-pending"] == {"b": b"A"}
    model.apply({"t": "dirsync", "path": "."})
    assert _states(model)["nothing-pending"] == {"b": b"A"}


def test_hard_link_shares_the_inode() -> None:
    model = FsModel(Snapshot({"a": b"A"}, frozenset(), {10: "a"}))
    model.apply({"t": "link", "src": "a", "dst": "a.prev"})
    model.apply({"t": "dirsync", "path": "."})
    assert _states(model)["nothing-pending"] == {"a": b"A", "a.prev": b"A"}


def test_torn_write_mixes_whole_sectors_of_old_and_new() -> None:
    old, new = b"o" * 2048, b"n" * 2048
    for seed in range(20):
        content = bytearray(old)
        detail = _apply_torn(content, ("write", 0, new), 512, random.Random(seed))
        sectors = {bytes(content[i : i + 512]) for i in range(0, 2048, 512)}
        assert sectors == {b"o" * 512, b"n" * 512}, detail
        assert detail.startswith("torn (")


def test_cut_positions_follow_state_changes_and_acks() -> None:
    records = [
        {"t": "start"},
        _create("a", 1),
        {"t": "cp", "name": "x"},
        {"t": "ack", "key": "k", "v": "1"},
    ]
    assert cut_positions(records) == [0, 2, 4]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 3000), st.binary(min_size=1, max_size=1500)),
        st.tuples(st.just("fsync"), st.just(0), st.just(b"")),
        st.tuples(st.just("trunc"), st.integers(0, 4000), st.just(b"")),
    ),
    max_size=12,
)


@given(ops=ops, seed=st.integers(0, 2**16))
def test_every_state_keeps_the_last_fsync_and_ends_with_sync_equal_current(
    ops: list[tuple[str, int, bytes]], seed: int
) -> None:
    model = FsModel(Snapshot({"f": b"base"}, frozenset(), {7: "f"}))
    synced = b"base"
    for kind, arg, data in ops:
        if kind == "write":
            model.apply(_write("f", 7, arg, data))
        elif kind == "trunc":
            model.apply({"t": "trunc", "ino": 7, "size": arg})
        else:
            model.apply({"t": "fsync", "ino": 7})
            synced = model.current().files["f"]
    states = _states(model, seed)
    assert states["nothing-pending"]["f"] == synced
    assert states["all-pending"]["f"] == model.current().files["f"]
    model.apply({"t": "fsync", "ino": 7})
    assert all(files["f"] == model.current().files["f"] for files in _states(model, seed).values())
