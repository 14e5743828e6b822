"""A relative gate under load, free of pytest: ``trt_bench.compare(a, b,
serve={...})`` serves A and B in alternating blocks (ABBA) on the same seeded
schedule at the same rate, in one process, and judges the paired ratio of the
chosen percentile b/a (``relative.paired``: median of pair ratios, moving-block
bootstrap) against the expectation, as ``trt_bench.compare`` does for closed
loops. No baseline is read or written.

The blocks and their ratio (:func:`alternate`, :func:`pair_ratios`,
:func:`served_side`) are shared with side by side under load
(``relative.serve_pairs``), where side A is served by the reference process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.relative.paired import compare_pairs, decide
from pytest_trtperf.relative.policy import Expectation, relative_verdict
from pytest_trtperf.core.results import DeviceState, Relative, Result, Side
from pytest_trtperf.pipeline.runner import Finished, Labels, Runner, Target
from pytest_trtperf.load.metrics import latency_figure
from pytest_trtperf.load.point import censored_latency_s, measured
from pytest_trtperf.load.serve import ServePlan, run_at
from pytest_trtperf.load.slots import Slots
from pytest_trtperf.core.serve_summary import RatePoint, Serve
from pytest_trtperf.core.workload import clock_of

#: Pairs of blocks by default (each block is one run at the stated rate).
DEFAULT_PAIRS = 6


@dataclass(frozen=True)
class ServedBlock:
    """One serve block: the gated percentile (ms), the achieved rate, the
    measured requests' latencies (s, unfinished ones censored) and, when it
    was served in this process, its rate point and raw run."""

    value_ms: float
    achieved_rate: float
    latency_s: np.ndarray
    point: RatePoint | None = None
    #: The raw run, when served in this process (for ``--trt-export-dir``; never serialised).
    run: Any = None


#: Serves one block of one side.
Block = Callable[[], ServedBlock]


@dataclass
class Blocks:
    """Every block of both sides (``"a"``, ``"b"``), in the order served."""

    served: dict[str, list[ServedBlock]] = field(default_factory=lambda: {"a": [], "b": []})

    def last_point(self, side: str) -> RatePoint | None:
        return self.served[side][-1].point if self.served[side] else None


def local_block(slots: Slots, plan: ServePlan, percentile: str) -> Block:
    """A block served here: one open-loop run of ``slots`` at the stated rate."""

    def block() -> ServedBlock:
        point, run = run_at(slots, plan, plan.rate)
        return ServedBlock(point.value(percentile), point.achieved_rate,
                           censored_latency_s(run)[measured(run, plan.warmup_s)], point, run)

    return block


def alternate(block_a: Block, block_b: Block, pairs: int, *, more: Callable[[Blocks], bool] | None = None,
              max_pairs: int = 0) -> Blocks:
    """``pairs`` blocks of each side, the order flipped every pair (ABBA):
    a drift of the machine falls on both sides alike. Then, while ``more``
    says the blocks so far do not decide, whole ABBA cycles (two pairs) more,
    up to ``max_pairs``."""
    out = Blocks()

    def wanted(k: int) -> bool:
        if k < pairs:
            return True
        if more is None or k >= max_pairs:
            return False
        return k % 2 == 1 or more(out)  # an ABBA cycle is finished before asking again

    k = 0
    while wanted(k):
        for side in (("a", "b") if k % 2 == 0 else ("b", "a")):
            out.served[side].append((block_a if side == "a" else block_b)())
        k += 1
    return out


def pair_ratios(blocks: Blocks) -> np.ndarray:
    """b/a of the percentile, pair by pair (NaN where a's is zero or infinite)."""
    return np.array([b.value_ms / a.value_ms if a.value_ms > 0 and math.isfinite(a.value_ms) else math.nan
                     for a, b in zip(blocks.served["a"], blocks.served["b"], strict=False)])


def served_side(blocks: Blocks, side: str, label: str, kind: str, identity: Mapping[str, Any],
                confidence: float) -> Side:
    """One side's latencies over all its blocks, as a ``Side`` of the relative result."""
    from pytest_trtperf.core import stats

    x = np.concatenate([s.latency_s for s in blocks.served[side]])
    ident = {"kind": kind, **dict(identity)}
    return Side(label=label, kind=kind, latency=stats.summarize(x, confidence),
                throughput=float(np.mean([s.achieved_rate for s in blocks.served[side]])),
                distribution=stats.compress(x), config_hash=config_hash(ident), identity=ident)
def measure_served_pair(runner: Runner, a: Slots, b: Slots, target: Target, plan: ServePlan,
                        opts: MeasureOptions, expectation: Expectation, *, sides: tuple[str, str], pairs: int,
                        labels: Labels) -> Finished:
    """``compare(a, b, serve={...})``'s whole trip, the fixture's one call:
    under ``--trt-disable`` one request per slot on each side, untimed, not
    reported; otherwise :func:`serve_pair`, labelled."""
    if runner.settings.disabled:
        from pytest_trtperf.pipeline.disabled import serve_once

        for side in (a, b):
            once = serve_once(side, rid=target.id, nodeid=target.nodeid, name=target.name, location=target.location,
                              fingerprint=runner.fingerprint, metric=opts.metric, tolerance=opts.tolerance)
        return Finished(once, reported=False)
    result = serve_pair(runner, a, b, target, plan, opts, expectation, labels=sides, pairs=pairs)
    return Finished(labels.on(result), reported=True)


def serve_pair(runner: Runner, a: Slots, b: Slots, target: Target, plan: ServePlan, opts: MeasureOptions,
               expectation: Expectation, *, labels: tuple[str, str], pairs: int) -> Result:
    """Serve both sides ``pairs`` times each, alternating; judge b/a."""
    figure = latency_figure(plan.slo, plan.rate)
    pct = plan.slo.percentile if plan.slo is not None else "p99"
    fp = runner.fingerprint(b)  # type: ignore[arg-type]  # slots have what a fingerprint reads: kind, identity()
    monitor = runner.monitor_for(clock_of(b))
    lock = runner.gpu.measurement_lock() if runner.gpu is not None else contextlib.nullcontext()
    with lock:
        if monitor is not None:
            monitor.start()
        try:
            with _set_up(a), _set_up(b):
                blocks = alternate(local_block(a, plan, pct), local_block(b, plan, pct), pairs)
        finally:
            state = monitor.stop() if monitor is not None else None
    state = state if isinstance(state, DeviceState) else DeviceState(kind=b.kind)
    ratios = pair_ratios(blocks)
    cmp = compare_pairs(ratios, confidence=opts.confidence, seed=target.id)
    status = decide(cmp, expectation.bound)
    sa = served_side(blocks, "a", labels[0], a.kind, a.identity(), opts.confidence)
    sb = served_side(blocks, "b", labels[1], b.kind, b.identity(), opts.confidence)
    rel = Relative(a=sa, b=sb, metric=figure.gate_metric, ratio=cmp.ratio, ci=cmp.ci, pairs=cmp.pairs,
                   bound=expectation.bound, expectation=expectation.text,
                   pair_ratios=tuple(float(f"{r:.6g}") for r in ratios))
    identity = {"relative": {"a": sa.identity, "b": sb.identity}, "mode": "serve", "serve": plan.identity()}
    last = blocks.last_point("b")
    assert last is not None  # side b is served here
    serve = Serve(rate=plan.rate, arrivals=str(plan.identity()["arrivals"]), concurrency=plan.concurrency,
                  slo=str(plan.slo) if plan.slo else None, seed=plan.seed, duration_s=plan.duration_s,
                  at_rate=last)
    verdict = relative_verdict(rel, status, opts=dataclasses.replace(opts, metric=figure.gate_metric), state=state,
                               rule=expectation.rule)
    return Result(id=target.id, nodeid=target.nodeid, name=target.name, kind=b.kind, clock=clock_of(b), mode="serve",
                  latency=sb.latency, throughput=sb.throughput, distribution=sb.distribution,
                  stop_reason=f"{pairs} pairs of serve blocks at {plan.rate:g}/s", warmup_iterations=0,
                  warmup_s=plan.warmup_s, measured_s=plan.duration_s * 2 * pairs, config_hash=config_hash(identity),
                  identity=identity, fingerprint=fp.to_dict(), device_class=fp.device_class, device_state=state,
                  location=target.location, relative=rel, serve=serve, verdict=verdict)


@contextlib.contextmanager
def _set_up(slots: Slots) -> Any:
    slots.setup()
    try:
        yield slots
    finally:
        slots.teardown()
