"""TensorRTWorkload on a real GPU with FakeTensorRT at the execution boundary.

The fake launches real kernels on the stream TensorRT would use, so events,
graph capture/replay, several streams, transfers and the profiling pass are
real CUDA. Run on the GPU machine:

    python -m pytest tests/trt -m gpu -p no:trtperf -q
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.trt.api import engine_from_plan, make_workload

pytestmark = pytest.mark.gpu

WHERE = "test_gpu_workload.py"
IO = [
    {"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [-1, 3, 16, 16],
     "profiles": [[[1, 3, 16, 16], [4, 3, 16, 16], [8, 3, 16, 16]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]
LAYERS = [("conv", 100.0), ("fc", 50.0)]  # microseconds at batch 1


def _handle(fake_backend, fake_trt, io=IO, layers=LAYERS):
    return engine_from_plan(fake_backend, fake_trt.make_plan(io, layers), WHERE, "fake.plan")


def test_latency_mode_graph_times_the_engine(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (1, 3, 16, 16)})
    w.setup()
    try:
        batch = w.run(200)
        notes = w.notes()
        out = w.output("logits")
    finally:
        w.teardown()
    median_us = float(np.median(batch.latency_s)) * 1e6
    assert 140 <= median_us <= 1000, median_us  # two layers: 100 + 50 us of GPU time
    assert not [n for n in notes if "capture" in n], notes  # the enqueue was captured as a graph
    assert set(batch.extra) >= {"gpu_compute", "enqueue"}
    assert out.shape == (1, 10) and np.count_nonzero(out) > 0  # input bytes reached the output
    assert w.inferences_per_iteration == 1


def test_batch_scales_gpu_time(fake_backend, fake_trt) -> None:
    def median(bs):
        w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (bs, 3, 16, 16)})
        w.setup()
        try:
            return float(np.median(w.run(100).latency_s))
        finally:
            w.teardown()

    assert median(8) > 1.4 * median(1)  # fake layers take 1 + 0.1 * (batch - 1) times longer


def test_no_graph_and_blocking_sync(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (2, 3, 16, 16)}, cuda_graph=False, blocking_sync=True)
    w.setup()
    try:
        batch = w.run(50)
    finally:
        w.teardown()
    assert batch.iterations == 50 and float(np.median(batch.latency_s)) > 100e-6


def test_throughput_mode_two_streams_one_context_each(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (4, 3, 16, 16)}, mode="throughput", streams=2)
    w.setup()
    try:
        assert len(w._slots) == 2 and len({id(s.context) for s in w._slots.values()}) == 2
        batch = w.run(200)
    finally:
        w.teardown()
    per_inference_s = float(np.median(batch.latency_s))
    assert w.inferences_per_iteration == 4
    assert 0 < per_inference_s < 250e-6  # the fake kernels of two streams overlap


def test_transfers_add_h2d_and_d2h(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (8, 3, 16, 16)}, transfers=True)
    w.setup()
    try:
        batch = w.run(50)
    finally:
        w.teardown()
    assert {"h2d", "d2h"} <= set(batch.extra)
    assert float(np.median(batch.extra["h2d"])) > 0


def test_data_dependent_output_uses_the_output_allocator(fake_backend, fake_trt) -> None:
    io = [IO[0], {"name": "boxes", "mode": "output", "dtype": "FLOAT", "shape": [-1, 4], "data_dependent": True}]
    w = make_workload(_handle(fake_backend, fake_trt, io=io), shapes={"images": (3, 3, 16, 16)})
    w.setup()
    try:
        w.run(20)
        slot = next(iter(w._slots.values()))
        assert slot.allocator is not None and slot.allocator.shapes["boxes"] == (3, 4)
        assert w.output("boxes").shape == (3, 4)
        assert any("data-dependent" in n for n in w.notes())
    finally:
        w.teardown()


def test_profile_layers_pass_after_measuring(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (1, 3, 16, 16)}, profile_layers=True)
    w.setup()
    try:
        w.run(20)
    finally:
        w.teardown()
    rows = w.layers()
    assert [r["name"] for r in rows] == ["conv", "fc"]
    assert rows[0]["ms"] > rows[1]["ms"] > 0.03
    assert rows[0]["type"] == "FakeKernel" and rows[0]["calls"] == 10


def test_engine_device_memory_is_recorded(fake_backend, fake_trt) -> None:
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (1, 3, 16, 16)})
    w.setup()
    try:
        assert w.device_memory_bytes == 1 << 20
        assert any("engine device memory: 1.0 MiB" in n for n in w.notes())
    finally:
        w.teardown()
