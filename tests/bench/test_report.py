"""The edge report: one plain model, rendered to Markdown, JSON, HTML and text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_edge.bench.compare import compare_history, compare_runs
from pytest_edge.bench.report import benchmark_section, time_unit
from pytest_edge.bench.throughput import ThroughputResult
from pytest_edge.machine import HostMachine
from pytest_edge.report import (
    BoxSeries,
    DistributionChart,
    EdgeReport,
    LineChart,
    Paragraph,
    Section,
    Table,
    render,
    write_report,
)
from pytest_edge.report.collector import ReportCollector
from pytest_edge.report.device import device_section
from pytest_edge.report.json_format import SCHEMA, SCHEMA_ID
from pytest_edge.report.write import append_step_summary, format_for_path
from tests.bench.test_compare import history_of, noisy, result, run


def sample_report() -> EdgeReport:
    comparison = compare_runs(
        run(result("t.py::test_a", noisy(1)), result("t.py::test_b", noisy(2))),
        run(result("t.py::test_a", noisy(3, 1.3)), result("t.py::test_b", noisy(4))),
    )
    throughput = ThroughputResult(
        "t.py::test_a", "g", 100, "docs", True, 1e-3, 40, 2048, "raspberry-pi-4", 25000.0
    )
    report = EdgeReport("demo").with_section(benchmark_section([throughput], comparison))
    return report.with_section(device_section(HostMachine()))


def test_sections_are_ordered_and_replaced_by_key() -> None:
    report = EdgeReport().with_section(Section("scenarios", "Scenarios", order=30))
    report = report.with_section(Section("device", "Device", order=0))
    report = report.with_section(Section("scenarios", "Scenarios v2", order=30))
    assert [s.title for s in report.sections] == ["Device", "Scenarios v2"]


def test_collector_takes_sections_and_providers_from_any_feature() -> None:
    collector = ReportCollector()
    collector.add(Section("a", "A", status="ok"))
    collector.add_provider(lambda: Section("scenarios", "Scenarios", status="failed", order=30))
    collector.add_provider(lambda: None)
    report = collector.build()
    assert [s.key for s in report.sections] == ["scenarios", "a"]
    assert report.status == "failed"


def test_table_rows_must_match_the_header() -> None:
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        Table(("a", "b"), (("x",),), caption="t")


def test_markdown_has_tables_estimates_and_flags_the_regression() -> None:
    text = render(sample_report(), "md")
    assert "### Benchmarks ❌" in text
    assert "| t.py::test_a | slower (REGRESSION) |" in text
    assert "> **Estimate:** device throughput is an estimate" in text
    assert "### Device" in text


def check_schema(node: object, schema: dict[str, object]) -> None:
    """The subset of JSON Schema that SCHEMA uses: type, required, properties, items, enum."""
    kinds = {"object": dict, "array": list, "string": str}
    if "type" in schema:
        assert isinstance(node, kinds[str(schema["type"])])
    if "enum" in schema:
        assert node in schema["enum"]  # type: ignore[operator]
    if "const" in schema:
        assert node == schema["const"]
    if isinstance(node, dict):
        for key in schema.get("required", []):  # type: ignore[attr-defined]
            assert key in node, key
        for key, sub in schema.get("properties", {}).items():  # type: ignore[attr-defined]
            if key in node:
                check_schema(node[key], sub)
    if isinstance(node, list) and "items" in schema:
        for item in node:
            check_schema(item, schema["items"])  # type: ignore[arg-type]


def test_json_follows_the_documented_schema_and_carries_the_comparison() -> None:
    document = json.loads(render(sample_report(), "json"))
    check_schema(document, SCHEMA)
    assert document["schema"] == SCHEMA_ID
    bench = next(s for s in document["sections"] if s["key"] == "benchmarks")
    data = bench["data"]
    assert data["schema"] == "pytest-edge-benchmarks/1"
    rows = {r["benchmark"]: r for r in data["comparison"]["results"]}
    assert rows["t.py::test_a"]["verdict"] == "slower"
    assert rows["t.py::test_a"]["regression"] is True
    assert data["comparison"]["exit_code"] == 1
    assert data["throughput"][0]["device_items_per_s_estimate"] == 25000.0


def test_json_has_no_infinities_when_nothing_was_detectable() -> None:
    comparison = compare_runs(run(result("b", noisy(1, n=3))), run(result("b", noisy(2, n=3))))
    section = benchmark_section([], comparison)
    text = render(EdgeReport().with_section(section), "json")
    assert "Infinity" not in text
    assert (
        json.loads(text)["sections"][0]["data"]["comparison"]["results"][0]["detectable_change"]
        is None
    )


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


def test_write_report_by_extension_and_unknown_extension(tmp_path: Path) -> None:
    report = sample_report()
    for name in ["r.md", "r.json", "r.html"]:
        assert write_report(report, tmp_path / "sub" / name).stat().st_size > 100
    with pytest.raises(ValueError, match=r"cannot tell the format from \.txt; use one of"):
        format_for_path("report.txt")


def test_markdown_is_appended_to_the_github_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_step_summary(sample_report()) is None
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_step_summary(sample_report())
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "slower (REGRESSION)" in text


@pytest.mark.parametrize(
    ("seconds", "unit"), [(2.0, "s"), (0.002, "ms"), (2e-6, "µs"), (2e-9, "ns"), (1e-12, "ns")]
)
def test_time_units(seconds: float, unit: str) -> None:
    assert time_unit(seconds)[1] == unit
