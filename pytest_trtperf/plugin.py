"""pytest hooks only. Each hook is a few lines that call plain, testable code.

Results travel from the process that measured them to the controller as an
attribute of the test's report (``report.trtperf``), which pytest-xdist
serialises like any other report field, so a serial run and ``-n N`` follow
the same path and only the controller writes baselines and reports.
"""

from __future__ import annotations

import importlib
from typing import Any, Generator

import pytest

from .report import outputs
from .report import terminal as report_mod
from .config import Settings, add_options, perf_overrides
from .errors import BaselineFileError, UsageError
from .fixture import TrtBench
from .results import Result
from .session import SessionState

STATE_KEY = pytest.StashKey[SessionState]()
BENCH_KEY = pytest.StashKey[TrtBench]()


def _component(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    gpu = _component("pytest_trtperf.gpu.session")
    if gpu is not None:
        gpu.add_options(parser, pluginmanager)
    trt = _component("pytest_trtperf.trt.options")
    if trt is not None:
        trt.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "trt_perf(metric=, tolerance=, warmup_ms=, min_time=, max_time=, iterations=, duration=, "
        "mode=, ...): how pytest-trtperf measures and gates this test")
    config.addinivalue_line(
        "markers", "trt_engine(onnx= or engine=, shapes=, min_shapes=, opt_shapes=, max_shapes=, ...): the "
        "TensorRT engine trt_bench() builds or loads")
    try:
        settings = Settings.from_pytest_config(config)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    state = SessionState.create(settings, is_controller=not hasattr(config, "workerinput"))
    config.stash[STATE_KEY] = state
    trt = _component("pytest_trtperf.trt.options")
    if trt is not None:
        try:
            trt.configure(config)
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None
    config.pluginmanager.register(SessionHooks(state), "trtperf-session")
    gpu = _component("pytest_trtperf.gpu.session")
    if gpu is not None and hasattr(gpu, "GpuSessionPlugin"):
        try:
            plugin = gpu.GpuSessionPlugin(config)
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None
        config.pluginmanager.register(plugin, "trtperf-gpu")
        state.clock_state = plugin.clock_state
        state.measurement_lock = plugin.measurement_lock
        state.monitor_factory = plugin.make_monitor


@pytest.fixture
def trt_bench(request: pytest.FixtureRequest) -> TrtBench:
    """Measure inference performance and gate it against the test's baseline."""
    bench = TrtBench(request.node, request.config.stash[STATE_KEY])
    request.node.stash[BENCH_KEY] = bench
    return bench


def marker_error(item: pytest.Item) -> str | None:
    """One-line message for bad marker arguments, or None. Checked before the
    test runs, through the same validation the fixture uses."""
    try:
        perf_overrides(list(item.iter_markers("trt_perf")), where=item.nodeid)
    except UsageError as e:
        return str(e)
    spec = _component("pytest_trtperf.trt.spec")
    validate = getattr(spec, "validate_marker", None)
    for mark in item.iter_markers("trt_engine"):
        if validate is not None:
            try:
                validate(mark, where=item.nodeid)
            except UsageError as e:
                return str(e)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    error = marker_error(item)
    if error:
        pytest.fail(error, pytrace=False)
    result = yield
    bench = item.stash.get(BENCH_KEY, None)
    failures = bench.failures() if bench is not None else []
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    bench = item.stash.get(BENCH_KEY, None) if call.when == "call" else None
    if bench is not None:
        item.user_properties.extend(report_mod.junit_properties(bench.results))
    rep = yield
    if bench is not None and bench.results:
        rep.trtperf = [r.to_dict() for r in bench.results]
    return rep


class SessionHooks:
    """Hooks that need the session state: validation at start, collecting
    results from reports, writing baselines and reports at the end."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        #: Lines about reports written at session end (HTML report, job summary).
        self.output_lines: list[str] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.state.settings.baseline_mode in ("compare", "update"):
            try:
                self.state.store.validate_all()
            except BaselineFileError as e:
                raise pytest.UsageError(str(e)) from None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "trtperf", None)
        if data and report.when == "call":
            self.state.collected.extend(Result.from_dict(d) for d in data)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.state.is_controller:
            self.output_lines, status = outputs.write_outputs(self.state, int(exitstatus))
            if status is not None:
                session.exitstatus = status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if state.is_controller and (state.collected or state.write_error or self.output_lines):
            terminalreporter.write_sep("-", "trtperf")
            for line in outputs.terminal_lines(state, self.output_lines):
                terminalreporter.write_line(line)
