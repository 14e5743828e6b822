"""Memory as a gated metric: the figures a result carries and how the host
figure is measured (the verdict against the baseline: gate/memory.py).

Device memory can matter as much as time (TensorRT's performance guide,
"Tracking Memory"). Each workload that can say what it needs reports a few
*figures*, in bytes, measured outside the timed window (:class:`MemoryWorkload`):

* host callables: the peak Python allocation of one call (``tracemalloc``),
* torch callables: the peak device allocation of one call above what was
  allocated before it (``torch.cuda.max_memory_allocated``),
* TensorRT engines: the peak of what a counting ``IGpuAllocator`` handed out
  from deserialization through context creation and inference, plus the
  engine's own figures (context memory, plan size, weights) and the builder's.

Only :data:`GATED` figures fail a test; the others are recorded for reading.
The allocators behind the gated figures are deterministic for unchanged code
(the same calls allocate the same bytes), so there is no significance test:
a figure regresses when it grew by more than the tolerance *and* by more than
:data:`MIN_GROWTH_BYTES`. What is not deterministic (Python's lazy caches, a
first call that allocates once) is handled by taking the median over several
calls and by measuring a suspected regression once more (the second decides).

Core module: no pytest, no TensorRT, no torch.
"""

from __future__ import annotations

import statistics
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from pytest_trtperf.core.metrics import MEMORY, memory_names
from pytest_trtperf.core.results import FIGURES, MemoryChange, MemoryVerdict, figures_from_json
from pytest_trtperf.core.timers import REAL

#: The figures the gate judges (``metrics.MEMORY``); the others are recorded, never failed.
GATED = memory_names()
#: Short labels for the report tables' metric column.
SHORT = {m.name: m.short for m in MEMORY}
#: Default of ``--trt-memory-tolerance`` / ``memory_tolerance``.
DEFAULT_TOLERANCE = 0.10
#: Host measurement: calls under tracemalloc after the timed window.
HOST_MIN_CALLS = 3
HOST_MAX_CALLS = 5
HOST_BUDGET_S = 1.0


@runtime_checkable
class MemoryWorkload(Protocol):
    """A workload that can report memory figures. Called by the runner after
    the timed measurement, before teardown: whatever it runs to measure
    (tracked calls) stays out of the timed window."""

    def memory_figures(self) -> Mapping[str, int]:
        """Figures by name (:data:`FIGURES`), in bytes; leave out what is unknown."""
        ...


# -- figures in files ------------------------------------------------------------
def clean(figures: Mapping[str, Any]) -> dict[str, int]:
    """Known figures that are whole, non-negative numbers, as ints."""
    out = {}
    for name in FIGURES:
        v = figures.get(name)
        if v is None or isinstance(v, bool):
            continue
        try:
            n = int(v)
        except (TypeError, ValueError):
            continue
        if n >= 0 and n == v:
            out[name] = n
    return out


# -- measuring ---------------------------------------------------------------------
def host_peak_per_call(fn: Callable[[], Any], *, min_calls: int = HOST_MIN_CALLS, max_calls: int = HOST_MAX_CALLS,
                       budget_s: float = HOST_BUDGET_S) -> int:
    """Median over a few calls of the peak Python allocation during one call
    above what was allocated when it started (``tracemalloc``: Python objects
    and buffers of libraries that report to it, such as numpy; not memory a C
    library takes behind Python's back). At least ``min_calls`` calls, more
    while ``budget_s`` lasts, at most ``max_calls``. Tracing slows allocation,
    which is why this runs after the timed window, never inside it."""
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    peaks: list[int] = []
    t0 = REAL.perf_counter()
    try:
        while len(peaks) < max_calls and (len(peaks) < min_calls or REAL.perf_counter() - t0 < budget_s):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            fn()
            peaks.append(max(tracemalloc.get_traced_memory()[1] - before, 0))
    finally:
        if not started:
            tracemalloc.stop()
    return int(statistics.median(peaks))


def measure(workload: Any) -> dict[str, int]:
    """The workload's figures, or ``{}`` for one that reports none."""
    if not isinstance(workload, MemoryWorkload):
        return {}
    return clean(workload.memory_figures())


def measure_and_judge(workload: Any, judge_one: Callable[[Mapping[str, int]], MemoryVerdict | None], *,
                      remeasure: bool) -> tuple[dict[str, int], MemoryVerdict | None]:
    """Measure and judge; a suspected memory regression is measured once more
    and the second measurement decides (as for time)."""
    figures = measure(workload)
    verdict = judge_one(figures)
    if verdict is not None and verdict.failed and remeasure:
        figures = measure(workload)
        verdict = judge_one(figures)
        if verdict is not None:
            verdict = replace(verdict, remeasured=True)
    return figures, verdict


__all__ = ["DEFAULT_TOLERANCE", "FIGURES", "GATED", "MemoryChange", "MemoryVerdict",
           "MemoryWorkload", "clean", "figures_from_json", "host_peak_per_call", "measure", "measure_and_judge"]
