"""The open-loop driver: requests arrive on a schedule, whatever the slots do.

Each slot has a host thread. A free thread takes the next request in arrival
order and, if that request has not arrived yet, waits until its scheduled
time; so a request starts at the later of its arrival and the moment a slot
frees up, first come first served (a FIFO queue in front of ``c`` servers).

A request's latency runs from its **scheduled** arrival to its completion: a
wait in the queue, a late wake-up of the driver and a stalled slot all count
(no coordinated omission). Requests that had not finished when the run was
cut off (``drain_s`` after the last arrival) are kept as unfinished: their
latency is infinite, never dropped.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pytest_trtperf.core.host_state import ThreadTimes, read_thread
from pytest_trtperf.core.timers import REAL

#: The last part of a wait for an arrival is spun (yielding), not slept: a
#: sleep wakes late by the scheduler's latency, which would be counted.
SPIN_S = 2e-4
#: Lead time between starting the slot threads and the first arrival.
LEAD_S = 0.02


class RequestFailed(Exception):
    """A request raised; the run stopped (the driver re-raises it with its index)."""


def wait_until(t: float, clock: Callable[[], float] = REAL.perf_counter) -> None:
    """Sleep until ``SPIN_S`` before ``t``, then yield until ``t``."""
    while True:
        left = t - clock()
        if left <= 0:
            return
        REAL.sleep(left - SPIN_S if left > SPIN_S else 0)


@dataclass(frozen=True)
class Run:
    """What one open-loop run saw, in seconds from the first possible arrival.
    ``start_s``/``done_s`` are NaN for requests that never started/finished."""

    scheduled_s: np.ndarray
    start_s: np.ndarray
    done_s: np.ndarray
    #: When the request could have started: max(arrival, its slot's previous completion).
    ready_s: np.ndarray
    slots: int
    window_s: float
    wall_s: float
    #: The slot threads' scheduler counters over the run, summed (CPU time,
    #: time runnable but waiting for a CPU, preemptions): what a loaded host
    #: did to the serving (``host_state.judge_serve_window``). None where
    #: /proc does not have them.
    cpu: ThreadTimes | None = None

    @property
    def n(self) -> int:
        return int(self.scheduled_s.size)

    @property
    def finished(self) -> np.ndarray:
        return np.isfinite(self.done_s)

    @property
    def latency_s(self) -> np.ndarray:
        """Scheduled arrival to completion; +inf for unfinished requests."""
        lat = self.done_s - self.scheduled_s
        return np.where(self.finished, lat, np.inf)

    @property
    def wait_s(self) -> np.ndarray:
        """Scheduled arrival to start (queueing plus the driver's own lag)."""
        return self.start_s - self.scheduled_s

    @property
    def service_s(self) -> np.ndarray:
        return self.done_s - self.start_s

    @property
    def on_requests_s(self) -> float:
        """The slots' summed time on finished requests, each from when it
        could start (``ready_s``) to its completion."""
        fin = self.finished
        return float(np.sum(self.done_s[fin] - self.ready_s[fin]))

    @property
    def lag_s(self) -> np.ndarray:
        """The driver's own delay: start minus the earliest moment the request
        could have started (its arrival, or its slot freeing up)."""
        return self.start_s - self.ready_s

    def queue_seen(self) -> np.ndarray:
        """Requests waiting (arrived, not started) when each request arrived.
        Starts are in arrival order (FIFO), so a binary search counts them."""
        start = np.where(np.isfinite(self.start_s), self.start_s, np.inf)
        started_before = np.searchsorted(np.maximum.accumulate(start), self.scheduled_s, side="right")
        return np.arange(self.n) - np.minimum(started_before, np.arange(self.n))

    @property
    def offered_rate(self) -> float:
        return self.n / self.window_s

    @property
    def achieved_rate(self) -> float:
        """Finished requests per second from the first arrival window's start
        to the last completion: the offered rate while the slots keep up,
        their capacity when they do not."""
        done = self.done_s[self.finished]
        return float(done.size / done.max()) if done.size and done.max() > 0 else 0.0


def drive(calls: Sequence[Callable[[], None]], arrivals_s: np.ndarray, *, window_s: float, drain_s: float,
          clock: Callable[[], float] = REAL.perf_counter) -> Run:
    """Send the requests at ``arrivals_s`` (offsets, s) to the slots' ``calls``.

    Stops taking requests ``drain_s`` after ``window_s``; requests not started
    by then stay unstarted (counted as unfinished). Raises
    :class:`RequestFailed` when a call raised (after the other slots stopped).
    """
    n = int(arrivals_s.size)
    start, done, ready = (np.full(n, math.nan) for _ in range(3))
    state = {"next": 0}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[tuple[int, BaseException]] = []
    t0 = clock() + LEAD_S

    counters: list[ThreadTimes | None] = []

    def worker(call: Callable[[], None]) -> None:
        tid = threading.get_native_id()
        before = read_thread(tid)  # read before the first request and after the last: outside every request
        try:
            serve_requests(call)
        finally:
            after = read_thread(tid)
            with lock:
                counters.append(_delta(before, after))

    def serve_requests(call: Callable[[], None]) -> None:
        free = 0.0  # when this slot last became free, s from t0
        while not stop.is_set():
            with lock:
                i = state["next"]
                if i >= n:
                    return
                state["next"] = i + 1
            wait_until(t0 + float(arrivals_s[i]), clock)
            if stop.is_set():
                return
            s = clock()
            try:
                call()
            except BaseException as e:  # noqa: BLE001 - reported by the caller with the request's index
                errors.append((i, e))
                stop.set()
                return
            d = clock()
            ready[i] = max(float(arrivals_s[i]), free)
            start[i], done[i] = s - t0, d - t0
            free = done[i]

    threads = [threading.Thread(target=worker, args=(c,), daemon=True, name=f"trtperf-slot-{k}")
               for k, c in enumerate(calls)]
    for t in threads:
        t.start()
    cutoff = t0 + window_s + drain_s
    for t in threads:
        t.join(max(0.0, cutoff - clock()))
    stop.set()
    for t in threads:  # requests in flight at the cut-off finish (a slot cannot be interrupted)
        t.join()
    if errors:
        i, e = errors[0]
        raise RequestFailed(f"request {i} raised {type(e).__name__}: {e}") from e
    return Run(scheduled_s=np.asarray(arrivals_s, dtype=np.float64), start_s=start, done_s=done, ready_s=ready,
               slots=len(calls), window_s=float(window_s), wall_s=clock() - t0, cpu=_summed(counters))


def _delta(before: ThreadTimes | None, after: ThreadTimes | None) -> ThreadTimes | None:
    if before is None or after is None:
        return None
    return ThreadTimes(run_ns=max(after.run_ns - before.run_ns, 0), wait_ns=max(after.wait_ns - before.wait_ns, 0),
                       preempted=max(after.preempted - before.preempted, 0))


def _summed(counters: Sequence[ThreadTimes | None]) -> ThreadTimes | None:
    """The slot threads' counters added up; None when any thread's are unknown."""
    if not counters or any(c is None for c in counters):
        return None
    known = [c for c in counters if c is not None]
    return ThreadTimes(run_ns=sum(c.run_ns for c in known), wait_ns=sum(c.wait_ns for c in known),
                       preempted=sum(c.preempted for c in known))
