"""The collector: sections and section providers from any feature, in one report."""

from __future__ import annotations

from pytest_edge.report import Section
from pytest_edge.report.collector import ReportCollector


def test_collector_takes_sections_and_providers_from_any_feature() -> None:
    collector = ReportCollector()
    collector.add(Section("a", "A", status="ok"))
    collector.add_provider(lambda: Section("scenarios", "Scenarios", status="failed", order=30))
    collector.add_provider(lambda: None)
    report = collector.build()
    assert [s.key for s in report.sections] == ["scenarios", "a"]
    assert report.status == "failed"
