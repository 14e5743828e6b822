"""Turning perf tests off or on by themselves, as pytest-benchmark users do:
--trt-skip, --trt-only, --trt-disable (and their ini keys), the automatic
``trt_perf`` marker for ``-m``, and why a skipped trt_bench test skipped
(without ``-rs``). Real pytest runs (pytester) on real host workloads."""

from __future__ import annotations

import json

import pytest

from helpers import FAST, QUICK, baseline_files

SUITE = '''
import pytest

CALLS = []


@pytest.fixture
def bench_via_fixture(trt_bench):
    return trt_bench


def test_perf(trt_bench):
    r = trt_bench.measure(lambda: CALLS.append(1) or len(CALLS))
    print(f"CALLS={len(CALLS)} N={r.latency.n} VERDICT={r.verdict.status} RET={r.return_value}")


def test_perf_through_a_fixture(bench_via_fixture):
    bench_via_fixture.measure(lambda: sum(range(100)))


def test_unit():
    assert 1 + 1 == 2


def test_dynamic(request):
    request.getfixturevalue("trt_bench").measure(lambda: None)
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_mixed=SUITE)
    return pytester


def outcomes(r: pytest.RunResult) -> dict[str, str]:
    """node id -> outcome word, from -rA's short summary or -v lines."""
    out = {}
    for line in r.stdout.lines:
        for word in ("PASSED", "SKIPPED", "FAILED", "ERROR"):
            if line.startswith("test_mixed.py::") and f" {word}" in line:
                out[line.split()[0]] = word
    return out


def test_trt_skip_skips_every_test_that_uses_trt_bench(suite: pytest.Pytester) -> None:
    r = suite.runpytest(*QUICK, "-v", "--trt-skip")
    assert outcomes(r) == {"test_mixed.py::test_perf": "SKIPPED", "test_mixed.py::test_perf_through_a_fixture": "SKIPPED",
                           "test_mixed.py::test_unit": "PASSED", "test_mixed.py::test_dynamic": "SKIPPED"}
    # Without -rs the trtperf section says why, once per reason.
    r.stdout.fnmatch_lines(["skipped 3 trt_bench test(s): trt_bench test skipped (--trt-skip): test_mixed.py::test_perf*"])
    assert baseline_files(suite) == []


def test_trt_skip_as_ini_key(suite: pytest.Pytester) -> None:
    suite.makeini("[pytest]\ntrt_skip = true\n")
    r = suite.runpytest(*QUICK, "-v")
    r.assert_outcomes(passed=1, skipped=3)
    bad = suite.runpytest(*QUICK, "-o", "trt_skip=sometimes")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*trt_skip (ini): 'sometimes' is not a boolean*"])


def test_trt_only_runs_only_perf_tests_and_wins_over_skip(suite: pytest.Pytester) -> None:
    for args in (["--trt-only"], ["--trt-only", "--trt-skip"]):
        r = suite.runpytest(*QUICK, "-v", "--trt-baseline=off", *args)
        got = outcomes(r)
        assert got["test_mixed.py::test_unit"] == "SKIPPED", r.stdout.str()
        assert got["test_mixed.py::test_perf"] == got["test_mixed.py::test_perf_through_a_fixture"] == "PASSED"
        # getfixturevalue at run time is invisible to collection, as for --benchmark-only
        assert got["test_mixed.py::test_dynamic"] == "SKIPPED"


def test_trt_disable_runs_each_callable_once_and_reports_nothing(suite: pytest.Pytester) -> None:
    out = suite.path / "r.json"
    r = suite.runpytest(*QUICK, "-s", "--trt-disable", "--trt-baseline=compare", f"--trt-json={out}")
    r.assert_outcomes(passed=4)
    # One call: the callable ran, with a one-sample result the test can still read.
    r.stdout.fnmatch_lines(["*CALLS=1 N=1 VERDICT=disabled RET=1"])  # not off: that is --trt-baseline=off
    assert json.loads(out.read_text())["results"] == []
    assert "test_mixed.py::test_perf " not in r.stdout.str()  # no table row
    assert baseline_files(suite) == []


def test_trt_disable_keeps_asserts_running(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_budget(trt_bench):\n"
                               "    r = trt_bench.measure(lambda: 1)\n"
                               "    assert r.latency.median_ms < 0, 'budget'\n")
    r = pytester.runpytest(*QUICK, "--trt-disable")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*AssertionError: budget*"])


def test_trt_disable_runs_each_side_of_a_relative_gate_once(pytester: pytest.Pytester) -> None:
    """compare() under --trt-disable: a and b once each, untimed, nothing gated
    (b is 1000x slower and the expectation says 3%: an ordinary run fails);
    the result still has both sides so the test's own code runs."""
    out = pytester.path / "r.json"
    pytester.makepyfile(test_a="""
import time
CALLS = {"a": 0, "b": 0}

def a():
    CALLS["a"] += 1

def b():
    CALLS["b"] += 1
    time.sleep(0.002)

def test_rel(trt_bench):
    r = trt_bench.compare(a, b, max_slowdown="3%")
    print(f"CALLS={CALLS} STATUS={r.verdict.status} PAIRS={r.relative.pairs} SLOWER={r.relative.ratio > 1}")
""")
    r = pytester.runpytest(*QUICK, "-s", "--trt-disable", f"--trt-json={out}")
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*CALLS={'a': 1, 'b': 1} STATUS=disabled PAIRS=1 SLOWER=True"])
    assert json.loads(out.read_text())["results"] == []
    plain = pytester.runpytest(*FAST, "-s")  # timing judged: an ordinary run fails
    plain.assert_outcomes(failed=1)


@pytest.mark.parametrize("args, needle", [
    (["--trt-disable", "--trt-baseline=update"], "--trt-disable runs each measurement once without timing it, "
                                                 "so --trt-baseline=update would write nothing; keep one"),
    (["--trt-only", "--trt-disable"], "--trt-only and --trt-disable both given*keep one"),
])
def test_contradicting_switches_are_a_usage_error(suite: pytest.Pytester, args: list[str], needle: str) -> None:
    r = suite.runpytest(*QUICK, *args)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines([f"ERROR: {needle}"])


def test_every_trt_bench_test_carries_the_trt_perf_marker(suite: pytest.Pytester) -> None:
    r = suite.runpytest(*QUICK, "-v", "--trt-baseline=off", "-m", "trt_perf")
    assert set(outcomes(r)) == {"test_mixed.py::test_perf", "test_mixed.py::test_perf_through_a_fixture"}
    r = suite.runpytest(*QUICK, "-v", "--trt-baseline=off", "-m", "not trt_perf")
    # test_dynamic asks for the fixture at run time: collection cannot know (as with pytest-benchmark)
    assert set(outcomes(r)) == {"test_mixed.py::test_unit", "test_mixed.py::test_dynamic"}


def test_an_explicit_marker_keeps_its_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="import pytest\n"
                               "@pytest.mark.trt_perf(tolerance='30%')\n"
                               "def test_x(trt_bench):\n"
                               "    assert trt_bench.measure(lambda: 1).verdict.tolerance == 0.3\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off", "-m", "trt_perf")
    r.assert_outcomes(passed=1)


def test_without_the_plugin_a_trt_bench_test_is_an_error(suite: pytest.Pytester) -> None:
    """What README says of ``-p no:trtperf``: pytest itself makes tests that
    request the fixture an error (as ``-p no:benchmark`` does for
    pytest-benchmark's); --trt-skip is the switch that skips them."""
    r = suite.runpytest("-p", "no:cacheprovider", "-p", "no:trtperf")
    r.assert_outcomes(passed=1, failed=1, errors=2)  # getfixturevalue fails at run time
    r.stdout.fnmatch_lines(["*fixture 'trt_bench' not found*"])


def test_skip_reasons_are_shown_without_rs_and_not_twice_with_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu="import pytest\n"
                                 "def test_cuda(trt_bench):\n"
                                 "    trt_bench.measure(lambda stream: None, timer='cuda')\n"
                                 "@pytest.mark.skip(reason='not today')\n"
                                 "def test_marked(trt_bench):\n"
                                 "    pass\n"
                                 "@pytest.mark.xfail(reason='known slow')\n"
                                 "def test_xfail(trt_bench):\n"
                                 "    assert False\n"
                                 "@pytest.mark.skip(reason='unrelated')\n"
                                 "def test_plain():\n"
                                 "    pass\n")
    from pytest_trtperf.gpu.cuda import unavailable_reason

    if unavailable_reason() is None:
        pytest.skip("needs a machine without a GPU, where the CUDA test skips")
    r = pytester.runpytest(*QUICK)
    r.assert_outcomes(skipped=3, xfailed=1)
    text = r.stdout.str()
    assert "known slow" not in text.split("short test summary")[0]  # an xfail is not a skip
    assert "skipped 1 trt_bench test(s): not today: test_gpu.py::test_marked" in text
    cuda_line = [line for line in r.stdout.lines if "test_gpu.py::test_cuda" in line]
    assert len(cuda_line) == 1 and cuda_line[0].startswith("skipped 1 trt_bench test(s): ")
    assert "unrelated" not in text  # not a trt_bench test: pytest's own -rs is for those
    r = pytester.runpytest(*QUICK, "-rs")
    assert "skipped 1 trt_bench test(s)" not in r.stdout.str()
    assert r.stdout.str().count("not today") == 1


def test_skip_switches_and_reasons_under_xdist(suite: pytest.Pytester) -> None:
    r = suite.runpytest(*QUICK, "-n", "2", "--trt-skip")
    r.assert_outcomes(passed=1, skipped=3)
    r.stdout.fnmatch_lines(["skipped 3 trt_bench test(s): trt_bench test skipped (--trt-skip): *"])
    r = suite.runpytest(*QUICK, "-n", "2", "--trt-baseline=off", "-m", "trt_perf")
    r.assert_outcomes(passed=2)
