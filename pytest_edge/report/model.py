"""The edge report as plain data: a report is sections, a section is blocks.

Nothing here knows about a format. A block is a paragraph, a table or a chart; a section may
also carry ``data``, a JSON-ready mapping that the JSON renderer writes for machines (the
benchmark section puts its full comparison there). ``order`` places sections: the device
first (0), benchmarks (20), scenarios (30); others default to 50.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pytest_edge.errors import EdgeInputError

Status = Literal["info", "ok", "warning", "failed"]
ParagraphKind = Literal["text", "note", "warning", "estimate"]


@dataclass(frozen=True)
class Paragraph:
    """Text. ``kind`` marks notes, warnings and estimates so every format can flag them."""

    text: str
    kind: ParagraphKind = "text"


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise EdgeInputError(
                    f"table {self.caption or self.columns!r}: a row has {len(row)} cells, "
                    f"the header {len(self.columns)}"
                )


@dataclass(frozen=True)
class BoxSeries:
    """One distribution as a five-number summary (values in the chart's unit)."""

    label: str
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    n: int

    def scaled(self, scale: float, label: str | None = None) -> BoxSeries:
        """The same summary in another unit (every value divided by ``scale``), relabelled."""
        return BoxSeries(
            self.label if label is None else label,
            self.minimum / scale,
            self.q1 / scale,
            self.median / scale,
            self.q3 / scale,
            self.maximum / scale,
            self.n,
        )


@dataclass(frozen=True)
class DistributionChart:
    """Box plots of several distributions on one axis (e.g. baseline vs current)."""

    title: str
    unit: str
    series: tuple[BoxSeries, ...]


@dataclass(frozen=True)
class LineChart:
    """A value over successive runs (e.g. a benchmark's median over the saved history)."""

    title: str
    unit: str
    points: tuple[tuple[str, float], ...]


Block = Paragraph | Table | DistributionChart | LineChart


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...] = ()
    status: Status = "info"
    order: int = 50
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EdgeReport:
    title: str = "pytest-edge report"
    sections: tuple[Section, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def with_section(self, section: Section) -> EdgeReport:
        """A copy with ``section`` added (replacing one with the same key), kept in order."""
        kept = [s for s in self.sections if s.key != section.key]
        ordered = sorted([*kept, section], key=lambda s: s.order)
        return replace(self, sections=tuple(ordered))

    @property
    def status(self) -> Status:
        """The worst status of any section."""
        rank = {"info": 0, "ok": 1, "warning": 2, "failed": 3}
        worst: Status = "info"
        for section in self.sections:
            if rank[section.status] > rank[worst]:
                worst = section.status
        return worst
