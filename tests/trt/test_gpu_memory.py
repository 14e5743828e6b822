"""Engine memory on a real GPU with FakeTensorRT at the execution boundary:
the runtime's tracking IGpuAllocator does real cudaMalloc/cudaFree for what
the double asks (weights at deserialization, context memory per execution
context), and the memory gate fails an engine whose context memory doubled.
Run on the GPU machine:

    python -m pytest tests/trt/test_gpu_memory.py -m gpu -p no:trtperf -q
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, Settings
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.trt.api import engine_from_plan
from pytest_trtperf.workloads.tensorrt import make_workload
from pytest_trtperf.trt.backend import from_module

pytestmark = pytest.mark.gpu

WHERE = "test_gpu_memory.py"
IO = [
    {"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [-1, 3, 16, 16],
     "profiles": [[[1, 3, 16, 16], [4, 3, 16, 16], [8, 3, 16, 16]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]
LAYERS = [("conv", 100.0), ("fc", 50.0)]
SHAPES = {"images": (4, 3, 16, 16)}


@pytest.mark.parametrize("flavour", ["fake_trt", "fake_rtx"])
def test_runtime_allocator_counts_weights_and_every_context(flavour: str, request: pytest.FixtureRequest) -> None:
    mod = request.getfixturevalue(flavour)
    backend = from_module(mod, "tensorrt_rtx" if flavour == "fake_rtx" else "tensorrt")
    plan = mod.make_plan(IO, LAYERS, device_memory=3 << 20, weights=256 << 10)
    w = make_workload(engine_from_plan(backend, plan, WHERE, "fake.plan"), shapes=SHAPES, mode="throughput",
                      streams=2)
    w.setup()
    try:
        w.run(100)
        figures = dict(w.memory_figures())
        notes = w.notes()
        tracker = w.live.allocator
    finally:
        w.teardown()
    assert tracker is not None
    assert figures["device_peak_bytes"] == (256 << 10) + 2 * (3 << 20)  # weights + one context per stream
    assert figures["device_total_bytes"] == figures["device_peak_bytes"]
    assert figures["context_memory_bytes"] == 3 << 20 and figures["plan_bytes"] == len(plan)
    assert figures.get("weights_bytes") == ((256 << 10) if flavour == "fake_rtx" else None)  # RTX reports them
    assert not [n for n in notes if "during timed enqueues" in n], notes  # no allocation inside the timed loop
    gc.collect()
    s = tracker.stats()
    assert (s.live_bytes, s.frees, s.failures) == (0, 3, 0), s  # teardown gave everything back


def test_an_allocator_without_memory_fails_deserialization(fake_trt) -> None:
    """The double refuses as the library does: a null pointer from the
    application's allocator is an out-of-memory error, not an engine."""
    class Empty(fake_trt.IGpuAllocator):
        def __init__(self) -> None:
            fake_trt.IGpuAllocator.__init__(self)

        def allocate(self, size: int, alignment: int, flags: int) -> int:
            return 0

        def deallocate(self, memory: int) -> bool:
            return True

    log = from_module(fake_trt, "tensorrt").logger()
    runtime = fake_trt.Runtime(log)
    runtime.gpu_allocator = Empty()
    mark = log.mark()
    assert runtime.deserialize_cuda_engine(fake_trt.make_plan(IO, LAYERS)) is None
    assert "OutOfMemory" in log.errors(since=mark)[-1]


def test_twice_the_context_memory_fails_the_memory_gate(tmp_path: Path, fake_backend, fake_trt) -> None:
    store = BaselineStore(tmp_path)
    target = Target(id=f"{WHERE}::test_engine", nodeid=f"{WHERE}::test_engine", name=None)
    # Time is not under test: a wide time tolerance, short windows.
    opts = MeasureOptions(tolerance=10.0, warmup_s=0.05, min_time_s=0.2, max_time_s=0.5)

    def run(mode: str, device_memory: int):
        settings = Settings(baseline_mode=mode, baseline_dir=tmp_path, rootdir=tmp_path, require_gpu=True,
                            json_path=None, report_path=None)
        plan = fake_trt.make_plan(IO, LAYERS, device_memory=device_memory)
        w = make_workload(engine_from_plan(fake_backend, plan, WHERE, "fake.plan"), shapes=SHAPES)
        r = Runner(settings, store).run(w, target, opts)
        if mode == "update":
            store.write([r], timestamp="T", git_commit=None)
        return r

    base = run("update", 4 << 20)
    assert base.memory["device_peak_bytes"] == (4 << 20) + (64 << 10)  # context + the plan's default weights
    assert run("compare", 4 << 20).memory_verdict.status == "pass"
    grown = run("compare", 8 << 20)
    v = grown.memory_verdict
    assert v.status == "regression" and v.remeasured, v
    assert "device memory peak grew" in v.message and "4.1 MiB -> 8.1 MiB" in v.message
