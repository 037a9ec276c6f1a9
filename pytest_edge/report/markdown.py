"""Markdown renderer (GitHub-flavoured: pipe tables, as `$GITHUB_STEP_SUMMARY` shows them)."""

from __future__ import annotations

from pytest_edge.report.model import DistributionChart, EdgeReport, LineChart, Paragraph, Table

_PREFIX = {
    "text": "",
    "note": "> **Note:** ",
    "warning": "> **Warning:** ",
    "estimate": "> **Estimate:** ",
}
_STATUS = {"info": "", "ok": " ✅", "warning": " ⚠️", "failed": " ❌"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def render_markdown(report: EdgeReport, heading_level: int = 2) -> str:
    """The report as Markdown; charts are left to the HTML report and named as such."""
    top = "#" * heading_level
    lines = [f"{top} {report.title}", "", f"Generated {report.created}.", ""]
    for section in report.sections:
        lines += [f"{top}# {section.title}{_STATUS[section.status]}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [_PREFIX[block.kind] + block.text, ""]
            elif isinstance(block, Table):
                lines += [*_table(block), ""]
            elif isinstance(block, DistributionChart | LineChart):
                continue  # charts are drawn in the HTML report
    return "\n".join(lines).rstrip() + "\n"
