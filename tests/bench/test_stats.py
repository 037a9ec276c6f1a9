"""Rank test, Hodges-Lehmann ratio and Student's t, checked against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_edge.bench.compare import DEFAULT_ALPHA
from pytest_edge.bench.data import BadBenchmarkInput
from pytest_edge.bench.stats import (
    detectable_change_independent,
    hodges_lehmann_ratio,
    mann_whitney_u,
    min_attainable_p,
    paired_log_ratio,
    t_ppf,
    t_sf_two_sided,
)
from pytest_edge.bench.throughput import DEFAULT_MIN_ROUNDS

times = st.lists(st.floats(min_value=1e-6, max_value=1.0, allow_nan=False), min_size=2, max_size=40)


def test_exact_test_of_completely_separated_samples() -> None:
    # 5 against 5, fully separated: 2 / C(10, 5) = 2/252, the floor the issue mentions.
    result = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result.method == "exact"
    assert result.p_value == pytest.approx(2 / 252)
    assert result.u == 25


def test_exact_small_case_matches_hand_count() -> None:
    # x = [1, 3], y = [2, 4]: U(y > x) = 3 of 4; P(U >= 3) = 2/6 -> two-sided 2/3.
    assert mann_whitney_u([1, 3], [2, 4]).p_value == pytest.approx(2 / 3)


def test_normal_approximation_agrees_with_exact_near_the_boundary() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.random(25), rng.random(25) + 0.3
    exact = mann_whitney_u(x, y)
    approx = mann_whitney_u(np.concatenate([x, x[:1]]), y)  # 51 values: approximation
    assert exact.method == "exact"
    assert approx.method.startswith("normal")
    assert math.log10(exact.p_value) == pytest.approx(math.log10(approx.p_value), abs=0.5)


def test_ties_are_corrected_and_identical_samples_give_p_one() -> None:
    assert mann_whitney_u([1.0] * 30, [1.0] * 30).p_value == 1.0
    tied = mann_whitney_u([1, 1, 2, 2, 3] * 6, [2, 2, 3, 3, 4] * 6)
    assert tied.method.startswith("normal")
    assert tied.p_value < 0.01


@given(times, times)
def test_p_is_a_probability_and_symmetric(x: list[float], y: list[float]) -> None:
    forward, backward = mann_whitney_u(x, y), mann_whitney_u(y, x)
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == pytest.approx(backward.p_value)


@given(times, st.floats(min_value=0.1, max_value=10.0))
def test_rank_test_ignores_the_time_unit(x: list[float], scale: float) -> None:
    y = [v * 1.5 for v in x]
    xs, ys = [v * scale for v in x], [v * scale for v in y]
    # Scaling can create or merge a tie at the last bit (x=[1.0000000000000002e-06, 1e-06],
    # scale=3.5): the data then differ, and so may the test (exact vs tie-corrected). The
    # property is about the unit, so it is checked where the ordering and ties survive.
    assume(_order_and_ties(x + y) == _order_and_ties(xs + ys))
    p1 = mann_whitney_u(x, y).p_value
    p2 = mann_whitney_u(xs, ys).p_value
    assert p1 == pytest.approx(p2, rel=1e-6, abs=1e-12)


def _order_and_ties(values: list[float]) -> list[tuple[int, int]]:
    """Each value's rank among the distinct values and its tie count, in input order."""
    distinct = sorted(set(values))
    return [(distinct.index(v), values.count(v)) for v in values]


def test_bad_samples_are_rejected_with_their_name() -> None:
    with pytest.raises(BadBenchmarkInput, match="baseline: times must be positive"):
        mann_whitney_u([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="current: expected a non-empty list"):
        mann_whitney_u([1.0], [])


def test_hodges_lehmann_recovers_a_known_slowdown() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(mean=-6, sigma=0.1, size=200)
    slower = rng.lognormal(mean=-6, sigma=0.1, size=200) * 1.3
    estimate = hodges_lehmann_ratio(base, slower)
    assert estimate.low < 1.3 < estimate.high
    assert estimate.ratio == pytest.approx(1.3, rel=0.03)


def test_hodges_lehmann_is_deterministic_on_large_samples() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.lognormal(size=5000), rng.lognormal(size=5000)
    assert hodges_lehmann_ratio(x, y) == hodges_lehmann_ratio(x, y)


def test_student_t_known_values() -> None:
    assert t_sf_two_sided(2.776445, 4) == pytest.approx(0.05, abs=1e-5)
    assert t_sf_two_sided(12.7062, 1) == pytest.approx(0.05, abs=1e-5)
    assert t_ppf(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    assert t_sf_two_sided(0.0, 3) == pytest.approx(1.0)


def test_paired_ratio_and_its_errors() -> None:
    result = paired_log_ratio([1.0, 1.1, 0.9, 1.05], [1.5, 1.62, 1.36, 1.6], alpha=0.01)
    assert result.ratio.ratio == pytest.approx(1.5, rel=0.02)
    assert result.p_value < 0.001
    with pytest.raises(BadBenchmarkInput, match="3 runs of A but 2 of B"):
        paired_log_ratio([1, 2, 3], [1, 2], alpha=0.01)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_log_ratio([1], [1], alpha=0.01)


def test_default_rounds_can_reach_the_default_p() -> None:
    # With 5 rounds a side the exact test cannot go below p ~ 0.008 > DEFAULT_ALPHA.
    assert min_attainable_p(5, 5) > DEFAULT_ALPHA
    assert min_attainable_p(DEFAULT_MIN_ROUNDS, DEFAULT_MIN_ROUNDS) < DEFAULT_ALPHA / 1000


def test_too_few_samples_cannot_detect_anything() -> None:
    assert math.isinf(detectable_change_independent([1, 2, 3], [1, 2, 3], alpha=DEFAULT_ALPHA))
    rng = np.random.default_rng(0)
    noise = detectable_change_independent(
        rng.lognormal(sigma=0.05, size=50), rng.lognormal(sigma=0.05, size=50), DEFAULT_ALPHA
    )
    assert 0.01 < noise < 0.1
