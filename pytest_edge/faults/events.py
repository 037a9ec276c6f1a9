"""The log of faults that fired: what, where, which call."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultEvent:
    """One fault that fired.

    `fault` is the arming method (``"fail"``, ``"disk_full"``, ...), `target` what it was armed
    on (a dotted name, a path, a database, a host), `call` the number of the matching call that
    fired (0 for state-like faults, which do not count calls), `where` the concrete place (the
    file path, the caller's ``file:line``, the SQL statement, the address) and `effect` what
    happened (the exception raised or the delay added).
    """

    fault: str
    target: str
    call: int
    where: str
    effect: str
    at: float  # seconds since the injector was created

    def describe(self) -> str:
        call = f" call #{self.call}" if self.call else ""
        return f"{self.fault}({self.target}){call} at {self.where}: {self.effect}"


class EventLog:
    """A thread-safe, append-only list of `FaultEvent`."""

    def __init__(self) -> None:
        self._events: list[FaultEvent] = []
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def record(self, fault: str, target: str, call: int, where: str, effect: str) -> FaultEvent:
        event = FaultEvent(fault, target, call, where, effect, time.monotonic() - self._start)
        with self._lock:
            self._events.append(event)
        return event

    def snapshot(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)
