"""SQLite faults: real engine errors where SQLite can produce them.

`sqlite3.Connection` cannot be patched, so ``sqlite3.connect`` is wrapped while a sqlite fault
is armed: a connection to the faulted database file opened from then on is created with a
subclass of its factory that runs every statement (``execute``, ``executemany``,
``executescript``, and the same on its cursors) through the armed faults, including sqlite faults
armed later on the same file. Connections opened before arming are reached only by the faults
that act on the file itself (``locked``, ``corrupt``).

* ``full``: ``PRAGMA max_page_count`` = the page count at arming + ``extra_pages`` → SQLITE_FULL
  ("database or disk is full") when the file would grow. It may be armed before the database
  exists (an app that creates it at start-up): the count is then 1, the header page SQLite
  writes first, so the first table created fails unless ``extra_pages`` leaves room;
* ``locked``: a second connection holds ``BEGIN EXCLUSIVE`` until the fault ends → writers get
  "database is locked" once their busy timeout expires (in WAL mode readers still succeed);
* ``interrupt``: a progress handler aborts the picked statement → "interrupted";
* ``denied``: an authorizer denies statements → "not authorized";
* ``corrupt``: the WAL is checkpointed, then one non-root b-tree page (chosen with the seed) is
  damaged on disk and a no-op commit makes open connections drop their caches → "database disk
  image is malformed" when it is read; the original bytes are put back when the fault ends;
* ``ioerr``: ``sqlite3.OperationalError("disk I/O error")`` raised in place of the picked
  statement (SQLite cannot be made to produce it on demand; ``executemany`` counts as one).
"""

from __future__ import annotations

import io
import os
import random
import sqlite3
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.events import EventSink
from pytest_edge.faults.kinds import COUNTED_ERRORS
from pytest_edge.faults.patching import Attachment, attach
from pytest_edge.faults.schedule import Counter

# the real ones, for the injector's own work (the module is imported before any patch)
_connect = sqlite3.connect
_fsync = os.fsync
_SQLITE_OK = 0
_SQLITE_DENY = 1
_READ_ACTIONS = frozenset(
    getattr(sqlite3, name)
    for name in ("SQLITE_SELECT", "SQLITE_READ", "SQLITE_FUNCTION", "SQLITE_RECURSIVE")
    if hasattr(sqlite3, name)
)
_CONNECT_PARAMS = (
    "database",
    "timeout",
    "detect_types",
    "isolation_level",
    "check_same_thread",
    "factory",
    "cached_statements",
    "uri",
)
# error text SQLite gives for each state-like fault, to log when the engine reports it
_SIGNATURES = {
    "full": "database or disk is full",
    "locked": "database is locked",
    "corrupt": "malformed",
    "denied": "not authorized",
}


def database_path(database: object, uri: bool = False) -> str | None:
    """Normalised path of a ``sqlite3.connect`` database argument; None for in-memory ones."""
    if isinstance(database, bytes):
        database = os.fsdecode(database)
    if isinstance(database, os.PathLike):
        database = os.fspath(database)
    if not isinstance(database, str) or database in ("", ":memory:"):
        return None
    if uri or database.startswith("file:"):
        if not uri:
            return os.path.realpath(database)
        body = database[5:] if database.startswith("file:") else database
        body = body.split("?", 1)[0].split("#", 1)[0]
        if body.startswith("//"):
            body = body[2:]
            body = body[body.index("/") :] if "/" in body else ""
        if not body or body == ":memory:":
            return None
        from urllib.parse import unquote

        return os.path.realpath(unquote(body))
    return os.path.realpath(database)


class SqliteFault:
    """One armed sqlite fault and its running state."""

    def __init__(
        self,
        db_path: str,
        log: EventSink,
        *,
        error: str,
        counter: Counter | None,
        seed: str,
        extra_pages: int = 0,
        busy_timeout: float | None = None,
        deny: str = "all",
        table: str | None = None,
    ) -> None:
        self.db = os.path.realpath(db_path)
        self.error = error
        self.log = log
        self.counter = counter
        self.seed = seed
        self.extra_pages = extra_pages
        self.busy_timeout = busy_timeout
        self.deny = deny
        self.table = table
        self.active = False
        self.statements = 0
        self.max_pages: int | None = None
        self.damaged: tuple[int, bytes, bytes] | None = None  # page, original, damaged
        self._locker: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._attachments: list[Attachment] = []

    @property
    def attachments(self) -> list[Attachment]:
        return self._attachments

    def target(self) -> str:
        return self.db

    # -- arming ----------------------------------------------------------------------------

    def arm(self) -> None:
        if self.error in ("locked", "corrupt") and not os.path.exists(self.db):
            raise FaultArgumentError(
                f"db_path={self.db!r}: sqlite {self.error!r} needs an existing database file "
                "('full', 'ioerr', 'interrupt' and 'denied' may be armed before it exists)"
            )
        if self.error == "full":
            # max_page_count = 0 would mean "no limit": a database not created yet (or empty)
            # counts its header page, the first SQLite writes.
            self.max_pages = max(self._page_count(), 1) + self.extra_pages
        elif self.error == "locked":
            locker = _connect(self.db, check_same_thread=False, isolation_level=None, timeout=5)
            try:
                locker.execute("BEGIN EXCLUSIVE")
            except BaseException:
                locker.close()
                raise
            self._locker = locker
        elif self.error == "corrupt":
            self._damage_page()
        _registry.add(self)
        self.active = True
        for parent in (sqlite3, sqlite3.dbapi2):
            self._attachments.append(attach(parent, "connect", _connect_hook))

    def _page_count(self) -> int:
        """The database's pages now; 0 when the file does not exist (it is not created)."""
        if not os.path.exists(self.db):
            return 0
        con = _connect(self.db)
        try:
            (pages,) = con.execute("PRAGMA page_count").fetchone()
        finally:
            con.close()
        return int(pages)

    def disarm(self) -> None:
        self.active = False
        _registry.remove(self)
        if self._locker is not None:
            try:
                self._locker.rollback()
            finally:
                self._locker.close()
                self._locker = None
        if self.damaged is not None:
            self._restore_page()

    # -- corrupt -----------------------------------------------------------------------------

    def _damage_page(self) -> None:
        con = _connect(self.db)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            if self.table is None:
                rows = con.execute(
                    "SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0"
                ).fetchall()
            else:
                rows = con.execute(
                    "SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0 "
                    "AND (name = ? OR tbl_name = ?)",
                    (self.table, self.table),
                ).fetchall()
                if not rows:
                    raise FaultArgumentError(
                        f"table={self.table!r}: no table or index of that name in {self.db!r}"
                    )
        finally:
            con.close()
        with io.FileIO(self.db, "r") as f:  # FileIO: never one of the patched calls
            data = f.readall()
        page_size = struct.unpack(">H", data[16:18])[0]
        page_size = 65536 if page_size == 1 else page_size
        children: list[tuple[int, str]] = []
        for name, root in rows:
            children += [(p, name) for p in _btree_children(data, page_size, int(root))]
        if not children:
            raise FaultArgumentError(
                f"db_path={self.db!r}: sqlite 'corrupt' needs a b-tree with more than one page"
                + (f" in table={self.table!r}" if self.table else "")
                + "; add rows so a table spans several pages"
            )
        rng = random.Random(self.seed)  # noqa: S311 - replayable choice, not a secret
        page, name = rng.choice(sorted(children))
        offset = (page - 1) * page_size
        original = data[offset : offset + page_size]
        # An invalid page type byte and a garbage cell count: the page can no longer be parsed.
        damaged = b"\x00\xff\xff\xff\xff\xff\xff\xff" + original[8:]
        with io.FileIO(self.db, "r+") as f:
            f.seek(offset)
            f.write(damaged)
            _fsync(f.fileno())
        self.damaged = (page, original, damaged)
        self._bump_change_counter()
        self.log.record(
            "sqlite",
            self.db,
            0,
            f"page {page} ({name})",
            f"corrupt: damaged b-tree page {page} of {name!r} on disk",
        )

    def _restore_page(self) -> None:
        assert self.damaged is not None
        page, original, damaged = self.damaged
        self.damaged = None
        try:
            f = io.FileIO(self.db, "r+")
        except FileNotFoundError:
            return  # the database was deleted meanwhile: nothing to put back
        restored = False
        with f:
            offset = (page - 1) * len(original)
            f.seek(offset)
            if f.read(len(original)) == damaged:  # only if nothing rewrote the page since
                f.seek(offset)
                f.write(original)
                _fsync(f.fileno())
                restored = True
        if restored:
            self._bump_change_counter()

    def _bump_change_counter(self) -> None:
        """Commit a no-op write so every open connection drops its page cache.

        SQLite keeps pages cached while the database looks unchanged; a committed write (here,
        `user_version` set to its own value) is how other connections learn that it changed.
        """
        con = _connect(self.db, isolation_level=None, timeout=5)
        try:
            (version,) = con.execute("PRAGMA user_version").fetchone()
            con.execute(f"PRAGMA user_version = {int(version)}")
        finally:
            con.close()

    # -- per statement -------------------------------------------------------------------------

    def _authorizer(self, action: int, *args: object) -> int:
        if not self.active:
            return _SQLITE_OK
        if self.deny == "writes" and action in _READ_ACTIONS:
            return _SQLITE_OK
        if action == getattr(sqlite3, "SQLITE_TRANSACTION", -1):
            return _SQLITE_OK
        return _SQLITE_DENY

    def sync(self, con: Any, applied: dict[SqliteFault, Any], base: Any) -> None:
        """Apply or undo this fault's per-connection setting on `con` (in its own thread)."""
        key = self
        if self.active and self.error == "locked" and self.busy_timeout is not None:
            # Re-checked before every statement: code often sets its own busy_timeout after
            # connecting, which would otherwise make every locked write wait that long.
            ours = int(self.busy_timeout * 1000)
            (current,) = base.execute(con, "PRAGMA busy_timeout").fetchone()
            if int(current) != ours:
                applied[key] = ("locked", int(current))
                base.execute(con, f"PRAGMA busy_timeout = {ours}")
            return
        if self.active and key not in applied:
            if self.error == "full":
                (before,) = base.execute(con, "PRAGMA max_page_count").fetchone()
                base.execute(con, f"PRAGMA max_page_count = {int(self.max_pages or 0)}")
                applied[key] = ("full", int(before))
            elif self.error == "denied":
                con.set_authorizer(self._authorizer)
                applied[key] = ("denied", None)
            else:
                applied[key] = (self.error, None)

    def before(self, sql: str) -> int:
        """Count a statement; return its number if a counted fault picks it, else 0."""
        with self._lock:
            self.statements += 1
        if self.counter is None or self.error not in COUNTED_ERRORS:
            return 0
        return self.counter.tick()

    def observed(self, exc: BaseException, sql: str) -> None:
        signature = _SIGNATURES.get(self.error)
        if signature is not None and signature in str(exc):
            where = _short(sql)
            if self.damaged is not None:
                where += f" (page {self.damaged[0]} damaged)"
            self.log.record(
                "sqlite", self.db, self.statements, where, f"{self.error}: engine raised {exc!r}"
            )


def _undo(con: Any, base: Any, applied: dict[SqliteFault, Any], key: SqliteFault) -> None:
    kind, before = applied.pop(key)
    if kind == "full":
        base.execute(con, f"PRAGMA max_page_count = {int(before)}")
    elif kind == "denied":
        con.set_authorizer(None)
    elif kind == "locked" and before is not None:
        base.execute(con, f"PRAGMA busy_timeout = {int(before)}")


def _short(sql: object) -> str:
    text = " ".join(str(sql).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _btree_children(data: bytes, page_size: int, root: int) -> list[int]:
    """Every page below `root` in its b-tree (interior pages and leaves, not the root)."""
    found: list[int] = []
    pending = [root]
    seen = {root}
    npages = len(data) // page_size
    while pending:
        page = pending.pop()
        base = (page - 1) * page_size
        header = base + (100 if page == 1 else 0)
        if page < 1 or page > npages:
            continue
        kind = data[header]
        if kind not in (2, 5):  # 2: interior index page, 5: interior table page
            continue
        ncells = struct.unpack(">H", data[header + 3 : header + 5])[0]
        kids = [struct.unpack(">I", data[header + 8 : header + 12])[0]]
        for i in range(ncells):
            ptr = struct.unpack(">H", data[header + 12 + 2 * i : header + 14 + 2 * i])[0]
            kids.append(struct.unpack(">I", data[base + ptr : base + ptr + 4])[0])
        for kid in kids:
            if 1 < kid <= npages and kid not in seen:
                seen.add(kid)
                found.append(kid)
                pending.append(kid)
    return found


class _Registry:
    """Armed sqlite faults by database path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_db: dict[str, tuple[SqliteFault, ...]] = {}

    def add(self, fault: SqliteFault) -> None:
        with self._lock:
            self._by_db[fault.db] = (*self._by_db.get(fault.db, ()), fault)

    def remove(self, fault: SqliteFault) -> None:
        with self._lock:
            left = tuple(f for f in self._by_db.get(fault.db, ()) if f is not fault)
            if left:
                self._by_db[fault.db] = left
            else:
                self._by_db.pop(fault.db, None)

    def get(self, db: str) -> tuple[SqliteFault, ...]:
        return self._by_db.get(db, ())


_registry = _Registry()


@contextmanager
def _guard(con: Any, base: Any, sql: object) -> Iterator[None]:
    """Run one statement of `con` through the faults armed on its database."""
    db: str = con._edge_db
    # keyed by the fault object itself (ids could be reused once a disarmed fault is freed)
    applied: dict[SqliteFault, Any] = con._edge_applied
    faults = _registry.get(db)
    for key in [k for k in applied if k not in faults]:
        _undo(con, base, applied, key)
    interrupt = False
    for fault in faults:
        fault.sync(con, applied, base)
        call = fault.before(str(sql))
        if not call:
            continue
        where = _short(sql)
        if fault.error == "ioerr":
            error = sqlite3.OperationalError("disk I/O error")
            error.sqlite_errorcode = 10
            error.sqlite_errorname = "SQLITE_IOERR"
            fault.log.record("sqlite", db, call, where, f"ioerr: raised {error!r}")
            error.add_note(f"injected by pytest-edge: sqlite({db!r}, 'ioerr') on statement #{call}")
            raise error
        fault.log.record("sqlite", db, call, where, "interrupt: progress handler aborted it")
        interrupt = True
    if interrupt:
        con.set_progress_handler(lambda: 1, 1)
    try:
        yield
    except sqlite3.DatabaseError as exc:
        for fault in faults:
            fault.observed(exc, str(sql))
        raise
    finally:
        if interrupt:
            con.set_progress_handler(None, 1)


class _EdgeConnection:
    """Mixin placed before the user's connection factory (see `_connection_class`)."""

    _edge_db: str
    _edge_applied: dict[SqliteFault, Any]
    _edge_base: Any

    def execute(self, sql: str, *args: Any) -> Any:
        with _guard(self, self._edge_base, sql):
            return super().execute(sql, *args)  # type: ignore[misc]

    def executemany(self, sql: str, *args: Any) -> Any:
        with _guard(self, self._edge_base, sql):
            return super().executemany(sql, *args)  # type: ignore[misc]

    def executescript(self, script: str) -> Any:
        with _guard(self, self._edge_base, script):
            return super().executescript(script)  # type: ignore[misc]

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(_cursor_class(factory or sqlite3.Cursor))  # type: ignore[misc]


class _EdgeCursor:
    """Mixin placed before the user's cursor factory."""

    def execute(self, sql: str, *args: Any) -> Any:
        con: Any = self.connection  # type: ignore[attr-defined]
        with _guard(con, con._edge_base, sql):
            return super().execute(sql, *args)  # type: ignore[misc]

    def executemany(self, sql: str, *args: Any) -> Any:
        con: Any = self.connection  # type: ignore[attr-defined]
        with _guard(con, con._edge_base, sql):
            return super().executemany(sql, *args)  # type: ignore[misc]

    def executescript(self, script: str) -> Any:
        con: Any = self.connection  # type: ignore[attr-defined]
        with _guard(con, con._edge_base, script):
            return super().executescript(script)  # type: ignore[misc]


_classes: weakref.WeakKeyDictionary[type, type] = weakref.WeakKeyDictionary()
_classes_lock = threading.Lock()


def _derived(mixin: type, base: type) -> type:
    with _classes_lock:
        cls = _classes.get(base)
        if cls is None or not issubclass(cls, mixin):
            cls = type(f"Edge{base.__name__}", (mixin, base), {"__module__": __name__})
            _classes[base] = cls
        return cls


def _cursor_class(base: type) -> type:
    if issubclass(base, _EdgeCursor):
        return base
    return _derived(_EdgeCursor, base)


def _connection_class(base: type) -> type:
    return _derived(_EdgeConnection, base)


def _connect_hook(
    proceed: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    bound = dict(zip(_CONNECT_PARAMS, args, strict=False))
    bound.update(kwargs)
    factory = bound.get("factory") or sqlite3.Connection
    if isinstance(factory, type) and issubclass(factory, _EdgeConnection):
        return proceed(*args, **kwargs)  # an outer hook already wrapped this connection
    db = database_path(bound.get("database"), bool(bound.get("uri", False)))
    faults = _registry.get(db) if db is not None else ()
    if not faults:
        return proceed(*args, **kwargs)
    for fault in faults:
        if fault.error == "locked" and fault.busy_timeout is not None:
            bound["timeout"] = min(float(bound.get("timeout", 5.0)), fault.busy_timeout)
    bound["factory"] = _connection_class(factory)
    con = proceed(**bound)
    con._edge_db = db
    con._edge_applied = {}
    con._edge_base = factory
    return con
