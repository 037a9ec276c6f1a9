"""The edge report: one plain-data model, one renderer per format (Markdown, JSON, HTML, text).

Features add `Section`s (device, benchmarks, scenarios, ...) to one `EdgeReport`; `write_report`
picks the renderer from the file's extension.
"""

from __future__ import annotations

from pytest_edge.report.model import (
    Block,
    BoxSeries,
    DistributionChart,
    EdgeReport,
    LineChart,
    Paragraph,
    Section,
    Table,
)
from pytest_edge.report.write import FORMATS, render, write_report

__all__ = [
    "FORMATS",
    "Block",
    "BoxSeries",
    "DistributionChart",
    "EdgeReport",
    "LineChart",
    "Paragraph",
    "Section",
    "Table",
    "render",
    "write_report",
]
