"""The fault schema, declared once: one record per fault kind and one for the shared schedule.

Each record is a frozen dataclass whose fields are the kind's options, each annotated with
what it allows (`pytest_edge.schema.Opt`): type, default, allowed values, help. Everything
else is derived from these records: argument checking and its messages, the `FaultInjector`
method signatures (``edge_faults.io_error(path, on="fsync", nth=2)``), `FaultPlan`'s data
form and its key-path errors, the ``edge_fault`` marker's checks and help, and the hypothesis
strategies. Adding an option is one field here plus its behaviour in the family module.

No fault code is imported here; still, building its dataclasses costs ~10 ms, so the plugin
reads the kind names and the marker help from `pytest_edge.faults.kinds` (a test keeps the two
in step).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, fields
from typing import Annotated, Any, ClassVar

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.kinds import (
    COUNTED_ERRORS,
    FAULT_KINDS,
    IO_ERRNOS,
    IO_ERROR_ON,
    NETWORK_ERRORS,
    SQLITE_ERRORS,
    UNLIMITED,
)
from pytest_edge.schema import (
    Choice,
    Declared,
    Flag,
    Number,
    Opt,
    Optional,
    PathText,
    Seconds,
    Span,
    Text,
    ValueType,
    Whole,
)

PathArg = str | os.PathLike[str]
ExceptionArg = BaseException | type[BaseException]

_SECONDS = Seconds()
#: SQLite's own limit on a database's pages (``PRAGMA max_page_count``).
SQLITE_MAX_PAGES = 4294967294
#: SQLite keeps its busy timeout as a C int of milliseconds.
SQLITE_MAX_BUSY_S = (2**31 - 1) // 1000
#: The most memory a process can address, in MB (a C ssize_t of bytes).
MAX_MB = sys.maxsize // (1 << 20)


class ExceptionValue(ValueType):
    """An exception instance or class; in data ``{type = "OSError", args = [...]}`` naming
    a class from the plan allow-list (`pytest_edge.faults.exceptions`)."""

    rule: ClassVar[str] = (
        "expected an exception instance such as OSError(5, 'Input/output error') "
        "or an exception class, of an Exception subclass (KeyboardInterrupt, SystemExit, "
        "GeneratorExit and BaseException would end the pytest session, not the test)"
    )

    def convert(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            # The allow-list imports sqlite3 and socket: loaded only when a plan names one.
            from pytest_edge.faults.exceptions import exception_from_data

            return exception_from_data(value)
        return super().convert(value)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Exception) or (
            isinstance(value, type) and issubclass(value, Exception)
        )

    def to_data(self, value: Any) -> Any:
        from pytest_edge.faults.exceptions import exception_to_data

        return exception_to_data(value)


class FaultArgs(Declared):
    """Base of the fault records: `kind` is the `FaultInjector` method they arm."""

    kind: ClassVar[str]
    error_type: ClassVar[type[FaultArgumentError]] = FaultArgumentError
    counted: ClassVar[bool] = False

    def counts(self) -> bool:
        """Whether this fault takes the schedule options (nth, every, ...)."""
        return self.counted


@dataclass(frozen=True, kw_only=True)
class Schedule(Declared):
    """Which calls a counted fault hits (see `pytest_edge.faults.schedule`)."""

    error_type: ClassVar[type[FaultArgumentError]] = FaultArgumentError

    nth: Annotated[
        int | None,
        Opt(
            Optional(Whole(1, note="calls are numbered from 1")),
            "the first call that can fire",
            sample=range(1, 11),
        ),
    ] = None
    every: Annotated[
        int | None,
        Opt(
            Optional(Whole(1, note="calls are numbered from 1")),
            "fire every this many calls (from nth)",
            sample=range(1, 11),
        ),
    ] = None
    times: Annotated[
        int | None,
        Opt(
            Optional(Whole(1), "no limit", UNLIMITED),
            "fire at most this many times (None: no limit)",
            sample=(*range(1, 6), UNLIMITED),
        ),
    ] = 1
    probability: Annotated[
        float | None,
        Opt(
            Optional(Number(0.0, 1.0, what="a number")),
            "fire with this chance (seeded)",
            sample=(1.0, 0.5, 0.1),
        ),
    ] = None
    window: Annotated[
        tuple[float, float] | None,
        Opt(Optional(Span()), "fire only (start, end) seconds after arming"),
    ] = None

    @property
    def first(self) -> int:
        """The first call number that can fire."""
        if self.nth is not None:
            return self.nth
        return self.every if self.every is not None else 1

    def eligible(self, call: int) -> bool:
        """Whether call number `call` passes the nth/every rule."""
        first = self.first
        if call < first:
            return False
        if self.every is None:
            return True
        return (call - first) % self.every == 0

    def schedule_options(self) -> dict[str, Any]:
        """The schedule options that differ from the defaults."""
        names = SCHEDULE_NAMES
        return {k: v for k, v in Declared.options(self).items() if k in names}


SCHEDULE_NAMES = frozenset(f.name for f in fields(Schedule))


@dataclass(frozen=True)
class DiskFull(FaultArgs):
    """ENOSPC at the write that takes the bytes written under `path` past `free_bytes`."""

    kind: ClassVar[str] = "disk_full"
    path: Annotated[PathArg, Opt(PathText(), "directory or file the fault covers", source="paths")]
    free_bytes: Annotated[
        int, Opt(Whole(0), "bytes that still fit", sample=(0, 1, 512, 4096, 1 << 16))
    ] = 0


@dataclass(frozen=True)
class IoError(FaultArgs, Schedule):
    """EIO on ``write`` | ``fsync`` | ``rename`` | ``read`` | ``open`` calls under `path`
    (counted).

    ``short_write=True``: the picked writes write only half their bytes and return that count
    (a short write, as a signal or a nearly full disk causes) instead of failing. It reaches
    ``os.write`` and unbuffered binary files (writes of 2 bytes or more); Python's buffered
    files finish a short write themselves, as they would on a real disk.
    ``errno="EINTR"``: the picked calls are interrupted instead (as by a signal); Python
    retries them itself (PEP 475), so it tests C code (SQLite retries too) at the syscall
    layer; at the Python layer the call goes on, logged as retried.
    """

    kind: ClassVar[str] = "io_error"
    counted: ClassVar[bool] = True
    path: Annotated[PathArg, Opt(PathText(), "directory or file the fault covers", source="paths")]
    on: Annotated[str, Opt(Choice(IO_ERROR_ON), "which calls", sample=IO_ERROR_ON)] = "write"
    _: KW_ONLY
    short_write: Annotated[
        bool,
        Opt(Flag(), "the picked os.write / unbuffered writes write half their bytes, no error"),
    ] = False
    errno: Annotated[
        str, Opt(Choice(IO_ERRNOS), "EIO, or EINTR: an interrupted call", sample=("EIO",))
    ] = "EIO"

    def cross_check(self) -> None:
        if self.short_write and self.on != "write":
            raise self.error_type("applies to on='write' only", "short_write", True)
        if self.short_write and self.errno != "EIO":
            raise self.error_type("a short write returns no error", "errno", self.errno)


@dataclass(frozen=True)
class ReadOnly(FaultArgs):
    """EROFS on every write, create, rename or removal under `path`."""

    kind: ClassVar[str] = "read_only"
    path: Annotated[PathArg, Opt(PathText(), "directory or file the fault covers", source="paths")]


@dataclass(frozen=True)
class SlowIo(FaultArgs, Schedule):
    """Slow storage: the picked ``write`` | ``fsync`` | ``rename`` | ``read`` | ``open`` calls
    under `path` wait `seconds` first (e.g. a device profile's fsync latency)."""

    kind: ClassVar[str] = "slow_io"
    counted: ClassVar[bool] = True
    path: Annotated[PathArg, Opt(PathText(), "directory or file the fault covers", source="paths")]
    seconds: Annotated[float, Opt(_SECONDS, "delay per picked call", sample=(0.0, 0.001, 0.01))]
    on: Annotated[str, Opt(Choice(IO_ERROR_ON), "which calls", sample=IO_ERROR_ON)] = "fsync"


@dataclass(frozen=True)
class Fail(FaultArgs, Schedule):
    """Raise `exc` from the callable `target` (a dotted name) on the calls picked."""

    kind: ClassVar[str] = "fail"
    counted: ClassVar[bool] = True
    target: Annotated[
        str, Opt(Text("a dotted name like 'package.module.function'"), source="targets")
    ]
    exc: Annotated[ExceptionArg, Opt(ExceptionValue(), "what to raise", source="exceptions")]


@dataclass(frozen=True)
class Slow(FaultArgs, Schedule):
    """Delay the calls picked of `target` by `seconds` (``asyncio.sleep`` for coroutines)."""

    kind: ClassVar[str] = "slow"
    counted: ClassVar[bool] = True
    target: Annotated[
        str, Opt(Text("a dotted name like 'package.module.function'"), source="targets")
    ]
    seconds: Annotated[float, Opt(_SECONDS, "delay per picked call", sample=(0.0, 0.001, 0.01))]


@dataclass(frozen=True)
class Sqlite(FaultArgs, Schedule):
    """A SQLite engine error on connections to `db_path` opened from now on.

    `error`: ``full`` (`extra_pages` more pages allowed), ``locked`` (`busy_timeout`
    seconds caps the wait of those connections), ``ioerr``/``interrupt`` (counted
    statements), ``corrupt`` (a page of `table`, or of any table), ``denied`` (`deny`
    ``"all"`` statements or only ``"writes"``).
    """

    kind: ClassVar[str] = "sqlite"
    counted: ClassVar[bool] = True
    db_path: Annotated[PathArg, Opt(PathText(), "the database file", source="db_paths")]
    error: Annotated[str, Opt(Choice(SQLITE_ERRORS), "the engine error", source="sqlite_errors")]
    _: KW_ONLY
    extra_pages: Annotated[
        int,
        Opt(
            Whole(0, SQLITE_MAX_PAGES, note="SQLite's largest max_page_count"),
            "full: pages still allowed",
        ),
    ] = 0
    busy_timeout: Annotated[
        float | None,
        Opt(
            Optional(
                Number(
                    0.0,
                    SQLITE_MAX_BUSY_S,
                    what="a number of seconds",
                    note="SQLite's busy timeout is a C int of milliseconds",
                )
            ),
            "locked: cap on the connections' busy wait",
        ),
    ] = None
    deny: Annotated[str, Opt(Choice(("all", "writes")), "denied: which statements")] = "all"
    table: Annotated[
        str | None, Opt(Optional(Text("a table or index name")), "corrupt: whose page")
    ] = None

    def counts(self) -> bool:
        return self.error in COUNTED_ERRORS

    def cross_check(self) -> None:
        if self.counts():
            return
        given = self.schedule_options()
        if given:
            name, value = next(iter(given.items()))
            raise self.error_type(
                f"sqlite {self.error!r} holds until disarmed; counting options apply to "
                "'ioerr' and 'interrupt' only",
                name,
                value,
            )


@dataclass(frozen=True)
class MemoryPressure(FaultArgs):
    """Take `mb` MB from the available memory: simulated (default) or really held."""

    kind: ClassVar[str] = "memory_pressure"
    mb: Annotated[
        float,
        Opt(
            Number(
                0.0,
                MAX_MB,
                above=True,
                what="a number of MB",
                note="the most memory a process can address",
            ),
            sample=(1, 16, 256, 1024),
        ),
    ]
    _: KW_ONLY
    hold: Annotated[bool, Opt(Flag(), "really allocate and hold the memory")] = False


@dataclass(frozen=True)
class Network(FaultArgs):
    """Connections to `host`:`port` (None: any) are refused, time out, reset, or fail DNS."""

    kind: ClassVar[str] = "network"
    error: Annotated[str, Opt(Choice(NETWORK_ERRORS), "what happens", sample=NETWORK_ERRORS)]
    host: Annotated[
        str | None,
        Opt(Optional(Text("a host name or address")), "None: any host", source="hosts"),
    ] = None
    port: Annotated[int | None, Opt(Optional(Whole(1, 65535), "any port"), "None: any port")] = None


KINDS: dict[str, type[FaultArgs]] = {
    cls.kind: cls
    for cls in (DiskFull, IoError, ReadOnly, SlowIo, Fail, Slow, Sqlite, MemoryPressure, Network)
}


def fault_args(kind: object) -> type[FaultArgs]:
    """The record of `kind`, or `FaultArgumentError` naming the kinds there are."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise FaultArgumentError(
            f"unknown fault kind; use one of {', '.join(FAULT_KINDS)}", "kind", kind
        )
    return KINDS[kind]


def signature_text(kind: str) -> str:
    """``disk_full(path, free_bytes=0)``: the options of `kind` as a call signature."""
    parts: list[str] = []
    for option in fault_args(kind).declared():
        if option.keyword_only and "*" not in parts:
            parts.append("*")
        parts.append(option.name if option.required else f"{option.name}={option.default!r}")
    return f"{kind}({', '.join(parts)})"
