"""Workloads and recover functions for the crash-harness tests (imported by child processes).

Each writer keeps a JSON object ``{key: value}`` in ``state.json`` and acknowledges a key only
after its write returned; they differ only in how carefully they write.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import time
from typing import Any

import pytest_edge
from tests.crash import refstore  # imported with this module, in the template process

STATE = "state.json"


def _load(state_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir, STATE)) as f:
            data: dict[str, Any] = json.load(f)
            return data
    except FileNotFoundError:
        return {}


def recover(state_dir: str) -> dict[str, Any]:
    """Read the state back; a damaged file raises (and every acknowledged key counts as lost)."""
    return _load(state_dir)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keys(state: dict[str, Any]) -> int:
    return len(state)


def safe_writer(state_dir: str) -> None:
    """Temp file + fsync + os.replace + directory fsync, then ack: must survive power loss."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    i = _keys(state)
    while True:
        key = f"k{i}"
        state[key] = {"n": i, "pad": "x" * 300}
        pytest_edge.intent(key, state[key])
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(state_dir)
        pytest_edge.ack(key, state[key])
        pytest_edge.crashpoint("after-save")
        i += 1


def in_place_writer(state_dir: str) -> None:
    """Truncate and rewrite the file in place, fsync, ack: loses data on a crash mid-write."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    i = _keys(state)
    while True:
        key = f"k{i}"
        state[key] = i
        with open(path, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        pytest_edge.ack(key, i)
        i += 1


def overwrite_writer(state_dir: str) -> None:
    """Overwrite a fixed-size record file in place (no truncation), fsync, ack.

    The file spans several sectors, so a power cut mid-write leaves part new, part old.
    """
    path = os.path.join(state_dir, STATE)
    state = _load(state_dir)
    i = _keys(state)
    while True:
        key = f"k{i}"
        state[key] = {"n": i, "pad": "x" * 200}
        text = json.dumps(state)
        text = text.ljust(512 * (len(text) // 512 + 1))
        with open(path, "r+" if os.path.exists(path) else "w") as f:
            f.seek(0)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(state_dir)
        pytest_edge.ack(key, state[key])
        i += 1


def rename_without_fsync_writer(state_dir: str) -> None:
    """Temp file + os.replace + directory fsync, but the temp file is never fsynced."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    i = _keys(state)
    while True:
        key = f"k{i}"
        state[key] = i
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, path)
        _fsync_dir(state_dir)
        pytest_edge.ack(key, i)
        i += 1


def counted_writer(state_dir: str) -> None:
    """Safe writes of k0, k1, ... with a crashpoint before each write; stops after 1000."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    for i in range(_keys(state), _keys(state) + 1000):
        pytest_edge.crashpoint("before-write")
        state[f"k{i}"] = i
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(state_dir)
        pytest_edge.ack(f"k{i}", i)


def finite_writer(state_dir: str) -> None:
    """Three safe writes, then returns (its kill points beyond three are never reached)."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    for i in range(3):
        state[f"k{i}"] = i
        with open(path + ".tmp", "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        pytest_edge.ack(f"k{i}", i)


def sleeper(state_dir: str) -> None:
    """Never reaches any kill point (blocks); for the per-cycle timeout."""
    time.sleep(3600)


def raiser(state_dir: str) -> None:
    """A workload with a bug of its own."""
    raise RuntimeError("workload bug 42")


def failing_recover(state_dir: str) -> dict[str, Any]:
    raise ValueError("cannot parse state")


def lossy_recover(state_dir: str) -> dict[str, Any]:
    """Forgets the newest key: a recovery bug the harness must report as a lost write."""
    state = _load(state_dir)
    if state:
        state.pop(max(state, key=lambda k: int(k[1:])))
    return state


def tuple_writer(state_dir: str) -> None:
    """Acknowledges tuples and writes lists: equal after a JSON round trip."""
    path = os.path.join(state_dir, STATE)
    state = _load(state_dir)
    state["pair"] = [1, 2]
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    pytest_edge.ack("pair", (1, 2))
    pytest_edge.crashpoint("done")


def delete_writer(state_dir: str) -> None:
    """Writes a key, then deletes it durably and acknowledges DELETED."""
    path = os.path.join(state_dir, STATE)
    for state, ack in (({"gone": 1}, 1), ({}, pytest_edge.DELETED)):
        with open(path + ".tmp", "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        pytest_edge.ack("gone", ack)
    pytest_edge.crashpoint("done")


def undelete_recover(state_dir: str) -> dict[str, Any]:
    """Brings a deleted key back: the harness must report it as resurrected."""
    state = _load(state_dir)
    state.setdefault("gone", 1)
    return state


def sqlite_writer(state_dir: str) -> None:
    """SQLite commits (C code, outside the Python trace), then acks."""
    db = sqlite3.connect(os.path.join(state_dir, "kv.db"))
    db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)")
    db.commit()
    i = db.execute("SELECT count(*) FROM kv").fetchone()[0]
    while True:
        with db:
            db.execute("INSERT INTO kv VALUES (?, ?)", (f"k{i}", i))
        pytest_edge.ack(f"k{i}", i)
        i += 1


def sqlite_recover(state_dir: str) -> dict[str, Any]:
    db = sqlite3.connect(os.path.join(state_dir, "kv.db"))
    try:
        db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)")
        return dict(db.execute("SELECT k, v FROM kv").fetchall())
    finally:
        db.close()


def counter_writer(state_dir: str) -> None:
    """The smallest honest workload: an 8-byte counter rewritten in place, no fsync.

    Enough for kill -9 (the page cache survives the process), not for power loss.
    """
    fd = os.open(os.path.join(state_dir, "counter"), os.O_RDWR | os.O_CREAT, 0o600)
    i = int(os.pread(fd, 8, 0) or b"0")
    while True:
        i += 1
        pytest_edge.intent("counter", i)
        os.pwrite(fd, b"%08d" % i, 0)
        pytest_edge.ack("counter", i)


def counter_recover(state_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir, "counter"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    return {"counter": int(data)} if data else {}


def small_safe_writer(state_dir: str) -> None:
    """safe_writer on a few-byte file: the power-loss throughput benchmark's workload."""
    path = os.path.join(state_dir, "counter")
    state = counter_recover(state_dir)
    i = int(state.get("counter", 0))
    while True:
        i += 1
        pytest_edge.intent("counter", i)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"%08d" % i)
        os.fsync(fd)
        os.close(fd)
        os.replace(path + ".tmp", path)
        _fsync_dir(state_dir)
        pytest_edge.ack("counter", i)


def accept_anything(key: str, acknowledged: Any, recovered: Any) -> bool:
    return True


def api_tour_writer(state_dir: str) -> None:
    """Many ways Python code writes files, each durably done and acknowledged.

    Power-loss mode compares the traced model with the real directory after each cycle and
    warns on any difference, so this doubles as a completeness test of the tracer.
    """
    import pathlib
    import shutil
    import tempfile

    root = pathlib.Path(state_dir)
    i = len(_load(state_dir))
    while True:
        sub = root / "logs" / f"d{i % 3}"
        os.makedirs(sub, exist_ok=True)
        with open(sub / "events.log", "a") as log:  # append mode
            log.write(f"event {i}\n")
        fd = os.open(root / "raw.bin", os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(fd, b"%06d" % i, 6 * (i % 4))
        os.write(fd, b"tail")
        os.ftruncate(fd, 30)
        os.close(fd)
        (root / "note.txt").write_text(f"note {i}")  # pathlib
        shutil.copyfile(root / "note.txt", root / "note.copy")
        os.unlink(root / "note.copy")
        os.makedirs(root / "tmpdir", exist_ok=True)
        os.rename(root / "tmpdir", root / "movedir")
        os.rmdir(root / "movedir")
        state = _load(state_dir)
        state[f"k{i}"] = i
        with tempfile.NamedTemporaryFile("w", dir=state_dir, delete=False) as tmp:
            json.dump(state, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, root / STATE)
        _fsync_dir(state_dir)
        pytest_edge.ack(f"k{i}", i)
        i += 1


def pathlib_writer(state_dir: str) -> None:
    """Path.write_text + Path.replace, no fsync at all: fine for kill -9, not for power loss."""
    import pathlib

    root = pathlib.Path(state_dir)
    state = _load(state_dir)
    i = len(state)
    while True:
        state[f"k{i}"] = i
        tmp = root / "state.tmp"
        tmp.write_text(json.dumps(state))
        tmp.replace(root / STATE)
        pytest_edge.ack(f"k{i}", i)
        i += 1


def hanging_recover(state_dir: str) -> dict[str, Any]:
    """A recovery that never finishes (e.g. waits for a lock a dead process held)."""
    time.sleep(3600)
    return {}


def no_dirsync_writer(state_dir: str) -> None:
    """Temp file + fsync + os.replace, then ack, but the directory is never fsynced."""
    state = _load(state_dir)
    path = os.path.join(state_dir, STATE)
    i = _keys(state)
    while True:
        state[f"k{i}"] = i
        with open(path + ".tmp", "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        pytest_edge.ack(f"k{i}", i)
        i += 1


def unserialisable_writer(state_dir: str) -> None:
    """Acknowledges a set, which JSON cannot carry."""
    pytest_edge.ack("tags", {"a", "b"})


def _refstore_loop(store: Any, state_dir: str) -> None:
    state = _load(state_dir)
    i = _keys(state)
    while True:
        key = f"k{i}"
        state[key] = {"n": i, "pad": "x" * 300}
        pytest_edge.intent(key, state[key])
        store.save(state_dir, state)
        pytest_edge.ack(key, state[key])
        i += 1


def saved_ref_writer(state_dir: str) -> None:
    """safe_writer through ``os`` functions bound at import, before the harness started."""
    _refstore_loop(refstore, state_dir)


def late_import_writer(state_dir: str) -> None:
    """The same store imported afresh inside the workload, after the harness started."""
    spec = importlib.util.spec_from_file_location("refstore_late", refstore.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _refstore_loop(module, state_dir)


def layer_probe(state_dir: str) -> None:
    """Acknowledges what the child sees: the library loaded, and os functions unpatched."""
    from pytest_edge import syscalls

    pytest_edge.ack("active", syscalls.active())
    pytest_edge.ack("fsync", f"{os.fsync.__module__}.{os.fsync.__name__}")
    pytest_edge.ack("open", f"{open.__module__}.{open.__qualname__}")
    pytest_edge.crashpoint("probed")


def mmap_writer(state_dir: str) -> None:
    """Writes its counter through a writable shared map: the trace cannot see those stores."""
    import mmap

    path = os.path.join(state_dir, "counter.map")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, 4096)
    with mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
        i = int(bytes(m[:8]).strip(b"\0") or b"0")
        while True:
            i += 1
            m[:8] = b"%08d" % i
            m.flush()
            pytest_edge.ack("counter", i)


def mmap_recover(state_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir, "counter.map"), "rb") as f:
            data = f.read(8).strip(b"\0")
    except FileNotFoundError:
        return {}
    return {"counter": int(data)} if data else {}
