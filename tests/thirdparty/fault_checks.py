"""Filesystem-fault verdicts on real storage libraries, each read from the library's source.

Every check arms a fault with ``edge_faults`` the way a user's test would, asserts that the
fault fired (a fault that never fired proves nothing), and asserts what the library's source
says must happen. ``PYTHON_LAYER_BLIND`` names the checks the Python-level layer cannot reach
and why: run in a plain pytest process those are strict xfails; run with the system-call
layer preloaded (``test_fault_verdicts.py`` starts such a pytest) every check must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
import pytest
import tinydb
from atomicwrites import atomic_write
from sqlitedict import SqliteDict

from tests.thirdparty.workloads import _aiofiles_save

Check = Callable[[Any, Path, pytest.MonkeyPatch], None]


def _sqlitedict(tmp_path: Path) -> Any:
    return SqliteDict(
        str(tmp_path / "d.db"), encode=json.dumps, decode=json.loads, outer_stack=False
    )


def _sqlite_rows(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM unnamed")}
    finally:
        conn.close()


def sqlitedict_disk_full_surfaces_at_commit(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``d[key] = value`` only queues the statement for sqlitedict's worker thread, which
    stores the statement's exception (SQLITE_FULL: the rollback journal is written as soon as
    a page changes) and re-raises it at the next call: the caller sees it at ``commit()``."""
    store = _sqlitedict(tmp_path)
    try:
        store["k0"] = "v0"
        store.commit()
        full = edge_faults.disk_full(tmp_path)
        store["k1"] = "x" * 20_000
        with pytest.raises(sqlite3.OperationalError, match="full"):
            store.commit()
        assert full.fired, "disk_full never fired on SQLite's writes"
        edge_faults.disarm()
    finally:
        store.close(force=True)
    assert _sqlite_rows(tmp_path / "d.db") == {"k0": "v0"}


def sqlitedict_io_error_at_commit_kills_its_worker(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's loop calls ``conn.commit()`` outside any ``try``: an error at COMMIT
    itself (here EIO on the database write, the statements having written nothing more)
    ends the thread, and a blocking ``commit()`` (a queue read only that thread answers, with
    no timeout) would wait forever: the error never reaches the caller."""
    died: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    store = _sqlitedict(tmp_path)
    try:
        store["k0"] = "v0"
        store.commit()
        store["k1"] = "v1"  # opens the transaction: the leaf page goes to the journal now
        store.conn.select_one("SELECT 1")  # the worker has run it
        failing = edge_faults.io_error(tmp_path, on="write", times=None)
        store["k2"] = "v2"  # the same leaf page, already journaled: nothing written
        store.conn.select_one("SELECT 1")
        store.conn.commit(blocking=False)  # what commit() sends; blocking=True would hang
        answered: queue.Queue[Any] = queue.Queue()
        store.conn.execute("SELECT 1", res=answered)  # answered only by a living worker
        deadline = time.monotonic() + 10
        while store.conn.is_alive() and answered.empty() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling two conditions; each is reached in milliseconds
        assert failing.fired, "io_error never fired on SQLite's COMMIT"
        assert not store.conn.is_alive(), "the worker survived the failed COMMIT"
        assert len(died) == 1, died
        assert isinstance(died[0], sqlite3.OperationalError), died
        assert "disk I/O error" in str(died[0]), died
    finally:
        edge_faults.disarm()
        store.close(force=True)  # does not wait for the (dead) worker


def diskcache_disk_full_raises_and_keeps_old_keys(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Cache.set`` commits in WAL mode with ``COMMIT`` outside its ``except``: SQLITE_FULL
    reaches the caller as ``sqlite3.OperationalError``; what was committed before stays."""
    with diskcache.Cache(str(tmp_path / "cache")) as cache:
        cache.set("k0", "v0")
        full = edge_faults.disk_full(tmp_path)
        with pytest.raises(sqlite3.OperationalError, match="full"):
            cache.set("k1", "x" * 20_000)
        assert full.fired, "disk_full never fired on SQLite's writes"
        edge_faults.disarm()
    with diskcache.Cache(str(tmp_path / "cache")) as reopened:
        assert reopened.get("k0") == "v0"
        assert "k1" not in reopened


def tinydb_disk_full_leaves_a_file_it_cannot_read(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TinyDB keeps its JSON file open and rewrites it from offset 0 on every insert: when
    the disk fills mid-rewrite the old bytes are already overwritten, and what is left is
    neither the old nor the new JSON. The fault must reach a handle opened before arming."""
    path = tmp_path / "db.json"
    db = tinydb.TinyDB(str(path))
    try:
        for n in range(20):
            db.insert({"n": n, "text": f"record {n}"})
        full = edge_faults.disk_full(tmp_path)
        with pytest.raises(OSError, match="No space left") as raised:
            db.insert({"n": 99, "text": "x" * 4096})
        assert raised.value.errno == errno.ENOSPC
        assert full.fired, "disk_full never fired on the handle opened before arming"
        edge_faults.disarm()
        with pytest.raises(json.JSONDecodeError):
            json.loads(path.read_text())  # what a restarted app reads: all 20 records gone
    finally:
        edge_faults.disarm()
        with contextlib.suppress(OSError):
            db.close()


def _atomic_save(target: Path, text: str) -> None:
    with atomic_write(str(target), overwrite=True) as f:
        f.write(text)


def atomicwrites_disk_full_keeps_the_old_file(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """atomic_write writes a temp file and renames it only after a successful fsync; on an
    error it unlinks the temp file: the target keeps its old content, nothing is left over."""
    target = tmp_path / "store.json"
    _atomic_save(target, '{"k0": "v0"}')
    full = edge_faults.disk_full(tmp_path)
    with pytest.raises(OSError, match="No space left") as raised:
        _atomic_save(target, json.dumps({"k0": "v0", "k1": "x" * 100_000}))
    assert raised.value.errno == errno.ENOSPC
    assert full.fired
    edge_faults.disarm()
    assert json.loads(target.read_text()) == {"k0": "v0"}
    assert sorted(os.listdir(tmp_path)) == ["store.json"]


def atomicwrites_fsync_error_keeps_the_old_file(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsync before the rename fails: atomic_write raises EIO and never renames."""
    target = tmp_path / "store.json"
    _atomic_save(target, '{"k0": "v0"}')
    failing = edge_faults.io_error(tmp_path, on="fsync")
    with pytest.raises(OSError, match="Input/output error") as raised:
        _atomic_save(target, '{"k0": "v0", "k1": "v1"}')
    assert raised.value.errno == errno.EIO
    assert failing.fired, "io_error(on='fsync') never fired on atomicwrites' fsync"
    edge_faults.disarm()
    assert json.loads(target.read_text()) == {"k0": "v0"}
    assert sorted(os.listdir(tmp_path)) == ["store.json"]


def aiofiles_disk_full_reaches_the_await(
    edge_faults: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiofiles runs the built-in file's write/flush in a thread: ENOSPC surfaces at the
    ``await``, the app never reaches its replace, and the target keeps its old content."""
    asyncio.run(_aiofiles_save(str(tmp_path), {"k0": "v0"}))
    full = edge_faults.disk_full(tmp_path)
    with pytest.raises(OSError, match="No space left") as raised:
        asyncio.run(_aiofiles_save(str(tmp_path), {"k0": "v0", "k1": "x" * 100_000}))
    assert raised.value.errno == errno.ENOSPC
    assert full.fired, "disk_full never fired on aiofiles' own open()"
    edge_faults.disarm()
    assert json.loads((tmp_path / "store.json").read_text()) == {"k0": "v0"}


CHECKS: dict[str, Check] = {
    "sqlitedict-disk-full": sqlitedict_disk_full_surfaces_at_commit,
    "sqlitedict-io-error-at-commit": sqlitedict_io_error_at_commit_kills_its_worker,
    "diskcache-disk-full": diskcache_disk_full_raises_and_keeps_old_keys,
    "tinydb-disk-full": tinydb_disk_full_leaves_a_file_it_cannot_read,
    "atomicwrites-disk-full": atomicwrites_disk_full_keeps_the_old_file,
    "atomicwrites-fsync-error": atomicwrites_fsync_error_keeps_the_old_file,
    "aiofiles-disk-full": aiofiles_disk_full_reaches_the_await,
}

_SQLITE = "python layer: SQLite writes in C, so the fault never fires and the write succeeds"
PYTHON_LAYER_BLIND: dict[str, str] = {
    "sqlitedict-disk-full": _SQLITE,
    "sqlitedict-io-error-at-commit": _SQLITE,
    "diskcache-disk-full": _SQLITE,
    "tinydb-disk-full": (
        "python layer: TinyDB opened its file before the fault was armed; writes through that "
        "handle escape disk_full"
    ),
    "atomicwrites-fsync-error": (
        "python layer: atomicwrites binds os.fsync at import (_proper_fsync), out of reach of "
        "the patched os.fsync"
    ),
    "aiofiles-disk-full": (
        "python layer: aiofiles binds the built-in open at import (sync_open = open), out of "
        "reach of the patched open"
    ),
}
