"""Host callables of known cost: spins on ``time.perf_counter_ns`` for a fixed
number of nanoseconds (the host twin of the GPU tests' ``%globaltimer`` spin
kernel). Their duration is known without trusting the timer under test: a
spin ends at the first clock read past its deadline, so a preemption in the
middle of it does not lengthen it (one across the deadline does, and shows
as an outlier that medians ignore).

``Switching`` makes two such callables share one "machine": the first calls
of a side after the other side ran cost extra, as caches, TLBs or clocks
refilled with the other side's state would. Used by
``tests/test_interleave_fairness.py`` and ``bench/interleave_truth.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def spin_ns(ns: int) -> None:
    """Busy-wait ``ns`` nanoseconds of wall time."""
    clock = time.perf_counter_ns
    end = clock() + ns
    while clock() < end:
        pass


def loop_step_ns(seconds: float = 0.002) -> float:
    """Nanoseconds one turn of :func:`spin_ns`'s loop takes here (a spin
    ends up to one turn past its deadline): the median of three counted spins."""
    clock = time.perf_counter_ns
    steps = []
    for _ in range(3):
        turns, t0 = 0, clock()
        end = t0 + int(seconds * 1e9)
        while clock() < end:
            turns += 1
        steps.append((clock() - t0) / max(turns, 1))
    return sorted(steps)[1]


def overhead_us(alone_us: Callable[[float], float], longest_us: float) -> float:
    """``e_max`` of a host spin in us: what the harness reads on top of a
    spin's length, from spins measured alone (``alone_us(length) -> median
    reading``): the larger of a 0 ns spin's reading and the excess of the
    longest spin in use (timer ticks and interrupts that a long spin
    collects), plus one turn of the spin loop."""
    excess = max(alone_us(0.0), alone_us(longest_us) - longest_us)
    return excess + loop_step_ns() / 1e3


def spinner(ns: int) -> Callable[[], None]:
    """A zero-argument callable that spins ``ns`` nanoseconds."""
    ns = int(ns)

    def fn() -> None:
        spin_ns(ns)

    return fn


class Switching:
    """Two sides of equal cost ``work_ns``; the first ``cold_calls`` calls of
    a side after the other side's last call each cost ``penalty_ns`` more."""

    def __init__(self, work_ns: int, penalty_ns: int, cold_calls: int = 1) -> None:
        self.work_ns, self.penalty_ns, self.cold_calls = int(work_ns), int(penalty_ns), int(cold_calls)
        self.last = ""
        self.cold_left = 0
        #: Calls that paid the penalty, per side.
        self.paid = {"a": 0, "b": 0}

    def side(self, name: str) -> Callable[[], None]:
        def fn() -> None:
            if self.last != name:
                self.last, self.cold_left = name, self.cold_calls
            extra = 0
            if self.cold_left > 0:
                self.cold_left -= 1
                self.paid[name] += 1
                extra = self.penalty_ns
            spin_ns(self.work_ns + extra)

        return fn
