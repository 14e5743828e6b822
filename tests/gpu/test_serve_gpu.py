"""trt_bench.serve's GPU slots on a real GPU: one stream per slot for torch
and stream callables, and the driver against queueing theory with a kernel
of known duration (a fixed-duration spin kernel makes one slot M/D/1).
Run on the GPU machine: python -m pytest tests/gpu/test_serve_gpu.py -m gpu -q
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pytest_trtperf.load.arrivals import schedule
from pytest_trtperf.load.driver import drive
from pytest_trtperf.load.slots import StreamSlots, TorchSlots

pytestmark = pytest.mark.gpu


def test_torch_slots_run_each_request_on_its_slots_own_stream() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(256, 256, device="cuda")
    seen: dict[int, set[int]] = {}
    lock = threading.Lock()

    def fn() -> None:
        s = torch.cuda.current_stream()
        with lock:
            seen.setdefault(threading.get_ident(), set()).add(int(s.cuda_stream))
        (x @ x).sum()

    slots = TorchSlots(fn, 3)
    slots.setup()  # one untimed call per slot, from this thread, on that slot's stream
    assert seen.pop(threading.get_ident()) == {int(s.cuda_stream) for s in slots._streams}
    try:
        run = drive(slots.calls(), schedule("poisson", 300.0, 1.0, 1), window_s=1.0, drain_s=5.0)
    finally:
        slots.teardown()
    assert run.finished.all()
    streams = [next(iter(v)) for v in seen.values() if len(v) == 1]
    assert len(streams) == len(seen) == 3  # one stream per slot thread, never switched
    assert len(set(streams)) == 3 and int(torch.cuda.default_stream().cuda_stream) not in streams


def test_one_slot_of_a_fixed_duration_kernel_is_md1(kernels) -> None:
    """Spin kernel of D = 1 ms on one stream, Poisson arrivals at 500/s (rho
    0.5): M/D/1 mean response D + rho D / (2 (1 - rho)) = 1.5 ms; measured
    within the regenerative-cycle interval, the GPU's launch and sync
    overheads (measured: service time beyond D) on the high side."""
    import queueing as q

    d = 1e-3
    slots = StreamSlots(lambda stream: kernels.spin(stream, int(d * 1e9)), 1)
    slots.setup()
    try:
        run = drive(slots.calls(), schedule("poisson", 500.0, 4.0, 9), window_s=4.0, drain_s=5.0)
    finally:
        slots.teardown()
    m = run.scheduled_s >= 0.5
    done_before = np.concatenate([[-np.inf], np.maximum.accumulate(run.done_s)[:-1]])
    obs = q.Observed(run.latency_s[m], *q.moments(run.service_s), float(np.nanmean(run.lag_s[m])),
                     (run.scheduled_s >= done_before)[m], run.lag_s[m])
    check = q.check_mean(obs, lambda es, es2: q.mg1_mean(500.0, es, es2), (d, d * d))
    assert check.ok, str(check)
