"""Plain-text renderer for the terminal: aligned tables that fit, no markup, inert strings.

Every cell, caption and paragraph goes through `terminal_safe` (a scenario name with an
escape sequence prints as ``\\x1b]0;...``, it does not retitle the terminal). A table wider
than `WIDTH` columns first shows a prefix shared by a whole column once (``…`` in the cells,
the prefix in a legend line), then wraps the widest columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pytest_edge.report.escape import display_width, terminal_safe
from pytest_edge.report.model import (
    OUTCOMES,
    DistributionChart,
    EdgeReport,
    LineChart,
    Paragraph,
    Table,
)

WIDTH = 120
_GAP = 2
_MIN_COLUMN = 6  # a column is never squeezed below this (or its natural width, if smaller)
_MIN_PREFIX = 12  # a shared prefix shorter than this is not worth a legend line
_ELLIPSIS = "…"
_BREAKS = ("::", "/", "-", "_", ".", ",")  # a long word wraps after one of these
_PREFIX = {
    "text": "",
    "note": "note: ",
    "warning": "WARNING: ",
    "estimate": "estimate: ",
    "failure": "FAILED: ",
}


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` terminal columns: at spaces, else mid-word."""
    width = max(width, 1)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if display_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while display_width(word) > width:  # break after a separator that fits, else anywhere
            cut = _fitting(word, width)
            head = word[:cut]
            at = max(
                [head.rfind(sep) + len(sep) for sep in _BREAKS if sep in head]
                + [head.rfind("[")],  # before a parametrisation
            )
            cut = at if at > cut // 3 else cut
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    return lines


def _fitting(word: str, width: int) -> int:
    """How many leading characters of `word` fit in `width` columns (at least one)."""
    used = 0
    for index, char in enumerate(word):
        used += display_width(char)
        if used > width:
            return max(index, 1)
    return len(word)


def _shared_prefix(cells: Sequence[str]) -> str:
    """The longest prefix of every cell ending at a path or test-id separator."""
    if len(cells) < 2:
        return ""
    prefix = os.path.commonprefix(list(cells))  # noqa: RUF071 - test ids are not paths alone
    cut = max(prefix.rfind("/") + 1, prefix.rfind("::") + 2)
    prefix = prefix[:cut]
    if len(prefix) < _MIN_PREFIX or any(len(c) == len(prefix) for c in cells):
        return ""
    return prefix


def _column_widths(
    natural: list[int], snug: list[int], tight: list[int], available: int
) -> list[int]:
    """Widths summing to at most `available`.

    Headers wrap first: each column gets its `snug` width (its cells and its header's longest
    word) and what is left goes back to the headers. Then cells wrap at spaces, in the column
    that can give the most first and only as much as needed (never below its `tight` width,
    the longest word), so one column wraps rather than many; only past that are the widest
    columns cut inside words (a test id last of all, as it has no spaces).
    """
    if sum(natural) <= available:
        return natural
    if sum(snug) <= available:
        widths = list(snug)
        spare = available - sum(widths)
        for i, want in enumerate(natural):
            give = min(spare, want - widths[i])
            widths[i] += give
            spare -= give
        return widths
    if sum(tight) <= available:  # wrap at spaces: the column with the most slack first
        widths = list(snug)
        excess = sum(widths) - available
        for i in sorted(range(len(widths)), key=lambda i: tight[i] - snug[i]):
            cut = min(excess, widths[i] - tight[i])
            widths[i] -= cut
            excess -= cut
        return widths
    snug = tight
    floors = [min(n, _MIN_COLUMN) for n in snug]
    if sum(floors) > available:  # too many columns for the width: share it evenly
        even = max(available // len(snug), 1)
        return [min(n, even) for n in snug]
    return _capped(snug, floors, available)


def _capped(widths: list[int], floors: list[int], available: int) -> list[int]:
    """`widths` capped at the largest common cap that fits, never below `floors`."""
    low, high = 1, max(widths)
    while low < high:
        cap = (low + high + 1) // 2
        if sum(max(f, min(n, cap)) for n, f in zip(widths, floors, strict=True)) <= available:
            low = cap
        else:
            high = cap - 1
    return [max(f, min(n, low)) for n, f in zip(widths, floors, strict=True)]


def render_table(table: Table, width: int = WIDTH) -> list[str]:
    """The table as aligned plain-text lines, at most `width` columns wide.

    Caption (if any), a legend for an abbreviated shared prefix (if any), header, rule, rows.
    The one plain-text table of pytest-edge: the terminal summaries, ``pytest-edge profiles``
    and the text report all print through it.
    """
    columns = [terminal_safe(c) for c in table.columns]
    rows = [[terminal_safe(c) for c in row] for row in table.rows]

    def natural(header: bool = True, cells: bool = True) -> list[int]:
        """Each column's width: its header's and its cells' (or their longest words')."""

        def width_of(text: str, whole: bool) -> int:
            return display_width(text) if whole else max(map(display_width, text.split(" ")))

        widths = [width_of(c, header) for c in columns]
        for row in rows:
            widths = [max(w, width_of(cell, cells)) for w, cell in zip(widths, row, strict=True)]
        return widths

    widths = natural()
    legend: list[str] = []
    gaps = _GAP * (len(columns) - 1)
    if sum(widths) + gaps > width:
        for index in range(len(columns)):
            prefix = _shared_prefix([row[index] for row in rows])
            if prefix:
                for row in rows:
                    row[index] = _ELLIPSIS + row[index][len(prefix) :]
                legend.append(f"{_ELLIPSIS} in {columns[index]!r} = {prefix}")
        widths = _column_widths(
            natural(), natural(header=False), natural(False, False), width - gaps
        )

    def lines(cells: Sequence[str]) -> list[str]:
        wrapped = [wrap(cell, w) for cell, w in zip(cells, widths, strict=True)]
        height = max(len(w) for w in wrapped)
        out = []
        for i in range(height):
            parts = [
                _pad(w[i] if i < len(w) else "", n) for w, n in zip(wrapped, widths, strict=True)
            ]
            out.append((" " * _GAP).join(parts).rstrip())
        return out

    out = wrap(terminal_safe(table.caption), width) if table.caption else []
    for line in legend:
        out += wrap(line, width)
    out += lines(columns)
    out.append((" " * _GAP).join("-" * w for w in widths))
    for row in rows:
        out += lines(row)
    return out


def summary_lines(report: EdgeReport, width: int = WIDTH) -> list[str]:
    """The outcome summary: status (pytest's exit code), what needs attention, the counts,
    then one line per problem, failures first."""
    head = f"{terminal_safe(report.title)}: {report.status.upper()}"
    outcome = report.outcome
    if outcome is not None:
        head += f" (pytest {outcome.exit_word}, exit code {outcome.exit_code})"
    lines = wrap(head, width)
    attention = report.attention()
    if attention:
        lines += wrap(f"needs attention: {terminal_safe(attention)}", width)
    if outcome is not None:
        names = [*OUTCOMES, *(k for k in outcome.counts if k not in OUTCOMES)]
        counts = ", ".join(f"{outcome.counts.get(n, 0)} {terminal_safe(n)}" for n in names)
        lines += wrap(f"outcomes: {counts}", width)
    for problem in report.problems:
        message = f": {problem.message}" if problem.message else ""
        text = terminal_safe(f"{problem.kind.upper()} {problem.name}{message}")
        lines += wrap(text, width)
    return lines


def render_text(report: EdgeReport, width: int = WIDTH) -> str:
    """The report as plain text for a terminal or a log: the outcome summary, the sections."""
    lines: list[str] = []
    if report.outcome is not None or report.problems:
        lines += [*summary_lines(report, width), ""]
    for section in report.sections:
        lines += [f"{terminal_safe(section.title)} [{section.status}]"]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                text = _PREFIX[block.kind] + terminal_safe(block.text, keep_newlines=True)
                for paragraph_line in text.splitlines() or [""]:
                    lines += wrap(paragraph_line, width)
            elif isinstance(block, Table):
                lines += render_table(block, width)
            elif isinstance(block, DistributionChart | LineChart):
                continue
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
