"""The Markdown renderer: the outcome summary first, pipe tables, flagged estimates."""

from __future__ import annotations

from dataclasses import replace

from pytest_edge.report import EdgeReport, Paragraph, Section, model, render
from pytest_edge.report.text import render_text
from tests.report.samples import sample_report


def test_markdown_has_tables_estimates_and_flags_the_regression() -> None:
    text = render(sample_report(), "md")
    assert "### Benchmarks ❌" in text
    assert "| t.py::test_a | slower (REGRESSION) |" in text
    assert "> **Estimate:** device throughput is an estimate" in text
    assert "### Device" in text


def _failing_report() -> EdgeReport:
    outcome = model.OutcomeSummary(
        counts={"passed": 3, "failed": 2, "skipped": 1},
        exit_code=1,
        failures=(
            model.FailedTest(
                "t.py::test_a", "failed", "AssertionError: assert 1 == 2", "E ```\nE x"
            ),
            model.FailedTest("t.py::test_<b>", "failed", "ValueError: `x` | y", ""),
        ),
        duration_s=3.2,
    )
    section = Section(
        "scenarios",
        "Scenarios",
        (Paragraph("ingest on pi: error rate 0.5 is above 0.1", "failure"),),
        "failed",
        problems=(
            model.Problem("failed scenario", "ingest on pi", "error rate", "x", test="ingest"),
        ),
    )
    return replace(EdgeReport("run"), outcome=outcome).with_section(section)


def test_markdown_opens_with_the_outcome_summary_failures_first() -> None:
    text = render(_failing_report(), "md")
    lines = text.splitlines()
    assert lines[2] == (
        "**❌ FAILED: pytest failed (exit code 1)** · "
        "Needs attention: 2 failed tests, 1 failed scenario."
    )
    assert "| 3 | **2** | 0 | 1 | 0 | 0 |" in lines
    assert "6 test reports in 3.2 s; pytest exit code 1 (failed)." in lines
    attention = lines.index("### Needs attention")
    assert lines[attention + 2] == (
        "1. ❌ **failed test** t.py::test_a: AssertionError: assert 1 == 2"
    )
    assert lines[attention + 3] == (
        "2. ❌ **failed test** t.py::test\\_&lt;b&gt;: ValueError: \\`x\\` \\| y"
    )
    assert lines[attention + 4].startswith("3. ❌ **failed scenario** ingest on pi")
    assert text.index("### Needs attention") < text.index("### Scenarios")
    assert "> ❌ **Failed:** ingest on pi: error rate 0.5 is above 0.1" in lines


def test_failure_details_are_a_fence_nothing_inside_can_close() -> None:
    lines = render(_failing_report(), "md").splitlines()
    start = lines.index("````text")
    assert lines[start + 1 : start + 4] == ["E ```", "E x", "````"]


def test_text_report_opens_with_the_same_summary() -> None:
    lines = render_text(_failing_report()).splitlines()
    assert lines[:6] == [
        "run: FAILED (pytest failed, exit code 1)",
        "needs attention: 2 failed tests, 1 failed scenario",
        "outcomes: 3 passed, 2 failed, 0 error, 1 skipped, 0 xfailed, 0 xpassed",
        "FAILED TEST t.py::test_a: AssertionError: assert 1 == 2",
        "FAILED TEST t.py::test_<b>: ValueError: `x` | y",
        "FAILED SCENARIO ingest on pi: error rate",
    ]
    assert "FAILED: ingest on pi: error rate 0.5 is above 0.1" in lines
