"""Sequential A/B decisions: stop the interleaved rounds as soon as the answer is clear.

The data: one log ratio per round, ``d_i = log(B_i / A_i)``, where a round is one fresh
process of each revision (interleaved A B, B A, ...). Processes drift: a whole run can be slower
than the next by more than the change looked for, so the rounds, not the samples inside one
run, are the units; their spread is the drift this comparison has seen.

The test: **repeated confidence intervals** (Jennison & Turnbull, *Group Sequential Methods*,
2000, ch. 9) for the mean of ``d``, a Student t interval after each round from
``min_rounds`` to ``max_rounds``, each at the two-sided level ``alpha / looks`` (Bonferroni
over the planned looks). Whatever the true ratio, the chance that *any* look's interval misses
it is at most ``alpha``, so stopping at the first clear look keeps these error rates:

- a regression (``slower``) is claimed only when the interval lies above 1 and the estimate
  is beyond the threshold: for code that did not get slower, at most ``alpha / 2``;
- ``same`` is claimed only when the whole interval lies inside the threshold band
  (an equivalence test): for a change beyond the threshold, at most ``alpha / 2``;
- when ``max_rounds`` pass without either, the verdict is ``inconclusive`` with the smallest
  change the last look could have detected.

Assumes the per-round log ratios are independent and roughly normal; a round disturbed as a
whole widens the interval (the drift is seen), it does not fake a verdict. The error rates hold
per benchmark; with many benchmarks, expect ``alpha / 2`` x their number false flags at most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from pytest_edge.bench.compare import Verdict
from pytest_edge.bench.data import BadBenchmarkInput
from pytest_edge.bench.stats import (
    DETECTION_POWER,
    RatioEstimate,
    paired_log_ratios,
    t_ppf,
)

DEFAULT_ALPHA = 0.02
MIN_ROUNDS = 3  # a t interval needs 2 degrees of freedom to be of any use
MAX_ROUNDS = 8
METHOD = "repeated confidence intervals (Bonferroni over the looks)"


@lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """`t_ppf`, remembered: every look of every benchmark asks for the same few quantiles."""
    return t_ppf(q, df)


@dataclass(frozen=True)
class SequentialPlan:
    """When to look, how sure each look must be, and the change that matters."""

    threshold: float
    alpha: float = DEFAULT_ALPHA
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = MAX_ROUNDS

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise BadBenchmarkInput(f"A/B: alpha={self.alpha}: must be between 0 and 1")
        if self.min_rounds < MIN_ROUNDS:
            raise BadBenchmarkInput(
                f"A/B: min_rounds={self.min_rounds}: at least {MIN_ROUNDS} rounds are needed "
                "before a look (a t interval from 2 rounds is as wide as the data allow)"
            )
        if self.max_rounds < self.min_rounds:
            raise BadBenchmarkInput(
                f"A/B: max_rounds={self.max_rounds} is below min_rounds={self.min_rounds}"
            )
        if not 0.0 < self.threshold < 10.0:
            raise BadBenchmarkInput(f"A/B: threshold={self.threshold}: must be in (0, 10)")

    @property
    def looks(self) -> int:
        return self.max_rounds - self.min_rounds + 1

    @property
    def level(self) -> float:
        """Two-sided error of each look's interval."""
        return self.alpha / self.looks

    def describe(self) -> str:
        return (
            f"{METHOD}: a look after each round from {self.min_rounds} to {self.max_rounds}, "
            f"each a {1 - self.level:.4%} t interval of the mean per-round log ratio; error "
            f"over all looks <= {self.alpha:g} (a false regression <= {self.alpha / 2:g})"
        )


@dataclass(frozen=True)
class Decision:
    """One look's verdict on one benchmark; ``clear`` when the rounds can stop for it."""

    verdict: Verdict
    clear: bool
    ratio: RatioEstimate
    rounds: int
    detectable_change: float
    p_value: float

    @property
    def regression(self) -> bool:
        return self.verdict is Verdict.SLOWER


def decide(a: Sequence[float], b: Sequence[float], plan: SequentialPlan) -> Decision:
    """The verdict after ``len(a)`` rounds (run times of A and B, round by round)."""
    logs = paired_log_ratios(a, b, "run times")
    n, mean, se, p = logs.pairs, logs.mean, logs.standard_error, logs.p_value
    df = n - 1
    crit = _t_quantile(1.0 - plan.level / 2.0, df)
    low, high = mean - crit * se, mean + crit * se
    band = math.log1p(plan.threshold)
    ratio = RatioEstimate(
        math.exp(mean), math.exp(low), math.exp(high), 1.0 - plan.level, "paired t, per look"
    )
    detectable = max(plan.threshold, math.expm1((crit + _t_quantile(DETECTION_POWER, df)) * se))
    looked = n >= plan.min_rounds
    if low > 0.0 and mean > band:
        verdict, clear = Verdict.SLOWER, looked
    elif high < 0.0 and mean < -band:
        verdict, clear = Verdict.FASTER, looked
    elif -band < low and high < band:
        verdict, clear = Verdict.SAME, looked
    else:
        verdict, clear = Verdict.INCONCLUSIVE, False
    if not looked:
        verdict = Verdict.INCONCLUSIVE
    return Decision(verdict, clear, ratio, n, detectable, p)
