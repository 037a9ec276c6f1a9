"""The power-loss model: what survives, what may vanish, what may tear."""

from __future__ import annotations

import base64
import os
import random
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.crash.fsmodel import (
    VARIANTS,
    FsModel,
    Snapshot,
    SpecialFileError,
    _apply_torn,
    check_state_dir,
    cut_positions,
    refuse_special,
)
from pytest_edge.errors import EdgeInputError


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


def test_syncfs_makes_every_write_and_name_durable() -> None:
    model = FsModel(Snapshot({}, frozenset()))
    for record in (_create("a", 1), _write("a", 1, 0, b"hello"), {"t": "mkdir", "path": "d"}):
        model.apply(record)
    model.apply({"t": "syncfs"})
    assert all(files == {"a": b"hello"} for files in _states(model).values())
    assert model.crash_state(0, "nothing-pending", random.Random(0)).snapshot.dirs == {"d"}


def test_sync_file_range_is_not_a_durability_point() -> None:
    model = FsModel(Snapshot({"a": b"old!"}, frozenset(), {10: "a"}))
    model.apply(_write("a", 10, 0, b"new!"))
    model.apply({"t": "sfr", "path": "a", "ino": 10})
    assert _states(model)["nothing-pending"] == {"a": b"old!"}


def test_page_writes_at_offsets_and_a_truncation_by_path() -> None:
    # what the system-call layer records for a database: pwrite of pages, ftruncate by path
    model = FsModel(Snapshot({"db": b"A" * 8192}, frozenset(), {5: "db"}))
    model.apply({"t": "fsync", "path": "db", "ino": 5})
    model.apply(_write("db", 5, 4096, b"B" * 4096))
    model.apply(_write("db", 5, 8192, b"C" * 4096))
    model.apply({"t": "trunc", "path": "db", "ino": 5, "size": 10000})
    assert model.current().files["db"] == b"A" * 4096 + b"B" * 4096 + b"C" * 1808
    assert _states(model)["nothing-pending"]["db"] == b"A" * 8192
    model.apply({"t": "fsync", "path": "db", "ino": 5})
    assert _states(model)["nothing-pending"]["db"] == model.current().files["db"]


def test_unlink_is_durable_only_after_the_directory_is_synced() -> None:
    # SQLite's DELETE journal: fsynced, then unlinked; without a directory sync it may return
    model = FsModel(Snapshot({}, frozenset()))
    for record in (
        _create("db-journal", 3),
        _write("db-journal", 3, 0, b"J" * 512),
        {"t": "fsync", "path": "db-journal", "ino": 3},
        {"t": "dirsync", "path": "."},
        {"t": "unlink", "path": "db-journal"},
    ):
        model.apply(record)
    assert _states(model)["nothing-pending"] == {"db-journal": b"J" * 512}
    assert _states(model)["all-pending"] == {}
    model.apply({"t": "dirsync", "path": "."})
    assert all(files == {} for files in _states(model).values())


def _unobserved(path: str, ino: int) -> dict[str, Any]:
    return {"t": "unobserved", "path": path, "ino": ino, "why": "writable shared mmap"}


def test_a_file_written_through_a_shared_map_is_unobserved() -> None:
    model = FsModel(Snapshot({"data.bin": b"x" * 10}, frozenset(), {4: "data.bin"}))
    model.apply(_unobserved("data.bin", 4))
    assert model.unobserved_files() == {"data.bin": "writable shared mmap"}
    assert model.dropped_files() == []


def test_sqlite_wal_index_is_dropped_from_crash_states_not_inconclusive() -> None:
    db = b"SQLite format 3\x00" + bytes(4080)
    model = FsModel(Snapshot({"kv.db": db}, frozenset(), {1: "kv.db"}))
    for record in (_create("kv.db-shm", 2), _write("kv.db-shm", 2, 0, b"\0" * 32768)):
        model.apply(record)
    model.apply(_unobserved("kv.db-shm", 2))
    assert model.unobserved_files() == {}
    assert model.dropped_files() == ["kv.db-shm"]
    state = model.crash_state(0, "all-pending", random.Random(0))
    assert set(state.snapshot.files) == {"kv.db"}
    assert "kv.db-shm: dropped (SQLite wal-index)" in state.detail


def test_a_shm_file_beside_no_sqlite_database_stays_inconclusive() -> None:
    model = FsModel(Snapshot({"kv.db": b"not sqlite"}, frozenset(), {1: "kv.db"}))
    model.apply(_create("kv.db-shm", 2))
    model.apply(_unobserved("kv.db-shm", 2))
    assert model.unobserved_files() == {"kv.db-shm": "writable shared mmap"}


@pytest.mark.parametrize("rel", ["../outside", "/etc/passwd", "a/../../b"])
def test_a_crash_state_is_never_written_outside_its_directory(tmp_path: Path, rel: str) -> None:
    with pytest.raises(EdgeInputError, match="leaves the state directory"):
        Snapshot({rel: b"x"}, frozenset()).write(tmp_path / "state")
    assert list(tmp_path.iterdir()) == []


def _make_special(kind: str, path: Path, outside: Path) -> None:
    if kind == "symlink":
        path.symlink_to(outside)
    elif kind == "dir symlink":
        path.symlink_to(outside.parent, target_is_directory=True)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("symlink", "a symbolic link"),
        ("dir symlink", "a symbolic link"),
        ("fifo", "a FIFO"),
        ("socket", "a socket"),
    ],
)
def test_special_files_in_the_state_directory_are_refused_by_path(
    tmp_path: Path, kind: str, what: str
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    special = state / "sub" / "entry"
    _make_special(kind, special, outside)
    with pytest.raises(SpecialFileError, match=f"{special} is {what}"):
        check_state_dir(state)
    with pytest.raises(SpecialFileError, match=f"{special} is {what}"):
        Snapshot.read(state)


def test_a_device_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecialFileError, match="/dev/null is a character device"):
        refuse_special("/dev/null")


def test_a_stale_wal_index_left_from_before_is_dropped_too() -> None:
    db = b"SQLite format 3\x00" + bytes(4080)
    model = FsModel(Snapshot({"kv.db": db, "kv.db-shm": b"stale"}, frozenset(), {1: "kv.db"}))
    assert model.dropped_files() == ["kv.db-shm"]
    assert set(model.crash_state(0, "nothing-pending", random.Random(0)).snapshot.files) == {
        "kv.db"
    }
