"""Markdown renderer (GitHub-flavoured: pipe tables, as `$GITHUB_STEP_SUMMARY` shows them).

Every string of the report (titles, cells, paragraphs: test ids, scenario names, messages,
paths come from users) goes through `markdown_safe`, so it renders as the literal text it is.
The only markup in the output is the renderer's own.
"""

from __future__ import annotations

from pytest_edge.report.escape import markdown_safe as md
from pytest_edge.report.escape import terminal_safe
from pytest_edge.report.model import (
    OUTCOMES,
    DistributionChart,
    EdgeReport,
    LineChart,
    OutcomeSummary,
    Paragraph,
    Table,
)
from pytest_edge.report.units import format_time

_PREFIX = {
    "text": "",
    "note": "> **Note:** ",
    "warning": "> **Warning:** ",
    "estimate": "> **Estimate:** ",
    "failure": "> ❌ **Failed:** ",
}
_STATUS = {"info": "", "ok": " ✅", "warning": " ⚠️", "failed": " ❌"}
_STATUS_WORDS = {"info": "info", "ok": "✅ passed", "warning": "⚠️ warning", "failed": "❌ FAILED"}
MAX_DETAILS = 20  # failures whose full report is written out (the summary lists them all)


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(md(c) for c in cells) + " |"


def _table(table: Table) -> list[str]:
    lines = [f"*{md(table.caption)}*", ""] if table.caption else []
    lines.append(_row(table.columns))
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += [_row(row) for row in table.rows]
    return lines


def _fence(text: str) -> list[str]:
    """`text` as a fenced code block: literal, whatever it contains (the fence is longer
    than any run of backticks in it, so nothing inside can close it)."""
    fence = "`" * max([3, *(n + 1 for n in _backtick_runs(text))])
    return [fence + "text", terminal_safe(text, keep_newlines=True), fence]


def _backtick_runs(text: str) -> list[int]:
    runs, current = [], 0
    for char in text:
        if char == "`":
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return [*runs, current] if current else runs


def _counts(outcome: OutcomeSummary) -> list[str]:
    names = [*OUTCOMES, *(k for k in outcome.counts if k not in OUTCOMES)]
    duration = ""
    if outcome.duration_s is not None:
        duration = f" in {format_time(outcome.duration_s)}"
    return [
        "| " + " | ".join(md(n) for n in names) + " |",
        "|" + "|".join("---:" for _ in names) + "|",
        "| " + " | ".join(_count(outcome, n) for n in names) + " |",
        "",
        f"{outcome.total} test reports{duration}; pytest exit code {outcome.exit_code} "
        f"({md(outcome.exit_word)}).",
        "",
    ]


def _count(outcome: OutcomeSummary, name: str) -> str:
    count = outcome.counts.get(name, 0)
    return f"**{count}**" if count and name in ("failed", "error") else str(count)


def _summary(report: EdgeReport, top: str) -> list[str]:
    """The outcome summary: status and banner, counts, what needs attention, failures first."""
    status = report.status
    word = _STATUS_WORDS[status]
    outcome = report.outcome
    if outcome is not None:
        word += f": pytest {outcome.exit_word} (exit code {outcome.exit_code})"
    attention = report.attention()
    lines = [f"**{md(word)}**" + (f" · Needs attention: {md(attention)}." if attention else "")]
    lines.append("")
    if outcome is not None:
        lines += _counts(outcome)
    problems = report.problems
    if problems:
        lines += [f"{top}# Needs attention", ""]
        for number, problem in enumerate(problems, 1):
            message = f": {md(problem.message)}" if problem.message else ""
            lines.append(f"{number}. ❌ **{md(problem.kind)}** {md(problem.name)}{message}")
        lines.append("")
    return lines


def _failure_details(report: EdgeReport, top: str) -> list[str]:
    failures = report.outcome.failures if report.outcome is not None else ()
    if not failures:
        return []
    lines = [f"{top}# Failed tests ❌", ""]
    for failure in failures[:MAX_DETAILS]:
        lines += [f"❌ **{md(failure.outcome)}** {md(failure.nodeid)} ({md(failure.when)})", ""]
        if failure.details:
            lines += [*_fence(failure.details), ""]
    if len(failures) > MAX_DETAILS:
        lines += [f"{len(failures) - MAX_DETAILS} more failures: see the HTML report.", ""]
    return lines


def render_markdown(report: EdgeReport, heading_level: int = 2) -> str:
    """The report as Markdown: the outcome summary first, then every section (charts are
    left to the HTML report), the failures' details and the run's metadata."""
    top = "#" * heading_level
    lines = [f"{top} {md(report.title)}", "", *_summary(report, top)]
    lines += [f"Generated {md(report.created)}.", ""]
    lines += _failure_details(report, top)
    for section in report.sections:
        lines += [f"{top}# {md(section.title)}{_STATUS[section.status]}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [_PREFIX[block.kind] + md(block.text), ""]
            elif isinstance(block, Table):
                lines += [*_table(block), ""]
            elif isinstance(block, DistributionChart | LineChart):
                continue  # charts are drawn in the HTML report
    if report.metadata:
        lines += [f"{top}# Run", "", *_table(Table(("run", "value"), report.metadata)), ""]
    return "\n".join(lines).rstrip() + "\n"
