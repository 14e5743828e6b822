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
           ratio: float) -> "RatioBound":
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
