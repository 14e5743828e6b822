"""One ``serve`` measurement, free of pytest: set the slots up, run the stated
rate, search the sustainable rate when asked, tear down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_trtperf.core.memory import measure as measure_memory
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.load import arrivals as arrivals_mod
from pytest_trtperf.load.driver import Run, drive
from pytest_trtperf.load.percentiles import min_requests
from pytest_trtperf.load.point import rate_point
from pytest_trtperf.load.search import find_sustainable
from pytest_trtperf.load.slots import Slots
from pytest_trtperf.core.serve_summary import PERCENTILES, RatePoint, Serve, Slo

#: Confidence of each one-sided percentile bound (LoadGen's early stopping uses 99%).
CONFIDENCE = 0.99


@dataclass(frozen=True)
class ServePlan:
    """A checked serve configuration (``plugin.markers.serve_plan`` makes it)."""

    rate: float
    arrivals: Any  # "poisson" | "constant" | np.ndarray of offsets (a checked trace)
    concurrency: int
    duration_s: float
    warmup_s: float
    seed: int
    slo: Slo | None
    #: Search the highest rate meeting ``slo`` (needs ``slo``).
    search: bool
    #: Wall-time budget of the search, on top of the run at ``rate``.
    search_time_s: float
    #: Relative width of the sustainable-rate bracket at which the search stops.
    precision: float
    #: How long requests may still finish after the last arrival.
    drain_s: float
    confidence: float = CONFIDENCE

    def identity(self) -> dict[str, Any]:
        """What changes the measurement (the gate: incomparable when it differs)."""
        return {"rate": self.rate, "arrivals": arrivals_mod.identity(self.arrivals),
                "concurrency": self.concurrency, "duration_s": self.duration_s, "warmup_s": self.warmup_s,
                "seed": self.seed, "slo": str(self.slo) if self.slo is not None else None,
                "search": self.search, "precision": self.precision if self.search else None,
                "confidence": self.confidence}


@dataclass(frozen=True)
class ServeRun:
    """The outcome: the summary that travels in results, and the run at the
    stated rate (raw, for its latency distribution; never serialised)."""

    serve: Serve
    run: Run
    #: Memory figures read after the runs, before teardown (slots that report them).
    memory: Mapping[str, int] = field(default_factory=dict)


#: Most runs one search makes (its time budget usually ends it first).
MAX_SEARCH_RUNS = 40
#: Margin on the fewest requests that can bound the SLO's percentile: a
#: Poisson schedule of that mean length falls short about one time in ten.
REQUESTS_MARGIN = 1.2


def measured_s(plan: ServePlan, rate: float) -> float:
    """Seconds measured at ``rate``: ``duration_s``, or longer when that many
    requests could not bound the SLO's percentile from above at the plan's
    confidence (p99 at 99%: 459 requests; LoadGen's minimum query count)."""
    if plan.slo is None:
        return plan.duration_s
    need = min_requests(PERCENTILES[plan.slo.percentile], plan.confidence) * REQUESTS_MARGIN
    return max(plan.duration_s, need / rate)


def run_at(slots: Slots, plan: ServePlan, rate: float) -> tuple[RatePoint, Run]:
    """One open-loop run at ``rate`` (same seed: the same schedule shape)."""
    span = plan.warmup_s + measured_s(plan, rate)
    times = arrivals_mod.schedule(plan.arrivals, rate, span, plan.seed)
    run = drive(slots.calls(), times, window_s=span, drain_s=plan.drain_s)
    return rate_point(run, warmup_s=plan.warmup_s, slo=plan.slo, confidence=plan.confidence), run


def run_serve(slots: Slots, plan: ServePlan) -> ServeRun:
    """Set up, run the stated rate, search, tear down (also on failure)."""
    slots.setup()
    try:
        point, run = run_at(slots, plan, plan.rate)
        points = [point]
        search = None
        if plan.search and plan.slo is not None:
            deadline = REAL.monotonic() + plan.search_time_s  # checked before each run: over by one run at most
            first = [point]  # the run at the stated rate is the search's first step

            def try_rate(r: float) -> RatePoint:
                return first.pop() if first and r == plan.rate else run_at(slots, plan, r)[0]

            search, tried = find_sustainable(try_rate, start=plan.rate, precision=plan.precision,
                                             max_steps=MAX_SEARCH_RUNS, lowest=plan.rate / 1024,
                                             out_of_time=lambda: REAL.monotonic() >= deadline)
            points = tried
        memory = measure_memory(slots)  # outside every timed run
    finally:
        slots.teardown()
    ordered = tuple(sorted(points, key=lambda p: p.offered_rate))
    return ServeRun(serve=Serve(rate=plan.rate, arrivals=arrivals_mod.identity(plan.arrivals),
                                concurrency=plan.concurrency, slo=str(plan.slo) if plan.slo else None,
                                seed=plan.seed, duration_s=plan.duration_s, at_rate=point, points=ordered,
                                search=search), run=run, memory=memory)


