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
from typing import Callable


def spin_ns(ns: int) -> None:
    """Busy-wait ``ns`` nanoseconds of wall time."""
    clock = time.perf_counter_ns
    end = clock() + ns
    while clock() < end:
        pass


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
