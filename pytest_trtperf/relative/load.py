"""A relative gate under load, free of pytest: ``trt_bench.compare(a, b,
serve={...})`` serves A and B in alternating blocks (ABBA) on the same seeded
schedule at the same rate, in one process, and judges the paired ratio of the
chosen percentile b/a (``relative.paired``: median of pair ratios, moving-block
bootstrap) against the expectation, as ``trt_bench.compare`` does for closed
loops. No baseline is read or written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
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
from pytest_trtperf.core.serve_summary import Serve
from pytest_trtperf.core.workload import clock_of

#: Pairs of blocks by default (each block is one run at the stated rate).
DEFAULT_PAIRS = 6


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
    from pytest_trtperf.core import stats

    figure = latency_figure(plan.slo, plan.rate)
    pct = plan.slo.percentile if plan.slo is not None else "p99"
    fp = runner.fingerprint(b)  # type: ignore[arg-type]  # slots have what a fingerprint reads: kind, identity()
    monitor = runner.monitor_for(clock_of(b))
    lock = runner.gpu.measurement_lock() if runner.gpu is not None else contextlib.nullcontext()
    lat: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    values: dict[str, list[float]] = {"a": [], "b": []}
    achieved: dict[str, list[float]] = {"a": [], "b": []}
    last: dict[str, Any] = {}
    with lock:
        if monitor is not None:
            monitor.start()
        try:
            with _set_up(a), _set_up(b):
                for k in range(pairs):
                    for side in (("a", "b") if k % 2 == 0 else ("b", "a")):
                        point, run = run_at(a if side == "a" else b, plan, plan.rate)
                        lat[side].append(censored_latency_s(run)[measured(run, plan.warmup_s)])
                        values[side].append(point.value(pct))
                        achieved[side].append(point.achieved_rate)
                        last[side] = point
        finally:
            state = monitor.stop() if monitor is not None else None
    state = state if isinstance(state, DeviceState) else DeviceState(kind=b.kind)
    ratios = np.array([vb / va if va > 0 and math.isfinite(va) else math.nan
                       for va, vb in zip(values["a"], values["b"], strict=False)])
    cmp = compare_pairs(ratios, confidence=opts.confidence, seed=target.id)
    status = decide(cmp, expectation.bound)

    def make_side(name: str, label: str, slots: Slots) -> Side:
        x = np.concatenate(lat[name])
        ident = {"kind": slots.kind, **dict(slots.identity())}
        return Side(label=label, kind=slots.kind, latency=stats.summarize(x, opts.confidence),
                    throughput=float(np.mean(achieved[name])), distribution=stats.compress(x),
                    config_hash=config_hash(ident), identity=ident)

    sa, sb = make_side("a", labels[0], a), make_side("b", labels[1], b)
    rel = Relative(a=sa, b=sb, metric=figure.gate_metric, ratio=cmp.ratio, ci=cmp.ci, pairs=cmp.pairs,
                   bound=expectation.bound, expectation=expectation.text,
                   pair_ratios=tuple(float(f"{r:.6g}") for r in ratios))
    identity = {"relative": {"a": sa.identity, "b": sb.identity}, "mode": "serve", "serve": plan.identity()}
    serve = Serve(rate=plan.rate, arrivals=str(plan.identity()["arrivals"]), concurrency=plan.concurrency,
                  slo=str(plan.slo) if plan.slo else None, seed=plan.seed, duration_s=plan.duration_s,
                  at_rate=last["b"])
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
