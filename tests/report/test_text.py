"""The plain-text renderer: the one aligned table every terminal output prints through."""

from __future__ import annotations

from pytest_edge.report import EdgeReport, Paragraph, Section, Table
from pytest_edge.report.text import render_table, render_text
from pytest_edge.scenarios.record import render_rows


def test_table_is_aligned_with_a_rule_under_the_header() -> None:
    table = Table(("name", "cores"), (("pi", "4"), ("jetson-orin", "6")), caption="devices")
    assert render_table(table) == [
        "devices",
        "name         cores",
        "-----------  -----",
        "pi           4",
        "jetson-orin  6",
    ]


def test_scenario_rows_print_through_the_same_table() -> None:
    rows = [("a", "passed"), ("longer", "failed")]
    assert render_rows(("scenario", "outcome"), rows) == render_table(
        Table(("scenario", "outcome"), tuple(rows))
    )


def test_text_report_prefixes_notes_and_warnings() -> None:
    section = Section(
        "s", "Section", (Paragraph("careful", "warning"), Table(("k",), (("v",),))), "warning"
    )
    text = render_text(EdgeReport().with_section(section))
    assert text.splitlines() == ["Section [warning]", "WARNING: careful", "k", "-", "v"]
