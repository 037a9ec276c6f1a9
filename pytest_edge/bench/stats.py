"""Statistics for comparing benchmark samples, in numpy and the standard library (no scipy).

- `mann_whitney_u`: two-sided rank test, exact when samples are small and untied, otherwise
  the normal approximation with tie and continuity correction.
- `hodges_lehmann_ratio`: the ratio current/baseline as the median of pairwise log-differences,
  with the distribution-free confidence interval that goes with the rank test.
- `paired_log_ratio`: Student's t on per-pair log ratios, for A/B runs.

Times are positive; everything works on log times so that changes are ratios.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from pytest_edge.bench.data import BadBenchmarkInput

FloatArray = npt.NDArray[np.float64]

_NORMAL = NormalDist()
# Exact Mann-Whitney distributions are enumerated up to this many arrangements' worth of
# samples; beyond it the normal approximation is accurate to well under the p we use.
_EXACT_MAX_TOTAL = 50
# Hodges-Lehmann uses every pairwise difference: cap each side so that stays 250k values.
_HL_MAX_SIDE = 500
# Power used for "the smallest change this comparison could have detected".
DETECTION_POWER = 0.8


@dataclass(frozen=True)
class RankTest:
    """Result of a two-sided Mann-Whitney U test of ``current`` against ``baseline``."""

    u: float
    p_value: float
    method: str  # "exact" | "normal approximation (tie-corrected)"
    n_baseline: int
    n_current: int


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio current/baseline with a confidence interval (``confidence`` e.g. 0.95)."""

    ratio: float
    low: float
    high: float
    confidence: float
    method: str


def as_array(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    """Validate positive, finite samples and return them as a float array."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise BadBenchmarkInput(
            f"{what}: expected a non-empty list of times, got {array.size} values"
        )
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise BadBenchmarkInput(f"{what}: times must be positive finite numbers")
    return array


def _average_ranks(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Ranks 1..n with ties given their average rank; also the sizes of the tie groups."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    starts = ends - counts + 1.0
    return ((starts + ends) / 2.0)[inverse], counts.astype(np.float64)


def _exact_u_distribution(n1: int, n2: int) -> list[int]:
    """Number of orderings giving each U (0..n1*n2) for untied samples of sizes n1, n2."""
    # table[j] holds the counts for (i, j); recurrence c(i,j,u) = c(i-1,j,u-j) + c(i,j-1,u).
    previous: list[list[int]] = [[1] for _ in range(n2 + 1)]  # i = 0: only U = 0
    for i in range(1, n1 + 1):
        current: list[list[int]] = [[1]]  # j = 0: only U = 0
        for j in range(1, n2 + 1):
            counts = [0] * (i * j + 1)
            for u, c in enumerate(previous[j]):  # from (i-1, j), shifted by j
                counts[u + j] += c
            for u, c in enumerate(current[j - 1]):  # from (i, j-1)
                counts[u] += c
            current.append(counts)
        previous = current
    return previous[n2]


def mann_whitney_u(
    baseline: Sequence[float] | FloatArray, current: Sequence[float] | FloatArray
) -> RankTest:
    """Two-sided Mann-Whitney U test; U counts pairs where current > baseline."""
    x = as_array(baseline, "baseline")
    y = as_array(current, "current")
    n1, n2 = x.size, y.size
    ranks, ties = _average_ranks(np.concatenate([x, y]))
    u_current = float(ranks[n1:].sum() - n2 * (n2 + 1) / 2.0)
    mean_u = n1 * n2 / 2.0
    has_ties = bool(np.any(ties > 1))
    if not has_ties and n1 + n2 <= _EXACT_MAX_TOTAL:
        counts = _exact_u_distribution(n1, n2)
        total = sum(counts)
        u_low = min(u_current, n1 * n2 - u_current)
        tail = sum(counts[: round(u_low) + 1])
        p = min(1.0, 2.0 * tail / total)
        return RankTest(u_current, p, "exact", n1, n2)
    n = n1 + n2
    tie_term = float(np.sum(ties**3 - ties)) / (n * (n - 1))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:  # every value identical: no evidence of any difference
        return RankTest(u_current, 1.0, "normal approximation (tie-corrected)", n1, n2)
    z = (abs(u_current - mean_u) - 0.5) / math.sqrt(variance)
    p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))
    return RankTest(u_current, p, "normal approximation (tie-corrected)", n1, n2)


def min_attainable_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact rank test can give with these sample sizes."""
    return 2.0 / math.comb(n1 + n2, n1)


def _subsample(values: FloatArray, limit: int, rng: np.random.Generator) -> FloatArray:
    if values.size <= limit:
        return values
    return rng.choice(values, size=limit, replace=False)


def hodges_lehmann_ratio(
    baseline: Sequence[float] | FloatArray,
    current: Sequence[float] | FloatArray,
    confidence: float = 0.95,
) -> RatioEstimate:
    """Ratio current/baseline: exp of the median pairwise log-difference, with its CI.

    Large samples are subsampled to 500 a side with a fixed-seed generator, so the same
    inputs always give the same answer.
    """
    rng = np.random.default_rng(0)
    x = np.log(_subsample(as_array(baseline, "baseline"), _HL_MAX_SIDE, rng))
    y = np.log(_subsample(as_array(current, "current"), _HL_MAX_SIDE, rng))
    diffs = (y[None, :] - x[:, None]).ravel()
    n1, n2, total = x.size, y.size, diffs.size
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    k = max(1, math.floor(n1 * n2 / 2.0 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)))
    # Only a few order statistics are needed: partition (linear time) instead of a full sort.
    # k == 1 (too few samples for this confidence) makes the interval everything seen.
    ranks = sorted({k - 1, total - k, (total - 1) // 2, total // 2})
    part = np.partition(diffs, ranks)
    estimate = float(part[(total - 1) // 2] + part[total // 2]) / 2.0
    low, high = float(part[k - 1]), float(part[total - k])
    return RatioEstimate(
        math.exp(estimate), math.exp(low), math.exp(high), confidence, "Hodges-Lehmann"
    )


def robust_log_scale(values: Sequence[float] | FloatArray) -> float:
    """Standard deviation of log times estimated from the MAD (outliers barely move it)."""
    logs = np.log(as_array(values, "samples"))
    mad = float(np.median(np.abs(logs - np.median(logs))))
    if mad == 0.0 and logs.size > 1:
        return float(np.std(logs, ddof=1))
    return 1.4826 * mad


@dataclass(frozen=True)
class Location:
    """One run's time by a statistic, and the standard error of its log."""

    seconds: float
    log_se: float


# The statistics a comparison can compare each run by, and why one would.
STATISTICS = ("min", "p10", "median")
_QUANTILE = {"min": 0.0, "p10": 0.10, "median": 0.50}


def location(samples: Sequence[float] | FloatArray, statistic: str) -> Location:
    """A run's ``min``, ``p10`` or ``median`` with a distribution-free standard error.

    The error comes from the order statistics around the quantile (the binomial 95% ranks);
    for the minimum, from the gap between it and the 2nd percentile (at least the second
    fastest round), read as a 95% half-width.
    """
    if statistic not in _QUANTILE:
        raise BadBenchmarkInput(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
    ordered = np.sort(as_array(samples, "samples"))
    n = ordered.size
    q = _QUANTILE[statistic]
    if q == 0.0:
        value = float(ordered[0])
        low, high = value, float(ordered[min(n - 1, max(1, math.ceil(0.02 * n) - 1))])
        return Location(value, math.log(high / low) / _NORMAL.inv_cdf(0.975))
    value = float(np.quantile(ordered, q))
    half = 1.96 * math.sqrt(n * q * (1.0 - q))
    low = float(ordered[max(0, math.floor(n * q - half))])
    high = float(ordered[min(n - 1, math.ceil(n * q + half))])
    return Location(value, math.log(high / low) / (2.0 * 1.96))


def detectable_change_independent(
    baseline: Sequence[float] | FloatArray,
    current: Sequence[float] | FloatArray,
    alpha: float,
    power: float = DETECTION_POWER,
) -> float:
    """Smallest relative change (0.05 = 5%) the rank test would catch with ``power``.

    From the within-run noise of both samples: a normal-theory approximation on log times.
    """
    x = as_array(baseline, "baseline")
    y = as_array(current, "current")
    se = math.sqrt(robust_log_scale(x) ** 2 / x.size + robust_log_scale(y) ** 2 / y.size)
    z = _NORMAL.inv_cdf(1.0 - alpha / 2.0) + _NORMAL.inv_cdf(power)
    floor = 0.0
    if x.size + y.size <= _EXACT_MAX_TOTAL and min_attainable_p(x.size, y.size) >= alpha:
        floor = math.inf  # too few samples: no change at all can reach this p
    return max(floor, math.expm1(z * se))


# --- Student's t, for paired A/B runs ---------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf_two_sided(t: float, df: int) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _regularized_beta(df / 2.0, 0.5, df / (df + t * t))


def t_ppf(q: float, df: int) -> float:
    """Quantile of Student's t (0.5 < q < 1), by bisection on the two-sided tail."""
    target = 2.0 * (1.0 - q)
    low, high = 0.0, 1e6
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_sf_two_sided(mid, df) > target:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


@dataclass(frozen=True)
class PairedTest:
    """Paired t test on log(B_i / A_i) over interleaved A/B runs."""

    ratio: RatioEstimate
    p_value: float
    pairs: int
    detectable_change: float


@dataclass(frozen=True)
class PairedLogRatios:
    """Mean and standard error of log(B_i / A_i) over paired runs, and its two-sided p."""

    pairs: int
    mean: float
    standard_error: float
    p_value: float


def paired_log_ratios(a: Sequence[float], b: Sequence[float], what: str) -> PairedLogRatios:
    """log(B_i / A_i) of run i of A with run i of B (`what`: the values, for error messages)."""
    xa = as_array(a, f"A {what}")
    xb = as_array(b, f"B {what}")
    if xa.size != xb.size:
        raise BadBenchmarkInput(f"A/B: {xa.size} runs of A but {xb.size} of B; rounds must pair")
    n = int(xa.size)
    if n < 2:
        raise BadBenchmarkInput("A/B: at least 2 pairs of runs are needed for a paired test")
    logs = np.log(xb) - np.log(xa)
    mean = float(np.mean(logs))
    se = float(np.std(logs, ddof=1)) / math.sqrt(n)
    # se == 0: every pair gave the same ratio, which is either no change or a certain one.
    p = (1.0 if mean == 0.0 else 0.0) if se == 0.0 else t_sf_two_sided(mean / se, n - 1)
    return PairedLogRatios(n, mean, se, p)


def paired_log_ratio(
    a: Sequence[float], b: Sequence[float], alpha: float, confidence: float = 0.95
) -> PairedTest:
    """Compare per-run medians of B against A, pair by pair (run i of A with run i of B)."""
    logs = paired_log_ratios(a, b, "run medians")
    n, mean, se, p = logs.pairs, logs.mean, logs.standard_error, logs.p_value
    df = n - 1
    t_crit = t_ppf(0.5 + confidence / 2.0, df)
    ratio = RatioEstimate(
        math.exp(mean),
        math.exp(mean - t_crit * se),
        math.exp(mean + t_crit * se),
        confidence,
        "paired t on log ratios",
    )
    detect = math.expm1((t_ppf(1.0 - alpha / 2.0, df) + t_ppf(DETECTION_POWER, df)) * se)
    return PairedTest(ratio, p, n, detect)
