"""A GPU latency set by the host's launch speed says so (issue 10: the
reference-model study found eager ResNet-50 batch 1 moving with the host CPU).
Results are built from real samples through ``stats``; the real CUDA path is
tests/gpu/test_launch_bound_gpu.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_trtperf.core import stats
from pytest_trtperf.core.fingerprint import gpu_fingerprint, host_fingerprint
from pytest_trtperf.core.results import DeviceState, Result
from pytest_trtperf.pipeline.runner import LAUNCH_BOUND_SHARE, launch_bound_note


def result(latency_ms: float, enqueue_ms: float | None, *, kind: str = "torch", mode: str = "latency") -> Result:
    rng = np.random.default_rng(0)
    lat = rng.normal(1.0, 0.01, 500) * latency_ms * 1e-3
    extra = {} if enqueue_ms is None else {"enqueue": stats.summarize(rng.normal(1.0, 0.01, 500) * enqueue_ms * 1e-3)}
    fp = host_fingerprint() if kind == "host" else gpu_fingerprint(
        kind=kind, gpu_name="NVIDIA H200", compute_capability="9.0", trt_version=None, clocks="off", info={})
    return Result(id="t.py::test_m", nodeid="t.py::test_m", name=None, kind=kind, mode=mode,
                  latency=stats.summarize(lat), throughput=1 / lat.mean(), distribution=stats.compress(lat),
                  stop_reason="converged", warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash="c",
                  identity={}, fingerprint=fp.to_dict(), device_class=fp.device_class,
                  device_state=DeviceState(kind=kind), extra=extra)


def test_an_eager_launch_bound_timing_gets_a_note_with_both_numbers() -> None:
    note = launch_bound_note(result(5.0, 4.6))
    assert note is not None
    assert re.match(r"launch-bound: enqueueing one call takes 4\.[56]\d* ms of its (4\.9|5\.0)\d* ms \(9[12]%\)", note)
    assert "CUDA graphs" in note


@pytest.mark.parametrize("latency, enqueue", [(5.0, 0.02), (1.0, LAUNCH_BOUND_SHARE * 0.95)])
def test_a_gpu_bound_or_graph_replayed_timing_gets_none(latency: float, enqueue: float) -> None:
    assert launch_bound_note(result(latency, enqueue)) is None


@pytest.mark.parametrize("kw", [dict(kind="host"), dict(mode="throughput"), dict(enqueue_ms=None)])
def test_host_throughput_or_unknown_enqueue_get_none(kw: dict) -> None:
    args = dict(latency_ms=1.0, enqueue_ms=0.99)
    args.update(kw)
    assert launch_bound_note(result(**args)) is None  # type: ignore[arg-type]
