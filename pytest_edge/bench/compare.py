"""Comparing benchmark runs: two runs, a run against a history, and verdicts.

Each run's time is a statistic of its rounds (its min by default, as `pytest-edge ab`). A
benchmark is a regression only when the change is significant within the runs (that
statistic against its order-statistics error; for medians Mann-Whitney U, p <
`DEFAULT_ALPHA`; without raw samples, non-overlapping 95% intervals of the medians, and the
result says so), larger than the threshold, AND larger than the drift between runs
(`pytest_edge.bench.drift`) combined with the within-run uncertainty. Where the
drift is too large to tell, the verdict is ``inconclusive`` with the smallest change the
comparison could have detected: never ``slower (REGRESSION)`` and never ``same``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import NormalDist, median
from typing import Any

from pytest_edge.bench.data import BadBenchmarkInput, BenchmarkResult, BenchmarkRun
from pytest_edge.bench.drift import (
    Drift,
    HistorySpread,
    beside,
    cpu_scales,
    history_drift,
    process_drift,
    processes_drift,
    run_time,
    two_run_drift,
)
from pytest_edge.bench.stats import (
    DETECTION_POWER,
    STATISTICS,
    Location,
    RatioEstimate,
    location,
    mann_whitney_u,
    min_attainable_p,
)
from pytest_edge.report.model import BoxSeries
from pytest_edge.schema import is_number

DEFAULT_THRESHOLD = 0.10
# Strict, as asv does: on thousands of benchmarks a looser p would flag noise every day.
# With the default rounds (`DEFAULT_MIN_ROUNDS` a side) the exact test can go far below it.
DEFAULT_ALPHA = 0.001
DEFAULT_HISTORY_RUNS = 5
# Each run's time is its fastest round by default, as `pytest-edge ab` does: other processes
# only ever add time, so on a shared machine the low end of a run moves least between runs.
DEFAULT_STATISTIC = "min"
# Fewer rounds than this a side: a min or p10 and its error mean nothing, no verdict.
MIN_SAMPLES = 10
STATISTIC_HELP = (
    "each run's time compared: min (default: other processes only add time, so the fastest "
    "round moves least between runs), p10, or median (the typical round, contention included)"
)
# 95% interval of a median from its IQR (the "notch" of a box plot, McGill et al. 1978).
_NOTCH = 1.57
THRESHOLD_HELP = "a relative change: '10%' or '0.10' (default 10%)"


def parse_threshold(text: str | float) -> float:
    """``'10%'`` or ``'0.10'`` -> 0.10; anything else is a `BadBenchmarkInput` saying why."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BadBenchmarkInput(f"threshold {text!r} is not {THRESHOLD_HELP}") from None
    if not raw.endswith("%") and value >= 1.0:
        # "10" could mean 10% or 1000%: a bare number must be a fraction.
        raise BadBenchmarkInput(
            f"threshold {text!r} is ambiguous: write {raw}% or {value / 100:g} ({THRESHOLD_HELP})"
        )
    if not math.isfinite(value) or not 0.0 < value < 10.0:
        raise BadBenchmarkInput(
            f"threshold {text!r} must be above 0 and below 1000%: {THRESHOLD_HELP}"
        )
    return value


def threshold_type(text: str) -> float:
    """`parse_threshold` as an argparse ``type=``: the CLI's and the plugin's threshold options."""
    try:
        return parse_threshold(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class Verdict(StrEnum):
    """A benchmark's verdict; `label` is how every report and the terminal spell it."""

    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"
    INCONCLUSIVE = "inconclusive"
    NEW = "new"
    MISSING = "missing"

    @property
    def label(self) -> str:
        return "slower (REGRESSION)" if self is Verdict.SLOWER else str(self)


# Exit statuses of a comparison (the `pytest-edge compare` command's; pytest's own are 0/1).
EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3  # only with --fail-on-inconclusive: 1 stays "a regression"
INCONCLUSIVE_ADVICE = (
    "inconclusive: the drift between runs is larger than the change this comparison could "
    "tell apart; re-run it against a history of 3 or more saved runs "
    "(--edge-compare=history) or with `pytest-edge ab`, which interleaves fresh processes"
)


class Distribution(BoxSeries):
    """Five-number summary of one side's times in seconds (a chart's box, before scaling)."""

    @classmethod
    def of(cls, label: str, result: BenchmarkResult) -> Distribution:
        if result.samples:
            # Tukey whiskers (1.5 IQR) and the samples beyond as outliers, for the charts.
            return cls.from_samples(label, result.samples)
        return cls(
            label,
            result.minimum,
            result.q1,
            result.median,
            result.q3,
            result.maximum,
            result.rounds,
        )


def _quantiles(ordered: Sequence[float]) -> tuple[float, float, float]:
    def at(fraction: float) -> float:
        position = fraction * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(0.25), at(0.5), at(0.75)


@dataclass(frozen=True)
class BenchmarkComparison:
    """The verdict on one benchmark, with the evidence behind it."""

    fullname: str
    group: str | None
    verdict: Verdict
    baseline_median: float | None
    current_median: float | None
    ratio: RatioEstimate | None = None
    p_value: float | None = None
    method: str = ""
    # Smallest relative change this comparison could have flagged (inf: none at all).
    detectable_change: float | None = None
    note: str = ""
    distributions: tuple[Distribution, ...] = ()
    history: tuple[tuple[str, float], ...] = ()  # (run label, median) oldest first
    unit: str | None = None
    items: float | None = None
    drift: Drift | None = None  # the between-run drift allowed for, and why

    @property
    def regression(self) -> bool:
        return self.verdict is Verdict.SLOWER

    @property
    def label(self) -> str:
        return self.verdict.label

    def throughput(self, seconds: float | None) -> float | None:
        """Items per second for a time per call, when the benchmark declared its items."""
        if seconds is None or not self.items or seconds <= 0:
            return None
        return self.items / seconds


@dataclass(frozen=True)
class Comparison:
    """A whole comparison: settings, warnings and one result per benchmark."""

    mode: str  # "two runs" | "history" | "A/B"
    baseline_source: str
    current_source: str
    threshold: float
    alpha: float
    results: tuple[BenchmarkComparison, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def regressions(self) -> tuple[BenchmarkComparison, ...]:
        return tuple(r for r in self.results if r.regression)

    @property
    def inconclusive(self) -> tuple[BenchmarkComparison, ...]:
        return tuple(r for r in self.results if r.verdict is Verdict.INCONCLUSIVE)

    @property
    def exit_code(self) -> int:
        """1 when anything regressed beyond the threshold, else 0."""
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    def exit_status(self, fail_on_inconclusive: bool = False) -> int:
        """`exit_code`, or `EXIT_INCONCLUSIVE` for an inconclusive one when asked to fail."""
        if self.regressions:
            return EXIT_REGRESSION
        if fail_on_inconclusive and self.inconclusive:
            return EXIT_INCONCLUSIVE
        return EXIT_OK


def machine_warning(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """A warning when the two runs' ``machine_info`` differ, naming the differing keys."""
    if not baseline or not current:
        return None
    keys = sorted(
        k
        for k in set(baseline) | set(current)
        if json.dumps(baseline.get(k), sort_keys=True, default=str)
        != json.dumps(current.get(k), sort_keys=True, default=str)
    )
    if not keys:
        return None
    return (
        "baseline and current ran on different machines (machine_info differs in: "
        f"{', '.join(keys)}); differences may come from the machines, not the code"
    )


def verdict_of(change: float, significant: bool, threshold: float) -> Verdict:
    """The verdict on a time ratio *change* (above 1: slower) beyond the *threshold* band.

    Without a drift model: for paired A/B runs, whose pairs already carry the drift.
    """
    if change > 1.0 + threshold:
        return Verdict.SLOWER if significant else Verdict.INCONCLUSIVE
    if change < 1.0 / (1.0 + threshold):
        return Verdict.FASTER if significant else Verdict.INCONCLUSIVE
    return Verdict.SAME


_Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class DriftVerdict:
    """A verdict that allowed for drift, with its smallest detectable change (>= threshold)."""

    verdict: Verdict
    detectable: float
    low: float  # the change's plausible range: 95% within-run and the drift (a ratio)
    high: float


def drift_verdict(
    log_change: float,
    se_within: float,
    significant: bool,
    drift: Drift,
    threshold: float,
    alpha: float,
    reachable: bool = True,
) -> DriftVerdict:
    """The verdict on a log time ratio, allowing for within-run noise AND between-run drift.

    - slower/faster: significant within the runs, beyond the threshold, and beyond the
      drift combined with the within-run uncertainty at *alpha*;
    - same: the change's plausible range (95% within the runs, combined with the drift) lies
      inside the threshold band;
    - otherwise inconclusive. *reachable* False: too few samples for any p below *alpha*.
    """
    z_alpha = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    band = math.log1p(threshold)
    bound = math.hypot(z_alpha * se_within, drift.log)
    plausible = math.hypot(_Z95 * se_within, drift.log)
    if significant and log_change > band and log_change > bound:
        verdict = Verdict.SLOWER
    elif significant and log_change < -band and -log_change > bound:
        verdict = Verdict.FASTER
    elif abs(log_change) + plausible <= band:
        verdict = Verdict.SAME
    else:
        verdict = Verdict.INCONCLUSIVE
    power = NormalDist().inv_cdf(DETECTION_POWER)
    detect = math.expm1(math.hypot((z_alpha + power) * se_within, drift.log))
    if not reachable:
        detect = math.inf
    return DriftVerdict(
        verdict,
        max(detect, threshold),
        math.exp(log_change - plausible),
        math.exp(log_change + plausible),
    )


def _note(verdict: DriftVerdict, drift: Drift) -> str:
    note = f"drift allowed: {drift.relative:.1%} ({drift.source})"
    if verdict.verdict is Verdict.INCONCLUSIVE:
        note = f"{note}; {INCONCLUSIVE_ADVICE}"
    return note


def _normalized_words(machine: float) -> str:
    """How a CPU-bound benchmark's times were corrected for the machine's speed."""
    return (
        f", normalized by the CPU calibration loop (the current run's CPU was "
        f"{abs(machine - 1.0):.0%} {'slower' if machine >= 1.0 else 'faster'})"
    )


def _z_p(log_change: float, se: float) -> float:
    """Two-sided p of a normal test of a log change with standard error *se*."""
    if se <= 0:
        return 0.0 if log_change else 1.0
    return math.erfc(abs(log_change) / se / math.sqrt(2.0))


def locate(result: BenchmarkResult, statistic: str) -> Location:
    """A run's time by *statistic*, from its samples or else its summary statistics.

    Without samples the error is the median's 95% notch (1.57 IQR / sqrt(rounds)), the
    closest the summary allows.
    """
    if result.samples and len(result.samples) > 1:
        return location(result.samples, statistic)
    if statistic not in STATISTICS:
        raise BadBenchmarkInput(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
    value = {"min": result.minimum, "p10": result.q1, "median": result.median}[statistic]
    half = _NOTCH * max(result.iqr, 0.0) / math.sqrt(max(result.rounds, 1))
    return Location(value, half / _Z95 / result.median)


def _located(result: BenchmarkResult, statistic: str) -> Location:
    """`locate`, with a multi-process run's time the median of its processes' (`run_time`)."""
    found = locate(result, statistic)
    return Location(run_time(result, statistic, found.seconds), found.log_se)


def _notch(result: BenchmarkResult) -> tuple[float, float]:
    half = _NOTCH * max(result.iqr, 0.0) / math.sqrt(max(result.rounds, 1))
    return max(result.median - half, result.median * 1e-9), result.median + half


def unit_and_items(result: BenchmarkResult) -> tuple[str | None, float | None]:
    """The unit and items per call that `edge_benchmark.throughput` declared, if it did."""
    unit = result.edge.get("unit")
    items = result.edge.get("items")
    return (
        unit if isinstance(unit, str) else None,
        float(items) if is_number(items) else None,
    )


def compare_results(
    baseline: BenchmarkResult,
    current: BenchmarkResult,
    threshold: float,
    alpha: float = DEFAULT_ALPHA,
    statistic: str = DEFAULT_STATISTIC,
) -> BenchmarkComparison:
    """Verdict on one benchmark present in both runs, allowing for the drift between them.

    The change is the ratio of the runs' *statistic*; it must also be significant within
    the runs (rank test on the samples, else non-overlapping median intervals).
    """
    unit, items = unit_and_items(current)
    distributions = (Distribution.of("baseline", baseline), Distribution.of("current", current))
    procs = process_drift([baseline, current], statistic)
    if procs is None:
        scales = cpu_scales([baseline, current])
        drift = two_run_drift(baseline, current, normalized=scales is not None)
    else:  # a multi-process run: the drift between its processes was measured
        scales, drift = None, processes_drift([baseline, current], procs)
    base, cur = _located(baseline, statistic), _located(current, statistic)
    se = math.hypot(base.log_se, cur.log_se)
    log_change = math.log(cur.seconds / base.seconds)
    normalized = ""
    if scales is not None:
        machine = scales[1] / scales[0]
        log_change -= math.log(machine)
        normalized = _normalized_words(machine)
    if baseline.samples and current.samples and statistic == "median":
        rank = mann_whitney_u(baseline.samples, current.samples)
        n1, n2 = len(baseline.samples), len(current.samples)
        reachable = n1 + n2 > 50 or min_attainable_p(n1, n2) < alpha
        judged = drift_verdict(
            log_change, se, rank.p_value < alpha, drift, threshold, alpha, reachable
        )
        p_value: float | None = rank.p_value
        method = (
            f"each run's median; Mann-Whitney U ({rank.method}), p < {alpha:g}; beyond the drift"
        )
    elif baseline.samples and current.samples:
        # The change in the statistic itself, against its order-statistics error: a rank
        # test asks whether the whole distributions moved, which is another question.
        enough = min(len(baseline.samples), len(current.samples)) >= MIN_SAMPLES
        judged = drift_verdict(log_change, se, enough, drift, threshold, alpha, enough)
        p_value = _z_p(log_change, se)
        method = (
            f"each run's {statistic} (error from the order statistics), p < {alpha:g}; "
            "beyond the drift"
        )
    else:
        base_low, base_high = _notch(baseline)
        cur_low, cur_high = _notch(current)
        separated = cur_low > base_high or cur_high < base_low
        judged = drift_verdict(log_change, se, separated, drift, threshold, alpha)
        p_value = None
        method = (
            f"each run's {statistic}; non-overlapping 95% median intervals (no raw samples: "
            "run with --benchmark-save-data or edge_benchmark to keep them); beyond the drift"
        )
    ratio = RatioEstimate(
        math.exp(log_change),
        judged.low,
        judged.high,
        0.95,
        f"ratio of the runs' {statistic}{normalized}, interval widened by the drift",
    )
    return BenchmarkComparison(
        current.fullname,
        current.group,
        judged.verdict,
        base.seconds,
        cur.seconds,
        ratio,
        p_value,
        method + normalized,
        judged.detectable,
        note=_note(judged, drift),
        distributions=distributions,
        unit=unit,
        items=items,
        drift=drift,
    )


def _unpaired(fullname: str, result: BenchmarkResult, verdict: Verdict) -> BenchmarkComparison:
    unit, items = unit_and_items(result)
    side = "current" if verdict is Verdict.NEW else "baseline"
    return BenchmarkComparison(
        fullname,
        result.group,
        verdict,
        result.median if verdict is Verdict.MISSING else None,
        result.median if verdict is Verdict.NEW else None,
        note=f"only in the {side} run",
        distributions=(Distribution.of(side, result),),
        unit=unit,
        items=items,
    )


def compare_runs(
    baseline: BenchmarkRun,
    current: BenchmarkRun,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    statistic: str = DEFAULT_STATISTIC,
) -> Comparison:
    """Compare every benchmark of two runs; `BadBenchmarkInput` when none is in both."""
    base, cur = baseline.by_name(), current.by_name()
    common = [name for name in cur if name in base]
    if not common:
        raise BadBenchmarkInput(
            f"no common benchmarks between {baseline.source} ({len(base)} benchmarks) and "
            f"{current.source} ({len(cur)} benchmarks): compare runs of the same tests"
        )
    results = [
        compare_results(base[name], cur[name], threshold, alpha, statistic)
        if name in base
        else _unpaired(name, cur[name], Verdict.NEW)
        for name in cur
    ]
    results += [_unpaired(n, base[n], Verdict.MISSING) for n in base if n not in cur]
    warnings = [w for w in [machine_warning(baseline.machine_info, current.machine_info)] if w]
    if any(r.p_value is None and r.ratio is not None for r in results):
        warnings.append(
            "some benchmarks have no raw samples: their significance comes from "
            "non-overlapping median intervals, a weaker test"
        )
    measured = process_notes(results)
    notes = measured or [
        "Two single runs see the drift between runs only through the calibration set timed "
        "around each benchmark; a change it cannot tell from drift is inconclusive. On a "
        "noisy machine prefer a history (--edge-compare=history) or `pytest-edge ab`."
    ]
    if any(r.drift is not None and r.drift.source.startswith("prior") for r in results):
        notes.append(
            "some benchmarks have no calibration on one side: their drift is the "
            "prior, so only a change of about 2x or more can be told apart"
        )
    return Comparison(
        "two runs",
        baseline.source,
        current.source,
        threshold,
        alpha,
        tuple(results),
        tuple(warnings),
        tuple(notes),
    )


_PROCESS_DRIFT = re.compile(r"drift from \d+ processes: \d+%")


def process_notes(results: Sequence[BenchmarkComparison]) -> list[str]:
    """A note naming each benchmark whose drift was measured between fresh processes."""
    found = []
    for r in results:
        match = _PROCESS_DRIFT.search(r.drift.source) if r.drift is not None else None
        if match:
            found.append(f"{r.fullname.rsplit('::', 1)[-1]}: {match.group(0)}")
    if not found:
        return []
    return [
        "Drift measured between the fresh processes of a multi-process run (pytest-edge "
        f"repeat), not assumed: {'; '.join(found)}."
    ]


def _pooled(results: Sequence[BenchmarkResult]) -> tuple[float, ...] | None:
    if not all(r.samples for r in results):
        return None
    return tuple(v for r in results for v in (r.samples or ()))


def compare_history_result(
    history: Sequence[tuple[str, BenchmarkResult]],
    current: BenchmarkResult,
    threshold: float,
    alpha: float = DEFAULT_ALPHA,
    statistic: str = DEFAULT_STATISTIC,
) -> BenchmarkComparison:
    """Current against the saved runs (``history`` oldest first), each by its *statistic*.

    The change is the current run's time over the median of the saved runs' times; the
    drift allowed is their robust spread (MAD: one noisy saved run neither widens nor
    shifts it), the calibration's movement and the floor (`history_drift`).
    """
    unit, items = unit_and_items(current)
    past = [r for _, r in history]
    raw = [_located(r, statistic).seconds for r in past]
    cur = _located(current, statistic)
    scales = cpu_scales([*past, current])
    times, now, normalized = raw, cur.seconds, ""
    if scales is not None:
        times = [t / scale for t, scale in zip(raw, scales, strict=False)]
        now = cur.seconds / scales[-1]
        normalized = _normalized_words(scales[-1] / median(scales[:-1]))
    spread = HistorySpread.of(times)
    drift = history_drift(times, past, current, normalized=scales is not None)
    procs = process_drift([*past, current], statistic)
    if procs is not None:
        drift = beside(drift, procs)
    log_change = math.log(now) - spread.center
    pooled = _pooled(past)
    if pooled and current.samples and statistic == "median":
        rank = mann_whitney_u(pooled, current.samples)
        significant = rank.p_value < alpha
        p_value: float | None = rank.p_value
        method = (
            f"history of {len(history)} runs, each run's median; Mann-Whitney U "
            f"({rank.method}) against their pooled samples, p < {alpha:g}; beyond the drift"
        )
    elif current.samples:
        significant = len(current.samples) >= MIN_SAMPLES
        p_value = _z_p(log_change, cur.log_se)
        method = (
            f"history of {len(history)} runs, each run's {statistic} (error from the order "
            f"statistics), p < {alpha:g}; beyond the drift"
        )
    else:
        significant, p_value = True, None
        method = (
            f"history of {len(history)} runs, each run's {statistic} (no raw samples: drift "
            "test only)"
        )
    judged = drift_verdict(log_change, cur.log_se, significant, drift, threshold, alpha)
    center = median(raw)
    method += normalized
    ratio = RatioEstimate(
        math.exp(log_change),
        judged.low,
        judged.high,
        0.95,
        f"ratio to the history's median {statistic}, interval widened by the drift",
    )
    distributions = (
        *(Distribution.of(label, r) for label, r in history),
        Distribution.of("current", current),
    )
    return BenchmarkComparison(
        current.fullname,
        current.group,
        judged.verdict,
        center,
        cur.seconds,
        ratio,
        p_value,
        method,
        judged.detectable,
        note=_note(judged, drift),
        distributions=distributions,
        history=tuple((label, t) for (label, _), t in zip(history, raw, strict=True)),
        unit=unit,
        items=items,
        drift=drift,
    )


def compare_history(
    history: Sequence[BenchmarkRun],
    current: BenchmarkRun,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    statistic: str = DEFAULT_STATISTIC,
) -> Comparison:
    """Compare a run against the spread of earlier runs (oldest first)."""
    if not history:
        raise BadBenchmarkInput("history: no saved runs to compare against")
    labelled = [(run.label(i), run.by_name()) for i, run in enumerate(history)]
    known = {name for _, results in labelled for name in results}
    results: list[BenchmarkComparison] = []
    for name, result in current.by_name().items():
        past = [(label, runs[name]) for label, runs in labelled if name in runs]
        if past:
            results.append(compare_history_result(past, result, threshold, alpha, statistic))
        else:
            results.append(_unpaired(name, result, Verdict.NEW))
    latest = labelled[-1][1]
    results += [
        _unpaired(n, latest[n], Verdict.MISSING) for n in latest if n not in current.by_name()
    ]
    if not any(r.verdict not in (Verdict.NEW, Verdict.MISSING) for r in results):
        raise BadBenchmarkInput(
            f"no common benchmarks between the history ({len(known)} benchmarks in "
            f"{len(history)} runs) and {current.source}"
        )
    warnings = [
        w for w in {machine_warning(run.machine_info, current.machine_info) for run in history} if w
    ]
    notes = process_notes(results)
    if len(history) < 3:
        notes.append(
            f"only {len(history)} earlier run(s): the run-to-run band is poorly known; "
            "3 or more make the history verdict trustworthy"
        )
    return Comparison(
        "history",
        (
            f"history of {len(history)} runs ({history[0].source} .. {history[-1].source})"
            if len(history) > 1
            else f"history of 1 run ({history[0].source})"
        ),
        current.source,
        threshold,
        alpha,
        tuple(results),
        tuple(sorted(warnings)),
        tuple(notes),
    )
