"""A paired verdict that could not have caught anything is never a pass.

Two rules of the interleaved gates (``compare()``, side by side) checked on
pair ratios whose outcome is known without the code under test:

* an interval whose lower half spans more than a factor ``1 + MAX_BAR``
  (a b/a twice the bound would also have passed) is ``unreliable``
  (``too_wide``), as the baseline gate's ``noise.too_wide`` is;
* host pairs whose blocks were cut by other processes' time slices are set
  aside, and the verdict rests on the fair ones when at least
  ``MIN_FAIR_PAIRS`` remain (``unreliable`` below).
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_result
from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.noise import MAX_BAR
from pytest_trtperf.core.results import DeviceState, Relative, Side
from pytest_trtperf.relative.paired import compare_pairs
from pytest_trtperf.relative.policy import relative_verdict
from pytest_trtperf.relative.side_by_side import MIN_FAIR_PAIRS, UNFAIR, judge_fair

OPTS = MeasureOptions(tolerance=0.05)
BOUND = 1.05


def side(label: str) -> Side:
    r = make_result(f"t.py::{label}")
    return Side(label=label, kind="host", latency=r.latency, throughput=r.throughput,
                distribution=r.distribution, config_hash="h")


def relative(ratios: np.ndarray) -> Relative:
    cmp = compare_pairs(ratios, confidence=OPTS.confidence, seed="t")
    return Relative(a=side("a"), b=side("b"), metric="median", ratio=cmp.ratio, ci=cmp.ci, pairs=cmp.pairs,
                    bound=BOUND, expectation="at most 5.0% slower", origin="side_by_side",
                    pair_ratios=tuple(float(r) for r in ratios))


def test_a_pass_whose_interval_spans_more_than_a_factor_two_is_unreliable() -> None:
    # Pairs spread over a factor of ten each way (a machine that swung under the run): the
    # median sits near 1, the interval reaches down by more than a factor 2.
    rel = relative(np.exp(np.random.default_rng(3).normal(0.0, 1.0, 9)))
    assert rel.ratio / rel.ci[0] > 1.0 + MAX_BAR  # the premise, read from the interval itself
    v = relative_verdict(rel, "pass", opts=OPTS, state=DeviceState(kind="host"))
    assert v.status == "unreliable" and v.decided_by == "too_wide", v.message
    assert v.message.startswith("unreliable: b/a ") and "too wide to decide" in v.message


def test_a_tight_interval_still_passes_and_says_its_bar() -> None:
    rng = np.random.default_rng(1)
    rel = relative(np.exp(rng.normal(0.0, 0.01, 24)))
    v = relative_verdict(rel, "pass", opts=OPTS, state=DeviceState(kind="host"))
    assert v.status == "pass" and v.decided_by is None, v.message
    # The bar it reports is the bound widened by the interval's lower reach (paired.fail_ratio).
    assert v.fails_above == pytest.approx(rel.ratio * BOUND / rel.ci[0] - 1.0)
    assert BOUND - 1.0 < v.fails_above < 0.15


def test_a_regression_is_kept_however_wide_the_upper_side() -> None:
    rel = relative(np.array([1.5, 1.6, 1.55, 4.0, 1.52, 1.58, 1.51, 9.0]))
    v = relative_verdict(rel, "regression", opts=OPTS, state=DeviceState(kind="host"))
    assert v.status == "regression"


def fair_and_cut(fair_ratio: float, cut_ratio: float, fair: int, cut: int) -> tuple[np.ndarray, list[bool]]:
    rng = np.random.default_rng(2)
    ratios = np.concatenate([fair_ratio * np.exp(rng.normal(0, 0.004, fair)),
                             cut_ratio * np.exp(rng.normal(0, 0.1, cut))])
    flags = [True] * fair + [False] * cut
    order = rng.permutation(fair + cut)
    return ratios[order], [flags[i] for i in order]


def test_the_fair_pairs_decide_when_enough_remain() -> None:
    # Two thirds of the pairs cut (their ratios read the scheduler: 2x), the fair third reads +10%.
    ratios, fair = fair_and_cut(1.10, 2.0, MIN_FAIR_PAIRS, 2 * MIN_FAIR_PAIRS)
    rel, status = judge_fair(relative(ratios), ratios, fair, OPTS, seed="t")
    assert status == "regression" and rel.pairs == MIN_FAIR_PAIRS
    assert rel.ratio == pytest.approx(1.10, rel=0.01)


def test_cut_pairs_cannot_fail_an_unchanged_test() -> None:
    ratios, fair = fair_and_cut(1.00, 2.0, MIN_FAIR_PAIRS + 2, 10)
    whole = compare_pairs(ratios, confidence=OPTS.confidence, seed="t")
    assert whole.ratio > BOUND  # the whole run would have read a slowdown
    rel, status = judge_fair(relative(ratios), ratios, fair, OPTS, seed="t")
    assert status == "pass" and rel.ratio == pytest.approx(1.0, rel=0.01)


def test_too_few_fair_pairs_are_not_judged() -> None:
    ratios, fair = fair_and_cut(1.10, 2.0, MIN_FAIR_PAIRS - 1, 12)
    rel, status = judge_fair(relative(ratios), ratios, fair, OPTS, seed="t")
    assert status == UNFAIR and rel.pairs == MIN_FAIR_PAIRS - 1


def test_a_verdict_left_open_is_measured_again() -> None:
    """Side by side measures a second interleaved run, judged with the first's
    pairs, when the first left the verdict open: too few fair pairs, or a pass
    whose interval reaches over the bound. A decided one is not."""
    from pytest_trtperf.relative.side_by_side import _open

    rng = np.random.default_rng(4)
    straddles = relative(1.06 * np.exp(rng.normal(0, 0.03, 12)))
    assert straddles.ci[0] < BOUND < straddles.ci[1]
    assert _open(straddles, "pass") and _open(straddles, UNFAIR)
    within = relative(np.exp(rng.normal(0, 0.005, 24)))
    assert within.ci[1] < BOUND and not _open(within, "pass")
    assert not _open(relative(1.2 * np.exp(rng.normal(0, 0.005, 24))), "regression")
