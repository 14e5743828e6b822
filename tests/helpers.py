"""Helpers for the plugin's own tests: a host workload
whose cost is set from outside (so a slowdown can be injected by an exact,
controlled amount of extra work)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: Hashing a buffer is stable across processes on our CI machines (C code, no
#: allocation); TRTPERF_TEST_SCALE multiplies the bytes hashed.
HASH_TEST = '''
import hashlib, os
import pytest

DATA = memoryview(b"\\x5a" * 8_000_000)
SCALE = float(os.environ.get("TRTPERF_TEST_SCALE", "1"))
N = int({nbytes} * SCALE)


def test_hash(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(DATA[:N]).digest())
'''

#: Keep each measurement short; the statistics still converge on this workload.
#: The host-load watch is off: these tests are about other things and run on a
#: shared 2-core machine (tests/test_host_load.py covers the watch).
FAST = ["--trt-warmup-ms=50", "--trt-min-time=0.3", "--trt-max-time=2", "--trt-ignore-host-load",
        "-p", "no:cacheprovider"]


def hash_test(nbytes: int = 300_000) -> str:
    return HASH_TEST.format(nbytes=nbytes)


def baseline_files(pytester: pytest.Pytester) -> list[Path]:
    d = pytester.path / ".trtperf"
    return sorted(d.glob("*.json")) if d.is_dir() else []


def load_baseline(pytester: pytest.Pytester) -> dict[str, Any]:
    files = baseline_files(pytester)
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


#: The fake NVML module (tests/fakes/fake_nvml.py) and the repository root.
FAKE_NVML = Path(__file__).parent / "fakes" / "fake_nvml.py"
REPO = Path(__file__).resolve().parents[1]

#: Exactly the wiring plugin.py does for the GPU plugin, for pytester runs that
#: block the installed plugin with ``-p no:trtperf``.
GPU_PLUGIN_WIRING = """
import pytest
from pytest_trtperf.plugin.options import add_options, settings_from_config
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.gpu import session as gpu_plugin

def pytest_addoption(parser, pluginmanager):
    add_options(parser)
    gpu_plugin.register_auto_workers(pluginmanager)

def pytest_configure(config):
    try:
        s = settings_from_config(config)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(gpu_plugin.GpuSessionPlugin(config, s.gpu, s.baseline_mode), gpu_plugin.PLUGIN_NAME)
"""


def make_result(nodeid: str, *, kind: str = "cuda", status: str = "regression", name: str | None = None,
                identity: dict[str, Any] | None = None) -> Any:
    """A judged result as plain data, shaped like what a GPU run produces
    (GPU results cannot be measured on a machine without one)."""
    from pytest_trtperf.core.identity import result_id
    from pytest_trtperf.core.results import DeviceState, Distribution, Result, SeriesStats, Verdict

    stats = SeriesStats(n=100, median=1.0, mean=1.0, min=0.9, max=1.2, p90=1.1, p95=1.1, p99=1.2, stdev=0.05,
                        median_ci=(0.99, 1.01))
    rid = result_id(nodeid, name)
    return Result(id=rid, nodeid=nodeid, name=name, kind=kind, mode="latency", latency=stats, throughput=1000.0,
                  distribution=Distribution(n=100, quantiles_ms=(0.9, 1.0, 1.2)), stop_reason="converged",
                  warmup_iterations=10, warmup_s=0.2, measured_s=1.0, config_hash="abc",
                  identity=identity if identity is not None else {"kind": kind, "cuda_graph": True},
                  fingerprint={}, device_class="NVIDIA H200 sm90 cuda", device_state=DeviceState(kind=kind),
                  verdict=Verdict(status=status, metric="median", tolerance=0.05,
                                  message=f"{rid}: median latency regressed +30.0% (1.000 ms -> 1.300 ms)"))


def load_plugin_args() -> list[str]:
    """``-p pytest_trtperf.plugin.hooks`` for a subprocess pytest run only where the
    package is not installed: with its entry point registered too, pytest
    refuses the plugin twice (seen on the lent GPU machine, where the GPU
    tests install it without an index)."""
    from importlib.metadata import entry_points

    installed = any(ep.name == "trtperf" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "pytest_trtperf.plugin.hooks"]


#: The NVRTC kernels of the GPU tests (``tests/gpu/gpu_kernels.py``).
KERNELS = Path(__file__).resolve().parent / "gpu" / "gpu_kernels.py"
#: Source lines a generated GPU test (pytester) runs to get ``K``, those
#: kernels; it needs ``import importlib.util`` above them.
LOAD_KERNELS = f'''spec = importlib.util.spec_from_file_location("k", {str(KERNELS)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
K = mod.Kernels()
'''
