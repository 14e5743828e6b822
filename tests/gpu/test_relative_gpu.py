"""Relative gates on real CUDA: kernels of known length (``%globaltimer``
spins) compared interleaved, through the runner and through the plugin (NVML
window, per-GPU lock). Bounds come from the event-pair floor measured on this
card (timing_bounds.py). Run on the GPU machine:

    python -m pytest tests/gpu/test_relative_gpu.py -p no:trtperf -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.baseline import BaselineStore
from pytest_trtperf.config import MeasureOptions, Settings
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.runner import Runner, Target
from pytest_trtperf.workloads.cuda import CudaWorkload
from helpers import load_plugin_args

pytestmark = pytest.mark.gpu

KERNELS = Path(__file__).with_name("gpu_kernels.py")
TARGET = Target(id="t::ab", nodeid="t", name="ab")


def runner(tmp_path: Path) -> Runner:
    s = Settings(baseline_mode="off", baseline_dir=tmp_path / "b", rootdir=tmp_path, require_gpu=True,
                 json_path=None, report_path=None)
    return Runner(s, BaselineStore(s.baseline_dir))


def ratio_bounds(floor: Any, a_us: float, b_us: float) -> tuple[float, float]:
    """B/A for kernels of a_us and b_us: each reading within its own bounds."""
    la, ha = floor.latency(a_us)
    lb, hb = floor.latency(b_us)
    return lb / ha, hb / la


def spin(kernels: Any, us: float) -> CudaWorkload:
    return CudaWorkload(lambda stream: kernels.spin(stream, int(us * 1000)))


def test_a_ten_percent_longer_kernel_breaks_a_five_percent_expectation(kernels: Any, floor: Any,
                                                                      tmp_path: Path) -> None:
    r = run_relative(runner(tmp_path), spin(kernels, 100), spin(kernels, 110), TARGET, MeasureOptions(),
                     Expectation.from_config("max_slowdown", 0.05))
    rel = r.relative
    assert rel is not None and r.verdict is not None
    lo, hi = ratio_bounds(floor, 100, 110)
    assert lo <= rel.ratio <= hi, (rel.ratio, lo, hi)
    assert r.verdict.status == "regression" and rel.ci[0] > 1.05 and rel.ci[1] - rel.ci[0] < 0.02, rel
    assert r.kind == rel.a.kind == rel.b.kind == "cuda" and rel.pairs >= 10


def test_the_same_kernel_on_both_sides_passes(kernels: Any, floor: Any, tmp_path: Path) -> None:
    r = run_relative(runner(tmp_path), spin(kernels, 100), spin(kernels, 100), TARGET, MeasureOptions(),
                     Expectation.from_config("max_slowdown", 0.01))
    rel = r.relative
    assert rel is not None and r.verdict is not None
    lo, hi = ratio_bounds(floor, 100, 100)
    assert lo <= rel.ratio <= hi and abs(rel.ratio - 1.0) < 0.01, rel
    assert r.verdict.status == "pass" and not r.verdict.remeasured


TEST = f'''
import importlib.util
import pytest

spec = importlib.util.spec_from_file_location("k", {str(KERNELS)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
K = mod.Kernels()


def test_spin_ab(trt_bench):
    r = trt_bench.compare(lambda s: K.spin(s, 100_000), lambda s: K.spin(s, 50_000), timer="cuda", min_speedup=1.5)
    assert r.device_state.samples > 0  # one NVML window over both sides


def test_torch_fp16_vs_fp32(trt_bench):
    torch = pytest.importorskip("torch")
    a32 = torch.randn(4096, 4096, device="cuda")
    a16 = a32.half()
    trt_bench.compare(lambda: a32 @ a32, lambda: a16 @ a16, timer="torch", min_speedup=1.5, name="gemm")
'''


def test_through_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST)
    r = pytester.runpytest_subprocess(*load_plugin_args(), "-p", "no:cacheprovider", "--trt-json=out.json",
                                      "-rs")
    outcomes = r.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) >= 1, r.stdout.str()
    doc = json.loads((pytester.path / "out.json").read_text())
    spin_ab = next(x for x in doc["results"] if x["id"] == "test_gpu.py::test_spin_ab")
    assert 0.45 < spin_ab["relative"]["ratio"] < 0.56 and spin_ab["verdict"]["status"] == "pass"
    assert spin_ab["device_state"]["samples"] > 0 and spin_ab["kind"] == "cuda"
    assert not list((pytester.path / ".trtperf").glob("*.json"))  # no baseline written
