"""TensorRTWorkload on a real GPU with FakeTensorRT at the execution boundary.

The fake launches real kernels on the stream TensorRT would use, so events,
graph capture/replay, several streams, transfers and the profiling pass are
real CUDA. Run on the GPU machine:

    python -m pytest tests/trt -m gpu -p no:trtperf -q
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.trt.api import engine_from_plan

from pytest_trtperf.workloads.tensorrt import make_workload

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


def test_engines_are_captured_without_the_capture_check(fake_backend, fake_trt) -> None:
    """TensorRT's enqueue is TensorRT's: captured as trtexec does, no
    graph-vs-eager check, no ``timed_as`` (README, CUDA graphs and captured code)."""
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (1, 3, 16, 16)})
    w.setup()
    try:
        inner = w._inner
        assert inner is not None and inner.graph_used and not inner.check_capture and inner.check is None
        ident = w.identity()
    finally:
        w.teardown()
    assert "timed_as" not in ident and "capture_check" not in ident


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


# ---------------------------------------------------------------------------
# TensorRT API correctness (issue 12) and trtexec-comparable contexts (issue 10
# item 3), through FakeTensorRT / FakeTensorRT-RTX on the GPU.
from dataclasses import replace  # noqa: E402

from pytest_trtperf.core.errors import UsageError  # noqa: E402
from pytest_trtperf.trt.engine import deserialize, introspect  # noqa: E402

TWO_PROFILES = [
    {"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [-1, 3, 16, 16],
     "profiles": [[[1, 3, 16, 16], [2, 3, 16, 16], [4, 3, 16, 16]],
                  [[8, 3, 16, 16], [16, 3, 16, 16], [32, 3, 16, 16]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]
SHAPE_TENSOR = [
    {"name": "data", "mode": "input", "dtype": "FLOAT", "shape": [-1, 16], "profiles": [[[1, 16], [4, 16], [8, 16]]]},
    {"name": "shape", "mode": "input", "dtype": "INT64", "shape": [2], "shape_tensor": True,
     "profiles": [[[1, 8], [4, 16], [16, 32]]]},
    {"name": "output", "mode": "output", "dtype": "FLOAT", "shape": [-1, -1], "shape_from": "shape"},
]


def _first_context(w):
    return next(iter(w._slots.values())).context


def test_fake_engine_introspection(fake_backend, fake_trt) -> None:
    shape = dict(SHAPE_TENSOR[1], profiles=SHAPE_TENSOR[1]["profiles"] * 2)  # every input has every profile
    handle = engine_from_plan(fake_backend, fake_trt.make_plan(TWO_PROFILES + [shape]), WHERE, "fake.plan")
    live = deserialize(handle)
    io = {t.name: t for t in live.io}
    assert [t.name for t in live.io] == ["images", "logits", "shape"]
    assert io["images"].profiles[1] == ((8, 3, 16, 16), (16, 3, 16, 16), (32, 3, 16, 16))
    assert io["shape"].shape_tensor and io["shape"].profiles == (((1, 8), (4, 16), (16, 32)),) * 2
    assert io["logits"].mode == "output" and io["logits"].profiles == ()
    assert live.device_memory_bytes == 1 << 20
    assert introspect(fake_backend, live.engine) == live.io
    assert [layer["Name"] for layer in live.layer_info()["Layers"]] == ["fake_layer_0"]


def test_timed_contexts_use_layer_names_only_nvtx_and_the_profile_pass_detailed(fake_backend, fake_trt) -> None:
    """trtexec times with layer-names-only NVTX; detailed NVTX adds enqueue latency."""
    w = make_workload(_handle(fake_backend, fake_trt), shapes={"images": (1, 3, 16, 16)}, profile_layers=True)
    w.setup()
    ctx = _first_context(w)
    try:
        assert ctx.nvtx_verbosity == fake_trt.ProfilingVerbosity.LAYER_NAMES_ONLY
        w.run(20)
    finally:
        w.teardown()
    timed = [e for e in ctx.enqueues if not e["profiler"]]
    profiled = [e for e in ctx.enqueues if e["profiler"]]
    assert timed and {e["nvtx"] for e in timed} == {"LAYER_NAMES_ONLY"}
    assert len(profiled) == 10 and {e["nvtx"] for e in profiled} == {"DETAILED"}
    assert w.identity()["nvtx_verbosity"] == "layer_names_only" and w.layers()


def test_engine_built_with_no_nvtx_keeps_none(fake_backend, fake_trt) -> None:
    plan = fake_trt.make_plan(IO, LAYERS, profiling_verbosity="NONE")
    w = make_workload(engine_from_plan(fake_backend, plan, WHERE, "fake.plan"), shapes={"images": (1, 3, 16, 16)})
    w.setup()
    try:
        assert _first_context(w).nvtx_verbosity == fake_trt.ProfilingVerbosity.NONE
        assert w.identity()["nvtx_verbosity"] == "none"  # what the contexts were set to, not the default
    finally:
        w.teardown()


def test_optimization_profile_is_selected_and_checked(fake_backend, fake_trt) -> None:
    handle = replace(engine_from_plan(fake_backend, fake_trt.make_plan(TWO_PROFILES, LAYERS), WHERE, "fake.plan"), profile=1)
    w = make_workload(handle, shapes={"images": (16, 3, 16, 16)})
    w.setup()
    try:
        ctx = _first_context(w)
        w.run(10)
        assert ctx.active_optimization_profile == 1 and {e["profile"] for e in ctx.enqueues} == {1}
    finally:
        w.teardown()
    bad = make_workload(handle, shapes={"images": (2, 3, 16, 16)})  # fits profile 0 only
    with pytest.raises(UsageError, match=r"outside the engine's profile 1: min \(8, 3, 16, 16\)"):
        bad.setup()
    with pytest.raises(UsageError, match=r"the engine has 2 optimization profile\(s\), not profile 2"):
        make_workload(replace(handle, profile=2), shapes={"images": (16, 3, 16, 16)}).setup()


def test_shape_tensor_values_live_in_host_memory(fake_backend, fake_trt) -> None:
    handle = engine_from_plan(fake_backend, fake_trt.make_plan(SHAPE_TENSOR, LAYERS), WHERE, "fake.plan")
    w = make_workload(handle, shapes={"data": (2, 16), "shape": (4, 8)})
    w.setup()
    try:
        w.run(10)
        assert w.output("output").shape == (4, 8)  # TensorRT read the values we put on the host
        assert w.inferences_per_iteration == 2
    finally:
        w.teardown()


def test_data_dependent_outputs_are_never_captured(fake_backend, fake_trt) -> None:
    io = [IO[0], {"name": "boxes", "mode": "output", "dtype": "FLOAT", "shape": [-1, 4], "data_dependent": True}]
    w = make_workload(_handle(fake_backend, fake_trt, io=io), shapes={"images": (3, 3, 16, 16)})
    w.setup()
    try:
        w.run(10)
        ctx = _first_context(w)
        assert not [e for e in ctx.enqueues if e["capturing"]]
        assert any("CUDA graph capture refused: output(s) boxes have data-dependent shapes" in n for n in w.notes())
    finally:
        w.teardown()


def test_rtx_capture_follows_user_allocation_and_eager_specialization(fake_rtx_backend, fake_rtx) -> None:
    """NVIDIA: an RTX engine is stream-capturable when built with
    REQUIRE_USER_ALLOCATION; with dynamic shapes, kernels are specialized
    eagerly so no fallback kernel is warmed up, timed or captured."""
    handle = engine_from_plan(fake_rtx_backend, fake_rtx.make_plan(IO, LAYERS), WHERE, "rtx.plan")
    w = make_workload(handle, shapes={"images": (2, 3, 16, 16)})
    w.setup()
    try:
        w.run(20)
        ctx = _first_context(w)
        assert any(e["capturing"] for e in ctx.enqueues)  # captured into a graph
        assert {e["kernels"] for e in ctx.enqueues} == {"specialized"}  # never a fallback kernel
        assert not [n for n in w.notes() if "capture" in n]
        assert w.identity()["rtx_kernel_specialization"] == "eager"
    finally:
        w.teardown()
    plain = engine_from_plan(fake_rtx_backend, fake_rtx.make_plan(IO, LAYERS, user_allocation=False), WHERE, "rtx.plan")
    w = make_workload(plain, shapes={"images": (2, 3, 16, 16)})
    w.setup()
    try:
        w.run(10)
        assert not [e for e in _first_context(w).enqueues if e["capturing"]]
        assert any("CUDA graph capture refused: TensorRT-RTX 1.7.1.116 says the execution context is not "
                   "stream-capturable" in n for n in w.notes())
    finally:
        w.teardown()


def test_rtx_kernel_specialization_is_recorded_only_where_it_is_set(fake_rtx_backend, fake_rtx, fake_backend,
                                                                    fake_trt) -> None:
    """Static shapes need no specialization strategy (none is set, none is
    recorded); TensorRT 10 has none."""
    static = [{"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [2, 3, 16, 16]},
              {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [2, 10]}]
    for handle in (engine_from_plan(fake_rtx_backend, fake_rtx.make_plan(static, LAYERS), WHERE, "rtx.plan"),
                   _handle(fake_backend, fake_trt)):
        w = make_workload(handle, shapes={"images": (2, 3, 16, 16)})
        w.setup()
        try:
            w.run(5)
            ident = w.identity()
        finally:
            w.teardown()
        assert "rtx_kernel_specialization" not in ident and ident["nvtx_verbosity"] == "layer_names_only"


def test_weight_streaming_budget_is_set_on_the_engine(fake_backend, fake_trt) -> None:
    mib = 1 << 20
    plan = fake_trt.make_plan(IO, LAYERS, streamable_weights=100 * mib)
    handle = replace(engine_from_plan(fake_backend, plan, WHERE, "ws.plan"), weight_streaming_budget="25%")
    w = make_workload(handle, shapes={"images": (1, 3, 16, 16)})
    w.setup()
    try:
        assert w.live.engine.weight_streaming_budget_v2 == 25 * mib
        assert any("weight streaming: 25.0 MiB of 100.0 MiB streamable weights resident (budget 25%)" in n
                   for n in w.notes())
    finally:
        w.teardown()
    no_streaming = replace(engine_from_plan(fake_backend, fake_trt.make_plan(IO, LAYERS), WHERE, "plain.plan"),
                           weight_streaming_budget="auto")
    with pytest.raises(UsageError, match="has no streamable weights; build it with weight_streaming=True"):
        deserialize(no_streaming)


def test_plugins_and_host_code(fake_backend, fake_trt) -> None:
    fake_trt.reset_plugin_registry()
    with_plugin = engine_from_plan(fake_backend, fake_trt.make_plan(IO, LAYERS, plugins=["FakeNMS_TRT"]), WHERE, "p.plan")
    assert deserialize(with_plugin).engine is not None  # plugins registered before deserializing
    fake_trt.reset_plugin_registry()
    runtime = fake_trt.Runtime(fake_backend.logger())
    assert runtime.deserialize_cuda_engine(with_plugin.plan) is None  # the double refuses without them
    vc = fake_trt.make_plan(IO, LAYERS, host_code=True)
    with pytest.raises(UsageError, match="contains host code: pass --trt-allow-engine-host-code"):
        deserialize(engine_from_plan(fake_backend, vc, WHERE, "vc.plan"))
    assert deserialize(engine_from_plan(fake_backend, vc, WHERE, "vc.plan", allow_host_code=True)).engine is not None
