"""Markdown renderer (GitHub-flavoured: pipe tables, as `$GITHUB_STEP_SUMMARY` shows them).

Every string of the report (titles, cells, paragraphs: test ids, scenario names, messages,
paths come from users) goes through `markdown_safe`, so it renders as the literal text it is.
The only markup in the output is the renderer's own.
"""

from __future__ import annotations

from pytest_edge.report.escape import markdown_safe as md
from pytest_edge.report.model import DistributionChart, EdgeReport, LineChart, Paragraph, Table

_PREFIX = {
    "text": "",
    "note": "> **Note:** ",
    "warning": "> **Warning:** ",
    "estimate": "> **Estimate:** ",
}
_STATUS = {"info": "", "ok": " ✅", "warning": " ⚠️", "failed": " ❌"}


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(md(c) for c in cells) + " |"


def _table(table: Table) -> list[str]:
    lines = [f"*{md(table.caption)}*", ""] if table.caption else []
    lines.append(_row(table.columns))
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += [_row(row) for row in table.rows]
    return lines


def render_markdown(report: EdgeReport, heading_level: int = 2) -> str:
    """The report as Markdown; charts are left to the HTML report and named as such."""
    top = "#" * heading_level
    lines = [f"{top} {md(report.title)}", "", f"Generated {md(report.created)}.", ""]
    for section in report.sections:
        lines += [f"{top}# {md(section.title)}{_STATUS[section.status]}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [_PREFIX[block.kind] + md(block.text), ""]
            elif isinstance(block, Table):
                lines += [*_table(block), ""]
            elif isinstance(block, DistributionChart | LineChart):
                continue  # charts are drawn in the HTML report
    return "\n".join(lines).rstrip() + "\n"
