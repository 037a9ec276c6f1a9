"""SQLite tuned for an edge RAG store: WAL, a connection pool, batched inserts, FTS5, vectors.

The chapter's API (``DatabaseConfig``, ``EdgeDatabaseOptimizer``) on top of the standard
library's ``sqlite3``:

- a thread-safe connection pool: check-out/return, a timeout with a clear error when every
  connection is busy, and broken or closed connections replaced by fresh ones;
- per-connection pragmas: WAL + ``synchronous=NORMAL`` by default (a committed batch survives
  a process crash; after a power cut the latest commits may roll back, the file stays
  consistent), or ``durable=True``: every committed batch survives a power cut too (``FULL``
  in WAL mode, ``EXTRA`` with a rollback journal; one more fsync per commit), page cache
  size, memory-mapped I/O, busy timeout;
- batched inserts in one transaction with ``executemany``: a failure rolls the whole batch
  back and the error names the row and the field;
- full-text search with FTS5 ranked by bm25, where the user's text is always searched as text
  (each word becomes a quoted FTS5 string, so ``"``, ``*``, ``-``, ``NEAR`` or SQL fragments
  are just words);
- float32 embedding vectors with exact top-k cosine search over an in-memory index of unit rows
  that committed inserts append to (rebuilt only when another connection or process changed
  the table, seen through a trigger-maintained change counter), beside the chapter's opaque
  ``vector_data`` bytes;
- a choice of FTS5 tokenizer (``trigram`` finds Chinese and Japanese substrings);
- a versioned schema (``PRAGMA user_version``): older files are migrated in one transaction,
  newer ones refused;
- a WAL size policy (``wal_autocheckpoint``, ``journal_size_limit``) and ``checkpoint()``;
- ``PRAGMA quick_check`` on open, and ``recover()`` for a damaged file (kept aside, never
  deleted);
- real statistics: pages, sizes, WAL size, row counts and pool usage.

Connections are opened with ``sqlite3.connect`` looked up at call time, so a fault injector that
wraps it reaches every connection opened after it is armed. All connections are closed by
``close()``, by the context manager, or by a finalizer when the optimizer is garbage-collected;
if the database file was deleted meanwhile, its orphaned ``-wal``/``-shm`` files go too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "FTS_TOKENIZERS",
    "SCHEMA_VERSION",
    "BatchInsertError",
    "ConnectionPool",
    "DatabaseConfig",
    "DatabaseCorruptError",
    "DimensionMismatchError",
    "EdgeDatabaseError",
    "EdgeDatabaseOptimizer",
    "InvalidRowError",
    "PoolClosedError",
    "PoolStats",
    "PoolTimeoutError",
    "RecoveryReport",
    "SchemaVersionError",
    "TokenizerMismatchError",
    "fts5_query",
]

FloatArray = npt.NDArray[np.float32]

_SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
# Durable across a power cut, per journal mode (enable_wal_mode): the first is durable=True's
# choice. WAL: FULL fsyncs the WAL at every commit (NORMAL only at checkpoints). Rollback
# journal: FULL leaves the journal's deletion (the commit point) unsynced until the directory
# is; EXTRA syncs the directory. See sqlite.org/pragma.html#pragma_synchronous.
_DURABLE_MODES: Final = {True: ("FULL", "EXTRA"), False: ("EXTRA",)}
# Whitespace, ASCII punctuation and control characters separate words for every tokenizer
# (a NUL would even end the query string early). Anything else stays inside a quoted chunk
# and is left to FTS5's own tokenizer, whose Unicode tables differ from Python's.
_CHUNK_SEPARATORS: Final = re.compile(r"[\s\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_MAX_QUERY_TERMS: Final = 32
# The FTS5 tokenizers one can choose (DatabaseConfig.fts_tokenizer) and the tokenize= argument
# each one gets. "trigram" indexes every 3-character sequence, so it finds substrings of text
# without spaces between words (Chinese, Japanese); a query piece shorter than 3 characters
# matches nothing through it (sqlite.org/fts5.html#the_trigram_tokenizer), so such queries are
# answered by a LIKE scan instead (search_documents).
FTS_TOKENIZERS: Final = {
    "unicode61": "unicode61 remove_diacritics 2",
    "porter": "porter unicode61 remove_diacritics 2",
    "ascii": "ascii",
    "trigram": "trigram",
}
_TRIGRAM_MIN_CHARS: Final = 3
_CHECKPOINT_MODES: Final = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")
_CONSTRAINT_COLUMN: Final = re.compile(r"constraint failed: \w+\.(\w+)")


# --- errors -------------------------------------------------------------------------------


class EdgeDatabaseError(sqlite3.DatabaseError):
    """An operation on the edge database failed.

    ``operation`` names the method. When SQLite raised the underlying error (kept as
    ``__cause__``), its ``sqlite_errorcode``/``sqlite_errorname`` are copied here.
    """

    def __init__(self, message: str, *, operation: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        code = getattr(cause, "sqlite_errorcode", None)
        name = getattr(cause, "sqlite_errorname", None)
        if isinstance(code, int):
            self.sqlite_errorcode = code
        if isinstance(name, str):
            self.sqlite_errorname = name


class PoolTimeoutError(EdgeDatabaseError):
    """Every pooled connection stayed busy for the whole pool timeout."""


class PoolClosedError(EdgeDatabaseError):
    """The optimizer (and its pool) was closed."""


class BatchInsertError(EdgeDatabaseError):
    """A batch insert failed and was rolled back as a whole: nothing of it was written.

    ``row_index`` (0-based position in the batch) and ``field`` name the culprit when one row
    caused it; both are ``None`` when the failure was not a row's fault (e.g. disk full at
    commit, database locked).
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        batch_size: int,
        row_index: int | None = None,
        field: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, operation=operation, cause=cause)
        self.batch_size = batch_size
        self.row_index = row_index
        self.field = field


class InvalidRowError(BatchInsertError, ValueError):
    """A row of a batch is malformed; found before anything was written."""


class DimensionMismatchError(ValueError):
    """A query vector's dimension differs from the stored vectors' dimension."""


class DatabaseCorruptError(EdgeDatabaseError):
    """The database file is damaged: ``PRAGMA quick_check`` on open, or a later read, said so.

    ``path`` names the file, ``problems`` holds what SQLite said. Nothing was written to the
    file by the failed operation. ``EdgeDatabaseOptimizer.recover(path)`` keeps the damaged file
    aside and rebuilds a new one from every row that can still be read.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        problems: Sequence[str],
        cause: BaseException | None = None,
        operation: str = "open",
    ) -> None:
        super().__init__(message, operation=operation, cause=cause)
        self.path = path
        self.problems = list(problems)


class SchemaVersionError(EdgeDatabaseError):
    """The file's schema (``PRAGMA user_version``) is newer than this code understands."""

    def __init__(self, message: str, *, path: str, found: int, supported: int) -> None:
        super().__init__(message, operation="open")
        self.path = path
        self.found = found
        self.supported = supported


class TokenizerMismatchError(EdgeDatabaseError, ValueError):
    """``DatabaseConfig.fts_tokenizer`` differs from the tokenizer the file was built with."""


# --- configuration ------------------------------------------------------------------------


def _require_int(name: str, value: object, minimum: int, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"DatabaseConfig.{name} must be an integer {allowed}, got {value!r}")


def _require_number(name: str, value: object, minimum: float, allowed: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= minimum  # also rejects NaN
        or value == float("inf")
    ):
        raise ValueError(f"DatabaseConfig.{name} must be a number {allowed}, got {value!r}")


@dataclass(frozen=True)
class DatabaseConfig:
    """How to open and tune the database. Validated on creation.

    ``cache_size_mb`` is SQLite's page cache *per connection*, so the worst case is
    ``cache_size_mb * connection_pool_size``. ``mmap_size_mb`` is used when ``enable_mmap``.

    ``durable=True`` promises that a batch whose insert returned survives a power cut, not only
    a process crash: it picks the weakest ``synchronous`` setting SQLite documents as durable
    for the journal mode (``FULL`` in WAL mode: each commit fsyncs the WAL; ``EXTRA`` with a
    rollback journal: ``FULL`` plus a directory fsync after the journal is deleted, without
    which the last commit can roll back). ``synchronous`` left at ``None`` means ``NORMAL``, or
    that durable setting; an explicit ``synchronous`` too weak for ``durable=True`` is refused.
    After creation ``synchronous`` holds the setting in force.

    ``fts_tokenizer`` (one of ``FTS_TOKENIZERS``) is the full-text tokenizer of a new file;
    ``None`` takes the one the file was built with (``"unicode61"`` for a new file). Naming a
    different tokenizer than an existing file's is refused (``TokenizerMismatchError``).

    Journal size policy (sqlite.org/pragma.html#pragma_wal_autocheckpoint and
    #pragma_journal_size_limit): ``wal_autocheckpoint`` pages (0 disables; SQLite's default 1000
    is ~4 MiB of 4 KiB pages) trigger a PASSIVE checkpoint at commit, after which the WAL is
    reused from the start; ``journal_size_limit`` bytes (-1: no limit) is what the WAL file is
    truncated to when it is reset, so one large transaction does not leave a large file behind
    on a small flash card.

    ``check_on_open`` runs ``PRAGMA quick_check`` before anything else touches the file: it
    reads every page once (O(N), sqlite.org/pragma.html#pragma_quick_check), so turn it off for
    very large files where opening must be fast, and check them at idle times instead.
    """

    db_path: str | os.PathLike[str]
    connection_pool_size: int = 5
    enable_wal_mode: bool = True
    cache_size_mb: float = 64
    enable_mmap: bool = True
    mmap_size_mb: int = 256
    busy_timeout_ms: int = 5000
    pool_timeout_s: float = 30.0
    synchronous: str | None = None
    durable: bool = False
    fts_tokenizer: str | None = None
    wal_autocheckpoint: int = 1000
    journal_size_limit: int = 4 * 1024 * 1024
    check_on_open: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.db_path, str | os.PathLike):
            raise ValueError(
                f"DatabaseConfig.db_path must be a file path (str or os.PathLike), "
                f"got {self.db_path!r}"
            )
        path = os.fspath(self.db_path)
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError(
                f"DatabaseConfig.db_path must be a path to a database file, got {path!r} "
                "(in-memory and URI databases cannot be shared by a connection pool in WAL mode)"
            )
        _require_int("connection_pool_size", self.connection_pool_size, 1, ">= 1")
        for name in ("enable_wal_mode", "enable_mmap", "durable", "check_on_open"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"DatabaseConfig.{name} must be True or False, got {getattr(self, name)!r}"
                )
        _require_number("cache_size_mb", self.cache_size_mb, 0, ">= 0 (MiB per connection)")
        _require_int("mmap_size_mb", self.mmap_size_mb, 0, ">= 0 (MiB)")
        _require_int("busy_timeout_ms", self.busy_timeout_ms, 0, ">= 0 (milliseconds)")
        _require_number("pool_timeout_s", self.pool_timeout_s, 0, ">= 0 (seconds)")
        _require_int("wal_autocheckpoint", self.wal_autocheckpoint, 0, ">= 0 (pages; 0: off)")
        _require_int(
            "journal_size_limit", self.journal_size_limit, -1, ">= -1 (bytes; -1: no limit)"
        )
        if self.fts_tokenizer is not None and self.fts_tokenizer not in FTS_TOKENIZERS:
            raise ValueError(
                f"DatabaseConfig.fts_tokenizer must be one of {', '.join(FTS_TOKENIZERS)} "
                f"(or None: the file's own), got {self.fts_tokenizer!r}"
            )
        if self.synchronous is not None and self.synchronous not in _SYNCHRONOUS_MODES:
            raise ValueError(
                f"DatabaseConfig.synchronous must be one of {', '.join(_SYNCHRONOUS_MODES)} "
                f"(or None: chosen by durable), got {self.synchronous!r}"
            )
        durable_modes = _DURABLE_MODES[self.enable_wal_mode]
        if self.synchronous is None:
            chosen = durable_modes[0] if self.durable else "NORMAL"
            object.__setattr__(self, "synchronous", chosen)
        elif self.durable and self.synchronous not in durable_modes:
            journal = "WAL" if self.enable_wal_mode else "a rollback journal"
            raise ValueError(
                f"DatabaseConfig.synchronous={self.synchronous!r} with durable=True: with "
                f"{journal} only {' or '.join(durable_modes)} keeps every committed batch "
                "across a power cut (leave synchronous=None to have it chosen)"
            )


def _connect(config: DatabaseConfig) -> sqlite3.Connection:
    """Open one tuned connection.

    ``sqlite3.connect`` is looked up at call time on purpose (fault injectors wrap it).
    Pragmas cannot take bound parameters; every value formatted here is a validated number or
    one of a fixed set of names from ``DatabaseConfig``.
    """
    conn = sqlite3.connect(
        os.fspath(config.db_path),
        timeout=config.busy_timeout_ms / 1000,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # the pool hands a connection to one thread at a time
        cached_statements=64,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
        conn.execute(f"PRAGMA synchronous = {config.synchronous}")
        conn.execute(f"PRAGMA cache_size = {-int(config.cache_size_mb * 1024)}")
        mmap_bytes = config.mmap_size_mb * 1024 * 1024 if config.enable_mmap else 0
        conn.execute(f"PRAGMA mmap_size = {int(mmap_bytes)}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(config.wal_autocheckpoint)}")
        conn.execute(f"PRAGMA journal_size_limit = {int(config.journal_size_limit)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _close_quietly(conn: sqlite3.Connection) -> None:
    with suppress(sqlite3.Error):
        conn.close()


def _usable(conn: sqlite3.Connection) -> bool:
    """A connection can go back into service: open and not inside a transaction."""
    try:
        return not conn.in_transaction
    except sqlite3.ProgrammingError:  # closed behind the pool's back
        return False


# --- connection pool ----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of pool usage."""

    size: int
    open: int
    in_use: int
    idle: int
    waiting: int
    checkouts: int
    timeouts: int
    replaced: int


class ConnectionPool:
    """A fixed-size, thread-safe pool of SQLite connections.

    ``acquire`` hands out an idle connection, opens a new one while fewer than ``size`` are
    open, or waits up to ``timeout_s`` and then raises ``PoolTimeoutError``. Connections that
    come back broken (closed, stuck in a transaction, or returned with ``discard=True`` after an
    engine error) are closed and replaced by a fresh one on the next demand.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        size: int,
        timeout_s: float,
        label: str,
    ) -> None:
        self._connect = connect
        self._size = size
        self._timeout_s = timeout_s
        self._label = label
        self._cond = threading.Condition(threading.Lock())
        self._idle: list[sqlite3.Connection] = []
        self._open = 0  # idle + in use + being opened
        self._in_use = 0
        self._waiting = 0
        self._checkouts = 0
        self._timeouts = 0
        self._replaced = 0
        self._closed = False
        self._generation = 0  # bumped by recycle(); older connections retire on return
        self._born: dict[int, int] = {}  # id(connection) -> generation it was opened in

    @property
    def size(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def fill(self) -> None:
        """Open connections until the pool holds ``size`` of them."""
        while True:
            with self._cond:
                if self._closed or self._open >= self._size:
                    return
                self._open += 1
            try:
                conn = self._connect()
            except BaseException:
                with self._cond:
                    self._open -= 1
                raise
            with self._cond:
                self._born[id(conn)] = self._generation
                self._idle.append(conn)
                self._cond.notify()

    def acquire(self, operation: str, timeout_s: float | None = None) -> sqlite3.Connection:
        """Check out a connection for ``operation`` (named in errors)."""
        timeout = self._timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        stale: list[sqlite3.Connection] = []
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise PoolClosedError(
                            f"{operation}: the database {self._label} is closed",
                            operation=operation,
                        )
                    while self._idle:
                        conn = self._idle.pop()
                        if _usable(conn):
                            self._in_use += 1
                            self._checkouts += 1
                            return conn
                        stale.append(conn)
                        self._born.pop(id(conn), None)
                        self._open -= 1
                        self._replaced += 1
                    if self._open < self._size:
                        self._open += 1  # reserve the slot, open outside the lock
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._timeouts += 1
                        raise PoolTimeoutError(
                            f"{operation}: no free connection to {self._label} after "
                            f"{timeout:g} s: all {self._size} pooled connections are in use "
                            "(raise DatabaseConfig.connection_pool_size or pool_timeout_s, or "
                            "hold connections for less time)",
                            operation=operation,
                        )
                    self._waiting += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._waiting -= 1
        finally:
            for conn in stale:
                _close_quietly(conn)
        try:
            conn = self._connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._born[id(conn)] = self._generation
            self._in_use += 1
            self._checkouts += 1
        return conn

    def release(self, conn: sqlite3.Connection, *, discard: bool = False) -> None:
        """Return a connection; a discarded, broken or post-close one is closed instead."""
        usable = not discard and _usable(conn)
        with self._cond:
            self._in_use -= 1
            current = self._born.get(id(conn)) == self._generation
            keep = usable and current and not self._closed
            if keep:
                self._idle.append(conn)
            else:
                self._born.pop(id(conn), None)
                self._open -= 1
                if not self._closed:
                    self._replaced += 1
            self._cond.notify()
        if not keep:
            _close_quietly(conn)

    @contextmanager
    def connection(self, operation: str) -> Iterator[sqlite3.Connection]:
        """Check out a connection for the ``with`` block; engine errors retire it."""
        conn = self.acquire(operation)
        discard = False
        try:
            yield conn
        except BaseException as exc:
            discard = _connection_suspect(exc)
            raise
        finally:
            self.release(conn, discard=discard)

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                size=self._size,
                open=self._open,
                in_use=self._in_use,
                idle=len(self._idle),
                waiting=self._waiting,
                checkouts=self._checkouts,
                timeouts=self._timeouts,
                replaced=self._replaced,
            )

    @property
    def open_count(self) -> int:
        with self._cond:
            return self._open

    def recycle(self) -> None:
        """Retire every connection: idle ones close now, checked-out ones when they return.

        New connections are opened on demand, through ``sqlite3.connect`` as it is then: after
        arming or disarming a fault injector that wraps it, recycle to make it take effect.
        """
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            for conn in idle:
                self._born.pop(id(conn), None)
            self._open -= len(idle)
            self._replaced += len(idle)
            self._cond.notify_all()
        for conn in idle:
            _close_quietly(conn)

    def close(self) -> None:
        """Close idle connections now and checked-out ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for conn in idle:
                self._born.pop(id(conn), None)
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            _close_quietly(conn)


def _connection_suspect(exc: BaseException) -> bool:
    """Whether an error may have left the connection in an unknown state.

    Constraint violations and bad input are statement-level and leave the connection fine;
    engine errors (I/O, corruption, full, locked, interrupted) and interruptions retire it.
    """
    cause = exc.__cause__ if isinstance(exc, EdgeDatabaseError) else exc
    if isinstance(exc, InvalidRowError | DimensionMismatchError | PoolClosedError):
        return False
    if isinstance(cause, sqlite3.IntegrityError | sqlite3.ProgrammingError):
        return False
    return not isinstance(cause, ValueError | TypeError | UnicodeError)


def _shutdown(pool: ConnectionPool, db_path: str) -> None:
    """Finalizer: close the pool; remove WAL/SHM files orphaned by a deleted database file."""
    pool.close()
    if not os.path.exists(db_path):
        for suffix in ("-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(db_path + suffix)


# --- schema -------------------------------------------------------------------------------

# The schema's version, kept in the file header (PRAGMA user_version, sqlite.org/pragma.html
# #pragma_user_version: an integer SQLite stores and never uses). 0 is a file made by the code
# before versioning; _MIGRATIONS[v] moves a file from version v to v + 1.
SCHEMA_VERSION: Final = 1

_BASE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    doc_type TEXT NOT NULL DEFAULT 'text',
    metadata TEXT,
    created_at REAL NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    title, content, content='documents', content_rowid='id',
    tokenize='{tokenize}'
);
DROP TRIGGER IF EXISTS documents_ai;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
    INSERT INTO documents_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
END;
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    vector_id TEXT NOT NULL UNIQUE,
    vector_data BLOB NOT NULL,
    dim INTEGER,
    metadata TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS edge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Version 1: a change counter for the embeddings table, bumped by triggers on every insert,
# update and delete from any connection or process, so that the in-memory vector index knows
# cheaply (one primary-key read) whether the table still holds what it indexed. A per-row
# trigger costs ~5-8 % of a raw 50,000-row embedding insert (measured); PRAGMA data_version was
# not enough: it is per connection and changes on any commit to any table by another
# connection, our own pooled ones included (sqlite.org/pragma.html#pragma_data_version).
_V1_SCHEMA: Final = """
INSERT OR IGNORE INTO edge_meta(key, value) VALUES ('embeddings_changes', '0');
CREATE TRIGGER IF NOT EXISTS embeddings_changed_ai AFTER INSERT ON embeddings BEGIN
    UPDATE edge_meta SET value = value + 1 WHERE key = 'embeddings_changes';
END;
CREATE TRIGGER IF NOT EXISTS embeddings_changed_au AFTER UPDATE ON embeddings BEGIN
    UPDATE edge_meta SET value = value + 1 WHERE key = 'embeddings_changes';
END;
CREATE TRIGGER IF NOT EXISTS embeddings_changed_ad AFTER DELETE ON embeddings BEGIN
    UPDATE edge_meta SET value = value + 1 WHERE key = 'embeddings_changes';
END;
"""
_EMBEDDINGS_CHANGES: Final = "SELECT value FROM edge_meta WHERE key = 'embeddings_changes'"
# Inserts are indexed per batch by _INDEX_NEW_DOCUMENTS, not by an AFTER INSERT trigger: a
# trigger makes every row its own statement savepoint, at which FTS5 flushes its pending terms,
# which made batch inserts about 7x slower. Deletes and updates keep their triggers.
_INDEX_NEW_DOCUMENTS: Final = (
    "INSERT INTO documents_fts(rowid, title, content) "
    "SELECT id, title, content FROM documents WHERE id > ?"
)
# A title match weighs twice a content match in bm25; set once, stored in the FTS5 table.
_RANK_CONFIG: Final = "INSERT INTO documents_fts(documents_fts, rank) VALUES ('rank', ?)"
_RANK_FUNCTION: Final = "bm25(2.0, 1.0)"

INSERT_DOCUMENT_SQL: Final = (
    "INSERT INTO documents(title, content, doc_type, metadata, created_at) VALUES (?, ?, ?, ?, ?)"
)
_DOCUMENT_FIELDS: Final = ("title", "content", "type", "metadata", "created_at")
_INSERT_EMBEDDING: Final = (
    "INSERT INTO embeddings(vector_id, vector_data, dim, metadata, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_EMBEDDING_FIELDS: Final = ("vector_id", "vector_data", "vector", "metadata", "created_at")
_SEARCH_DOCUMENTS: Final = """
SELECT d.id, d.title, d.content, d.doc_type, d.metadata, -f.rank
FROM (SELECT rowid, rank FROM documents_fts WHERE documents_fts MATCH ? ORDER BY rank LIMIT ?)
     AS f
JOIN documents AS d ON d.id = f.rowid
ORDER BY f.rank
"""


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in _split_statements(script):
        conn.execute(statement)


def _create_base_schema(conn: sqlite3.Connection, tokenizer: str) -> None:
    """The tables of the pre-versioning code (version 0), with the given FTS5 tokenizer."""
    _run_script(conn, _BASE_SCHEMA.format(tokenize=FTS_TOKENIZERS[tokenizer]))
    ranked = conn.execute("SELECT 1 FROM edge_meta WHERE key = 'fts_rank'").fetchone()
    if ranked is None:
        conn.execute(_RANK_CONFIG, (_RANK_FUNCTION,))
        conn.execute("INSERT INTO edge_meta(key, value) VALUES ('fts_rank', ?)", (_RANK_FUNCTION,))
    conn.execute(
        "INSERT OR IGNORE INTO edge_meta(key, value) VALUES ('fts_tokenizer', ?)", (tokenizer,)
    )


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """A file of the pre-versioning code: its schema (unicode61, the only tokenizer it had)
    completed, plus the embeddings change counter and its triggers."""
    _create_base_schema(conn, "unicode61")
    _run_script(conn, _V1_SCHEMA)


_MIGRATIONS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {0: _migrate_0_to_1}


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(path: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"opening the database {path} refused: its schema version is {version}, this code "
            f"knows versions up to {SCHEMA_VERSION}; open it with the newer code that wrote "
            "it (nothing was changed in the file)",
            path=path,
            found=version,
            supported=SCHEMA_VERSION,
        )


def _init_schema(conn: sqlite3.Connection, config: DatabaseConfig) -> str:
    """Create the schema of a new file or migrate an older one, in one transaction.

    Returns the FTS5 tokenizer the file uses. A newer file (``SchemaVersionError``) or a
    different tokenizer than the configured one (``TokenizerMismatchError``) is refused with
    the file untouched.
    """
    path = os.fspath(config.db_path)
    _refuse_newer(path, _user_version(conn))  # before journal_mode changes the file
    mode = "WAL" if config.enable_wal_mode else "DELETE"
    conn.execute(f"PRAGMA journal_mode = {mode}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)  # again: another process may have migrated meanwhile
        _refuse_newer(path, version)
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'"
        ).fetchone()
        if version == 0 and exists is None:
            _create_base_schema(conn, config.fts_tokenizer or "unicode61")
            _run_script(conn, _V1_SCHEMA)
            version = SCHEMA_VERSION
        while version < SCHEMA_VERSION:
            _MIGRATIONS[version](conn)
            version += 1
        (tokenizer,) = conn.execute(
            "SELECT value FROM edge_meta WHERE key = 'fts_tokenizer'"
        ).fetchone()
        if config.fts_tokenizer is not None and config.fts_tokenizer != tokenizer:
            raise TokenizerMismatchError(
                f"opening the database {path} refused: its full-text index was built with the "
                f"{tokenizer!r} tokenizer, DatabaseConfig.fts_tokenizer asks for "
                f"{config.fts_tokenizer!r}; open it with fts_tokenizer=None and call "
                f"set_fts_tokenizer({config.fts_tokenizer!r}) to rebuild the index "
                "(nothing was changed in the file)",
                operation="open",
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return str(tokenizer)


_SQLITE_CORRUPT: Final = 11  # primary result codes, sqlite.org/rescode.html
_SQLITE_NOTADB: Final = 26


def _is_corruption(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _recovery_hint(path: str) -> str:
    return (
        f"the file was not changed; EdgeDatabaseOptimizer.recover({path!r}) moves it aside "
        "(kept) and rebuilds a new file from every row that can still be read"
    )


def _quick_check(conn: sqlite3.Connection, path: str) -> None:
    """``PRAGMA quick_check``: raise ``DatabaseCorruptError`` unless SQLite says ``ok``."""
    hint = _recovery_hint(path)
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        raise DatabaseCorruptError(
            f"opening the database {path} failed: {exc}; PRAGMA quick_check says: it cannot "
            f"read the file ({exc}); {hint}",
            path=path,
            problems=[str(exc)],
            cause=exc,
        ) from exc
    if problems != ["ok"]:
        said = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise DatabaseCorruptError(
            f"opening the database {path} failed: the file is damaged (malformed): "
            f"PRAGMA quick_check says: {said}; {hint}",
            path=path,
            problems=problems,
        )


def _split_statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.strip().splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


# --- query helpers ------------------------------------------------------------------------


def fts5_query(text: str, match: Literal["all", "any"] = "all") -> str:
    """Turn user text into an FTS5 query that searches the words as words.

    The text is cut at whitespace and ASCII punctuation and every piece becomes a double-quoted
    FTS5 string, so operators (``AND``, ``NEAR``, ``-``, ``*``, ``^``, column filters,
    parentheses) and SQL fragments in the text are plain words. ``match="all"`` requires every
    piece, ``"any"`` one of them. Returns ``""`` when the text has nothing to search for.
    """
    joiner = " OR " if match == "any" else " "
    return joiner.join('"' + word.replace('"', '""') + '"' for word in _query_words(text))


def _query_words(text: str) -> list[str]:
    pieces = (p for p in _CHUNK_SEPARATORS.split(text) if p)
    return list(dict.fromkeys(pieces))[:_MAX_QUERY_TERMS]


def _like_search(
    words: Sequence[str], match: Literal["all", "any"], limit: int
) -> tuple[str, tuple[Any, ...]]:
    """The trigram tokenizer's fallback for query pieces under 3 characters, which match
    nothing in its index: a substring scan of the documents table with LIKE (every row is
    read, and LIKE folds ASCII case only). Unranked: score 0.0, oldest first."""
    condition = "(d.title LIKE ? ESCAPE '\\' OR d.content LIKE ? ESCAPE '\\')"
    joiner = " OR " if match == "any" else " AND "
    params: list[Any] = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    where = joiner.join([condition] * len(words))  # fixed text; the words are parameters
    sql = (
        "SELECT d.id, d.title, d.content, d.doc_type, d.metadata, 0.0 "  # noqa: S608 - no user text
        f"FROM documents AS d WHERE {where} ORDER BY d.id LIMIT ?"
    )
    return sql, (*params, limit)


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    Lets a prefix search use the ``vector_id`` index as a range instead of a LIKE pattern.
    ``None`` means no upper bound (empty prefix, or only U+10FFFF).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored as UTF-8
            code = 0xE000
        if code <= sys.maxunicode:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _as_vector(value: object) -> FloatArray:
    """A finite, non-zero, 1-D float32 vector, or ValueError saying what is wrong."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
            array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected a sequence of numbers, got {type(value).__name__}") from exc
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the vector contains NaN or infinity (or values beyond float32)")
    if not np.any(array):
        raise ValueError("the vector is all zeros and has no direction for cosine similarity")
    return np.ascontiguousarray(array)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_row_shape(
    operation: str, total: int, index: int, row: object, allowed: set[str], required: str
) -> None:
    """A row must be a mapping with only the `allowed` fields; the error names the row."""
    if not isinstance(row, Mapping):
        raise _row_error(
            operation,
            total,
            index,
            None,
            f"expected a mapping with {required}, got {type(row).__name__}",
        )
    extra = row.keys() - allowed
    if extra:
        raise _row_error(
            operation,
            total,
            index,
            sorted(extra)[0],
            f"unknown field; allowed: {', '.join(sorted(allowed))}",
        )


def _row_error(
    operation: str, batch_size: int, index: int, field: str | None, problem: str
) -> InvalidRowError:
    where = f"row {index}" + (f" (field {field!r})" if field else "")
    return InvalidRowError(
        f"{operation}: {where}: {problem}; nothing of the batch of {batch_size} rows was written",
        operation=operation,
        batch_size=batch_size,
        row_index=index,
        field=field,
    )


def _metadata_json(
    operation: str, batch_size: int, index: int, row: Mapping[str, Any]
) -> str | None:
    metadata = row.get("metadata")
    if metadata is None:
        return None
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _row_error(
            operation, batch_size, index, "metadata", f"not JSON-serialisable: {exc}"
        ) from exc


# Rows per block of the vector index: 4096 x 384 float32 is 6 MiB, so the spare room of the last
# block stays small beside a 100,000-row matrix (153.6 MB) while a search loops over few blocks.
_BLOCK_ROWS: Final = 4096
_READ_CHUNK: Final = 1024


@dataclass(frozen=True)
class _VectorView:
    """What one search reads: the first ``rows`` rows of ``blocks``, as of change ``version``.

    Appends write rows past ``rows`` (or into new blocks) and publish a new view, so a view
    handed to a search never changes under it and never shows an uncommitted row.
    """

    version: int
    rows: int
    dim: int
    blocks: tuple[FloatArray, ...]
    ids: list[str]  # only grows; entries below ``rows`` are this view's
    metadata: list[str | None]


class _VectorIndex:
    """Unit-length float32 rows in fixed-size blocks: appends never copy the matrix.

    Growing allocates one more block instead of copying into a larger matrix (the amortised
    way needs old + new, 2.5x, at each growth); the spare room is at most one block.
    """

    def __init__(self, version: int, dim: int) -> None:
        self.version = version
        self.dim = dim
        self.rows = 0
        self.blocks: list[FloatArray] = []
        self.ids: list[str] = []
        self.metadata: list[str | None] = []

    def append(self, data: Sequence[bytes], ids: Sequence[str], meta: Sequence[str | None]) -> None:
        """Append float32 row bytes, normalised to unit length (the formula searches used
        before: float32 rows divided in place by their norm)."""
        done = 0
        while done < len(data):
            used = self.rows % _BLOCK_ROWS
            if used == 0:
                self.blocks.append(np.empty((_BLOCK_ROWS, self.dim), dtype=np.float32))
            take = min(_BLOCK_ROWS - used, len(data) - done)
            target = self.blocks[-1][used : used + take]
            chunk = np.frombuffer(b"".join(data[done : done + take]), dtype="<f4")
            target[...] = chunk.reshape(take, self.dim)
            target /= np.linalg.norm(target, axis=1, keepdims=True)
            self.rows += take
            done += take
        self.ids.extend(ids)
        self.metadata.extend(meta)

    def view(self) -> _VectorView:
        return _VectorView(
            self.version, self.rows, self.dim, tuple(self.blocks), self.ids, self.metadata
        )


def _scores(view: _VectorView, query: FloatArray) -> FloatArray:
    """Cosine scores of every row: one product per block, written into one result array."""
    scores = np.empty(view.rows, dtype=np.float32)
    for number, block in enumerate(view.blocks):
        start = number * _BLOCK_ROWS
        stop = min(start + _BLOCK_ROWS, view.rows)
        if stop <= start:
            break
        np.matmul(block[: stop - start], query, out=scores[start:stop])
    return scores


# --- the optimizer ------------------------------------------------------------------------


class EdgeDatabaseOptimizer:
    """An SQLite document and embedding store tuned for edge devices (the chapter's API)."""

    def __init__(self, config: DatabaseConfig) -> None:
        if not isinstance(config, DatabaseConfig):
            raise TypeError(f"config must be a DatabaseConfig, got {type(config).__name__}")
        self.config = config
        self._path = os.fspath(config.db_path)
        self._write_lock = threading.Lock()
        # Held while a view is built or while a commit that changes embeddings is published.
        self._vector_lock = threading.Lock()
        self._vector_index: _VectorIndex | None = None
        self._vector_view: _VectorView | None = None  # read by searches without a lock
        self._vector_rebuilds = 0
        self._vector_appended = 0
        self._fts_tokenizer = "unicode61"

        def connect() -> sqlite3.Connection:
            return _connect(config)

        pool = ConnectionPool(
            connect, config.connection_pool_size, config.pool_timeout_s, self._path
        )
        try:
            first = _connect(config)
            try:
                if config.check_on_open:
                    _quick_check(first, self._path)
                self._fts_tokenizer = _init_schema(first, config)
            finally:
                _close_quietly(first)
            pool.fill()
        except EdgeDatabaseError:
            pool.close()
            raise
        except sqlite3.Error as exc:
            pool.close()
            raise EdgeDatabaseError(
                f"opening the database {self._path} failed: {exc}", operation="open", cause=exc
            ) from exc
        except BaseException:
            pool.close()
            raise
        self._pool = pool
        # Closes the connections even if close() is never called; holds no reference to self.
        self._finalizer = weakref.finalize(self, _shutdown, pool, self._path)

    # -- lifecycle

    def close(self) -> None:
        """Close every connection (idempotent)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> EdgeDatabaseOptimizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.connection_count} connections"
        return f"EdgeDatabaseOptimizer({self._path!r}, {state})"

    @property
    def connection_count(self) -> int:
        """Connections currently open in the pool (idle and checked out)."""
        return self._pool.open_count

    @property
    def pool(self) -> ConnectionPool:
        return self._pool

    @contextmanager
    def _connection(self, operation: str) -> Iterator[sqlite3.Connection]:
        """A pooled connection; SQLite errors become ``EdgeDatabaseError`` naming the operation
        (also those of opening a new connection, e.g. interrupted while reading the schema)."""
        try:
            with self._pool.connection(operation) as conn:
                yield conn
        except sqlite3.Error as exc:
            if isinstance(exc, EdgeDatabaseError):
                raise
            if _is_corruption(exc):  # e.g. damage that check_on_open=False let through
                raise DatabaseCorruptError(
                    f"{operation} on {self._path} failed: {exc}; {_recovery_hint(self._path)}",
                    path=self._path,
                    problems=[str(exc)],
                    cause=exc,
                    operation=operation,
                ) from exc
            raise EdgeDatabaseError(
                f"{operation} on {self._path} failed: {exc}", operation=operation, cause=exc
            ) from exc

    # -- batched inserts

    def batch_insert_documents(self, documents: Iterable[Mapping[str, Any]]) -> int:
        """Insert documents (``title``, ``content``, optional ``type``, ``metadata``) in one
        transaction. Returns how many were inserted; on any failure none are."""
        operation = "batch_insert_documents"
        docs = list(documents)
        now = time.time()
        rows: list[tuple[Any, ...]] = []
        allowed = {"title", "content", "type", "metadata"}
        for index, doc in enumerate(docs):
            _check_row_shape(operation, len(docs), index, doc, allowed, "'title' and 'content'")
            title = doc.get("title")
            content = doc.get("content")
            doc_type = doc.get("type", "text")
            for field, value in (("title", title), ("content", content), ("type", doc_type)):
                if not isinstance(value, str):
                    raise _row_error(
                        operation,
                        len(docs),
                        index,
                        field,
                        f"expected a str, got {type(value).__name__} {_short(value)}",
                    )
            rows.append(
                (title, content, doc_type, _metadata_json(operation, len(docs), index, doc), now)
            )
        last_id_before = 0

        def remember_last_id(conn: sqlite3.Connection) -> None:
            nonlocal last_id_before
            last_id_before = conn.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[
                0
            ]

        def index_new_rows(conn: sqlite3.Connection) -> None:
            # Within the IMMEDIATE transaction the batch owns every id above the old maximum.
            conn.execute(_INDEX_NEW_DOCUMENTS, (last_id_before,))

        self._write_batch(
            operation, INSERT_DOCUMENT_SQL, rows, _DOCUMENT_FIELDS, remember_last_id, index_new_rows
        )
        return len(rows)

    def batch_insert_embeddings(self, embeddings: Iterable[Mapping[str, Any]]) -> int:
        """Insert embeddings in one transaction. Each row has ``vector_id`` and either
        ``vector_data`` (opaque bytes, as in the chapter) or ``vector`` (numbers, stored as
        float32 and searchable with ``search_similar``), plus optional ``metadata``."""
        operation = "batch_insert_embeddings"
        items = list(embeddings)
        now = time.time()
        rows: list[tuple[Any, ...]] = []
        dims: dict[int, int] = {}  # dimension -> first row index having it
        allowed = {"vector_id", "vector_data", "vector", "metadata"}
        for index, item in enumerate(items):
            _check_row_shape(operation, len(items), index, item, allowed, "'vector_id'")
            vector_id = item.get("vector_id")
            if not isinstance(vector_id, str) or not vector_id:
                raise _row_error(
                    operation,
                    len(items),
                    index,
                    "vector_id",
                    f"expected a non-empty str, got {_short(vector_id)}",
                )
            has_data, has_vector = "vector_data" in item, "vector" in item
            if has_data == has_vector:
                raise _row_error(
                    operation,
                    len(items),
                    index,
                    "vector",
                    "give exactly one of 'vector_data' (opaque bytes) or 'vector' (numbers)",
                )
            dim: int | None = None
            if has_data:
                blob = item["vector_data"]
                if not isinstance(blob, bytes | bytearray | memoryview):
                    raise _row_error(
                        operation,
                        len(items),
                        index,
                        "vector_data",
                        f"expected bytes, got {type(blob).__name__}",
                    )
                data = bytes(blob)
            else:
                try:
                    vector = _as_vector(item["vector"])
                except ValueError as exc:
                    raise _row_error(operation, len(items), index, "vector", str(exc)) from exc
                dim = int(vector.size)
                dims.setdefault(dim, index)
                if len(dims) > 1:
                    first_dim = next(iter(dims))
                    raise _row_error(
                        operation,
                        len(items),
                        index,
                        "vector",
                        f"dimension {dim} differs from dimension {first_dim} of row "
                        f"{dims[first_dim]} in the same batch",
                    )
                data = vector.astype("<f4", copy=False).tobytes()
            rows.append(
                (vector_id, data, dim, _metadata_json(operation, len(items), index, item), now)
            )
        batch_dim = next(iter(dims), None)
        changes: list[int] = []  # the change counter before and after the batch

        def count_changes(conn: sqlite3.Connection) -> None:
            changes.append(_read_changes(conn))

        def check_dimension(conn: sqlite3.Connection) -> None:
            count_changes(conn)
            if batch_dim is None:
                return
            stored = conn.execute("SELECT value FROM edge_meta WHERE key = 'vector_dim'").fetchone()
            if stored is None:
                conn.execute(
                    "INSERT INTO edge_meta(key, value) VALUES ('vector_dim', ?)", (str(batch_dim),)
                )
            elif int(stored[0]) != batch_dim:
                raise _row_error(
                    operation,
                    len(rows),
                    dims[batch_dim],
                    "vector",
                    f"dimension {batch_dim} does not match the stored vectors' dimension "
                    f"{int(stored[0])}",
                )

        def publish() -> None:
            self._publish_appended(changes, rows)

        self._write_batch(
            operation,
            _INSERT_EMBEDDING,
            rows,
            _EMBEDDING_FIELDS,
            check_dimension,
            count_changes,
            on_commit=publish,
        )
        return len(rows)

    def _publish_appended(self, changes: Sequence[int], rows: Sequence[tuple[Any, ...]]) -> None:
        """After COMMIT (under the vector lock): append the batch's vectors to the index.

        Only when the index was current just before the batch (its version equals the counter
        read inside the transaction) and the counter moved by exactly the batch's rows: then
        nobody else changed the table in between. Otherwise the index stays as it is, its
        version no longer matches the table, and the next search rebuilds it.
        """
        index = self._vector_index
        if index is None or len(changes) != 2 or index.version != changes[0]:
            return
        if changes[1] - changes[0] != len(rows):
            return
        vectors = [row for row in rows if row[2] is not None]  # opaque rows are not indexed
        try:
            if vectors:
                if not index.rows:
                    index.dim = int(vectors[0][2])
                elif index.dim != vectors[0][2]:
                    return  # cannot happen: the dimension is checked in the transaction
                index.append(
                    [r[1] for r in vectors], [r[0] for r in vectors], [r[3] for r in vectors]
                )
                self._vector_appended += len(vectors)
            index.version = changes[1]
            self._vector_view = index.view()
        except Exception:  # e.g. MemoryError: the committed rows are found by a rebuild
            self._vector_index = None
            self._vector_view = None

    def _write_batch(
        self,
        operation: str,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        fields: Sequence[str],
        before: Callable[[sqlite3.Connection], None] | None = None,
        after: Callable[[sqlite3.Connection], None] | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        """Run ``executemany`` in one IMMEDIATE transaction; any failure rolls it all back.

        ``before`` and ``after`` run inside the same transaction (checks, index upkeep).
        ``on_commit`` runs once COMMIT returned, under the vector lock taken before COMMIT, so a
        search that already sees the new rows in the table waits for them in the index. It
        must not raise.
        """
        if not rows:
            return
        position = -1
        phase = "begin"

        def tracked() -> Iterator[tuple[Any, ...]]:
            # executemany pulls one row, executes it, then pulls the next: on an error the
            # last row pulled is the one that failed.
            nonlocal position
            for index, row in enumerate(rows):
                position = index
                yield row

        with self._write_lock, self._pool.connection(operation) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                phase = "prepare"
                if before is not None:
                    before(conn)
                phase = "rows"
                conn.executemany(sql, tracked())
                phase = "index"
                if after is not None:
                    after(conn)
                phase = "commit"
                if on_commit is None:
                    conn.execute("COMMIT")
                else:
                    with self._vector_lock:
                        conn.execute("COMMIT")
                        on_commit()
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, BatchInsertError) or not isinstance(exc, Exception):
                    raise
                raise self._batch_error(operation, rows, fields, phase, position, exc) from exc

    def _batch_error(
        self,
        operation: str,
        rows: Sequence[tuple[Any, ...]],
        fields: Sequence[str],
        phase: str,
        position: int,
        exc: Exception,
    ) -> BatchInsertError:
        index: int | None = None
        field: str | None = None
        where = {
            "begin": "starting the transaction",
            "index": "updating the full-text index",
            "commit": "committing",
        }.get(phase, "")
        if phase == "rows" and 0 <= position < len(rows):
            index = position
            row = rows[position]
            column = _CONSTRAINT_COLUMN.search(str(exc))
            if column and column.group(1) in fields:
                field = column.group(1)
            elif isinstance(exc, UnicodeError):
                field = next(
                    (f for f, v in zip(fields, row, strict=False) if _unencodable(v)), None
                )
            where = f"row {index}" + (
                f" (field {field!r} = {_short(row[fields.index(field)])})" if field else ""
            )
        message = (
            f"{operation}: {where + ': ' if where else ''}{exc}; the batch of {len(rows)} rows "
            f"was rolled back, nothing of it was written ({self._path})"
        )
        return BatchInsertError(
            message,
            operation=operation,
            batch_size=len(rows),
            row_index=index,
            field=field,
            cause=exc,
        )

    # -- search

    def search_documents(
        self, query: str, limit: int = 10, *, match: Literal["all", "any"] = "all"
    ) -> list[dict[str, Any]]:
        """Full-text search ranked by bm25 (best first).

        The text is searched word by word, never parsed as FTS5 syntax. Results carry ``id``,
        ``title``, ``content``, ``type``, ``metadata`` and ``score`` (the negated bm25, so
        higher is more relevant).
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        _check_limit(limit)
        if match not in ("all", "any"):
            raise ValueError(f"match must be 'all' or 'any', got {match!r}")
        words = _query_words(query)
        if not words:
            return []
        if self._fts_tokenizer == "trigram" and any(len(w) < _TRIGRAM_MIN_CHARS for w in words):
            sql, params = _like_search(words, match, limit)
        else:
            sql, params = _SEARCH_DOCUMENTS, (fts5_query(query, match), limit)
        with self._connection("search_documents") as conn:
            found = conn.execute(sql, params).fetchall()
        return [
            {
                "id": doc_id,
                "title": title,
                "content": content,
                "type": doc_type,
                "metadata": json.loads(metadata) if metadata is not None else None,
                "score": score,
            }
            for doc_id, title, content, doc_type, metadata, score in found
        ]

    def search_embeddings(self, prefix: str, limit: int = 10) -> list[dict[str, Any]]:
        """Embeddings whose ``vector_id`` starts with ``prefix`` (case-sensitive), in id order."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        _check_limit(limit)
        upper = _prefix_upper_bound(prefix)
        sql = "SELECT vector_id, vector_data, dim, metadata FROM embeddings WHERE vector_id >= ?"
        params: tuple[Any, ...] = (prefix,)
        if upper is not None:
            sql += " AND vector_id < ?"
            params += (upper,)
        with self._connection("search_embeddings") as conn:
            found = conn.execute(sql + " ORDER BY vector_id LIMIT ?", (*params, limit)).fetchall()
        return [
            {
                "vector_id": vector_id,
                "vector_data": data,
                "dim": dim,
                "metadata": json.loads(metadata) if metadata is not None else None,
            }
            for vector_id, data, dim, metadata in found
        ]

    def search_similar(self, vector: object, top_k: int = 10) -> list[dict[str, Any]]:
        """Exact top-k cosine similarity over the stored float32 vectors (best first).

        Results carry ``vector_id``, ``score`` (cosine similarity, -1..1) and ``metadata``.
        """
        try:
            query = _as_vector(vector)
        except ValueError as exc:
            raise ValueError(f"search_similar: bad query vector: {exc}") from exc
        _check_limit(top_k, "top_k")
        view = self._current_vector_view()
        if view.rows == 0:
            return []
        if query.size != view.dim:
            raise DimensionMismatchError(
                f"search_similar: query vector has dimension {query.size}, "
                f"the stored vectors have dimension {view.dim}"
            )
        query = query / np.float32(np.linalg.norm(query))
        scores = _scores(view, query)
        k = min(top_k, scores.size)
        if k < scores.size:
            top = np.argpartition(scores, scores.size - k)[scores.size - k :]
        else:
            top = np.arange(scores.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            {
                "vector_id": view.ids[i],
                "score": float(scores[i]),
                "metadata": json.loads(meta) if (meta := view.metadata[i]) is not None else None,
            }
            for i in top.tolist()
        ]

    def _current_vector_view(self) -> _VectorView:
        """The index as of the table's current change counter; rebuilt only when it is stale.

        Fast path without a lock: one primary-key read of the counter. The index is stale only
        when someone else (another optimizer, process or raw SQL) changed the embeddings table,
        since this optimizer's own inserts are appended at commit.
        """
        with self._connection("search_similar") as conn:
            view = self._vector_view
            if view is not None and view.version == _read_changes(conn):
                return view
            with self._vector_lock:
                view = self._vector_view
                if view is not None and view.version == _read_changes(conn):
                    return view
                self._vector_index = None  # free the stale rows before reading the new ones
                self._vector_view = None
                index = self._build_vector_index(conn)
                self._vector_index = index
                self._vector_view = index.view()
                self._vector_rebuilds += 1
                return self._vector_view

    def _build_vector_index(self, conn: sqlite3.Connection) -> _VectorIndex:
        """Read every float32 vector in one read transaction, in chunks straight into blocks
        (peak: the index plus one chunk, never the whole table as bytes)."""
        conn.execute("BEGIN")
        try:
            version = _read_changes(conn)
            dim_row = conn.execute(
                "SELECT value FROM edge_meta WHERE key = 'vector_dim'"
            ).fetchone()
            index = _VectorIndex(version, int(dim_row[0]) if dim_row is not None else 0)
            cursor = conn.execute(
                "SELECT vector_id, vector_data, metadata, dim FROM embeddings "
                "WHERE dim IS NOT NULL ORDER BY id"
            )
            while chunk := cursor.fetchmany(_READ_CHUNK):
                if not index.dim:  # rows written by other code without the vector_dim record
                    index.dim = int(chunk[0][3])
                # rows of another dimension (only raw SQL can write them) are left out
                chunk = [r for r in chunk if r[3] == index.dim and len(r[1]) == 4 * index.dim]
                index.append([r[1] for r in chunk], [r[0] for r in chunk], [r[2] for r in chunk])
                del chunk
        finally:
            with suppress(sqlite3.Error):
                conn.execute("COMMIT")
        return index

    def vector_index_stats(self) -> dict[str, int]:
        """The in-memory vector index: rows, dimension, bytes held, rebuilds and appends."""
        view = self._vector_view
        blocks = 0 if view is None else len(view.blocks)
        return {
            "rows": 0 if view is None else view.rows,
            "dim": 0 if view is None else view.dim,
            "version": -1 if view is None else view.version,
            "capacity_rows": blocks * _BLOCK_ROWS,
            "bytes": 0 if view is None else sum(b.nbytes for b in view.blocks),
            "rebuilds": self._vector_rebuilds,
            "appended_rows": self._vector_appended,
        }

    # -- maintenance

    def optimize(self) -> dict[str, int]:
        """Maintenance after a bulk load (also good at idle times on a device).

        Merges the FTS5 index into one segment (searches get faster), refreshes the query
        planner's statistics (``PRAGMA optimize``) and checkpoints the WAL into the database
        file, truncating it. Returns SQLite's checkpoint figures (``wal_checkpoint``'s busy, log
        and checkpointed counts): ``busy`` is 1 when a reader kept it from completing.
        """
        with self._write_lock, self._connection("optimize") as conn:
            conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('optimize')")
            conn.execute("PRAGMA optimize")
            busy, wal_frames, checkpointed = conn.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        return {"busy": busy, "wal_frames": wal_frames, "checkpointed_frames": checkpointed}

    def checkpoint(self, mode: str = "PASSIVE") -> dict[str, int]:
        """Checkpoint the WAL into the database file; returns SQLite's figures.

        ``mode`` is one of PASSIVE (copy what it can, never wait), FULL (wait for writers),
        RESTART (also wait for readers, so the next writer restarts the WAL from its start) or
        TRUNCATE (RESTART, then truncate the WAL file to zero bytes); see
        sqlite.org/pragma.html#pragma_wal_checkpoint. Returns ``busy`` (1 when a reader or
        writer kept it from completing), ``wal_frames`` and ``checkpointed_frames`` (SQLite's
        busy, log and checkpointed; -1 for both frame counts when not in WAL mode).
        """
        if not isinstance(mode, str) or mode.upper() not in _CHECKPOINT_MODES:
            raise ValueError(
                f"checkpoint mode must be one of {', '.join(_CHECKPOINT_MODES)}, got {mode!r}"
            )
        with self._write_lock, self._connection("checkpoint") as conn:
            busy, wal_frames, checkpointed = conn.execute(
                f"PRAGMA wal_checkpoint({mode.upper()})"
            ).fetchone()
        return {"busy": busy, "wal_frames": wal_frames, "checkpointed_frames": checkpointed}

    def set_fts_tokenizer(self, tokenizer: str) -> int:
        """Rebuild the full-text index with another tokenizer (one of ``FTS_TOKENIZERS``).

        The FTS5 table is dropped, created with the new tokenizer and rebuilt from the
        documents, and the choice recorded, in one transaction: a failure leaves the old index.
        Returns the number of documents indexed. Other optimizers already open on the file
        keep their idea of the tokenizer until reopened (only the short-query LIKE fallback
        depends on it).
        """
        if tokenizer not in FTS_TOKENIZERS:
            raise ValueError(
                f"tokenizer must be one of {', '.join(FTS_TOKENIZERS)}, got {tokenizer!r}"
            )
        with self._write_lock, self._connection("set_fts_tokenizer") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DROP TABLE documents_fts")
                conn.execute("DELETE FROM edge_meta WHERE key IN ('fts_rank', 'fts_tokenizer')")
                _create_base_schema(conn, tokenizer)
                conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('rebuild')")
                (count,) = conn.execute("SELECT count(*) FROM documents").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._fts_tokenizer = tokenizer
        return int(count)

    # -- recovery

    @classmethod
    def recover(
        cls, path: str | os.PathLike[str], config: DatabaseConfig | None = None
    ) -> RecoveryReport:
        """Rebuild a damaged database file from every row that can still be read.

        The damaged file (with its ``-wal``/``-shm``) is renamed to ``<path>.corrupt-<time>``
        and kept, never deleted or written: rows are read from a scratch copy of it. Python's
        sqlite3 has no binding of SQLite's recovery extension (the CLI's ``.recover``), and
        ``Connection.iterdump`` stops at the first damaged page, so each table is read in rowid
        order and a read that fails is stepped over by probing for the next readable rowid:
        rows on damaged pages are lost, and the report names the rowid ranges skipped. The new
        file at ``path`` gets the current schema, the readable rows with their ids, and a
        rebuilt full-text index, in one transaction. ``config`` (its ``db_path`` is replaced by
        ``path``) configures the new file; by default the damaged file's tokenizer is kept.
        Close every optimizer on the file first. If recovery itself is interrupted, the damaged
        file is under ``<path>.corrupt-*`` (the ``-wal`` is moved first, then the main file).
        """
        target = os.fspath(path)
        if not os.path.exists(target):
            raise FileNotFoundError(f"recover: no database file at {target}")
        aside = _move_aside(target)
        scratch_dir = tempfile.mkdtemp(prefix=".edge-recover-", dir=os.path.dirname(aside) or ".")
        try:
            scratch = os.path.join(scratch_dir, "damaged.db")
            for suffix in ("", "-wal"):
                if os.path.exists(aside + suffix):
                    shutil.copyfile(aside + suffix, scratch + suffix)
            source = sqlite3.connect(scratch, isolation_level=None)
            try:
                return _rebuild_from(source, target, aside, config)
            finally:
                source.close()
        finally:
            shutil.rmtree(scratch_dir, ignore_errors=True)

    # -- statistics

    def get_database_stats(self) -> dict[str, Any]:
        """Real figures read from SQLite, the file system and the pool."""
        with self._connection("get_database_stats") as conn:

            def scalar(sql: str) -> Any:
                return conn.execute(sql).fetchone()[0]

            page_size = int(scalar("PRAGMA page_size"))
            page_count = int(scalar("PRAGMA page_count"))
            stats: dict[str, Any] = {
                "database_path": self._path,
                "sqlite_version": sqlite3.sqlite_version,
                "journal_mode": str(scalar("PRAGMA journal_mode")).upper(),
                "synchronous": _SYNCHRONOUS_MODES[int(scalar("PRAGMA synchronous"))],
                "page_size": page_size,
                "page_count": page_count,
                "freelist_pages": int(scalar("PRAGMA freelist_count")),
                "database_size_bytes": page_size * page_count,
                "file_size_bytes": _file_size(self._path),
                "wal_size_bytes": _file_size(self._path + "-wal"),
                "documents": int(scalar("SELECT count(*) FROM documents")),
                "embeddings": int(scalar("SELECT count(*) FROM embeddings")),
                "vectors": int(scalar("SELECT count(*) FROM embeddings WHERE dim IS NOT NULL")),
                "vector_dimension": _int_or_none(
                    conn.execute("SELECT value FROM edge_meta WHERE key = 'vector_dim'").fetchone()
                ),
                "schema_version": int(scalar("PRAGMA user_version")),
                "fts_tokenizer": self._fts_tokenizer,
                "wal_autocheckpoint_pages": int(scalar("PRAGMA wal_autocheckpoint")),
                "journal_size_limit_bytes": int(scalar("PRAGMA journal_size_limit")),
                "cache_size_mb_per_connection": -int(scalar("PRAGMA cache_size")) / 1024,
                "mmap_size_bytes": int(scalar("PRAGMA mmap_size") or 0),
            }
        pool = self._pool.stats()
        stats.update(
            pool_size=pool.size,
            pool_open=pool.open,
            pool_in_use=pool.in_use,
            pool_idle=pool.idle,
            pool_checkouts=pool.checkouts,
            pool_timeouts=pool.timeouts,
            pool_replaced=pool.replaced,
        )
        return stats


# --- recovery -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryReport:
    """What ``EdgeDatabaseOptimizer.recover`` did.

    ``damaged_path``: where the damaged file was kept. ``recovered``: rows written to the new
    file per table. ``rejected``: rows that could be read but were garbage (wrong types,
    constraint violations). ``skipped``: per table, the rowid ranges ``(after, up_to)`` stepped
    over because reading them failed (rows with ids in ``after < id <= up_to`` that existed are
    lost). ``errors``: what SQLite said at each failed read (or that nothing was readable).
    A damaged page can also yield rows that look valid but hold wrong values: nothing can tell
    those apart, so a recovered file is what could be read, not a verified copy.
    """

    path: str
    damaged_path: str
    recovered: dict[str, int]
    rejected: dict[str, int]
    skipped: dict[str, list[tuple[int, int]]]
    errors: list[str]

    @property
    def complete(self) -> bool:
        """Every read succeeded (nothing was skipped)."""
        return not self.errors


_SALVAGE: Final = {
    "edge_meta": ("key", "value"),
    "documents": ("id", "title", "content", "doc_type", "metadata", "created_at"),
    "embeddings": ("id", "vector_id", "vector_data", "dim", "metadata", "created_at"),
}
_ROWID_MIN: Final = -(2**63)
_ROWID_MAX: Final = 2**63 - 1


def _move_aside(path: str) -> str:
    """Rename the file (and its -wal/-shm) to ``<path>.corrupt-<UTC time>[-n]``; returns it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = f"{path}.corrupt-{stamp}"
    number = 1
    while any(os.path.exists(aside + s) for s in ("", "-wal", "-shm")):
        number += 1
        aside = f"{path}.corrupt-{stamp}-{number}"
    for suffix in ("-wal", "-shm", ""):  # the main file last
        if os.path.exists(path + suffix):
            os.replace(path + suffix, aside + suffix)
    return aside


def _read_after(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], after: int, limit: int
) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT rowid, {', '.join(columns)} FROM {table} "  # noqa: S608 - names from _SALVAGE
        "WHERE rowid > ? ORDER BY rowid LIMIT ?",
        (after, limit),
    ).fetchall()


def _readable_after(conn: sqlite3.Connection, table: str, columns: Sequence[str], at: int) -> bool:
    try:
        _read_after(conn, table, columns, at, 1)
    except sqlite3.DatabaseError:
        return False
    return True


def _skip_damage(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], last: int
) -> int | None:
    """The smallest rowid ``r > last`` from which reading works again (doubling steps, then a
    binary search back); ``None`` when nothing after ``last`` can be read."""
    step = 1
    good: int | None = None
    bad = last
    while last + step < _ROWID_MAX:
        if _readable_after(conn, table, columns, last + step):
            good = last + step
            break
        bad = last + step
        step *= 2
    if good is None:
        return None
    while good - bad > 1:
        middle = (good + bad) // 2
        if _readable_after(conn, table, columns, middle):
            good = middle
        else:
            bad = middle
    return good


def _salvage(
    conn: sqlite3.Connection, table: str, skipped: list[tuple[int, int]], errors: list[str]
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield chunks of readable rows of ``table`` in rowid order, stepping over damage."""
    columns = _SALVAGE[table]
    last = _ROWID_MIN
    while True:
        try:
            chunk = _read_after(conn, table, columns, last, 256)
        except sqlite3.DatabaseError:
            chunk = []
            try:  # pin the failure to the next row
                chunk = _read_after(conn, table, columns, last, 1)
            except sqlite3.DatabaseError as exc:
                errors.append(f"{table}: rows after rowid {last}: {exc}")
                resume = _skip_damage(conn, table, columns, last)
                skipped.append((last, _ROWID_MAX if resume is None else resume))
                if resume is None:
                    return
                last = resume
                continue
        if not chunk:
            return
        last = int(chunk[-1][0])
        yield [row[1:] for row in chunk]


def _rebuild_from(
    source: sqlite3.Connection, target: str, aside: str, config: DatabaseConfig | None
) -> RecoveryReport:
    errors: list[str] = []
    skipped: dict[str, list[tuple[int, int]]] = {table: [] for table in _SALVAGE}
    meta: dict[str, str] = {}
    try:
        for chunk in _salvage(source, "edge_meta", skipped["edge_meta"], errors):
            meta.update((str(k), str(v)) for k, v in chunk)
    except sqlite3.DatabaseError as exc:  # the schema itself is unreadable
        errors.append(f"edge_meta: {exc}")
    tokenizer = meta.get("fts_tokenizer", "unicode61")
    if config is None:
        config = DatabaseConfig(
            db_path=target, fts_tokenizer=tokenizer if tokenizer in FTS_TOKENIZERS else None
        )
    else:
        config = dataclasses.replace(config, db_path=target)
    recovered = dict.fromkeys(_SALVAGE, 0)
    rejected = dict.fromkeys(_SALVAGE, 0)
    fresh = EdgeDatabaseOptimizer(config)
    with fresh, fresh._write_lock, fresh._connection("recover") as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "vector_dim" in meta:
                conn.execute(
                    "INSERT OR REPLACE INTO edge_meta(key, value) VALUES ('vector_dim', ?)",
                    (meta["vector_dim"],),
                )
            for table in ("documents", "embeddings"):
                columns = _SALVAGE[table]
                insert = (  # names from _SALVAGE
                    f"INSERT INTO {table}({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' * len(columns))})"
                )
                # read errors are stepped over inside _salvage; a write error is raised
                for chunk in _salvage(source, table, skipped[table], errors):
                    good = [row for row in chunk if _plausible(table, row)]
                    recovered[table] += _insert_valid(conn, insert, good, table, errors)
                    rejected[table] += len(chunk) - len(good)
                if rejected[table]:
                    errors.append(
                        f"{table}: {rejected[table]} readable rows rejected (wrong types or "
                        "constraint violations: garbage from damaged pages)"
                    )
            conn.execute("INSERT INTO documents_fts(documents_fts) VALUES ('rebuild')")
            conn.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
    recovered["edge_meta"] = len(meta)
    return RecoveryReport(
        path=target,
        damaged_path=aside,
        recovered=recovered,
        rejected=rejected,
        skipped=skipped,
        errors=errors,
    )


def _plausible(table: str, row: tuple[Any, ...]) -> bool:
    """A salvaged row has the types its table's rows are written with (a damaged page can
    yield readable garbage; this catches what the schema would not)."""
    if table == "documents":
        row_id, title, content, doc_type, metadata, created = row
        texts = (title, content, doc_type)
        return (
            isinstance(row_id, int)
            and all(isinstance(t, str) for t in texts)
            and (metadata is None or isinstance(metadata, str))
            and isinstance(created, int | float)
        )
    row_id, vector_id, data, dim, metadata, created = row
    return (
        isinstance(row_id, int)
        and isinstance(vector_id, str)
        and isinstance(data, bytes)
        and (dim is None or (isinstance(dim, int) and len(data) == 4 * dim))
        and (metadata is None or isinstance(metadata, str))
        and isinstance(created, int | float)
    )


def _insert_valid(
    conn: sqlite3.Connection,
    insert: str,
    rows: Sequence[tuple[Any, ...]],
    table: str,
    errors: list[str],
) -> int:
    """Insert a chunk; when a row breaks a constraint, insert row by row and skip it."""
    conn.execute("SAVEPOINT chunk")
    try:
        conn.executemany(insert, rows)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO chunk")
        written = 0
        for row in rows:
            try:
                conn.execute(insert, row)
                written += 1
            except sqlite3.IntegrityError as exc:
                errors.append(f"{table}: rowid {row[0]} rejected: {exc}")
        return written
    finally:
        conn.execute("RELEASE chunk")
    return len(rows)


def _read_changes(conn: sqlite3.Connection) -> int:
    """The embeddings table's change counter (bumped by triggers on every write)."""
    row = conn.execute(_EMBEDDINGS_CHANGES).fetchone()
    return -1 if row is None else int(row[0])


def _check_limit(value: object, name: str = "limit") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _unencodable(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _int_or_none(row: tuple[Any, ...] | None) -> int | None:
    return None if row is None else int(row[0])


# --- demo ---------------------------------------------------------------------------------


def _demo() -> None:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="edge-db-demo-") as tmp:
        config = DatabaseConfig(db_path=Path(tmp) / "rag.db", connection_pool_size=3)
        with EdgeDatabaseOptimizer(config) as db:
            print(f"Opened {db!r}")
            topics = ["machine learning", "vector search", "battery life", "sqlite tuning"]
            docs = [
                {
                    "title": f"Note {i} on {topics[i % 4]}",
                    "content": f"Field note {i}: {topics[i % 4]} on a small board, take {i}.",
                    "type": "note",
                    "metadata": {"index": i},
                }
                for i in range(1000)
            ]
            start = time.perf_counter()
            count = db.batch_insert_documents(docs)
            print(f"Inserted {count} documents in {time.perf_counter() - start:.3f} s")
            for query in ("machine learning", 'sqlite" OR 1=1; DROP TABLE documents; --'):
                hits = db.search_documents(query, limit=3, match="any")
                print(f"search_documents({query!r}): {[h['title'] for h in hits]}")
            vectors = rng.standard_normal((500, 64)).astype(np.float32)
            db.batch_insert_embeddings(
                {"vector_id": f"vec_{i:04d}", "vector": v, "metadata": {"row": i}}
                for i, v in enumerate(vectors)
            )
            best = db.search_similar(vectors[42] + 0.05 * rng.standard_normal(64), top_k=3)
            print(
                "search_similar(near vec_0042):",
                [(b["vector_id"], round(b["score"], 3)) for b in best],
            )
            try:
                db.batch_insert_documents([{"title": "ok", "content": "ok"}, {"title": 5}])
            except InvalidRowError as exc:
                print(f"Rejected batch: {exc}")
            for key, value in db.get_database_stats().items():
                print(f"  {key}: {value}")


if __name__ == "__main__":
    _demo()
