"""Verdicts on two runs and on a run against a history, from synthetic pytest-benchmark data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.bench.compare import (
    Verdict,
    compare_history,
    compare_runs,
    machine_warning,
    parse_threshold,
)
from pytest_edge.bench.data import BadBenchmarkInput
from tests.bench.samples import CALM, history_of, noisy, result, run


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.10), ("0.10", 0.10), (" 25% ", 0.25), ("5.5%", 0.055)]
)
def test_threshold_accepts_percent_or_fraction(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["ten", "10x", "", "%", "0", "-5%", "nan", "2000%"])
def test_threshold_rejects_anything_else(bad: str) -> None:
    with pytest.raises(BadBenchmarkInput, match=r"threshold .* (is not|must be)"):
        parse_threshold(bad)


def test_a_bare_number_of_one_or_more_is_ambiguous() -> None:
    with pytest.raises(ValueError, match=r"threshold '10' is ambiguous: write 10% or 0.1"):
        parse_threshold("10")
    assert parse_threshold("150%") == pytest.approx(1.5)


@given(st.integers(min_value=1, max_value=99))
def test_percent_and_fraction_agree(percent: int) -> None:
    assert parse_threshold(f"{percent}%") == pytest.approx(parse_threshold(str(percent / 100)))


def test_verdicts_on_raw_samples() -> None:
    """Both runs calibrated and the machine did not move: only the 5% floor of drift."""
    baseline = run(
        result("same", noisy(1), calibration=CALM),
        result("slower", noisy(2), calibration=CALM),
        result("faster", noisy(3), calibration=CALM),
        result("gone", noisy(4), calibration=CALM),
    )
    current = run(
        result("same", noisy(11), calibration=CALM),
        result("slower", noisy(12, 1.3), calibration=CALM),
        result("faster", noisy(13, 0.7), calibration=CALM),
        result("added", noisy(14), calibration=CALM),
    )
    comparison = compare_runs(baseline, current, threshold=0.10, statistic="median")
    verdicts = {r.fullname: r.verdict for r in comparison.results}
    assert verdicts == {
        "same": Verdict.SAME,
        "slower": Verdict.SLOWER,
        "faster": Verdict.FASTER,
        "added": Verdict.NEW,
        "gone": Verdict.MISSING,
    }
    assert [r.fullname for r in comparison.regressions] == ["slower"]
    assert comparison.exit_code == 1
    slower = next(r for r in comparison.results if r.fullname == "slower")
    assert slower.ratio is not None
    assert slower.ratio.low < 1.3 < slower.ratio.high
    assert slower.p_value is not None
    assert slower.p_value < 1e-6
    assert slower.detectable_change is not None
    assert slower.detectable_change >= 0.10


def test_default_rounds_detect_a_30_percent_slowdown_at_the_default_p() -> None:
    """20 rounds a side (the edge default) with 10% within-run noise: 30% is significant."""
    from pytest_edge.bench.throughput import DEFAULT_MIN_ROUNDS

    flagged = 0
    for seed in range(20):
        comparison = compare_runs(
            run(result("b", noisy(seed, n=DEFAULT_MIN_ROUNDS, sigma=0.10), calibration=CALM)),
            run(
                result(
                    "b", noisy(seed + 100, 1.3, n=DEFAULT_MIN_ROUNDS, sigma=0.10), calibration=CALM
                )
            ),
            statistic="median",
        )
        flagged += comparison.results[0].verdict is Verdict.SLOWER
    assert flagged == 20


def test_big_change_on_too_few_samples_is_inconclusive_not_a_regression() -> None:
    comparison = compare_runs(
        run(result("b", noisy(1, n=3, sigma=0.3), calibration=CALM)),
        run(result("b", noisy(2, 1.4, n=3, sigma=0.3), calibration=CALM)),
    )
    assert comparison.results[0].verdict is Verdict.INCONCLUSIVE
    assert comparison.results[0].detectable_change == float("inf")
    assert comparison.exit_code == 0


def test_small_significant_change_is_same() -> None:
    comparison = compare_runs(
        run(result("b", noisy(1, n=400, sigma=0.01), calibration=CALM)),
        run(result("b", noisy(2, 1.03, n=400, sigma=0.01), calibration=CALM)),
        threshold=0.10,
    )
    only = comparison.results[0]
    assert only.p_value is not None
    assert only.p_value < 1e-10
    assert only.verdict is Verdict.SAME


def test_without_raw_samples_falls_back_to_intervals_and_says_so() -> None:
    comparison = compare_runs(
        run(result("b", None, 1e-3, calibration=CALM)),
        run(result("b", None, 1.5e-3, calibration=CALM)),
    )
    only = comparison.results[0]
    assert only.verdict is Verdict.SLOWER
    assert "non-overlapping 95% median intervals" in only.method
    assert any("no raw samples" in w for w in comparison.warnings)


def test_no_common_benchmarks_is_bad_input() -> None:
    with pytest.raises(BadBenchmarkInput, match="no common benchmarks"):
        compare_runs(run(result("a", noisy(1))), run(result("b", noisy(1))))


def test_different_machines_are_warned_about() -> None:
    assert machine_warning({"cpu": "x"}, {"cpu": "x"}) is None
    warning = machine_warning({"cpu": "x", "node": "a"}, {"cpu": "y", "node": "a"})
    assert warning is not None
    assert "differs in: cpu" in warning
    comparison = compare_runs(
        run(result("b", noisy(1)), machine={"node": "ci-1"}),
        run(result("b", noisy(2)), machine={"node": "laptop"}),
    )
    assert any("different machines" in w for w in comparison.warnings)


def test_history_change_inside_the_band_is_inconclusive_never_a_regression() -> None:
    # Earlier runs drifted by +-12%; the current one is 15% above their median.
    comparison = compare_history(history_of(0.9, 1.0, 1.12), run(result("b", noisy(9, 1.15))))
    only = comparison.results[0]
    assert only.verdict is Verdict.INCONCLUSIVE
    assert comparison.exit_code == 0
    assert only.detectable_change is not None
    assert only.detectable_change > 0.2
    assert len(only.history) == 3


def test_history_flags_a_change_beyond_the_band() -> None:
    comparison = compare_history(history_of(0.95, 1.0, 1.05), run(result("b", noisy(9, 1.4))))
    assert comparison.results[0].verdict is Verdict.SLOWER
    assert comparison.exit_code == 1


def test_history_notes_a_short_history_and_needs_runs() -> None:
    comparison = compare_history(history_of(1.0), run(result("b", noisy(9))))
    assert any("only 1 earlier run" in n for n in comparison.notes)
    with pytest.raises(BadBenchmarkInput, match="no saved runs"):
        compare_history([], run(result("b", noisy(9))))


def test_history_source_names_one_run_in_the_singular() -> None:
    one = compare_history(history_of(1.0), run(result("b", noisy(9))))
    assert one.baseline_source == "history of 1 run (run.json)"
    three = compare_history(history_of(1.0, 1.0, 1.0), run(result("b", noisy(9))))
    assert three.baseline_source == "history of 3 runs (run.json .. run.json)"
