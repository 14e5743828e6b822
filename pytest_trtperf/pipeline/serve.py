"""A serve measurement through the runner, free of pytest: run it under the
runner's device lock and state monitor, make its results (latency at the
stated rate; sustainable rate when searched) and judge each against its
baseline with the ordinary gate.

A suspected regression is served again and the second run decides, as for
every measurement; a busy or throttled window is flagged like any other.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

import numpy as np

from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.core.results import DeviceState, Distribution, Result
from pytest_trtperf.core.serve_summary import RatePoint
from pytest_trtperf.pipeline.runner import BUSY_FLAGS, COMPARED_OR_SAVED, Labels, Runner, Target, settle
from pytest_trtperf.core.workload import clock_of
from pytest_trtperf.load.metrics import Figure, latency_figure, sustainable_figure
from pytest_trtperf.load.point import censored_latency_s, measured
from pytest_trtperf.load.serve import ServePlan, ServeRun, run_serve
from pytest_trtperf.load.slots import Slots

#: A driver lag (p99) above this share of the p50 response gets a note.
LAG_NOTE_SHARE = 0.1


@dataclass(frozen=True)
class Served:
    """The judged results of one serve call and the SLO's verdict at the stated rate."""

    latency: Result
    sustainable: Result | None
    #: Why the SLO was missed at the stated rate (fails the test), or None.
    slo_missed: str | None
    #: The deciding run at the stated rate (raw, for --trt-export-dir; never serialised).
    run: Any = None


@dataclass(frozen=True)
class ServeTrip:
    """A serve call at the end of its trip: its labelled results (the
    latency at the stated rate, then the sustainable rate when searched),
    whether they are reported (not under ``--trt-disable``), and why the SLO
    was missed at the stated rate (fails the test), or None."""

    results: tuple[Result, ...]
    reported: bool
    slo_missed: str | None = None


def measure_served(runner: Runner, slots: Slots, target: Target, sustainable_target: Target | None,
                   plan: ServePlan, opts: MeasureOptions, labels: Labels,
                   serve_fn: Callable[[], Served] | None = None) -> ServeTrip:
    """``trt_bench.serve``'s whole trip, the fixture's one call: under
    ``--trt-disable`` one request per slot, untimed, not reported;
    otherwise :func:`serve` (or ``serve_fn``: the session's side-by-side
    choice, ``--trt-ab``), its samples exported, its results labelled."""
    if runner.settings.disabled:
        from pytest_trtperf.pipeline.disabled import serve_once

        once = serve_once(slots, rid=target.id, nodeid=target.nodeid, name=target.name, location=target.location,
                          fingerprint=runner.fingerprint, metric=opts.metric, tolerance=opts.tolerance)
        return ServeTrip((once,), reported=False)
    served = serve_fn() if serve_fn is not None else serve(runner, slots, target, sustainable_target, plan, opts)
    if runner.aids is not None:
        runner.aids.export_serve(served.latency, served.run, plan.warmup_s)
    results = (served.latency,) + ((served.sustainable,) if served.sustainable is not None else ())
    return ServeTrip(tuple(labels.on(r) for r in results), reported=True, slo_missed=served.slo_missed)


def serve(runner: Runner, slots: Slots, target: Target, sustainable_target: Target | None, plan: ServePlan,
          opts: MeasureOptions) -> Served:
    """Serve and judge, the runner's policy for every measurement
    (``runner.settle``): a window on a busy device (a loaded host, another
    process on the GPU) is served again after waiting for quiet, and
    ``unreliable`` if that window is busy too; a suspected regression of
    either figure (or a window flagged for throttling) is served once more
    and the second run decides."""
    watching = runner.settings.baseline_mode in ("compare", "update")
    # The judged object is the Served itself: the second of settle's answers (``unreliable`` marks it).
    _, served, again = settle(
        lambda: _serve_once(runner, slots, target, sustainable_target, plan, opts), lambda s: s,
        is_regression=_regressed, remeasure=opts.remeasure, flagged=lambda s: s.latency.flagged,
        busy=lambda s: watching and any(f in BUSY_FLAGS for f in s.latency.device_state.flags),
        wait_quiet=lambda s: runner._wait_quiet(s.latency, opts),  # the runner's own, shared within pipeline/
        unreliable=lambda s, _, who: _unreliable(runner, s, who, opts),
        matters=lambda s: any(_matters(r) for r in (s.latency, s.sustainable)))
    if not again:
        return served
    return dataclasses.replace(served, latency=_remeasured(served.latency),
                               sustainable=_remeasured(served.sustainable) if served.sustainable else None)


def _matters(r: Result | None) -> bool:
    """Numbers were compared or are to be saved (the runner's rule)."""
    v = r.verdict if r is not None else None
    return v is not None and (v.status in COMPARED_OR_SAVED or v.decided_by == "too_wide")


def _unreliable(runner: Runner, s: Served, who: tuple[str, ...], opts: MeasureOptions) -> Served:
    """Both figures of a window still busy after the wait and the re-serve:
    ``unreliable`` (or ``not_written``), naming who shared the device."""

    from pytest_trtperf.core.host_state import describe_serve_load

    def mark(r: Result) -> Result:
        assert r.verdict is not None
        # the runner's own, shared within pipeline/; a host window's load in a serve window's own words
        # (the slot threads' waits)
        verdict = runner._unreliable(r, r.verdict, who, opts, describe=describe_serve_load)
        return dataclasses.replace(r, verdict=verdict)

    return dataclasses.replace(s, latency=mark(s.latency), sustainable=mark(s.sustainable) if s.sustainable else None)


def _regressed(s: Served) -> bool:
    return any(r is not None and r.verdict is not None and r.verdict.status == "regression"
               for r in (s.latency, s.sustainable))


def _remeasured(r: Result) -> Result:
    assert r.verdict is not None
    return dataclasses.replace(r, verdict=dataclasses.replace(r.verdict, remeasured=True))


def _serve_once(runner: Runner, slots: Slots, target: Target, sustainable_target: Target | None,
                plan: ServePlan, opts: MeasureOptions) -> Served:
    fp = runner.fingerprint(slots)  # type: ignore[arg-type]  # slots have what a fingerprint reads: kind, identity()
    monitor = runner.monitor_for(clock_of(slots))
    lock = runner.gpu.measurement_lock() if runner.gpu is not None else contextlib.nullcontext()
    with lock:
        if monitor is not None:
            monitor.start()
        try:
            out = run_serve(slots, plan)
        finally:
            state = monitor.stop() if monitor is not None else None
    state = state if isinstance(state, DeviceState) else DeviceState(kind=slots.kind)
    if clock_of(slots) == "host" and runner.settings.watch_host:
        from pytest_trtperf.core.host_state import judge_serve_window

        state = judge_serve_window(state, out.run.cpu, out.run.on_requests_s)
    identity = {"kind": slots.kind, "mode": "serve", **dict(slots.identity()), "serve": plan.identity()}
    base = dict(nodeid=target.nodeid, kind=slots.kind, clock=clock_of(slots), mode="serve", warmup_s=plan.warmup_s,
                measured_s=plan.duration_s, fingerprint=fp.to_dict(), device_class=fp.device_class,
                device_state=state, location=target.location)
    figure = latency_figure(plan.slo, plan.rate)
    latency = _judged(runner, _latency_result(out, plan, target, identity, base, opts), figure, opts)
    latency = _with_memory(runner, latency, out, opts)
    sustainable = None
    search = out.serve.search
    if sustainable_target is not None and plan.slo is not None and search is not None and search.sustainable_rate > 0:
        figure = sustainable_figure(plan.slo)
        result = _sustainable_result(out, sustainable_target, {**identity, "figure": figure.name}, base, opts)
        sustainable = _judged(runner, result, figure, opts)
    return Served(latency, sustainable, slo_missed(out.serve.at_rate, plan), out.run)


class _Figures:
    """The memory figures a serve run read before teardown, for the runner's memory gate."""

    def __init__(self, figures: Mapping[str, int]) -> None:
        self._figures = dict(figures)

    def memory_figures(self) -> Mapping[str, int]:
        return self._figures


def _with_memory(runner: Runner, result: Result, out: ServeRun, opts: MeasureOptions) -> Result:
    """Memory figures and their verdict on the latency result (as for any
    measurement; the sustainable-rate result is the same run's)."""
    assert result.verdict is not None
    figures, verdict = runner.memory(_Figures(out.memory), result, result.verdict, opts)  # type: ignore[arg-type]  # only memory_figures() is read
    return dataclasses.replace(result, memory=figures, memory_verdict=verdict)


def _judged(runner: Runner, result: Result, figure: Figure, opts: MeasureOptions) -> Result:
    verdict = runner.judge(result, dataclasses.replace(opts, metric=figure.gate_metric))
    return dataclasses.replace(result, verdict=verdict)


def _latency_result(out: ServeRun, plan: ServePlan, target: Target, identity: Mapping[str, Any],
                    base: Mapping[str, Any], opts: MeasureOptions) -> Result:
    from pytest_trtperf.core import stats

    m = measured(out.run, plan.warmup_s)
    lat = censored_latency_s(out.run)[m]
    at = out.serve.at_rate
    return Result(id=target.id, name=target.name, latency=stats.summarize(lat, opts.confidence),
                  throughput=at.achieved_rate, distribution=stats.compress(lat),
                  stop_reason=f"served {plan.duration_s:g} s at {plan.rate:g}/s ({at.requests} requests measured)",
                  warmup_iterations=int((~m).sum()), config_hash=config_hash(identity), identity=dict(identity),
                  serve=out.serve, notes=_notes(out), **base)


def _sustainable_result(out: ServeRun, target: Target, identity: Mapping[str, Any], base: Mapping[str, Any],
                        opts: MeasureOptions) -> Result:
    from pytest_trtperf.core import stats

    search = out.serve.search
    assert search is not None
    lo, hi = search.bracket
    per_request_s = np.array([1.0 / hi, 1.0 / lo])
    quantiles = tuple(float(f"{q:.6g}") for q in np.linspace(1e3 / hi, 1e3 / lo, stats.QUANTILE_POINTS))
    bound = "" if search.failed_rate is not None else " (every rate tried met the SLO: a lower bound)"
    return Result(id=target.id, name=target.name, latency=stats.summarize(per_request_s, opts.confidence),
                  throughput=lo, distribution=Distribution(n=2, quantiles_ms=quantiles),
                  stop_reason=f"rate search: {search.stop_reason}", warmup_iterations=0,
                  config_hash=config_hash(identity), identity=dict(identity),
                  serve=dataclasses.replace(out.serve, gated="sustainable_rate"),
                  notes=(f"sustainable rate {lo:.4g}/s, bracket {lo:.4g}..{hi:.4g}/s after {search.steps} runs"
                         f"{bound}",), **base)


def _notes(out: ServeRun) -> tuple[str, ...]:
    at = out.serve.at_rate
    notes = []
    if at.unfinished:
        notes.append(f"{at.unfinished} of {at.requests} requests had not finished when the run ended: they count "
                     f"as infinitely slow in the percentiles (and at their wait so far in the latency series)")
    p50 = at.value("p50")
    if at.lag_p99_ms > LAG_NOTE_SHARE * p50:
        notes.append(f"the load driver started requests up to {at.lag_p99_ms:.3g} ms late (p99) on this host; that "
                     f"delay is counted in the latency (a loaded host, or too many slots for its cores)")
    if at.achieved_rate < 0.95 * at.offered_rate:
        notes.append(f"achieved {at.achieved_rate:.4g}/s of {at.offered_rate:.4g}/s offered: the slots could not "
                     f"keep up (the queue grew for the whole run)")
    return tuple(notes)


def slo_missed(at: RatePoint, plan: ServePlan) -> str | None:
    """Why the SLO was missed at the stated rate (``at``), or None."""
    slo = plan.slo
    if slo is None or at.meets:
        return None
    value, _, upper = at.percentiles[slo.percentile]
    return (f"SLO {slo} missed at {plan.rate:g}/s: {slo.percentile} {value:.4g} ms, upper bound {upper:.4g} ms "
            f"at {at.confidence:.0%} confidence over {at.requests} requests ({at.unfinished} unfinished)")
