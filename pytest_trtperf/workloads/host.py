"""Host workloads: plain Python callables timed with the host clock.

This is the workload that runs everywhere, so the whole measure → baseline →
gate loop can be exercised on a machine without a GPU; it also times CPU-side
pre/post-processing next to the engine.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np

from ..workload import Batch


class HostWorkload:
    """Times ``fn()`` per iteration with ``time.perf_counter_ns``."""

    kind = "host"

    def __init__(self, fn: Callable[[], Any], *, inferences_per_iteration: int = 1,
                 identity: Mapping[str, Any] | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"trt_bench.measure() needs a callable, got {type(fn).__name__}")
        self._fn = fn
        self.inferences_per_iteration = int(inferences_per_iteration)
        self._identity = dict(identity or {})

    def setup(self) -> None:
        """Nothing to prepare: warm-up takes care of first-call costs."""

    def run(self, iterations: int) -> Batch:
        fn = self._fn
        clock = time.perf_counter_ns
        times = np.empty(iterations, dtype=np.int64)
        t_start = clock()
        for i in range(iterations):
            t0 = clock()
            fn()
            times[i] = clock() - t0
        wall_ns = clock() - t_start
        return Batch(latency_s=times * 1e-9, wall_s=wall_ns * 1e-9)

    def teardown(self) -> None:
        """Nothing to release."""

    def identity(self) -> Mapping[str, Any]:
        return {"timer": "perf_counter", "inferences_per_iteration": self.inferences_per_iteration,
                **self._identity}

    def notes(self) -> tuple[str, ...]:
        return ()
