"""SQLite key-value workloads for the power-loss verdicts: commit, then acknowledge.

One workload per (journal_mode, synchronous) pair; each commits one row per transaction and
acknowledges it only after COMMIT returned, so an acknowledged row is one SQLite promised
to keep as far as that setting promises. ``recover`` opens the database as a restarted
program would (SQLite rolls back a hot journal, replays the WAL), checks it and reads it.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest_edge

DB = "kv.db"
_PRAGMAS = {
    "WAL": "PRAGMA journal_mode=WAL",
    "DELETE": "PRAGMA journal_mode=DELETE",
    "OFF": "PRAGMA synchronous=OFF",
    "NORMAL": "PRAGMA synchronous=NORMAL",
    "FULL": "PRAGMA synchronous=FULL",
    "EXTRA": "PRAGMA synchronous=EXTRA",
}


def _run(state_dir: str, journal: str, synchronous: str) -> None:
    db = sqlite3.connect(os.path.join(state_dir, DB), isolation_level=None)
    db.execute(_PRAGMAS[journal])
    db.execute(_PRAGMAS[synchronous])
    # a checkpoint every few commits: WAL pages reach the database inside the cycles too
    db.execute("PRAGMA wal_autocheckpoint=8")
    db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    i = db.execute("SELECT count(*) FROM kv").fetchone()[0]
    while True:
        key, value = f"k{i}", f"{i}:" + "v" * (37 * (i % 50))
        db.execute("BEGIN")
        db.execute("INSERT INTO kv VALUES (?, ?)", (key, value))
        db.execute("COMMIT")
        pytest_edge.ack(key, value)
        i += 1


def wal_full(state_dir: str) -> None:
    _run(state_dir, "WAL", "FULL")


def wal_normal(state_dir: str) -> None:
    _run(state_dir, "WAL", "NORMAL")


def delete_full(state_dir: str) -> None:
    _run(state_dir, "DELETE", "FULL")


def delete_extra(state_dir: str) -> None:
    _run(state_dir, "DELETE", "EXTRA")


def delete_off(state_dir: str) -> None:
    _run(state_dir, "DELETE", "OFF")


def recover(state_dir: str) -> dict[str, Any]:
    """The rows a restarted program finds; a database SQLite reports damaged raises."""
    path = os.path.join(state_dir, DB)
    if not os.path.exists(path):
        return {}
    db = sqlite3.connect(path)
    try:
        (check,) = db.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {check}")
        tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'kv'").fetchall()
        return dict(db.execute("SELECT k, v FROM kv").fetchall()) if tables else {}
    finally:
        db.close()
