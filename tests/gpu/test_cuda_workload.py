"""CudaWorkload on a real GPU, against kernels of known duration.

Timed bounds come from timing_bounds.py: the kernel's true duration below,
plus this GPU's event-pair cost (the ``floor`` fixture, measured first) above.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_trtperf.gpu import cuda
from pytest_trtperf.workload import Batch, Workload
from pytest_trtperf.workloads.cuda import CHUNK, CudaWorkload, TransferSpec
from timing_bounds import within

pytestmark = pytest.mark.gpu

US = 1e-6


def _spin(kernels, ns: int):
    return lambda h: kernels.spin(h, ns)


def _measure(w: CudaWorkload, n: int) -> Batch:
    w.setup()
    try:
        w.run(10)  # warm
        return w.run(n)
    finally:
        w.teardown()


@pytest.mark.parametrize("graph", [True, False])
def test_latency_mode_matches_kernel_duration(kernels, floor, graph: bool) -> None:
    w = CudaWorkload(_spin(kernels, 100_000), cuda_graph=graph)
    assert isinstance(w, Workload)
    w.setup()
    try:
        assert w.graph_used is graph and w.notes() == ()
        b = w.run(300)
    finally:
        w.teardown()
    assert b.iterations == 300 and set(b.extra) == {"gpu_compute", "enqueue"}
    med = float(np.median(b.latency_s))
    assert within(med, floor.latency(100)), (med, floor)
    np.testing.assert_array_equal(b.latency_s, b.extra["gpu_compute"])
    assert b.wall_s >= 300 * 100 * US
    assert 0 < float(np.median(b.extra["enqueue"])) < 1e-3


def test_graphs_beat_stream_launches_for_many_tiny_kernels(kernels) -> None:
    def twenty(h: int) -> None:
        for _ in range(20):
            kernels.spin(h, 1000)

    g = np.median(_measure(CudaWorkload(twenty, cuda_graph=True), 300).latency_s)
    s = np.median(_measure(CudaWorkload(twenty, cuda_graph=False), 300).latency_s)
    assert s / g >= 1.5, (s, g)


def _syncing(kernels, how: str):
    rt = cuda.runtime()

    def enqueue(h: int) -> None:
        if how == "legacy_stream":
            kernels.spin(0, 100_000)
            return
        kernels.spin(h, 100_000)
        if how == "raises":
            cuda.stream_synchronize(h)  # raises CudaError while capturing
        else:
            rt.cudaStreamSynchronize(h)  # breaks capture, error ignored
    return enqueue


def _hand_loop_us(enqueue, n: int = 50) -> float:
    """record, enqueue, record, event sync on a fresh stream: the hand-timed
    reference for an enqueue that syncs (its pairs hold host latency)."""
    rt = cuda.runtime()
    s = cuda.Stream()
    a, b = cuda.Event(), cuda.Event()
    out = []
    for i in range(n + 5):
        rt.cudaEventRecord(a.obj, s.handle)
        enqueue(s.handle)
        rt.cudaEventRecord(b.obj, s.handle)
        b.synchronize()
        if i >= 5:
            out.append(cuda.elapsed_ms(a, b) * 1e3)
    s.close()
    return float(np.median(out))


@pytest.mark.parametrize("how", ["raises", "ignores_error", "legacy_stream"])
def test_capture_failure_falls_back_to_plain_enqueue(kernels, how: str) -> None:
    w = CudaWorkload(_syncing(kernels, how))
    w.setup()
    try:
        assert not w.graph_used
        assert len(w.notes()) == 1 and "capture" in w.notes()[0] and "\n" not in w.notes()[0]
        assert cuda.capture_status(w._streams[0]) == "none"
        b = w.run(50)
    finally:
        w.teardown()
    assert cuda.peek_last_error() is None
    if how != "legacy_stream":  # work on another stream is not ours to time
        # The enqueue syncs, so each event pair also holds host latency: the
        # reference is the same enqueue timed by hand on this machine.
        ref = _hand_loop_us(_syncing(kernels, "ignores_error"))
        med_us = float(np.median(b.latency_s)) / US
        assert 100 <= med_us <= ref + max(5.0, 0.05 * ref), (med_us, ref)


def test_blocking_sync_is_recorded_and_accurate(kernels, floor) -> None:
    w = CudaWorkload(_spin(kernels, 100_000), blocking_sync=True)
    assert w.identity()["sync"] == "blocking"
    assert CudaWorkload(_spin(kernels, 1)).identity()["sync"] == "spin"
    med = np.median(_measure(w, 200).latency_s)
    assert within(med, floor.latency(100)), (med, floor)


@pytest.mark.parametrize("graph", [True, False])
def test_transfers_are_timed_and_really_copy(kernels, graph: bool) -> None:
    n = 4 << 20  # 16 MiB of float32
    dev = cuda.DeviceBuffer(4 * n)
    spec = TransferSpec.pinned(inputs=[(dev.ptr, 4 * n)], outputs=[(dev.ptr, 4 * n)])
    spec.buffers[0].array(np.float32)[:] = np.random.default_rng(2).standard_normal(n)
    x = spec.buffers[0].array(np.float32).copy()
    w = CudaWorkload(lambda h: kernels.add_one(h, dev.ptr, n), transfers=spec, cuda_graph=graph)
    w.setup()
    try:
        assert w.graph_used is graph
        b = w.run(20)
        stats = {k: float(np.median(v)) for k, v in b.extra.items()}
    finally:
        w.teardown()
    out = spec.buffers[1].array(np.float32)
    np.testing.assert_array_equal(out, x + np.float32(1))  # each iteration reloads the input
    spec.close()
    dev.close()
    assert set(stats) == {"gpu_compute", "enqueue", "h2d", "d2h"}
    # 16 MiB cannot cross PCIe/C2C faster than 200 GB/s
    assert stats["h2d"] > 4 * n / 200e9 and stats["d2h"] > 4 * n / 200e9
    parts = b.extra["h2d"] + b.extra["gpu_compute"] + b.extra["d2h"]
    np.testing.assert_allclose(b.latency_s, parts, rtol=0.02, atol=5e-6)


def test_throughput_mode_keeps_the_gpu_busy(kernels, floor) -> None:
    w = CudaWorkload(_spin(kernels, 20_000), mode="throughput")
    b = _measure(w, 3000)
    per_inf = b.wall_s / b.iterations
    # kernel + at most one event pair's GPU cost between completions (23.1 us
    # on an H100, pair 3.97 us); syncing each iteration reads ~31 us there
    assert within(per_inf, floor.interval(20)), (per_inf, floor)
    assert within(float(np.median(b.latency_s)), floor.interval(20))
    assert within(float(np.median(b.extra["gpu_compute"])), floor.interval(20))


def test_throughput_mode_overlaps_streams(kernels) -> None:
    one = _measure(CudaWorkload(_spin(kernels, 200_000), mode="throughput"), 200)
    two = _measure(CudaWorkload(_spin(kernels, 200_000), mode="throughput", streams=2), 200)
    # two one-thread kernels run side by side: half the interval per inference
    assert two.wall_s / 200 < 0.7 * one.wall_s / 200
    assert np.median(two.latency_s) < 0.7 * np.median(one.latency_s)


def test_inferences_per_iteration_scales_throughput_interval(kernels, floor) -> None:
    b = _measure(CudaWorkload(_spin(kernels, 40_000), mode="throughput",
                              inferences_per_iteration=4), 500)
    med = float(np.median(b.latency_s))
    assert within(med, floor.interval(40, per_iteration=4)), (med, floor)


def test_runs_longer_than_a_chunk(kernels, floor) -> None:
    b = _measure(CudaWorkload(_spin(kernels, 20_000)), CHUNK + 7)
    assert b.iterations == CHUNK + 7
    assert b.latency_s.min() >= 20 * US and within(float(np.median(b.latency_s)), floor.latency(20))


def test_external_stream_is_used_and_not_destroyed(kernels) -> None:
    s = cuda.Stream()
    w = CudaWorkload(_spin(kernels, 10_000), stream=s.handle)
    _measure(w, 20)
    s.synchronize()  # still valid after teardown
    s.close()
