"""``--trt-disable``: run a measurement's target once, untimed.

pytest-benchmark's ``--benchmark-disable`` runs each benchmarked function once
so the test's code and asserts still run (a quick correctness pass, a debug
session) without the cost of measuring. Here the workload is set up, runs one
iteration and is torn down; the result carries that one sample so a test that
reads ``result.latency`` still works, and its verdict is ``off``. Nothing is
gated, reported, or written to baselines. Pytest-free, like the runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pytest_trtperf.core import metrics, stats
from pytest_trtperf.core.fingerprint import Fingerprint
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.core.results import DeviceState, Relative, Result, Side, Verdict
from pytest_trtperf.core.workload import clock_of


def run_once(workload: Any, *, rid: str, nodeid: str, name: str | None, location: tuple[str, int] | None,
             fingerprint: Fingerprint, metric: str, tolerance: float, mode: str = "latency") -> Result:
    """Set up, one iteration, tear down: a result of one sample, verdict ``off``."""
    workload.setup()
    try:
        mode = mode if clock_of(workload) != "host" else "latency"
        identity = {"kind": workload.kind, "mode": mode, **dict(workload.identity())}
        batch = workload.run(1)
        notes = tuple(workload.notes())
    finally:
        workload.teardown()
    latency = stats.summarize(batch.latency_s)
    wall = float(batch.wall_s)
    result = Result(
        id=rid, nodeid=nodeid, name=name, kind=workload.kind, clock=clock_of(workload), mode=mode, latency=latency,
        throughput=workload.inferences_per_iteration / wall if wall > 0 else 0.0,
        distribution=stats.compress(batch.latency_s), stop_reason="disabled", warmup_iterations=0, warmup_s=0.0,
        measured_s=wall, config_hash=config_hash(identity), identity=identity, fingerprint=fingerprint.to_dict(),
        device_class=fingerprint.device_class, device_state=DeviceState(kind=workload.kind),
        notes=notes + ("--trt-disable: ran once, not timed, gated or reported",), location=location,
        # The workload's other series of that one iteration (GPU compute, enqueue, transfers), so
        # a test that reads result.gpu_compute behaves as in a measured run.
        extra={k: stats.summarize(v) for k, v in batch.extra.items() if len(v)},
    )
    verdict = Verdict(status="disabled", metric=metric, tolerance=tolerance, current_value=result.metric_value(metric),
                      message=f"{rid}: --trt-disable: ran once, not timed, gated or reported")
    return dataclasses.replace(result, verdict=verdict)


def run_pair_once(a: Any, b: Any, *, rid: str, nodeid: str, name: str | None, location: tuple[str, int] | None,
                  fingerprint: Fingerprint, metric: str, labels: tuple[str, str], bound: float,
                  expectation: str) -> Result:
    """``trt_bench.compare`` under ``--trt-disable``: each side once, untimed.

    The result has the shape of a relative gate's (``result.relative`` with
    both sides and their one-sample ratio, no interval), so a test's code
    that reads it still runs; its verdict is ``disabled`` and nothing is judged."""
    once = [run_once(w, rid=rid, nodeid=nodeid, name=name, location=location, fingerprint=fingerprint,
                     metric=metric, tolerance=bound - 1.0) for w in (a, b)]
    sides = [Side(label=label, kind=r.kind, latency=r.latency, throughput=r.throughput, distribution=r.distribution,
                  config_hash=r.config_hash, identity=dict(r.identity)) for label, r in zip(labels, once, strict=False)]
    va, vb = (s.metric_value(metric) for s in sides)
    if not metrics.timing(metric).lower_is_better:
        va, vb = vb, va  # time-like: above 1 means b is slower
    ratio = vb / va if va > 0 else float("nan")
    relative = Relative(a=sides[0], b=sides[1], metric=metric, ratio=ratio, ci=(float("nan"), float("nan")),
                        pairs=1, bound=bound, expectation=expectation)
    message = f"{rid}: --trt-disable: ran a and b once each, not timed, gated or reported"
    verdict = dataclasses.replace(once[1].verdict, message=message) if once[1].verdict else None
    notes = tuple(dict.fromkeys((*(f"a: {n}" for n in once[0].notes), *(f"b: {n}" for n in once[1].notes))))
    return dataclasses.replace(once[1], relative=relative, verdict=verdict, notes=notes)


def serve_once(slots: Any, *, rid: str, nodeid: str, name: str | None, location: tuple[str, int] | None,
               fingerprint: Callable[[Any], Fingerprint], metric: str, tolerance: float) -> Result:
    """``trt_bench.serve`` under ``--trt-disable``: each slot runs one
    request, untimed; verdict ``off``. ``fingerprint``: the runner's, of the
    stand-in host workload the result describes."""
    from pytest_trtperf.workloads.host import HostWorkload

    slots.setup()
    try:
        for call in slots.calls():
            call()
    finally:
        slots.teardown()
    once = HostWorkload(lambda: None, identity=dict(slots.identity()))
    return run_once(once, rid=rid, nodeid=nodeid, name=name, location=location, fingerprint=fingerprint(once),
                    metric=metric, tolerance=tolerance)
