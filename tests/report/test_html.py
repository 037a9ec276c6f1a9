"""The HTML renderer: a self-contained page with inline SVG charts."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.bench.compare import compare_history
from pytest_edge.bench.report import benchmark_section
from pytest_edge.report import (
    BoxSeries,
    DistributionChart,
    EdgeReport,
    FailedTest,
    LineChart,
    OutcomeSummary,
    Paragraph,
    Problem,
    Section,
    Table,
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


def _page(*blocks: object, **report: object) -> str:
    section = Section("s", "S", tuple(blocks))  # type: ignore[arg-type]
    return render(EdgeReport(**report).with_section(section), "html")  # type: ignore[arg-type]


def test_responsive_page_has_a_viewport_and_scrolling_tables() -> None:
    page = render(sample_report(), "html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert page.count('<div class="table-wrap"') == page.count("<table>")
    assert "figure.chart svg{width:100%;height:auto" in page
    assert ' width="680"' not in page  # charts scale with their container


def test_only_http_links_and_everything_escaped() -> None:
    hostile = (
        "see https://example.org/a?b=1&c=<x> and javascript:alert(1) "
        "<script>alert(1)</script> [x](javascript:alert(2)) data:text/html,hi"
    )
    page = _page(Paragraph(hostile, "note"), Table(("name",), ((hostile,),)))
    assert '<a href="https://example.org/a?b=1&amp;c=" rel="noreferrer">' in page
    assert "<script>" not in page
    assert 'href="javascript' not in page
    assert 'href="data' not in page
    assert page.count("<a href=") == page.count('<a href="#') + 2


def test_repeated_notes_collapse_with_a_count() -> None:
    notes = [Paragraph(f"disk-full: fault fired: call #{i}: full", "note") for i in range(11)]
    page = _page(Paragraph("before"), *notes, Paragraph("other note", "note"))
    assert page.count('<details class="repeated note">') == 1
    assert "disk-full: fault fired <strong>(\u00d711)</strong>" in page
    assert page.count("<li>call #") == 11
    assert "other note" in page


def test_failures_and_regressions_are_words_not_only_colour() -> None:
    page = _page(
        Paragraph("expectation broken", "failure"),
        Table(("benchmark", "verdict"), (("t::a", "slower (REGRESSION)"), ("t::b", "same"))),
    )
    assert '<p class="failure"><strong>✗ Failed:</strong> expectation broken</p>' in page
    assert page.count("<tr class=bad>") == 1
    assert "<tr class=bad><td class=name>t::a</td><td>slower (REGRESSION)</td>" in page


def test_charts_pick_units_wrap_labels_and_start_at_zero() -> None:
    long_label = (
        "tests/benchmarks/test_generation.py::test_generate_tokens[quick]: 5fe51ae9 (n=5000)"
    )
    box = DistributionChart(
        "latency",
        "ns",
        (
            BoxSeries("baseline", 2.0e6, 2.1e6, 2.12e6, 2.2e6, 2.3e6, 40),
            BoxSeries(long_label, 2.0e6, 2.1e6, 2.15e6, 2.2e6, 2.4e6, 40, verdict="slower"),
        ),
    )
    line = LineChart(
        "history",
        "s",
        (("5fe51ae9 2026-11-30 10:00", 0.004), ("a1b2c3d4 2026-12-01 11:00", 0.0042)),
        verdict="same",
    )
    page = _page(box, line)
    assert "e+0" not in page
    assert "e-0" not in page
    assert "time per call (ms, from zero)" in page  # 2.12e6 ns shown in ms
    assert "median time per call (ms)" in page
    assert ">0</tspan>" in page  # both value axes start at zero
    assert page.count("<tspan") > 10
    assert "5fe51ae9</tspan>" in page  # commit over date
    assert ">2026-11-30 10:00</tspan>" in page
    labels = re.findall(r'<text[^>]*class="label">(.*?)</text>', page)
    assert any("slower" in label for label in labels)  # the verdict's word, and its colour
    assert any(label.count("<tspan") >= 2 for label in labels)  # wrapped, not clipped
    assert "#cf222e" in page
    assert page.index("<figcaption>") < page.index("<svg")  # caption above its chart


@given(st.text(alphabet=st.sampled_from("<>&\"'`[]()|:/ abcjs\n\x1b"), max_size=40))
def test_no_user_string_reaches_the_page_as_markup(text: str) -> None:
    marker = "<zq" + text
    outcome = OutcomeSummary({"failed": 1}, 1, (FailedTest(marker, "failed", marker, marker),))
    report = EdgeReport(title=marker, outcome=outcome, metadata=(("command line", marker),))
    section = Section(
        marker,
        marker,
        (Paragraph(marker, "note"), Table((marker,), ((marker,),), caption=marker)),
        problems=(Problem("regression", marker, marker, marker),),
    )
    page = render(report.with_section(section), "html")
    assert "<zq" not in page
    assert 'href="javascript' not in page
