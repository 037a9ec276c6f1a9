"""The benchmark section of the edge report, and the comparison as JSON-ready data.

The section's ``data`` (schema ``pytest-edge-benchmarks/1``)::

    {"schema": "pytest-edge-benchmarks/1",
     "throughput": [{"benchmark", "group", "items", "unit", "timed", "median_s",
                     "items_per_s", "rounds", "peak_memory_bytes", "profile",
                     "device_items_per_s_estimate", "instructions_per_call"}],
     "comparison": null | {"mode", "baseline", "current", "threshold", "alpha",
                           "exit_code", "warnings", "notes",
                           "results": [{"benchmark", "group", "verdict", "regression",
                                        "baseline_median_s", "current_median_s",
                                        "ratio", "ratio_low", "ratio_high", "ratio_method",
                                        "confidence", "p_value", "method",
                                        "detectable_change", "drift", "drift_source",
                                        "unit", "items",
                                        "baseline_items_per_s", "current_items_per_s",
                                        "note", "history": [{"run", "median_s"}]}]},
     "messages": [str]}

Ratios are current/baseline times (above 1: slower). ``baseline_median_s`` and
``current_median_s`` (names kept for compatibility) are the times compared: each run's
statistic (its min by default; ``method`` names it), against a history the median of the
saved runs' ones. ``verdict`` is one of ``faster``,
``slower`` (then ``regression`` is true; shown as ``slower (REGRESSION)``), ``same``,
``inconclusive``, ``new``, ``missing``. ``detectable_change`` is the smallest relative
slowdown the comparison could have flagged; null when none could have been. ``drift`` is the
between-run drift allowed for (a relative change), ``drift_source`` where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pytest_edge.bench.compare import BenchmarkComparison, Comparison
from pytest_edge.bench.data import BenchmarkResult, BenchmarkRun
from pytest_edge.bench.throughput import ESTIMATE_NOTE, ThroughputResult
from pytest_edge.report.model import (
    Block,
    DistributionChart,
    LineChart,
    Paragraph,
    Problem,
    Section,
    Status,
    Table,
)

DATA_SCHEMA = "pytest-edge-benchmarks/1"
_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def time_unit(seconds: float) -> tuple[float, str]:
    """The scale and name that show ``seconds`` as a number >= 1 (s, ms, µs, ns)."""
    for scale, name in _UNITS:
        if seconds >= scale:
            return scale, name
    return _UNITS[-1]


def format_time(seconds: float | None) -> str:
    """``0.001234`` -> ``1.234 ms`` (the shared unit helper; 4 digits for comparisons)."""
    from pytest_edge.report import units

    return units.format_time(seconds, digits=4)


def format_rate(rate: float | None, unit: str | None) -> str:
    """``304123.0, "turns"`` -> ``304k turns/s``, never ``3.04e+05`` (the shared helper)."""
    from pytest_edge.report import units

    return units.format_rate(rate, unit)


def format_bytes(value: int | None) -> str:
    from pytest_edge.report import units

    return units.format_bytes(value)


def format_change(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "none (too few samples)"
    return f"{value:.1%}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def result_to_dict(result: BenchmarkComparison) -> dict[str, Any]:
    ratio = result.ratio
    return {
        "benchmark": result.fullname,
        "group": result.group,
        "verdict": str(result.verdict),
        "regression": result.regression,
        "baseline_median_s": result.baseline_median,
        "current_median_s": result.current_median,
        "ratio": ratio.ratio if ratio else None,
        "ratio_low": ratio.low if ratio else None,
        "ratio_high": ratio.high if ratio else None,
        "ratio_method": ratio.method if ratio else None,
        "confidence": ratio.confidence if ratio else None,
        "p_value": result.p_value,
        "method": result.method,
        "detectable_change": _finite(result.detectable_change),
        "drift": result.drift.relative if result.drift else None,
        "drift_source": result.drift.source if result.drift else None,
        "unit": result.unit,
        "items": result.items,
        "baseline_items_per_s": result.throughput(result.baseline_median),
        "current_items_per_s": result.throughput(result.current_median),
        "note": result.note,
        "history": [{"run": label, "median_s": value} for label, value in result.history],
    }


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    return {
        "mode": comparison.mode,
        "baseline": comparison.baseline_source,
        "current": comparison.current_source,
        "threshold": comparison.threshold,
        "alpha": comparison.alpha,
        "exit_code": comparison.exit_code,
        "warnings": list(comparison.warnings),
        "notes": list(comparison.notes),
        "results": [result_to_dict(r) for r in comparison.results],
    }


def throughput_to_dict(result: ThroughputResult) -> dict[str, Any]:
    return {
        "benchmark": result.fullname,
        "group": result.group,
        "items": result.items,
        "unit": result.unit,
        "timed": result.timed,
        "median_s": result.median_seconds,
        "items_per_s": result.items_per_second,
        "rounds": result.rounds,
        "peak_memory_bytes": result.peak_memory_bytes,
        "profile": result.profile,
        "device_items_per_s_estimate": result.device_items_per_second,
        "instructions_per_call": result.instructions_per_call,
    }


def _ratio_text(result: BenchmarkComparison) -> str:
    if result.ratio is None:
        return "-"
    r = result.ratio
    return f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]"


def comparison_table(comparison: Comparison) -> Table:
    """One row per benchmark: the verdict and the evidence for it."""
    rows = []
    for r in comparison.results:
        rate = r.throughput(r.current_median)
        rows.append(
            (
                r.fullname,
                r.label,
                format_time(r.baseline_median),
                format_time(r.current_median),
                _ratio_text(r),
                "-" if r.p_value is None else f"{r.p_value:.2g}",
                format_change(r.detectable_change),
                "-" if r.drift is None else f"{r.drift.relative:.1%}",
                format_rate(rate, r.unit),
            )
        )
    return Table(
        (
            "benchmark",
            "verdict",
            "baseline time",
            "current time",
            "time ratio [95% CI]",
            "p",
            "smallest detectable",
            "drift allowed",
            "current throughput",
        ),
        tuple(rows),
    )


def comparison_summary(comparison: Comparison) -> str:
    counts: dict[str, int] = {}
    for r in comparison.results:
        counts[r.label] = counts.get(r.label, 0) + 1
    tally = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    return (
        f"{comparison.mode}: {comparison.current_source} against {comparison.baseline_source}; "
        f"threshold {comparison.threshold:.0%}, p < {comparison.alpha:g}. {tally}. "
        f"Regressions: {len(comparison.regressions)}. "
        f"Inconclusive: {len(comparison.inconclusive)}."
    )


def _verdict_word(result: BenchmarkComparison) -> str:
    return str(result.verdict) + (" (regression)" if result.regression else "")


def _group_charts(results: Sequence[BenchmarkComparison]) -> list[Block]:
    """One panel per named group (its members share a meaningful scale), else one panel per
    benchmark; the current run's box and history point carry the verdict."""
    panels: dict[str, list[BenchmarkComparison]] = {}
    for r in results:
        if r.distributions:
            panels.setdefault(f"group {r.group}" if r.group else r.fullname, []).append(r)
    charts: list[Block] = []
    for title, members in panels.items():
        medians = [d.median for r in members for d in r.distributions]
        scale, unit = time_unit(min(medians))
        several = len(members) > 1
        series = tuple(
            replace(
                d.scaled(scale, f"{r.fullname.rsplit('::', 1)[-1]}: {d.label}")
                if several
                else d.scaled(scale),
                verdict=_verdict_word(r) if d.label == "current" else "",
            )
            for r in members
            for d in r.distributions
        )
        charts.append(DistributionChart(f"{title}: time per call", unit, series))
        for r in members:
            if len(r.history) >= 2:
                points = [*r.history]
                if r.current_median is not None:
                    points.append(("current", r.current_median))
                chart = _median_history_chart(r.fullname, points)
                charts.append(replace(chart, verdict=_verdict_word(r)))
    return charts


def _median_history_chart(name: str, points: Sequence[tuple[str, float]]) -> LineChart:
    """A benchmark's median per saved run (and the current one), in a readable time unit."""
    scale, unit = time_unit(min(v for _, v in points))
    return LineChart(
        f"{name}: median over the saved runs",
        unit,
        tuple((label, v / scale) for label, v in points),
    )


def history_charts(runs: Sequence[BenchmarkRun], current: BenchmarkRun) -> list[Block]:
    """Median per saved run for each current benchmark found in 2+ of them."""
    charts: list[Block] = []
    for name, result in current.by_name().items():
        points = [
            (run.label(i), run.by_name()[name].median)
            for i, run in enumerate(runs)
            if name in run.by_name()
        ]
        if len(points) < 2:
            continue
        points.append(("current", result.median))
        charts.append(_median_history_chart(name, points))
    return charts


def comparison_blocks(comparison: Comparison) -> list[Block]:
    blocks: list[Block] = [Paragraph(comparison_summary(comparison))]
    blocks += [Paragraph(w, "warning") for w in comparison.warnings]
    blocks += [Paragraph(n, "note") for n in comparison.notes]
    blocks.append(comparison_table(comparison))
    blocks.append(
        Paragraph(
            "A benchmark is a regression only when the change is statistically significant, "
            "larger than the threshold AND larger than the drift between runs ('drift "
            "allowed': from the calibration set, the history's spread, or a prior). "
            "'smallest detectable' is the smallest slowdown this comparison could have "
            "flagged: 'inconclusive' means a change of the threshold's size could not be "
            "told from drift (compare against a history, or use pytest-edge ab); 'same' says "
            "nothing about changes below the smallest detectable one. Times are each run's "
            "fastest round unless --edge-statistic chose p10 or median (see the method).",
            "note",
        )
    )
    blocks += _group_charts(comparison.results)
    return blocks


def throughput_blocks(results: Sequence[ThroughputResult]) -> list[Block]:
    counted = any(r.instructions_per_call is not None for r in results)
    columns = (
        "benchmark",
        "median time",
        "throughput",
        "peak memory (tracemalloc)",
        "profile",
        "device throughput (estimate)",
        *(("instructions/call (callgrind)",) if counted else ()),
    )
    rows = tuple(
        (
            r.fullname,
            format_time(r.median_seconds) if r.timed else "not timed",
            format_rate(r.items_per_second, r.unit),
            format_bytes(r.peak_memory_bytes),
            r.profile or "host",
            format_rate(r.device_items_per_second, r.unit),
            *(
                (f"{r.instructions_per_call:,.0f}" if r.instructions_per_call else "-",)
                if counted
                else ()
            ),
        )
        for r in results
    )
    blocks: list[Block] = [Table(columns, rows)]
    if any(r.device_items_per_second is not None for r in results):
        blocks.append(Paragraph("device throughput is an " + ESTIMATE_NOTE, "estimate"))
    return blocks


def benchmark_section(
    throughputs: Sequence[ThroughputResult],
    comparison: Comparison | None = None,
    messages: Sequence[str] = (),
    extra_blocks: Sequence[Block] = (),
    results: Sequence[BenchmarkResult] = (),
) -> Section:
    """The benchmark section: every benchmark (``results``) or the throughput table,
    the comparison, charts and messages."""
    blocks: list[Block] = [Paragraph(m, "warning") for m in messages]
    if results:
        from pytest_edge.bench.table import current_run_charts, every_benchmark_blocks

        blocks += every_benchmark_blocks(results, throughputs)
        if comparison is None:
            blocks += current_run_charts(results)
    elif throughputs:
        blocks += throughput_blocks(throughputs)
    if comparison is not None:
        blocks += comparison_blocks(comparison)
    blocks += extra_blocks
    status: Status = "info"
    if comparison is not None:
        status = "failed" if comparison.regressions else "ok"
        if (comparison.warnings or comparison.inconclusive) and status == "ok":
            status = "warning"
    if messages and status in ("info", "ok"):
        status = "warning"
    data = {
        "schema": DATA_SCHEMA,
        "throughput": [throughput_to_dict(r) for r in throughputs],
        "comparison": comparison_to_dict(comparison) if comparison else None,
        "messages": list(messages),
    }
    problems = tuple(
        Problem(
            "regression",
            r.fullname,
            f"{_verdict_word(r)}: median {format_time(r.baseline_median)} -> "
            f"{format_time(r.current_median)} ({_ratio_text(r)} times)",
            "section-benchmarks",
        )
        for r in (comparison.regressions if comparison else ())
    )
    return Section(
        "benchmarks", "Benchmarks", tuple(blocks), status, order=20, data=data, problems=problems
    )
