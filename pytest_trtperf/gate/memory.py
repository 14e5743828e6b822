"""The memory verdict: a result's gated memory figures against its baseline
entry (see :mod:`pytest_trtperf.core.memory` for what the figures are and how
they are measured). The allocators behind the gated figures are deterministic
for unchanged code, so there is no significance test: a figure regresses when
it grew by more than the tolerance *and* by more than :data:`MIN_GROWTH_BYTES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pytest_trtperf.core import metrics
from pytest_trtperf.core.formatting import fmt_bytes, fmt_change
from pytest_trtperf.core.results import MemoryChange, MemoryVerdict, Verdict

if TYPE_CHECKING:
    from pytest_trtperf.baselines.store import BaselineEntry

#: A gated figure must also grow by more than this to regress: below it,
#: growth is allocator granularity and interpreter noise, not a program change.
MIN_GROWTH_BYTES = 64 * 1024

_ORDER = {"regression": 0, "improved": 1, "missing": 2, "pass": 3}


# -- the verdict ---------------------------------------------------------------------
def compare(figure: str, baseline: int | None, current: int, tolerance: float) -> MemoryChange:
    """Regression: worse (for the figure's direction, ``metrics.MEMORY``)
    by more than ``tolerance`` and by more than :data:`MIN_GROWTH_BYTES`;
    improved: better by as much; else pass."""
    if baseline is None:
        return MemoryChange(figure, current)
    m = metrics.find(figure) or metrics.BytesMetric(figure, figure)
    divisor = baseline if m.lower_is_better else current
    change = m.change(current, baseline) if divisor > 0 else None
    allowed = max(tolerance * baseline, MIN_GROWTH_BYTES)
    worse = current - baseline if m.lower_is_better else baseline - current
    if worse > allowed:
        status = "regression"
    elif -worse > allowed:
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
    gated = [m.name for m in metrics.MEMORY if m.name in figures]
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
    changes = tuple(compare(m.name, m.read(entry), int(figures[m.name]), tolerance)
                    for m in metrics.MEMORY if m.name in figures)
    status = min((c.status for c in changes), key=lambda s: _ORDER[s])
    return MemoryVerdict(status, tolerance, changes, _message(changes, status, tolerance, baseline_path))


def judge_memory_pair(current: Mapping[str, int], reference: Mapping[str, int], *, tolerance: float | None,
                      where: str) -> MemoryVerdict | None:
    """Side by side (``--trt-ab``): this checkout's gated figures against the
    reference's, each measured in its own process after its timings, by the
    same rule as against a baseline entry (the reference's figure stands for
    the baseline's). None without a gated figure here; ``missing`` (never
    fails) when the reference reported none."""
    gated = [m.name for m in metrics.MEMORY if m.name in current]
    if not gated:
        return None
    plain = tuple(MemoryChange(f, int(current[f])) for f in gated)
    if tolerance is None:
        return MemoryVerdict("off", None, plain, "memory recorded, not gated (memory_tolerance off)")
    if not any(f in reference for f in gated):
        return MemoryVerdict("missing", tolerance, plain, f"memory not gated: the reference at {where} reported "
                                                          f"no memory figures for this measurement")
    changes = tuple(compare(f, reference.get(f), int(current[f]), tolerance) for f in gated)
    status = min((c.status for c in changes), key=lambda s: _ORDER[s])
    return MemoryVerdict(status, tolerance, changes,
                         f"{_message(changes, status, tolerance, where)}, side by side against {where}")


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


__all__ = ["MIN_GROWTH_BYTES", "compare", "judge_memory", "judge_memory_pair", "overall_status"]
