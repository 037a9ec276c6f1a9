"""The terminal text: control sequences in user strings are inert, tables fit 120 columns."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.report import EdgeReport, Paragraph, Section, Table
from pytest_edge.report.escape import display_width, terminal_safe
from pytest_edge.report.text import WIDTH, render_table, render_text, wrap

SEQUENCES = (
    "\x1b]0;pwned\x07",  # OSC: set the window title
    "\x1b[2J\x1b[H",  # CSI: clear the screen, cursor home
    "\x9b2J",  # 8-bit CSI
    "\x9d0;t\x9c",  # 8-bit OSC ... ST
    "\r",  # overwrite the line
    "\x08",  # backspace
    "\x07",
    "\x00",
    "\x7f",
    "\u202e",  # right-to-left override
    "\u2028",
    "\n",
    "\t",
)
hostile = st.lists(st.sampled_from(SEQUENCES) | st.text(max_size=6), max_size=8).map("".join)
_LAYOUT = set(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029"
)


def _inert(text: str, newlines: bool = False) -> bool:
    return not any(
        (unicodedata.category(c) in ("Cc", "Cs") and not (newlines and c == "\n")) or c in _LAYOUT
        for c in text
    )


@given(hostile)
def test_terminal_safe_leaves_no_control_character(value: str) -> None:
    assert _inert(terminal_safe(value))
    assert _inert(terminal_safe(value, keep_newlines=True), newlines=True)
    assert terminal_safe(value, keep_newlines=True).count("\n") == value.count("\n")


def test_escape_sequences_print_as_visible_text() -> None:
    assert terminal_safe("a\x1b]0;pwned\x07b\x9b2J") == "a\\x1b]0;pwned\\x07b\\x9b2J"
    assert terminal_safe("ok\u202eevil") == "ok\\u202eevil"


@given(st.lists(st.tuples(hostile, hostile, st.text(max_size=40)), min_size=1, max_size=6))
def test_tables_of_hostile_cells_fit_and_are_inert(rows: list[tuple[str, str, str]]) -> None:
    lines = render_table(Table(("name", "reason", "x"), tuple(rows), caption="cap \x1b[2J"))
    for line in lines:
        assert _inert(line)
        assert display_width(line) <= WIDTH


def test_a_wide_table_abbreviates_the_shared_test_path_and_wraps_to_120_columns() -> None:
    prefix = "tests/benchmarks/test_pipeline_throughput_on_device.py::"
    rows = tuple(
        (
            f"{prefix}test_ingest_{name}[raspberry-pi-4-4gb]",
            "slower (REGRESSION)",
            "1.234 ms",
            "1.456 ms",
            "1.180 [1.120, 1.240]",
            "0.0001",
            "4.2%",
            "304k turns/s",
        )
        for name in ("small", "large_batch_with_fsync")
    )
    columns = ("benchmark", "verdict", "baseline", "current", "ratio [95% CI]", "p", "min", "rate")
    natural = render_table(Table(columns, rows), width=1000)
    assert max(map(len, natural)) > WIDTH  # the case the issue saw: ~230 columns
    lines = render_table(Table(columns, rows))
    assert max(map(display_width, lines)) <= WIDTH
    assert lines[0] == f"… in 'benchmark' = {prefix}"
    row = next(line for line in lines if line.startswith("…test_ingest_small"))
    assert row.startswith("…test_ingest_small[raspberry-pi-4-4gb] ")  # ids stay whole
    assert "slower" in row  # cells with spaces wrap first


def test_a_narrow_table_is_unchanged() -> None:
    table = Table(("name", "cores"), (("pi", "4"), ("jetson-orin", "6")))
    assert render_table(table) == render_table(table, width=1000)


def test_wrap_breaks_at_spaces_then_inside_long_words() -> None:
    assert wrap("one two three", 7) == ["one two", "three"]
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert wrap("表示表示", 4) == ["表示", "表示"]  # two columns per wide character


def test_text_report_neutralises_titles_and_paragraphs() -> None:
    section = Section("s", "t\x1b]0;x\x07", (Paragraph("line\x1b[2J\nnext", "warning"),))
    text = render_text(EdgeReport().with_section(section))
    assert "\x1b" not in text
    assert text.splitlines() == ["t\\x1b]0;x\\x07 [info]", "WARNING: line\\x1b[2J", "next"]


def test_benchmark_rates_and_times_read_in_units() -> None:
    from pytest_edge.bench.report import format_rate, format_time

    assert format_rate(304123.0, "turns") == "304k turns/s"  # was 3.04e+05 turns/s
    assert format_rate(2.5e6, None) == "2.5M items/s"
    assert format_time(0.001234) == "1.234 ms"
    assert format_time(2.12e-3 / 1000) == "2.12 µs"
