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
- float32 embedding vectors with exact top-k cosine search (numpy over the stored matrix,
  cached and rebuilt after inserts), beside the chapter's opaque ``vector_data`` bytes;
- real statistics: pages, sizes, WAL size, row counts and pool usage.

Connections are opened with ``sqlite3.connect`` looked up at call time, so a fault injector that
wraps it reaches every connection opened after it is armed. All connections are closed by
``close()``, by the context manager, or by a finalizer when the optimizer is garbage-collected;
if the database file was deleted meanwhile, its orphaned ``-wal``/``-shm`` files go too.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
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
    "BatchInsertError",
    "ConnectionPool",
    "DatabaseConfig",
    "DimensionMismatchError",
    "EdgeDatabaseError",
    "EdgeDatabaseOptimizer",
    "InvalidRowError",
    "PoolClosedError",
    "PoolStats",
    "PoolTimeoutError",
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
        for name in ("enable_wal_mode", "enable_mmap", "durable"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"DatabaseConfig.{name} must be True or False, got {getattr(self, name)!r}"
                )
        _require_number("cache_size_mb", self.cache_size_mb, 0, ">= 0 (MiB per connection)")
        _require_int("mmap_size_mb", self.mmap_size_mb, 0, ">= 0 (MiB)")
        _require_int("busy_timeout_ms", self.busy_timeout_ms, 0, ">= 0 (milliseconds)")
        _require_number("pool_timeout_s", self.pool_timeout_s, 0, ">= 0 (seconds)")
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

_SCHEMA: Final = """
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
    tokenize='unicode61 remove_diacritics 2'
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


def _init_schema(conn: sqlite3.Connection, config: DatabaseConfig) -> None:
    mode = "WAL" if config.enable_wal_mode else "DELETE"
    conn.execute(f"PRAGMA journal_mode = {mode}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _split_statements(_SCHEMA):
            conn.execute(statement)
        ranked = conn.execute("SELECT 1 FROM edge_meta WHERE key = 'fts_rank'").fetchone()
        if ranked is None:
            conn.execute(_RANK_CONFIG, (_RANK_FUNCTION,))
            conn.execute(
                "INSERT INTO edge_meta(key, value) VALUES ('fts_rank', ?)", (_RANK_FUNCTION,)
            )
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


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
    pieces = (p for p in _CHUNK_SEPARATORS.split(text) if p)
    words = list(dict.fromkeys(pieces))[:_MAX_QUERY_TERMS]
    joiner = " OR " if match == "any" else " "
    return joiner.join('"' + word.replace('"', '""') + '"' for word in words)


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


@dataclass(frozen=True)
class _VectorIndex:
    key: tuple[int, int]
    ids: list[str]
    metadata: list[str | None]
    matrix: FloatArray  # rows normalised to unit length
    dim: int


# --- the optimizer ------------------------------------------------------------------------


class EdgeDatabaseOptimizer:
    """An SQLite document and embedding store tuned for edge devices (the chapter's API)."""

    def __init__(self, config: DatabaseConfig) -> None:
        if not isinstance(config, DatabaseConfig):
            raise TypeError(f"config must be a DatabaseConfig, got {type(config).__name__}")
        self.config = config
        self._path = os.fspath(config.db_path)
        self._write_lock = threading.Lock()
        self._vector_lock = threading.Lock()
        self._vector_index: _VectorIndex | None = None
        self._vector_generation = 0

        def connect() -> sqlite3.Connection:
            return _connect(config)

        pool = ConnectionPool(
            connect, config.connection_pool_size, config.pool_timeout_s, self._path
        )
        try:
            first = _connect(config)
            try:
                _init_schema(first, config)
            finally:
                _close_quietly(first)
            pool.fill()
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
        """A pooled connection; SQLite errors become ``EdgeDatabaseError`` naming the operation."""
        with self._pool.connection(operation) as conn:
            try:
                yield conn
            except sqlite3.Error as exc:
                if isinstance(exc, EdgeDatabaseError):
                    raise
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

        def check_dimension(conn: sqlite3.Connection) -> None:
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

        self._write_batch(operation, _INSERT_EMBEDDING, rows, _EMBEDDING_FIELDS, check_dimension)
        if batch_dim is not None:
            with self._vector_lock:
                self._vector_generation += 1
        return len(rows)

    def _write_batch(
        self,
        operation: str,
        sql: str,
        rows: Sequence[tuple[Any, ...]],
        fields: Sequence[str],
        before: Callable[[sqlite3.Connection], None] | None = None,
        after: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Run ``executemany`` in one IMMEDIATE transaction; any failure rolls it all back.

        ``before`` and ``after`` run inside the same transaction (checks, index upkeep).
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
                conn.execute("COMMIT")
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
        expression = fts5_query(query, match)
        if not expression:
            return []
        with self._connection("search_documents") as conn:
            found = conn.execute(_SEARCH_DOCUMENTS, (expression, limit)).fetchall()
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
        index = self._current_vector_index()
        if index is None:
            return []
        if query.size != index.dim:
            raise DimensionMismatchError(
                f"search_similar: query vector has dimension {query.size}, "
                f"the stored vectors have dimension {index.dim}"
            )
        query = query / np.float32(np.linalg.norm(query))
        scores = index.matrix @ query
        k = min(top_k, scores.size)
        if k < scores.size:
            top = np.argpartition(scores, scores.size - k)[scores.size - k :]
        else:
            top = np.arange(scores.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            {
                "vector_id": index.ids[i],
                "score": float(scores[i]),
                "metadata": json.loads(meta) if (meta := index.metadata[i]) is not None else None,
            }
            for i in top.tolist()
        ]

    def _current_vector_index(self) -> _VectorIndex | None:
        """The cached normalised matrix, rebuilt when vectors were added since it was built."""
        with self._connection("search_similar") as conn:
            (max_id,) = conn.execute("SELECT coalesce(max(id), 0) FROM embeddings").fetchone()
            key = (self._vector_generation, int(max_id))
            index = self._vector_index
            if index is not None and index.key == key:
                return index
            with self._vector_lock:
                index = self._vector_index
                if index is not None and index.key == key:
                    return index
                found = conn.execute(
                    "SELECT vector_id, vector_data, dim, metadata FROM embeddings "
                    "WHERE dim IS NOT NULL ORDER BY id"
                ).fetchall()
                if not found:
                    self._vector_index = None
                    return None
                dim = int(found[0][2])
                matrix = np.frombuffer(b"".join(row[1] for row in found), dtype="<f4")
                matrix = matrix.reshape(len(found), dim).astype(np.float32, copy=True)
                matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
                index = _VectorIndex(
                    key=key,
                    ids=[row[0] for row in found],
                    metadata=[row[3] for row in found],
                    matrix=matrix,
                    dim=dim,
                )
                self._vector_index = index
                return index

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
    import tempfile

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
