"""Statistics the gate rests on, checked against known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.core import stats


def test_summarize_matches_numpy() -> None:
    x = np.random.default_rng(1).lognormal(0, 0.2, 5000) * 1e-3  # seconds
    s = stats.summarize(x)
    ms = x * 1e3
    assert s.n == 5000
    assert s.median == pytest.approx(np.median(ms))
    assert s.p99 == pytest.approx(np.percentile(ms, 99))
    assert s.min == ms.min() and s.max == ms.max()
    assert s.median_ci[0] < s.median < s.median_ci[1]


def test_median_ci_covers_the_true_median() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    trials = 400
    for _ in range(trials):
        x = np.sort(rng.exponential(1.0, 300))
        lo, hi = stats.median_ci(x, 0.95)
        covered += lo <= np.log(2) <= hi
    assert 0.93 <= covered / trials <= 0.995


def test_rel_width_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(3)
    small = stats.median_ci_rel_width(rng.normal(1.0, 0.05, 100))
    large = stats.median_ci_rel_width(rng.normal(1.0, 0.05, 10_000))
    assert large < small / 5


def test_compress_expand_round_trip() -> None:
    x = np.random.default_rng(2).gamma(9.0, 0.1, 20_000) * 1e-3
    d = stats.compress(x)
    assert len(d.quantiles_ms) == stats.QUANTILE_POINTS and d.n == 20_000
    back = stats.expand(d)
    assert back.size == 20_000
    assert np.median(back) == pytest.approx(np.median(x) * 1e3, rel=2e-3)
    assert np.percentile(back, 99) == pytest.approx(np.percentile(x, 99) * 1e3, rel=2e-2)


def _dist(scale: float, n: int = 2000, seed: int = 0) -> stats.Distribution:
    return stats.compress(np.random.default_rng(seed).normal(1.0, 0.03, n) * scale * 1e-3)


def test_compare_no_change_is_not_significant() -> None:
    c = stats.compare(_dist(1.0, seed=1), _dist(1.0, seed=2), seed="x")
    assert abs(c.change) < 0.01
    assert c.ci[0] < 0 < c.ci[1]
    assert stats.decide(c, 0.05) == "pass"


def test_compare_detects_a_ten_percent_slowdown() -> None:
    c = stats.compare(_dist(1.0, seed=1), _dist(1.1, seed=2), seed="x")
    assert c.change == pytest.approx(0.10, abs=0.01)
    assert c.ci[0] > 0.08 and c.significant_slower
    assert stats.decide(c, 0.05) == "regression"
    assert stats.decide(c, 0.15) == "pass"


def test_faster_is_improved_not_regression() -> None:
    c = stats.compare(_dist(1.0, seed=1), _dist(0.8, seed=2), seed="x")
    assert stats.decide(c, 0.05) == "improved"


def test_small_samples_are_not_significant_for_small_changes() -> None:
    # Ten noisy samples cannot prove a 6% slowdown, even beyond a 5% tolerance.
    rng = np.random.default_rng(5)
    b = stats.compress(rng.normal(1.0, 0.2, 10) * 1e-3)
    c = stats.compress(rng.normal(1.06, 0.2, 10) * 1e-3)
    cmp = stats.compare(b, c, seed="x")
    assert not cmp.significant_slower


@pytest.mark.parametrize("metric", ["median", "mean", "p90", "p95", "p99", "throughput"])
def test_every_metric_sees_a_uniform_slowdown(metric: str) -> None:
    c = stats.compare(_dist(1.0, seed=1), _dist(1.2, seed=2), metric=metric, seed="x")
    assert c.change == pytest.approx(0.2, abs=0.03)
    assert c.significant_slower


def test_verdicts_are_reproducible() -> None:
    a, b = _dist(1.0, seed=1), _dist(1.03, seed=2)
    assert stats.compare(a, b, seed="id") == stats.compare(a, b, seed="id")
