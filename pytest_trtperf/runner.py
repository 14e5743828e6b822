"""The run policy, free of pytest: measure -> judge -> re-measure -> verdict.

The ``trt_bench`` fixture adapts pytest to this module (markers and test
items in, results out); benchmark scripts call the same policy, so the rule
the gate study evaluates is the rule the plugin runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Mapping, Protocol, TypeVar

from .baseline import BaselineStore
from .config import MeasureOptions, MeasureSettings, Settings
from .fingerprint import Fingerprint, host_fingerprint
from .gate import judge
from .measure import Measurement, measure
from .results import DeviceState, Result, Verdict
from .identity import config_hash
from .workload import ChoosingWorkload, ProfiledWorkload, StateMonitor, Workload

R = TypeVar("R")
V = TypeVar("V")

#: A second opinion on a verdict that is still a regression after the re-measure
#: (``ab_confirm.AbConfirm``): given the set-up workload, the result, its verdict
#: and the options, a replacement (result, verdict), or None to keep them.
RegressionCheck = Callable[[Workload, Result, Verdict, MeasureOptions], "tuple[Result, Verdict] | None"]


def confirm(measure_once: Callable[[], R], judge_one: Callable[[R], V], *, is_regression: Callable[[V], bool],
            remeasure: bool, flagged: Callable[[R], bool]) -> tuple[R, V, bool]:
    """Measure and judge; a suspected regression is measured once more and the
    second measurement decides. A run flagged for throttling or a busy device
    is always measured again, even without ``remeasure``.

    Returns the deciding measurement, its verdict and whether it was a re-measure.
    """
    result = measure_once()
    verdict = judge_one(result)
    if is_regression(verdict) and (remeasure or flagged(result)):
        result = measure_once()
        return result, judge_one(result), True
    return result, verdict, False


class GpuSide(Protocol):
    """What the runner needs from the GPU part of a session (``gpu/session.py``)."""

    def clock_state(self) -> str:
        """``off``, ``sm=1980`` ... for the fingerprint."""

    def measurement_lock(self) -> ContextManager[Any]:
        """Held around each measured window (GPUs shared by xdist workers)."""

    def make_monitor(self) -> StateMonitor | None:
        """An NVML sampler for the measured window, or None without NVML."""


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


class Runner:
    """Runs one workload through the policy and returns its judged result."""

    def __init__(self, settings: Settings, store: BaselineStore, gpu: GpuSide | None = None,
                 progress: Callable[[Target, MeasureOptions], MeasureProgress | None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.gpu = gpu
        self.progress = progress

    def run(self, workload: Workload, target: Target, opts: MeasureOptions,
            regression_check: RegressionCheck | None = None) -> Result:
        """Set up, measure (twice when a regression must be confirmed), judge,
        tear down. Notes, per-layer profile and device memory come from the
        workload after measuring. ``regression_check`` may replace a verdict
        that is still a regression (``--trt-ab-confirm``)."""
        fp = self.fingerprint(workload)
        self._pass_baseline_choice(workload, target.id, fp)
        workload.setup()
        try:
            identity = {"kind": workload.kind, "mode": opts.mode if workload.kind != "host" else "latency",
                        **dict(workload.identity())}
            result, verdict, again = confirm(
                lambda: self._result(target, workload, self._measure_once(workload, opts, target), fp, identity,
                                     opts),
                lambda r: self.judge(r, opts),
                is_regression=lambda v: v.status == "regression",
                remeasure=opts.remeasure,
                flagged=lambda r: r.flagged,
            )
            if regression_check is not None and verdict.status == "regression":
                result, verdict = regression_check(workload, result, verdict, opts) or (result, verdict)
            notes = tuple(workload.notes())
            layers, memory = ((tuple(workload.layers()), workload.device_memory_bytes)
                              if isinstance(workload, ProfiledWorkload) else ((), None))
        finally:
            workload.teardown()
        return dataclasses.replace(result, verdict=dataclasses.replace(verdict, remeasured=again), notes=notes,
                                   layers=layers, device_memory_bytes=memory if isinstance(memory, int) else None)

    def fingerprint(self, workload: Workload) -> Fingerprint:
        if workload.kind == "host":
            return host_fingerprint()
        from .gpu.identity import gpu_fingerprint_for

        return gpu_fingerprint_for(workload, clocks=self.gpu.clock_state() if self.gpu is not None else "off")

    def _pass_baseline_choice(self, workload: Workload, rid: str, fp: Fingerprint) -> None:
        """A workload that chooses at setup how to time (TorchWorkload: graph
        replay or eager) gets the baseline's choice first, so that re-runs of
        unchanged code keep it (hysteresis, README "CUDA graphs and captured
        torch code")."""
        if not isinstance(workload, ChoosingWorkload) or self.settings.baseline_mode == "off":
            return
        entry = self.store.lookup(fp.device_class, rid)
        workload.use_baseline_choice(entry.timed_as if entry is not None else None)

    def judge(self, result: Result, opts: MeasureOptions) -> Verdict:
        s = self.settings
        entry = self.store.lookup(result.device_class, result.id) if s.baseline_mode == "compare" else None
        return judge(result, entry, baseline_mode=s.baseline_mode, metric=opts.metric, tolerance=opts.tolerance,
                     confidence=opts.confidence, baseline_path=str(self.store.path_for(result.device_class)))

    def _measure_once(self, workload: Workload, opts: MeasureOptions, target: Target) -> Measurement:
        monitor = self.gpu.make_monitor() if workload.kind != "host" and self.gpu is not None else None
        lock = self.gpu.measurement_lock() if self.gpu is not None else contextlib.nullcontext()
        with lock:
            bar = self.progress(target, opts) if self.progress is not None else None
            try:
                return measure(workload, MeasureSettings.from_options(opts), monitor,
                               on_progress=bar.update if bar is not None else None)
            finally:
                if bar is not None:
                    bar.done("measured")

    def _result(self, target: Target, workload: Workload, m: Measurement, fp: Fingerprint,
                identity: Mapping[str, Any], opts: MeasureOptions) -> Result:
        from . import stats

        extra = {k: stats.summarize(v, opts.confidence) for k, v in m.extra.items() if len(v)}
        state = m.device_state if isinstance(m.device_state, DeviceState) else DeviceState(kind=workload.kind)
        return Result(
            id=target.id,
            nodeid=target.nodeid,
            name=target.name,
            kind=workload.kind,
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
