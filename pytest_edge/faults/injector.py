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

import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import MethodType, TracebackType
from typing import Any, Concatenate, ParamSpec, cast, get_type_hints

from pytest_edge.faults.declarations import (
    SCHEDULE_NAMES,
    DiskFull,
    Fail,
    FaultArgs,
    IoError,
    MemoryPressure,
    Network,
    ReadOnly,
    Schedule,
    Slow,
    SlowIo,
    Sqlite,
    fault_args,
)
from pytest_edge.faults.errors import FaultArgumentError
from pytest_edge.faults.events import BoundLog, EventLog, FaultEvent
from pytest_edge.faults.fs import FsRule
from pytest_edge.faults.generic import CallFault
from pytest_edge.faults.kinds import FAULT_KINDS
from pytest_edge.faults.layer import LAYERS, PYTHON, SYSCALL, Layer, chosen_layer
from pytest_edge.faults.memory import MemoryPressureFault
from pytest_edge.faults.net import NetworkFault
from pytest_edge.faults.patching import Attachment, attach, detach, resolve_target
from pytest_edge.faults.plan import FaultPlan, FaultSpec
from pytest_edge.faults.schedule import Counter
from pytest_edge.faults.sqlite import SqliteFault
from pytest_edge.faults.sysfs import SyscallFsFault
from pytest_edge.faults.verdict import FaultVerdict, may_not_fire
from pytest_edge.schema import Invalid

P = ParamSpec("P")


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
    #: where the fault acts: "python" (patched calls) or "syscall" (the LD_PRELOAD library)
    layer: str = "python"
    #: events logged while arming (sqlite "corrupt" damaging its page): not fires
    _setup_events: int = field(default=0, repr=False)
    #: the fire count where it is kept apart from the events (the syscall library's counter)
    _fires: Callable[[], int] | None = field(default=None, repr=False)

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

    @property
    def fires(self) -> int:
        """How many times it fired (events logged while arming are not fires)."""
        if self._fires is not None:
            return self._fires()
        return max(0, len(self.fired) - self._setup_events)

    def verdict(self, test: str = "") -> FaultVerdict:
        """Whether it fired, with the calls that reached it and its layer."""
        calls, fires = self.calls, self.fires
        return FaultVerdict(
            index=self.index,
            kind=self.kind,
            target=self.target,
            layer=self.layer,
            calls=calls,
            fired=fires,
            described=self.spec(),
            maybe=may_not_fire(self.options, calls, fires),
            test=test,
        )

    def disarm(self) -> None:
        """Undo this fault's patches and state; safe to call twice."""
        self.injector.disarm(self)

    def describe(self) -> str:
        state = "" if self.active else " (disarmed)"
        return f"{self.spec()}{state}"

    def spec(self) -> str:
        """``#1 disk_full(path='/x', free_bytes=0)``: its number, kind and options."""
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"#{self.index} {self.kind}({opts})"


class _Arming:
    """The `FaultInjector` method of one fault kind: its checks and docstring are the kind's
    declaration (`pytest_edge.faults.declarations`), `FaultInjector.arm_args` arms it. The
    runtime signature (for help() and ``inspect``) is built on first look: evaluating the
    annotations of nine kinds at import would cost ~15 ms."""

    def __init__(self, record: type[FaultArgs]) -> None:
        self.record = record
        self.__name__ = record.kind
        self.__qualname__ = f"FaultInjector.{record.kind}"
        self.__doc__ = record.__doc__

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else MethodType(self, instance)

    def __call__(self, injector: FaultInjector, /, *args: Any, **kwargs: Any) -> ArmedFault:
        return injector.arm_args(self.record(*args, **kwargs))

    @cached_property
    def __signature__(self) -> inspect.Signature:
        hints = get_type_hints(self.record)  # the plain types, not the Annotated metadata
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        params = inspect.signature(self.record).parameters.values()
        return inspect.Signature(
            [this, *(p.replace(annotation=hints[p.name]) for p in params)],
            return_annotation=ArmedFault,
        )


def _arming(
    record: Callable[P, FaultArgs],
) -> Callable[Concatenate[FaultInjector, P], ArmedFault]:
    """The method arming `record`'s kind, typed with the record's own parameters (ParamSpec),
    so IDEs and mypy see ``io_error(path, on='write', *, nth=None, ...)``."""
    method = _Arming(cast("type[FaultArgs]", record))
    return cast("Callable[Concatenate[FaultInjector, P], ArmedFault]", method)


def _behaviour(args: FaultArgs, *skip: str) -> dict[str, Any]:
    """The options a family's fault object takes: every declared one but the schedule's
    (those go to its `Counter`) and `skip`, so a new option reaches the family unchanged."""
    return {
        o.name: getattr(args, o.name)
        for o in args.declared()
        if o.name not in SCHEDULE_NAMES and o.name not in skip
    }


class FaultInjector:
    """Arms faults until `disarm()` (or the end of a ``with`` block) and logs those that fire.

    `seed` makes ``probability`` draws replayable; `label` (e.g. the test id) is mixed in so
    two tests with the same seed draw independently. `layer` is where filesystem faults act:
    ``"auto"`` (the system-call library when this process was started with it, else Python),
    ``"python"`` (always patch Python) or ``"syscall"`` (raise `SyscallLayerUnavailable`,
    saying why, when the library is not loaded here).
    """

    def __init__(self, seed: int = 0, *, label: str = "", layer: str = "auto") -> None:
        if layer not in LAYERS:
            raise FaultArgumentError(f"one of {', '.join(LAYERS)}", "layer", layer)
        self.seed = seed
        self.label = label
        self.layer = layer
        self._pollers: list[Callable[[], None]] = []
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
        """Every fault that fired, in order: fault, target, call number, where, effect, layer."""
        with self._lock:
            pollers = list(self._pollers)
        for poll in pollers:  # faults of the syscall layer log their fires when read
            poll()
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
        args: FaultArgs,
        target: str,
        resolved: dict[str, Any],
        undo: list[Callable[[], None]],
        calls: Callable[[], int] | None,
        log: BoundLog,
        layer: str = "python",
    ) -> ArmedFault:
        """Keep the armed fault; its options are those given, `resolved` (real paths) replacing."""
        options = {**args.options(), **resolved}
        armed = ArmedFault(args.kind, target, options, self, log.index, undo, calls, layer=layer)
        armed._setup_events = len(armed.fired)
        with self._lock:
            self._armed.append(armed)
        return armed

    def _begin(self, layer: str = PYTHON) -> BoundLog:
        """Number the fault being armed; returns the event sink that tags its events."""
        with self._lock:
            self._count += 1
            return self._log.bound(self._count, layer)

    def _seed_for(self, log: BoundLog, kind: str, target: str) -> str:
        """The random stream of one armed fault: run seed, test, arming number, what."""
        return f"{self.seed}:{self.label}:{log.index}:{kind}:{target}"

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

    def _counter(self, args: FaultArgs, log: BoundLog, target: str) -> Counter | None:
        """The running schedule of a counted fault (None for state-like ones)."""
        if not isinstance(args, Schedule) or not args.counts():
            return None
        return Counter(args, self._seed_for(log, args.kind, target))

    # -- the fault kinds: signatures and checks come from their declarations ---------------------

    disk_full = _arming(DiskFull)
    io_error = _arming(IoError)
    read_only = _arming(ReadOnly)
    slow_io = _arming(SlowIo)
    fail = _arming(Fail)
    slow = _arming(Slow)
    sqlite = _arming(Sqlite)
    memory_pressure = _arming(MemoryPressure)
    network = _arming(Network)

    def arm_args(self, args: FaultArgs) -> ArmedFault:
        """Arm one fault from its checked declaration record."""
        if isinstance(args, DiskFull | IoError | ReadOnly | SlowIo):
            return self._arm_fs(args)
        if isinstance(args, Fail | Slow):
            return self._arm_call(args)
        if isinstance(args, Sqlite):
            return self._arm_sqlite(args)
        if isinstance(args, MemoryPressure):
            return self._arm_memory(args)
        if isinstance(args, Network):
            return self._arm_network(args)
        raise TypeError(f"arm_args({args!r}): not a record of faults.declarations")

    def _arm_fs(self, args: DiskFull | IoError | ReadOnly | SlowIo) -> ArmedFault:
        if self._fs_layer().syscall:
            return self._arm_fs_syscall(args)
        root = os.path.realpath(args.path)
        log = self._begin()
        counter = self._counter(args, log, root)
        rule = FsRule(args.kind, root, log, counter=counter, **_behaviour(args, "path"))
        undo = self._arm_attachments(rule.arm, rule.attachments)
        calls = (lambda: counter.calls) if counter is not None else (lambda: rule.matching_calls)
        return self._register(args, root, {"path": root}, undo, calls, log)

    def _fs_layer(self) -> Layer:
        """The layer filesystem faults are armed at: the syscall library when it is loaded in
        this process (or asked for), else Python; one layer at a time, never both."""
        layer = chosen_layer(self.layer)
        if self.layer == SYSCALL and not layer.syscall:
            from pytest_edge.syscalls import require_active

            require_active("FaultInjector(layer='syscall')")
        return layer

    def _arm_fs_syscall(self, args: DiskFull | IoError | ReadOnly | SlowIo) -> ArmedFault:
        root = os.path.realpath(args.path)
        log = self._begin(SYSCALL)
        options = {o.name: getattr(args, o.name) for o in args.declared()}
        fault = SyscallFsFault(args.kind, root, log, self._seed_for(log, args.kind, root), options)
        with self._lock:
            self._pollers.append(fault.poll)
        armed = self._register(
            args, root, {"path": root}, [fault.disarm], lambda: fault.calls, log, SYSCALL
        )
        armed._fires = lambda: fault.fires
        return armed

    def _arm_call(self, args: Fail | Slow) -> ArmedFault:
        parent, name = resolve_target(args.target)
        log = self._begin()
        counter = self._counter(args, log, args.target)
        assert counter is not None
        hook = CallFault(args.kind, counter, log, **_behaviour(args))
        attachment = attach(parent, name, hook)
        undo = [lambda: detach(attachment)]
        return self._register(args, args.target, {}, undo, lambda: counter.calls, log)

    def _arm_sqlite(self, args: Sqlite) -> ArmedFault:
        db = os.path.realpath(args.db_path)
        log = self._begin()
        seed = self._seed_for(log, "sqlite", f"{db}:{args.error}")
        counter = Counter(args, seed) if args.counts() else None
        fault = SqliteFault(db, log, counter=counter, seed=seed, **_behaviour(args, "db_path"))
        try:
            fault.arm()
        except BaseException:
            fault.disarm()
            for a in fault.attachments:
                detach(a)
            raise
        undo = [fault.disarm, *[lambda a=a: detach(a) for a in fault.attachments]]
        return self._register(args, db, {"db_path": db}, undo, lambda: fault.statements, log)

    def _arm_memory(self, args: MemoryPressure) -> ArmedFault:
        fault = MemoryPressureFault(**_behaviour(args))
        log = self._begin()
        fault.arm()
        log.record("memory_pressure", "memory", 0, "machine", fault.describe())
        return self._register(args, "memory", {}, [fault.disarm], None, log)

    def _arm_network(self, args: Network) -> ArmedFault:
        log = self._begin()
        fault = NetworkFault(log=log, **_behaviour(args))
        undo = self._arm_attachments(fault.arm, fault.attachments)
        return self._register(args, fault.target(), {}, undo, lambda: fault.calls, log)

    # -- plans -------------------------------------------------------------------------------

    def arm_kind(self, kind: str, options: dict[str, Any]) -> ArmedFault:
        """Arm the fault `kind` (a method name, see `FAULT_KINDS`) with keyword `options`."""
        return self.arm_args(fault_args(kind)(**options))

    def arm(self, spec: FaultSpec) -> ArmedFault:
        """Arm one fault described as data."""
        return self.arm_args(spec.record())

    def apply(self, plan: FaultPlan) -> list[ArmedFault]:
        """Arm every fault of `plan`; if one cannot be armed, those armed before are undone.

        An arming error (a target that does not import, a missing database) names the fault's
        index: ``faults[1].target='app.nope': ...``.
        """
        done: list[ArmedFault] = []
        try:
            for i, spec in enumerate(plan.faults):
                try:
                    done.append(self.arm(spec))
                except Invalid as exc:
                    raise exc.within(f"faults[{i}]") from None
        except BaseException:
            for armed in reversed(done):
                armed.disarm()
            raise
        return done

    def plan(self) -> FaultPlan:
        """The faults armed so far (active or not), as a `FaultPlan`."""
        with self._lock:
            return FaultPlan(tuple(FaultSpec(f.kind, dict(f.options)) for f in self._armed))

    def verdicts(self, test: str = "") -> list[FaultVerdict]:
        """Whether each fault armed so far (active or not) fired, in arming order."""
        with self._lock:
            armed = list(self._armed)
        return [a.verdict(test) for a in armed]

    def report(self) -> str:
        """Seed, armed faults (whether each fired) and fired events, for a test's report."""
        lines = [f"seed: {self.seed} (replay with --edge-seed={self.seed})"]
        verdicts = self.verdicts()
        lines.append(f"armed ({len(verdicts)}):")
        lines += [f"  {v.line()}" for v in verdicts]
        fired = self.fired
        lines.append(f"fired ({len(fired)}):")
        lines += [f"  {e.describe()}" for e in fired]
        return "\n".join(lines)


__all__ = ["FAULT_KINDS", "ArmedFault", "FaultInjector"]
