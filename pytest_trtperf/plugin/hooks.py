"""pytest hooks only. Each hook is a few lines that call plain, testable code.

Results travel from the process that measured them to the controller as an
attribute of the test's report (``report.trtperf``), which pytest-xdist
serialises like any other report field, so a serial run and ``-n N`` follow
the same path and only the controller writes baselines and reports.

Loading the plugin is cheap: the fixture (numpy, the measurement core) and the
report modules are imported when a test uses ``trt_bench`` or a session has
something to write, not when pytest starts.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any
from collections.abc import Generator

import pytest

from pytest_trtperf.core.config import Settings, add_options, perf_overrides, serve_overrides
from pytest_trtperf.core.errors import BaselineFileError, UsageError, cause_first
from pytest_trtperf.gpu.session import PLUGIN_NAME as GPU_PLUGIN_NAME
from pytest_trtperf.gpu.session import GpuSessionPlugin, register_auto_workers, xdist_workers
from pytest_trtperf.plugin.session import SessionState
from pytest_trtperf.core.timers import REAL as _TIMERS  # noqa: F401 - bind the real clocks when pytest loads the plugin (timers.py)

if TYPE_CHECKING:
    from pytest_trtperf.plugin.fixture import TrtBench

STATE_KEY = pytest.StashKey[SessionState]()
BENCH_KEY = pytest.StashKey["TrtBench"]()
#: Set on a test that asked for trt_bench (also through getfixturevalue).
USES_KEY = pytest.StashKey[bool]()


def session_settings(config: pytest.Config) -> Settings:
    """The session's resolved settings (for conftest fixtures that build
    engines themselves, e.g. ``get_engine(spec, session_settings(config).trt)``)."""
    return config.stash[STATE_KEY].settings


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    register_auto_workers(pluginmanager)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "trt_perf(metric=, tolerance=, warmup_ms=, min_time=, max_time=, iterations=, duration=, "
        "mode=, group=, ...): how pytest-trtperf measures and gates this test; every test that uses trt_bench "
        "carries it, so -m trt_perf / -m 'not trt_perf' select the perf tests")
    config.addinivalue_line(
        "markers", "trt_engine(onnx= or engine=, shapes=, min_shapes=, opt_shapes=, max_shapes=, ...): the "
        "TensorRT engine trt_bench() builds or loads")
    config.addinivalue_line(
        "markers", "trt_serve(rate=, concurrency=, arrivals=, duration=, slo=, seed=, search=, ...): defaults for "
        "trt_bench.serve() (latency under load); with trt_engine, trt_bench.serve() serves the marker's engine")
    try:
        settings = Settings.from_pytest_config(config)
    except UsageError as e:
        raise pytest.UsageError(str(e)) from None
    state = SessionState.create(settings, is_controller=not hasattr(config, "workerinput"))
    state.xdist_workers = xdist_workers(config)
    if settings.export_dir is not None and state.is_controller:
        from pytest_trtperf.report.exports import prepare

        try:
            prepare(settings.export_dir)
        except UsageError as e:
            raise pytest.UsageError(str(e)) from None
    config.stash[STATE_KEY] = state
    if settings.benchmark_compat:
        _offer_benchmark(config)
    config.pluginmanager.register(SessionHooks(state), "trtperf-session")
    if settings.ab.serve_fd is not None:  # a reference process of --trt-ab
        from pytest_trtperf.relative.serve import Server

        state.server = Server(settings.ab.serve_fd)
        config.pluginmanager.register(ServeHooks(state.server), "trtperf-serve")
    gpu = GpuSessionPlugin(config, settings.gpu, settings.baseline_mode)
    config.pluginmanager.register(gpu, GPU_PLUGIN_NAME)
    state.gpu = gpu


def _offer_benchmark(config: pytest.Config) -> None:
    """``--trt-benchmark-compat``: pytest-benchmark's ``benchmark`` fixture and
    marker, unless pytest-benchmark is loaded (then one line, no session)."""
    from pytest_trtperf.plugin.compat import BenchmarkPlugin, conflict

    why = conflict(config.pluginmanager)
    if why:
        raise pytest.UsageError(why)
    config.addinivalue_line("markers", "benchmark(group=, min_rounds=, max_time=, warmup=, disable_gc=, ...): "
                                       "pytest-benchmark's settings, mapped by pytest-trtperf (--trt-benchmark-compat)")
    config.pluginmanager.register(BenchmarkPlugin(_benchmark_fixture), "trtperf-benchmark-compat")


def _benchmark_fixture(request: pytest.FixtureRequest) -> Any:
    from pytest_trtperf.plugin.compat import make_fixture

    bench = _make_bench(request)
    return make_fixture(request, bench, request.config.stash[STATE_KEY].settings.disabled)


#: Why a test was skipped by --trt-skip / --trt-only (pytest-benchmark's wording, our options).
SKIP_REASON = "trt_bench test skipped (--trt-skip)"
ONLY_REASON = "not a trt_bench test (--trt-only)"


def uses_bench(item: pytest.Item) -> bool:
    """Whether the test requests ``trt_bench`` (directly, through a fixture,
    or at run time through ``request.getfixturevalue``), or ``benchmark``
    under ``--trt-benchmark-compat``."""
    names = getattr(item, "fixturenames", ())
    state = item.config.stash.get(STATE_KEY, None)
    compat = state is not None and state.settings.benchmark_compat
    return "trt_bench" in names or (compat and "benchmark" in names) or item.stash.get(USES_KEY, False)


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the marker added here must count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses ``trt_bench`` carries the ``trt_perf`` marker, so
    ``-m trt_perf`` / ``-m "not trt_perf"`` select it; ``--trt-skip`` and
    ``--trt-only`` skip at collection, before any fixture runs."""
    state = config.stash[STATE_KEY]
    settings = state.settings
    state.perf_files = tuple(dict.fromkeys(item.nodeid.split("::", 1)[0] for item in items if uses_bench(item)))
    for item in items:
        if uses_bench(item):
            if item.get_closest_marker("trt_perf") is None:
                item.add_marker(pytest.mark.trt_perf)
            if settings.skip_perf:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
        elif settings.only_perf:
            item.add_marker(pytest.mark.skip(reason=ONLY_REASON))


@pytest.fixture
def trt_bench(request: pytest.FixtureRequest) -> TrtBench:
    """Measure inference performance and gate it against the test's baseline."""
    return _make_bench(request)


def _make_bench(request: pytest.FixtureRequest) -> TrtBench:
    """The test's ``TrtBench`` (behind ``trt_bench`` and the compat ``benchmark``)."""
    state = request.config.stash[STATE_KEY]
    request.node.stash[USES_KEY] = True
    if state.settings.skip_perf:  # requested through getfixturevalue: collection did not see it
        pytest.skip(SKIP_REASON)
    from pytest_trtperf.plugin.fixture import TrtBench

    bench = TrtBench(request.node, state)
    request.node.stash[BENCH_KEY] = bench
    return bench


def _terminal_width(terminalreporter: Any) -> int | None:
    """The terminal's width on a terminal; None in a log (the table's default, 100)."""
    tw = getattr(terminalreporter, "_tw", None)
    if tw is None or not getattr(tw, "hasmarkup", False):
        return None
    return int(getattr(tw, "fullwidth", 0)) or None


def _log_safe(text: str) -> str:
    """User text made safe for CI logs (see ``report.format.log_safe``)."""
    from pytest_trtperf.core.formatting import log_safe

    return log_safe(text, multiline=True)


def marker_error(item: pytest.Item) -> str | None:
    """One-line message for bad marker arguments (the cause first), or None.
    Checked before the test runs, through the same validation the fixture uses."""
    try:
        perf_overrides(list(item.iter_markers("trt_perf")), where=item.nodeid)
        serve_marks = list(item.iter_markers("trt_serve"))
        if serve_marks:
            serve_overrides(serve_marks, where=item.nodeid)
        engine_marks = list(item.iter_markers("trt_engine"))
        if engine_marks:
            from pytest_trtperf.trt.spec import validate_marker

            for mark in engine_marks:
                validate_marker(mark, where=item.nodeid)
    except UsageError as e:
        return _log_safe(cause_first(str(e), item.nodeid))
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    error = marker_error(item)
    if error:
        pytest.fail(error, pytrace=False)
    state = item.config.stash[STATE_KEY]
    try:
        result = yield
    except (KeyboardInterrupt, pytest.exit.Exception):  # the session ends: nothing waits for the reference
        raise
    except BaseException:  # failed or skipped: its copy at the reference runs to its end too
        state.end_reference_test()
        raise
    state.end_reference_test()
    bench = item.stash.get(BENCH_KEY, None)
    failures = (bench.finish() + bench.failures()) if bench is not None else []
    if failures:
        pytest.fail(_log_safe(cause_first("\n".join(failures), item.nodeid)), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    bench = item.stash.get(BENCH_KEY, None) if call.when == "call" else None
    if bench is not None:
        from pytest_trtperf.report.terminal import junit_properties

        results = bench.results
        if call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
            results = [r.withheld("its test failed") for r in results]  # failed or xfailed: an update keeps none
        item.user_properties.extend(junit_properties(results))
    rep = yield
    if bench is not None and bench.results:
        rep.trtperf = [r.to_dict() for r in bench.results]
    if rep.skipped and not hasattr(rep, "wasxfail") and uses_bench(item):  # an xfail is not a skip
        # Travels with the report (xdist too): the summary says why, without -rs.
        rep.trtperf_skip = skip_reason(rep)
    return rep


def skip_reason(rep: pytest.TestReport) -> str:
    """The reason of a skipped report (``longrepr`` is (path, line, reason))."""
    longrepr = rep.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def _say(config: pytest.Config) -> Any:
    """A function that prints one line on the terminal now (at session end,
    below the progress dots), or None without a terminal reporter."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    fresh = [True]

    def say(line: str) -> None:
        if fresh[0]:
            reporter.write("\n")  # the progress line is not ended yet at session finish
            fresh[0] = False
        reporter.write_line(line)
        reporter.flush()

    return say


class ServeHooks:
    """A reference process of ``--trt-ab`` (``relative/serve.py``): its tests
    run one at a time when the judging session asks, not in collection order."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.errors: list[str] = []
        self.outcome: tuple[str, str] = ("passed", "")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = [ln for ln in str(report.longreprtext).strip().splitlines() if ln.strip()]
            self.errors.append(f"{report.nodeid}: {lines[-1].strip() if lines else 'collection failed'}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            lines = [ln for ln in str(report.longreprtext).strip().splitlines() if ln.strip()]
            text = str(crash.message) if crash is not None else (lines[-1] if lines else f"{report.when} failed")
            self.outcome = ("failed", " ".join(text.split()))
        elif report.skipped and self.outcome[0] == "passed":
            self.outcome = ("skipped", skip_reason(report))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        items = {item.nodeid: item for item in session.items}
        order = list(items)

        def run_test(nodeid: str) -> tuple[str, str]:
            item = items.get(nodeid)
            if item is None:
                return "failed", "not collected"
            at = order.index(nodeid)
            self.outcome = ("passed", "")
            # Tests come in the judging session's order: tear down what this one does not share.
            session._setupstate.teardown_exact(item)
            item.ihook.pytest_runtest_protocol(item=item, nextitem=items[order[at + 1]] if at + 1 < len(order)
                                               else None)
            return self.outcome

        self.server.session(order, self.errors, run_test)
        return True


class SessionHooks:
    """Hooks that need the session state: validation at start, collecting
    results from reports, writing baselines and reports at the end."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        #: Lines about reports written at session end (HTML report, job summary).
        self.output_lines: list[str] = []

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        s = self.state.settings
        # lexists: a symlink loop or a file given as the directory is reported, not taken for "no baselines".
        # --trt-compare reads the revision's files now, so a bad revision is one line before any test.
        if s.compare_rev is not None or (s.baseline_mode in ("compare", "update")
                                         and os.path.lexists(s.baseline_dir)):
            try:
                self.state.store.validate_all()
            except (BaselineFileError, UsageError) as e:
                raise pytest.UsageError(_log_safe(str(e))) from None
        if s.baseline_mode == "update" and s.compare_rev is None:
            try:
                self.state.store.check_writable()
            except BaselineFileError as e:
                raise pytest.UsageError(_log_safe(str(e))) from None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        from pytest_trtperf.core.host_state import cpu_cores

        s, workers = self.state.settings, self.state.xdist_workers
        if not self.state.is_controller or workers <= cpu_cores() or s.baseline_mode == "off":
            return []
        what = "host-timed results take turns measuring" if s.allow_cpu_sharing else (
            "host-timed tests fail with a usage error; pass --trt-allow-cpu-sharing to let them take turns")
        return [f"trtperf: -n {workers} on {cpu_cores()} CPU core(s): {what}"]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "trtperf", None)
        if data and report.when == "call":
            from pytest_trtperf.core.results import Result

            results = [Result.from_dict(d) for d in data]
            self.state.collected.extend(results)
            # A relative gate is never a baseline entry, so it is never "not written" either.
            if report.failed or (report.skipped and hasattr(report, "wasxfail")):  # failed, or xfailed
                for r in results:
                    if not r.is_relative_gate:
                        self.state.withhold(r.id, "its test failed")
        elif report.when in ("setup", "teardown") and report.failed:
            for r in list(self.state.collected):
                if r.nodeid == report.nodeid and not r.is_relative_gate:
                    self.state.withhold(r.id, f"its test errored in {report.when}")
        reason = getattr(report, "trtperf_skip", None)
        if isinstance(reason, str):
            self.state.skipped.append((report.nodeid, reason))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.state.is_controller and self._has_outputs():
            from pytest_trtperf.plugin import outputs

            self.output_lines, status = outputs.write_outputs(self.state, int(exitstatus),
                                                              say=_say(session.config))
            if status is not None:
                session.exitstatus = status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if state.is_controller and (state.collected or state.write_error or self.output_lines
                                    or state.store_notes() or state.skipped):
            from pytest_trtperf.core.workload import clock_of
            from pytest_trtperf.plugin import outputs

            # With -rs (or -ra/-rA) pytest lists skip reasons itself.
            chars = str(getattr(terminalreporter, "reportchars", "") or "")
            extra = list(self.output_lines)
            note = state.gpu.pinning_note() if isinstance(state.gpu, GpuSessionPlugin) else None
            gpu_used = any(clock_of(r) != "host" for r in state.collected) or any(
                reason != SKIP_REASON for _, reason in state.skipped)  # a GPU test skipped for want of one
            if note and gpu_used:
                extra.append(note)
            lines = outputs.terminal_lines(state, extra, skips=not any(c in chars for c in "saA"),
                                           width=_terminal_width(terminalreporter),
                                           encoding=getattr(sys.stdout, "encoding", None))
            if lines:
                terminalreporter.write_sep("-", "trtperf")
                for line in lines:
                    terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.state.close()

    def _has_outputs(self) -> bool:
        """Anything to write: results, or a --trt-json / --trt-csv / --trt-report document."""
        s = self.state.settings
        return (bool(self.state.collected) or s.json_path is not None or s.report_path is not None
                or s.csv_path is not None)
