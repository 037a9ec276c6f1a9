"""The log of faults that fired: what, where, which call."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FaultEvent:
    """One fault that fired.

    `fault` is the arming method (``"fail"``, ``"disk_full"``, ...), `target` what it was armed
    on (a dotted name, a path, a database, a host), `call` the number of the matching call that
    fired (0 for state-like faults, which do not count calls), `where` the concrete place (the
    file path, the caller's ``file:line``, the SQL statement, the address) and `effect` what
    happened (the exception raised or the delay added). `index` is the armed fault's number in
    its injector (``#1`` is the first armed), as shown in the report. `layer` is where the I/O
    was seen and failed: ``"python"`` (patched Python calls) or ``"syscall"`` (the
    ``LD_PRELOAD`` library, `pytest_edge.syscalls`).
    """

    fault: str
    target: str
    call: int
    where: str
    effect: str
    at: float  # seconds since the injector was created
    index: int = 0
    layer: str = "python"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        call = f" call #{self.call}" if self.call else ""
        number = f"#{self.index} " if self.index else ""
        return (
            f"{number}{self.fault}({self.target}){call} at {self.where} "
            f"[{self.layer} layer]: {self.effect}"
        )


class EventSink(Protocol):
    """Where a fault family records what fired."""

    def record(self, fault: str, target: str, call: int, where: str, effect: str) -> FaultEvent: ...


class EventLog:
    """A thread-safe, append-only list of `FaultEvent`."""

    def __init__(self) -> None:
        self._events: list[FaultEvent] = []
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def record(
        self,
        fault: str,
        target: str,
        call: int,
        where: str,
        effect: str,
        index: int = 0,
        layer: str = "python",
    ) -> FaultEvent:
        at = time.monotonic() - self._start
        event = FaultEvent(fault, target, call, where, effect, at, index, layer)
        with self._lock:
            self._events.append(event)
        return event

    def bound(self, index: int, layer: str = "python") -> BoundLog:
        """A sink that tags every event with the armed fault's `index` and its `layer`."""
        return BoundLog(self, index, layer)

    def snapshot(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)


class BoundLog:
    """The `EventLog` of one armed fault."""

    def __init__(self, log: EventLog, index: int, layer: str = "python") -> None:
        self._log = log
        self.index = index
        self.layer = layer

    def record(self, fault: str, target: str, call: int, where: str, effect: str) -> FaultEvent:
        return self._log.record(fault, target, call, where, effect, self.index, self.layer)
