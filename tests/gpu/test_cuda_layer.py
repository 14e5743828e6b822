"""pytest_trtperf.gpu.cuda on a real GPU: device info, events, graphs, memory, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_trtperf.gpu import cuda
from timing_bounds import within

pytestmark = pytest.mark.gpu


def test_device_info_is_real() -> None:
    info = cuda.device_info()
    assert info.name and info.name == cuda.device_name(info.index)
    assert re.fullmatch(r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-9a-fA-F]", info.pci_bus_id)
    assert info.compute_capability >= (7, 0)
    assert info.driver_cuda_version >= (12, 0)
    assert info.runtime_version >= (12, 0)
    assert cuda.device_count() >= 1


def test_events_time_a_known_kernel(kernels, floor, stream) -> None:
    start, end = cuda.Event(), cuda.Event()
    kernels.spin(stream.handle, 2_000_000)  # keep the GPU busy: no host latency in the pair
    start.record(stream)
    kernels.spin(stream.handle, 200_000)
    end.record(stream)
    end.synchronize()
    ms = cuda.elapsed_ms(start, end)
    assert within(ms / 1e3, floor.latency(200)), (ms, floor)


def test_time_calls_puts_an_event_pair_around_each_call(kernels, floor, stream) -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        kernels.spin(stream.handle, 100_000)

    ms = cuda.time_calls(stream, call, 20)
    assert len(ms) == 20 and len(calls) == 21  # one untimed call first: no idle-GPU latency in pair 1
    assert min(ms) >= 0.1 - 0.0005, ms  # every pair holds its whole kernel (event resolution 0.5 us)
    assert within(float(np.median(ms)) / 1e3, floor.latency(100)), (ms, floor)


def test_blocking_sync_event_waits_for_work(kernels, stream) -> None:
    ev = cuda.Event(blocking_sync=True)
    kernels.spin(stream.handle, 20_000_000)  # 20 ms
    ev.record(stream)
    assert ev.query() is False
    ev.synchronize()
    assert ev.query() is True
    assert stream.query() is True


def test_spin_wait_waits_for_work(kernels, stream) -> None:
    a, b = cuda.Event(), cuda.Event()
    a.record(stream)
    kernels.spin(stream.handle, 5_000_000)
    b.record(stream)
    b.spin_wait()
    assert b.query() and cuda.elapsed_ms(a, b) >= 4.99


def test_failed_call_is_one_line_cuda_error() -> None:
    a, b = cuda.Event(), cuda.Event()  # never recorded
    with pytest.raises(cuda.CudaError) as info:
        cuda.elapsed_ms(a, b)
    msg = str(info.value)
    assert "\n" not in msg
    assert "cudaEventElapsedTime" in msg and info.value.name.startswith("cudaError")
    assert info.value.description and info.value.description in msg


def test_pinned_roundtrip_through_a_kernel(kernels, stream) -> None:
    n = 1 << 20
    src = cuda.PinnedBuffer(4 * n)
    dst = cuda.PinnedBuffer(4 * n)
    dev = cuda.DeviceBuffer(4 * n)
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    src.array(np.float32)[:] = x
    dst.array(np.float32)[:] = np.nan
    cuda.memcpy_h2d_async(dev.ptr, src.ptr, 4 * n, stream)
    kernels.add_one(stream.handle, dev.ptr, n)
    cuda.memcpy_d2h_async(dst.ptr, dev.ptr, 4 * n, stream)
    stream.synchronize()
    np.testing.assert_array_equal(dst.array(np.float32), x + np.float32(1))
    for b in (src, dst, dev):
        b.close()


def test_memset_and_d2d_copy(stream) -> None:
    a, b = cuda.DeviceBuffer(4096), cuda.DeviceBuffer(4096)
    out = cuda.PinnedBuffer(4096)
    cuda.memset_async(a.ptr, 7, 4096, stream)
    cuda.memcpy_d2d_async(b.ptr, a.ptr, 4096, stream)
    cuda.memcpy_d2h_async(out.ptr, b.ptr, 4096, stream)
    cuda.stream_synchronize(stream)
    assert (out.array() == 7).all()


def test_graph_capture_and_replay(kernels, floor, stream) -> None:
    graph = cuda.capture(stream, lambda h: [kernels.spin(h, 50_000) for _ in range(3)])
    assert graph.node_count() == 3
    assert cuda.capture_status(stream) == "none"
    ge = graph.instantiate()
    graph.close()
    a, b = cuda.Event(), cuda.Event()
    ge.launch(stream)  # first launch uploads
    a.record(stream)
    ge.launch(stream)
    b.record(stream)
    b.synchronize()
    assert within(cuda.elapsed_ms(a, b) / 1e3, floor.graph(150, kernels=3)), floor
    ge.close()


def test_capture_that_syncs_fails_cleanly(kernels, stream) -> None:
    rt = cuda.runtime()

    def bad(h: int) -> None:
        kernels.spin(h, 1000)
        rt.cudaStreamSynchronize(h)  # illegal while capturing; error ignored

    with pytest.raises(cuda.CaptureFailed):
        cuda.capture(stream, bad)
    assert cuda.capture_status(stream) == "none"
    assert cuda.peek_last_error() is None
    kernels.spin(stream.handle, 1000)  # stream still takes ordinary work
    stream.synchronize()


@pytest.mark.parametrize("mode, ok", [("global", False), ("thread_local", False), ("relaxed", True)])
def test_capture_modes_reach_the_driver(kernels, stream, mode: str, ok: bool) -> None:
    rt = cuda.runtime()
    ptrs = []

    def allocating(h: int) -> None:
        kernels.spin(h, 1000)
        err, p = rt.cudaMalloc(1024)  # an "unsafe" call: only relaxed mode allows it
        if not err:
            ptrs.append(p)
        cuda.check("cudaMalloc", (err,))

    if ok:
        cuda.capture(stream, allocating, mode=mode).close()
    else:
        with pytest.raises(cuda.CaptureFailed):
            cuda.capture(stream, allocating, mode=mode)
    for p in ptrs:
        cuda.free(cuda.as_handle(p))
    assert cuda.capture_status(stream) == "none"


def test_capture_of_work_on_another_stream_is_refused(kernels, stream) -> None:
    with pytest.raises(cuda.CaptureFailed, match="no work"):
        cuda.capture(stream, lambda h: None)
    cuda.device_synchronize()
