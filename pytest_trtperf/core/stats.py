"""Summaries, confidence intervals and the regression decision.

The gate asks two questions of a baseline/current pair: is the change of the
metric beyond the tolerance, and is it larger than what the two samples' own
noise explains? The second is answered with a bootstrap of the ratio of the two
statistics. For quantile metrics (median, p90, ...) the bootstrap is exact and
cheap: the k-th order statistic of a resample of size n drawn from a sample is
that sample's quantile function at a Beta(k, n + 1 - k) variate, so each side
costs one Beta draw per replicate instead of a resample of n values. The mean
(and throughput, its reciprocal) uses the normal approximation of its bootstrap.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from pytest_trtperf.core import metrics
from pytest_trtperf.core.results import Distribution, SeriesStats

#: Points of the stored quantile function: the 0th..100th percentiles.
QUANTILE_POINTS = 101
BOOTSTRAP_REPLICATES = 4000


def _z(confidence: float) -> float:
    """Two-sided normal quantile, without scipy."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def median_ci(sorted_ms: np.ndarray, confidence: float = 0.99) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial,
    normal approximation). Needs a sorted array."""
    n = sorted_ms.shape[0]
    if n == 0:
        return (math.nan, math.nan)
    half = _z(confidence) * math.sqrt(n) / 2.0
    lo = max(int(math.floor(n / 2.0 - half)) - 1, 0)
    hi = min(int(math.ceil(n / 2.0 + half)), n - 1)
    return (float(sorted_ms[lo]), float(sorted_ms[hi]))


def median_ci_rel_width(samples: np.ndarray, confidence: float = 0.99) -> float:
    """Width of the median's CI relative to the median, in O(n) (partition)."""
    n = samples.shape[0]
    if n < 3:
        return math.inf
    half = _z(confidence) * math.sqrt(n) / 2.0
    lo = max(int(math.floor(n / 2.0 - half)) - 1, 0)
    hi = min(int(math.ceil(n / 2.0 + half)), n - 1)
    mid = n // 2
    part = np.partition(samples, (lo, mid, hi))
    med = float(part[mid])
    if med <= 0:
        return math.inf
    return float(part[hi] - part[lo]) / med


def summarize(samples_s: np.ndarray, confidence: float = 0.99) -> SeriesStats:
    """Summary statistics of a series given in seconds, reported in ms."""
    ms = np.sort(np.asarray(samples_s, dtype=np.float64) * 1e3)
    if ms.size == 0:
        raise ValueError("cannot summarise an empty series")
    p90, p95, p99 = np.percentile(ms, [90, 95, 99])
    return SeriesStats(
        n=int(ms.size),
        median=float(np.median(ms)),
        mean=float(ms.mean()),
        min=float(ms[0]),
        max=float(ms[-1]),
        p90=float(p90),
        p95=float(p95),
        p99=float(p99),
        stdev=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        median_ci=median_ci(ms, confidence),
    )


def compress(samples_s: np.ndarray) -> Distribution:
    """Quantile function at 101 evenly spaced probabilities, in ms (6 significant
    digits): a fixed-size, human-readable stand-in for the sample."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    qs = np.percentile(ms, np.linspace(0, 100, QUANTILE_POINTS))
    return Distribution(n=int(ms.size), quantiles_ms=tuple(float(f"{q:.6g}") for q in qs))


def _quantile_fn(d: Distribution) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(d.quantiles_ms, dtype=np.float64)
    return np.linspace(0.0, 1.0, q.size), q


def expand(d: Distribution, n: int | None = None) -> np.ndarray:
    """A sample (ms) of size ``n`` (default ``d.n``) redrawn from the stored
    quantile function at probabilities (i + 0.5) / n."""
    n = d.n if n is None else n
    p, q = _quantile_fn(d)
    return np.interp((np.arange(n) + 0.5) / n, p, q)


def _rng(seed_text: str) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def _boot_stat(d: Distribution, metric: str, rng: np.random.Generator, reps: int) -> tuple[float, np.ndarray]:
    """Point value and bootstrap replicates of ``metric`` (ms) for one side."""
    p, q = _quantile_fn(d)
    n = max(d.n, 1)
    percentile = metrics.timing(metric).percentile
    if percentile is not None:
        prob = percentile / 100.0
        k = min(max(int(math.ceil(prob * n)), 1), n)
        u = rng.beta(k, n + 1 - k, size=reps)
        return float(np.interp(prob, p, q)), np.interp(u, p, q)
    # mean / throughput: normal approximation of the bootstrap of the mean.
    sample = expand(d, min(n, 20_000))
    mean = float(sample.mean())
    se = float(sample.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return mean, mean + se * rng.standard_normal(reps)


@dataclass(frozen=True)
class Comparison:
    """``change`` is positive when current is slower (ratio of times - 1)."""

    change: float
    ci: tuple[float, float]
    baseline_ms: float
    current_ms: float
    significant_slower: bool
    significant_faster: bool


def compare(
    baseline: Distribution,
    current: Distribution,
    *,
    metric: str = "median",
    confidence: float = 0.99,
    seed: str = "",
    replicates: int = BOOTSTRAP_REPLICATES,
) -> Comparison:
    """Bootstrap CI of ``current/baseline - 1`` for a time statistic.

    ``throughput`` is judged through the mean time per iteration, whose ratio
    is the inverse ratio of throughputs. Seeded from ``seed`` so a verdict can
    be reproduced from the same data.
    """
    stat = metrics.timing(metric).stat
    rng = _rng(f"{seed}|{stat}")
    b_point, b_reps = _boot_stat(baseline, stat, rng, replicates)
    c_point, c_reps = _boot_stat(current, stat, rng, replicates)
    ratio = c_reps / np.where(b_reps > 0, b_reps, np.nan)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(ratio, [alpha, 1.0 - alpha]) - 1.0
    change = c_point / b_point - 1.0 if b_point > 0 else math.inf
    return Comparison(
        change=float(change),
        ci=(float(lo), float(hi)),
        baseline_ms=b_point,
        current_ms=c_point,
        significant_slower=bool(lo > 0.0),
        significant_faster=bool(hi < 0.0),
    )


def decide(cmp: Comparison, tolerance: float) -> str:
    """The regression rule: beyond tolerance AND significant."""
    if cmp.change > tolerance and cmp.significant_slower:
        return "regression"
    if cmp.change < -tolerance and cmp.significant_faster:
        return "improved"
    return "pass"
