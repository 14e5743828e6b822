"""Context in results, as pytest-benchmark users expect it: extra_info (on the
fixture and per measurement) in results, --trt-json, baselines and the HTML
report; group= and --trt-group-by in the terminal table, job summary and
HTML; arguments passed to the measured callable and its return value.
Real pytest runs (pytester) on real host workloads."""

from __future__ import annotations

import json

import pytest

from helpers import QUICK, load_baseline
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.workloads.cuda import CudaWorkload
from pytest_trtperf.workloads.select import LastCall, for_callable

CONTEXT = '''
import pytest


def scale(values, factor=1):
    return [v * factor for v in values]


@pytest.mark.trt_perf(group="math")
def test_scaled(trt_bench):
    trt_bench.extra_info["dataset"] = "small"
    r = trt_bench.measure(scale, [1, 2, 3], kwargs={"factor": 2}, name="x2", extra_info={"factor": 2})
    assert r.return_value == [2, 4, 6]
    assert r.group == "math" and r.extra_info == {"dataset": "small", "factor": 2}
    trt_bench.extra_info["late"] = True   # set after measuring: still recorded
    trt_bench.extra_info["factor"] = 99   # the measurement's own value wins


@pytest.mark.parametrize("n", [10, 20])
def test_sum(trt_bench, n):
    r = trt_bench.measure(sum, range(n), group="sums")
    assert r.return_value == sum(range(n))


def test_plain(trt_bench):
    trt_bench.measure(lambda: None)
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_ctx=CONTEXT)
    return pytester


def test_extra_info_reaches_json_baseline_and_html(suite: pytest.Pytester) -> None:
    out, html = suite.path / "r.json", suite.path / "r.html"
    r = suite.runpytest(*QUICK, "--trt-baseline=update", f"--trt-json={out}", f"--trt-report={html}")
    r.assert_outcomes(passed=4)
    doc = {x["id"]: x for x in json.loads(out.read_text())["results"]}
    want = {"dataset": "small", "factor": 2, "late": True}
    assert doc["test_ctx.py::test_scaled::x2"]["extra_info"] == want
    assert doc["test_ctx.py::test_plain"]["extra_info"] == {}
    assert doc["test_ctx.py::test_sum[10]"]["params"] == {"n": "10"}
    entries = load_baseline(suite)["results"]
    assert entries["test_ctx.py::test_scaled::x2"]["extra_info"] == want
    assert "extra_info" not in entries["test_ctx.py::test_plain"]  # no empty keys in reviewed diffs
    page = html.read_text()
    assert "<h3>extra_info</h3>" in page and "<code>dataset</code>" in page and "small" in page
    # The baseline keeps it: a compare run's report shows the baseline's beside this run's.
    r = suite.runpytest(*QUICK, f"--trt-report={html}", "--trt-tolerance=90%")
    r.assert_outcomes(passed=4)
    assert html.read_text().count("<code>late</code>") == 1


@pytest.mark.parametrize("body, needle", [
    ("trt_bench.extra_info['f'] = open\n    trt_bench.measure(lambda: 1)",
     "Failed: trt_bench.extra_info is not JSON data (*); extra_info holds JSON data*"),
    ("trt_bench.measure(lambda: 1, extra_info={1: 'a'})",
     "Failed: extra_info key 1 is not a string; * (in trt_bench.measure())"),
    ("trt_bench.measure(lambda: 1, extra_info={'x': float('nan')})",
     "Failed: extra_info is not JSON data (*)*"),
    ("trt_bench.measure(lambda: 1)\n    trt_bench.extra_info['s'] = {1, 2}",
     "Failed: trt_bench.extra_info is not JSON data (*)*"),
    ("trt_bench.measure(lambda: 1, extra_info={'big': 'x' * 100_000})",
     "Failed: extra_info is 100011 bytes as JSON, more than 65536; * (in trt_bench.measure())"),
])
def test_bad_extra_info_is_one_line_naming_the_test(pytester: pytest.Pytester, body: str, needle: str) -> None:
    pytester.makepyfile(test_x=f"def test_x(trt_bench):\n    {body}\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    # The short summary starts with the cause; the section under the test's name says it whole.
    r.stdout.fnmatch_lines([f"FAILED test_x.py::test_x - {needle.split(' ')[0]} {needle.split(' ')[1]} *"])
    r.stdout.fnmatch_lines([needle.removeprefix("Failed: ")])
    assert "Failed: test_x.py::test_x" not in r.stdout.str()
    assert "Traceback" not in r.stdout.str()


def test_groups_in_terminal_job_summary_and_html(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary, html = suite.path / "summary.md", suite.path / "r.html"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = suite.runpytest(*QUICK, "--trt-baseline=off", f"--trt-report={html}")
    r.assert_outcomes(passed=4)
    lines = r.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("result "))
    table = lines[start + 2:start + 9]
    # blocks in the order of their first result (sorted by status, then id: test_plain comes first)
    assert [line for line in table if line.startswith("[")] == ["[no group]", "[math]", "[sums]"]
    assert table.index("[sums]") < next(i for i, line in enumerate(table) if "test_sum[10]" in line)
    md = summary.read_text()
    assert "| **math** |" in md and "| **sums** |" in md and "| **no group** |" in md
    page = html.read_text()
    assert page.count('<tr class="group">') == 3 and "group: math" in page


def test_group_by_param_and_file(suite: pytest.Pytester) -> None:
    r = suite.runpytest(*QUICK, "--trt-baseline=off", "--trt-group-by=param:n")
    assert {line for line in r.stdout.lines if line.startswith("[")} == {"[n=10]", "[n=20]", "[no group]"}
    r = suite.runpytest(*QUICK, "--trt-baseline=off", "--trt-group-by=file,func")
    labels = {line for line in r.stdout.lines if line.startswith("[")}
    assert labels == {"[test_ctx.py test_ctx.py::test_scaled]", "[test_ctx.py test_ctx.py::test_sum]",
                      "[test_ctx.py test_ctx.py::test_plain]"}
    r = suite.runpytest(*QUICK, "--trt-group-by=colour")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["ERROR: --trt-group-by: 'colour' is not one of group, file, func, test, name, param "
                            "or param:NAME"])


def test_without_groups_the_table_has_no_group_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(trt_bench):\n    trt_bench.measure(lambda: None)\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    assert not [line for line in r.stdout.lines if line.startswith("[")]


def test_group_must_be_a_string(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="import pytest\n@pytest.mark.trt_perf(group=3)\n"
                               "def test_a(trt_bench):\n    trt_bench.measure(lambda: None)\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["group: 3 must be a non-empty string of at most 200 characters*"])
    r.stdout.fnmatch_lines(["FAILED test_a.py::test_a - Failed: group: 3 must be a non-empty string*"])


def test_arguments_pass_through_and_the_last_return_value_is_kept(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a='''
CALLS = []

def count(step, *, start=0):
    CALLS.append(step)
    return start + step * len(CALLS)

def test_a(trt_bench):
    r = trt_bench.measure(count, 3, kwargs={"start": 100}, iterations=50)
    timed = len(CALLS)
    # host timing keeps the value of the last timed call (memory figures call it again afterwards)
    assert 100 < r.return_value <= 100 + 3 * timed and (r.return_value - 100) % 3 == 0
    assert set(CALLS) == {3}
''')
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(passed=1)


@pytest.mark.parametrize("call, needle", [
    ("trt_bench.measure(lambda a, b: a + b)",
     "test_a.<locals>.<lambda>(a, b) cannot be called with no arguments "
     "(missing a required argument: 'a'); pass its arguments after it, trt_bench.measure(fn, x, y), and keyword "
     "arguments as kwargs={...} (in trt_bench.measure())"),
    ("trt_bench.measure(lambda a: a, 1, 2)",
     "test_a.<locals>.<lambda>(a) cannot be called with 2 positional "
     "arguments (too many positional arguments); * (in trt_bench.measure())"),
    ("trt_bench.measure(lambda a: a, kwargs={'b': 1})",
     "*cannot be called with keyword argument b (*); *"),
    ("trt_bench.measure(lambda: 1, factor=2)",
     "unknown trt_perf argument 'factor' (known: *); keyword arguments "
     "for the measured callable go in kwargs={'factor': ...} (in trt_bench.measure())"),
    ("trt_bench.measure(lambda: 1, kwargs=[1])",
     "kwargs=list must be a dict of keyword arguments for the callable (in trt_bench.measure())"),
])
def test_a_callable_that_cannot_take_its_arguments_is_one_line(pytester: pytest.Pytester, call: str,
                                                               needle: str) -> None:
    pytester.makepyfile(test_a=f"def test_a(trt_bench):\n    {call}\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([needle])  # the failure section: the cause first, the call last
    r.stdout.fnmatch_lines(["FAILED test_a.py::test_a - Failed: *"])
    assert "Failed: test_a.py::test_a" not in r.stdout.str()
    assert "Traceback" not in r.stdout.str()


def test_arguments_do_not_go_to_workloads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a='''
import numpy as np
from pytest_trtperf import Batch

class W:
    kind = "host"
    inferences_per_iteration = 1
    def setup(self): pass
    def run(self, n): return Batch(latency_s=np.full(n, 1e-6), wall_s=n * 1e-6)
    def teardown(self): pass
    def identity(self): return {}
    def notes(self): return ()

def test_a(trt_bench):
    trt_bench.measure(W(), 1)
''')
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["arguments are passed to a callable; a W takes none (engines take shapes= and inputs=) "
                            "(in trt_bench.measure())"])


def test_cuda_callables_get_the_stream_first_then_the_arguments() -> None:
    w = for_callable(lambda stream, x, y=0: None, timer="cuda", args=(1,), kwargs={"y": 2})
    assert isinstance(w, CudaWorkload) and isinstance(w.enqueue, LastCall)
    seen = []
    w2 = for_callable(lambda stream, x: seen.append((stream, x)) or "out", timer="cuda", args=("x",))
    assert w2.enqueue(7) == "out" and seen == [(7, "x")] and w2.enqueue.value == "out"
    # "auto" with arguments is the host clock: a one-parameter function then takes them, not a stream
    assert for_callable(lambda x: x, args=(1,)).kind == "host"
    with pytest.raises(UsageError, match=r"cannot be called with the stream handle and 1 positional argument"):
        for_callable(lambda stream: None, timer="cuda", args=(1,), where="t")
    with pytest.raises(UsageError, match=r"cannot be called with the stream handle \(.*\); give it one parameter"):
        for_callable(lambda: None, timer="cuda", where="t")


def test_the_block_with_a_regression_comes_first() -> None:
    from types import SimpleNamespace as NS

    from pytest_trtperf.report import grouping

    rs = [NS(nodeid="t.py::b", group="zeta", name=None), NS(nodeid="t.py::a", group="alpha", name=None),
          NS(nodeid="t.py::c", group="zeta", name=None), NS(nodeid="t.py::d", group=None, name=None)]
    blocks = grouping.grouped(rs, ("group",))  # rs as sort_results gives them: a regression in zeta first
    assert [(label, [r.nodeid for r in block]) for label, block in blocks] == [
        ("zeta", ["t.py::b", "t.py::c"]), ("alpha", ["t.py::a"]), ("", ["t.py::d"])]


def test_context_travels_from_xdist_workers(suite: pytest.Pytester) -> None:
    out = suite.path / "r.json"
    r = suite.runpytest(*QUICK, "-n", "2", "--trt-baseline=off", f"--trt-json={out}")
    r.assert_outcomes(passed=4)
    doc = {x["id"]: x for x in json.loads(out.read_text())["results"]}
    assert doc["test_ctx.py::test_scaled::x2"]["extra_info"] == {"dataset": "small", "factor": 2, "late": True}
    assert doc["test_ctx.py::test_scaled::x2"]["group"] == "math"
    assert doc["test_ctx.py::test_sum[20]"]["params"] == {"n": "20"}
    assert {line for line in r.stdout.lines if line.startswith("[")} == {"[math]", "[sums]", "[no group]"}
