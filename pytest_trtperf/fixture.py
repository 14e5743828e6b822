"""The ``trt_bench`` fixture object.

It resolves what to time (a host callable, a CUDA-stream callable, a torch
callable, a TensorRT engine), measures it through the engine-agnostic core,
judges the result against its baseline, and keeps the results of the test so
the plugin can report them and fail the test after it ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from typing import Any, Callable, Mapping, TypeVar

import pytest

from .report import progress
from . import stats
from .config import MeasureOptions, perf_overrides
from .errors import BackendUnavailable, UsageError
from .fingerprint import Fingerprint, host_fingerprint
from .gate import judge
from .measure import Measurement, MeasureSettings, measure
from .results import DeviceState, Result, Verdict
from .session import SessionState, config_hash, result_id
from .workload import Workload

F = TypeVar("F", bound=Callable[..., Any])
TIMERS = ("auto", "host", "cuda", "torch")


def user_errors(fn: F) -> F:
    """Turn our one-line errors into a failed/skipped test without a traceback
    (raised outside the ``except`` block so no exception chain is printed)."""

    @functools.wraps(fn)
    def wrapper(self: "TrtBench", *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except UsageError as e:
            failure: str | None = str(e)
            skip = None
        except BackendUnavailable as e:
            failure, skip = None, str(e)
            if self._state.settings.require_gpu:
                failure, skip = f"{skip} (--trt-require-gpu)", None
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        _skip_at_test(str(skip))

    return wrapper  # type: ignore[return-value]


def _skip_at_test(reason: str) -> None:
    """Skip, reported at the test's location rather than inside the plugin."""
    try:
        exc = pytest.skip.Exception(reason, allow_module_level=False, _use_item_location=True)  # type: ignore[call-arg]
    except TypeError:  # pragma: no cover - pytest without the private flag
        pytest.skip(reason)
    raise exc


class TrtBench:
    """What a test gets as ``trt_bench``."""

    def __init__(self, item: pytest.Item, state: SessionState) -> None:
        self._item = item
        self._state = state
        self.results: list[Result] = []
        self._ids: set[str] = set()
        self._missing_fails: dict[str, bool] = {}
        self._prog: progress.Progress | None = None

    # -- public API ---------------------------------------------------------
    @user_errors
    def measure(self, target: Any, *, name: str | None = None, timer: str = "auto",
                inferences_per_iteration: int = 1, shapes: Mapping[str, Any] | None = None,
                inputs: Any = None, **overrides: Any) -> Result:
        """Time ``target`` and judge it against its baseline.

        ``target`` is a :class:`~pytest_trtperf.workload.Workload`, an engine
        from :meth:`engine`, or a callable: timed with the host clock
        (``timer="host"``), on a CUDA stream (``timer="cuda"``; the callable
        takes the stream handle), or on torch's current stream
        (``timer="torch"``). ``"auto"`` picks CUDA for a one-argument
        callable and the host clock otherwise; when the callable leaves torch
        GPU work running on return, the host clock waits for the GPU after each
        call (end-to-end time, with a note suggesting ``timer="torch"``).
        Keyword overrides take the ``trt_perf``
        marker's arguments (``tolerance="3%"``, ``metric="p99"``, ...).
        ``shapes`` and ``inputs`` apply to engines: the input shapes to run at
        (within the engine's profile) and the data to feed.
        """
        opts = self._options(overrides)
        if (shapes is not None or inputs is not None) and not hasattr(target, "__trtperf_engine__"):
            raise UsageError(f"{self._item.nodeid}: shapes= and inputs= apply to engines from trt_bench.engine(), "
                             f"not to a {type(target).__name__}")
        workload = self._resolve(target, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                                 shapes=shapes, inputs=inputs)
        return self._run(workload, name=name, opts=opts)

    @user_errors
    def __call__(self, *, name: str | None = None, shapes: Mapping[str, Any] | None = None,
                 inputs: Any = None, **overrides: Any) -> Result:
        """Build (cached) or load the engine of the test's ``trt_engine`` marker,
        then measure and judge it."""
        marker = self._item.get_closest_marker("trt_engine")
        if marker is None:
            raise UsageError(f"{self._item.nodeid}: trt_bench() needs @pytest.mark.trt_engine(onnx=... or "
                             f"engine=...) on the test; to time a callable use trt_bench.measure(fn)")
        opts = self._options(overrides)
        engine = self._trt().engine_from_marker(marker, where=self._item.nodeid, progress=self._progress,
                                                base_dir=self._item.path.parent)
        workload = self._trt().make_workload(engine, shapes=shapes, inputs=inputs, options=opts)
        return self._run(workload, name=name, opts=opts)

    @user_errors
    def engine(self, onnx: str | None = None, **kwargs: Any) -> Any:
        """Build (cached) or load an engine without measuring it; pass it to
        :meth:`measure` with ``shapes=`` to time it at a given shape."""
        return self._trt().engine_from_kwargs(onnx=onnx, where=self._item.nodeid, progress=self._progress,
                                              rootdir=str(self._item.path.parent), **kwargs)

    # -- internals ----------------------------------------------------------
    def _options(self, overrides: Mapping[str, Any]) -> MeasureOptions:
        where = self._item.nodeid
        marker_kw = perf_overrides(list(self._item.iter_markers("trt_perf")), where=where)
        opts = self._state.settings.measure.with_overrides(marker_kw, where=where)
        return opts.with_overrides(overrides, where=f"{where}: trt_bench.measure()")

    def _trt(self) -> Any:
        try:
            from .trt import api
        except ImportError as e:  # pragma: no cover - only while trt/ is absent
            raise BackendUnavailable(f"TensorRT support is not available ({e})") from None
        return api

    def _progress(self, text: str) -> None:
        """One line per engine-build phase in logs, a status line on a TTY."""
        if self._prog is None:
            self._prog = progress.for_config(self._item.config, "")
        self._prog.phase(text)

    def _measure_bar(self, rid: str, opts: MeasureOptions) -> progress.Progress | None:
        """A bar on a TTY; in logs only for long measurements (>= 10 s)."""
        bar = progress.for_config(self._item.config, rid)
        longest = opts.duration_s if opts.duration_s is not None else opts.max_time_s
        if not bar.sink.interactive and (longest < 10 or opts.iterations is not None):
            return None
        bar.phase("measuring")
        return bar

    def _resolve(self, target: Any, *, timer: str, opts: MeasureOptions, inferences_per_iteration: int,
                 shapes: Any, inputs: Any) -> Workload:
        if timer not in TIMERS:
            raise UsageError(f"{self._item.nodeid}: timer={timer!r} is not one of {', '.join(TIMERS)}")
        if isinstance(target, Workload) and not callable(target):
            return target
        if hasattr(target, "__trtperf_engine__"):
            return self._trt().make_workload(target, shapes=shapes, inputs=inputs, options=opts)
        if not callable(target):
            raise UsageError(f"{self._item.nodeid}: trt_bench.measure() needs a callable, a Workload or an "
                             f"engine, got {type(target).__name__}")
        if timer == "auto":
            timer = "cuda" if _takes_stream(target) else "host"
            if timer == "host" and _enqueues_torch_gpu_work(target):
                # The callable leaves torch GPU work running when it returns: time
                # it end to end (host clock + synchronize) so it is never too short.
                import torch

                from .workloads.host import HostWorkload

                return HostWorkload(target, inferences_per_iteration=inferences_per_iteration,
                                    sync=torch.cuda.synchronize, sync_name="torch.cuda.synchronize")
        if timer == "host":
            from .workloads.host import HostWorkload

            return HostWorkload(target, inferences_per_iteration=inferences_per_iteration)
        gpu_kw = dict(mode=opts.mode, streams=opts.streams, cuda_graph=opts.cuda_graph,
                      blocking_sync=opts.blocking_sync, inferences_per_iteration=inferences_per_iteration)
        if timer == "cuda":
            from .workloads.cuda import CudaWorkload

            return CudaWorkload(target, **gpu_kw)
        from .workloads.torch import TorchWorkload

        return TorchWorkload(target, **gpu_kw)

    def _fingerprint(self, workload: Workload) -> Fingerprint:
        if workload.kind == "host":
            return host_fingerprint()
        from .gpu.identity import gpu_fingerprint_for

        return gpu_fingerprint_for(workload, clocks=self._state.clock_state())

    def _pass_baseline_choice(self, workload: Workload, rid: str, fp: Fingerprint) -> None:
        """A workload that chooses at setup how to time (TorchWorkload: graph
        replay or eager) gets the baseline's choice first, so that re-runs of
        unchanged code keep it (hysteresis, README "CUDA graphs and captured
        torch code")."""
        use = getattr(workload, "use_baseline_choice", None)
        if use is None or self._state.settings.baseline_mode == "off":
            return
        entry = self._state.store.lookup(fp.device_class, rid)
        use(entry.timed_as if entry is not None else None)

    def _measure_once(self, workload: Workload, opts: MeasureOptions, rid: str = "") -> Measurement:
        monitor = None
        if workload.kind != "host" and self._state.monitor_factory is not None:
            monitor = self._state.monitor_factory()
        lock = self._state.measurement_lock() if self._state.measurement_lock else contextlib.nullcontext()
        with lock:
            bar = self._measure_bar(rid, opts)
            try:
                return measure(workload, MeasureSettings.from_options(opts), monitor,
                               on_progress=bar.update if bar is not None else None)
            finally:
                if bar is not None:
                    bar.done("measured")

    def _run(self, workload: Workload, *, name: str | None, opts: MeasureOptions) -> Result:
        rid = result_id(self._item.nodeid, name)
        if rid in self._ids:
            raise UsageError(f"{self._item.nodeid}: two measurements named {name!r} in one test; give each "
                             f"trt_bench.measure() call a distinct name=")
        self._ids.add(rid)
        self._missing_fails[rid] = opts.missing_baseline == "fail"
        fp = self._fingerprint(workload)
        self._pass_baseline_choice(workload, rid, fp)
        workload.setup()
        try:
            identity = {"kind": workload.kind, "mode": opts.mode if workload.kind != "host" else "latency",
                        **dict(workload.identity())}
            result = self._build(rid, name, workload, self._measure_once(workload, opts, rid), fp, identity, opts)
            verdict = self._judge(result, opts)
            if verdict.status == "regression" and (opts.remeasure or result.flagged):
                # Confirm before crying wolf: a fresh measurement decides. A run
                # flagged for throttling or a busy GPU is always re-measured.
                result = self._build(rid, name, workload, self._measure_once(workload, opts, rid), fp, identity, opts)
                verdict = dataclasses.replace(self._judge(result, opts), remeasured=True)
            notes = tuple(workload.notes())
            # TensorRT workloads: per-layer profile and the engine's device memory.
            layers = tuple(getattr(workload, "layers", lambda: ())() or ())
            memory = getattr(workload, "device_memory_bytes", None)
        finally:
            workload.teardown()
        result = dataclasses.replace(result, verdict=verdict, notes=notes, layers=layers,
                                     device_memory_bytes=memory if isinstance(memory, int) else None)
        self.results.append(result)
        return result

    def _build(self, rid: str, name: str | None, workload: Workload, m: Measurement, fp: Fingerprint,
               identity: Mapping[str, Any], opts: MeasureOptions) -> Result:
        extra = {k: stats.summarize(v, opts.confidence) for k, v in m.extra.items() if len(v)}
        state = m.device_state if isinstance(m.device_state, DeviceState) else DeviceState(kind=workload.kind)
        path = str(self._item.path)
        lineno = self._item.location[1]  # 0-based, None when unknown
        line = lineno + 1 if lineno is not None else 0
        return Result(
            id=rid,
            nodeid=self._item.nodeid,
            name=name,
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
            location=(path, line),
        )

    def _judge(self, result: Result, opts: MeasureOptions) -> Verdict:
        s = self._state.settings
        entry = None
        if s.baseline_mode == "compare":
            entry = self._state.store.lookup(result.device_class, result.id)
        return judge(result, entry, baseline_mode=s.baseline_mode, metric=opts.metric, tolerance=opts.tolerance,
                     confidence=opts.confidence, baseline_path=str(self._state.store.path_for(result.device_class)))

    def failures(self) -> list[str]:
        """Messages of the results that fail the test."""
        out = []
        for r in self.results:
            if r.verdict is None:
                continue
            if r.verdict.status == "regression":
                out.append(r.verdict.message + (" (confirmed by a second measurement)" if r.verdict.remeasured else ""))
            elif r.verdict.status == "missing" and self._missing_fails.get(r.id, False):
                out.append(r.verdict.message + " (--trt-missing-baseline=fail)")
        return out


def _takes_stream(fn: Any) -> bool:
    """True for ``lambda stream: ...``: exactly one required positional parameter."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(required) == 1 and not any(p.kind == p.VAR_POSITIONAL for p in params)


def _enqueues_torch_gpu_work(fn: Any, probes: int = 3) -> bool:
    """Does ``fn()`` return while GPU work it enqueued on torch's current
    stream is still running? Only asked once torch has initialised CUDA; a
    pure host function leaves the stream idle."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_initialized():
            return False
        stream = torch.cuda.current_stream()
        for _ in range(probes):
            torch.cuda.synchronize()
            fn()
            if not stream.query():
                return True
        return False
    except Exception:  # noqa: BLE001 - any torch oddity means "not torch"
        return False
