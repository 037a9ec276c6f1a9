"""The report model: sections in order, replaced by key; tables checked against their header."""

from __future__ import annotations

import pytest

from pytest_edge.errors import EdgeInputError
from pytest_edge.report import BoxSeries, EdgeReport, Section, Table


def test_sections_are_ordered_and_replaced_by_key() -> None:
    report = EdgeReport().with_section(Section("scenarios", "Scenarios", order=30))
    report = report.with_section(Section("device", "Device", order=0))
    report = report.with_section(Section("scenarios", "Scenarios v2", order=30))
    assert [s.title for s in report.sections] == ["Device", "Scenarios v2"]


def test_table_rows_must_match_the_header() -> None:
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        Table(("a", "b"), (("x",),), caption="t")


def test_table_rows_error_is_an_edge_input_error() -> None:
    with pytest.raises(EdgeInputError, match="a row has 3 cells"):
        Table(("a",), (("x", "y", "z"),))


def test_box_series_scales_to_another_unit_and_keeps_its_count() -> None:
    box = BoxSeries("t", 0.001, 0.002, 0.003, 0.004, 0.005, 7)
    assert box.scaled(1e-3, "t in ms") == BoxSeries("t in ms", 1.0, 2.0, 3.0, 4.0, 5.0, 7)
    assert box.scaled(1.0).label == "t"
