"""Hostile user strings in the Markdown report and step summary render as literal text.

Two checks: the escaped source (nothing that starts markup survives unescaped) and GitHub's
own renderer (cmark-gfm, through cmarkgfm): no tag but the renderer's own, the text shown is
the text given.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.report import EdgeReport, Paragraph, Section, Table, render
from pytest_edge.report.escape import markdown_safe, terminal_safe

PAYLOADS = (
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![i](javascript:alert(1))",
    "[ref]: javascript:alert(1)",
    "<a href='javascript:x'>y</a>",
    "|",
    "`",
    "```",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\x1b]0;pwned\x07",
    "\x1b[2J",
    "\x9b31m",
    "*",
    "**b**",
    "_",
    "__x__",
    "~~s~~",
    "$x^2$",
    "# ",
    "- ",
    "+ ",
    "> ",
    "1. ",
    "2) ",
    "    ",
    "=",
    "&lt;",
    "&amp;",
    "&#60;",
    "\\",
    ":smile:",
    "<br>",
    "\u202e",
    "<",
    ">",
    "<!-- c -->",
    "a",
    " ",
)
hostile = st.lists(st.sampled_from(PAYLOADS) | st.text(max_size=5), max_size=8).map("".join)

_MARKUP = "`|[]*~$"
_SAFE_LINK = re.compile(r"^(https?://|ftp://|mailto:|xmpp:)")


def _escaped(source: str, index: int) -> bool:
    backslashes = len(source[:index]) - len(source[:index].rstrip("\\"))
    return backslashes % 2 == 1


def check_source(source: str) -> None:
    """No raw tag, entity, markup character or control character in escaped text."""
    assert "<" not in source.replace("<br>", "")
    assert ">" not in source.replace("<br>", "")
    assert re.sub(r"&(amp|lt|gt|#32);", "", source).count("&") == 0
    for index, char in enumerate(source):
        if char in _MARKUP:
            assert _escaped(source, index), (source, index)
        assert char == "\n" or unicodedata.category(char) not in ("Cc", "Cs"), (source, index)
        assert char not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", source


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "br":
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:  # pragma: no cover - fails the test
        raise AssertionError(f"a comment reached the HTML: {data!r}")


def to_html(markdown: str) -> str:
    """GitHub's renderer with raw HTML let through, so any raw tag would show up as a tag."""
    html: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE
    )
    return html


def parse(markdown: str) -> _Html:
    parser = _Html()
    parser.feed(to_html(markdown))
    return parser


def _words(text: str) -> list[str]:
    return text.split()


def expected_text(value: str) -> list[str]:
    """What a reader should see: the value, control characters shown as escapes."""
    lines = value.replace("\r\n", "\n").replace("\r", "\n")
    return _words(terminal_safe(lines, keep_newlines=True))


def check_rendered(parser: _Html, allowed: set[str]) -> None:
    for tag, attrs in parser.tags:
        if tag == "a":  # GitHub links a bare URL or e-mail address, showing the same text
            assert _SAFE_LINK.match(attrs.get("href") or ""), attrs
            continue
        assert tag in allowed, (tag, attrs)


@given(hostile)
def test_escaped_source_has_nothing_raw(value: str) -> None:
    check_source(markdown_safe(value))


@given(hostile)
def test_escaped_text_renders_as_itself_in_a_paragraph(value: str) -> None:
    parser = parse("> **Note:** " + markdown_safe(value))
    check_rendered(parser, {"blockquote", "p", "strong", "br"})
    shown = "".join(parser.text).replace("Note:", "", 1)
    assert _words(shown) == expected_text(value)


@given(hostile, hostile)
def test_escaped_cells_stay_in_their_table_cell(first: str, second: str) -> None:
    source = "\n".join(
        [
            "| a | b | c |",
            "|---|---|---|",
            f"| {markdown_safe(first)} | {markdown_safe(second)} | end |",
        ]
    )
    html_text = to_html(source)
    body = html_text.split("<tbody>")[1]
    cells = re.findall(r"<td>(.*?)</td>", body, flags=re.S)
    assert len(cells) == 3, html_text
    assert cells[2] == "end", html_text
    for cell, value in zip(cells, (first, second), strict=False):
        parser = _Html()
        parser.feed(cell)
        check_rendered(parser, {"br"})
        assert _words("".join(parser.text)) == expected_text(value)


@pytest.mark.parametrize("payload", PAYLOADS[:6])
def test_every_string_of_the_report_is_escaped(payload: str) -> None:
    report = EdgeReport(title=f"run {payload}").with_section(
        Section(
            "s",
            f"scenario {payload}",
            (
                Paragraph(f"reason {payload}", "warning"),
                Paragraph(f"{payload} first"),
                Table((f"col {payload}",), ((f"tests/t.py::test[{payload}]",),), f"cap {payload}"),
            ),
        )
    )
    markdown = render(report, "md")
    parser = parse(markdown)
    tables = {"table", "thead", "tbody", "tr", "th", "td"}
    check_rendered(parser, {"h2", "h3", "p", "blockquote", "strong", "em", "br", *tables})
    assert not any(tag == "a" for tag, _ in parser.tags)
    shown = " ".join(_words("".join(parser.text)))
    for text in (f"run {payload}", f"scenario {payload}", f"reason {payload}", f"cap {payload}"):
        assert " ".join(expected_text(text)) in shown


def test_step_summary_escapes_a_hostile_scenario_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(
        wl="def work(state_dir):\n    return {'items': 1}\n",
    )
    pytester.syspathinsert()
    pytester.makefile(
        ".toml",
        evil='[scenario]\nname = "<img src=x onerror=alert(1)> [x](javascript:alert(1)) |"\n'
        'workload = "wl:work"\n',
    )
    result = pytester.runpytest("evil.toml", "--edge-report=r.md")
    result.assert_outcomes(passed=1)
    text = summary.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt; \\[x\\](javascript:alert(1)) \\|" in text
    parser = parse(text)
    assert not any(tag in ("img", "a", "script") for tag, _ in parser.tags)
