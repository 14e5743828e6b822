"""Memory as a gated metric: the figures a result carries, how the host
figure is measured, and the memory verdict against the baseline.

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
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_trtperf.report.format import fmt_bytes, fmt_change
from pytest_trtperf.results import FIGURES, MemoryChange, MemoryVerdict, Verdict, figures_from_json
from pytest_trtperf.timers import REAL

if TYPE_CHECKING:
    from pytest_trtperf.baseline import BaselineEntry

#: The figures the gate judges; the others are recorded, never failed.
GATED = ("host_peak_bytes", "device_peak_bytes")
#: Short labels for the report tables' metric column.
SHORT = {"host_peak_bytes": "host memory", "device_peak_bytes": "device memory"}
#: A gated figure must also grow by more than this to regress: below it,
#: growth is allocator granularity and interpreter noise, not a program change.
MIN_GROWTH_BYTES = 64 * 1024
#: Default of ``--trt-memory-tolerance`` / ``memory_tolerance``.
DEFAULT_TOLERANCE = 0.10
#: Host measurement: calls under tracemalloc after the timed window.
HOST_MIN_CALLS = 3
HOST_MAX_CALLS = 5
HOST_BUDGET_S = 1.0

_ORDER = {"regression": 0, "improved": 1, "missing": 2, "pass": 3}


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


# -- the verdict ---------------------------------------------------------------------
def compare(figure: str, baseline: int | None, current: int, tolerance: float) -> MemoryChange:
    """Regression: grew by more than ``tolerance`` and by more than
    :data:`MIN_GROWTH_BYTES`; improved: shrank by as much; else pass."""
    if baseline is None:
        return MemoryChange(figure, current)
    change = current / baseline - 1.0 if baseline > 0 else None
    allowed = max(tolerance * baseline, MIN_GROWTH_BYTES)
    if current - baseline > allowed:
        status = "regression"
    elif baseline - current > allowed:
        status = "improved"
    else:
        status = "pass"
    return MemoryChange(figure, current, baseline, change, status)


def judge_memory(figures: Mapping[str, int], entry: BaselineEntry | None, time_verdict: Verdict | None, *,
                 baseline_mode: str, tolerance: float | None, baseline_path: str) -> MemoryVerdict | None:
    """The memory verdict of one result, or None when it has no gated figure.

    A baseline the time verdict found incomparable (another GPU class,
    configuration, mode) is not compared for memory either. A baseline written
    before memory was recorded is ``missing`` for memory and never fails."""
    gated = [f for f in GATED if f in figures]
    if not gated:
        return None
    plain = tuple(MemoryChange(f, int(figures[f])) for f in gated)
    if baseline_mode == "off":
        return MemoryVerdict("off", tolerance, plain)
    if tolerance is None:
        return MemoryVerdict("off", None, plain, "memory recorded, not gated (memory_tolerance off)")
    if baseline_mode == "update":
        return MemoryVerdict("updated", tolerance, plain)
    if entry is None:
        return MemoryVerdict("missing", tolerance, plain)
    if time_verdict is not None and time_verdict.status == "incomparable":
        return MemoryVerdict("incomparable", tolerance, plain, "memory not compared: the baseline is not comparable "
                                                               "(see the time verdict)")
    base = getattr(entry, "memory", None) or {}
    changes = tuple(compare(f, base.get(f), int(figures[f]), tolerance) for f in gated)
    status = min((c.status for c in changes), key=lambda s: _ORDER[s])
    return MemoryVerdict(status, tolerance, changes, _message(changes, status, tolerance, baseline_path))


def _message(changes: tuple[MemoryChange, ...], status: str, tolerance: float, path: str) -> str:
    """The cause first, like the time verdict's message; reports put the result id before it."""
    floor = fmt_bytes(MIN_GROWTH_BYTES)
    if status == "missing":
        return f"the baseline in {path} has no memory figures; record them with pytest --trt-baseline=update"
    parts = []
    for c in changes:
        if c.baseline is None:
            parts.append(f"{c.label} {fmt_bytes(c.current)} (no baseline figure)")
            continue
        values = f"{fmt_bytes(c.baseline)} -> {fmt_bytes(c.current)}"
        change = fmt_change(c.change) if c.change is not None else "from 0"
        if c.status == "regression":
            parts.append(f"{c.label} grew {change} ({values}, tolerance {tolerance:.1%} and {floor})")
        elif c.status == "improved":
            parts.append(f"{c.label} shrank {change} ({values})")
        else:
            parts.append(f"{c.label} {change} ({values}) within tolerance {tolerance:.1%} or {floor}")
    return "; ".join(parts)


def overall_status(time_status: str | None, memory: MemoryVerdict | None) -> str:
    """The status a report sorts and colours a result by: a memory regression
    counts as a regression even when the time passed."""
    if memory is not None and memory.status == "regression":
        return "regression"
    return time_status or "off"


__all__ = ["DEFAULT_TOLERANCE", "FIGURES", "GATED", "MIN_GROWTH_BYTES", "MemoryChange", "MemoryVerdict",
           "MemoryWorkload", "clean", "compare", "figures_from_json", "host_peak_per_call", "judge_memory",
           "measure", "measure_and_judge", "overall_status"]
