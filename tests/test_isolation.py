"""The plugin's inner test runs (pytester) are isolated from other installed plugins."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("pytest_benchmark") is None,
                    reason="pytest-benchmark is not installed (dev extra)")
def test_inner_runs_do_not_load_pytest_benchmark(pytester: pytest.Pytester) -> None:
    """pytest-benchmark is installed here (dev extra) yet an inner run does not
    see it: its ``benchmark`` fixture is missing and it writes no ``.benchmarks/``."""
    pytester.makepyfile(test_x="def test_x(benchmark):\n    benchmark(lambda: None)\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-autosave")
    assert r.ret == pytest.ExitCode.USAGE_ERROR  # --benchmark-autosave: unrecognized
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    r.assert_outcomes(errors=1)
    r.stdout.fnmatch_lines(["*fixture 'benchmark' not found*"])
    assert not (pytester.path / ".benchmarks").exists()


def test_the_plugin_itself_still_loads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_y="def test_y(trt_bench):\n    assert trt_bench is not None\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-baseline=off").assert_outcomes(passed=1)
