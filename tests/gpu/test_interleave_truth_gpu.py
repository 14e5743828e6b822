"""Interleaved ratios against ground truth on the GPU (issue 27, point 1).

``%globaltimer`` spin kernels of 20 us, 200 us and 2 ms as ``a`` and ``b`` at
true ratios 1.000, 1.010, 1.030 and 1.100, through the relative gate's policy
(``run_relative``, what ``trt_bench.compare`` runs), CUDA graphs on and off:

* b/a lies within :class:`truth_bounds.RatioBound`: between ``Tb/Ta`` and
  ``(Tb + e)/(Ta + e)`` for the event-pair cost ``e`` this card adds to any
  kernel (the ``floor`` fixture plus timing_bounds' slack), widened by the
  timer's quantum over T and twice the half-width of the gate's own
  interval. A harness that charges one side more than the other leaves it;
* swapping the sides gives the reciprocal within both runs' noise;
* each side's median interleaved agrees with the same kernel measured alone
  (``measure.measure``) within the event-pair floor, and with the kernel's
  true length within ``floor.latency``.

Run on the GPU machine (not on CI):

    python -m pytest tests/gpu/test_interleave_truth_gpu.py -p no:trtperf -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings
from pytest_trtperf.core.measure import measure
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.core.stats import median_ci_rel_width
from pytest_trtperf.workloads.cuda import CudaWorkload
from helpers import LOAD_KERNELS, load_plugin_args
from timing_bounds import within
from truth_bounds import RatioBound, absolute_holds, half_width, swap_holds, timer_quantum_us

pytestmark = pytest.mark.gpu

RATIOS = (1.000, 1.010, 1.030, 1.100)
DURATIONS_US = (20.0, 200.0, 2000.0)
OPTS = MeasureOptions(remeasure=False, min_time_s=1.0, max_time_s=4.0)
NEVER_FAILS = Expectation.from_config("max_slowdown", 10.0)


@pytest.fixture(scope="module")
def quantum(kernels: Any) -> float:
    """The event timer's step on this card, in us."""
    return timer_quantum_us(kernels)


def runner(tmp_path: Path) -> Runner:
    s = Settings(baseline_mode="off", baseline_dir=tmp_path / "b", rootdir=tmp_path, require_gpu=True,
                 json_path=None, report_path=None)
    return Runner(s, BaselineStore(s.baseline_dir))


def spin(kernels: Any, us: float, graph: bool) -> CudaWorkload:
    ns = int(round(us * 1000))
    return CudaWorkload(lambda stream: kernels.spin(stream, ns), cuda_graph=graph)


def compared(tmp_path: Path, a: CudaWorkload, b: CudaWorkload) -> Any:
    r = run_relative(runner(tmp_path), a, b, Target(id="t::truth", nodeid="t", name="truth"), OPTS, NEVER_FAILS)
    assert r.relative is not None
    return r.relative


def alone(w: CudaWorkload) -> tuple[float, float]:
    """(median in us, relative width of its interval) of the kernel measured alone."""
    w.setup()
    try:
        m = measure(w, MeasureSettings.from_options(OPTS))
    finally:
        w.teardown()
    return float(np.median(m.latency_s)) * 1e6, median_ci_rel_width(m.latency_s, OPTS.confidence)


@pytest.mark.parametrize("graph", [True, False], ids=["graph", "eager"])
@pytest.mark.parametrize("t_us", DURATIONS_US, ids=lambda t: f"{t:g}us")
@pytest.mark.parametrize("ratio", RATIOS, ids=lambda r: f"x{r:.3f}")
def test_interleaved_ratio_of_spin_kernels_matches_the_truth(kernels: Any, floor: Any, quantum: float,
                                                             tmp_path: Path, graph: bool, t_us: float,
                                                             ratio: float) -> None:
    ta, tb = t_us, t_us * ratio
    e_max = floor.pair_us + max(0.5, 0.005 * t_us)  # timing_bounds: the pair plus its slack
    ab = compared(tmp_path, spin(kernels, ta, graph), spin(kernels, tb, graph))
    bound = RatioBound.of(ta, tb, e_max=e_max, quantum=quantum, ci=ab.ci, ratio=ab.ratio)
    assert bound.holds(ab.ratio), (ab.ratio, bound, ab.ci, floor, quantum)

    ba = compared(tmp_path, spin(kernels, tb, graph), spin(kernels, ta, graph))
    assert swap_holds(ab.ratio, ba.ratio, ab.ci, ba.ci, quantum / ta), (ab.ratio, ba.ratio, ab.ci, ba.ci)

    il_width = half_width(ab.ci, ab.ratio)
    for true_us, side in ((ta, ab.a), (tb, ab.b)):
        il_us = side.latency.median * 1e3
        assert within(il_us * 1e-6, floor.latency(true_us)), (il_us, true_us, floor)
        alone_us, alone_width = alone(spin(kernels, true_us, graph))
        allowed = floor.pair_us + alone_us * (alone_width + il_width)
        assert absolute_holds(il_us, alone_us, allowed=allowed), (il_us, alone_us, allowed)


PLUGIN_TEST = f'''
import importlib.util
import pytest

{LOAD_KERNELS}

@pytest.mark.parametrize("graph", [True, False])
@pytest.mark.parametrize("b_ns", [200_000, 206_000])
def test_spin(trt_bench, graph, b_ns):
    trt_bench.compare(lambda s: K.spin(s, 200_000), lambda s: K.spin(s, b_ns), timer="cuda", max_slowdown="50%",
                      cuda_graph=graph, remeasure=False)
'''


def test_through_trt_bench_compare(pytester: pytest.Pytester, floor: Any, quantum: float) -> None:
    """The same ground truth through the plugin as users call it
    (``trt_bench.compare(..., timer="cuda")``, NVML window and GPU lock):
    200 us against 200 us and 206 us, graphs on and off."""
    pytester.makepyfile(test_truth=PLUGIN_TEST)
    r = pytester.runpytest_subprocess(*load_plugin_args(), "-p", "no:cacheprovider", "--trt-json=out.json")
    assert r.ret == 0, r.stdout.str()
    results = json.loads((pytester.path / "out.json").read_text())["results"]
    assert len(results) == 4
    e_max = floor.pair_us + max(0.5, 0.005 * 200.0)
    for res in results:
        rel = res["relative"]
        tb = 206.0 if "206000" in res["id"] else 200.0
        bound = RatioBound.of(200.0, tb, e_max=e_max, quantum=quantum, ci=tuple(rel["ci"]), ratio=rel["ratio"])
        assert bound.holds(rel["ratio"]), (res["id"], rel["ratio"], bound)
        assert rel["pairs"] % 2 == 0
