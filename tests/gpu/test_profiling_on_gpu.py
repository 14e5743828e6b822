"""Profiling aids on a real GPU: the profiler API and NVTX calls themselves,
the nsys command at the end of a real regression's message, and the samples
export of a CUDA result. (Which kernels ncu sees inside the NVTX range is
checked by ``bench/profiling_gpu.sh``, which runs the tests under ncu.)"""

from __future__ import annotations

import functools
import json
import shlex
import subprocess
import sys
import warnings

import pytest

from pytest_trtperf.report import nsight
from pytest_trtperf.core.config import GpuSettings
from pytest_trtperf.gpu import cuda
from pytest_trtperf.gpu import nvtx as nvtx_layer
from pytest_trtperf.gpu.window import measured_window
from helpers import LOAD_KERNELS, load_plugin_args, run_inner

pytestmark = pytest.mark.gpu


TEST = f'''
import importlib.util, os
import pytest

{LOAD_KERNELS}
NS = int(float(os.environ.get("SPIN_SCALE", "1")) * 100_000)


def test_spin(trt_bench):
    trt_bench.measure(lambda stream: K.spin(stream, NS), timer="cuda", name="spin100us")
'''




ARGS = [*load_plugin_args(), "-p", "no:cacheprovider", "--trt-max-time=1", "--trt-json=out.json"]


run = functools.partial(run_inner, opts=ARGS, subprocess=True)


def test_profiler_api_calls_succeed() -> None:
    cuda.runtime().cudaFree(0)  # a context, as any GPU workload has
    cuda.profiler_start()
    cuda.profiler_stop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ProfilingWarning: both calls worked
        with measured_window(GpuSettings(profiler_api=True), "t.py::test_x", "cuda"):  # type: ignore[union-attr]
            pass


def test_nvtx_range_calls_succeed() -> None:
    why = nvtx_layer.unavailable_reason()
    if why is not None:
        pytest.skip(why)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with measured_window(GpuSettings(nvtx=True, profiler_api=True), "t.py::test_x[a/b]", "cuda"):  # type: ignore[union-attr]
            pass
    with nvtx_layer.nvtx_range("t.py::nested") as pushed:
        assert pushed is True


def test_a_regression_message_ends_with_the_nsys_command(pytester: pytest.Pytester) -> None:
    why = nvtx_layer.unavailable_reason()
    if why is not None:
        pytest.skip(why)  # --trt-nvtx would warn (tested on the CPU); here the ranges must work
    pytester.makepyfile(test_gpu=TEST)
    run(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    slow = run(pytester, "--trt-nvtx", "--trt-profiler-api", env={"SPIN_SCALE": 1.3})
    slow.assert_outcomes(failed=1)
    out = slow.stdout.str()
    assert "ProfilingWarning" not in out
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    message = res["verdict"]["message"]
    head, sep, command = message.partition(nsight.PREFIX)
    assert sep and "regressed" in head and "\n" not in command
    argv = shlex.split(command)
    assert argv[:2] == ["nsys", "profile"] and "--cuda-graph-trace=node" in argv
    assert "test_gpu.py::test_spin" in argv and "--trt-profiler-api" in argv
    # In the pytest failure text the command comes last, after the re-measure note.
    slow.stdout.fnmatch_lines(["median latency regressed*(confirmed by a second measurement) [[]measurement 'spin100us'[]]",
                               "*profile this test under Nsight Systems: nsys profile *test_gpu.py::test_spin*"])
    # The command's pytest part selects exactly that test.
    start = argv.index("-m") - 1
    collect = subprocess.run([sys.executable if argv[start] == "python" else argv[start], *argv[start + 1:],
                              *load_plugin_args(), "--collect-only", "-q"], cwd=pytester.path, capture_output=True,
                             text=True, timeout=120)
    assert [x for x in collect.stdout.splitlines() if "::" in x] == ["test_gpu.py::test_spin"], collect.stdout


def test_samples_export_of_a_cuda_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST)
    run(pytester, "--trt-baseline=off", "--trt-export-dir=exp").assert_outcomes(passed=1)
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    index = json.loads((pytester.path / "exp" / "index.json").read_text())["results"]
    doc = json.loads((pytester.path / "exp" / index[res["id"]]["samples"]).read_text())
    assert doc["kind"] == "cuda" and set(doc["series"]) >= {"latency", "gpu_compute", "enqueue"}
    assert len(doc["series"]["latency"]) == res["latency_ms"]["n"] == doc["iterations"]
    assert min(doc["series"]["gpu_compute"]) >= 0.1  # a 100 us kernel, in ms
