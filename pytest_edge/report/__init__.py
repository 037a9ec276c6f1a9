"""The edge report: one plain-data model, one renderer per format (Markdown, JSON, HTML, text).

Features add `Section`s (device, benchmarks, scenarios, ...) to one `EdgeReport`; `write_report`
picks the renderer from the file's extension.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edge._lazy import lazy_exports

if TYPE_CHECKING:
    from pytest_edge.report.model import (
        Block,
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
    )
    from pytest_edge.report.write import (
        FORMATS,
        render,
        write_report,
    )

__all__ = [
    "FORMATS",
    "Block",
    "BoxSeries",
    "DistributionChart",
    "EdgeReport",
    "FailedTest",
    "LineChart",
    "OutcomeSummary",
    "Paragraph",
    "Problem",
    "Section",
    "Table",
    "render",
    "write_report",
]

# public name -> module that defines it; imported on first use (see pytest_edge._lazy)
_EXPORTS: dict[str, str] = {
    "Block": "pytest_edge.report.model",
    "BoxSeries": "pytest_edge.report.model",
    "DistributionChart": "pytest_edge.report.model",
    "EdgeReport": "pytest_edge.report.model",
    "FailedTest": "pytest_edge.report.model",
    "FORMATS": "pytest_edge.report.write",
    "LineChart": "pytest_edge.report.model",
    "OutcomeSummary": "pytest_edge.report.model",
    "Paragraph": "pytest_edge.report.model",
    "Problem": "pytest_edge.report.model",
    "Section": "pytest_edge.report.model",
    "Table": "pytest_edge.report.model",
    "render": "pytest_edge.report.write",
    "write_report": "pytest_edge.report.write",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
