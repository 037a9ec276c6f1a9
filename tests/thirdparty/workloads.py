"""Real storage libraries as an app uses them, for the crash harness (imported by its children).

Each ``run_*`` workload stores ``k<i> -> value`` one key at a time and acknowledges a key only
once the library's own "it is stored" call returned (commit, ``set``, ``insert``, the end of an
atomic write); it declares the write as an intent before, so a write in flight at the crash may
show up or not. Each ``recover_*`` reads the store back the way a restarted app would, with the
same library (SQLite files with ``sqlite3``, which rolls back a hot journal as SQLite does).

The libraries are imported at module level, as apps do: the crash template imports this module
once, before any child starts, so references a library binds at import (``os.fsync``, ``open``,
``os.replace``) are bound to the real functions, not to anything the harness installs later.
Why each library gets the verdict it does is in ``docs/verdicts.md``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from typing import Any

import aiofiles
import aiofiles.os
import diskcache
import tinydb
from atomicwrites import atomic_write
from sqlitedict import SqliteDict

import pytest_edge

SQLITEDICT_DB = "sqlitedict.db"
TINYDB_FILE = "tinydb.json"
STORE_JSON = "store.json"
CACHE_DIR = "cache"
# diskcache keeps values below disk_min_file_size (32 KiB) inside SQLite, larger ones in files.
LARGE = 40 * 1024


def _value(i: int, size: int = 0) -> str:
    return f"value {i} " + "x" * size


def _next_index(stored: dict[str, Any]) -> int:
    return max((int(key[1:]) for key in stored), default=-1) + 1


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- sqlitedict: SQLite (DELETE journal) with PRAGMA synchronous=OFF on every connection ---------


def _sqlitedict(state_dir: str) -> Any:
    # JSON instead of the default pickle: recover reads the file with plain sqlite3.
    return SqliteDict(
        os.path.join(state_dir, SQLITEDICT_DB),
        encode=json.dumps,
        decode=json.loads,
        outer_stack=False,
    )


def run_sqlitedict(state_dir: str) -> None:
    """``d[key] = value; d.commit()`` (a blocking commit: its docstring says "persisted")."""
    store = _sqlitedict(state_dir)
    i = _next_index(dict(store.items()))
    while True:
        key, value = f"k{i}", _value(i)
        pytest_edge.intent(key, value)
        store[key] = value
        store.commit()
        pytest_edge.ack(key, value)
        i += 1


def recover_sqlitedict(state_dir: str) -> dict[str, Any]:
    path = os.path.join(state_dir, SQLITEDICT_DB)
    if not os.path.exists(path):
        return {}
    conn = sqlite3.connect(path)
    try:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'unnamed'").fetchall()
        if not tables:
            return {}
        return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM unnamed")}
    finally:
        conn.close()


# --- diskcache: SQLite in WAL mode (synchronous NORMAL by default) + one file per large value ----


def _diskcache_run(state_dir: str, size: int, **settings: Any) -> None:
    with diskcache.Cache(os.path.join(state_dir, CACHE_DIR), **settings) as cache:
        i = _next_index({str(k): None for k in cache})
        while True:
            key, value = f"k{i}", _value(i, size)
            pytest_edge.intent(key, value)
            cache.set(key, value)
            pytest_edge.ack(key, value)
            i += 1


def run_diskcache(state_dir: str) -> None:
    """``cache.set`` with diskcache's defaults (WAL, ``sqlite_synchronous=1``: NORMAL)."""
    _diskcache_run(state_dir, 0)


def run_diskcache_full(state_dir: str) -> None:
    """``cache.set`` of small values with ``sqlite_synchronous=2`` (FULL)."""
    _diskcache_run(state_dir, 0, sqlite_synchronous=2)


def run_diskcache_full_large(state_dir: str) -> None:
    """``cache.set`` of 40 KiB values (stored as files) with ``sqlite_synchronous=2`` (FULL)."""
    _diskcache_run(state_dir, LARGE, sqlite_synchronous=2)


def recover_diskcache(state_dir: str) -> dict[str, Any]:
    directory = os.path.join(state_dir, CACHE_DIR)
    if not os.path.isdir(directory):
        return {}
    with diskcache.Cache(directory) as cache:
        return {str(key): cache[key] for key in cache}


# --- tinydb: one JSON file, rewritten in place from offset 0, fsync, then truncate ---------------


def run_tinydb(state_dir: str) -> None:
    """``db.insert({...})``: TinyDB's default JSONStorage writes the whole file on each insert."""
    with tinydb.TinyDB(os.path.join(state_dir, TINYDB_FILE)) as db:
        i = _next_index({doc["key"]: None for doc in db.all()})
        while True:
            key, value = f"k{i}", _value(i)
            pytest_edge.intent(key, value)
            db.insert({"key": key, "value": value})
            pytest_edge.ack(key, value)
            i += 1


def run_tinydb_precreated(state_dir: str) -> None:
    """As ``run_tinydb``, on a file the app created and made durable first (a careful app)."""
    path = os.path.join(state_dir, TINYDB_FILE)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.fsync(fd)
        os.close(fd)
        _fsync_dir(state_dir)
    run_tinydb(state_dir)


def recover_tinydb(state_dir: str) -> dict[str, Any]:
    path = os.path.join(state_dir, TINYDB_FILE)
    if not os.path.exists(path):
        return {}
    with tinydb.TinyDB(path, access_mode="r") as db:
        return {doc["key"]: doc["value"] for doc in db.all()}


# --- atomicwrites: temp file + fsync + rename + directory fsync -----------------------------------


def _load_json(state_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir, STORE_JSON)) as f:
            data: dict[str, Any] = json.load(f)
            return data
    except FileNotFoundError:
        return {}


def run_atomicwrites(state_dir: str) -> None:
    """The whole store rewritten with ``atomic_write(path, overwrite=True)`` per key."""
    store = _load_json(state_dir)
    path = os.path.join(state_dir, STORE_JSON)
    i = _next_index(store)
    while True:
        key, value = f"k{i}", _value(i)
        store[key] = value
        pytest_edge.intent(key, value)
        with atomic_write(path, overwrite=True) as f:
            json.dump(store, f)
        pytest_edge.ack(key, value)
        i += 1


def recover_json(state_dir: str) -> dict[str, Any]:
    return _load_json(state_dir)


# --- aiofiles: an asyncio app doing temp + fsync + aiofiles.os.replace + directory fsync ---------


async def _aiofiles_save(state_dir: str, store: dict[str, Any]) -> None:
    path = os.path.join(state_dir, STORE_JSON)
    tmp = path + ".tmp"
    async with aiofiles.open(tmp, "w") as f:
        await f.write(json.dumps(store))
        await f.flush()
        await asyncio.to_thread(os.fsync, f.fileno())
    await aiofiles.os.replace(tmp, path)
    await asyncio.to_thread(_fsync_dir, state_dir)


async def _aiofiles_loop(state_dir: str) -> None:
    store = _load_json(state_dir)
    i = _next_index(store)
    while True:
        key, value = f"k{i}", _value(i)
        store[key] = value
        pytest_edge.intent(key, value)
        await _aiofiles_save(state_dir, store)
        pytest_edge.ack(key, value)
        i += 1


def run_aiofiles(state_dir: str) -> None:
    """A careful asyncio writer whose file I/O goes through aiofiles (its own ``open``)."""
    asyncio.run(_aiofiles_loop(state_dir))


# --- a harness check: a store that makes many calls before its first acknowledgement ---------


def run_slow_start(state_dir: str) -> None:
    """Writes 300 small records (a store's start-up: schema, index, settings), then acks."""
    path = os.path.join(state_dir, "startup.log")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for n in range(300):
            os.write(fd, f"{n}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    pytest_edge.ack("started", True)


def recover_slow_start(state_dir: str) -> dict[str, Any]:
    return {"started": True} if os.path.exists(os.path.join(state_dir, "startup.log")) else {}
