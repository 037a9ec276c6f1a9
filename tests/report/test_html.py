"""The HTML renderer: a self-contained page with inline SVG charts."""

from __future__ import annotations

import re

from pytest_edge.bench.compare import compare_history
from pytest_edge.bench.report import benchmark_section
from pytest_edge.report import (
    BoxSeries,
    DistributionChart,
    EdgeReport,
    LineChart,
    Paragraph,
    Section,
    render,
)
from tests.bench.samples import history_of, noisy, result, run
from tests.report.samples import sample_report


def test_html_is_self_contained_with_a_chart_per_group_and_history() -> None:
    comparison = compare_history(history_of(0.95, 1.0, 1.05), run(result("b", noisy(9, 1.4))))
    report = sample_report().with_section(
        Section("history", "History", tuple(b for b in benchmark_section([], comparison).blocks))
    )
    page = render(report, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 3  # group chart of the two-run section + box + line chart
    assert "<polyline" in page  # the history line chart
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"?https?:", page)
    assert "<link" not in page


def test_charts_render_degenerate_inputs() -> None:
    box = DistributionChart("one", "ms", (BoxSeries("x", 1, 1, 1, 1, 1, 1),))
    line = LineChart("flat", "ms", (("a", 2.0), ("b", 2.0)))
    page = render(EdgeReport().with_section(Section("s", "S", (box, line, Paragraph("p")))), "html")
    assert "nan" not in page.lower().replace("nanosec", "")
