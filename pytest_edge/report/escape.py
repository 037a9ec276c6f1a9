"""User-supplied strings made inert for the terminal and for Markdown.

Test ids, scenario names, messages, paths and fault targets come from users' files. Printed
raw, an escape sequence in a scenario name sets the terminal's title or clears the screen,
and ``<img onerror=...>`` or ``[x](javascript:...)`` reaches GitHub's Markdown renderer.

- `terminal_safe` shows every control character as a visible escape (``\\x1b``): C0, DEL, C1
  (so no CSI/OSC sequence, BEL or carriage return takes effect), the bidirectional overrides
  that reorder what is shown, line/paragraph separators and lone surrogates.
- `markdown_safe` makes a string literal text in GitHub-flavoured Markdown, also inside a
  table cell: HTML's special characters become entities and Markdown's backslash-escaped,
  so no tag, link, image, emphasis, code span, table pipe, math or heading can start.
"""

from __future__ import annotations

import re
import unicodedata

# Code points that reorder or break the displayed line (Trojan Source, CVE-2021-42574).
_INVISIBLE_LAYOUT = (
    *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO
    *range(0x2066, 0x206A),  # LRI RLI FSI PDI
    0x200E,  # LRM
    0x200F,  # RLM
    0x061C,  # ALM
    0x2028,  # line separator
    0x2029,  # paragraph separator
)


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TERMINAL: dict[int, str] = {
    code: _visible(code)
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_INVISIBLE_LAYOUT, *range(0xD800, 0xE000))
}
_TERMINAL_LINES = {**_TERMINAL, ord("\n"): "\n"}


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as an escape (``\\x1b``), never executed.

    Tabs and line breaks become visible escapes too, so a table cell stays one line; with
    `keep_newlines`, ``\\n`` is kept (a multi-line message printed as lines).
    """
    return text.translate(_TERMINAL_LINES if keep_newlines else _TERMINAL)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters 2, combining marks 0."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_ESCAPED = "\\`*[]|~$"  # code spans, emphasis, links/images, cells, strikes, math
_MARKDOWN = re.compile(
    r"[\\`*\[\]|~$&<>]"
    r"|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])"  # _ that could open or close emphasis
    r"|:(?=[0-9A-Za-z_+-]+:)"  # :shortcode: emoji
    r"|\r\n?|\n|[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LINE_START = re.compile(r"^( *)(?:([#+=-])|(\d{1,9})([.)]))?")


def _markdown_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _HTML:
        return _HTML[char]
    if char in ("\n", "\r", "\r\n"):
        return "<br>"  # a visible break that cannot end a table row or a paragraph
    if len(char) == 1 and (char in _MARKDOWN_ESCAPED or char in "_:"):
        return "\\" + char
    return "\\" + terminal_safe(char)


def _line_start(match: re.Match[str]) -> str:
    spaces, marker, digits, delimiter = match.groups()
    lead = "&#32;" * len(spaces)  # four spaces would start a code block
    if marker:
        return f"{lead}\\{marker}"
    return f"{lead}{digits}\\{delimiter}" if digits else lead


def markdown_safe(text: str) -> str:
    """`text` as literal GitHub-flavoured Markdown text, safe inline and inside a table cell.

    ``& < >`` become entities and ``\\ ` * [ ] | ~ $`` (and ``_`` or ``:`` where they could
    open emphasis or an emoji shortcode) are backslash-escaped, so no tag, code span, link,
    image, table pipe, strike or math can start; a heading, list or quote marker at the start
    is escaped too. A line break becomes ``<br>`` (the only tag written, written by us);
    control characters are shown as escapes, as in the terminal.
    """
    escaped = _MARKDOWN.sub(_markdown_char, text)
    return _LINE_START.sub(_line_start, escaped, count=1)
