"""The edge report as plain data: a report is sections, a section is blocks.

Nothing here knows about a format. A block is a paragraph, a table or a chart; a section may
also carry ``data``, a JSON-ready mapping that the JSON renderer writes for machines (the
benchmark section puts its full comparison there). ``order`` places sections: the device
first (0), benchmarks (20), scenarios (30); others default to 50.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pytest_edge.errors import EdgeInputError

Status = Literal["info", "ok", "warning", "failed"]
ParagraphKind = Literal["text", "note", "warning", "estimate", "failure"]
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_EXIT_WORDS = {
    0: "passed",
    1: "failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


@dataclass(frozen=True)
class Paragraph:
    """Text. ``kind`` marks notes, warnings, estimates and failures (a broken expectation)
    so every format can flag them."""

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
    """One distribution as a five-number summary (values in the chart's unit).

    ``outliers`` are the samples beyond 1.5 IQR from the box, when the samples are known;
    the whiskers then end at the furthest sample inside that fence (Tukey), else at min/max.
    ``verdict`` (e.g. ``slower``) colours the series; empty: neutral.
    """

    label: str
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    n: int
    outliers: tuple[float, ...] = ()
    verdict: str = ""

    def scaled(self, scale: float, label: str | None = None) -> BoxSeries:
        """The same summary in another unit (every value divided by ``scale``), relabelled."""
        return replace(
            self,
            label=self.label if label is None else label,
            minimum=self.minimum / scale,
            q1=self.q1 / scale,
            median=self.median / scale,
            q3=self.q3 / scale,
            maximum=self.maximum / scale,
            outliers=tuple(v / scale for v in self.outliers),
            whisker_low=None if self.whisker_low is None else self.whisker_low / scale,
            whisker_high=None if self.whisker_high is None else self.whisker_high / scale,
        )

    whisker_low: float | None = None
    whisker_high: float | None = None

    @property
    def whiskers(self) -> tuple[float, float]:
        """Where the whiskers end: given (Tukey, from the samples), else at min and max."""
        low = self.minimum if self.whisker_low is None else self.whisker_low
        high = self.maximum if self.whisker_high is None else self.whisker_high
        return low, high

    @classmethod
    def from_samples(
        cls, label: str, samples: Sequence[float], verdict: str = "", max_outliers: int = 40
    ) -> Self:
        """Quartiles, whiskers at the last sample within 1.5 IQR of the box, and the samples
        beyond as outliers (the ``max_outliers`` most extreme when there are more)."""
        import statistics  # not at import time: the report model loads in every pytest run

        data = sorted(float(v) for v in samples if math.isfinite(v))
        if not data:
            raise EdgeInputError(f"box {label!r}: no finite sample to summarise")
        if len(data) == 1:
            q1 = median = q3 = data[0]
        else:
            q1, median, q3 = statistics.quantiles(data, n=4, method="inclusive")
        fence = 1.5 * (q3 - q1)
        inside = [v for v in data if q1 - fence <= v <= q3 + fence] or data
        outside = [v for v in data if v < q1 - fence or v > q3 + fence]
        if len(outside) > max_outliers:
            outside = sorted(outside, key=lambda v: -max(q1 - v, v - q3))[:max_outliers]
        return cls(
            label,
            data[0],
            q1,
            median,
            q3,
            data[-1],
            len(data),
            tuple(sorted(outside)),
            verdict,
            inside[0],
            inside[-1],
        )


@dataclass(frozen=True)
class DistributionChart:
    """Box plots of several distributions on one axis (e.g. baseline vs current).

    Put series on one chart only when a shared axis means something (the same benchmark in
    two runs, or one group's members); ``axis`` names the quantity (``time per call``).
    """

    title: str
    unit: str
    series: tuple[BoxSeries, ...]
    axis: str = "time per call"


@dataclass(frozen=True)
class LineChart:
    """A value over successive runs (e.g. a benchmark's median over the saved history).

    A point's label is its run (commit, and date after a newline when known); the last
    point is the current run, coloured by ``verdict`` when one is given.
    """

    title: str
    unit: str
    points: tuple[tuple[str, float], ...]
    axis: str = "median time per call"
    verdict: str = ""


@dataclass(frozen=True)
class Problem:
    """Something that needs attention, for the summary at the top of the report.

    ``kind`` is a singular noun phrase the banner counts ("failed test", "regression",
    "failed scenario"); ``anchor`` is the id of the part of the report with the details.
    ``test`` names the pytest test this problem is also reported as (a scenario is a test):
    a failed test whose id is ``test``, ends with ``::test`` or with ``::test[...]`` is
    counted once, as this problem.
    """

    kind: str
    name: str
    message: str = ""
    anchor: str = ""
    test: str = ""

    def is_test(self, nodeid: str) -> bool:
        if not self.test:
            return False
        return (
            nodeid == self.test
            or nodeid.endswith(f"::{self.test}")
            or (f"::{self.test}[" in nodeid and nodeid.endswith("]"))
        )


@dataclass(frozen=True)
class FailedTest:
    """One test that did not pass (failed, error or xpassed strictly), with its message."""

    nodeid: str
    outcome: str
    message: str
    details: str = ""
    when: str = "call"


@dataclass(frozen=True)
class OutcomeSummary:
    """pytest's own verdict on the run: counts per outcome, the exit code, the failures.

    Built from every test report the controller saw (so also under pytest-xdist).
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    failures: tuple[FailedTest, ...] = ()
    duration_s: float | None = None

    @property
    def exit_word(self) -> str:
        """``passed``, ``failed``, ``interrupted``... as pytest's exit code means it."""
        if self.exit_code is None:
            return "unknown"
        return _EXIT_WORDS.get(self.exit_code, f"exit code {self.exit_code}")

    @property
    def status(self) -> Status:
        if self.exit_code is None:
            return "info"
        if self.exit_code in (0, 5):
            return "failed" if self.failures else "ok"
        return "failed"

    @property
    def total(self) -> int:
        return sum(self.counts.values())


Block = Paragraph | Table | DistributionChart | LineChart


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...] = ()
    status: Status = "info"
    order: int = 50
    data: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class EdgeReport:
    title: str = "pytest-edge report"
    sections: tuple[Section, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    outcome: OutcomeSummary | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # (name, value): command line, commit, seed...

    def with_section(self, section: Section) -> EdgeReport:
        """A copy with ``section`` added (replacing one with the same key), kept in order."""
        kept = [s for s in self.sections if s.key != section.key]
        ordered = sorted([*kept, section], key=lambda s: s.order)
        return replace(self, sections=tuple(ordered))

    @property
    def status(self) -> Status:
        """The worst status of the test outcome and of any section."""
        rank = {"info": 0, "ok": 1, "warning": 2, "failed": 3}
        statuses = [s.status for s in self.sections]
        if self.outcome is not None:
            statuses.append(self.outcome.status)
        worst: Status = "info"
        for status in statuses:
            if rank[status] > rank[worst]:
                worst = status
        return worst

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What needs attention: failed tests first, then each section's problems.

        A test a section reports itself (a failed scenario is also a failed test) is
        counted once, as the section's kind.
        """
        section_problems = [p for s in self.sections for p in s.problems]
        tests = [
            Problem(
                "error" if f.outcome == "error" else f"{f.outcome} test",
                f.nodeid,
                f.message,
                failure_anchor(f.nodeid),
            )
            for f in (self.outcome.failures if self.outcome else ())
            if not any(p.is_test(f.nodeid) for p in section_problems)
        ]
        return (*tests, *section_problems)

    def attention(self) -> str:
        """The banner line: ``2 failed tests, 4 regressions, 1 failed scenario``; empty when
        nothing needs attention."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.kind] = counts.get(problem.kind, 0) + 1
        first = {"failed test": 0, "error": 1, "xpassed test": 2}  # then the sections' order
        kinds = sorted(counts, key=lambda kind: first.get(kind, len(first)))
        return ", ".join(f"{counts[kind]} {plural(kind, counts[kind])}" for kind in kinds)


def plural(noun: str, count: int) -> str:
    """``failed test`` -> ``failed tests`` (for the kinds of `Problem` the report counts)."""
    if count == 1:
        return noun
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def failure_anchor(nodeid: str) -> str:
    """The HTML id of a failed test's details: stable, and safe in an attribute and a URL."""
    import hashlib

    return "failure-" + hashlib.sha1(nodeid.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
