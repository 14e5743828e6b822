"""The paired ratio of an interleaved A/B measurement and its confidence interval.

Two things measured in alternating blocks of one process share the clock, the
temperature, the neighbours and the process, so the ratio of a block of B to
the block of A next to it survives drift that no statistic over two separate
runs can remove (bench/RESULTS.md, "Interleaved A/B"). Each A/B pair gives one
ratio; the estimate is the median of the pair ratios (a load burst that hits
one block spoils one pair, not the verdict) and its confidence interval is a
moving-block bootstrap over consecutive pairs: a pair is never split (the
pairing is what removes the drift), and runs of about n^(1/3) consecutive pairs
are resampled together, so noise slow enough to span several pairs is not
counted as independent evidence.

Every value here is time-like (a latency statistic, or seconds per inference
for throughput), so a ratio above 1 always means B is slower than A.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from pytest_trtperf.core import metrics
from pytest_trtperf.core.stats import BOOTSTRAP_REPLICATES, median_ci_rel_width

#: Fewer pairs than this give no interval (a pair or two cannot show a trend).
MIN_PAIRS_FOR_CI = 3


def block_value(latency_s: np.ndarray, metric: str, *, wall_s: float, inferences: int) -> float:
    """One block's value of ``metric``, time-like: the latency statistic in
    seconds, or for ``throughput`` the block's wall seconds per inference."""
    m = metrics.timing(metric)
    if m.unit == metrics.RATE:  # judged as the time per inference
        return wall_s / inferences if inferences > 0 else math.inf
    if m.percentile is None:
        return float(np.mean(latency_s))
    return float(np.percentile(latency_s, m.percentile))


def ratio_ci_rel_width(ratios: np.ndarray, confidence: float) -> float:
    """Cheap width of the median pair ratio's interval (order statistics),
    relative to it: the stopping rule's test, run after every pair."""
    return median_ci_rel_width(np.asarray(ratios, dtype=np.float64), confidence)


@dataclass(frozen=True)
class PairedComparison:
    """``ratio`` = B over A (time-like: > 1 means B is slower), its
    ``confidence`` interval ``ci`` and the number of pairs behind it."""

    ratio: float
    ci: tuple[float, float]
    pairs: int
    confidence: float


def block_length(pairs: int) -> int:
    """Consecutive pairs resampled together: about n^(1/3) (the usual rate for
    a moving-block bootstrap of a smooth statistic)."""
    return max(1, int(round(pairs ** (1.0 / 3.0))))


def compare_pairs(ratios: np.ndarray, *, confidence: float = 0.99, seed: str = "",
                  replicates: int = BOOTSTRAP_REPLICATES) -> PairedComparison:
    """Median of the pair ratios and its moving-block bootstrap interval
    (percentile method on the log ratios). Seeded from ``seed`` so the same
    data give the same verdict."""
    r = np.asarray(ratios, dtype=np.float64)
    r = r[np.isfinite(r) & (r > 0)]
    n = int(r.size)
    if n == 0:
        return PairedComparison(math.nan, (math.nan, math.nan), 0, confidence)
    point = float(np.median(r))
    if n < MIN_PAIRS_FOR_CI:
        return PairedComparison(point, (0.0, math.inf), n, confidence)
    logs = np.log(r)
    length = block_length(n)
    blocks = -(-n // length)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"{seed}|paired".encode()).digest()[:8], "little"))
    starts = rng.integers(0, n - length + 1, size=(replicates, blocks))
    idx = (starts[:, :, None] + np.arange(length)[None, None, :]).reshape(replicates, -1)[:, :n]
    reps = np.median(logs[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return PairedComparison(point, (float(math.exp(lo)), float(math.exp(hi))), n, confidence)


def fail_ratio(ratio: float, ci_low: float, pairs: int, bound: float) -> float:
    """The smallest B/A that would have failed with this interval's relative
    width: the whole interval above ``bound`` means ``ratio * bound / ci_low``
    (infinite without an interval). :func:`decide` decides by it, so the bar
    a verdict reports (``Verdict.fails_above``) is the bar applied."""
    if pairs < MIN_PAIRS_FOR_CI or not (ci_low > 0 and math.isfinite(ci_low) and ratio > 0):
        return math.inf
    return ratio * bound / ci_low


def decide(cmp: PairedComparison, bound: float) -> str:
    """``regression`` when the whole interval lies above ``bound`` (the
    largest B/A the expectation allows): the data show the expectation broken.
    A point estimate beyond the bound with an interval that reaches back over
    it is not enough (README, "Relative gates")."""
    return "regression" if cmp.ratio > fail_ratio(cmp.ratio, cmp.ci[0], cmp.pairs, bound) else "pass"
