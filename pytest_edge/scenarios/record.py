"""One line of the scenario summary: plain data that crosses xdist and feeds the report.

A record is made where the scenario ran (maybe an xdist worker), travels as a JSON-able
dict in the test report's ``user_properties``, and is turned into the terminal table and the
report section on the controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_edge.device.speed import PROJECTION
from pytest_edge.report.model import Table
from pytest_edge.report.text import render_table
from pytest_edge.report.units import format_rate
from pytest_edge.scenarios.outcome import ScenarioOutcome

PROPERTY = "edge_scenario"
ESTIMATE_NOTE = f"Projected device throughput is {PROJECTION}."
MAX_FAULT_LINES = 5


@dataclass(frozen=True)
class ScenarioRecord:
    name: str
    path: str
    profile: str
    asked: str | None = None  # the profile name or alias that chose the device
    description: str = ""
    outcome: str = "passed"  # passed | failed | skipped
    reasons: tuple[str, ...] = ()
    items: int | None = None
    errors: int | None = None
    unit: str | None = None
    seconds: float | None = None
    throughput: float | None = None
    projected_throughput: float | None = None
    error_rate: float | None = None
    peak_memory_mb: float | None = None
    budget_mb: float | None = None
    faults_fired: int = 0
    fault_lines: tuple[str, ...] = ()
    crash_mode: str | None = None
    crash_cycles: int | None = None
    acked_writes: int | None = None
    lost_writes: int | None = None
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def from_outcome(
        cls,
        outcome: ScenarioOutcome,
        *,
        path: str,
        description: str,
        reasons: Sequence[str],
        asked: str | None = None,
    ) -> ScenarioRecord:
        result, crash = outcome.result, outcome.crash
        return cls(
            name=outcome.name,
            path=path,
            profile=outcome.profile,
            asked=asked,
            description=description,
            outcome="failed" if reasons else "passed",
            reasons=tuple(reasons),
            items=None if result is None else result.items,
            errors=None if result is None else result.errors,
            unit=None if result is None else result.unit,
            seconds=outcome.seconds,
            throughput=outcome.throughput,
            projected_throughput=outcome.projected_throughput,
            error_rate=outcome.error_rate,
            peak_memory_mb=outcome.peak_memory_mb,
            budget_mb=outcome.budget_mb,
            faults_fired=len(outcome.faults_fired),
            fault_lines=outcome.faults_fired[:MAX_FAULT_LINES],
            crash_mode=None if crash is None else crash.mode,
            crash_cycles=None if crash is None else crash.cycles_run,
            acked_writes=None if crash is None else crash.acked_writes,
            lost_writes=None if crash is None else crash.lost_writes,
            notes=outcome.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("reasons", "fault_lines", "notes"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioRecord:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        for key in ("reasons", "fault_lines", "notes"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def peak_text(peak_mb: float | None, budget_mb: float | None) -> str:
    """``60.1 / 4020`` (MB); a peak that was not measured (the run failed before it could
    be) says so, and a real peak under 0.1 MB is not rounded to a misleading ``0.0``."""
    if peak_mb is None:
        peak = "not measured"
    elif peak_mb < 0.05:
        peak = "< 0.1"
    else:
        peak = f"{peak_mb:.1f}"
    return f"{peak} / {_num(budget_mb, '{:.0f}')}"


COLUMNS = (
    "scenario",
    "device",
    "outcome",
    "faults fired",
    "crash cycles",
    "peak / budget MB",
    "throughput",
    "on device (estimate)",
    "error rate",
)


def rows(records: Sequence[ScenarioRecord]) -> list[tuple[str, ...]]:
    """The summary table's rows, one per scenario run (numbers in readable units)."""
    out: list[tuple[str, ...]] = []
    for r in records:
        crash = "-"
        if r.crash_cycles is not None:
            crash = (
                f"{r.crash_cycles} {r.crash_mode}: {r.lost_writes} of {r.acked_writes} acked lost"
            )
        out.append(
            (
                r.name,
                r.profile,
                r.outcome,
                str(r.faults_fired),
                crash,
                peak_text(r.peak_memory_mb, r.budget_mb),
                format_rate(r.throughput, r.unit),
                format_rate(r.projected_throughput, r.unit),
                _num(r.error_rate, "{:.3f}"),
            )
        )
    return out


def verdict(records: Sequence[ScenarioRecord]) -> str:
    """One line: PASS when every scenario passed, else FAIL with the counts."""
    failed = [r for r in records if r.outcome == "failed"]
    skipped = [r for r in records if r.outcome == "skipped"]
    passed = len(records) - len(failed) - len(skipped)
    counts = f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped"
    return f"{'FAIL' if failed else 'PASS'}: {counts} of {len(records)} scenario runs"


def terminal_table(records: Sequence[ScenarioRecord]) -> Table:
    """The summary table for the terminal: when every run was on one device, that device
    is said once above the table instead of in a column (the table then fits 120 columns)."""
    table = rows(records)
    devices = {r.profile for r in records}
    if len(devices) != 1:
        return Table(COLUMNS, tuple(table))
    keep = [i for i, name in enumerate(COLUMNS) if name != "device"]
    return Table(
        tuple(COLUMNS[i] for i in keep),
        tuple(tuple(row[i] for i in keep) for row in table),
        caption=f"device: {devices.pop()} (every run)",
    )


def render_rows(columns: Sequence[str], table: Sequence[Sequence[str]]) -> list[str]:
    """The table as aligned plain-text lines (header, rule, rows) for the terminal."""
    return render_table(Table(tuple(columns), tuple(tuple(row) for row in table)))
