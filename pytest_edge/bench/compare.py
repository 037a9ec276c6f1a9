"""Comparing benchmark runs: two runs, a run against a history, and verdicts.

A benchmark is a regression only when the change is statistically significant AND larger
than the threshold. With raw samples the test is Mann-Whitney U (p < `DEFAULT_ALPHA`); without
them it falls back to non-overlapping 95% intervals of the medians, and the result says so.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median
from typing import Any

from pytest_edge.bench.data import BadBenchmarkInput, BenchmarkResult, BenchmarkRun
from pytest_edge.bench.stats import (
    RatioEstimate,
    detectable_change_independent,
    hodges_lehmann_ratio,
    mann_whitney_u,
)
from pytest_edge.report.model import BoxSeries
from pytest_edge.schema import is_number

DEFAULT_THRESHOLD = 0.10
# Strict, as asv does: on thousands of benchmarks a looser p would flag noise every day.
# With the default rounds (`DEFAULT_MIN_ROUNDS` a side) the exact test can go far below it.
DEFAULT_ALPHA = 0.001
DEFAULT_HISTORY_RUNS = 5
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
    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"
    NOISY = "same (noisy)"
    NEW = "new"
    MISSING = "missing"


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

    @property
    def regression(self) -> bool:
        return self.verdict is Verdict.SLOWER

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
    def exit_code(self) -> int:
        """1 when anything regressed beyond the threshold, else 0."""
        return 1 if self.regressions else 0


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
    """The verdict on a time ratio *change* (above 1: slower) beyond the *threshold* band."""
    if change > 1.0 + threshold:
        return Verdict.SLOWER if significant else Verdict.NOISY
    if change < 1.0 / (1.0 + threshold):
        return Verdict.FASTER if significant else Verdict.NOISY
    return Verdict.SAME


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
) -> BenchmarkComparison:
    """Verdict on one benchmark present in both runs."""
    unit, items = unit_and_items(current)
    distributions = (Distribution.of("baseline", baseline), Distribution.of("current", current))
    if baseline.samples and current.samples:
        rank = mann_whitney_u(baseline.samples, current.samples)
        ratio = hodges_lehmann_ratio(baseline.samples, current.samples)
        detect = detectable_change_independent(baseline.samples, current.samples, alpha)
        verdict = verdict_of(ratio.ratio, rank.p_value < alpha, threshold)
        method = f"Mann-Whitney U ({rank.method}), p < {alpha:g}"
        return BenchmarkComparison(
            current.fullname,
            current.group,
            verdict,
            baseline.median,
            current.median,
            ratio,
            rank.p_value,
            method,
            max(detect, threshold),
            distributions=distributions,
            unit=unit,
            items=items,
        )
    base_low, base_high = _notch(baseline)
    cur_low, cur_high = _notch(current)
    change = current.median / baseline.median
    ratio = RatioEstimate(
        change, cur_low / base_high, cur_high / base_low, 0.95, "ratio of medians"
    )
    separated = cur_low > base_high or cur_high < base_low
    detect = math.expm1((math.log(base_high / base_low) + math.log(cur_high / cur_low)) / 2.0)
    return BenchmarkComparison(
        current.fullname,
        current.group,
        verdict_of(change, separated, threshold),
        baseline.median,
        current.median,
        ratio,
        None,
        "non-overlapping 95% median intervals (no raw samples: run with "
        "--benchmark-save-data or edge_benchmark to keep them)",
        max(detect, threshold),
        distributions=distributions,
        unit=unit,
        items=items,
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
        compare_results(base[name], cur[name], threshold, alpha)
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
    return Comparison(
        "two runs",
        baseline.source,
        current.source,
        threshold,
        alpha,
        tuple(results),
        tuple(warnings),
        (
            "Two single runs cannot tell run-to-run drift from a change: on a noisy "
            "machine prefer --history or `pytest-edge ab`.",
        ),
    )


def _pooled(results: Sequence[BenchmarkResult]) -> tuple[float, ...] | None:
    if not all(r.samples for r in results):
        return None
    return tuple(v for r in results for v in (r.samples or ()))


def compare_history_result(
    history: Sequence[tuple[str, BenchmarkResult]],
    current: BenchmarkResult,
    threshold: float,
    alpha: float = DEFAULT_ALPHA,
) -> BenchmarkComparison:
    """Current against the spread of earlier runs' medians (``history`` oldest first).

    A regression must be significant against the pooled history AND slower than the slowest
    earlier run by more than the threshold: a change inside the run-to-run band (widened by
    the threshold) is "same (noisy)", never a regression.
    """
    unit, items = unit_and_items(current)
    medians = [r.median for _, r in history]
    center = median(medians)
    band_low, band_high = min(medians), max(medians)
    pooled = _pooled([r for _, r in history])
    if pooled and current.samples:
        rank = mann_whitney_u(pooled, current.samples)
        ratio = hodges_lehmann_ratio(pooled, current.samples)
        significant = rank.p_value < alpha
        p_value: float | None = rank.p_value
        within = detectable_change_independent(pooled, current.samples, alpha)
        method = f"history of {len(history)} runs + Mann-Whitney U ({rank.method}), p < {alpha:g}"
    else:
        ratio = RatioEstimate(
            current.median / center,
            band_low / center,
            band_high / center,
            1.0,
            "ratio to the history's median (interval: its range)",
        )
        significant, p_value, within = True, None, 0.0
        method = f"history of {len(history)} runs (no raw samples: band test only)"
    slower_edge = band_high * (1.0 + threshold)
    faster_edge = band_low / (1.0 + threshold)
    change = current.median / center
    if current.median > slower_edge and significant:
        verdict = Verdict.SLOWER
    elif current.median < faster_edge and significant:
        verdict = Verdict.FASTER
    elif abs(math.log(change)) > math.log1p(threshold) or current.median > slower_edge:
        verdict = Verdict.NOISY
    else:
        verdict = Verdict.SAME
    band = (band_high - band_low) / center
    detect = max(slower_edge / center - 1.0, within, threshold)
    distributions = (
        *(Distribution.of(label, r) for label, r in history),
        Distribution.of("current", current),
    )
    return BenchmarkComparison(
        current.fullname,
        current.group,
        verdict,
        center,
        current.median,
        ratio,
        p_value,
        method,
        detect,
        note=f"run-to-run band of the history: {band:.1%} of its median",
        distributions=distributions,
        history=tuple((label, r.median) for label, r in history),
        unit=unit,
        items=items,
    )


def compare_history(
    history: Sequence[BenchmarkRun],
    current: BenchmarkRun,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
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
            results.append(compare_history_result(past, result, threshold, alpha))
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
    notes = []
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
