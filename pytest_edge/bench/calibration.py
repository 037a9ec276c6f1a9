"""The calibration set: a fixed CPU loop and fsync loop timed around every benchmark.

The same code timed in two runs tells whether the *machine* moved between them (another
job took a core, the disk got busy), which the benchmark's own samples cannot: a run whose
calibration moved by X% cannot show a change smaller than about X%. Each benchmark test is
bracketed: the set is timed just before the test and just after it (a few ms each), so the
record also says whether the machine moved *during* that benchmark.

The record lives in the benchmark's ``extra_info["edge"]["calibration"]`` (pytest-benchmark's
format stays the format; ``machine_info`` is left alone because pytest-benchmark warns on
every ``--benchmark-compare`` when it differs)::

    {"cpu_s": [before, after], "fsync_s": [before, after], "cpu_fraction": 0.97}

``cpu_fraction`` is the share of the test's wall time its thread was on a CPU or waiting for
one (Linux ``/proc/thread-self/schedstat``: CPU time plus run-queue wait; elsewhere process
CPU time), i.e. not blocked on I/O. Waiting for a CPU counts, so a CPU-bound benchmark on a
contended machine stays CPU-bound. At 0.9 or more the benchmark counts as CPU-bound and only
the CPU loop's drift applies to it; below, the larger of the two loops' drift applies.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = ("cpu", "fsync")
CPU_LOOP = 20_000  # iterations of the CPU loop: about 1-2 ms on the development machine
FSYNC_BYTES = 4096  # one 4 KiB page written and fsynced per repetition
REPEATS = 5  # each loop timed this many times per point; the fastest is kept
CPU_BOUND = 0.9  # cpu_fraction at or above which a benchmark counts as CPU-bound
_SCHEDSTAT = Path("/proc/thread-self/schedstat")


@dataclass(frozen=True)
class Calibration:
    """The calibration set timed just before and just after one benchmark (seconds)."""

    cpu_s: tuple[float, float]
    fsync_s: tuple[float, float]
    cpu_fraction: float | None = None

    def pair(self, kind: str) -> tuple[float, float]:
        return self.cpu_s if kind == "cpu" else self.fsync_s

    def level(self, kind: str) -> float:
        """The loop's time around this benchmark: the faster of before and after.

        Other processes only add time, so the faster point is the one a short burst of
        theirs did not hit; a lasting change of the machine moves both.
        """
        return min(self.pair(kind))

    def spread(self, kind: str) -> float:
        """How far the loop moved during the benchmark: ``|log(after / before)|``."""
        before, after = self.pair(kind)
        return abs(math.log(after / before))

    def kinds(self) -> tuple[str, ...]:
        """The loops whose drift applies: the CPU loop alone for a CPU-bound benchmark."""
        if self.cpu_fraction is not None and self.cpu_fraction >= CPU_BOUND:
            return ("cpu",)
        return KINDS

    def to_json(self) -> dict[str, object]:
        return {
            "cpu_s": list(self.cpu_s),
            "fsync_s": list(self.fsync_s),
            "cpu_fraction": self.cpu_fraction,
        }


def cpu_loop(iterations: int = CPU_LOOP) -> float:
    """Seconds for a fixed pure-Python loop (the interpreter's speed on this core)."""
    start = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i
    return time.perf_counter() - start


def fsync_loop(directory: Path) -> float:
    """Seconds to write one page to a file in *directory* and fsync it."""
    path = directory / "calibration.bin"
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"c" * FSYNC_BYTES)
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


class Calibrator:
    """Times the calibration set; its scratch directory is removed by `close`.

    The fsync loop writes to the system temporary directory, where pytest's ``tmp_path``
    (and so most fsync-bound benchmarks) also writes.
    """

    def __init__(self, repeats: int = REPEATS) -> None:
        self.repeats = repeats
        self._directory: Path | None = None

    def point(self) -> tuple[float, float]:
        """One point: the fastest of the repeats of the CPU loop and of the fsync loop.

        The fastest, as comparisons take each run's fastest round by default: it measures
        the machine's speed (clock, the host's other tenants, the disk), not the luck of
        one 10 ms window against other processes' bursts.
        """
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="pytest-edge-calibration-"))
        cpu = min(cpu_loop() for _ in range(self.repeats))
        fsync = min(fsync_loop(self._directory) for _ in range(self.repeats))
        return cpu, fsync

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def busy_seconds() -> float:
    """This thread's time on a CPU or in the run queue (else the process's CPU time)."""
    try:
        on_cpu, waiting = _SCHEDSTAT.read_text().split()[:2]
        return (int(on_cpu) + int(waiting)) / 1e9
    except (OSError, ValueError):
        return time.process_time()


@dataclass
class Bracket:
    """One benchmark test being bracketed: the point before it and its clocks at the start."""

    before: tuple[float, float]
    wall_start: float
    busy_start: float

    @classmethod
    def start(cls, calibrator: Calibrator) -> Bracket:
        before = calibrator.point()
        return cls(before, time.perf_counter(), busy_seconds())

    def finish(self, calibrator: Calibrator) -> Calibration:
        wall = time.perf_counter() - self.wall_start
        busy = busy_seconds() - self.busy_start
        fraction = min(1.0, max(0.0, busy / wall)) if wall > 0 else None
        after = calibrator.point()
        return Calibration((self.before[0], after[0]), (self.before[1], after[1]), fraction)
