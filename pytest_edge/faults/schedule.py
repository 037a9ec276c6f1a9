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

The options themselves are declared once, in `pytest_edge.faults.declarations.Schedule`.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

from pytest_edge.faults.declarations import Schedule

__all__ = ["Counter", "Schedule"]


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
