"""Arrival schedules: when each request is sent, as offsets in seconds from the
start of a run.

Schedules are made before the run from a seed, so two runs (and both sides of
a comparison) send the same requests at the same offsets; the driver never
decides when to send from what it has seen (that is what makes it open-loop).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any
from collections.abc import Sequence

import numpy as np

#: Named arrival processes. A sequence of offsets (a trace) is the third form.
ARRIVALS = ("poisson", "constant")
#: More requests than this in one schedule is a usage error (memory, time).
MAX_REQUESTS = 2_000_000


def check_trace(trace: Sequence[float], where: str) -> np.ndarray:
    """A user's trace as sorted offsets (s) from its first request: finite,
    non-negative, non-decreasing, at least two requests."""
    from pytest_trtperf.core.errors import UsageError

    try:
        t = np.asarray(trace, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: arrivals= trace must be a sequence of arrival times in seconds") from None
    if t.size < 2 or t.size > MAX_REQUESTS:
        raise UsageError(f"{where}: arrivals= trace needs 2..{MAX_REQUESTS} arrival times, got {t.size}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) < 0):
        raise UsageError(f"{where}: arrivals= trace must hold finite, non-negative, non-decreasing times in seconds")
    if t[-1] - t[0] <= 0:
        raise UsageError(f"{where}: arrivals= trace spans no time (all arrivals at once)")
    return t - t[0]


def trace_rate(trace: np.ndarray) -> float:
    """A trace's own mean rate: requests after the first per second of span."""
    return float((trace.size - 1) / (trace[-1] - trace[0]))


def schedule(arrivals: str | np.ndarray, rate: float, duration_s: float, seed: int) -> np.ndarray:
    """Arrival offsets (s) in ``[0, duration_s)`` at mean ``rate`` per second.

    ``poisson``: exponential gaps from a generator seeded with ``seed`` (the
    first request at the first gap, as a Poisson process started at 0);
    ``constant``: one request every ``1/rate`` s from 0; a trace (offsets from
    :func:`check_trace`): its shape, stretched in time so its mean rate is
    ``rate``, repeated until ``duration_s``.
    """
    if not (rate > 0 and math.isfinite(rate) and duration_s > 0):
        raise ValueError(f"rate {rate} and duration {duration_s} must be > 0")
    expected = rate * duration_s
    if expected > MAX_REQUESTS:
        raise ValueError(f"{expected:.0f} requests exceed {MAX_REQUESTS}")
    if isinstance(arrivals, np.ndarray):
        return _trace(arrivals, rate, duration_s)
    if arrivals == "constant":
        return np.arange(int(math.ceil(expected)), dtype=np.float64) / rate
    if arrivals != "poisson":
        raise ValueError(f"unknown arrival process {arrivals!r}")
    rng = np.random.default_rng(seed)
    n = int(expected + 6 * math.sqrt(expected) + 10)
    t = np.cumsum(rng.exponential(1.0 / rate, size=n))
    while t[-1] < duration_s:  # beyond six sigma: extend with the same generator
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(1.0 / rate, size=n))])
    return t[t < duration_s]


def _trace(trace: np.ndarray, rate: float, duration_s: float) -> np.ndarray:
    scaled = trace * (trace_rate(trace) / rate)
    period = scaled[-1] + 1.0 / rate  # the gap after the last request, at the mean rate
    reps = int(math.ceil(duration_s / period))
    t = (scaled[None, :] + period * np.arange(reps)[:, None]).reshape(-1)
    return t[t < duration_s]


def identity(arrivals: str | np.ndarray) -> str:
    """What goes into the measurement identity: the process's name, or
    ``trace:<sha256 prefix>`` of the trace's offsets."""
    if isinstance(arrivals, np.ndarray):
        return "trace:" + hashlib.sha256(np.ascontiguousarray(arrivals).tobytes()).hexdigest()[:16]
    return arrivals


def describe(arrivals: Any) -> str:
    """``poisson`` / ``constant`` / ``trace of N requests`` for messages."""
    return f"trace of {arrivals.size} requests" if isinstance(arrivals, np.ndarray) else str(arrivals)
