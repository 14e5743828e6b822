"""trt_bench.serve's TensorRT slots on a real GPU, FakeTensorRT at the
execution boundary: one execution context per slot, each enqueued only on
its own stream and never from two threads at once (the fake refuses that,
as TensorRT's contexts are not thread-safe). Run on the GPU machine:

    python -m pytest tests/trt/test_serve_gpu.py -m gpu -p no:trtperf -q
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.load.driver import drive
from pytest_trtperf.load.slots import EngineSlots
from pytest_trtperf.trt.api import engine_from_plan
from pytest_trtperf.workloads.tensorrt import make_workload

pytestmark = pytest.mark.gpu

IO = [
    {"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [-1, 3, 16, 16],
     "profiles": [[[1, 3, 16, 16], [4, 3, 16, 16], [8, 3, 16, 16]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]
LAYERS = [("conv", 500.0), ("fc", 500.0)]  # 1 ms of GPU time per request at batch 1


def _slots(fake_backend, fake_trt, count: int) -> EngineSlots:
    handle = engine_from_plan(fake_backend, fake_trt.make_plan(IO, LAYERS), "test_serve_gpu.py", "fake.plan")
    w = make_workload(handle, shapes={"images": (1, 3, 16, 16)}, mode="throughput", streams=count, cuda_graph=False)
    return EngineSlots(w, count)


def test_each_slot_is_one_context_on_its_own_stream(fake_backend, fake_trt) -> None:
    slots = _slots(fake_backend, fake_trt, 3)
    slots.setup()
    try:
        contexts = [s.context for s in slots.workload._slots.values()]
        streams = list(slots.workload._slots)
        run = drive(slots.calls(), np.arange(300) * 0.0005, window_s=0.15, drain_s=5.0)  # 2000/s: all slots busy
    finally:
        slots.teardown()
    assert run.finished.all() and len(contexts) == 3 == len(set(map(id, contexts)))
    for ctx, stream in zip(contexts, streams, strict=True):
        assert ctx.streams_used == {stream}  # its own stream only
        assert len(ctx.enqueues) > 50  # every slot served requests
    # three 1 ms requests in flight at once: the queue drains ~3x faster than one slot could
    assert run.done_s.max() < 300 * 1e-3 / 1.5


def test_one_context_shared_by_two_threads_is_refused(fake_backend, fake_trt) -> None:
    """The double enforces the rule the slots are built to respect."""
    slots = _slots(fake_backend, fake_trt, 1)
    slots.setup()
    try:
        call = slots.calls()[0]
        from pytest_trtperf.load.driver import RequestFailed

        with pytest.raises(RequestFailed, match="execute_async_v3 failed"):
            drive([call, call], np.zeros(200), window_s=0.01, drain_s=5.0)
    finally:
        slots.teardown()
