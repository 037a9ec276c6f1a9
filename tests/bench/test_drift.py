"""Drift between runs: where it comes from, and verdicts that allow for it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.bench.calibration import Calibration
from pytest_edge.bench.compare import (
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    EXIT_REGRESSION,
    Verdict,
    compare_history,
    compare_runs,
    drift_verdict,
)
from pytest_edge.bench.drift import (
    FLOOR,
    PRIOR_TWO_RUNS,
    TWO_RUN_FLOOR,
    Drift,
    HistorySpread,
    calibration_drift,
    two_run_drift,
)
from tests.bench.samples import CALM, calm, noisy, result, run

CPU_BOUND = 1.0
IO_BOUND = 0.5


def test_two_runs_without_calibration_assume_the_prior() -> None:
    drift = two_run_drift(result("b", noisy(1)), result("b", noisy(2), calibration=CALM))
    assert drift.relative == pytest.approx(PRIOR_TWO_RUNS)
    assert drift.source.startswith("prior: no calibration in the baseline,")


def test_two_calm_runs_allow_the_floor() -> None:
    drift = two_run_drift(
        result("b", noisy(1), calibration=CALM), result("b", noisy(2), calibration=CALM)
    )
    assert drift.relative == pytest.approx(TWO_RUN_FLOOR)
    assert FLOOR < TWO_RUN_FLOOR


def test_a_calibration_move_between_runs_is_the_drift() -> None:
    drift = calibration_drift([calm(cpu=1e-3)], calm(cpu=1.25e-3))
    assert drift.relative == pytest.approx(0.25)
    assert drift.source == "calibration: the cpu loop moved 25% between the runs"


def test_a_cpu_bound_benchmark_ignores_the_fsync_loop_an_io_bound_one_does_not() -> None:
    base = calm(fsync=5e-4, cpu_fraction=CPU_BOUND)
    moved = calm(fsync=8e-3, cpu_fraction=CPU_BOUND)  # the disk got 16x slower
    assert calibration_drift([base], moved).log == 0.0
    io_base = calm(fsync=5e-4, cpu_fraction=IO_BOUND)
    io_moved = calm(fsync=8e-3, cpu_fraction=IO_BOUND)
    assert calibration_drift([io_base], io_moved).relative == pytest.approx(15.0)


def test_fsync_swinging_during_an_io_bound_benchmark_is_drift() -> None:
    swinging = Calibration((1e-3, 1e-3), (4e-4, 8e-3), IO_BOUND)
    drift = calibration_drift([calm(cpu_fraction=IO_BOUND)], swinging)
    assert drift.relative == pytest.approx(19.0)
    assert "during the benchmark" in drift.source


def test_the_faster_point_is_the_level_a_burst_of_others_does_not_move_it() -> None:
    burst = Calibration((1e-3, 3e-3), (5e-4, 5e-4), CPU_BOUND)  # hit after the benchmark
    assert burst.level("cpu") == 1e-3
    assert calibration_drift([CALM], burst).log == 0.0


def test_against_a_history_only_the_calibrations_move_beyond_its_spread_counts() -> None:
    history = [calm(cpu=c) for c in (1.0e-3, 1.2e-3, 0.9e-3)]
    assert calibration_drift(history, calm(cpu=1.1e-3)).log == 0.0  # inside their spread
    far = calibration_drift(history, calm(cpu=3e-3))
    assert far.log > 0.5
    assert "beyond its spread over the 3 saved runs" in far.source


def test_history_spread_is_robust_to_one_noisy_run() -> None:
    quiet = HistorySpread.of([1.0, 1.01, 0.99])
    one_noisy = HistorySpread.of([1.0, 1.01, 1.66])
    assert one_noisy.center == pytest.approx(math.log(1.01))
    assert one_noisy.sd < 0.02
    assert quiet.drift().relative < 0.06


def test_the_issue_case_a_noisy_saved_run_does_not_hide_a_30_percent_slowdown() -> None:
    """Issue 13: one noisy saved run (1.66x) entered the history; 30% was called noise."""
    history = [
        run(result("b", noisy(100 + i, f, n=200, sigma=0.02), calibration=CALM))
        for i, f in enumerate((1.0, 1.66, 1.01))
    ]
    slower = compare_history(
        history,
        run(result("b", noisy(9, 1.3, n=200, sigma=0.02), calibration=CALM)),
        statistic="median",
    )
    assert slower.results[0].verdict is Verdict.SLOWER
    same = compare_history(
        history,
        run(result("b", noisy(9, 1.0, n=200, sigma=0.02), calibration=CALM)),
        statistic="median",
    )
    assert same.results[0].verdict is Verdict.SAME


def test_the_issue_case_a_noisy_current_run_is_inconclusive_not_a_regression() -> None:
    """Issue 13: unchanged code flagged at 1.66x; here its calibration moved with it."""
    io = calm(cpu_fraction=IO_BOUND)
    history = [
        run(result("b", noisy(100 + i, f, n=200, sigma=0.02), calibration=io))
        for i, f in enumerate((1.0, 1.02, 0.99))
    ]
    noisy_machine = calm(cpu=1.7e-3, cpu_fraction=IO_BOUND)
    current = run(result("b", noisy(9, 1.66, n=200, sigma=0.02), calibration=noisy_machine))
    only = compare_history(history, current, statistic="median").results[0]
    assert only.verdict is Verdict.INCONCLUSIVE
    assert only.detectable_change is not None
    assert only.detectable_change > 0.66
    assert "inconclusive: the drift between runs is larger" in only.note


def test_two_runs_whose_machine_moved_are_inconclusive_never_a_regression() -> None:
    before = calm(cpu=1e-3, cpu_fraction=IO_BOUND)
    after = calm(cpu=1.35e-3, cpu_fraction=IO_BOUND)
    comparison = compare_runs(
        run(result("b", noisy(1, n=200, sigma=0.02), calibration=before)),
        run(result("b", noisy(2, 1.3, n=200, sigma=0.02), calibration=after)),
        statistic="median",
    )
    only = comparison.results[0]
    assert only.verdict is Verdict.INCONCLUSIVE
    assert only.drift is not None
    assert only.drift.relative == pytest.approx(0.35)
    assert comparison.exit_status() == EXIT_OK
    assert comparison.exit_status(fail_on_inconclusive=True) == EXIT_INCONCLUSIVE


@pytest.mark.parametrize(("code", "verdict"), [(1.0, Verdict.SAME), (1.6, Verdict.SLOWER)])
def test_a_cpu_bound_benchmark_is_normalized_by_the_cpu_loop(code: float, verdict: Verdict) -> None:
    """The process's CPU ran 35% slower (both loop and benchmark): corrected for, not drift."""
    slow_machine = calm(cpu=1.35e-3)
    comparison = compare_runs(
        run(result("b", noisy(1, n=200, sigma=0.02), calibration=CALM)),
        run(result("b", noisy(2, 1.35 * code, n=200, sigma=0.02), calibration=slow_machine)),
        threshold=0.40,
        statistic="median",
    )
    only = comparison.results[0]
    assert only.verdict is verdict
    assert only.ratio is not None
    assert only.ratio.ratio == pytest.approx(code, rel=0.03)
    assert "normalized by the CPU calibration loop (the current run's CPU was 35% slower)" in (
        only.method
    )
    history = [
        run(result("b", noisy(100 + i, f, n=200, sigma=0.02), calibration=calm(cpu=f * 1e-3)))
        for i, f in enumerate((1.0, 1.25, 1.05))  # the machine moved, the code did not
    ]
    against = compare_history(
        history,
        run(result("b", noisy(2, 1.1 * code, n=200, sigma=0.02), calibration=calm(cpu=1.1e-3))),
        threshold=0.40,
        statistic="median",
    )
    assert against.results[0].verdict is verdict


def test_the_min_of_cpu_bound_runs_sees_a_slowdown_the_median_hides() -> None:
    """Rounds that other processes delayed move the median, not the fastest round."""
    base = noisy(1, n=300, sigma=0.01)
    base[::2] *= 1.8  # half the rounds delayed by another process
    cur = noisy(2, 1.6, n=300, sigma=0.01)
    by_min = compare_runs(
        run(result("b", base, calibration=CALM)), run(result("b", cur, calibration=CALM))
    )
    assert by_min.results[0].verdict is Verdict.SLOWER
    assert by_min.exit_status() == EXIT_REGRESSION
    by_median = compare_runs(
        run(result("b", base, calibration=CALM)),
        run(result("b", cur, calibration=CALM)),
        statistic="median",
    )
    assert by_median.results[0].verdict is not Verdict.SLOWER


CHANGES = st.floats(min_value=-1.5, max_value=1.5)
ERRORS = st.floats(min_value=0.0, max_value=0.3)
DRIFTS = st.floats(min_value=0.0, max_value=1.5)
THRESHOLDS = st.floats(min_value=0.01, max_value=0.5)


@given(CHANGES, ERRORS, st.booleans(), DRIFTS, THRESHOLDS)
def test_a_verdict_never_claims_more_than_the_drift_allows(
    change: float, se: float, significant: bool, drift: float, threshold: float
) -> None:
    judged = drift_verdict(change, se, significant, Drift(drift, "d"), threshold, 0.001)
    band = math.log1p(threshold)
    if judged.verdict is Verdict.SLOWER:
        assert significant
        assert change > band
        assert change > drift  # the change is larger than the drift
    if judged.verdict is Verdict.FASTER:
        assert -change > drift
    if judged.verdict is Verdict.SAME:
        assert abs(change) + drift <= band + 1e-12  # drift cannot hide a threshold change
    if drift >= abs(change) and judged.verdict not in (Verdict.SAME,):
        assert judged.verdict is Verdict.INCONCLUSIVE
    assert judged.detectable >= threshold
    assert judged.low <= math.exp(change) <= judged.high
