"""Bounds for interleaved ratios of workloads of known cost (issue 27), shared
by the CPU tests, the GPU tests and ``bench/interleave_truth.py``.

A workload of known cost ``T`` (a host spin on ``perf_counter_ns``, a
``%globaltimer`` spin kernel) reads ``T + e``: ``e`` is what the harness and
the timer add (a host call and two clock reads; an event pair around a kernel),
between 0 and ``e_max``, the same for both sides when the harness treats them
alike. So the ratio of readings of ``Tb`` over ``Ta`` lies between
``Tb / Ta`` and ``(Tb + e_max) / (Ta + e_max)`` (:func:`ratio_range`), and a
harness that charges one side more than the other leaves that range. Around
it the bound allows the timer's resolution (``quantum / Ta``: a median is one
of the readings) and the run's own noise (twice the half-width, in logs, of
the 99% interval the gate itself computed), so it is derived from the
measurement, never tuned on one machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def ratio_range(ta: float, tb: float, e_max: float) -> tuple[float, float]:
    """Where ``(tb + e) / (ta + e)`` lies for one ``e`` in ``[0, e_max]`` (any unit)."""
    x, y = tb / ta, (tb + e_max) / (ta + e_max)
    return min(x, y), max(x, y)


def half_width(ci: tuple[float, float], ratio: float) -> float:
    """The larger half of an interval around ``ratio``, in logs (0 without one)."""
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0):
        return math.inf
    return max(math.log(ratio / lo), math.log(hi / ratio), 0.0)


@dataclass(frozen=True)
class RatioBound:
    """The documented bound on one interleaved ratio of known truth."""

    lo: float
    hi: float

    @classmethod
    def of(cls, ta: float, tb: float, *, e_max: float, quantum: float, ci: tuple[float, float],
           ratio: float) -> RatioBound:
        """``ta``, ``tb``, ``e_max`` and ``quantum`` in one unit; ``ci`` the
        gate's interval around ``ratio``."""
        lo, hi = ratio_range(ta, tb, e_max)
        widen = quantum / min(ta, tb) + 2.0 * half_width(ci, ratio)
        return cls(lo * math.exp(-widen), hi * math.exp(widen))

    def holds(self, ratio: float) -> bool:
        return self.lo <= ratio <= self.hi

    def rel(self, truth: float) -> float:
        """The bound's larger distance from ``truth``, relative (for reports)."""
        return max(truth / self.lo - 1.0, self.hi / truth - 1.0)


def swap_holds(r_ab: float, r_ba: float, ci_ab: tuple[float, float], ci_ba: tuple[float, float],
               quantum_rel: float) -> bool:
    """Swapping the sides gives the reciprocal: ``r_ab * r_ba`` is 1 within
    both runs' noise and the resolution (a shared overhead cancels exactly)."""
    widen = 2.0 * (half_width(ci_ab, r_ab) + half_width(ci_ba, r_ba)) + 2.0 * quantum_rel
    return abs(math.log(r_ab * r_ba)) <= widen


def absolute_holds(interleaved: float, alone: float, *, allowed: float) -> bool:
    """A side's reading interleaved agrees with the same workload measured alone."""
    return abs(interleaved - alone) <= allowed


def timer_quantum_us(kernels: Any, lengths: int = 60, repeats: int = 5) -> float:
    """How far a reading can sit from ``T + e`` for a constant ``e``: the
    peak-to-peak, over spins of 2 us plus steps of 37 ns, of (median reading
    - true length), spins queued behind a 2 ms spin so no host latency enters.
    It holds the event timer's resolution and the spin kernel's own
    granularity (``%globaltimer`` ticks); at least 1 ns.
    ``kernels``: tests/gpu/gpu_kernels.py's ``Kernels``."""
    import numpy as np

    from pytest_trtperf.gpu import cuda

    rt = cuda.runtime()
    s = cuda.Stream()
    ns = [2000 + 37 * (i % lengths) for i in range(lengths * repeats)]
    evs = [(cuda.Event(), cuda.Event()) for _ in ns]
    kernels.spin(s.handle, 2_000_000)
    for (a, b), n in zip(evs, ns, strict=True):
        rt.cudaEventRecord(a.obj, s.handle)
        kernels.spin(s.handle, n)
        rt.cudaEventRecord(b.obj, s.handle)
    s.synchronize()
    readings = np.array([cuda.elapsed_ms(a, b) * 1e3 for a, b in evs]).reshape(repeats, lengths)
    s.close()
    offsets = np.median(readings, axis=0) - np.asarray(ns[:lengths]) / 1e3
    return max(float(offsets.max() - offsets.min()), 0.001)
