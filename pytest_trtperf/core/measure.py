"""Warm-up, the batched timing loop and the adaptive stopping rule.

Engine-agnostic: it drives any :class:`~pytest_trtperf.core.workload.Workload`.

Warm-up runs by time (trtexec's 200 ms) and for at least a few iterations so
lazy initialisation and clock ramp-up stay out. Measurement then runs in
batches that grow with the elapsed time (about a tenth of it), so the
stopping check costs little and GPU workloads synchronise rarely. After the
minimum time and iterations, it stops as soon as the confidence interval of
the median is narrower than the target (nvbench's ``stdrel`` idea, on the
median), with a hard cap on time and iterations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.core.stats import median_ci_rel_width
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import Batch, StateMonitor, Workload

#: Why a measurement stopped.
STOP_REASONS = ("converged", "max_time", "max_iterations", "iterations", "duration")


@dataclass(frozen=True)
class Measurement:
    """Raw outcome of one measured window (seconds)."""

    latency_s: np.ndarray
    extra: Mapping[str, np.ndarray]
    wall_s: float
    inferences: int
    warmup_iterations: int
    warmup_s: float
    stop_reason: str
    device_state: Any = None
    batches: int = 0

    @property
    def iterations(self) -> int:
        return int(self.latency_s.shape[0])

    @property
    def throughput(self) -> float:
        return self.inferences / self.wall_s if self.wall_s > 0 else 0.0


def warm_up(workload: Workload, s: MeasureSettings) -> tuple[int, float, float]:
    """Run until warm-up time and iterations are both reached, or a
    measurement's worth of iterations (``max_iterations``) ran: bounded even
    where a workload's clock does not advance.

    Returns (iterations, seconds, estimated seconds per iteration).
    """
    done = 0
    per_iter = 0.0
    batch = 1
    if s.warmup_s <= 0 and s.min_warmup_iterations <= 0:  # trt_bench.pedantic(warmup_rounds=0): none
        return 0, 0.0, 0.0
    start = REAL.perf_counter()
    while True:
        b = workload.run(batch)
        done += b.iterations
        per_iter = b.wall_s / max(b.iterations, 1)
        elapsed = REAL.perf_counter() - start
        if (elapsed >= s.warmup_s and done >= s.min_warmup_iterations) or done >= s.max_iterations:
            return done, elapsed, per_iter
        remaining = max(s.warmup_s - elapsed, 0.0)
        # Double, but never overshoot the warm-up by much.
        cap = int(remaining / per_iter) + 1 if per_iter > 0 else batch * 2
        batch = max(1, min(batch * 2, cap, 1 << 20))


def _next_batch(per_iter: float, elapsed: float, s: MeasureSettings, done: int, fixed_left: int | None) -> int:
    # A batch lasts about a tenth of what has elapsed (at least 10 ms), so the
    # stopping check runs O(log) times early and ~10 times a second later.
    target_s = min(max(0.1 * elapsed, 0.01), 0.25)
    if s.duration_s is None and s.iterations is None:
        target_s = min(target_s, max(s.max_time_s - elapsed, 0.001))
    n = int(target_s / per_iter) if per_iter > 0 else 1
    n = max(1, min(n, 1 << 20))
    limit = fixed_left if fixed_left is not None else s.max_iterations - done
    return max(1, min(n, limit))


def progress_fraction(s: MeasureSettings, *, count: int, target: int | None, elapsed: float) -> float:
    """How far along the longest possible run is (for a progress bar)."""
    if s.iterations is not None and target:
        return count / target
    return elapsed / (s.duration_s if s.duration_s is not None else s.max_time_s)


def stop_reason(s: MeasureSettings, *, count: int, target: int | None, least: int, most: int, elapsed: float,
                converged: Callable[[], bool]) -> str | None:
    """Why a measured loop stops now, or None to go on (the one stopping rule,
    for ``measure`` and the interleaved A/B loop). A fixed amount
    (``iterations``: ``count`` reaching ``target``; ``duration``) ends only
    there. Otherwise the adaptive rule: after the minimum time and at least
    ``least`` iterations, stop when ``converged()`` (asked only then: it costs
    a pass over the samples); the caps on time and on ``most`` iterations."""
    if s.iterations is not None:
        return "iterations" if target is not None and count >= target else None
    if s.duration_s is not None:
        return "duration" if elapsed >= s.duration_s else None
    if elapsed >= s.min_time_s and least >= s.min_iterations and converged():
        return "converged"
    if elapsed >= s.max_time_s:
        return "max_time"
    if most >= s.max_iterations:
        return "max_iterations"
    return None


class Watched:
    """The measured window of a loop: ``monitor`` watches the device from
    before ``window`` (profilers' ranges) opens until after it closes, so the
    profiler ranges hold the measured batches and nothing of the monitor; the
    monitor's summary is ``state`` after the ``with`` block (None without a
    monitor), taken even when the loop raised."""

    def __init__(self, monitor: StateMonitor | None, window: AbstractContextManager[Any] | None) -> None:
        self._monitor = monitor
        self._window = window
        self.state: Any = None

    def __enter__(self) -> Watched:
        if self._monitor is not None:
            self._monitor.start()
        if self._window is not None:
            try:
                self._window.__enter__()
            except BaseException:
                self._monitor_stop()
                raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._window is not None:
                self._window.__exit__(*exc)
        finally:
            self._monitor_stop()

    def _monitor_stop(self) -> None:
        self.state = self._monitor.stop() if self._monitor is not None else None


def measure(workload: Workload, settings: MeasureSettings, monitor: StateMonitor | None = None,
            on_progress: Callable[[float], None] | None = None,
            window: AbstractContextManager[Any] | None = None) -> Measurement:
    """Warm up, then measure until the stopping rule says enough.

    ``workload.setup()`` must have been called; the caller owns teardown.
    ``on_progress`` gets the fraction of the longest possible run done so far
    after each batch (for a progress bar; the adaptive stop may end sooner).
    ``window`` is entered after warm-up and left after the last measured
    batch: profilers' capture ranges and NVTX ranges (``gpu/window.py``) see
    the measured loop and nothing else.
    """
    s = settings
    warm_iters, warm_s, per_iter = warm_up(workload, s)

    chunks: list[Batch] = []
    done = 0
    wall = 0.0
    stop = ""
    with Watched(monitor, window) as watched:
        start = REAL.perf_counter()
        while True:
            elapsed = REAL.perf_counter() - start
            fixed_left = s.iterations - done if s.iterations is not None else None
            b = workload.run(_next_batch(per_iter, elapsed, s, done, fixed_left))
            chunks.append(b)
            done += b.iterations
            wall += b.wall_s
            if b.iterations:
                per_iter = b.wall_s / b.iterations
            elapsed = REAL.perf_counter() - start
            if on_progress is not None:
                on_progress(progress_fraction(s, count=done, target=s.iterations, elapsed=elapsed))
            why = stop_reason(s, count=done, target=s.iterations, least=done, most=done, elapsed=elapsed,
                              converged=lambda: median_ci_rel_width(np.concatenate([c.latency_s for c in chunks]),
                                                                    s.confidence) <= s.target_rel_ci)
            if why is not None:
                stop = why
                break
    state = watched.state

    latency = np.concatenate([c.latency_s for c in chunks]).astype(np.float64, copy=False)
    extra_keys = set().union(*(c.extra.keys() for c in chunks))
    extra = {
        k: np.concatenate([np.asarray(c.extra[k], dtype=np.float64) for c in chunks if k in c.extra])
        for k in sorted(extra_keys)
    }
    return Measurement(
        latency_s=latency,
        extra=extra,
        wall_s=wall,
        inferences=done * max(int(getattr(workload, "inferences_per_iteration", 1)), 1),
        warmup_iterations=warm_iters,
        warmup_s=warm_s,
        stop_reason=stop,
        device_state=state,
        batches=len(chunks),
    )
