"""The highest rate that meets an SLO: expand from a starting rate until the
SLO is met below and missed above, then bisect the bracket (LoadGen's
``FindPeakPerformance``, perf_analyzer's ``--binary-search``), within a step
budget so the search is bounded in time."""

from __future__ import annotations

from collections.abc import Callable

from pytest_trtperf.core.serve_summary import RatePoint, Search

#: Expansion factor per step while no bracket is known.
GROWTH = 2.0


def find_sustainable(try_rate: Callable[[float], RatePoint], *, start: float, precision: float, max_steps: int,
                     lowest: float, out_of_time: Callable[[], bool] = lambda: False) -> tuple[Search, list[RatePoint]]:
    """``try_rate(r)`` runs at rate ``r`` and says whether it ``meets`` the
    SLO. Stops when the bracket's relative width is at most ``precision``,
    after ``max_steps`` runs or once ``out_of_time()`` (checked before each
    run after the first), or when even ``lowest`` misses the SLO."""
    points: list[RatePoint] = []

    def budget_left() -> bool:
        return len(points) < max_steps and not (points and out_of_time())

    def run(rate: float) -> bool:
        p = try_rate(rate)
        points.append(p)
        return bool(p.meets)

    lo: float | None = None
    hi: float | None = None
    rate = start
    while budget_left() and (lo is None or hi is None):
        if run(rate):
            lo = rate
            rate = rate * GROWTH if hi is None else rate
        else:
            hi = rate
            if rate / GROWTH < lowest:
                break
            rate = rate / GROWTH if lo is None else rate
    while lo is not None and hi is not None and hi / lo - 1.0 > precision and budget_left():
        mid = (lo + hi) / 2.0
        if run(mid):
            lo = mid
        else:
            hi = mid
    if lo is None:
        why = (f"no rate tried met the SLO (lowest {hi:.4g}/s)" if hi is not None and hi / GROWTH < lowest
               else f"no rate tried met the SLO within the search's budget ({len(points)} runs)")
        return Search(sustainable_rate=0.0, failed_rate=hi, steps=len(points), stop_reason=why), points
    if hi is None:
        why = f"every rate tried met the SLO (up to {lo:.4g}/s) within the search's budget ({len(points)} runs)"
    elif hi / lo - 1.0 <= precision:
        why = f"bracket within {precision:.0%}"
    else:
        why = f"search budget spent after {len(points)} runs; bracket {lo:.4g}..{hi:.4g}/s"
    return Search(sustainable_rate=lo, failed_rate=hi, steps=len(points), stop_reason=why), points
