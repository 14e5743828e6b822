"""The highest rate that meets an SLO: expand from a starting rate until the
SLO is met below and missed above, then bisect the bracket (LoadGen's
``FindPeakPerformance``, perf_analyzer's ``--binary-search``), within a step
budget so the search is bounded in time."""

from __future__ import annotations

from typing import Callable

from .summary import RatePoint, Search

#: Expansion factor per step while no bracket is known.
GROWTH = 2.0


def find_sustainable(try_rate: Callable[[float], RatePoint], *, start: float, precision: float, max_steps: int,
                     lowest: float) -> tuple[Search, list[RatePoint]]:
    """``try_rate(r)`` runs at rate ``r`` and says whether it ``meets`` the
    SLO. Stops when the bracket's relative width is at most ``precision``,
    after ``max_steps`` runs, or when even ``lowest`` misses the SLO."""
    points: list[RatePoint] = []

    def run(rate: float) -> bool:
        p = try_rate(rate)
        points.append(p)
        return bool(p.meets)

    lo: float | None = None
    hi: float | None = None
    rate = start
    while len(points) < max_steps and (lo is None or hi is None):
        if run(rate):
            lo = rate
            rate = rate * GROWTH if hi is None else rate
        else:
            hi = rate
            if rate / GROWTH < lowest:
                break
            rate = rate / GROWTH if lo is None else rate
    while lo is not None and hi is not None and hi / lo - 1.0 > precision and len(points) < max_steps:
        mid = (lo + hi) / 2.0
        if run(mid):
            lo = mid
        else:
            hi = mid
    if lo is None:
        why = (f"no rate tried met the SLO (lowest {hi:.4g}/s)" if hi is not None and hi / GROWTH < lowest
               else f"no rate tried met the SLO within {max_steps} runs")
        return Search(sustainable_rate=0.0, failed_rate=hi, steps=len(points), stop_reason=why), points
    if hi is None:
        why = f"every rate tried met the SLO (up to {lo:.4g}/s) within {max_steps} runs"
    elif hi / lo - 1.0 <= precision:
        why = f"bracket within {precision:.0%}"
    else:
        why = f"step budget ({max_steps} runs) spent; bracket {lo:.4g}..{hi:.4g}/s"
    return Search(sustainable_rate=lo, failed_rate=hi, steps=len(points), stop_reason=why), points
