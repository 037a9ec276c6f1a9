"""Collects the sections of one run's edge report, from any feature.

A feature adds a finished `Section` with `add`, or registers a provider (called once, when
the report is built) with `add_provider`. Under pytest, the report plugin fills one at the end
of the session with the sections every capability returns from the
``pytest_edge_report_sections`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pytest_edge.report.model import EdgeReport, OutcomeSummary, Section

SectionProvider = Callable[[], "Section | None"]


class ReportCollector:
    """Sections, plus pytest's outcome summary and the run's metadata when set."""

    def __init__(self, title: str = "pytest-edge report") -> None:
        self.title = title
        self.outcome: OutcomeSummary | None = None
        self.metadata: tuple[tuple[str, str], ...] = ()
        self._sections: dict[str, Section] = {}
        self._providers: list[SectionProvider] = []

    def add(self, section: Section) -> None:
        """Add or replace (same ``key``) a section."""
        self._sections[section.key] = section

    def add_provider(self, provider: SectionProvider) -> None:
        self._providers.append(provider)

    def build(self) -> EdgeReport:
        report = replace(EdgeReport(self.title), outcome=self.outcome, metadata=self.metadata)
        for section in self._sections.values():
            report = report.with_section(section)
        for provider in self._providers:
            provided = provider()
            if provided is not None:
                report = report.with_section(provided)
        return report
