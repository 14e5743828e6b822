"""A relative gate whose window held too few interleaved pairs for an
interval: a ratio beyond the bound is ``unreliable``, never a pass (found
when shorter test windows let a 1000x slower side "pass" a 3% gate)."""

from __future__ import annotations

import time
from pathlib import Path

from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, Settings
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.relative.paired import MIN_PAIRS_FOR_CI
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.workloads.host import HostWorkload

#: One block of b (a 40 ms sleep, at least ten calls a block) outlasts the
#: whole window, so the run stops after the first pair or two.
SHORT = MeasureOptions(remeasure=False, warmup_s=0.0, min_time_s=0.01, max_time_s=0.02)


def judged(a_s: float, b_s: float, opts: MeasureOptions, tmp_path: Path) -> object:
    s = Settings(baseline_mode="off", baseline_dir=tmp_path / "b", rootdir=tmp_path, require_gpu=False,
                 json_path=None, report_path=None)
    r = run_relative(Runner(s, BaselineStore(s.baseline_dir)), HostWorkload(lambda: time.sleep(a_s)),
                     HostWorkload(lambda: time.sleep(b_s)), Target(id="t::few", nodeid="t", name="few"), opts,
                     Expectation.from_config("max_slowdown", 0.03))
    assert r.relative is not None and r.verdict is not None
    return r


def test_beyond_the_bound_on_too_few_pairs_is_unreliable(tmp_path: Path) -> None:
    r = judged(0.0, 0.04, SHORT, tmp_path)
    assert r.relative.pairs < MIN_PAIRS_FOR_CI, "the window was meant to hold fewer pairs than an interval needs"
    assert r.relative.ratio > 1.03
    assert r.verdict.status == "unreliable" and r.verdict.decided_by == "too_wide", r.verdict.message
    assert r.verdict.message.startswith("unreliable: b/a ") and "too few for an interval" in r.verdict.message


def test_within_the_bound_on_too_few_pairs_still_passes(tmp_path: Path) -> None:
    """Nothing suggests a slowdown: the point estimate is inside the bound."""
    r = judged(0.04, 0.0, SHORT, tmp_path)
    assert r.relative.pairs < MIN_PAIRS_FOR_CI and r.relative.ratio < 1.0
    assert r.verdict.status == "pass", r.verdict.message
