"""Side by side under load (``--trt-ab=REV`` for ``trt_bench.serve``), free
of pytest.

A serve measurement is judged like every other measurement under
``--trt-ab``: against the same measurement of the reference's code, in the
reference process, the two taking turns. Each block is one open-loop run at
the stated rate on the plan's seeded schedule, so both sides see the same
arrivals; blocks alternate ABBA (``relative.load.alternate``, as
``trt_bench.compare(a, b, serve=...)`` does in one process) and the paired
ratio of the gated percentile b/a (``relative.paired``) against the
tolerance is the verdict.

The reference side (:func:`serve_as_reference`) offers its serve
measurement to the ordinary block server (``relative.serve.Server``) as a
workload whose ``run`` is one serve block (:class:`ServeBlocks`); the
percentile and achieved rate of the block travel as extra series of the
batch. No protocol change.

What is not judged side by side, each said in one line on the verdict and
resting on the baseline file (``side_by_side.rests_on_baseline``):

* the sustainable rate (a rate search is not interleaved): it is searched
  here alone and judged against the baseline file;
* a reference that cannot be had, whose measurement is not a serve run, or
  whose serve configuration differs (the two would not see one schedule).

A measurement absent at the reference is ``new``.

Under ``--trt-ab=baseline`` (:class:`SideBySideServeConfirm`), a
baseline-file regression of the latency at the stated rate, or a window too
busy to judge, is served again side by side against the commit the baseline
entry records, and the paired ratio decides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.formatting import fmt_change
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.core.results import DeviceState, Relative, Result
from pytest_trtperf.core.serve_summary import RatePoint, Serve
from pytest_trtperf.core.workload import Batch, clock_of
from pytest_trtperf.load.metrics import Figure, latency_figure
from pytest_trtperf.load.serve import ServePlan, measured_s
from pytest_trtperf.load.slots import Slots
from pytest_trtperf.pipeline.runner import Runner, Target, confirm
from pytest_trtperf.pipeline.serve import Served, serve as serve_alone, slo_missed
from pytest_trtperf.relative.gitfiles import Unavailable
from pytest_trtperf.relative.load import (DEFAULT_PAIRS, Block, Blocks, ServedBlock, alternate, local_block,
                                         pair_ratios, served_side)
from pytest_trtperf.relative.paired import compare_pairs, decide
from pytest_trtperf.relative.policy import numbers, relative_verdict
from pytest_trtperf.relative.reference_process import NotThere, ReferencePool, ReferenceProcess, RemoteWorkload
from pytest_trtperf.relative.side_by_side import both_memory, mark_new, paired_status, rests_on_baseline

#: Extra series of a served block's batch: the gated percentile (ms) and the achieved rate (1/s).
VALUE = "serve_value_ms"
ACHIEVED = "serve_achieved_rate"
#: Why the sustainable rate rests on the baseline file under ``--trt-ab``.
NO_SEARCH = "a rate search is not run side by side; the latency at the stated rate is"


#: Side by side under load serves up to this many times ``pairs`` pairs while
#: the interval neither shows the bound exceeded nor shows it kept (each pair
#: is two whole runs at the rate, so the cap is kept low: twice the cost).
MORE_PAIRS = 2


def undecided(bound: float, confidence: float, seed: str) -> Callable[[Blocks], bool]:
    """Whether the pairs so far leave the verdict open: not a regression, and
    the interval's upper end beyond the bound (nor shown within it)."""
    def more(blocks: Blocks) -> bool:
        cmp = compare_pairs(pair_ratios(blocks), confidence=confidence, seed=seed)
        return decide(cmp, bound) != "regression" and not cmp.ci[1] <= bound

    return more


def percentile_of(plan: ServePlan) -> str:
    """The gated percentile: the SLO's, p99 without one."""
    return plan.slo.percentile if plan.slo is not None else "p99"


def summary(plan: ServePlan, point: RatePoint) -> Serve:
    """The serve summary of a result judged from blocks at the stated rate (no search)."""
    return Serve(rate=plan.rate, arrivals=str(plan.identity()["arrivals"]), concurrency=plan.concurrency,
                 slo=str(plan.slo) if plan.slo else None, seed=plan.seed, duration_s=plan.duration_s, at_rate=point)


# -- the reference's side -------------------------------------------------------------
class ServeBlocks:
    """A serve measurement as the block server sees a workload: ``run`` is
    one open-loop run at the stated rate (``n`` is ignored: a block is a run)."""

    inferences_per_iteration = 1

    def __init__(self, slots: Slots, plan: ServePlan) -> None:
        self._slots, self._plan = slots, plan
        self.kind = slots.kind
        self._block = local_block(slots, plan, percentile_of(plan))
        self.last: RatePoint | None = None

    def setup(self) -> None:
        self._slots.setup()

    def teardown(self) -> None:
        self._slots.teardown()

    def identity(self) -> Mapping[str, Any]:
        return {**dict(self._slots.identity()), "mode": "serve", "serve": self._plan.identity()}

    def notes(self) -> tuple[str, ...]:
        return ()

    def memory_figures(self) -> Mapping[str, int]:
        from pytest_trtperf.core.memory import measure

        return measure(self._slots)

    def run(self, iterations: int) -> Batch:
        served = self._block()
        self.last = served.point
        return Batch(latency_s=served.latency_s, wall_s=self._plan.warmup_s + measured_s(self._plan, self._plan.rate),
                     extra={VALUE: np.array([served.value_ms]), ACHIEVED: np.array([served.achieved_rate])})


def serve_as_reference(server: Any, slots: Slots, plan: ServePlan, target: Target, *, fingerprint: Any,
                       opts: MeasureOptions) -> Result:
    """In the reference process: serve the measurement block by block to the
    judging session; the body gets the reference's own result (verdict ``off``)."""
    from pytest_trtperf.relative.serve import served_result

    blocks = ServeBlocks(slots, plan)
    figure = latency_figure(plan.slo, plan.rate)
    result = served_result(server, blocks, rid=target.id, nodeid=target.nodeid, name=target.name,
                           location=target.location, fingerprint=fingerprint, metric=figure.gate_metric,
                           tolerance=opts.tolerance, mode="serve")
    return dataclasses.replace(result, mode="serve", serve=summary(plan, blocks.last) if blocks.last else None)


# -- the judging side -----------------------------------------------------------------
def _remote_block(remote: RemoteWorkload) -> Block:
    def block() -> ServedBlock:
        batch = remote.run(1)
        value, achieved = batch.extra.get(VALUE), batch.extra.get(ACHIEVED)
        if value is None or achieved is None or len(value) != 1 or len(achieved) != 1:
            raise Unavailable("the reference process sent a block without its serve figures")
        return ServedBlock(float(value[0]), float(achieved[0]), np.asarray(batch.latency_s, dtype=np.float64))

    return block


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def check_alike(remote: RemoteWorkload, slots: Slots, plan: ServePlan, where: str) -> None:
    """Both sides serve on one schedule, with the same clock; otherwise one line."""
    theirs = remote.identity()
    if theirs.get("mode") != "serve":
        raise Unavailable(f"the measurement at {where} is not served (a closed loop there): an open-loop serve run "
                          f"and a closed loop do not compare")
    if clock_of(remote) != clock_of(slots):
        raise Unavailable(f"the measurement is served as {remote.kind} at {where} and as {slots.kind} here; a host "
                          f"clock and the GPU's do not compare")
    ours, other = json.loads(_canonical(plan.identity())), theirs.get("serve")
    if _canonical(ours) != _canonical(other):
        other = other if isinstance(other, Mapping) else {}
        changed = sorted(k for k in set(ours) | set(other) if _canonical(ours.get(k)) != _canonical(other.get(k)))
        raise Unavailable(f"the serve configuration differs at {where} ({', '.join(changed) or 'all of it'}): the "
                          f"two sides would not see one schedule")


def _memory(remote: RemoteWorkload, slots: Slots) -> dict[str, Any]:
    """Both sides' memory figures of a serve run (``side_by_side.both_memory``),
    reported next to the ratio, not gated side by side."""
    from pytest_trtperf.core.memory import measure

    return both_memory(remote, lambda: measure(slots) or None)


def _message(rel: Relative, status: str, opts: MeasureOptions, figure: Figure, where: str) -> str:
    against = f"side by side against {where}, served in alternating blocks in two processes on one schedule"
    change = fmt_change(rel.ratio - 1.0)
    if status == "regression":
        return (f"{figure.words} regressed {change} {against} ({numbers(rel, opts.confidence)}), "
                f"tolerance {opts.tolerance:.1%}")
    if status == "improved":
        return f"{figure.words} improved {change} {against} ({numbers(rel, opts.confidence)})"
    shown = " (not shown to exceed it: the interval reaches back)" if rel.ratio > rel.bound else ""
    return (f"{figure.words} within {opts.tolerance:.1%} {against}{shown}: {change} "
            f"({numbers(rel, opts.confidence)})")


@dataclass
class SideBySideServe:
    """``--trt-ab=REV`` / ``--trt-ab-python`` for a serve measurement."""

    runner: Runner
    pool: ReferencePool
    rev: str | None
    pairs: int = DEFAULT_PAIRS

    def run(self, slots: Slots, target: Target, sustainable: Target | None, plan: ServePlan, opts: MeasureOptions,
            *, label: str) -> Served:
        """The latency at the stated rate judged side by side; the sustainable
        rate (when searched) on the baseline file, marked."""
        try:
            ref = self.pool.get(self.rev)
            remote = ref.measurement(target.nodeid, target.id, target.name)
        except NotThere as e:
            return self._alone(slots, target, sustainable, plan, opts, mark_new, str(e))
        except Unavailable as e:
            return self._alone(slots, target, sustainable, plan, opts, rests_on_baseline, str(e))
        try:
            try:
                check_alike(remote, slots, plan, ref.where)
                latency, run, point = self.judge(ref, remote, slots, target, plan, opts, label)
            finally:
                remote.teardown()
        except Unavailable as e:  # not comparable, or the reference died or hung mid-way: served again, alone
            return self._alone(slots, target, sustainable, plan, opts, rests_on_baseline, str(e))
        searched = None
        if sustainable is not None:
            alone = serve_alone(self.runner, slots, target, sustainable, plan, opts)
            if alone.sustainable is not None:
                searched = rests_on_baseline(alone.sustainable, NO_SEARCH)
        return Served(latency=latency, sustainable=searched, slo_missed=slo_missed(point, plan), run=run)

    def _alone(self, slots: Slots, target: Target, sustainable: Target | None, plan: ServePlan,
               opts: MeasureOptions, mark: Callable[[Result, str], Result], why: str) -> Served:
        """Served here alone, judged on the baseline file, each result marked with ``why``."""
        served = serve_alone(self.runner, slots, target, sustainable, plan, opts)
        return dataclasses.replace(served, latency=mark(served.latency, why),
                                   sustainable=mark(served.sustainable, why) if served.sustainable else None)

    def judge(self, ref: ReferenceProcess, remote: RemoteWorkload, slots: Slots, target: Target, plan: ServePlan,
              opts: MeasureOptions, label: str) -> tuple[Result, Any, RatePoint]:
        """Serve both sides in alternating blocks (again when it looks like a
        regression) and judge; the result, the last local run and its point."""
        last: dict[str, Any] = {}

        def once() -> Result:
            result, last["run"] = self._once(ref, remote, slots, target, plan, opts, label)
            return result

        slots.setup()
        try:
            result, verdict, again = confirm(
                once, lambda r: r.verdict, is_regression=lambda v: v is not None and v.status == "regression",
                remeasure=opts.remeasure, flagged=lambda r: r.flagged)
            memory = _memory(remote, slots)  # after every timed block, before teardown
        finally:
            slots.teardown()
        assert verdict is not None and result.serve is not None and result.relative is not None
        rel = result.relative
        if memory:
            rel = dataclasses.replace(rel, reference={**(rel.reference or {}), "memory": memory})
        return (dataclasses.replace(result, verdict=dataclasses.replace(verdict, remeasured=again), relative=rel,
                                    memory=dict(memory.get("b", {}))), last["run"], result.serve.at_rate)

    def _once(self, ref: ReferenceProcess, remote: RemoteWorkload, slots: Slots, target: Target, plan: ServePlan,
              opts: MeasureOptions, label: str) -> tuple[Result, Any]:
        figure = latency_figure(plan.slo, plan.rate)
        fp = self.runner.fingerprint(slots)  # type: ignore[arg-type]  # slots have what a fingerprint reads: kind, identity()
        monitor = self.runner.monitor_for(clock_of(slots))
        lock = self.runner.gpu.measurement_lock() if self.runner.gpu is not None else contextlib.nullcontext()
        with lock:
            if monitor is not None:
                monitor.start()
            try:
                blocks = alternate(_remote_block(remote), local_block(slots, plan, percentile_of(plan)), self.pairs,
                                   more=undecided(1.0 + opts.tolerance, opts.confidence, target.id),
                                   max_pairs=MORE_PAIRS * self.pairs)
            finally:
                state = monitor.stop() if monitor is not None else None
        state = state if isinstance(state, DeviceState) else DeviceState(kind=slots.kind)
        ratios = pair_ratios(blocks)
        cmp = compare_pairs(ratios, confidence=opts.confidence, seed=target.id)
        bound = 1.0 + opts.tolerance
        identity = {"kind": slots.kind, "mode": "serve", **dict(slots.identity()), "serve": plan.identity()}
        rel = Relative(
            a=served_side(blocks, "a", f"{label} at {ref.where}", remote.kind, remote.identity(), opts.confidence),
            b=served_side(blocks, "b", label, slots.kind, identity, opts.confidence), metric=figure.gate_metric,
            ratio=cmp.ratio, ci=cmp.ci, pairs=cmp.pairs, bound=bound,
            expectation=f"at most {opts.tolerance:.1%} slower than {ref.where}", origin="side_by_side",
            commit=ref.commit, pair_ratios=tuple(float(f"{r:.6g}") for r in ratios),
            reference={**ref.environment, "here": {"python": sys.executable,
                                                   "python_version": platform.python_version()}})
        status = paired_status(rel, decide(cmp, bound), opts.tolerance)
        gated = dataclasses.replace(opts, metric=figure.gate_metric)
        verdict = relative_verdict(rel, status, opts=gated, state=state,
                                   message=_message(rel, status, opts, figure, ref.where))
        point = blocks.last_point("b")
        assert point is not None  # side b is served here
        served = len(blocks.served["b"])
        sb = rel.b
        return Result(
            id=target.id, nodeid=target.nodeid, name=target.name, kind=slots.kind, mode="serve", latency=sb.latency,
            throughput=sb.throughput, distribution=sb.distribution,
            stop_reason=f"{served} pairs of serve blocks at {plan.rate:g}/s side by side", warmup_iterations=0,
            warmup_s=plan.warmup_s, measured_s=plan.duration_s * 2 * served, config_hash=config_hash(identity),
            identity=identity, fingerprint=fp.to_dict(), device_class=fp.device_class, device_state=state,
            location=target.location, relative=rel, serve=summary(plan, point), verdict=verdict), blocks.served["b"][-1].run


def _busy_or_regressed(r: Result | None) -> bool:
    """What the side-by-side confirmation takes up: a regression, or a window too busy to judge."""
    v = r.verdict if r is not None else None
    if v is None:
        return False
    return v.status == "regression" or (v.status == "unreliable" and v.decided_by in ("host_busy", "gpu_busy"))


def _stands(r: Result | None, why: str) -> Result | None:
    """A baseline-file verdict the confirmation could not take up, marked."""
    if r is None or r.verdict is None or not _busy_or_regressed(r):
        return r
    v = r.verdict
    return dataclasses.replace(r, verdict=dataclasses.replace(
        v, message=f"{v.message}; side by side not possible ({why}): the verdict rests on the baseline file"))


@dataclass
class SideBySideServeConfirm:
    """``--trt-ab=baseline`` for a serve measurement: a baseline-file
    regression of the latency at the stated rate, or a window too busy to
    judge, is served again side by side against the commit its baseline
    entry records, and the paired ratio decides (as
    ``side_by_side.SideBySideConfirm`` does for closed loops). The
    sustainable rate keeps its baseline-file verdict, marked."""

    runner: Runner
    pool: ReferencePool
    label: str

    def __call__(self, served: Served, slots: Slots, target: Target, plan: ServePlan,
                 opts: MeasureOptions) -> Served:
        served = dataclasses.replace(served, sustainable=_stands(served.sustainable, NO_SEARCH))
        lat = served.latency
        if not _busy_or_regressed(lat) or lat.verdict is None:
            return served
        earlier = (f"the baseline file said {fmt_change(lat.verdict.change)}" if lat.verdict.status == "regression"
                   else "the baseline-file window was too busy to judge")
        entry = self.runner.store.lookup(lat.device_class, lat.id)
        commit = entry.git_commit if entry is not None else None
        if not commit:
            return self._stands(served, "the baseline entry names no commit (written outside git)")
        try:
            ref = self.pool.get(commit)
            remote = ref.measurement(target.nodeid, target.id, target.name)
        except (Unavailable, NotThere) as e:
            return self._stands(served, f"the baseline's commit {commit[:12]}: {e}")
        try:
            try:
                check_alike(remote, slots, plan, ref.where)
                judged, run, point = SideBySideServe(self.runner, self.pool, commit).judge(
                    ref, remote, slots, target, plan, opts, self.label)
            finally:
                remote.teardown()
        except Unavailable as e:
            return self._stands(served, f"the baseline's commit {commit[:12]}: {e}")
        assert judged.verdict is not None
        verdict = dataclasses.replace(judged.verdict, message=f"{judged.verdict.message}; {earlier}")
        return dataclasses.replace(served, latency=dataclasses.replace(judged, verdict=verdict),
                                   slo_missed=slo_missed(point, plan), run=run)

    @staticmethod
    def _stands(served: Served, why: str) -> Served:
        latency = _stands(served.latency, why)
        assert latency is not None
        return dataclasses.replace(served, latency=latency)
