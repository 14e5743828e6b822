"""Relative gates, free of pytest: two targets measured interleaved in one
process and judged on their paired ratio, with no baseline file.

``trt_bench.compare(a, b, max_slowdown="3%")`` comes here through
:func:`run_relative`; the ``--trt-ab-confirm`` step (``ab_confirm.py``) uses
:func:`measure_pair` and :func:`judge_pair` to re-measure a suspected
regression against the baseline's own model. Both go through the runner's
GPU side (per-GPU lock, NVML monitor) and its re-measure policy
(``runner.confirm``), so a relative verdict is made the way every other
verdict is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from pytest_trtperf.core.config import MeasureOptions, MeasureSettings
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.gate.timing import verdict_flags
from pytest_trtperf.gpu.window import block_ranges, measured_window
from pytest_trtperf.core import metrics
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.relative.interleave import Interleaved, measure_interleaved
from pytest_trtperf.core.measure import Measurement
from pytest_trtperf.core.noise import MAX_BAR
from pytest_trtperf.relative.paired import MIN_PAIRS_FOR_CI, compare_pairs, decide, fail_ratio
from pytest_trtperf.core.formatting import fmt_value
from pytest_trtperf.core.results import DeviceState, Relative, Result, Side, Verdict
from pytest_trtperf.pipeline.runner import Finished, Labels, Runner, Target, confirm
from pytest_trtperf.core.workload import Workload, clock_of



@dataclass(frozen=True)
class Expectation:
    """What the test expects of B against A, as the largest B/A ratio
    (time-like) it allows, in words, and as the test wrote it (``rule``:
    ``max_slowdown 3%``, ``min_speedup 1.5x``; the failure message starts
    with it)."""

    bound: float
    text: str
    rule: str = field(default="", compare=False)

    @classmethod
    def from_config(cls, kind: str, value: float) -> Expectation:
        """From ``plugin.markers.expectation``: ``("max_slowdown", 0.03)`` or ``("min_speedup", 1.5)``."""
        if kind == "max_slowdown":
            return cls(bound=1.0 + value, text=f"b at most {_pct(value)} slower than a",
                       rule=f"max_slowdown {value * 100:g}%")
        return cls(bound=1.0 / value, text=f"b at least {value:g}x faster than a", rule=f"min_speedup {value:g}x")


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def describe(ratio: float) -> str:
    """``b 5.2% slower than a`` / ``b 1.31x faster than a`` for B/A (time-like)."""
    if not math.isfinite(ratio) or ratio <= 0:
        return "b/a unknown"
    if ratio >= 1.0:
        return f"b {_pct(ratio - 1.0)} slower than a"
    return f"b {1.0 / ratio:.2f}x faster than a"


def timed_alike(a: Workload, b: Workload, *, where: str) -> None:
    """Both sides on the same clock: host time against CUDA-event time would
    compare two different things."""
    if clock_of(a) != clock_of(b):
        clock = {"host": "the host clock", "device": "CUDA events"}
        raise UsageError(f"{where}: a is timed with {clock[clock_of(a)]} ({a.kind}) and b with "
                         f"{clock[clock_of(b)]} ({b.kind}); time both the same way (timer=\"host\" for both, "
                         f"or GPU work on a stream for both)")


def measure_pair(runner: Runner, a: Workload, b: Workload, target: Target, opts: MeasureOptions) -> Interleaved:
    """One interleaved run of two set-up workloads, under the runner's GPU
    lock and monitor, with its progress display and the profilers' brackets
    of an ordinary measured window (``--trt-profiler-api``, ``--trt-nvtx``:
    one window over all blocks, one NVTX range per block naming its side).
    The run is kept as ``runner.last_interleaved`` (``--trt-export-dir``)."""
    gpu = runner.gpu
    host = clock_of(a) == "host" and clock_of(b) == "host"
    monitor = gpu.make_monitor() if gpu is not None and not host else None
    lock = gpu.measurement_lock() if gpu is not None else contextlib.nullcontext()
    profiling = runner.settings.gpu
    with lock:
        bar = runner.progress(target, opts) if runner.progress is not None else None
        try:
            il = measure_interleaved(a, b, MeasureSettings.from_options(opts), metric=opts.metric,
                                     monitor=monitor, on_progress=bar.update if bar is not None else None,
                                     window=measured_window(profiling, target.id, "host" if host else clock_of(b)),
                                     block=block_ranges(profiling, target.id))
        finally:
            if bar is not None:
                bar.done("measured")
    runner.last_interleaved = il
    return il


def _side(label: str, workload: Workload, m: Measurement, identity: Mapping[str, Any], confidence: float) -> Side:
    from pytest_trtperf.core import stats

    return Side(label=label, kind=workload.kind, latency=stats.summarize(m.latency_s, confidence),
                throughput=m.throughput, distribution=stats.compress(m.latency_s),
                config_hash=config_hash(identity), identity=dict(identity))


def judge_pair(il: Interleaved, a: Workload, b: Workload, *, labels: tuple[str, str], opts: MeasureOptions,
               bound: float, expectation: str, seed: str, origin: str = "compare",
               commit: str | None = None) -> tuple[Relative, str]:
    """The paired comparison of one interleaved run: both sides, the ratio of
    ``opts.metric`` with its interval, and ``pass`` or ``regression``
    against ``bound``."""
    ratios = il.ratios(opts.metric)
    cmp = compare_pairs(ratios, confidence=opts.confidence, seed=seed)
    ida, idb = _identity(a), _identity(b)
    rel = Relative(a=_side(labels[0], a, il.a, ida, opts.confidence), b=_side(labels[1], b, il.b, idb, opts.confidence),
                   metric=opts.metric, ratio=cmp.ratio, ci=cmp.ci, pairs=cmp.pairs, bound=bound,
                   expectation=expectation, origin=origin, commit=commit,
                   pair_ratios=tuple(float(f"{r:.6g}") for r in ratios))
    return rel, decide(cmp, bound)


def _identity(w: Workload) -> dict[str, Any]:
    return {"kind": w.kind, **dict(w.identity())}


def metric_words(metric: str) -> str:
    """``median latency``, ``time per inference`` (throughput), ..."""
    return metrics.timing(metric).paired_words


def interval(rel: Relative, confidence: float) -> str:
    """``99% CI 1.046..1.058, 24 interleaved pairs; a 1.234 ms, b 1.298 ms``."""
    lo, hi = rel.ci
    ci = f"{confidence:.0%} CI {lo:.3f}..{hi:.3f}" if math.isfinite(hi) else "too few pairs for an interval"
    return (f"{ci}, {rel.pairs} interleaved pairs; a {fmt_value(rel.metric, rel.a.metric_value(rel.metric))}, "
            f"b {fmt_value(rel.metric, rel.b.metric_value(rel.metric))}")


def numbers(rel: Relative, confidence: float) -> str:
    """``b/a 1.052, 99% CI 1.046..1.058, 24 interleaved pairs; a 1.234 ms, b 1.298 ms``."""
    return f"b/a {rel.ratio:.3f}, {interval(rel, confidence)}"


def relative_message(rel: Relative, status: str, confidence: float, rule: str = "") -> str:
    """The verdict of a relative gate, cause first (pytest's 80-column short
    summary shows the start): ``b/a 1.102 exceeds max_slowdown 3%; median
    latency: b 10.2% slower than a (99% CI ..., 24 interleaved pairs; a ...,
    b ...)``. ``rule`` is the expectation as the test wrote it."""
    speedup = rule.startswith("min_speedup")
    rule = (rule or "the bound") + (f" (b/a <= {rel.bound:.3f})" if speedup or not rule else "")
    detail = f"{metric_words(rel.metric)}: {describe(rel.ratio)} ({interval(rel, confidence)})"
    head = f"b/a {rel.ratio:.3f}"
    if status == "regression":
        return f"{head} {'misses' if speedup else 'exceeds'} {rule}; {detail}"
    if rel.ratio > rel.bound:
        return (f"{head} not shown to {'miss' if speedup else 'exceed'} {rule}: the interval reaches back to "
                f"{rel.ci[0]:.3f}; {detail}")
    return f"{head} meets {rule}; {detail}"


def relative_verdict(rel: Relative, status: str, *, opts: MeasureOptions, state: DeviceState,
                     message: str | None = None, rule: str = "") -> Verdict:
    """A verdict whose numbers are the paired ratio: ``baseline_value`` is
    A's metric, ``current_value`` B's, ``change`` B/A - 1; its message is
    :func:`relative_message` unless given."""
    decided_by = None
    if status == "pass" and rel.pairs < MIN_PAIRS_FOR_CI and not rel.ratio <= rel.bound:
        # Beyond the bound with no interval at all (a window that held one or
        # two pairs): nothing was shown either way, so never a pass.
        status, decided_by = "unreliable", "too_wide"
        message = message or (f"unreliable: b/a {rel.ratio:.3f} is beyond {rule or 'the bound'} on {rel.pairs} "
                              f"interleaved pair(s), too few for an interval (at least {MIN_PAIRS_FOR_CI}); give "
                              f"the measurement more time (max_time=) or fewer calls per block; "
                              f"{metric_words(rel.metric)}: {describe(rel.ratio)} ({interval(rel, opts.confidence)})")
    bar = fail_ratio(rel.ratio, rel.ci[0], rel.pairs, rel.bound) - 1.0
    if status == "pass" and decided_by is None and math.isfinite(bar) and bar + 1.0 > rel.bound * (1.0 + MAX_BAR):
        # The interval's lower half spans more than a factor 2: a b/a twice the
        # bound would have passed too, so this pass shows nothing (the baseline
        # gate's ``noise.too_wide`` rule, in ratio terms).
        status, decided_by = "unreliable", "too_wide"
        message = (f"unreliable: b/a {rel.ratio:.3f} is too wide to decide: the interval reaches back to "
                   f"{rel.ci[0]:.3f}, so it would fail only above {bar + 1.0:.3f}, more than {1.0 + MAX_BAR:g}x "
                   f"{rule or 'the bound'} ({rel.bound:.3f}); give the measurement more time (max_time=) or a "
                   f"quieter machine; {metric_words(rel.metric)}: {describe(rel.ratio)} "
                   f"({interval(rel, opts.confidence)})")
    if message is None:
        message = relative_message(rel, status, opts.confidence, rule)
    return Verdict(status=status, decided_by=decided_by, metric=rel.metric, tolerance=rel.bound - 1.0,
                   baseline_value=rel.a.metric_value(rel.metric), current_value=rel.b.metric_value(rel.metric),
                   change=rel.ratio - 1.0, ci=(rel.ci[0] - 1.0, rel.ci[1] - 1.0), confidence=opts.confidence,
                   message=message, flags=verdict_flags(state, compared=False),
                   fails_above=bar if math.isfinite(bar) else None)


def measure_relative(runner: Runner, a: Workload, b: Workload, target: Target, opts: MeasureOptions,
                     expectation: Expectation, *, sides: tuple[str, str], labels: Labels) -> Finished:
    """``trt_bench.compare``'s whole trip, the fixture's one call. Under
    ``--trt-disable``, or in a reference process (``--trt-ab``: the judging
    session runs ``compare()`` itself), each side once, untimed, not
    reported; otherwise :func:`run_relative`, with the aids of an ordinary
    measurement: both sides' exports, and the nsys command at the end of a
    failed GPU gate's message."""
    if runner.settings.disabled or runner.serving:
        from pytest_trtperf.pipeline.disabled import run_pair_once

        once = run_pair_once(a, b, rid=target.id, nodeid=target.nodeid, name=target.name, location=target.location,
                             fingerprint=runner.fingerprint(b), metric=opts.metric, labels=sides,
                             bound=expectation.bound, expectation=expectation.text)
        return Finished(labels.apply(once, b), reported=False)
    result = run_relative(runner, a, b, target, opts, expectation, labels=sides)
    if runner.settings.ab.every_test:  # --trt-ab=REV: said in one line, not silently in-process
        from pytest_trtperf.relative.side_by_side import compare_note

        result = dataclasses.replace(result, notes=(*result.notes, compare_note(runner.settings.ab)))
    if runner.aids is not None:
        runner.aids.export_sides(result, runner.last_interleaved, (a, b))
        result = runner.aids.with_profile_command(result)
    return Finished(labels.apply(result, b), reported=True)


def run_relative(runner: Runner, a: Workload, b: Workload, target: Target, opts: MeasureOptions,
                 expectation: Expectation, labels: tuple[str, str] = ("a", "b")) -> Result:
    """``trt_bench.compare``: set both up, measure them interleaved (again
    when the expectation looks broken, as the runner's policy says), judge
    the paired ratio, tear both down. No baseline is read or written."""
    timed_alike(a, b, where=target.nodeid)
    runner.last_interleaved = None
    fp = runner.fingerprint(b)
    a.setup()
    try:
        b.setup()
        try:
            result, verdict, again = confirm(
                lambda: _result(runner, a, b, target, opts, expectation, labels, fp),
                _verdict_of,
                is_regression=lambda v: v.status == "regression",
                remeasure=opts.remeasure,
                flagged=lambda r: r.flagged,
            )
            notes = tuple(dict.fromkeys((*(f"a: {n}" for n in a.notes()), *(f"b: {n}" for n in b.notes()),
                                         *timed_apart(a, b))))
        finally:
            b.teardown()
    finally:
        a.teardown()
    return dataclasses.replace(result, verdict=dataclasses.replace(verdict, remeasured=again), notes=notes)


def timed_apart(a: Workload, b: Workload) -> tuple[str, ...]:
    """A note when the capture check timed one side as a graph replay and the
    other as eager calls (each side decides for itself at setup): their ratio
    then holds the launch cost one side has and the other has not."""
    ta, tb = a.identity().get("timed_as"), b.identity().get("timed_as")
    if ta is None or tb is None or ta == tb:
        return ()
    return (f"a and b are timed differently (a: {ta}, b: {tb}): b/a includes what graph replay saves over eager "
            f"launches; pass cuda_graph=False to time both eagerly",)


def _verdict_of(r: Result) -> Verdict:
    """A relative result is judged as it is built (``_result``): it always has a verdict."""
    assert r.verdict is not None
    return r.verdict


def _result(runner: Runner, a: Workload, b: Workload, target: Target, opts: MeasureOptions,
            expectation: Expectation, labels: tuple[str, str], fp: Any) -> Result:
    from pytest_trtperf.core import stats

    il = measure_pair(runner, a, b, target, opts)
    rel, status = judge_pair(il, a, b, labels=labels, opts=opts, bound=expectation.bound,
                             expectation=expectation.text, seed=target.id)
    state = il.device_state if isinstance(il.device_state, DeviceState) else DeviceState(kind=b.kind)
    identity = {"relative": {"a": rel.a.identity, "b": rel.b.identity}}
    m = il.b
    return Result(
        id=target.id, nodeid=target.nodeid, name=target.name, kind=b.kind, clock=clock_of(b),
        mode=opts.mode if clock_of(b) != "host" else "latency",
        latency=stats.summarize(m.latency_s, opts.confidence), throughput=m.throughput,
        distribution=stats.compress(m.latency_s), stop_reason=m.stop_reason, warmup_iterations=m.warmup_iterations,
        warmup_s=m.warmup_s, measured_s=il.a.wall_s + il.b.wall_s, config_hash=config_hash(identity),
        identity=identity, fingerprint=fp.to_dict(), device_class=fp.device_class, device_state=state,
        extra={k: stats.summarize(v, opts.confidence) for k, v in m.extra.items() if len(v)},
        location=target.location, relative=rel,
        verdict=relative_verdict(rel, status, opts=opts, state=state, rule=expectation.rule))
