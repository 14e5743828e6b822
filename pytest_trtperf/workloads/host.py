"""Host workloads: plain Python callables timed with the host clock.

This is the workload that runs everywhere, so the whole measure → baseline →
gate loop can be exercised on a machine without a GPU; it also times CPU-side
pre/post-processing next to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import Batch, Clock


class HostWorkload:
    """Times ``fn()`` per iteration with ``time.perf_counter_ns`` (as bound at import: ``timers``)."""

    kind = "host"
    clock: Clock = "host"

    def __init__(self, fn: Callable[[], Any], *, inferences_per_iteration: int = 1,
                 identity: Mapping[str, Any] | None = None, sync: Callable[[], Any] | None = None,
                 sync_name: str = "") -> None:
        if not callable(fn):
            raise TypeError(f"trt_bench.measure() needs a callable, got {type(fn).__name__}")
        # With ``sync`` (e.g. torch.cuda.synchronize) each call is timed until
        # the GPU work it enqueued has finished: end-to-end, never too short.
        self._fn = fn if sync is None else (lambda: (fn(), sync())[0])
        #: What ``fn`` returned on its last timed call (``Result.return_value``).
        self.last_value: Any = None
        self._sync_name = sync_name if sync is not None else ""
        self.inferences_per_iteration = int(inferences_per_iteration)
        self._identity = dict(identity or {})

    def setup(self) -> None:
        """Nothing to prepare: warm-up takes care of first-call costs."""

    def run(self, iterations: int) -> Batch:
        fn = self._fn
        clock = REAL.perf_counter_ns
        times = np.empty(iterations, dtype=np.int64)
        value = None
        t_start = clock()
        for i in range(iterations):
            t0 = clock()
            # Keeping the value costs what discarding it did: the previous
            # value is released at the assignment, inside the timed call.
            value = fn()
            times[i] = clock() - t0
        wall_ns = clock() - t_start
        self.last_value = value
        return Batch(latency_s=times * 1e-9, wall_s=wall_ns * 1e-9)

    def teardown(self) -> None:
        """Nothing to release."""

    def memory_figures(self) -> Mapping[str, int]:
        """``host_peak_bytes``: the peak Python allocation of one call (median
        of a few calls under ``tracemalloc``), measured after the timed window."""
        from pytest_trtperf.core.memory import host_peak_per_call

        return {"host_peak_bytes": host_peak_per_call(self._fn)}

    def identity(self) -> Mapping[str, Any]:
        ident = {"timer": "perf_counter", "inferences_per_iteration": self.inferences_per_iteration,
                 **self._identity}
        if self._sync_name:
            ident["sync"] = self._sync_name
        return ident

    def notes(self) -> tuple[str, ...]:
        if self._sync_name:
            return (f"timed with the host clock and {self._sync_name}() after each call, because torch has "
                    f"initialised CUDA; pass timer='torch' for CUDA-event timing of the GPU work alone",)
        return ()
