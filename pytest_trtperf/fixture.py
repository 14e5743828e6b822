"""The ``trt_bench`` fixture object: the pytest adapter of :mod:`.runner`.

It turns what a test passes (a host callable, a CUDA-stream callable, a torch
callable, a TensorRT engine, markers) into a workload and options, hands them
to the runner, and keeps the test's results so the plugin can report them and
fail the test after it ran. The measure/judge/re-measure policy lives in the
runner, not here.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, TypeVar

import pytest

from .config import (MeasureOptions, expectation as check_expectation, inferences_per_iteration as check_inferences,
                     measurement_name, perf_overrides)
from .errors import BackendUnavailable, UsageError
from .identity import result_id
from .report import progress
from .results import Result
from .runner import RegressionCheck, Runner, Target
from .session import SessionState
from .workload import Workload
from .workloads.select import for_callable

F = TypeVar("F", bound=Callable[..., Any])


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
        #: (engine, the EngineSpec it was built from): what --trt-ab-confirm rebuilds.
        self._specs: list[tuple[Any, Any]] = []
        self._runner = Runner(state.settings, state.store, state.gpu, progress=self._measure_bar)

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
        where = f"{self._item.nodeid}: trt_bench.measure()"
        name = measurement_name(name, where=where)
        inferences_per_iteration = check_inferences(inferences_per_iteration, where=where)
        opts = self._options(overrides)
        if (shapes is not None or inputs is not None) and not hasattr(target, "__trtperf_engine__"):
            raise UsageError(f"{self._item.nodeid}: shapes= and inputs= apply to engines from trt_bench.engine(), "
                             f"not to a {type(target).__name__}")
        workload = self._resolve(target, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                                 shapes=shapes, inputs=inputs)
        return self._run(workload, name=name, opts=opts, check=self._ab_check(target, shapes, inputs, opts))

    @user_errors
    def compare(self, a: Any, b: Any, *, max_slowdown: Any = None, min_speedup: Any = None, name: str | None = None,
                timer: str = "auto", inferences_per_iteration: int = 1, shapes: Mapping[str, Any] | None = None,
                inputs: Any = None, **overrides: Any) -> Result:
        """A relative gate: measure ``a`` and ``b`` in alternating blocks in
        this process and judge the paired ratio b/a against the expectation,
        ``max_slowdown="3%"`` (b at most 3% slower than a) or
        ``min_speedup=1.5`` (b at least 1.5x faster). ``a`` and ``b`` are
        anything :meth:`measure` takes; ``timer``, ``shapes``, ``inputs`` and
        the keyword overrides apply to both. No baseline is read or written.
        """
        from .relative import Expectation, run_relative

        where = f"{self._item.nodeid}: trt_bench.compare()"
        name = measurement_name(name, where=where)
        kind, value = check_expectation(max_slowdown, min_speedup, where=where)
        inferences_per_iteration = check_inferences(inferences_per_iteration, where=where)
        opts = self._options(overrides, where=where)
        engines = [hasattr(t, "__trtperf_engine__") for t in (a, b)]
        if (shapes is not None or inputs is not None) and not any(engines):
            raise UsageError(f"{where}: shapes= and inputs= apply to engines from trt_bench.engine(), not to "
                             f"{type(a).__name__} and {type(b).__name__}")
        workloads = [self._resolve(t, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                                   shapes=shapes if is_engine else None, inputs=inputs if is_engine else None)
                     for t, is_engine in zip((a, b), engines)]
        target = self._target(name)
        result = run_relative(self._runner, workloads[0], workloads[1], target, opts, Expectation.from_config(kind, value),
                              labels=(_label(a, "a"), _label(b, "b")))
        self.results.append(result)
        return result

    @user_errors
    def __call__(self, *, name: str | None = None, shapes: Mapping[str, Any] | None = None,
                 inputs: Any = None, **overrides: Any) -> Result:
        """Build (cached) or load the engine of the test's ``trt_engine`` marker,
        then measure and judge it."""
        marker = self._item.get_closest_marker("trt_engine")
        if marker is None:
            raise UsageError(f"{self._item.nodeid}: trt_bench() needs @pytest.mark.trt_engine(onnx=... or "
                             f"engine=...) on the test; to time a callable use trt_bench.measure(fn)")
        name = measurement_name(name, where=f"{self._item.nodeid}: trt_bench()")
        opts = self._options(overrides)
        engine = self._trt().engine_from_marker(marker, where=self._item.nodeid, options=self._state.settings.trt,
                                                progress=self._progress, base_dir=self._item.path.parent)
        if opts.ab_confirm:
            from .trt.spec import EngineSpec

            self._specs.append((engine, EngineSpec.from_marker(marker, self._item.nodeid, self._item.path.parent)))
        workload = self._engine_workload(engine, shapes=shapes, inputs=inputs, opts=opts)
        return self._run(workload, name=name, opts=opts, check=self._ab_check(engine, shapes, inputs, opts))

    @user_errors
    def engine(self, onnx: str | None = None, **kwargs: Any) -> Any:
        """Build (cached) or load an engine without measuring it; pass it to
        :meth:`measure` with ``shapes=`` to time it at a given shape."""
        engine = self._trt().engine_from_kwargs(onnx=onnx, where=self._item.nodeid, options=self._state.settings.trt,
                                                progress=self._progress, rootdir=str(self._item.path.parent), **kwargs)
        if onnx is not None or kwargs.get("onnx") is not None:
            from .trt.spec import EngineSpec

            spec_kw = dict(kwargs)
            if onnx is not None:
                spec_kw["onnx" if str(onnx).lower().endswith(".onnx") else "engine"] = onnx
            self._specs.append((engine, EngineSpec.create(self._item.nodeid, self._item.path.parent, **spec_kw)))
        return engine

    # -- internals ----------------------------------------------------------
    def _options(self, overrides: Mapping[str, Any], where: str | None = None) -> MeasureOptions:
        nodeid = self._item.nodeid
        marker_kw = perf_overrides(list(self._item.iter_markers("trt_perf")), where=nodeid)
        opts = self._state.settings.measure.with_overrides(marker_kw, where=nodeid)
        return opts.with_overrides(overrides, where=where or f"{nodeid}: trt_bench.measure()")

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

    def _measure_bar(self, target: Target, opts: MeasureOptions) -> progress.Progress | None:
        """A bar on a TTY; in logs only for long measurements (>= 10 s)."""
        bar = progress.for_config(self._item.config, target.id)
        longest = opts.duration_s if opts.duration_s is not None else opts.max_time_s
        if not bar.sink.interactive and (longest < 10 or opts.iterations is not None):
            return None
        bar.phase("measuring")
        return bar

    def _resolve(self, target: Any, *, timer: str, opts: MeasureOptions, inferences_per_iteration: int,
                 shapes: Any, inputs: Any) -> Workload:
        if isinstance(target, Workload) and not callable(target):
            return target
        if hasattr(target, "__trtperf_engine__"):
            return self._engine_workload(target, shapes=shapes, inputs=inputs, opts=opts)
        return for_callable(target, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                            where=f"{self._item.nodeid}: trt_bench.measure()")

    def _engine_workload(self, engine: Any, *, shapes: Any, inputs: Any, opts: MeasureOptions) -> Workload:
        return self._trt().make_workload(engine, shapes=shapes, inputs=inputs, options=opts,
                                         profile_layers=self._state.settings.trt.profile_layers)

    def _target(self, name: str | None) -> Target:
        """Who the next result belongs to; one name per test."""
        rid = result_id(self._item.nodeid, name)
        if rid in self._ids:
            raise UsageError(f"{self._item.nodeid}: two measurements named {name!r} in one test; give each "
                             f"trt_bench.measure() / compare() call a distinct name=")
        self._ids.add(rid)
        lineno = self._item.location[1]  # 0-based, None when unknown
        return Target(id=rid, nodeid=self._item.nodeid, name=name,
                      location=(str(self._item.path), lineno + 1 if lineno is not None else 0))

    def _ab_check(self, engine: Any, shapes: Any, inputs: Any, opts: MeasureOptions) -> RegressionCheck | None:
        """The ``--trt-ab-confirm`` step for an engine built from ONNX here."""
        if not opts.ab_confirm:
            return None
        spec = next((sp for e, sp in self._specs if e is engine), None)
        if spec is None:
            return None
        from .ab_confirm import AbConfirm

        return AbConfirm(runner=self._runner, spec=spec, trt_options=self._state.settings.trt,
                         make_workload=lambda h: self._engine_workload(h, shapes=shapes, inputs=inputs, opts=opts),
                         progress=self._progress)

    def _run(self, workload: Workload, *, name: str | None, opts: MeasureOptions,
             check: RegressionCheck | None = None) -> Result:
        target = self._target(name)
        self._missing_fails[target.id] = opts.missing_baseline == "fail"
        result = self._runner.run(workload, target, opts, regression_check=check)
        self.results.append(result)
        return result

    def failures(self) -> list[str]:
        """Messages of the results that fail the test."""
        out = []
        for r in self.results:
            if r.verdict is None:
                continue
            if r.verdict.status == "regression":
                if r.relative is not None and r.relative.origin == "ab_confirm":
                    out.append(r.verdict.message)  # says itself how it was confirmed
                else:
                    out.append(r.verdict.message + (" (confirmed by a second measurement)" if r.verdict.remeasured
                                                    else ""))
            elif r.verdict.status == "missing" and self._missing_fails.get(r.id, False):
                out.append(r.verdict.message + " (--trt-missing-baseline=fail)")
        return out


def _label(target: Any, default: str) -> str:
    """A side's name in reports: the engine's file, the function's name, or
    ``a`` / ``b`` for lambdas."""
    if hasattr(target, "__trtperf_engine__"):
        from pathlib import Path

        return Path(str(getattr(target, "source", default))).name or default
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if isinstance(name, str) and name and "<lambda>" not in name:
        return name
    if not callable(target) and not isinstance(target, (str, bytes)):
        return type(target).__name__
    return default
