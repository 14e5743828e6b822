"""Relative gates on real CUDA: kernels of known length (``%globaltimer``
spins) compared interleaved, through the runner and through the plugin (NVML
window, per-GPU lock), and the profiling aids of a failed gate (the nsys
command, both sides' exports, profiler API and NVTX ranges around the
interleaved blocks). Bounds come from the event-pair floor measured on this
card (timing_bounds.py). Run on the GPU machine:

    python -m pytest tests/gpu/test_relative_gpu.py -p no:trtperf -q
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

import nvtx_recorder
from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, Settings
from pytest_trtperf.gpu.window import side_range_name
from pytest_trtperf.report import nsight
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.workloads.cuda import CudaWorkload
from helpers import LOAD_KERNELS, load_plugin_args

pytestmark = pytest.mark.gpu

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

{LOAD_KERNELS}

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


PROFILED = nvtx_recorder.CALL_WRITER + f'''
import importlib.util
import pytest

{LOAD_KERNELS}

def spin(tag, ns):
    log = logged(tag)

    def fn(stream):
        log()  # one line per launch: graphs are off, so one per measured iteration
        K.spin(stream, ns)
    return fn


def test_cuda_ab(trt_bench):
    trt_bench.compare(spin("a", 100_000), spin("b", 130_000), timer="cuda", max_slowdown="3%", name="spin",
                      remeasure=False)


def test_torch_ab(trt_bench):
    torch = pytest.importorskip("torch")
    x = torch.randn(2048, 2048, device="cuda")
    trt_bench.compare(lambda: x @ x, lambda: (x @ x, x @ x), timer="torch", max_slowdown="3%", name="mm",
                      remeasure=False)
'''


def run_profiled(p: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, library: Path | None,
                 *args: str) -> pytest.RunResult:
    log = p.path / "nvtx.log"
    monkeypatch.setenv(nvtx_recorder.LOG_ENV, str(log))
    if library is not None:
        monkeypatch.setenv("NVTX_INJECTION64_PATH", str(library))
    p.makepyfile(test_gpu=PROFILED)
    return p.runpytest_subprocess(*load_plugin_args(), "-p", "no:cacheprovider", "--trt-json=out.json",
                                  "--trt-no-cuda-graph", "--trt-max-time=2", "--trt-profiler-api", "-rf", *args)


def test_a_failed_gpu_gate_ends_with_the_nsys_command_and_exports_both_sides(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real CUDA (and torch where installed): a relative gate that fails says
    why first, ends with the command that profiles just that test, writes
    both sides' samples, and its interleaved run is bracketed by
    cudaProfilerStart/Stop without a ProfilingWarning (the calls succeeded)."""
    r = run_profiled(pytester, monkeypatch, None, "--trt-export-dir=exp")
    out = r.stdout.str()
    outcomes = r.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) == 0, out
    assert "ProfilingWarning" not in out and "Traceback" not in out
    r.stdout.re_match_lines([r"FAILED test_gpu.py::test_cuda_ab - Failed: b/a 1\.\d{3} exceeds max_sl.*"])
    doc = json.loads((pytester.path / "out.json").read_text())
    failed = [x for x in doc["results"] if x["verdict"]["status"] == "regression"]
    assert {x["id"] for x in failed} >= {"test_gpu.py::test_cuda_ab::spin"}
    index = json.loads((pytester.path / "exp" / "index.json").read_text())["results"]
    for res in failed:
        head, sep, command = res["verdict"]["message"].partition(nsight.PREFIX)
        assert sep and head.startswith("b/a ") and " exceeds max_slowdown 3%; " in head and "\n" not in command
        argv = shlex.split(command)
        assert argv[:2] == ["nsys", "profile"] and "--capture-range=cudaProfilerApi" in argv
        assert res["nodeid"] in argv and {"--trt-profiler-api", "--trt-nvtx", "--trt-no-cuda-graph"} <= set(argv)
        assert "--cuda-graph-trace=node" not in argv  # graphs were off on both sides
        for side in ("a", "b"):
            samples = json.loads((pytester.path / "exp" / index[res["id"]][f"{side}.samples"]).read_text())
            assert samples["iterations"] == res["relative"][side]["latency_ms"]["n"] == sum(samples["blocks"])
            assert "gpu_compute" in samples["series"]
    # In pytest's failure text the command comes last, after the measurement's name.
    r.stdout.fnmatch_lines(["b/a 1.* exceeds max_slowdown 3%; median latency: * [[]measurement 'spin'[]]",
                            "*profile this test under Nsight Systems: nsys profile *test_gpu.py::test_cuda_ab*"])


def test_nvtx_ranges_bracket_each_interleaved_block_on_the_gpu(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """With an NVTX tool attached (tests/nvtx_recorder.c, loaded as Nsight
    loads its own), every kernel launch of a measured block runs inside
    ``<id> [a]`` or ``<id> [b]`` inside ``<id>``, one range per block; warm-up
    launches run outside every range."""
    library = nvtx_recorder.library_or_skip(tmp_path_factory.mktemp("nvtx_tool"))
    r = run_profiled(pytester, monkeypatch, library, "--trt-nvtx", "-k", "cuda")
    r.assert_outcomes(failed=1)
    assert "ProfilingWarning" not in r.stdout.str()
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    rel, rid = res["relative"], res["id"]
    seen = nvtx_recorder.read(pytester.path / "nvtx.log")
    assert seen.left_open == ()
    where: dict[tuple[str, tuple[str, ...]], int] = {}
    for call in seen.calls:
        where[(call.tag, call.stack)] = where.get((call.tag, call.stack), 0) + 1
    assert where.pop(("a", (rid, side_range_name(rid, "a")))) == rel["a"]["latency_ms"]["n"]
    assert where.pop(("b", (rid, side_range_name(rid, "b")))) == rel["b"]["latency_ms"]["n"]
    # Each block's untimed lead-in: in the run's range, outside the block's range.
    assert where.pop(("a", (rid,))) >= rel["pairs"] and where.pop(("b", (rid,))) >= rel["pairs"]
    assert set(where) == {("a", ()), ("b", ())}, where  # warm-up, setup and the re-warm pair
    blocks = [x for x in seen.pushed if x.startswith(rid)]
    assert blocks[0] == rid and blocks.count(rid) == 1
    assert blocks.count(side_range_name(rid, "a")) == blocks.count(side_range_name(rid, "b")) == rel["pairs"]
