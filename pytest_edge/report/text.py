"""Plain-text renderer for the terminal: aligned tables, no markup."""

from __future__ import annotations

from pytest_edge.report.model import DistributionChart, EdgeReport, LineChart, Paragraph, Table

_PREFIX = {"text": "", "note": "note: ", "warning": "WARNING: ", "estimate": "estimate: "}


def render_table(table: Table) -> list[str]:
    """The table as aligned plain-text lines: caption (if any), header, rule, rows.

    The one plain-text table of pytest-edge: the terminal summary, ``pytest-edge profiles``
    and the text report all print through it.
    """
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [table.caption] if table.caption else []
    out += [line(table.columns), line(tuple("-" * w for w in widths))]
    out += [line(row) for row in table.rows]
    return out


def render_text(report: EdgeReport) -> str:
    lines: list[str] = []
    for section in report.sections:
        lines += [f"{section.title} [{section.status}]"]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines.append(_PREFIX[block.kind] + block.text)
            elif isinstance(block, Table):
                lines += render_table(block)
            elif isinstance(block, DistributionChart | LineChart):
                continue
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
