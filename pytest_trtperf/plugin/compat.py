"""pytest-benchmark's ``benchmark`` fixture, measured, baselined, gated and
reported like ``trt_bench`` (``--trt-benchmark-compat``).

A suite written for pytest-benchmark runs unchanged: ``benchmark(fn, *args,
**kwargs)`` returns what ``fn`` returns, ``benchmark.pedantic(...)`` keeps its
meaning, ``benchmark.extra_info`` / ``.group`` / ``.name`` are there, and
``@pytest.mark.benchmark(...)`` arguments are mapped or refused with one line
(``plugin.markers.benchmark_marker``). Only offered when pytest-benchmark itself is
not loaded: two plugins must never both answer to ``benchmark``.

pytest code, like ``plugin.py``; imports nothing heavy at module level.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping

import pytest

from pytest_trtperf.plugin.markers import BenchmarkMarker, benchmark_marker
from pytest_trtperf.core.errors import UsageError

if TYPE_CHECKING:
    from pytest_trtperf.plugin.fixture import TrtBench

#: The plugin name pytest-benchmark registers under (``-p no:benchmark``).
PYTEST_BENCHMARK = "benchmark"


def conflict(pluginmanager: Any) -> str | None:
    """Why the compat fixture cannot be offered (pytest-benchmark is
    loaded), or None."""
    if pluginmanager.hasplugin(PYTEST_BENCHMARK):
        return ("--trt-benchmark-compat: pytest-benchmark is loaded and provides the benchmark fixture itself; "
                "disable it with -p no:benchmark (or uninstall it) to run its tests through pytest-trtperf")
    return None


class BenchmarkFixture:
    """What a test gets as ``benchmark`` under ``--trt-benchmark-compat``."""

    def __init__(self, bench: TrtBench, item: pytest.Item, marker: BenchmarkMarker, disabled: bool) -> None:
        self._bench = bench
        self._marker = marker
        #: pytest-benchmark's names: the test's name and node id, its parameters.
        self.name: str = item.name
        self.fullname: str = item.nodeid
        callspec = getattr(item, "callspec", None)
        self.param: str | None = callspec.id if callspec is not None else None
        self.params: Mapping[str, Any] | None = dict(callspec.params) if callspec is not None else None
        #: Report group (``benchmark.group = "x"`` works as in pytest-benchmark).
        self.group: str | None = marker.overrides.get("group")
        self.disabled = disabled
        self._used = ""

    @property
    def extra_info(self) -> dict[str, Any]:
        """The test's context, stored with its result (``trt_bench.extra_info``)."""
        return self._bench.extra_info

    @extra_info.setter
    def extra_info(self, value: dict[str, Any]) -> None:
        self._bench.extra_info = value

    @property
    def enabled(self) -> bool:
        return not self.disabled

    def _once(self, mode: str) -> None:
        """pytest-benchmark's rule: one measurement per test."""
        if self._used:
            raise UsageError(f"{self.fullname}: the benchmark fixture can only be used once per test (it was used "
                             f"in {self._used} mode); measure more with trt_bench.measure(fn, name=...)")
        self._used = mode

    def _overrides(self) -> dict[str, Any]:
        out = dict(self._marker.overrides)
        if self.group is not None:
            out["group"] = self.group
        return out

    def _call(self, run: Callable[[], Any]) -> Any:
        """Run with the garbage collector off when the marker says
        ``disable_gc=True``; its notes go to the result."""
        enabled = gc.isenabled()
        if self._marker.disable_gc:
            gc.disable()
        try:
            return run()
        finally:
            if self._marker.disable_gc and enabled:
                gc.enable()
            self._bench.add_notes(self._marker.notes)

    def __call__(self, function_to_benchmark: Any, *args: Any, **kwargs: Any) -> Any:
        self._fail_on_error(lambda: self._once("benchmark(...)"))
        return self._call(lambda: self._bench.benchmark(function_to_benchmark, args, kwargs,
                                                        overrides=self._overrides()))

    def pedantic(self, target: Any, args: Any = (), kwargs: Mapping[str, Any] | None = None, setup: Any = None,
                 teardown: Any = None, rounds: Any = 1, warmup_rounds: Any = 0, iterations: Any = 1) -> Any:
        self._fail_on_error(lambda: self._once("benchmark.pedantic(...)"))
        return self._call(lambda: self._bench.pedantic(target, args=args, kwargs=kwargs, setup=setup,
                                                       teardown=teardown, rounds=rounds, warmup_rounds=warmup_rounds,
                                                       iterations=iterations, overrides=self._overrides()))

    def weave(self, target: Any, **kwargs: Any) -> Any:
        self._fail(f"{self.fullname}: benchmark.weave is not supported by --trt-benchmark-compat; call the "
                   f"function through benchmark(fn, ...)")

    def _fail_on_error(self, check: Callable[[], Any]) -> None:
        try:
            check()
        except UsageError as e:
            msg = str(e)
        else:
            return
        self._fail(msg)

    @staticmethod
    def _fail(msg: str) -> None:
        from pytest_trtperf.core.formatting import log_safe

        pytest.fail(log_safe(msg, multiline=True), pytrace=False)


class BenchmarkPlugin:
    """Registered under ``--trt-benchmark-compat``: the ``benchmark`` fixture."""

    def __init__(self, fixture_for: Callable[[pytest.FixtureRequest], Any]) -> None:
        self._fixture_for = fixture_for

    @pytest.fixture
    def benchmark(self, request: pytest.FixtureRequest) -> Any:
        """pytest-benchmark's fixture, measured and gated by pytest-trtperf."""
        return self._fixture_for(request)


def make_fixture(request: pytest.FixtureRequest, bench: TrtBench, disabled: bool) -> BenchmarkFixture:
    """The ``benchmark`` object for this test; a bad ``@pytest.mark.benchmark``
    fails it with one line."""
    item = request.node
    try:
        marker = benchmark_marker(list(item.iter_markers("benchmark")), where=item.nodeid)
    except UsageError as e:
        msg = str(e)
    else:
        return BenchmarkFixture(bench, item, marker, disabled)
    BenchmarkFixture._fail(msg)
    raise AssertionError("unreachable")  # pragma: no cover - pytest.fail raises
