"""Every benchmark of the run in one table, with or without a comparison.

pytest-benchmark's columns (min, median, IQR, rounds) for every ``benchmark`` and
``edge_benchmark`` test, plus pytest-edge's where the test measured them through
``edge_benchmark.throughput``: items/s, peak memory and the device projection (an estimate).
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_edge.bench.data import BenchmarkResult
from pytest_edge.bench.throughput import ESTIMATE_NOTE, ThroughputResult
from pytest_edge.report.model import Block, BoxSeries, DistributionChart, Paragraph, Table
from pytest_edge.report.units import format_bytes, format_rate, format_time, time_unit

COLUMNS = (
    "benchmark",
    "min",
    "median",
    "IQR",
    "rounds",
    "throughput",
    "peak memory (tracemalloc)",
    "device throughput (estimate)",
)
PLAIN_NOTE = (
    "'-' in throughput, peak memory and device columns: a plain `benchmark` test measures "
    "time only; `edge_benchmark.throughput(fn, items=..., unit=...)` adds them."
)


def every_benchmark_blocks(
    results: Sequence[BenchmarkResult], throughputs: Sequence[ThroughputResult]
) -> list[Block]:
    """The table, and the notes that say why a cell is empty or what is an estimate."""
    edge = {t.fullname: t for t in throughputs}
    rows = []
    for r in results:
        t = edge.get(r.fullname)
        rows.append(
            (
                r.fullname,
                format_time(r.minimum),
                format_time(r.median),
                format_time(r.iqr),
                str(r.rounds),
                format_rate(t.items_per_second, t.unit) if t else "-",
                format_bytes(t.peak_memory_bytes) if t else "-",
                f"{format_rate(t.device_items_per_second, t.unit)} on {t.profile}"
                if t and t.device_items_per_second is not None
                else "-",
            )
        )
    blocks: list[Block] = [
        Table(COLUMNS, tuple(rows), caption=f"Every benchmark of this run ({len(rows)})")
    ]
    if any(r.fullname not in edge for r in results):
        blocks.append(Paragraph(PLAIN_NOTE, "note"))
    if any(t.device_items_per_second is not None for t in throughputs):
        blocks.append(Paragraph("device throughput is an " + ESTIMATE_NOTE, "estimate"))
    return blocks


def current_run_charts(results: Sequence[BenchmarkResult]) -> list[Block]:
    """One box plot per benchmark of this run, for a run compared with nothing (a first run);
    a note names the benchmarks without raw samples, which cannot be drawn."""
    charts: list[Block] = []
    undrawn = []
    for r in results:
        if not r.samples:
            undrawn.append(r.fullname)
            continue
        scale, unit = time_unit(r.median)
        box = BoxSeries.from_samples("this run", [v / scale for v in r.samples])
        charts.append(DistributionChart(f"{r.fullname}: time per call", unit, (box,)))
    if undrawn:
        charts.append(
            Paragraph(
                f"No chart for {', '.join(undrawn)}: pytest-benchmark kept no raw samples "
                "(a chart needs them).",
                "note",
            )
        )
    return charts
