"""TorchWorkload on a real GPU: graph replay, fallback, streams."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.gpu import cuda
from pytest_trtperf.workloads.torch import TorchWorkload

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch", reason="torch is not installed")


@pytest.fixture(autouse=True)
def _need_torch_cuda():
    if not torch.cuda.is_available():
        pytest.skip("GPU tests skipped: torch sees no CUDA GPU")


def test_graph_replays_really_run() -> None:
    x = torch.zeros(1024, device="cuda")
    w = TorchWorkload(lambda: x.add_(1), warmup_calls=3)
    w.setup()
    try:
        assert w.graph_used and w.notes() == ()
        b = w.run(100)
    finally:
        w.teardown()
    torch.cuda.synchronize()
    # 3 warm-up calls + 1 check replay after capture + 1 warm launch + 100 timed
    assert float(x[0]) == 105.0
    assert b.iterations == 100 and set(b.extra) == {"gpu_compute", "enqueue"}


def test_graph_and_eager_time_the_same_matmul() -> None:
    a = torch.randn(2048, 2048, device="cuda", dtype=torch.float16)
    meds: dict[bool, float] = {}
    # Interleaved and repeated, best of each: the card's clock moves under the
    # power cap within a second, which is what a single short pair measured.
    for _ in range(3):
        for graph in (True, False):
            w = TorchWorkload(lambda: a @ a, cuda_graph=graph)
            w.setup()
            try:
                w.run(50)
                med = float(np.median(w.run(1000).latency_s))
            finally:
                w.teardown()
            meds[graph] = min(med, meds.get(graph, float("inf")))
    # 17 GFLOP: tens of microseconds on any recent GPU. Both time the same
    # kernel: an empty capture would read a few microseconds.
    assert 5e-6 < meds[True] < 5e-3
    assert abs(meds[True] / meds[False] - 1) < 0.25, meds


def test_capture_failure_falls_back_and_torch_still_works() -> None:
    x = torch.ones(256, device="cuda")

    def syncing() -> None:
        y = x * 2
        float(y.sum().item())  # host sync: not capturable

    w = TorchWorkload(syncing)
    w.setup()
    try:
        assert not w.graph_used
        assert len(w.notes()) == 1 and "capture" in w.notes()[0]
        b = w.run(20)
    finally:
        w.teardown()
    assert b.iterations == 20 and np.all(b.latency_s > 0)
    z = torch.arange(10, device="cuda", dtype=torch.float32) * 3
    torch.cuda.synchronize()
    assert float(z.sum()) == 135.0
    assert cuda.peek_last_error() is None


def test_throughput_over_two_torch_streams() -> None:
    a = torch.randn(512, 512, device="cuda")
    w = TorchWorkload(lambda: a @ a, mode="throughput", streams=2)
    w.setup()
    try:
        assert w.graph_used
        b = w.run(200)
    finally:
        w.teardown()
    assert b.iterations == 200 and b.wall_s > 0 and np.all(np.isfinite(b.latency_s))
    assert w.identity()["streams"] == 2 and w.identity()["kind"] == "torch"


def test_blocking_sync_option() -> None:
    a = torch.randn(256, 256, device="cuda")
    w = TorchWorkload(lambda: a @ a, blocking_sync=True)
    assert w.identity()["sync"] == "blocking"
    w.setup()
    try:
        assert w.run(50).iterations == 50
    finally:
        w.teardown()
