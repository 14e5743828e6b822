"""Percentiles of response times with distribution-free confidence bounds.

The k-th smallest of n independent response times lies above the true
q-quantile with probability P(Binomial(n, q) < k), whatever the distribution:
the bounds below are order statistics chosen with that binomial, the rule
MLPerf LoadGen's early stopping uses to call a percentile met. Requests that
never completed count as infinitely slow (they are never dropped), so a bound
that needs one of them is infinite: not enough finished requests to say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytest_trtperf.core.serve_summary import PERCENTILES


def binom_cdf(n: int, p: float) -> np.ndarray:
    """``c[k] = P(Binomial(n, p) <= k)`` for k = 0..n: the pmf by its ratio
    recurrence in log space (exact to rounding, O(n), no scipy)."""
    i = np.arange(n, dtype=np.float64)
    steps = np.log(n - i) - np.log(i + 1) + math.log(p) - math.log1p(-p)
    logpmf = np.concatenate([[n * math.log1p(-p)], n * math.log1p(-p) + np.cumsum(steps)])
    pmf = np.exp(logpmf - logpmf.max())
    return np.minimum(np.cumsum(pmf) / pmf.sum(), 1.0)


def upper_rank(n: int, q: float, confidence: float) -> int | None:
    """Smallest 1-based rank k with P(X_(k) >= q-quantile) >= confidence, i.e.
    P(Bin(n, q) <= k - 1) >= confidence; None when even X_(n) is not enough."""
    cdf = binom_cdf(n, q)
    k = int(np.searchsorted(cdf, confidence, side="left")) + 1  # first k-1 with cdf >= confidence
    return k if k <= n else None


def lower_rank(n: int, q: float, confidence: float) -> int | None:
    """Largest 1-based rank k with P(X_(k) <= q-quantile) >= confidence, i.e.
    P(Bin(n, q) >= k) = 1 - cdf[k - 1] >= confidence; None when even X_(1) is not enough."""
    cdf = binom_cdf(n, q)
    ok = np.nonzero(1.0 - cdf[:n] >= confidence)[0]  # index j = k - 1
    return int(ok[-1]) + 1 if ok.size else None


@dataclass(frozen=True)
class Percentile:
    """One percentile of a run's response times (ms) and its one-sided
    bounds at ``confidence`` each (inf: too few finished requests)."""

    name: str
    value_ms: float
    lower_ms: float
    upper_ms: float
    confidence: float


def percentile(sorted_ms: np.ndarray, name: str, confidence: float) -> Percentile:
    """The percentile ``name`` of ``sorted_ms`` (ascending; unfinished
    requests as +inf) with its order-statistic bounds."""
    q = PERCENTILES[name]
    n = int(sorted_ms.size)
    if n == 0:
        return Percentile(name, math.inf, 0.0, math.inf, confidence)
    rank = min(max(int(math.ceil(q * n)), 1), n)  # the nearest-rank percentile
    up, lo = upper_rank(n, q, confidence), lower_rank(n, q, confidence)
    return Percentile(name, float(sorted_ms[rank - 1]),
                      float(sorted_ms[lo - 1]) if lo is not None else 0.0,
                      float(sorted_ms[up - 1]) if up is not None else math.inf, confidence)


def min_requests(q: float, confidence: float) -> int:
    """Fewest requests whose largest one bounds the q-quantile from above at
    ``confidence`` (all finished): ``1 - q**n >= confidence``."""
    return int(math.ceil(math.log1p(-confidence) / math.log(q)))
