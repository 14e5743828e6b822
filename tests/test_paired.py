"""The paired ratio of interleaved A/B blocks: its interval respects the
pairing (drift shared by a pair cancels), is reproducible, and the verdict
fails only when the whole interval lies beyond the expectation's bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_trtperf.relative import paired
from pytest_trtperf.core import stats
from pytest_trtperf.relative.paired import PairedComparison, block_length, block_value, compare_pairs, decide


def drifting_pairs(n: int, true_ratio: float, drift: float, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-block values of A and B: each pair shares a drift factor (the
    machine), each block has its own small noise."""
    rng = np.random.default_rng(seed)
    shared = np.exp(rng.normal(0.0, drift, n))
    a = 1e-3 * shared * np.exp(rng.normal(0.0, noise, n))
    b = 1e-3 * true_ratio * shared * np.exp(rng.normal(0.0, noise, n))
    return a, b


def test_pairing_removes_shared_drift() -> None:
    # 20% drift between pairs, 0.5% noise within blocks: the paired interval is
    # about as narrow as the block noise; comparing the two sides unpaired
    # (A's blocks against B's, as two separate runs would) is not.
    a, b = drifting_pairs(40, 1.05, drift=0.20, noise=0.005)
    cmp = compare_pairs(b / a, confidence=0.99, seed="t")
    assert cmp.ci[0] <= 1.05 <= cmp.ci[1]
    paired_width = cmp.ci[1] - cmp.ci[0]
    unpaired = np.median(b) / np.median(a)
    order_stat_width = stats.median_ci_rel_width(b, 0.99) + stats.median_ci_rel_width(a, 0.99)
    assert paired_width < order_stat_width / 10, (paired_width, order_stat_width)
    assert abs(cmp.ratio - 1.05) < abs(unpaired - 1.05) or abs(unpaired - 1.05) < 0.005


def test_interval_covers_the_truth_at_about_its_level() -> None:
    misses = 0
    for seed in range(200):
        a, b = drifting_pairs(20, 1.03, drift=0.1, noise=0.02, seed=seed)
        cmp = compare_pairs(b / a, confidence=0.95, seed=str(seed), replicates=1000)
        misses += not (cmp.ci[0] <= 1.03 <= cmp.ci[1])
    # 5% expected; the percentile bootstrap of a median with 20 pairs runs a
    # little narrow, never wildly so.
    assert misses <= 0.12 * 200, misses


def test_seeded_and_reproducible() -> None:
    a, b = drifting_pairs(30, 1.0, drift=0.05, noise=0.01)
    one = compare_pairs(b / a, seed="x")
    assert compare_pairs(b / a, seed="x") == one
    assert compare_pairs(list(b / a), seed="x", confidence=0.99) == one


def test_blocks_of_consecutive_pairs_widen_the_interval_for_slow_noise() -> None:
    # Pair ratios that wander slowly (autocorrelated): resampling runs of
    # consecutive pairs must not treat them as independent evidence.
    rng = np.random.default_rng(3)
    walk = np.exp(np.cumsum(rng.normal(0, 0.01, 64)))
    cmp = compare_pairs(walk, confidence=0.99, seed="w")
    iid = compare_pairs(rng.permutation(walk), confidence=0.99, seed="w")
    assert block_length(64) == 4 and block_length(8) == 2 and block_length(1) == 1
    assert (cmp.ci[1] - cmp.ci[0]) >= 0.8 * (iid.ci[1] - iid.ci[0])


def test_too_few_pairs_give_no_interval_and_never_fail() -> None:
    cmp = compare_pairs(np.array([2.0, 2.1]), seed="f")
    assert cmp.pairs == 2 and cmp.ci == (0.0, math.inf)
    assert decide(cmp, 1.03) == "pass"
    empty = compare_pairs(np.array([]), seed="e")
    assert empty.pairs == 0 and math.isnan(empty.ratio) and decide(empty, 1.03) == "pass"


def test_non_finite_ratios_are_dropped() -> None:
    cmp = compare_pairs(np.array([1.0, 1.01, np.inf, np.nan, 0.0, 0.99, 1.0]), seed="n")
    assert cmp.pairs == 4 and cmp.ratio == pytest.approx(1.0, abs=0.006)


@pytest.mark.parametrize("lo, hi, bound, status", [
    (1.04, 1.06, 1.03, "regression"),  # the whole interval beyond the bound
    (1.02, 1.06, 1.03, "pass"),  # point beyond, interval reaches back: not shown
    (0.99, 1.01, 1.03, "pass"),
    (0.70, 0.72, 1 / 1.5, "regression"),  # min_speedup=1.5 not reached (1.39x at best)
    (0.60, 0.65, 1 / 1.5, "pass"),
])
def test_decide_fails_only_when_the_interval_is_beyond_the_bound(lo: float, hi: float, bound: float,
                                                                 status: str) -> None:
    assert decide(PairedComparison(ratio=(lo + hi) / 2, ci=(lo, hi), pairs=20, confidence=0.99), bound) == status


def test_block_values_are_time_like() -> None:
    lat = np.array([1.0, 2.0, 3.0, 4.0, 100.0]) * 1e-3
    assert block_value(lat, "median", wall_s=1.0, inferences=5) == pytest.approx(3e-3)
    assert block_value(lat, "mean", wall_s=1.0, inferences=5) == pytest.approx(22e-3)
    assert block_value(lat, "p90", wall_s=1.0, inferences=5) == pytest.approx(np.percentile(lat, 90))
    # throughput: seconds per inference, so that above 1 still means slower
    assert block_value(lat, "throughput", wall_s=0.5, inferences=10) == pytest.approx(0.05)
    assert paired.ratio_ci_rel_width(np.array([1.0, 1.0]), 0.99) == math.inf
