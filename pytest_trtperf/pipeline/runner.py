"""The run policy, free of pytest: measure -> judge -> re-measure -> verdict.

The ``trt_bench`` fixture adapts pytest to this module (markers and test
items in, results out); benchmark scripts call the same policy, so the rule
the gate study evaluates is the rule the plugin runs.

A window measured while something else used the device (another process on
the GPU, a loaded host) is never judged as it stands: the runner waits
(bounded) for the device to become quiet and measures again; a window that is
still busy becomes ``unreliable``, naming the other processes, not a
regression.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.fingerprint import Fingerprint, host_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.gpu.window import measured_window
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.core.measure import Measurement, measure
from pytest_trtperf.core.memory import MemoryVerdict, measure_and_judge
from pytest_trtperf.gate.memory import judge_memory
from pytest_trtperf.core.results import DeviceState, Result, Verdict
from pytest_trtperf.core.workload import ChoosingWorkload, Clock, ProfiledWorkload, StateMonitor, Workload, clock_of

R = TypeVar("R")
V = TypeVar("V")

#: Flags that mean another process shared the device during the window.
BUSY_FLAGS = ("busy", "host_busy")
#: Verdicts whose numbers a busy window would falsify: compared, or to be saved.
COMPARED_OR_SAVED = ("pass", "regression", "improved", "updated")
#: Host enqueue time as a share of the measured GPU latency at or above which
#: a timing is set by how fast the host launches work, not by the GPU.
LAUNCH_BOUND_SHARE = 0.8


def launch_bound_note(result: Result) -> str | None:
    """A note for a GPU latency that the host's launch speed sets.

    With CUDA graphs off (or a failed capture) an eager torch model of small
    kernels is launch-bound: the GPU waits for the host between kernels, so
    the number follows the host CPU, not the GPU. On the lent H200, ResNet-50
    FP16 batch 1 read 4.1..6.3 ms in the guide's own loop across rounds of one
    process (bench/RESULTS.md); a user comparing with another run should know
    that is what moved."""
    enq = result.enqueue
    lat = result.latency.median
    if clock_of(result) == "host" or result.mode != "latency" or enq is None or not lat > 0:
        return None
    share = enq.median / lat
    if not share >= LAUNCH_BOUND_SHARE:
        return None
    return (f"launch-bound: enqueueing one call takes {enq.median:.4g} ms of its {lat:.4g} ms ({share:.0%}), so "
            f"this timing follows the host CPU's speed more than the GPU's; CUDA graphs (on by default) remove "
            f"the launch cost (a call that waits for the GPU itself counts that wait as enqueue time too)")
#: A second opinion on a verdict that is still a regression after the re-measure,
#: or ``unreliable`` (``ab_confirm.AbConfirm``, ``side_by_side.SideBySideConfirm``):
#: given the set-up workload, the result, its verdict and the options, a
#: replacement (result, verdict), or None to keep them.
RegressionCheck = Callable[[Workload, Result, Verdict, MeasureOptions], "tuple[Result, Verdict] | None"]


def confirm(measure_once: Callable[[], R], judge_one: Callable[[R], V], *, is_regression: Callable[[V], bool],
            remeasure: bool, flagged: Callable[[R], bool]) -> tuple[R, V, bool]:
    """Measure and judge; a suspected regression is measured once more and the
    second measurement decides. A run flagged for throttling or a busy device
    is always measured again, even without ``remeasure``.

    Returns the deciding measurement, its verdict and whether it was a re-measure.
    """
    return settle(measure_once, judge_one, is_regression=is_regression, remeasure=remeasure, flagged=flagged)


def settle(measure_once: Callable[[], R], judge_one: Callable[[R], V], *, is_regression: Callable[[V], bool],
           remeasure: bool, flagged: Callable[[R], bool], busy: Callable[[R], bool] = lambda r: False,
           wait_quiet: Callable[[R], tuple[str, ...]] = lambda r: (),
           unreliable: Callable[[R, V, tuple[str, ...]], V] | None = None,
           matters: Callable[[V], bool] = lambda v: True) -> tuple[R, V, bool]:
    """The whole policy: measure and judge; then

    * a busy window (``busy``) whose verdict ``matters`` (numbers were
      compared or are to be saved): wait for quiet (``wait_quiet``, bounded;
      it returns who was still there) and measure again; if that window is
      busy too, ``unreliable`` turns its verdict into one that says so;
    * a suspected regression (or a window flagged for throttling) with
      ``remeasure``: measure once more (with the same busy rule); the second
      measurement decides.

    Returns the deciding measurement, its verdict and whether it was a re-measure.
    """
    count = 0

    def once() -> tuple[R, V]:
        nonlocal count
        count += 1
        r = measure_once()
        return r, judge_one(r)

    def quiet(r: R, v: V) -> tuple[R, V, bool]:
        if not busy(r) or not matters(v):
            return r, v, True
        who = wait_quiet(r)
        r, v = once()
        if busy(r) and unreliable is not None:
            return r, unreliable(r, v, who), False
        return r, v, True

    result, verdict = once()
    result, verdict, clean = quiet(result, verdict)
    if clean and is_regression(verdict) and (remeasure or flagged(result)):
        result, verdict = once()
        result, verdict, _ = quiet(result, verdict)
    return result, verdict, count > 1


def unreliable_verdict(result: Result, verdict: Verdict, who: tuple[str, ...], busy_wait_s: float,
                       write_loaded: bool = False, describe: Callable[[DeviceState], str] | None = None) -> Verdict:
    """The verdict of a window still busy after the wait and the re-measure,
    naming ``who`` shared the device. In compare mode it becomes
    ``unreliable`` (the numbers it would have judged are kept, not judged);
    an update is ``not_written`` (a loaded baseline would make later quiet
    runs read as improvements), unless ``write_loaded``
    (``--trt-baseline-loaded=write``): then it keeps its status and says so
    (the entry records the flag). ``describe`` words a host window's load
    (``host_state.describe_load`` unless given: a serve window passes its
    slot threads' words)."""
    host = clock_of(result) == "host"
    state = result.device_state
    if host:
        from pytest_trtperf.core.host_state import describe_load

        cause = f"host busy ({(describe or describe_load)(state)})"
    else:
        cause = "GPU busy (another process used it during the measurement)"
    names = f"; other processes: {', '.join(who)}" if who else ""
    how = f"after waiting up to {busy_wait_s:g} s and measuring again"
    if verdict.status == "updated" and write_loaded:
        return dataclasses.replace(verdict, message=f"{cause} {how}{names}; the baseline records it "
                                                    f"(--trt-baseline-loaded=write); {verdict.message}")
    if verdict.status == "updated":
        return dataclasses.replace(verdict, status="not_written", decided_by="host_busy" if host else "gpu_busy",
                                   message=f"baseline not written: {cause} {how}{names}; measure it on a quiet "
                                           f"machine, or pass --trt-baseline-loaded=write to write it anyway")
    seen = ""
    if verdict.change is not None and verdict.status in ("pass", "regression", "improved", "unreliable"):
        said = "too wide to decide" if verdict.decided_by == "too_wide" else verdict.status
        seen = f"; the numbers said {said} {verdict.change * 100:+.1f}%, not judged"
    return dataclasses.replace(verdict, status="unreliable", decided_by="host_busy" if host else "gpu_busy",
                               message=f"unreliable: {cause} {how}{names}{seen}")


class GpuSide(Protocol):
    """What the runner needs from the GPU part of a session (``gpu/session.py``)."""

    def clock_state(self) -> str:
        """``off``, ``sm=1980`` ... for the fingerprint."""
        ...

    def measurement_lock(self) -> AbstractContextManager[Any]:
        """Held around each measured window (GPUs shared by xdist workers)."""
        ...

    def make_monitor(self) -> StateMonitor | None:
        """An NVML sampler for the measured window, or None without NVML."""
        ...

    def wait_until_idle(self, timeout_s: float) -> tuple[str, ...]:
        """Wait (bounded) for other processes to leave the GPU; those still there."""
        ...


class MeasureProgress(Protocol):
    """A progress display for one measured window."""

    def update(self, fraction: float) -> None: ...

    def done(self, text: str) -> None: ...


@dataclass(frozen=True)
class Target:
    """Who a result belongs to: the stable id and where the test lives."""

    id: str
    nodeid: str
    name: str | None
    location: tuple[str, int] | None = None


@dataclass(frozen=True)
class Labels:
    """What the runner cannot know about a result: its report group, the
    user's context (``extra_info``), the test's parameters, and the name of
    this checkout's side in a side-by-side run (the measurement's name, else
    the test's)."""

    group: str | None = None
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    side: str = ""

    def on(self, result: Result) -> Result:
        """``result`` labelled."""
        return dataclasses.replace(result, group=self.group, extra_info=dict(self.extra_info),
                                   params=dict(self.params))

    def apply(self, result: Result, workload: Workload) -> Result:
        """``result`` labelled, with the callable's last return value."""
        from pytest_trtperf.workloads.select import last_value

        return dataclasses.replace(self.on(result), return_value=last_value(workload))


@dataclass(frozen=True)
class Finished:
    """A measurement at the end of its trip: the labelled result, and whether
    it goes to the reports (not a ``--trt-disable`` run, not a reference
    process's served side)."""

    result: Result
    reported: bool


class Aids(Protocol):
    """What a reported result takes with it (``report.aids.ResultAids``):
    the files of ``--trt-export-dir`` and the profile command."""

    def export(self, result: Result, measurement: Any, workload: Workload) -> None: ...

    def export_sides(self, result: Result, interleaved: Any,
                     workloads: tuple[Workload | None, Workload]) -> None: ...

    def export_serve(self, result: Result, run: Any, warmup_s: float) -> None: ...

    def with_profile_command(self, result: Result) -> Result: ...


class StandIn(Protocol):
    """Measures every measurement of a session in the runner's place: a
    reference process of ``--trt-ab`` serving its side to the judging
    session (``relative.serve.Serving``; only the test body sees the
    result), or this checkout side by side with the reference
    (``relative.side_by_side.EveryTest``)."""

    #: Whether its results go to the reports.
    reported: bool

    def measure(self, runner: Runner, workload: Workload, target: Target, opts: MeasureOptions,
                side: str) -> Result: ...


class Runner:
    """Runs one workload through the policy and returns its judged result."""

    def __init__(self, settings: Settings, store: BaselineStore, gpu: GpuSide | None = None,
                 progress: Callable[[Target, MeasureOptions], MeasureProgress | None] | None = None,
                 *, workers: int = 0, aids: Aids | None = None, stand_in: StandIn | None = None) -> None:
        """``workers``: xdist workers in the session (0 without xdist), for
        the rule on more workers than CPU cores. ``aids``: exports and the
        profile command of reported results; ``stand_in``: who measures in
        :meth:`measure` instead of :meth:`run` for the whole session."""
        self.settings = settings
        self.store = store
        self.gpu = gpu
        self.progress = progress
        self.workers = workers
        self.aids = aids
        self.stand_in = stand_in
        self._cpu_lock: Any = None
        #: The deciding (last) measurement of the last ``run``: raw samples for
        #: ``--trt-export-dir``, which never travel inside a ``Result``.
        self.last_measurement: Measurement | None = None
        #: The deciding interleaved run of the last relative measurement
        #: (``relative.policy.measure_pair``: ``trt_bench.compare``, the
        #: ``--trt-ab-confirm`` re-measure), for ``--trt-export-dir``; reset
        #: by every ``run``.
        self.last_interleaved: Any = None

    @property
    def serving(self) -> bool:
        """This is a reference process (``--trt-ab``): its measurements are
        served to the judging session, never reported here."""
        return self.stand_in is not None and not self.stand_in.reported

    def measure(self, workload: Workload, target: Target, opts: MeasureOptions, labels: Labels | None = None,
                regression_check: RegressionCheck | None = None) -> Finished:
        """One measurement's whole trip, the fixture's one call: the stand-in
        measures it when the session has one; under ``--trt-disable`` it runs
        once, untimed (``disabled.py``); otherwise :meth:`run`. A reported
        result gets its aids (files, profile command); every result its
        labels."""
        labels = labels if labels is not None else Labels()
        if self.stand_in is not None:
            result = self.stand_in.measure(self, workload, target, opts, labels.side)
            reported = self.stand_in.reported
            if reported:  # side by side: both sides' samples, or this side's when measured here alone
                result = self._aided(result, workload, sides=result.relative is not None)
        elif self.settings.disabled:
            from pytest_trtperf.pipeline.disabled import run_once

            result = run_once(workload, rid=target.id, nodeid=target.nodeid, name=target.name,
                              location=target.location, fingerprint=self.fingerprint(workload),
                              metric=opts.metric, tolerance=opts.tolerance, mode=opts.mode)
            reported = False
        else:
            result = self._aided(self.run(workload, target, opts, regression_check=regression_check), workload,
                                 sides=False)
            reported = True
        return Finished(labels.apply(result, workload), reported)

    def _aided(self, result: Result, workload: Workload, *, sides: bool) -> Result:
        """The result's ``--trt-export-dir`` files written, and its profile
        command added (a failed or incomparable GPU gate)."""
        if self.aids is None:
            return result
        if sides:
            self.aids.export_sides(result, self.last_interleaved, (None, workload))
        else:
            self.aids.export(result, self.last_measurement, workload)
        return self.aids.with_profile_command(result)

    def run(self, workload: Workload, target: Target, opts: MeasureOptions,
            regression_check: RegressionCheck | None = None) -> Result:
        """Set up, measure (twice when a regression must be confirmed), judge,
        tear down. Notes, per-layer profile and device memory come from the
        workload after measuring. ``regression_check`` may replace a verdict
        that is still a regression (``--trt-ab-confirm``)."""
        self.last_interleaved = None
        fp = self.fingerprint(workload)
        if clock_of(workload) == "host":
            self._check_cpu_sharing(target)
        self._pass_baseline_choice(workload, target.id, fp)
        workload.setup()
        try:
            identity = {"kind": workload.kind, "mode": opts.mode if clock_of(workload) != "host" else "latency",
                        **dict(workload.identity())}
            watching = self.settings.baseline_mode in ("compare", "update")
            result, verdict, again = settle(
                lambda: self._result(target, workload, self._measure_once(workload, opts, target), fp, identity,
                                     opts),
                lambda r: self.judge(r, opts),
                is_regression=lambda v: v.status == "regression",
                remeasure=opts.remeasure,
                flagged=lambda r: r.flagged,
                busy=lambda r: watching and any(f in BUSY_FLAGS for f in r.device_state.flags),
                wait_quiet=lambda r: self._wait_quiet(r, opts),
                unreliable=lambda r, v, who: self._unreliable(r, v, who, opts),
                matters=lambda v: v.status in COMPARED_OR_SAVED or v.decided_by == "too_wide",
            )
            if regression_check is not None and verdict.status in ("regression", "unreliable"):
                result, verdict = regression_check(workload, result, verdict, opts) or (result, verdict)
            figures, memory_verdict = self.memory(workload, result, verdict, opts)  # after timing: never inside it
            if verdict.status == "not_written" and memory_verdict is not None and memory_verdict.status == "updated":
                memory_verdict = dataclasses.replace(memory_verdict, status="not_written",
                                                     message=verdict.message)
            bound = launch_bound_note(result)
            notes = (*workload.notes(), *((bound,) if bound else ()))
            layers, memory = ((tuple(workload.layers()), workload.device_memory_bytes)
                              if isinstance(workload, ProfiledWorkload) else ((), None))
        finally:
            workload.teardown()
        return dataclasses.replace(result, verdict=dataclasses.replace(verdict, remeasured=again), notes=notes,
                                   layers=layers, device_memory_bytes=memory if isinstance(memory, int) else None,
                                   memory=figures, memory_verdict=memory_verdict)

    def fingerprint(self, workload: Workload) -> Fingerprint:
        if clock_of(workload) == "host":
            return host_fingerprint(workload.kind)
        from pytest_trtperf.gpu.identity import gpu_fingerprint_for

        return gpu_fingerprint_for(workload, clocks=self.gpu.clock_state() if self.gpu is not None else "off")

    def _pass_baseline_choice(self, workload: Workload, rid: str, fp: Fingerprint) -> None:
        """A workload that chooses at setup how to time (TorchWorkload,
        CudaWorkload: graph replay or eager) gets the baseline's choice first,
        so that re-runs of unchanged code keep it (hysteresis, README "CUDA
        graphs and captured code")."""
        if not isinstance(workload, ChoosingWorkload) or self.settings.baseline_mode == "off":
            return
        entry = self.store.lookup(fp.device_class, rid)
        workload.use_baseline_choice(entry.timed_as if entry is not None else None)

    def judge(self, result: Result, opts: MeasureOptions) -> Verdict:
        s = self.settings
        entry = self.store.lookup(result.device_class, result.id) if s.baseline_mode == "compare" else None
        if s.baseline_mode == "update":
            entry = self._previous(result)
        return judge(result, entry, baseline_mode=s.baseline_mode, metric=opts.metric, tolerance=opts.tolerance,
                     confidence=opts.confidence, baseline_path=str(self.store.path_for(result.device_class)),
                     run_noise=opts.run_noise)

    def _previous(self, result: Result) -> Any:
        """The entry an update replaces, to show what moved; an unreadable
        file shows nothing here (the write at session end names it)."""
        from pytest_trtperf.core.errors import BaselineFileError

        try:
            return self.store.lookup(result.device_class, result.id)
        except (BaselineFileError, OSError):
            return None

    # -- busy devices ---------------------------------------------------------
    def _check_cpu_sharing(self, target: Target) -> None:
        """More xdist workers than CPU cores: a usage error when host numbers
        are gated or saved, unless allowed; allowed, windows take turns."""
        from pytest_trtperf.core.host_state import cpu_cores, cpu_sharing_error

        cores = cpu_cores()
        error = cpu_sharing_error(self.workers, cores, self.settings.baseline_mode, self.settings.allow_cpu_sharing)
        if error is not None:
            raise UsageError(f"{target.nodeid}: {error}")
        if self.workers > cores and self._cpu_lock is None:
            from pytest_trtperf.gpu.pinning import GpuLock

            self._cpu_lock = GpuLock.for_cpu(self.settings.gpu.state_dir)

    def _wait_quiet(self, result: Result, opts: MeasureOptions) -> tuple[str, ...]:
        """Wait for the device to become quiet; who was still there after the wait."""
        if clock_of(result) == "host":
            from pytest_trtperf.core.host_state import busiest_others, wait_until_quiet

            return () if wait_until_quiet(opts.busy_wait_s) else busiest_others()
        if self.gpu is None:
            return ()
        return self.gpu.wait_until_idle(opts.busy_wait_s)

    def _unreliable(self, result: Result, verdict: Verdict, who: tuple[str, ...], opts: MeasureOptions,
                    describe: Callable[[DeviceState], str] | None = None) -> Verdict:
        if not who:
            if clock_of(result) == "host":
                from pytest_trtperf.core.host_state import busiest_others

                who = busiest_others()
            else:
                who = result.device_state.other_processes
        return unreliable_verdict(result, verdict, who, opts.busy_wait_s,
                                  write_loaded=self.settings.baseline_loaded == "write", describe=describe)

    def memory(self, workload: Workload, result: Result, verdict: Verdict,
               opts: MeasureOptions) -> tuple[dict[str, int], MemoryVerdict | None]:
        """Memory figures measured after the timed window, and their verdict
        (``memory.py``); a suspected memory regression is measured again."""
        s = self.settings
        entry = self.store.lookup(result.device_class, result.id) if s.baseline_mode == "compare" else None
        path = str(self.store.path_for(result.device_class))
        return measure_and_judge(
            workload,
            lambda figures: judge_memory(figures, entry, verdict, baseline_mode=s.baseline_mode,
                                         tolerance=opts.memory_tolerance, baseline_path=path),
            remeasure=opts.remeasure)

    def monitor_for(self, clock: Clock) -> StateMonitor | None:
        """The device-state sampler for a measured window of work timed by
        ``clock``: the host watch for host work, NVML for GPU work (None: not
        watched)."""
        if clock == "host":
            return self._host_monitor()
        return self.gpu.make_monitor() if self.gpu is not None else None

    def _measure_once(self, workload: Workload, opts: MeasureOptions, target: Target) -> Measurement:
        clock = clock_of(workload)
        monitor = self.monitor_for(clock)
        with contextlib.ExitStack() as locks:
            if self.gpu is not None:
                locks.enter_context(self.gpu.measurement_lock())
            if self._cpu_lock is not None and clock == "host":
                locks.enter_context(self._cpu_lock.hold())
            bar = self.progress(target, opts) if self.progress is not None else None
            try:
                self.last_measurement = measure(
                    workload, MeasureSettings.from_options(opts), monitor,
                    on_progress=bar.update if bar is not None else None,
                    window=measured_window(self.settings.gpu, target.id, clock))
                return self.last_measurement
            finally:
                if bar is not None:
                    bar.done("measured")

    def _host_monitor(self) -> StateMonitor | None:
        if not self.settings.watch_host:
            return None
        from pytest_trtperf.core.host_state import HostSampler

        return HostSampler()

    def _result(self, target: Target, workload: Workload, m: Measurement, fp: Fingerprint,
                identity: Mapping[str, Any], opts: MeasureOptions) -> Result:
        import numpy as np

        from pytest_trtperf.core import stats

        extra = {k: stats.summarize(v, opts.confidence) for k, v in m.extra.items() if len(v)}
        state = m.device_state if isinstance(m.device_state, DeviceState) else DeviceState(kind=workload.kind)
        if clock_of(workload) == "host" and len(m.latency_s):
            from pytest_trtperf.core.host_state import judge_window

            state = judge_window(state, opts.metric, float(np.median(m.latency_s)),
                                 saving=self.settings.baseline_mode == "update")
        return Result(
            id=target.id,
            nodeid=target.nodeid,
            name=target.name,
            kind=workload.kind,
            clock=clock_of(workload),
            mode=str(identity.get("mode", "latency")),
            latency=stats.summarize(m.latency_s, opts.confidence),
            throughput=m.throughput,
            distribution=stats.compress(m.latency_s),
            stop_reason=m.stop_reason,
            warmup_iterations=m.warmup_iterations,
            warmup_s=m.warmup_s,
            measured_s=m.wall_s,
            config_hash=config_hash(identity),
            identity=dict(identity),
            fingerprint=fp.to_dict(),
            device_class=fp.device_class,
            device_state=state,
            extra=extra,
            location=target.location,
        )
