"""Helpers for the plugin's own tests: a host workload
whose cost is set from outside (so a slowdown can be injected by an exact,
controlled amount of extra work)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
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

#: A fixed-duration host workload: each call spins on ``time.perf_counter_ns``
#: for ``us`` microseconds times TRTPERF_TEST_SCALE, so a slowdown is exactly
#: the scale asked for and the median does not move with this shared VM's
#: speed. Hashing did: in CI (stop 29) one process read the same hash 27% and
#: 43% slower a second after its update, turning a +30% slowdown into -9% and
#: an unchanged test into a regression. Tests about the gate's arithmetic and
#: messages use this; tests about the host itself (load, preemption) hash.
SPIN_SOURCE = '''
import os, time
import pytest

SCALE = float(os.environ.get("TRTPERF_TEST_SCALE", "1"))
NS = int({us} * 1000 * SCALE)
CLOCK = time.perf_counter_ns


def spin(ns=NS):
    end = CLOCK() + ns
    while CLOCK() < end:
        pass
'''
SPIN_TEST = SPIN_SOURCE + '''

def test_spin(trt_bench):
    trt_bench.measure(spin)
'''


def spin_source(us: int = 250) -> str:
    """The ``spin`` function alone (a test module that defines its own tests)."""
    return SPIN_SOURCE.format(us=us)


def spin_test(us: int = 250) -> str:
    return SPIN_TEST.format(us=us)


#: Keep each measurement short; the statistics still converge on this workload.
#: The host-load watch is off: these tests are about other things and run on a
#: shared 2-core machine (tests/test_host_load.py covers the watch).
FAST = ["--trt-warmup-ms=50", "--trt-min-time=0.3", "--trt-max-time=2", "--trt-ignore-host-load",
        "-p", "no:cacheprovider"]


#: The knobs the inner test sources of these tests read from the environment,
#: by the keyword ``run_inner`` takes for each (unset: the source's default).
KNOBS = {
    "scale": "TRTPERF_TEST_SCALE",  # HASH_TEST: bytes hashed; SPIN_TEST: microseconds
    "mb": "TRTPERF_TEST_MB",  # tests/test_memory.py: MiB allocated
    "ipi": "TRTPERF_IPI",  # tests/test_strict_gate.py: inferences per iteration
    "service_ms": "TRTPERF_TEST_SERVICE_MS",  # tests/test_serve_fixture.py: service time
    "mib": "TORCH_MIB",  # tests/gpu/test_torch_memory.py: MiB of the temporary
}


def run_inner(pytester: pytest.Pytester, *args: str, opts: Sequence[str] | None = None, env: Mapping[str, object] | None = None,
              subprocess: bool = False, timeout: float | None = None, **knobs: float) -> pytest.RunResult:
    """One inner pytest session: ``opts`` (``QUICK``'s windows unless a test
    says otherwise: a hashing test that judges timing passes ``FAST``), then ``args``; in-process, or in a
    child process with ``subprocess`` (``timeout`` applies there).

    ``env`` and the ``KNOBS`` given as keywords are set through monkeypatch for
    this session alone: restored afterwards whatever happens, so one test's
    knob never leaks into the next run."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise TypeError(f"run_inner: unknown knob(s) {unknown}; known: {sorted(KNOBS)}")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**(env or {}), **{KNOBS[k]: v for k, v in knobs.items()}}.items():
            mp.setenv(key, str(value))
        windows = QUICK if opts is None else opts
        if subprocess:
            return pytester.runpytest_subprocess(*windows, *args, timeout=timeout)
        return pytester.runpytest(*windows, *args)


#: For inner runs whose test judges no timing (a usage error, outputs written,
#: markers and off switches, memory with time at 200% tolerance), and for
#: SPIN_TEST workloads, whose median is set by the clock (200 calls pin it as
#: well as FAST's 1200: the verdicts on them still judge timing): a tenth of
#: FAST's windows, still well over min_iterations of the hash workload.
QUICK = ["--trt-warmup-ms=10", "--trt-min-time=0.05", "--trt-max-time=0.5", "--trt-ignore-host-load",
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


#: A second process that takes one of this folder's locks (``take``: Python
#: statements, ``DIR`` the lock directory; they keep the lock object in a name,
#: or its files close and let go at once), prints the time it got it, holds it
#: ``hold`` seconds and exits (an exit lets go of every ``flock``).
HOLDER = """
import time
from pathlib import Path
DIR = Path({dir!r})
{take}
print(time.time(), flush=True)
time.sleep({hold})
"""


def lock_holder(directory: Path, take: str, hold: float = 0.0) -> subprocess.Popen[str]:
    """Start a HOLDER process: tests/host_share.py and tests/cpu_slots.py between real processes."""
    code = HOLDER.format(dir=str(directory), take=take, hold=hold)
    env = {**os.environ, "PYTHONPATH": pythonpath_with_tests()}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)


def pythonpath_with_tests() -> str:
    """PYTHONPATH for a child process that imports this folder's modules (``cpu_slots``, ``host_share``)."""
    return os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])

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


def make_result(nodeid: str = "t.py::test_a", status: str | None = None, change: float = 0.0, *,
                kind: str = "host", name: str | None = None, scale: float = 1.0, spread: float = 0.01, n: int = 500,
                seed: int | None = None, flags: tuple[str, ...] = (), identity: dict[str, Any] | None = None,
                location: tuple[str, int] | None = None, message: str | None = None) -> Any:
    """A measured result as plain data, for tests of what reads results (the
    store, reports, the nsys command) without measuring anything.

    Latencies are ``n`` draws around ``scale`` ms with relative ``spread``, from
    ``seed`` (by default the CRC of the id: the same in every process). A
    ``status`` adds a verdict whose current value is ``change`` above the
    baseline. ``kind`` other than ``host`` is shaped like a GPU run's result
    (GPU results cannot be measured on a machine without one)."""
    from pytest_trtperf.core.fingerprint import host_fingerprint
    from pytest_trtperf.core.identity import result_id
    from pytest_trtperf.core.results import DeviceState, Result, Verdict

    rid = result_id(nodeid, name)
    latency, distribution = _series(zlib.crc32(rid.encode()) if seed is None else seed, n, scale, spread)
    if kind == "host":
        fp = host_fingerprint()
        fingerprint, device_class = fp.to_dict(), fp.device_class
    else:
        fingerprint, device_class = {}, "NVIDIA H200 sm90 cuda"
        identity = {"kind": kind, "cuda_graph": True} if identity is None else identity
    verdict = None
    if status is not None:
        now = scale * (1 + change)
        verdict = Verdict(status=status, metric="median", tolerance=0.05, baseline_value=scale, current_value=now,
                          change=change, ci=(change - 0.01, change + 0.01),
                          message=message or f"{rid}: median latency {change:+.1%} ({scale:.3f} ms -> {now:.3f} ms)")
    return Result(id=rid, nodeid=nodeid, name=name, kind=kind, mode="latency", latency=latency,
                  throughput=1e3 / latency.mean, distribution=distribution, stop_reason="converged",
                  warmup_iterations=5, warmup_s=0.2, measured_s=0.5, config_hash="abc",
                  identity={} if identity is None else identity, fingerprint=fingerprint, device_class=device_class,
                  device_state=DeviceState(kind=kind, flags=flags), location=location, verdict=verdict)


@functools.lru_cache(maxsize=64)
def _series(seed: int, n: int, scale: float, spread: float) -> tuple[Any, Any]:
    """Summary and distribution of one drawn series (cached: 5,000 results in
    one test would otherwise spend 20 s summarising)."""
    from pytest_trtperf.core import stats

    x = np.random.default_rng(seed).normal(1.0, spread, n) * scale * 1e-3
    return stats.summarize(x), stats.compress(x)


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


def scratch_tmpdir(monkeypatch: pytest.MonkeyPatch, factory: pytest.TempPathFactory) -> Path:
    """A temp directory of the test's own for everything tempfile makes (the
    side-by-side worktrees), outside the repository, so a test can see that
    nothing is left there: through TMPDIR for processes started from here,
    and through ``tempfile.tempdir`` for in-process sessions (tempfile has
    read TMPDIR already)."""
    import tempfile

    scratch = factory.mktemp("scratch")
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch
