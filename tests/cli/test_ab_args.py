"""`pytest-edge ab` arguments: which sides, which benchmarks, which design; bad ones exit 2."""

from __future__ import annotations

import pytest

from pytest_edge.cli import _ab_pytest_args, _ab_sides, build_parser, main


@pytest.mark.parametrize(
    ("words", "sides"),
    [
        ([], ("HEAD", None)),
        (["main"], ("main", None)),
        (["--base", "main"], ("main", None)),
        (["--base", "main", "feature"], ("main", "feature")),
        (["v1.2", "v1.3"], ("v1.2", "v1.3")),
    ],
)
def test_the_working_tree_is_compared_unless_two_revisions_are_given(
    words: list[str], sides: tuple[str, str | None]
) -> None:
    assert _ab_sides(build_parser().parse_args(["ab", *words])) == sides


def test_selection_goes_to_pytest_before_the_arguments_after_the_double_dash() -> None:
    args = build_parser().parse_args(["ab", "-k", "ingest", "-m", "not slow"])
    args.pytest_args = ["tests/benchmarks"]
    assert _ab_pytest_args(args) == ["-k", "ingest", "-m", "not slow", "tests/benchmarks"]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["a", "b", "c"], "at most two revisions (BASE [REV]), got 3: a b c"),
        (["--base", "main", "a", "b"], "--base main and two revisions: give one or the other"),
        (["--runs", "5", "--max-rounds", "9"], "--runs (fixed rounds) and --min-rounds/"),
        (["--alpha", "0"], "--alpha=0.0: must be between 0 and 1"),
    ],
)
def test_bad_arguments_exit_2_before_any_run(
    words: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ab", *words]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_metric_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ab", "--metric", "cycles"])
    assert exited.value.code == 2
    assert "invalid choice: 'cycles'" in capsys.readouterr().err
