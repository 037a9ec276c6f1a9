"""When a counted fault fires: one set of counting rules shared by every fault family.

A counted fault (``fail``, ``slow``, ``io_error``, sqlite ``ioerr``/``interrupt``) numbers the
calls that reach it 1, 2, 3, ... from the moment it is armed. A call can fire when

* its number is ``nth`` or later, and, when ``every`` is given, it is ``nth``, ``nth + every``,
  ``nth + 2*every``, ... (``nth`` defaults to ``every`` when only ``every`` is given, else to 1:
  ``every=3`` alone means calls 3, 6, 9, ...; ``nth=2, every=3`` means calls 2, 5, 8, ...);
* the time since arming lies in ``window = (start, end)`` seconds (end exclusive), if given;
* the seeded draw succeeds, if ``probability`` is given (drawn only for calls that passed the
  rules above, so a replay with the same seed and the same calls fires the same ones);

and at most ``times`` calls fire (default 1; ``None`` means no limit).
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from dataclasses import dataclass

from pytest_edge.faults.errors import FaultArgumentError


@dataclass(frozen=True)
class Schedule:
    """The counting options of one fault, validated."""

    nth: int | None = None
    every: int | None = None
    times: int | None = 1
    probability: float | None = None
    window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("nth", "every"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise FaultArgumentError(
                    f"{name}={value!r}: must be a whole number >= 1 (calls are numbered from 1)"
                )
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1
        ):
            raise FaultArgumentError(
                f"times={self.times!r}: must be a whole number >= 1, or None for no limit"
            )
        p = self.probability
        if p is not None and (
            isinstance(p, bool)
            or not isinstance(p, int | float)
            or not math.isfinite(p)
            or not 0.0 <= p <= 1.0
        ):
            raise FaultArgumentError(f"probability={p!r}: must be a number from 0 to 1")
        if self.window is not None:
            w = self.window
            if (
                not isinstance(w, tuple | list)
                or len(w) != 2
                or not all(
                    isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                    for x in w
                )
                or not 0 <= w[0] < w[1]
            ):
                raise FaultArgumentError(
                    f"window={w!r}: must be (start, end) seconds after arming with 0 <= start < end"
                )
            object.__setattr__(self, "window", (float(w[0]), float(w[1])))

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

    def options(self) -> dict[str, object]:
        """The options that differ from the defaults, as keyword arguments."""
        out: dict[str, object] = {}
        if self.nth is not None:
            out["nth"] = self.nth
        if self.every is not None:
            out["every"] = self.every
        if self.times != 1:
            out["times"] = self.times
        if self.probability is not None:
            out["probability"] = self.probability
        if self.window is not None:
            out["window"] = list(self.window)
        return out


class Counter:
    """The running state of one counted fault: call number, fires so far, seeded draws."""

    def __init__(self, schedule: Schedule, seed: str) -> None:
        self.schedule = schedule
        self.calls = 0
        self.fires = 0
        self._numbers = itertools.count(1)  # next() is atomic under the GIL
        self._first = schedule.first
        self._limit = schedule.times if schedule.times is not None else -1
        self._rng = random.Random(seed)  # noqa: S311 - replayable draws, not secrets
        self._armed_at = time.monotonic()
        self._lock = threading.Lock()

    def tick(self) -> int:
        """Count one call; return its number if it fires, else 0."""
        call = next(self._numbers)
        self.calls = call
        # Fast path for the common "armed but not firing" case: no lock, no draw.
        if call < self._first or self.fires == self._limit:
            return 0
        s = self.schedule
        with self._lock:
            if self.fires == self._limit:
                return 0
            if not s.eligible(call):
                return 0
            if s.window is not None:
                elapsed = time.monotonic() - self._armed_at
                if not s.window[0] <= elapsed < s.window[1]:
                    return 0
            if s.probability is not None and self._rng.random() >= s.probability:
                return 0
            self.fires += 1
            return call
