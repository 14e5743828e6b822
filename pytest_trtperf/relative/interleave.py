"""Interleaved A/B measurement: alternating blocks of two workloads in one process.

Engine-agnostic like ``measure.py``, and run by the same machinery: each side
warms up by time as a single measurement would (``measure.warm_up``), one
unrecorded pair re-warms A after B's warm-up, then blocks of about
:data:`BLOCK_S` seconds alternate as pairs (A, B), (B, A), (A, B), ... The
order flips every pair, so a drift that is linear over two pairs cancels.

Fair to both sides (issue 27). In that order the second block of every pair
follows the other side (a switch) and the first does not, so a cost of
switching (caches and TLBs refilled with the other side's data, clocks, the
other side's stream and graph, the interpreter's caches) would land on B in
even pairs and on A in odd ones. Two things keep it off the ratio:

* **lead-in**: before each measured block its side runs :func:`lead_in`
  untimed iterations (:data:`LEAD_IN_FRACTION` of the block, at least one),
  on both sides alike, so every measured block starts on a side that has
  just run, whichever side ran before. Lead-ins are never recorded and never
  charged to either side's time.
* **whole cycles**: the run ends only after an even number of pairs (one
  (A, B) for each (B, A)), so each side comes first exactly as often as
  second and a switching cost the lead-in misses is split evenly between the
  sides instead of tipping the median pair ratio one way (an odd count of
  bimodal pair ratios has its median in the majority mode). ``iterations``
  plans an even number of pairs where it can (never an empty block).

After the minimum time, the minimum iterations and :data:`MIN_PAIRS` pairs it
stops when the confidence interval of the median pair ratio is narrower than
the target (``target_rel_ci``), with the same caps (``max_time`` over both
sides, ``max_iterations`` per side) and the same fixed stops (``iterations``
per side, ``duration`` in total).

Profilers see what ``measure()`` shows them (``gpu/window.py``): ``window``
is entered after both warm-ups and the re-warm pair and left after the last
block (one ``cudaProfilerStart``/``Stop`` for the whole run, so
``nsys --capture-range-end=repeat`` makes one report of it, not one per
block), and ``block(side)`` is entered around each measured block (one NVTX
range per block, ``<id> [a]`` / ``<id> [b]``); a block's lead-in runs just
before its range, inside the window.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.core.measure import Measurement, Watched, progress_fraction, stop_reason, warm_up
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import Batch, StateMonitor, Workload
from pytest_trtperf.relative.paired import block_value, ratio_ci_rel_width

#: Seconds per block: short next to the drift interleaving must cancel (the
#: GPU power-cap controller moves over ~1 s, load bursts on a shared CPU over
#: seconds), long enough for a block median over many iterations.
BLOCK_S = 0.05
#: Pairs before the adaptive stop may end a measurement.
MIN_PAIRS = 10
#: Iterations per block at least, however slow the workload.
MIN_BLOCK_ITERATIONS = 3
#: Untimed lead-in before each measured block, as a fraction of the block's
#: iterations (at least one iteration): 5 ms of a 50 ms block, long next to
#: refilling a cache or a TLB, replaying a graph once, or the interpreter
#: finding its way back into the other callable.
LEAD_IN_FRACTION = 0.1
#: Lead-in iterations at most (a 50 ms block of a 0.1 us callable).
MAX_LEAD_IN = 1 << 16


@dataclass(frozen=True)
class Interleaved:
    """Both sides of one interleaved run. ``a`` and ``b`` are whole
    measurements (all samples of a side, in order); ``a_blocks`` and
    ``b_blocks`` give each block's (iterations, wall seconds), pair by pair;
    ``b_first[i]`` says whether B ran first in pair ``i``; ``lead_ins`` the
    untimed iterations run before the blocks (not in any sample)."""

    a: Measurement
    b: Measurement
    a_blocks: tuple[tuple[int, float], ...]
    b_blocks: tuple[tuple[int, float], ...]
    b_first: tuple[bool, ...]
    stop_reason: str
    device_state: Any = None
    #: Untimed lead-in iterations each side ran before its blocks, in all (a, b).
    lead_ins: tuple[int, int] = (0, 0)

    @property
    def pairs(self) -> int:
        return len(self.b_first)

    def values(self, side: str, metric: str) -> np.ndarray:
        """Per-block values of ``metric`` (time-like, seconds) for ``side``."""
        m, blocks = (self.a, self.a_blocks) if side == "a" else (self.b, self.b_blocks)
        ipi = m.inferences // max(m.iterations, 1)
        out, start = [], 0
        for n, wall in blocks:
            out.append(block_value(m.latency_s[start:start + n], metric, wall_s=wall, inferences=n * ipi))
            start += n
        return np.asarray(out, dtype=np.float64)

    def ratios(self, metric: str) -> np.ndarray:
        """B over A, pair by pair (> 1: B slower)."""
        return self.values("b", metric) / self.values("a", metric)


def _block_size(per_iter: float, block_s: float, left: int) -> int:
    n = int(round(block_s / per_iter)) if per_iter > 0 else MIN_BLOCK_ITERATIONS
    return max(1, min(max(n, MIN_BLOCK_ITERATIONS), 1 << 20, left))


def lead_in(block_iterations: int, fraction: float = LEAD_IN_FRACTION) -> int:
    """Untimed iterations before a measured block of ``block_iterations``:
    ``fraction`` of it, at least one (none when ``fraction`` is 0)."""
    if fraction <= 0:
        return 0
    return max(1, min(math.ceil(fraction * block_iterations), MAX_LEAD_IN))


def _fixed_plan(iterations: int, per_a: float, per_b: float, block_s: float, min_pairs: int) -> int:
    """Pairs for ``iterations`` per side: blocks near ``block_s``, at least
    ``min_pairs`` pairs, never an empty block, and an even number of pairs
    (whole (A, B), (B, A) cycles) unless ``iterations`` is 1."""
    want = max(min_pairs, math.ceil(iterations / _block_size(per_a, block_s, iterations)),
               math.ceil(iterations / _block_size(per_b, block_s, iterations)))
    pairs = max(1, min(want, iterations))
    if pairs % 2 and pairs > 1:
        pairs += 1 if pairs < iterations else -1
    return pairs


class _Side:
    """What one side has done so far."""

    def __init__(self, name: str, workload: Workload, per_iter: float) -> None:
        self.name = name
        self.w = workload
        self.per_iter = per_iter
        self.chunks: list[Batch] = []
        self.blocks: list[tuple[int, float]] = []
        self.done = 0
        self.wall = 0.0
        self.lead_ins = 0

    def lead_in(self, n: int) -> None:
        """Untimed iterations before a block: neither recorded nor charged."""
        if n > 0:
            self.w.run(n)
            self.lead_ins += n

    def run(self, n: int) -> Batch:
        b = self.w.run(n)
        self.chunks.append(b)
        self.blocks.append((b.iterations, b.wall_s))
        self.done += b.iterations
        self.wall += b.wall_s
        if b.iterations:
            self.per_iter = b.wall_s / b.iterations
        return b

    def measurement(self, warm: tuple[int, float, float], stop: str, state: Any) -> Measurement:
        latency = np.concatenate([c.latency_s for c in self.chunks]).astype(np.float64, copy=False)
        keys = sorted(set().union(*(c.extra.keys() for c in self.chunks)))
        extra = {k: np.concatenate([np.asarray(c.extra[k], dtype=np.float64) for c in self.chunks if k in c.extra])
                 for k in keys}
        ipi = max(int(getattr(self.w, "inferences_per_iteration", 1)), 1)
        return Measurement(latency_s=latency, extra=extra, wall_s=self.wall, inferences=self.done * ipi,
                           warmup_iterations=warm[0], warmup_s=warm[1], stop_reason=stop, device_state=state,
                           batches=len(self.chunks))


def measure_interleaved(a: Workload, b: Workload, settings: MeasureSettings, *, metric: str = "median",
                        monitor: StateMonitor | None = None, on_progress: Callable[[float], None] | None = None,
                        block_s: float = BLOCK_S, min_pairs: int = MIN_PAIRS,
                        window: AbstractContextManager[Any] | None = None,
                        block: Callable[[str], AbstractContextManager[Any]] | None = None,
                        lead_in_fraction: float = LEAD_IN_FRACTION) -> Interleaved:
    """Warm up both sides, then measure them in alternating blocks until the
    paired ratio of ``metric`` is tight (or a cap or fixed stop is reached).

    Both workloads must be set up; the caller owns teardown. ``monitor``
    watches the whole interleaved window (both sides share it). ``window``
    is entered after warm-up and left after the last block; ``block("a")`` /
    ``block("b")`` around each measured block of that side (profilers' ranges,
    ``gpu/window.py``). ``lead_in_fraction``: the untimed lead-in before
    each block (:func:`lead_in`; 0 turns it off, for studies of what it removes).
    """
    s = settings
    warm_a = warm_up(a, s)
    warm_b = warm_up(b, s)
    sa, sb = _Side("a", a, warm_a[2]), _Side("b", b, warm_b[2])
    # A cooled down while B warmed up: one unrecorded pair evens that out.
    a.run(_block_size(sa.per_iter, block_s, 1 << 20))
    b.run(_block_size(sb.per_iter, block_s, 1 << 20))

    planned = _fixed_plan(s.iterations, sa.per_iter, sb.per_iter, block_s, min_pairs) if s.iterations else 0
    ratios: list[float] = []
    b_first: list[bool] = []
    stop = ""
    with Watched(monitor, window) as watched:
        start = REAL.perf_counter()
        while True:
            pair = len(b_first)
            order = (sb, sa) if pair % 2 else (sa, sb)
            for side in order:
                if s.iterations is not None:
                    left_pairs = planned - pair
                    n = max(1, (s.iterations - side.done) // left_pairs)
                else:
                    n = _block_size(side.per_iter, block_s, s.max_iterations - side.done)
                side.lead_in(lead_in(n, lead_in_fraction))
                with block(side.name) if block is not None else contextlib.nullcontext():
                    side.run(n)
            b_first.append(order[0] is sb)
            (na, wa), (nb, wb) = sa.blocks[-1], sb.blocks[-1]
            va = block_value(sa.chunks[-1].latency_s, metric, wall_s=wa,
                             inferences=na * max(int(getattr(a, "inferences_per_iteration", 1)), 1))
            vb = block_value(sb.chunks[-1].latency_s, metric, wall_s=wb,
                             inferences=nb * max(int(getattr(b, "inferences_per_iteration", 1)), 1))
            ratios.append(vb / va if va > 0 else math.inf)
            elapsed = REAL.perf_counter() - start
            if on_progress is not None:
                on_progress(progress_fraction(s, count=len(b_first), target=planned, elapsed=elapsed))
            why = stop_reason(s, count=len(b_first), target=planned, least=min(sa.done, sb.done),
                              most=max(sa.done, sb.done), elapsed=elapsed,
                              converged=lambda: len(ratios) >= min_pairs and ratio_ci_rel_width(
                                  np.asarray(ratios), s.confidence) <= s.target_rel_ci)
            # Only whole (A, B), (B, A) cycles: each side first as often as second.
            if why is not None and (why == "iterations" or len(b_first) % 2 == 0):
                stop = why
                break
    state = watched.state
    return Interleaved(a=sa.measurement(warm_a, stop, state), b=sb.measurement(warm_b, stop, state),
                       a_blocks=tuple(sa.blocks), b_blocks=tuple(sb.blocks), b_first=tuple(b_first),
                       stop_reason=stop, device_state=state, lead_ins=(sa.lead_ins, sb.lead_ins))

