"""The Markdown renderer: pipe tables, flagged estimates and regressions."""

from __future__ import annotations

from pytest_edge.report import render
from tests.report.samples import sample_report


def test_markdown_has_tables_estimates_and_flags_the_regression() -> None:
    text = render(sample_report(), "md")
    assert "### Benchmarks ❌" in text
    assert "| t.py::test_a | slower (REGRESSION) |" in text
    assert "> **Estimate:** device throughput is an estimate" in text
    assert "### Device" in text
