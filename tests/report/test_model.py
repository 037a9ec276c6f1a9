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


def test_attention_counts_each_problem_once_failed_tests_first() -> None:
    from pytest_edge.report import FailedTest, OutcomeSummary, Problem

    outcome = OutcomeSummary(
        {"passed": 3, "failed": 3},
        1,
        (
            FailedTest("t.py::test_a", "failed", "boom"),
            FailedTest("flaky.toml::flaky[rpi4]", "failed", "error rate"),
            FailedTest("t.py::test_b", "failed", "bang"),
        ),
    )
    report = EdgeReport(outcome=outcome)
    report = report.with_section(
        Section("s", "S", problems=(Problem("failed scenario", "flaky on rpi4", test="flaky"),))
    )
    report = report.with_section(
        Section("b", "B", problems=(Problem("regression", "x"), Problem("regression", "y")))
    )
    # The scenario's own test is not counted again as a failed test.
    assert report.attention() == "2 failed tests, 1 failed scenario, 2 regressions"
    assert report.status == "failed"
    assert [p.name for p in report.problems][:2] == ["t.py::test_a", "t.py::test_b"]


def test_a_passing_outcome_is_ok_and_needs_no_attention() -> None:
    from pytest_edge.report import OutcomeSummary

    report = EdgeReport(outcome=OutcomeSummary({"passed": 2}, 0))
    assert report.status == "ok"
    assert report.attention() == ""
    assert EdgeReport(outcome=OutcomeSummary({}, 2)).outcome.exit_word == "interrupted"  # type: ignore[union-attr]


def test_box_series_from_samples_puts_far_samples_beyond_the_whiskers() -> None:
    samples = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 9.0]
    box = BoxSeries.from_samples("b", samples)
    assert box.outliers == (9.0,)
    assert box.whiskers == (1.0, 1.7)
    assert (box.minimum, box.maximum, box.n) == (1.0, 9.0, 9)
    assert box.scaled(0.1).outliers == (90.0,)


def test_outcome_categories_agree_between_recorder_and_model() -> None:
    from pytest_edge.report import model, outcomes

    assert outcomes.OUTCOMES == model.OUTCOMES
