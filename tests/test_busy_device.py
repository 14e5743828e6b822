"""A busy GPU is not a regression (issue 11 item 3).

This machine has no GPU: NVML is FakeNVML (tests/fakes/fake_nvml.py), whose
state file lists another process on the GPU, as the real driver would; the
measured code is a real host callable timed through the real ``measure``,
sampled by the real ``DeviceStateSampler`` and judged by the real gate. The
neighbour "leaves" by being removed from the state file, as a process exiting
leaves NVML's list.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import FAKE_NVML
from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.core.fingerprint import gpu_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.gpu import device_state, nvml
from pytest_trtperf.gpu import pinning as gpu_pinning
from pytest_trtperf.core.measure import measure
from pytest_trtperf.core.results import Result, Verdict
from pytest_trtperf.pipeline.runner import settle, unreliable_verdict
from pytest_trtperf.workloads.host import HostWorkload

NEIGHBOUR = 4242
FP = gpu_fingerprint(kind="cuda", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", trt_version=None,
                     clocks="off", info={})


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """FakeNVML: one GPU with this process and a neighbour (pid 4242, python3) on it."""
    state = tmp_path / "nvml.json"
    monkeypatch.setenv(nvml.ENV_MODULE, str(FAKE_NVML))
    monkeypatch.setenv("TRTPERF_FAKE_NVML_STATE", str(state))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_pinning, "cuda_pci_bus_id", lambda index: None)  # no CUDA driver here
    nvml.reset_module()
    mod = nvml.module()
    mod.write_state(state, [mod.make_gpu(0, processes=[
        {"pid": os.getpid(), "usedGpuMemory": 1 << 30},
        {"pid": NEIGHBOUR, "usedGpuMemory": 8 << 30, "name": "/usr/bin/python3"}])])
    yield state
    nvml.reset_module()


def neighbour_leaves(state: Path, after_s: float) -> threading.Thread:
    def leave() -> None:
        time.sleep(after_s)
        data = json.loads(state.read_text())
        data["gpus"][0]["processes"] = [p for p in data["gpus"][0]["processes"] if p["pid"] != NEIGHBOUR]
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, state)

    t = threading.Thread(target=leave, daemon=True)
    t.start()
    return t


DATA = memoryview(b"\x5a" * 400_000)
SETTINGS = MeasureSettings(warmup_s=0.02, min_time_s=0.1, max_time_s=0.3)


def measured(scale: float = 1.0) -> Result:
    """A real measurement with the NVML sampler watching."""
    n = int(50_000 * scale)
    w = HostWorkload(lambda: hashlib.sha256(DATA[:n]).digest())
    m = measure(w, SETTINGS, device_state.DeviceStateSampler(0, 0.005))
    return Result(id="t.py::test_gpu", nodeid="t.py::test_gpu", name=None, kind="cuda", mode="latency",
                  latency=stats.summarize(m.latency_s), throughput=m.throughput,
                  distribution=stats.compress(m.latency_s), stop_reason=m.stop_reason, warmup_iterations=1,
                  warmup_s=0.0, measured_s=m.wall_s, config_hash="c", identity={}, fingerprint=FP.to_dict(),
                  device_class=FP.device_class, device_state=m.device_state)


def test_the_sampler_flags_busy_and_names_the_neighbour(gpu: Path) -> None:
    r = measured()
    assert "busy" in r.device_state.flags
    assert r.device_state.other_processes == (f"{NEIGHBOUR} python3",)


def test_waiting_is_bounded_and_names_who_stayed(gpu: Path) -> None:
    t0 = time.monotonic()
    still = device_state.wait_until_idle(0.6, lambda: {os.getpid()}, poll_s=0.1)
    waited = time.monotonic() - t0
    assert still == (f"{NEIGHBOUR} python3",)
    assert 0.6 <= waited < 5.0


def test_waiting_ends_when_the_neighbour_leaves(gpu: Path) -> None:
    neighbour_leaves(gpu, 0.3)
    t0 = time.monotonic()
    assert device_state.wait_until_idle(20.0, lambda: {os.getpid()}, poll_s=0.05) == ()
    assert time.monotonic() - t0 < 10.0  # returned long before the 20 s bound


def neighbour_last_sampled(state: Path, seconds_ago: float) -> None:
    """The driver last sampled the neighbour ``seconds_ago`` (it still runs
    kernels: the driver samples per-process utilization every so often)."""
    data = json.loads(state.read_text())
    for p in data["gpus"][0]["processes"]:
        if p["pid"] == NEIGHBOUR:
            p["sampled_us"] = int((time.time() - seconds_ago) * 1e6)
    state.write_text(json.dumps(data))


def test_a_short_window_sees_a_neighbour_sampled_just_before_it(gpu: Path) -> None:
    """Seen on the lent H200: a neighbour running kernels throughout had no
    utilization sample inside a short window, which then read not busy."""
    neighbour_last_sampled(gpu, 0.5)
    sampler = device_state.DeviceStateSampler(0, 0.01)
    sampler.start()
    state = sampler.stop()
    assert "busy" in state.flags and state.other_processes == (f"{NEIGHBOUR} python3",)


def test_the_wait_ends_only_after_a_quiet_spell_not_one_poll_without_samples(gpu: Path) -> None:
    """Seen on the lent H200: the wait ended at once because no sample was
    newer than the previous poll, while the neighbour still ran kernels."""
    neighbour_last_sampled(gpu, 1.0)
    still = device_state.wait_until_idle(0.3, lambda: {os.getpid()}, poll_s=0.05)
    assert still == (f"{NEIGHBOUR} python3",)
    neighbour_last_sampled(gpu, device_state.QUIET_S + 1.0)  # it stopped running kernels
    assert device_state.wait_until_idle(0.3, lambda: {os.getpid()}, poll_s=0.05) == ()


def policy(baseline: Result, scale: float, wait_s: float,
           on_wait: Callable[[], object] = lambda: None) -> tuple[Result, Verdict, bool, list[str]]:
    """The runner's policy (``settle``) over real measurements, the real gate
    and the runner's unreliable verdict; the wait is the real NVML wait
    (``on_wait`` runs as it starts)."""
    entry = BaselineEntry.from_result(baseline, timestamp="T", git_commit=None)
    events: list[str] = []

    def measure_once() -> Result:
        events.append("measure")
        return measured(scale)

    def judge_one(r: Result) -> Verdict:
        return judge(r, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                     baseline_path="b.json")

    def wait_quiet(r: Result) -> tuple[str, ...]:
        events.append("wait")
        on_wait()
        return device_state.wait_until_idle(wait_s, lambda: {os.getpid()}, poll_s=0.05)

    r, v, again = settle(measure_once, judge_one, is_regression=lambda v: v.status == "regression",
                         remeasure=True, flagged=lambda r: r.flagged,
                         busy=lambda r: "busy" in r.device_state.flags, wait_quiet=wait_quiet,
                         unreliable=lambda r, v, who: unreliable_verdict(r, v, who or r.device_state.other_processes,
                                                                         wait_s))
    return r, v, again, events


def quiet_baseline(gpu: Path) -> Result:
    data = json.loads(gpu.read_text())
    procs = data["gpus"][0]["processes"]
    data["gpus"][0]["processes"] = [p for p in procs if p["pid"] != NEIGHBOUR]
    gpu.write_text(json.dumps(data))
    base = measured()
    data["gpus"][0]["processes"] = procs
    gpu.write_text(json.dumps(data))
    assert "busy" not in base.device_state.flags
    return base


def test_a_neighbour_that_stays_makes_the_result_unreliable_not_a_regression(gpu: Path) -> None:
    base = quiet_baseline(gpu)
    # Three times the work: the numbers alone would say "regressed".
    r, v, again, events = policy(base, 3.0, wait_s=0.3)
    assert events == ["measure", "wait", "measure"] and again
    assert v.status == "unreliable" and v.decided_by == "gpu_busy" and not v.failed
    assert v.message.startswith("unreliable: GPU busy")
    assert f"other processes: {NEIGHBOUR} python3" in v.message
    assert "the numbers said regression +" in v.message and "not judged" in v.message


def test_a_neighbour_that_leaves_gets_a_clean_re_measurement(gpu: Path) -> None:
    base = quiet_baseline(gpu)
    # The neighbour leaves 0.2 s into the wait (not 0.2 s from now: on a loaded
    # machine the first window could outlast that and never see it).
    r, v, again, events = policy(base, 3.0, wait_s=20.0, on_wait=lambda: neighbour_leaves(gpu, 0.2))
    assert events[:3] == ["measure", "wait", "measure"]
    assert "busy" not in r.device_state.flags
    assert v.status == "regression"  # now it is a regression of the code, measured on a quiet GPU


def test_a_busy_window_without_compared_numbers_is_not_waited_for(gpu: Path) -> None:
    """No baseline (``missing``): nothing would be falsified, so no wait and
    no re-measure; the verdict stays ``missing`` (and its option decides)."""
    events: list[str] = []

    def measure_once() -> Result:
        events.append("measure")
        return measured()

    def missing(r: Result) -> Verdict:
        return judge(r, None, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                     baseline_path="b.json")

    r, v, again = settle(measure_once, missing, is_regression=lambda v: v.status == "regression", remeasure=True,
                         flagged=lambda r: r.flagged, busy=lambda r: "busy" in r.device_state.flags,
                         wait_quiet=lambda r: events.append("wait") or (),
                         unreliable=lambda r, v, who: unreliable_verdict(r, v, who, 1.0),
                         matters=lambda v: v.status in ("pass", "regression", "improved", "updated"))
    assert "busy" in r.device_state.flags
    assert events == ["measure"] and not again and v.status == "missing"
