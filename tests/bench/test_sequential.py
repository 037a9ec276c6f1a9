"""The sequential A/B test: clear answers stop early, its error rates hold, drift is seen."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_edge.bench.compare import Verdict
from pytest_edge.bench.data import BadBenchmarkInput
from pytest_edge.bench.sequential import SequentialPlan, decide

PLAN = SequentialPlan(threshold=0.10)


def rounds(ratios: list[float]) -> tuple[list[float], list[float]]:
    """A and B run times whose per-round ratios are *ratios* (A's time drifting around)."""
    a = [1e-3 * (1 + 0.2 * (i % 3)) for i in range(len(ratios))]
    return a, [t * r for t, r in zip(a, ratios, strict=True)]


def run_sequentially(ratios: np.ndarray, plan: SequentialPlan = PLAN) -> tuple[Verdict, int, bool]:
    """Feed rounds one by one as `run_ab` does; the verdict, the rounds used, and clarity."""
    for n in range(plan.min_rounds, plan.max_rounds + 1):
        decision = decide(*rounds(list(ratios[:n])), plan)
        if decision.clear:
            return decision.verdict, n, True
    return decision.verdict, plan.max_rounds, False


def test_a_clear_regression_stops_at_the_first_look() -> None:
    decision = decide(*rounds([1.30, 1.31, 1.29]), PLAN)
    assert decision.verdict is Verdict.SLOWER
    assert decision.clear
    assert decision.regression
    assert decision.rounds == 3
    assert decision.ratio.low > 1.0


def test_nothing_is_decided_before_the_first_look() -> None:
    decision = decide(*rounds([1.30, 1.31]), PLAN)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert not decision.clear


def test_one_disturbed_round_widens_the_interval_instead_of_faking_a_verdict() -> None:
    # As measured here under load: one round's A run was slowed as a whole (ratio 0.98).
    decision = decide(*rounds([1.35, 0.98, 1.46]), PLAN)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert not decision.clear
    assert decision.detectable_change > 0.30


def test_same_needs_the_whole_interval_inside_the_band() -> None:
    tight = decide(*rounds([1.01, 0.99, 1.00, 1.005, 0.995]), PLAN)
    assert tight.verdict is Verdict.SAME
    assert tight.clear
    loose = decide(*rounds([1.08, 0.93, 1.05, 0.97, 1.02]), PLAN)
    assert loose.verdict is Verdict.INCONCLUSIVE
    assert not loose.clear


def test_faster_is_symmetric() -> None:
    decision = decide(*rounds([0.70, 0.71, 0.69]), PLAN)
    assert decision.verdict is Verdict.FASTER
    assert decision.clear


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha=0.0: must be between 0 and 1"),
        ({"min_rounds": 2}, "min_rounds=2: at least 3 rounds"),
        ({"max_rounds": 2}, "max_rounds=2 is below min_rounds=3"),
        ({"threshold": 0.0}, "threshold=0.0: must be in"),
    ],
)
def test_bad_plans_name_the_value(kwargs: dict[str, float], message: str) -> None:
    values = {"threshold": 0.10, **kwargs}
    with pytest.raises(BadBenchmarkInput, match=message):
        SequentialPlan(**values)  # type: ignore[arg-type]


def test_unpaired_rounds_are_refused() -> None:
    with pytest.raises(BadBenchmarkInput, match="rounds must pair"):
        decide([1.0, 1.0, 1.0], [1.0, 1.0], PLAN)


@given(
    st.lists(st.floats(0.5, 2.0), min_size=3, max_size=8),
    st.floats(0.5, 2.0),
)
def test_a_drift_common_to_both_sides_changes_nothing(ratios: list[float], drift: float) -> None:
    a, b = rounds(ratios)
    plain = decide(a, b, PLAN)
    drifted = decide([t * drift for t in a], [t * drift for t in b], PLAN)
    assert drifted.verdict is plain.verdict
    assert drifted.ratio.ratio == pytest.approx(plain.ratio.ratio)


@pytest.mark.parametrize("sigma", [0.02, 0.10, 0.30])
def test_unchanged_code_is_flagged_at_most_alpha_over_2_of_the_time(sigma: float) -> None:
    # The documented error rate, checked by simulation: no change, drift of sigma per round.
    rng = np.random.default_rng(13)
    trials = 1000
    flagged = sum(
        run_sequentially(np.exp(rng.normal(0.0, sigma, PLAN.max_rounds)))[0] is Verdict.SLOWER
        for _ in range(trials)
    )
    assert flagged / trials <= PLAN.alpha / 2


def test_a_change_beyond_the_threshold_is_called_same_at_most_alpha_over_2() -> None:
    rng = np.random.default_rng(17)
    trials = 1000
    called_same = sum(
        run_sequentially(np.exp(rng.normal(math.log(1.12), 0.05, PLAN.max_rounds)))[0]
        is Verdict.SAME
        for _ in range(trials)
    )
    assert called_same / trials <= PLAN.alpha / 2


def test_a_clear_30_percent_change_usually_stops_well_before_the_maximum() -> None:
    rng = np.random.default_rng(19)
    results = [
        run_sequentially(np.exp(rng.normal(math.log(1.3), 0.03, PLAN.max_rounds)))
        for _ in range(200)
    ]
    assert all(verdict is Verdict.SLOWER for verdict, _, _ in results)
    assert np.mean([used for _, used, _ in results]) < 4
