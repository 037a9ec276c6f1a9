"""Drift: how far a benchmark's median can move between runs of unchanged code.

The samples of one run are not independent of the run: the whole run shares one process,
one memory layout and one state of the machine, so a rank test on them says nothing about
the next run. A comparison therefore allows for a drift, the largest of:

- a floor (`FLOOR`, 5%): fresh processes of unchanged code differ by a few percent even on a
  quiet machine (memory layout, hash seed), which no calibration can see;
- the calibration set (`pytest_edge.bench.calibration`), when both sides timed it: how far
  its loops moved between the runs around this benchmark, or during one of them;
- a history: `HISTORY_Z` robust standard deviations of the saved runs' medians (from their
  median absolute deviation, so one noisy saved run does not widen it);
- for two runs without calibration, a prior (`PRIOR_TWO_RUNS`, 100%): identical code was
  measured 1.69x apart between two fresh processes on the development machine (issue 13).

Drifts are kept as the log of the largest time ratio drift alone could produce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from pytest_edge.bench.calibration import KINDS, Calibration
from pytest_edge.bench.data import BenchmarkResult

FLOOR = 0.05
PRIOR_TWO_RUNS = 1.0
HISTORY_Z = 3.0
# Median absolute deviation to standard deviation, for normally distributed values. The MAD
# of 3 runs is a rough estimate (the smaller of two deviations): the floor and the
# calibration are what guard a history whose runs happened to agree.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Drift:
    """The largest change drift alone could produce (as a log ratio), and where it came from."""

    log: float
    source: str

    @property
    def relative(self) -> float:
        """The drift as a relative change: 0.12 is 12%."""
        return math.expm1(self.log)


def largest(*drifts: Drift | None) -> Drift:
    """The largest of the drifts given (at least one must not be None)."""
    known = [d for d in drifts if d is not None]
    return max(known, key=lambda d: d.log)


FLOOR_DRIFT = Drift(
    math.log1p(FLOOR),
    f"floor: fresh processes of unchanged code differ by up to {FLOOR:.0%}",
)


def calibration_drift(baseline: Sequence[Calibration], current: Calibration) -> Drift:
    """How far the calibration moved between the baseline run(s) and the current run.

    A CPU-bound benchmark (both sides say so): how far the CPU loop moved between the runs
    (current against the median of the baselines). Otherwise also the fsync loop's move
    between the runs, and its move *during* the current benchmark: I/O latency that swings
    within a run (here fsync takes 0.4 ms or 8 ms, depending on other processes' writes)
    swings the benchmark's median as well.
    """
    cpu_bound = all(c.kinds() == ("cpu",) for c in (*baseline, current))
    worst = Drift(0.0, "calibration: no movement")
    for kind in ("cpu",) if cpu_bound else KINDS:
        level = median(c.level(kind) for c in baseline)
        between = abs(math.log(current.level(kind) / level))
        worst = largest(
            worst,
            Drift(
                between,
                f"calibration: the {kind} loop moved {math.expm1(between):.0%} between the runs",
            ),
        )
        if kind == "fsync":
            during = current.spread(kind)
            worst = largest(
                worst,
                Drift(
                    during,
                    f"calibration: the fsync loop moved {math.expm1(during):.0%} during "
                    "the benchmark",
                ),
            )
    return worst


def _missing(baseline: BenchmarkResult, current: BenchmarkResult) -> str:
    sides = [
        name
        for name, result in (("the baseline", baseline), ("the current run", current))
        if result.calibration is None
    ]
    return " and ".join(sides)


def two_run_drift(baseline: BenchmarkResult, current: BenchmarkResult) -> Drift:
    """Drift between two single runs: measured by the calibration, else the prior."""
    if baseline.calibration is not None and current.calibration is not None:
        return largest(FLOOR_DRIFT, calibration_drift([baseline.calibration], current.calibration))
    return Drift(
        math.log1p(PRIOR_TWO_RUNS),
        f"prior: no calibration in {_missing(baseline, current)}, so up to "
        f"{PRIOR_TWO_RUNS:.0%} is assumed (unchanged code was measured 1.69x apart "
        "between two fresh processes on a shared machine)",
    )


@dataclass(frozen=True)
class HistorySpread:
    """The saved runs' medians on a log scale: their median and robust standard deviation."""

    center: float
    sd: float
    runs: int

    @classmethod
    def of(cls, times: Sequence[float]) -> HistorySpread:
        """From each saved run's time (seconds)."""
        logs = [math.log(t) for t in times]
        center = median(logs)
        mad = median(abs(v - center) for v in logs)
        return cls(center, MAD_TO_SD * mad, len(logs))

    def drift(self) -> Drift:
        """`HISTORY_Z` SDs of a new run's distance to the center (center uncertain too)."""
        log = HISTORY_Z * self.sd * math.sqrt(1.0 + 1.0 / self.runs)
        return Drift(
            log,
            f"history: the {self.runs} saved runs spread {math.expm1(self.sd):.1%} "
            f"(robust SD from their MAD), {HISTORY_Z:g} SDs allowed",
        )


def history_drift(
    times: Sequence[float], history: Sequence[BenchmarkResult], current: BenchmarkResult
) -> Drift:
    """Drift of a run against saved runs (their *times*): spread, calibration, the floor.

    With a single saved run there is no spread to see: it is two runs.
    """
    if len(history) < 2:
        return two_run_drift(history[0], current)
    spread = HistorySpread.of(times).drift()
    saved = [r.calibration for r in history if r.calibration is not None]
    calibration = None
    if saved and current.calibration is not None:
        calibration = calibration_drift(saved, current.calibration)
    return largest(FLOOR_DRIFT, spread, calibration)
