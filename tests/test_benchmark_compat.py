"""A pytest-benchmark suite runs unchanged (issue 26 point 2).

The suite below is pytest-benchmark's own documentation examples ("Usage",
"Pedantic mode", "Extra info", the marker example), run through the plugin
with ``--trt-benchmark-compat`` and pytest-benchmark disabled
(``-p no:benchmark``; it is installed here). ``trt_bench(fn, ...)`` and
``trt_bench.pedantic(...)`` are checked without the opt-in. Real pytest
sessions (pytester), real baselines, real host workloads.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import FAST, load_baseline

COMPAT = [*FAST, "-p", "no:benchmark", "--trt-benchmark-compat"]

#: pytest-benchmark's documentation examples, as written there.
DOCS_SUITE = '''
import time
import pytest


def something(duration=0.000001):
    """Function that needs some serious benchmarking."""
    time.sleep(duration)
    # You may return anything you want, like the result of a computation
    return 123


def test_my_stuff(benchmark):
    # benchmark something
    result = benchmark(something)

    # Extra code, to verify that the run completed correctly.
    # Sometimes you may want to check the result, fast functions
    # are no good if they return incorrect results :-)
    assert result == 123


def test_my_stuff_different_arg(benchmark):
    # benchmark something, but add some arguments
    result = benchmark(something, 0.001)
    assert result == 123


def stuff(a, b, c, foo):
    return a + b + c


def test_with_setup(benchmark):
    assert benchmark.pedantic(stuff, args=(1, 2, 3), kwargs={'foo': 'bar'}, iterations=10, rounds=100) == 6


def test_setup_returns_arguments(benchmark):
    def setup():
        # can optionally return a (args, kwargs) tuple
        return (1, 2, 3), {'foo': 'bar'}

    assert benchmark.pedantic(stuff, setup=setup, rounds=100) == 6


def test_extra_info(benchmark):
    benchmark.extra_info['foo'] = 'bar'
    benchmark(time.sleep, 0.00001)


@pytest.mark.benchmark(
    group="group-name",
    min_time=0.1,
    max_time=0.5,
    min_rounds=5,
    timer=time.time,
    disable_gc=True,
    warmup=False
)
def test_my_marked_stuff(benchmark):
    @benchmark
    def result():
        # Code to be measured
        return time.sleep(0.000001)

    # Extra code, to verify that the run
    # completed correctly.
    # Note: this code is not measured.
    assert result is None
'''


@pytest.mark.mostly_waits  # the docs' examples sleep; judged at 200%
def test_pytest_benchmark_docs_suite_runs_unchanged_and_is_gated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_docs=DOCS_SUITE)
    first = pytester.runpytest(*COMPAT, "--trt-baseline=update")
    first.assert_outcomes(passed=6)
    entries = load_baseline(pytester)["results"]
    assert sorted(entries) == sorted(f"test_docs.py::{t}" for t in (
        "test_my_stuff", "test_my_stuff_different_arg", "test_with_setup", "test_setup_returns_arguments",
        "test_extra_info", "test_my_marked_stuff"))
    again = pytester.runpytest(*COMPAT, "--trt-tolerance=200%", "--trt-json=out.json")
    again.assert_outcomes(passed=6)
    results = {r["id"].split("::")[1]: r for r in json.loads((pytester.path / "out.json").read_text())["results"]}
    assert {r["verdict"]["status"] for r in results.values()} <= {"pass", "improved"}, results
    assert all(r["verdict"]["fails_above"] is not None for r in results.values())
    assert results["test_extra_info"]["extra_info"] == {"foo": "bar"}
    marked = results["test_my_marked_stuff"]
    assert marked["group"] == "group-name"
    assert any("benchmark(min_time=) ignored" in n for n in marked["notes"])
    assert results["test_with_setup"]["latency_ms"]["n"] == 100  # rounds are the samples
    assert results["test_setup_returns_arguments"]["latency_ms"]["n"] == 100


SLOW = '''
import hashlib, os

DATA = b"\\x5a" * 300_000
ROUNDS = int(os.environ.get("ROUNDS", "1"))


def test_hash(benchmark):
    assert benchmark(lambda: [hashlib.sha256(DATA).digest() for _ in range(ROUNDS)])
'''


def test_a_compat_benchmark_that_got_slower_fails_its_test(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_slow=SLOW)
    pytester.runpytest(*COMPAT, "--trt-baseline=update").assert_outcomes(passed=1)
    monkeypatch.setenv("ROUNDS", "3")
    r = pytester.runpytest(*COMPAT, "--trt-tolerance=25%")
    r.assert_outcomes(failed=1)
    assert "median latency regressed" in r.stdout.str()


def test_compat_with_pytest_benchmark_loaded_is_one_line(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytest_benchmark")
    # tests/conftest.py blocks pytest-benchmark in inner runs; this one loads it
    others = os.environ.get("PYTEST_ADDOPTS", "").replace("-p no:benchmark", "")
    monkeypatch.setenv("PYTEST_ADDOPTS", others)
    pytester.makepyfile(test_slow=SLOW)
    r = pytester.runpytest(*FAST, "--trt-benchmark-compat")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert "pytest-benchmark is loaded" in err and "-p no:benchmark" in err and "Traceback" not in err


@pytest.mark.parametrize("marker, needle", [
    ("precision=0.01", "@pytest.mark.benchmark(precision=): pytest-benchmark's stopping rule on the mean"),
    ("cprofile=True", "@pytest.mark.benchmark(cprofile=): not supported"),
    ("colour='red'", "@pytest.mark.benchmark can't have 'colour' keyword argument"),
    ("timer=print", "@pytest.mark.benchmark(timer=<built-in function print>): only the host clocks"),
    ("disable_gc='yes'", "disable_gc=): 'yes' must be True or False"),
])
def test_marker_arguments_that_cannot_be_mapped_are_one_line(pytester: pytest.Pytester, marker: str,
                                                             needle: str) -> None:
    pytester.makepyfile(test_m=f"import pytest\n\n@pytest.mark.benchmark({marker})\n"
                               f"def test_m(benchmark):\n    benchmark(len, 'abc')\n")
    r = pytester.runpytest(*COMPAT)
    r.assert_outcomes(errors=1)
    out = r.stdout.str()
    assert needle in out and "Traceback" not in out, out


def test_the_fixture_is_used_once_and_knows_its_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_n='''
import pytest


@pytest.mark.parametrize("n", [3])
def test_names(benchmark, n):
    assert benchmark.name == "test_names[3]" and benchmark.fullname == "test_n.py::test_names[3]"
    assert benchmark.param == "3" and benchmark.params == {"n": 3}
    benchmark.group = "sizes"
    assert benchmark(sum, range(n)) == 3
    benchmark(sum, range(n))
''')
    r = pytester.runpytest(*COMPAT, "--trt-json=out.json")
    r.assert_outcomes(failed=1)
    assert "the benchmark fixture can only be used once per test (it was used in benchmark(...) mode)" \
        in r.stdout.str()
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    assert res["group"] == "sizes"


CALLS = '''
import json, os

calls = {"setup": 0, "target": 0, "teardown": 0}


def test_rounds(trt_bench):
    def setup():
        calls["setup"] += 1
        return (2,), {"k": 3}

    def target(x, k):
        calls["target"] += 1
        return x * k

    def teardown(x, k):
        assert (x, k) == (2, 3)
        calls["teardown"] += 1

    assert trt_bench.pedantic(target, setup=setup, teardown=teardown, rounds=7, warmup_rounds=2) == 6
    open(os.environ["CALLS_OUT"] + ".rounds", "w").write(json.dumps(calls))


def test_iterations(trt_bench):
    n = [0]

    def target():
        n[0] += 1
        return "v"

    assert trt_bench.pedantic(target, rounds=4, iterations=5) == "v"
    open(os.environ["CALLS_OUT"] + ".iterations", "w").write(json.dumps(n[0]))


def test_call_form(trt_bench):
    def scale(values, factor=1, name="x"):
        return [v * factor for v in values], name
    assert trt_bench(scale, [1, 2], factor=3, name="kept for fn") == ([3, 6], "kept for fn")
'''


def test_trt_bench_call_and_pedantic_have_pytest_benchmarks_meaning(pytester: pytest.Pytester,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the opt-in: ``trt_bench(fn, *args, **kwargs)`` returns fn's
    value (every keyword goes to fn); ``pedantic`` runs exactly
    ``warmup_rounds + rounds`` rounds, setup and teardown once per round,
    ``iterations`` calls per round."""
    out = pytester.path / "calls.json"
    monkeypatch.setenv("CALLS_OUT", str(out))
    pytester.makepyfile(test_calls=CALLS)
    r = pytester.runpytest(*FAST, "--trt-no-remeasure", "--trt-json=out.json")
    r.assert_outcomes(passed=3)
    assert json.loads(out.with_suffix(".json.rounds").read_text()) == {"setup": 9, "target": 9, "teardown": 9}
    assert json.loads(out.with_suffix(".json.iterations").read_text()) == 4 * 5
    results = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["results"]}
    assert results["test_calls.py::test_rounds"]["latency_ms"]["n"] == 7
    assert results["test_calls.py::test_iterations"]["latency_ms"]["n"] == 4


@pytest.mark.parametrize("call, needle", [
    ("trt_bench.pedantic(len, args=('a',), rounds=0)", "rounds: 0 must be an int >= 1"),
    ("trt_bench.pedantic(len, args=('a',), iterations=2, setup=lambda: None)",
     "iterations=2 with a setup: setup runs once per round"),
    ("trt_bench.pedantic(len, args=('a',), setup=lambda: ((1,), {}))",
     "setup returned arguments and args=/kwargs= were given too"),
    ("trt_bench(42)", "trt_bench(fn, ...): needs a callable, got int"),
])
def test_pedantic_misuse_is_one_line(pytester: pytest.Pytester, call: str, needle: str) -> None:
    pytester.makepyfile(test_p=f"def test_p(trt_bench):\n    {call}\n")
    r = pytester.runpytest(*FAST)
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert needle in out and "Traceback" not in out, out


def test_the_ini_key_opts_in_and_the_off_switches_see_benchmark_tests(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrt_benchmark_compat = true\n")
    pytester.makepyfile(test_k="def test_k(benchmark):\n    assert benchmark(len, 'abc') == 3\n\n"
                               "def test_plain():\n    pass\n")
    r = pytester.runpytest(*FAST, "-p", "no:benchmark", "--trt-baseline=off", "-rs")
    r.assert_outcomes(passed=2)
    assert "test_k.py::test_k" in r.stdout.str()  # measured and reported
    r = pytester.runpytest(*FAST, "-p", "no:benchmark", "--trt-skip")
    r.assert_outcomes(passed=1, skipped=1)
    r = pytester.runpytest(*FAST, "-p", "no:benchmark", "-m", "trt_perf", "--trt-baseline=off")
    r.assert_outcomes(passed=1, deselected=1)
