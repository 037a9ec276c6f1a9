"""Drift: how far a benchmark's time can move between runs of unchanged code.

The samples of one run are not independent of the run: the whole run shares one process,
one memory layout and one state of the machine, so a rank test on them says nothing about
the next run. A comparison therefore allows for a drift, the largest of:

- a floor (`FLOOR`, 5%): fresh processes of unchanged code differ by a few percent even on a
  quiet machine (memory layout, hash seed), which no calibration can see; between two single
  runs a measured 30% (`TWO_RUN_FLOOR`): a history measures it instead;
- the calibration set (`pytest_edge.bench.calibration`), when both sides timed it: a
  CPU-bound benchmark's times are divided by the CPU loop's (`cpu_scales`) and the loop's
  move during a run is left; any other benchmark allows how far the loops moved between
  the runs, and the fsync loop during the benchmark;
- a history: `HISTORY_Z` robust standard deviations of the saved runs' times (from their
  median absolute deviation, so one noisy saved run does not widen it);
- for two runs without calibration, a prior (`PRIOR_TWO_RUNS`, 100%): identical code was
  measured 1.69x apart between two fresh processes on the development machine (issue 13);
- for a benchmark not known to be CPU-bound (`io_swing`): how far its own time swung within
  any of the runs compared, since I/O held back by other processes can hold a whole run.

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
# Two single runs, calibrated: unchanged CPU-bound code, normalized by the CPU loop, still
# moved by up to 26% between two fresh processes on the shared 2-core development machine
# (8 tries, tests/benchmarks/test_noisy_verdicts.py), with the loop itself steady: that much
# no calibration sees, and only a history or `pytest-edge ab` can narrow it.
TWO_RUN_FLOOR = 0.30
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
TWO_RUN_FLOOR_DRIFT = Drift(
    math.log1p(TWO_RUN_FLOOR),
    f"floor for two single runs: unchanged code moved up to {TWO_RUN_FLOOR:.0%} between two "
    "fresh processes on a shared runner with its calibration steady",
)


def calibration_drift(baseline: Sequence[Calibration], current: Calibration) -> Drift:
    """How far the calibration moved between the baseline run(s) and the current run.

    A CPU-bound benchmark (both sides say so): how far the CPU loop moved between the runs
    (current against the median of the baselines). Against several saved runs only the move
    beyond the calibration's own spread between them counts (`HISTORY_Z` robust SDs): the
    history's spread already covers what the machine usually does, and the benchmark's own
    spread over those runs says what that did to it. Otherwise (I/O-bound) the fsync loop
    counts as well, and also its move *during* the current benchmark: I/O latency that
    swings within a run (here fsync takes 0.3 ms or 8 ms, depending on other processes'
    writes) swings the benchmark as well.
    """
    cpu_bound = all(c.kinds() == ("cpu",) for c in (*baseline, current))
    worst = Drift(0.0, "calibration: no movement")
    for kind in ("cpu",) if cpu_bound else KINDS:
        levels = [c.level(kind) for c in baseline]
        spread = HistorySpread.of(levels)
        between = abs(math.log(current.level(kind)) - spread.center)
        words = "between the runs"
        if len(levels) > 1:
            between = max(0.0, between - spread.drift().log)
            words = f"beyond its spread over the {len(levels)} saved runs"
        worst = largest(
            worst,
            Drift(
                between,
                f"calibration: the {kind} loop moved {math.expm1(between):.0%} {words}",
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


def cpu_bound(results: Sequence[BenchmarkResult]) -> bool:
    """Every run's calibration record says the benchmark is CPU-bound."""
    return all(r.calibration is not None and r.calibration.kinds() == ("cpu",) for r in results)


def io_swing(results: Sequence[BenchmarkResult]) -> Drift:
    """How far the benchmark's own time swung within a run: p90 over the fastest round.

    For a benchmark not known to be CPU-bound. Other processes' I/O can hold every round
    of a run back (here fsync took 0.3 ms in one run and 48 ms at best in the next), and a
    run's fastest round can land anywhere in the range its latency covers within one run.
    """
    worst, where = 0.0, ""
    for index, result in enumerate(results):
        if result.samples and len(result.samples) > 1:
            ordered = sorted(result.samples)
            high = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        else:
            high = result.q3
        swing = math.log(max(high, result.minimum) / result.minimum)
        if swing > worst:
            worst, where = swing, f"run {index + 1} of {len(results)}"
    return Drift(
        worst,
        f"not CPU-bound: its time swung {math.exp(worst):.1f}x within a run ({where}; "
        "p90 over the fastest round)",
    )


def _missing(baseline: BenchmarkResult, current: BenchmarkResult) -> str:
    sides = [
        name
        for name, result in (("the baseline", baseline), ("the current run", current))
        if result.calibration is None
    ]
    return " and ".join(sides)


def cpu_scales(results: Sequence[BenchmarkResult]) -> list[float] | None:
    """Each run's CPU loop time, when every run calibrated and calls the benchmark CPU-bound.

    A CPU-bound benchmark's times are divided by them: the calibration tracks how fast this
    process's CPU was (measured here: a benchmark's fastest round moved 25% between fresh
    processes, its ratio to the CPU loop 4%).
    """
    scales = [r.calibration.level("cpu") for r in results if r.calibration is not None]
    if len(scales) != len(results) or not cpu_bound(results):
        return None
    return scales


def _during_cpu(results: Sequence[BenchmarkResult]) -> Drift:
    """The CPU loop's largest move during one run: the error of normalizing by it."""
    during = max(r.calibration.spread("cpu") for r in results if r.calibration is not None)
    return Drift(
        during,
        f"calibration: times normalized by the cpu loop, which moved {math.expm1(during):.0%} "
        "during a run",
    )


def two_run_drift(
    baseline: BenchmarkResult, current: BenchmarkResult, normalized: bool = False
) -> Drift:
    """Drift between two single runs: measured by the calibration, else the prior.

    *normalized*: the times were divided by the CPU loop (`cpu_scales`), whose move between
    the runs is then corrected for; only its move during a run is left as drift.
    """
    if normalized:
        return largest(TWO_RUN_FLOOR_DRIFT, _during_cpu([baseline, current]))
    swing = None if cpu_bound([baseline, current]) else io_swing([baseline, current])
    if baseline.calibration is not None and current.calibration is not None:
        calibration = calibration_drift([baseline.calibration], current.calibration)
        return largest(TWO_RUN_FLOOR_DRIFT, calibration, swing)
    prior = Drift(
        math.log1p(PRIOR_TWO_RUNS),
        f"prior: no calibration in {_missing(baseline, current)}, so up to "
        f"{PRIOR_TWO_RUNS:.0%} is assumed (unchanged code was measured 1.69x apart "
        "between two fresh processes on a shared machine)",
    )
    return largest(prior, swing)


@dataclass(frozen=True)
class HistorySpread:
    """The saved runs' times on a log scale: their median and robust standard deviation."""

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
    times: Sequence[float],
    history: Sequence[BenchmarkResult],
    current: BenchmarkResult,
    normalized: bool = False,
) -> Drift:
    """Drift of a run against saved runs (their *times*): spread, calibration, the floor.

    With a single saved run there is no spread to see: it is two runs. *normalized*: the
    times were divided by the CPU loop (`cpu_scales`).
    """
    if len(history) < 2:
        return two_run_drift(history[0], current, normalized)
    spread = HistorySpread.of(times).drift()
    if normalized:
        # The saved runs' times were normalized too: their spread includes the error of
        # normalizing, so the loop's move during a run is not added again.
        return largest(FLOOR_DRIFT, spread)
    saved = [r.calibration for r in history if r.calibration is not None]
    calibration = None
    if saved and current.calibration is not None:
        calibration = calibration_drift(saved, current.calibration)
    runs = [*history, current]
    swing = None if cpu_bound(runs) else io_swing(runs)
    return largest(FLOOR_DRIFT, spread, calibration, swing)


PROCESSES_KEY = "processes"  # extra_info["edge"]["processes"], written by `pytest-edge repeat`


def process_times(result: BenchmarkResult, statistic: str) -> list[float] | None:
    """Each fresh process's time by *statistic*, when the run merged 2 or more (else None)."""
    raw = result.edge.get(PROCESSES_KEY)
    if not isinstance(raw, list) or len(raw) < 2:
        return None
    times = [p.get(statistic) if isinstance(p, dict) else None for p in raw]
    if not all(isinstance(t, int | float) and math.isfinite(t) and t > 0 for t in times):
        return None
    return [float(t) for t in times if t is not None]


def process_drift(results: Sequence[BenchmarkResult], statistic: str) -> Drift | None:
    """The spread between a multi-process run's processes (`HistorySpread`), the widest of
    the runs that have one; None when none does.

    Fresh processes of one run see different memory layouts, hash seeds and machine states:
    their spread is the drift a single process of the other side may land anywhere in.
    """
    spreads = [
        HistorySpread.of(times)
        for times in (process_times(r, statistic) for r in results)
        if times is not None
    ]
    if not spreads:
        return None
    widest = max(spreads, key=lambda s: s.drift().log)
    log = widest.drift().log
    return Drift(
        log,
        f"drift from {widest.runs} processes: {math.expm1(log):.0%} ({HISTORY_Z:g} robust "
        f"SDs of each process's {statistic}, which spread {math.expm1(widest.sd):.1%})",
    )


def run_time(result: BenchmarkResult, statistic: str, pooled: float) -> float:
    """A run's time: the median of its processes' times for a multi-process run (the pooled
    rounds' min would be the luckiest process), else *pooled* (its rounds' statistic)."""
    times = process_times(result, statistic)
    return median(times) if times is not None else pooled


def processes_drift(results: Sequence[BenchmarkResult], processes: Drift) -> Drift:
    """Drift of two runs when one or both ran several processes: their measured spread
    (`process_drift`) stands in for the two-run floor and the calibration, which only infer
    it; the floor, and the swing within a run of a benchmark not known to be CPU-bound, stay."""
    swing = None if cpu_bound(results) else io_swing(results)
    return beside(largest(FLOOR_DRIFT, swing), processes)


def beside(drift: Drift, processes: Drift) -> Drift:
    """The larger of *drift* and the processes' spread; the spread is named either way, so a
    report says what the processes measured even when a floor is larger."""
    if processes.log >= drift.log:
        return processes
    return Drift(drift.log, f"{drift.source}; {processes.source}, within it")
