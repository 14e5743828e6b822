"""The ``trt_bench`` fixture object: the pytest adapter of :mod:`.runner`.

It turns what a test passes (a host callable, a CUDA-stream callable, a torch
callable, a TensorRT engine, markers) into a workload and options, hands them
to the runner, and keeps the test's results so the plugin can report them and
fail the test after it ran. The measure/judge/re-measure policy lives in the
runner, not here.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Callable, Mapping

import pytest

from pytest_trtperf.core.config import MeasureOptions, escape_text, expectation as check_expectation, extra_info as check_extra_info, inferences_per_iteration as check_inferences, measurement_name, perf_overrides
from pytest_trtperf.core.errors import BackendUnavailable, UsageError, cause_first
from pytest_trtperf.core.identity import result_id
from pytest_trtperf.report import progress
from pytest_trtperf.report.aids import ResultAids
from pytest_trtperf.core.formatting import log_safe, message_safe
from pytest_trtperf.core.results import Result
from pytest_trtperf.pipeline.runner import Labels, RegressionCheck, Runner, StandIn, Target
from pytest_trtperf.plugin.session import SessionState
from pytest_trtperf.core.workload import Workload, clock_of
from pytest_trtperf.workloads.select import for_callable

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn our one-line errors into a failed/skipped test without a traceback
    (raised outside the ``except`` block so no exception chain is printed)."""

    @functools.wraps(fn)
    def wrapper(self: TrtBench, *args: Any, **kwargs: Any) -> Any:
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
            pytest.fail(log_safe(cause_first(failure, self._item.nodeid), multiline=True), pytrace=False)
        _skip_at_test(log_safe(str(skip), multiline=True))

    return wrapper  # type: ignore[return-value]  # the wrapper has fn's signature; Callable[..., Any] cannot say so


def _skip_at_test(reason: str) -> None:
    """Skip, reported at the test's location rather than inside the plugin."""
    try:
        exc = pytest.skip.Exception(reason, allow_module_level=False, _use_item_location=True)  # type: ignore[call-arg]  # private pytest flag, absent from its stubs
    except TypeError:  # pragma: no cover - pytest without the private flag
        pytest.skip(reason)
    raise exc


class TrtBench:
    """What a test gets as ``trt_bench``."""

    def __init__(self, item: pytest.Item, state: SessionState) -> None:
        self._item = item
        self._state = state
        #: Context for every result of this test (pytest-benchmark's
        #: ``benchmark.extra_info``): JSON data, read when the test ends, so
        #: keys set after a measurement count too. A measurement's own
        #: ``extra_info=`` wins for its keys.
        self.extra_info: dict[str, Any] = {}
        self.results: list[Result] = []
        self._ids: set[str] = set()
        self._opts: dict[str, MeasureOptions] = {}
        #: Each measurement's own ``extra_info=`` (wins over the fixture's).
        self._own_info: dict[str, dict[str, Any]] = {}
        self._prog: progress.Progress | None = None
        #: (engine, the EngineSpec it was built from): what --trt-ab-confirm rebuilds.
        self._specs: list[tuple[Any, Any]] = []
        #: (result id, why) of each serve() call that missed its SLO at the stated rate.
        self._slo_missed: list[tuple[str, str]] = []
        self._aids = ResultAids(state.settings, Path(str(item.config.invocation_params.dir)),
                                xdist=item.config.pluginmanager.hasplugin("xdist"))
        self._runner = Runner(state.settings, state.store, state.gpu, progress=self._measure_bar,
                              workers=state.xdist_workers, aids=self._aids, stand_in=self._stand_in())

    # -- public API ---------------------------------------------------------
    @user_errors
    def measure(self, target: Any, *args: Any, kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                timer: str = "auto", inferences_per_iteration: int = 1, shapes: Mapping[str, Any] | None = None,
                inputs: Any = None, extra_info: Mapping[str, Any] | None = None, **overrides: Any) -> Result:
        """Time ``target`` and judge it against its baseline.

        ``target`` is a :class:`~pytest_trtperf.core.workload.Workload`, an engine
        from :meth:`engine`, or a callable: timed with the host clock
        (``timer="host"``), on a CUDA stream (``timer="cuda"``; the callable
        takes the stream handle), or on torch's current stream
        (``timer="torch"``). ``"auto"`` picks CUDA for a one-argument
        callable measured without arguments and the host clock otherwise;
        when the callable leaves torch GPU work running on return, the host
        clock waits for the GPU after each call (end-to-end time, with a note
        suggesting ``timer="torch"``).

        Positional arguments after ``target`` are passed to the callable
        (after the stream handle for ``timer="cuda"``); its keyword arguments
        go in ``kwargs={...}``, because keyword arguments of ``measure`` are
        its own: the ``trt_perf`` marker's arguments (``tolerance="3%"``,
        ``metric="p99"``, ``group=``, ...), ``name``, ``timer``, ``extra_info``.
        ``result.return_value`` is what the callable returned on its last call.
        ``shapes`` and ``inputs`` apply to engines: the input shapes to run at
        (within the engine's profile) and the data to feed.
        """
        where = f"{self._item.nodeid}: trt_bench.measure()"
        name = measurement_name(name, where=where)
        inferences_per_iteration = check_inferences(inferences_per_iteration, where=where)
        info = check_extra_info(extra_info, where=where)
        opts = self._options(overrides)
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise UsageError(f"{where}: kwargs={type(kwargs).__name__} must be a dict of keyword arguments for "
                             f"the callable")
        if (shapes is not None or inputs is not None) and not hasattr(target, "__trtperf_engine__"):
            raise UsageError(f"{self._item.nodeid}: shapes= and inputs= apply to engines from trt_bench.engine(), "
                             f"not to a {type(target).__name__}")
        if (args or kwargs) and (hasattr(target, "__trtperf_engine__")
                                 or (isinstance(target, Workload) and not callable(target))):
            raise UsageError(f"{where}: arguments are passed to a callable; a {type(target).__name__} takes none "
                             f"(engines take shapes= and inputs=)")
        workload = self._resolve(target, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                                 shapes=shapes, inputs=inputs, args=args, kwargs=kwargs)
        return self._run(workload, name=name, opts=opts, extra_info=info,
                         check=self._ab_check(target, shapes, inputs, opts))

    @user_errors
    def compare(self, a: Any, b: Any, *, max_slowdown: Any = None, min_speedup: Any = None, name: str | None = None,
                timer: str = "auto", inferences_per_iteration: int = 1, shapes: Mapping[str, Any] | None = None,
                inputs: Any = None, extra_info: Mapping[str, Any] | None = None, serve: Mapping[str, Any] | None = None,
                **overrides: Any) -> Result:
        """A relative gate: measure ``a`` and ``b`` in alternating blocks in
        this process and judge the paired ratio b/a against the expectation,
        ``max_slowdown="3%"`` (b at most 3% slower than a) or
        ``min_speedup=1.5`` (b at least 1.5x faster). ``a`` and ``b`` are
        anything :meth:`measure` takes; ``timer``, ``shapes``, ``inputs`` and
        the keyword overrides apply to both. No baseline is read or written.
        With ``serve={"rate": ..., ...}`` (the :meth:`serve` arguments, plus
        ``pairs``) the blocks are open-loop runs on the same schedule and the
        ratio is of the SLO's percentile (p99 without an SLO).
        """
        from pytest_trtperf.relative.policy import Expectation, measure_relative

        where = f"{self._item.nodeid}: trt_bench.compare()"
        name = measurement_name(name, where=where)
        kind, value = check_expectation(max_slowdown, min_speedup, where=where)
        inferences_per_iteration = check_inferences(inferences_per_iteration, where=where)
        info = check_extra_info(extra_info, where=where)
        opts = self._options(overrides, where=where)
        if serve is not None:
            return self._compare_served(a, b, serve, Expectation.from_config(kind, value), name=name, timer=timer,
                                        shapes=shapes, inputs=inputs, opts=opts, info=info, where=where)
        engines = [hasattr(t, "__trtperf_engine__") for t in (a, b)]
        if (shapes is not None or inputs is not None) and not any(engines):
            raise UsageError(f"{where}: shapes= and inputs= apply to engines from trt_bench.engine(), not to "
                             f"{type(a).__name__} and {type(b).__name__}")
        workloads = [self._resolve(t, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                                   shapes=shapes if is_engine else None, inputs=inputs if is_engine else None)
                     for t, is_engine in zip((a, b), engines, strict=False)]
        target = self._target(name, opts, info)
        labels = Labels(group=opts.group, extra_info={**self._shared_info(), **info}, params=self._params())
        done = measure_relative(self._runner, workloads[0], workloads[1], target, opts,
                                Expectation.from_config(kind, value), sides=(_label(a, "a"), _label(b, "b")),
                                labels=labels)
        if done.reported:
            self.results.append(done.result)
        return done.result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``trt_bench(fn, *args, **kwargs)``: pytest-benchmark's
        ``benchmark(fn, ...)``: measure and judge ``fn(*args, **kwargs)``
        (every keyword goes to ``fn``) and return what it returned.
        ``trt_bench(name=..., shapes=..., ...)`` without a callable: build or
        load the engine of the test's ``trt_engine`` marker, measure and judge
        it, and return the ``Result``."""
        if args:
            return self.benchmark(args[0], args[1:], kwargs)
        return self._engine_call(**kwargs)

    @user_errors
    def benchmark(self, fn: Any, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None, *,
                  overrides: Mapping[str, Any] | None = None) -> Any:
        """``trt_bench(fn, *args, **kwargs)`` with the arguments as given
        (``overrides``: ``trt_perf`` arguments, from ``@pytest.mark.benchmark``
        under ``--trt-benchmark-compat``). Returns ``fn``'s last value."""
        where = f"{self._item.nodeid}: trt_bench(fn, ...)"
        if not callable(fn) or hasattr(fn, "__trtperf_engine__") or isinstance(fn, Workload):
            raise UsageError(f"{where}: needs a callable, got {type(fn).__name__}; time engines and workloads with "
                             f"trt_bench.measure(...)")
        opts = self._options(dict(overrides or {}), where=where)
        workload = for_callable(fn, opts=opts, where=where, args=args, kwargs=kwargs)
        return self._run(workload, name=None, opts=opts, extra_info={},
                         check=self._ab_check(None, None, None, opts)).return_value

    @user_errors
    def pedantic(self, target: Any, args: Any = (), kwargs: Mapping[str, Any] | None = None,
                 setup: Any = None, teardown: Any = None, rounds: Any = 1, warmup_rounds: Any = 0,
                 iterations: Any = 1, *, overrides: Mapping[str, Any] | None = None) -> Any:
        """pytest-benchmark's ``benchmark.pedantic``: ``rounds`` timed rounds
        of ``iterations`` calls each after ``warmup_rounds`` untimed ones;
        ``setup()`` before each round (untimed; it may return ``(args,
        kwargs)``), ``teardown(*args, **kwargs)`` after it. Returns what
        ``target`` returned last. Measured, baselined and gated like
        :meth:`measure`; the rounds are the samples."""
        from pytest_trtperf.core.config import pedantic_options
        from pytest_trtperf.workloads.rounds import RoundsWorkload

        where = f"{self._item.nodeid}: trt_bench.pedantic()"
        for label, fn in (("target", target), ("setup", setup), ("teardown", teardown)):
            if (fn is not None or label == "target") and not callable(fn):
                raise UsageError(f"{where}: {label} must be callable, got {type(fn).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise UsageError(f"{where}: kwargs={type(kwargs).__name__} must be a dict")
        opts, calls = pedantic_options(self._options(dict(overrides or {}), where=where), rounds=rounds,
                                       warmup_rounds=warmup_rounds, iterations=iterations,
                                       has_setup=setup is not None, where=where)
        workload = RoundsWorkload(target, args=tuple(args or ()), kwargs=dict(kwargs or {}), setup=setup,
                                  teardown=teardown, iterations=calls, rounds=opts.iterations or 1, where=where)
        return self._run(workload, name=None, opts=opts, extra_info={},
                         check=self._ab_check(None, None, None, opts)).return_value

    @user_errors
    def _engine_call(self, *, name: str | None = None, shapes: Mapping[str, Any] | None = None,
                     inputs: Any = None, extra_info: Mapping[str, Any] | None = None, **overrides: Any) -> Result:
        """Build (cached) or load the engine of the test's ``trt_engine`` marker,
        then measure and judge it."""
        marker = self._item.get_closest_marker("trt_engine")
        if marker is None:
            raise UsageError(f"{self._item.nodeid}: trt_bench() needs @pytest.mark.trt_engine(onnx=... or "
                             f"engine=...) on the test; to time a callable use trt_bench(fn) or trt_bench.measure(fn)")
        name = measurement_name(name, where=f"{self._item.nodeid}: trt_bench()")
        info = check_extra_info(extra_info, where=f"{self._item.nodeid}: trt_bench()")
        opts = self._options(overrides)
        engine = self._trt().engine_from_marker(marker, where=self._item.nodeid, options=self._state.settings.trt,
                                                progress=self._progress, base_dir=self._item.path.parent)
        if opts.ab_confirm:
            from pytest_trtperf.trt.spec import EngineSpec

            self._specs.append((engine, EngineSpec.from_marker(marker, self._item.nodeid, self._item.path.parent)))
        workload = self._engine_workload(engine, shapes=shapes, inputs=inputs, opts=opts)
        return self._run(workload, name=name, opts=opts, extra_info=info,
                         check=self._ab_check(engine, shapes, inputs, opts))

    @user_errors
    def serve(self, target: Any = None, *args: Any, kwargs: Mapping[str, Any] | None = None, name: str | None = None,
              timer: str = "auto", shapes: Mapping[str, Any] | None = None, inputs: Any = None,
              extra_info: Mapping[str, Any] | None = None, **options: Any) -> Result:
        """Latency under load: send requests to ``target`` on an open-loop
        schedule and judge the latency at the stated rate (and, with an SLO,
        the highest rate that meets it) against the baselines.

        ``target`` is a callable (as :meth:`measure` takes it; one execution
        slot per ``concurrency``: host threads, or one stream each for torch
        and stream callables), an engine from :meth:`engine` (one execution
        context per slot, each on its own stream), or None for the engine of
        the test's ``trt_engine`` marker. Serve keywords: ``rate=`` (requests
        per second, required), ``concurrency=`` (slots, default 1),
        ``arrivals=`` ("poisson", "constant" or a trace of arrival times in
        seconds), ``duration=`` (s per rate, default 5), ``warmup=`` (s run
        first and not counted, default 20% of duration), ``slo=`` ("p99<20ms"),
        ``seed=``, ``search=`` (default: on with an SLO), ``search_time=``,
        ``precision=``; defaults come from ``@pytest.mark.trt_serve``. Other
        keywords are ``trt_perf`` options (``tolerance=``, ...).
        """
        from pytest_trtperf.core.config import SERVE_ARGS, serve_overrides, serve_plan
        from pytest_trtperf.load.metrics import sustainable_name
        from pytest_trtperf.pipeline.serve import measure_served

        where = f"{self._item.nodeid}: trt_bench.serve()"
        name = measurement_name(name, where=where)
        info = check_extra_info(extra_info, where=where)
        marker_args = serve_overrides(list(self._item.iter_markers("trt_serve")), where=self._item.nodeid)
        plan = serve_plan({**marker_args, **{k: v for k, v in options.items() if k in SERVE_ARGS}}, where=where)
        opts = self._options({k: v for k, v in options.items() if k not in SERVE_ARGS}, where=where)
        slots = self._slots(target, args, kwargs, timer=timer, shapes=shapes, inputs=inputs, opts=opts,
                            count=plan.concurrency, where=where)
        first = self._target(name, opts, info)
        second = self._target(sustainable_name(name), opts, info) if plan.search else None
        if self._state.server is not None:  # a reference process (--trt-ab): served block by block, not judged
            from pytest_trtperf.relative.serve_pairs import serve_as_reference

            return serve_as_reference(self._state.server, slots, plan, first,
                                      fingerprint=self._runner.fingerprint(slots), opts=opts)
        labels = Labels(group=opts.group, extra_info={**self._shared_info(), **info}, params=self._params())
        trip = measure_served(self._runner, slots, first, second, plan, opts, labels,
                              serve_fn=lambda: self._served(slots, first, second, plan, opts,
                                                          label=name or self._item.name))
        if trip.reported:
            self.results.extend(trip.results)
        if trip.slo_missed is not None:
            self._slo_missed.append((first.id, trip.slo_missed))
        return trip.results[0]

    def _served(self, slots: Any, first: Target, second: Target | None, plan: Any, opts: MeasureOptions, *,
                label: str) -> Any:
        """Served and judged: side by side under ``--trt-ab=REV`` (``relative.serve_pairs``), else on the
        baseline file (a regression or a busy window confirmed side by side under ``--trt-ab=baseline``)."""
        from pytest_trtperf.pipeline.serve import serve as serve_gated

        ab = self._state.settings.ab
        if ab.every_test:
            from pytest_trtperf.relative.serve_pairs import SideBySideServe

            return SideBySideServe(self._runner, self._state.references(), ab.rev).run(
                slots, first, second, plan, opts, label=label)
        served = serve_gated(self._runner, slots, first, second, plan, opts)
        if ab.confirm and self._state.settings.baseline_mode == "compare":
            from pytest_trtperf.relative.serve_pairs import SideBySideServeConfirm

            served = SideBySideServeConfirm(self._runner, self._state.references(), label)(
                served, slots, first, plan, opts)
        return served

    def _compare_served(self, a: Any, b: Any, serve: Mapping[str, Any], expectation: Any, *, name: str | None,
                        timer: str, shapes: Any, inputs: Any, opts: MeasureOptions, info: Mapping[str, Any],
                        where: str) -> Result:
        """``compare(a, b, serve={...})``: both sides served in alternating blocks (``load.relative``)."""
        from pytest_trtperf.core.config import parse_number, serve_overrides, serve_plan
        from pytest_trtperf.relative.load import DEFAULT_PAIRS, measure_served_pair

        if not isinstance(serve, Mapping):
            raise UsageError(f"{where}: serve={type(serve).__name__} must be a dict of serve arguments, e.g. "
                             f"serve={{\"rate\": 200, \"slo\": \"p99<20ms\"}}")
        args = {**serve_overrides(list(self._item.iter_markers("trt_serve")), where=self._item.nodeid), **serve}
        pairs = int(parse_number(args.pop("pairs", DEFAULT_PAIRS), what=f"{where}: serve pairs", low=3, high=1000,
                                 integer=True))
        plan = dataclasses.replace(serve_plan(args, where=where), search=False)
        sides = [self._slots(t, (), None, timer=timer, shapes=shapes, inputs=inputs, opts=opts,
                             count=plan.concurrency, where=where) for t in (a, b)]
        if clock_of(sides[0]) != clock_of(sides[1]):
            raise UsageError(f"{where}: a is served as {sides[0].kind} and b as {sides[1].kind}; serve both on the "
                             f"host or both on the GPU")
        target = self._target(name, opts, info)
        labels = Labels(group=opts.group, extra_info={**self._shared_info(), **info}, params=self._params())
        done = measure_served_pair(self._runner, sides[0], sides[1], target, plan, opts, expectation,
                                   sides=(_label(a, "a"), _label(b, "b")), pairs=pairs, labels=labels)
        if done.reported:
            self.results.append(done.result)
        return done.result

    def _slots(self, target: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any] | None, *, timer: str,
               shapes: Any, inputs: Any, opts: MeasureOptions, count: int, where: str) -> Any:
        """The execution slots for a serve target (``load.slots``)."""
        from pytest_trtperf.load import slots

        engine = target
        if target is None:
            marker = self._item.get_closest_marker("trt_engine")
            if marker is None:
                raise UsageError(f"{where}: needs a target (a callable or an engine) or @pytest.mark.trt_engine on "
                                 f"the test")
            engine = self._trt().engine_from_marker(marker, where=self._item.nodeid, options=self._state.settings.trt,
                                                    progress=self._progress, base_dir=self._item.path.parent)
        if hasattr(engine, "__trtperf_engine__"):
            if args or kwargs:
                raise UsageError(f"{where}: an engine takes no arguments (it takes shapes= and inputs=)")
            from pytest_trtperf.workloads.tensorrt import make_workload

            workload = make_workload(engine, shapes=shapes, inputs=inputs, options=opts, mode="throughput",
                                     streams=count, cuda_graph=False)
            return slots.EngineSlots(workload, count)
        if shapes is not None or inputs is not None:
            raise UsageError(f"{where}: shapes= and inputs= apply to engines, not to a {type(target).__name__}")
        return slots.for_callable(target, timer=timer, count=count, args=args, kwargs=kwargs, where=where)

    @user_errors
    def engine(self, onnx: str | None = None, **kwargs: Any) -> Any:
        """Build (cached) or load an engine without measuring it; pass it to
        :meth:`measure` with ``shapes=`` to time it at a given shape."""
        engine = self._trt().engine_from_kwargs(onnx=onnx, where=self._item.nodeid, options=self._state.settings.trt,
                                                progress=self._progress, rootdir=str(self._item.path.parent), **kwargs)
        if onnx is not None or kwargs.get("onnx") is not None:
            from pytest_trtperf.trt.spec import EngineSpec

            spec_kw = dict(kwargs)
            if onnx is not None:
                spec_kw["onnx" if str(onnx).lower().endswith(".onnx") else "engine"] = onnx
            self._specs.append((engine, EngineSpec.create(self._item.nodeid, self._item.path.parent, **spec_kw)))
        return engine

    def add_notes(self, notes: tuple[str, ...]) -> None:
        """Notes for the last result (what a ``@pytest.mark.benchmark``
        argument had nothing to set)."""
        if notes and self.results:
            last = self.results[-1]
            self.results[-1] = dataclasses.replace(last, notes=(*last.notes, *notes))

    # -- internals ----------------------------------------------------------
    def _options(self, overrides: Mapping[str, Any], where: str | None = None) -> MeasureOptions:
        nodeid = self._item.nodeid
        marker_kw = perf_overrides(list(self._item.iter_markers("trt_perf")), where=nodeid)
        opts = self._state.settings.measure.with_overrides(marker_kw, where=nodeid)
        return opts.with_overrides(overrides, where=where or f"{nodeid}: trt_bench.measure()")

    def _trt(self) -> Any:
        try:
            from pytest_trtperf.trt import api
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
                 shapes: Any, inputs: Any, args: tuple[Any, ...] = (),
                 kwargs: Mapping[str, Any] | None = None) -> Workload:
        if isinstance(target, Workload) and not callable(target):
            return target
        if hasattr(target, "__trtperf_engine__"):
            return self._engine_workload(target, shapes=shapes, inputs=inputs, opts=opts)
        return for_callable(target, timer=timer, opts=opts, inferences_per_iteration=inferences_per_iteration,
                            where=f"{self._item.nodeid}: trt_bench.measure()", args=args, kwargs=kwargs)

    def _engine_workload(self, engine: Any, *, shapes: Any, inputs: Any, opts: MeasureOptions) -> Workload:
        from pytest_trtperf.workloads.tensorrt import make_workload

        return make_workload(engine, shapes=shapes, inputs=inputs, options=opts,
                                         profile_layers=self._state.settings.trt.profile_layers,
                                         keep_layer_info=self._state.settings.export_dir is not None)

    def _target(self, name: str | None, opts: MeasureOptions, extra_info: Mapping[str, Any]) -> Target:
        """Who the next result belongs to (one name per test); remembers the
        result's options and its own ``extra_info``."""
        rid = result_id(self._item.nodeid, name)
        if rid in self._ids:
            which = f"named {name!r}" if name else "without a name"
            raise UsageError(f"{self._item.nodeid}: two measurements {which} in one test; give each "
                             f"trt_bench.measure() / compare() call a distinct name=")
        self._ids.add(rid)
        self._opts[rid] = opts
        self._own_info[rid] = dict(extra_info)
        lineno = self._item.location[1]  # 0-based, None when unknown
        return Target(id=rid, nodeid=self._item.nodeid, name=name,
                      location=(str(self._item.path), lineno + 1 if lineno is not None else 0))

    def _shared_info(self) -> dict[str, Any]:
        """``trt_bench.extra_info`` as it is now, checked (a bad value costs one
        line before measuring, not a measurement)."""
        return check_extra_info(self.extra_info, where=self._item.nodeid, what="trt_bench.extra_info")

    def _ab_check(self, engine: Any, shapes: Any, inputs: Any, opts: MeasureOptions) -> RegressionCheck | None:
        """The ``--trt-ab-confirm`` step for an engine built from ONNX here
        (in process: cheaper than a second process); otherwise, in baseline
        compare mode (unless ``--trt-ab=off``), the side-by-side confirmation
        against the baseline entry's commit (nothing starts until a verdict
        needs it)."""
        spec = next((sp for e, sp in self._specs if e is engine), None) if opts.ab_confirm else None
        if spec is None:
            settings = self._state.settings
            if not settings.ab.confirm or settings.baseline_mode != "compare":
                return None
            from pytest_trtperf.relative.side_by_side import SideBySideConfirm

            return SideBySideConfirm(self._runner, self._state.references(), label=self._item.name,
                                     rootdir=settings.rootdir)
        from pytest_trtperf.relative.ab_confirm import AbConfirm

        return AbConfirm(runner=self._runner, spec=spec, trt_options=self._state.settings.trt,
                         make_workload=lambda h: self._engine_workload(h, shapes=shapes, inputs=inputs, opts=opts),
                         progress=self._progress)

    def _stand_in(self) -> StandIn | None:
        """Who measures in the runner's place this session: a reference
        process (``--trt-ab``) serves every measurement to the judging
        session, also under ``--trt-disable``; the judging session measures
        every one side by side, unless disabled."""
        if self._state.server is not None:
            from pytest_trtperf.relative.serve import Serving

            return Serving(self._state.server)
        ab = self._state.settings.ab
        if ab.every_test and not self._state.settings.disabled:
            from pytest_trtperf.relative.side_by_side import EveryTest

            return EveryTest(self._state.references, ab.rev)
        return None

    def _run(self, workload: Workload, *, name: str | None, opts: MeasureOptions,
             extra_info: Mapping[str, Any], check: RegressionCheck | None = None) -> Result:
        """Hand the workload to the runner once; keep a reported result."""
        target = self._target(name, opts, extra_info)
        labels = Labels(group=opts.group, extra_info={**self._shared_info(), **extra_info}, params=self._params(),
                        side=name or self._item.name)
        done = self._runner.measure(workload, target, opts, labels, regression_check=check)
        if done.reported:
            self.results.append(done.result)
        return done.result

    def _params(self) -> dict[str, str]:
        """``parametrize`` arguments as short text (``--trt-group-by=param:NAME``)."""
        callspec = getattr(self._item, "callspec", None)
        out = {}
        for key, value in (getattr(callspec, "params", None) or {}).items():
            text = str(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
            out[escape_text(str(key))] = escape_text(text[:100])
        return out

    def finish(self) -> list[str]:
        """When the test body has returned: ``trt_bench.extra_info`` (which
        the test may have filled after measuring) goes into every result; a
        value that is not JSON data fails the test with one line."""
        if not self.results:
            return []
        try:
            info = check_extra_info(self.extra_info, where=self._item.nodeid, what="trt_bench.extra_info")
        except UsageError as e:
            return [log_safe(str(e))]
        self.results = [dataclasses.replace(r, extra_info={**info, **self._own_info.get(r.id, {})})
                        for r in self.results]
        return []

    def failures(self) -> list[str]:
        """Messages of the results that fail the test: the verdict first (an
        80-column short summary shows the cause), then what made it fail, then
        the measurement's name; layer attribution lines last."""
        out = []
        for r in self.results:
            v = r.verdict
            if v is None:
                continue
            opts = self._opts.get(r.id, MeasureOptions())
            why = None
            if v.status == "regression":
                confirmed = r.relative is not None and r.relative.origin == "ab_confirm"  # says itself how
                why = " (confirmed by a second measurement)" if v.remeasured and not confirmed else ""
            elif v.failed:
                why = ""
            elif v.status == "missing" and opts.missing_baseline == "fail":
                why = " (--trt-missing-baseline=fail)"
            elif (v.status == "incomparable" or v.decided_by == "suspect_baseline") and opts.incomparable == "fail":
                why = " (--trt-incomparable=fail)"
            elif v.status == "unreliable" and opts.unreliable == "fail":
                why = " (--trt-unreliable=fail)"
            if why is not None:
                message, command = _split_command(v.message)
                first, _, rest = message.partition("\n")
                name = f" [measurement {r.name!r}]" if r.name else ""
                out.append(message_safe(first + why + name + ("\n" + rest if rest else "") + command, r.id))
            missed = next((why for rid, why in self._slo_missed if rid == r.id), None)
            if missed is not None:
                name = f" [measurement {r.name!r}]" if r.name else ""
                out.append(message_safe(missed + name, r.id))
            m = r.memory_verdict
            if m is not None and m.failed:
                again = " (confirmed by a second measurement)" if m.remeasured else ""
                name = f" [measurement {r.name!r}]" if r.name else ""
                out.append(message_safe(m.message + again + name, r.id))
        return out


def _split_command(message: str) -> tuple[str, str]:
    """(message, profile command suffix): the command stays last."""
    from pytest_trtperf.report.nsight import PREFIX

    head, sep, tail = message.rpartition(PREFIX)
    return (head, sep + tail) if sep else (message, "")


def _label(target: Any, default: str) -> str:
    """A side's name in reports: the engine's file, the function's name, or
    ``a`` / ``b`` for lambdas."""
    if hasattr(target, "__trtperf_engine__"):
        return Path(str(getattr(target, "source", default))).name or default
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if isinstance(name, str) and name and "<lambda>" not in name:
        return name
    if not callable(target) and not isinstance(target, (str, bytes)):
        return type(target).__name__
    return default
