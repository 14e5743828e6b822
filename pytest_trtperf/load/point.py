"""The figures of one open-loop run at one rate (``summary.RatePoint``)."""

from __future__ import annotations

import math

import numpy as np

from pytest_trtperf.load.driver import Run
from pytest_trtperf.load.percentiles import percentile
from pytest_trtperf.core.serve_summary import RatePoint, Slo

#: Percentiles every point reports (the SLO's is added when it is another).
REPORTED = ("p50", "p90", "p99")


def measured(run: Run, warmup_s: float) -> np.ndarray:
    """Mask of the requests that count: scheduled at or after ``warmup_s``
    (the first ones find an empty system and would flatter the figures)."""
    return run.scheduled_s >= warmup_s


def censored_latency_s(run: Run) -> np.ndarray:
    """Latencies with each unfinished request at the time it had waited when
    the run ended: a lower bound, for series that must be finite."""
    lat = run.latency_s
    return np.where(np.isfinite(lat), lat, np.maximum(run.wall_s - run.scheduled_s, 0.0))


def rate_point(run: Run, *, warmup_s: float, slo: Slo | None, confidence: float) -> RatePoint:
    """Percentiles with bounds over the measured requests, unfinished ones as
    infinitely slow; achieved rate over the measured part of the window."""
    m = measured(run, warmup_s)
    lat_ms = np.sort(run.latency_s[m] * 1e3)
    names = REPORTED + ((slo.percentile,) if slo is not None and slo.percentile not in REPORTED else ())
    pct = {}
    for name in names:
        p = percentile(lat_ms, name, confidence)
        pct[name] = (p.value_ms, p.lower_ms, p.upper_ms)
    done = run.done_s[m & run.finished]
    span = float(done.max()) - warmup_s if done.size else 0.0
    queue = run.queue_seen()[m]
    lag = run.lag_s[m & run.finished]
    meets = None
    if slo is not None:
        meets = bool(pct[slo.percentile][2] <= slo.bound_ms)
    return RatePoint(
        offered_rate=float(m.sum() / max(run.window_s - warmup_s, 1e-9)),
        achieved_rate=float(done.size / span) if span > 0 else 0.0,
        requests=int(m.sum()),
        unfinished=int((m & ~run.finished).sum()),
        mean_ms=float(lat_ms.mean()) if lat_ms.size else math.inf,
        percentiles=pct,
        confidence=confidence,
        queue_mean=float(queue.mean()) if queue.size else 0.0,
        queue_max=int(queue.max()) if queue.size else 0,
        lag_p99_ms=float(np.percentile(lag, 99) * 1e3) if lag.size else 0.0,
        meets=meets,
    )
