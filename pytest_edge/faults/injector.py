"""`FaultInjector`: arms faults, logs what fired, and undoes every patch when it ends.

Usable without pytest::

    with FaultInjector(seed=7) as faults:
        faults.fail("os.fsync", OSError(5, "Input/output error"), nth=2)
        run_my_code()
    print(faults.fired)

The ``edge_faults`` pytest fixture is one of these, seeded from the run's seed and disarmed at
teardown even when the test fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.events import BoundLog, EventLog, FaultEvent
from pytest_edge.faults.fs import IO_ERROR_ON, FsRule
from pytest_edge.faults.generic import CallFault, check_exception, check_seconds
from pytest_edge.faults.kinds import FAULT_KINDS
from pytest_edge.faults.memory import MemoryPressureFault
from pytest_edge.faults.net import NETWORK_ERRORS, NetworkFault
from pytest_edge.faults.patching import Attachment, attach, detach, resolve_target
from pytest_edge.faults.schedule import Counter, Schedule
from pytest_edge.faults.sqlite import COUNTED_ERRORS, SQLITE_ERRORS, SqliteFault

if TYPE_CHECKING:
    from pytest_edge.faults.plan import FaultPlan, FaultSpec

PathArg = str | os.PathLike[str]
ExceptionArg = BaseException | type[BaseException]


@dataclass(eq=False)
class ArmedFault:
    """Handle of one armed fault: what it is, what it fired, and `disarm()`."""

    kind: str
    target: str
    options: dict[str, Any]
    injector: FaultInjector
    index: int
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _calls: Callable[[], int] | None = field(default=None, repr=False)
    active: bool = True

    @property
    def calls(self) -> int:
        """Matching calls seen so far (file operations under the path, calls of the target,
        statements on the database, connections to the address); 0 for memory pressure."""
        return self._calls() if self._calls is not None else 0

    @property
    def fired(self) -> list[FaultEvent]:
        return [e for e in self.injector.fired if self._owns(e)]

    def _owns(self, event: FaultEvent) -> bool:
        return event.index == self.index

    def disarm(self) -> None:
        """Undo this fault's patches and state; safe to call twice."""
        self.injector.disarm(self)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        state = "" if self.active else " (disarmed)"
        return f"#{self.index} {self.kind}({opts}){state}"


def _path(value: object, argument: str) -> str:
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        return os.path.realpath(os.fspath(value))
    raise FaultArgumentError(f"{argument}={value!r}: expected a file or directory path")


def _choice(value: object, argument: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise FaultArgumentError(
            f"{argument}={value!r}: unknown; use one of {', '.join(map(repr, allowed))}"
        )
    return str(value)


class FaultInjector:
    """Arms faults until `disarm()` (or the end of a ``with`` block) and logs those that fire.

    `seed` makes ``probability`` draws replayable; `label` (e.g. the test id) is mixed in so
    two tests with the same seed draw independently.
    """

    def __init__(self, seed: int = 0, *, label: str = "") -> None:
        self.seed = seed
        self.label = label
        self._log = EventLog()
        self._armed: list[ArmedFault] = []
        self._count = 0
        self._lock = threading.RLock()

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> FaultInjector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disarm()

    @property
    def fired(self) -> list[FaultEvent]:
        """Every fault that fired, in order: fault, target, call number, where, effect."""
        return self._log.snapshot()

    @property
    def armed(self) -> list[ArmedFault]:
        with self._lock:
            return [f for f in self._armed if f.active]

    def disarm(self, fault: ArmedFault | None = None) -> None:
        """Disarm one fault, or every fault of this injector (last armed first)."""
        with self._lock:
            targets = [fault] if fault is not None else list(reversed(self._armed))
            errors: list[BaseException] = []
            for item in targets:
                if not item.active:
                    continue
                item.active = False
                for undo in reversed(item._undo):
                    try:
                        undo()
                    except Exception as exc:  # keep undoing the rest, report at the end
                        errors.append(exc)
            if errors:
                raise errors[0]

    def _register(
        self,
        kind: str,
        target: str,
        options: dict[str, Any],
        undo: list[Callable[[], None]],
        calls: Callable[[], int] | None,
        log: BoundLog,
    ) -> ArmedFault:
        armed = ArmedFault(kind, target, options, self, log.index, undo, calls)
        with self._lock:
            self._armed.append(armed)
        return armed

    def _begin(self) -> BoundLog:
        """Number the fault being armed; returns the event sink that tags its events."""
        with self._lock:
            self._count += 1
            return self._log.bound(self._count)

    def _seed_for(self, log: BoundLog, kind: str, target: str) -> str:
        """The random stream of one armed fault: run seed, test, arming number, what."""
        return f"{self.seed}:{self.label}:{log.index}:{kind}:{target}"

    @staticmethod
    def _schedule(
        nth: int | None,
        every: int | None,
        times: int | None,
        probability: float | None,
        window: tuple[float, float] | list[float] | None,
    ) -> Schedule:
        return Schedule(
            nth=nth,
            every=every,
            times=times,
            probability=probability,
            window=tuple(window) if window is not None else None,  # type: ignore[arg-type]
        )

    def _arm_attachments(
        self, arm: Callable[[], None], attachments: list[Attachment]
    ) -> list[Callable[[], None]]:
        try:
            arm()
        except BaseException:
            for a in reversed(attachments):
                detach(a)
            raise
        return [lambda a=a: detach(a) for a in attachments]  # type: ignore[misc]

    # -- file system -----------------------------------------------------------------------------

    def disk_full(self, path: PathArg, free_bytes: int = 0) -> ArmedFault:
        """ENOSPC at the write that takes the bytes written under `path` past `free_bytes`."""
        root = _path(path, "path")
        if isinstance(free_bytes, bool) or not isinstance(free_bytes, int) or free_bytes < 0:
            raise FaultArgumentError(f"free_bytes={free_bytes!r}: must be a whole number >= 0")
        log = self._begin()
        rule = FsRule("disk_full", root, log, free_bytes=free_bytes)
        undo = self._arm_attachments(rule.arm, rule.attachments)
        options: dict[str, Any] = {"path": root}
        if free_bytes:
            options["free_bytes"] = free_bytes
        return self._register("disk_full", root, options, undo, lambda: rule.matching_calls, log)

    def io_error(
        self,
        path: PathArg,
        on: str = "write",
        *,
        nth: int | None = None,
        every: int | None = None,
        times: int | None = 1,
        probability: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> ArmedFault:
        """EIO on ``write`` | ``fsync`` | ``rename`` | ``read`` calls under `path` (counted)."""
        root = _path(path, "path")
        on = _choice(on, "on", IO_ERROR_ON)
        schedule = self._schedule(nth, every, times, probability, window)
        log = self._begin()
        counter = Counter(schedule, self._seed_for(log, "io_error", root))
        rule = FsRule("io_error", root, log, on=on, counter=counter)
        undo = self._arm_attachments(rule.arm, rule.attachments)
        options: dict[str, Any] = {"path": root, "on": on, **schedule.options()}
        return self._register("io_error", root, options, undo, lambda: counter.calls, log)

    def slow_io(
        self,
        path: PathArg,
        seconds: float,
        on: str = "fsync",
        *,
        nth: int | None = None,
        every: int | None = None,
        times: int | None = 1,
        probability: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> ArmedFault:
        """Slow storage: the picked ``write`` | ``fsync`` | ``rename`` | ``read`` calls under
        `path` wait `seconds` first (e.g. a device profile's fsync latency)."""
        root = _path(path, "path")
        seconds = check_seconds(seconds)
        on = _choice(on, "on", IO_ERROR_ON)
        schedule = self._schedule(nth, every, times, probability, window)
        log = self._begin()
        counter = Counter(schedule, self._seed_for(log, "slow_io", root))
        rule = FsRule("slow_io", root, log, on=on, counter=counter, seconds=seconds)
        undo = self._arm_attachments(rule.arm, rule.attachments)
        options: dict[str, Any] = {"path": root, "seconds": seconds}
        if on != "fsync":
            options["on"] = on
        options.update(schedule.options())
        return self._register("slow_io", root, options, undo, lambda: counter.calls, log)

    def read_only(self, path: PathArg) -> ArmedFault:
        """EROFS on every write, create, rename or removal under `path`."""
        root = _path(path, "path")
        log = self._begin()
        rule = FsRule("read_only", root, log)
        undo = self._arm_attachments(rule.arm, rule.attachments)
        return self._register(
            "read_only", root, {"path": root}, undo, lambda: rule.matching_calls, log
        )

    # -- generic callables ---------------------------------------------------------------------

    def _call_fault(
        self,
        kind: str,
        target: str,
        schedule: Schedule,
        *,
        exc: ExceptionArg | None = None,
        seconds: float = 0.0,
    ) -> tuple[list[Callable[[], None]], Counter, BoundLog]:
        parent, name = resolve_target(target)
        log = self._begin()
        counter = Counter(schedule, self._seed_for(log, kind, target))
        hook = CallFault(kind, target, counter, log, exc=exc, seconds=seconds)
        attachment = attach(parent, name, hook)
        return [lambda: detach(attachment)], counter, log

    def fail(
        self,
        target: str,
        exc: ExceptionArg,
        *,
        nth: int | None = None,
        every: int | None = None,
        times: int | None = 1,
        probability: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> ArmedFault:
        """Raise `exc` from the callable `target` (a dotted name) on the calls picked."""
        exc = check_exception(exc)
        schedule = self._schedule(nth, every, times, probability, window)
        undo, counter, log = self._call_fault("fail", target, schedule, exc=exc)
        options = {"target": target, "exc": exc, **schedule.options()}
        return self._register("fail", target, options, undo, lambda: counter.calls, log)

    def slow(
        self,
        target: str,
        seconds: float,
        *,
        nth: int | None = None,
        every: int | None = None,
        times: int | None = 1,
        probability: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> ArmedFault:
        """Delay the calls picked of `target` by `seconds` (``asyncio.sleep`` for coroutines)."""
        seconds = check_seconds(seconds)
        schedule = self._schedule(nth, every, times, probability, window)
        undo, counter, log = self._call_fault("slow", target, schedule, seconds=seconds)
        options = {"target": target, "seconds": seconds, **schedule.options()}
        return self._register("slow", target, options, undo, lambda: counter.calls, log)

    # -- sqlite --------------------------------------------------------------------------------

    def sqlite(
        self,
        db_path: PathArg,
        error: str,
        *,
        extra_pages: int = 0,
        busy_timeout: float | None = None,
        deny: str = "all",
        table: str | None = None,
        nth: int | None = None,
        every: int | None = None,
        times: int | None = 1,
        probability: float | None = None,
        window: tuple[float, float] | None = None,
    ) -> ArmedFault:
        """A SQLite engine error on connections to `db_path` opened from now on.

        `error`: ``full`` (`extra_pages` more pages allowed), ``locked`` (`busy_timeout`
        seconds caps the wait of those connections), ``ioerr``/``interrupt`` (counted
        statements), ``corrupt`` (a page of `table`, or of any table), ``denied`` (`deny`
        ``"all"`` statements or only ``"writes"``).
        """
        db = _path(db_path, "db_path")
        error = _choice(error, "error", SQLITE_ERRORS)
        counted = error in COUNTED_ERRORS
        options: dict[str, Any] = {"db_path": db, "error": error}
        given = {
            "nth": nth,
            "every": every,
            "probability": probability,
            "window": window,
        }
        if not counted:
            bad = [k for k, v in given.items() if v is not None] + (["times"] if times != 1 else [])
            if bad:
                raise FaultArgumentError(
                    f"{bad[0]}={(given | {'times': times})[bad[0]]!r}: sqlite {error!r} holds "
                    "until disarmed; counting options apply to 'ioerr' and 'interrupt' only"
                )
        if isinstance(extra_pages, bool) or not isinstance(extra_pages, int) or extra_pages < 0:
            raise FaultArgumentError(f"extra_pages={extra_pages!r}: must be a whole number >= 0")
        if busy_timeout is not None and (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, int | float)
            or not 0 <= busy_timeout < float("inf")
        ):
            raise FaultArgumentError(f"busy_timeout={busy_timeout!r}: must be seconds >= 0")
        deny = _choice(deny, "deny", ("all", "writes"))
        if table is not None and not isinstance(table, str):
            raise FaultArgumentError(f"table={table!r}: must be a table or index name")
        schedule = self._schedule(nth, every, times, probability, window) if counted else None
        log = self._begin()
        seed = self._seed_for(log, "sqlite", f"{db}:{error}")
        fault = SqliteFault(
            db,
            error,
            log,
            counter=Counter(schedule, seed) if schedule is not None else None,
            seed=seed,
            extra_pages=extra_pages,
            busy_timeout=busy_timeout,
            deny=deny,
            table=table,
        )
        try:
            fault.arm()
        except BaseException:
            fault.disarm()
            for a in fault.attachments:
                detach(a)
            raise
        undo = [fault.disarm, *[lambda a=a: detach(a) for a in fault.attachments]]
        if extra_pages:
            options["extra_pages"] = extra_pages
        if busy_timeout is not None:
            options["busy_timeout"] = busy_timeout
        if deny != "all":
            options["deny"] = deny
        if table is not None:
            options["table"] = table
        if schedule is not None:
            options.update(schedule.options())
        return self._register("sqlite", db, options, undo, lambda: fault.statements, log)

    # -- memory and network ----------------------------------------------------------------------

    def memory_pressure(self, mb: float, *, hold: bool = False) -> ArmedFault:
        """Take `mb` MB from the available memory: simulated (default) or really held."""
        fault = MemoryPressureFault(mb, hold)
        log = self._begin()
        fault.arm()
        log.record("memory_pressure", "memory", 0, "machine", fault.describe())
        options: dict[str, Any] = {"mb": mb}
        if hold:
            options["hold"] = True
        return self._register("memory_pressure", "memory", options, [fault.disarm], None, log)

    def network(self, error: str, host: str | None = None, port: int | None = None) -> ArmedFault:
        """Connections to `host`:`port` (None: any) are refused, time out, reset, or fail DNS."""
        error = _choice(error, "error", NETWORK_ERRORS)
        log = self._begin()
        fault = NetworkFault(error, host, port, log)
        undo = self._arm_attachments(fault.arm, fault.attachments)
        options: dict[str, Any] = {"error": error}
        if host is not None:
            options["host"] = host
        if port is not None:
            options["port"] = port
        return self._register("network", fault.target(), options, undo, lambda: fault.calls, log)

    # -- plans -------------------------------------------------------------------------------

    def arm_kind(self, kind: str, options: dict[str, Any]) -> ArmedFault:
        """Arm the fault `kind` (a method name, see `FAULT_KINDS`) with keyword `options`."""
        if kind not in FAULT_KINDS:
            raise FaultArgumentError(
                f"kind={kind!r}: unknown fault kind; use one of {', '.join(FAULT_KINDS)}"
            )
        method: Callable[..., ArmedFault] = getattr(self, kind)
        return method(**options)

    def arm(self, spec: FaultSpec) -> ArmedFault:
        """Arm one fault described as data."""
        return self.arm_kind(spec.kind, spec.arguments())

    def apply(self, plan: FaultPlan) -> list[ArmedFault]:
        """Arm every fault of `plan`; if one cannot be armed, those armed before are undone."""
        done: list[ArmedFault] = []
        try:
            for spec in plan.faults:
                done.append(self.arm(spec))
        except BaseException:
            for armed in reversed(done):
                armed.disarm()
            raise
        return done

    def plan(self) -> FaultPlan:
        """The faults armed so far (active or not), as a `FaultPlan`."""
        from pytest_edge.faults.plan import FaultPlan, FaultSpec

        with self._lock:
            return FaultPlan(tuple(FaultSpec(f.kind, dict(f.options)) for f in self._armed))

    def report(self) -> str:
        """Seed, armed faults and fired events, for a failing test's report."""
        lines = [f"seed: {self.seed} (replay with --edge-seed={self.seed})"]
        with self._lock:
            armed = list(self._armed)
        lines.append(f"armed ({len(armed)}):")
        lines += [f"  {a.describe()}" for a in armed]
        fired = self.fired
        lines.append(f"fired ({len(fired)}):")
        lines += [f"  {e.describe()}" for e in fired]
        return "\n".join(lines)


__all__ = ["FAULT_KINDS", "ArmedFault", "FaultInjector"]
