"""No green run on misconfiguration (issue 11 item 4), through real sessions:
``--trt-incomparable=fail`` for strict CI, and an update whose test failed or
errored writes nothing for it."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET

import pytest

from helpers import QUICK, spin_test, load_baseline, run_inner

#: The method changes with TRTPERF_IPI: inferences per iteration are part of
#: how a result is measured, so a baseline taken with another value is incomparable.
IPI_TEST = spin_test().replace(
    "trt_bench.measure(spin)",
    "trt_bench.measure(spin, "
    "inferences_per_iteration=int(os.environ.get('TRTPERF_IPI', '1')))")

#: No test here judges timing (incomparable identities, failed tests, usage errors): short windows.
quick = functools.partial(run_inner, opts=QUICK)


def test_incomparable_passes_with_a_warning_or_fails_in_strict_ci(pytester: pytest.Pytester) -> None:
    assert "inferences_per_iteration" in IPI_TEST
    pytester.makepyfile(test_perf=IPI_TEST)
    quick(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    lenient = quick(pytester, ipi=2)
    lenient.assert_outcomes(passed=1)
    lenient.stdout.fnmatch_lines(["*test_perf.py::test_spin: baseline not comparable: measurement method changed: "
                                  "inferences_per_iteration 1 -> 2; refresh it with pytest --trt-baseline=update"])
    strict = quick(pytester, "--trt-incomparable=fail", ipi=2)
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["FAILED test_perf.py::test_spin - Failed: baseline not comparable: measurement*"])
    strict.stdout.fnmatch_lines(["*(--trt-incomparable=fail)"])
    # The same baseline, compared with the same method: passes under the strict option too.
    quick(pytester, "--trt-incomparable=fail", "--trt-tolerance=80%").assert_outcomes(passed=1)


def test_incomparable_from_the_ini_file_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=IPI_TEST)
    quick(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ntrt_incomparable = fail\n")
    quick(pytester, ipi=3).assert_outcomes(failed=1)
    pytester.makepyfile(test_perf=IPI_TEST.replace(
        "def test_spin", "@pytest.mark.trt_perf(incomparable='pass')\ndef test_spin"))
    quick(pytester, ipi=3).assert_outcomes(passed=1)  # the marker wins over the ini file


def test_bad_pass_fail_values_are_one_line_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    r = pytester.runpytest_subprocess(*QUICK, "--trt-incomparable=maybe")
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-incomparable: 'maybe' is not one of pass, fail"])
    r = pytester.runpytest_subprocess(*QUICK, "--trt-busy-wait=nan")
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-busy-wait: 'nan' must be a finite number"])
    r = pytester.runpytest_subprocess(*QUICK, "--trt-run-noise=3")
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-run-noise: '3' would mean 300%; write 3% or 0.03 *"])


FAILING = spin_test() + '''

def test_asserts_after_measuring(trt_bench):
    trt_bench.measure(lambda: sum(range(100)), name="fails")
    assert False, "the test's own check failed"


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_errors_in_teardown(trt_bench, broken_teardown):
    trt_bench.measure(lambda: sum(range(100)), name="errors")


@pytest.mark.xfail(reason="known", strict=True)
def test_xfails(trt_bench):
    trt_bench.measure(lambda: sum(range(100)), name="xfails")
    assert False
'''


WITHHELD = {
    "test_perf.py::test_asserts_after_measuring::fails": "its test failed",
    "test_perf.py::test_errors_in_teardown::errors": "its test errored in teardown",
    "test_perf.py::test_xfails::xfails": "its test failed",
}


def assert_reported_as_not_written(doc: dict) -> None:
    """The --trt-json document says, for each withheld result, not_written
    (time and memory verdicts) and lists it with its reason; the written one
    stays updated."""
    assert doc["session"]["baselines_not_written"] == [{"id": rid, "reason": why}
                                                       for rid, why in sorted(WITHHELD.items())]
    status = {r["id"]: (r["verdict"]["status"], r["memory_verdict"]["status"]) for r in doc["results"]}
    assert status == {"test_perf.py::test_spin": ("updated", "updated"),
                      **{rid: ("not_written", "not_written") for rid in WITHHELD}}
    messages = {r["id"]: r["verdict"]["message"] for r in doc["results"]}
    assert all(messages[rid] == f"baseline not written: {why}" for rid, why in WITHHELD.items())


def test_update_writes_nothing_for_a_test_that_failed_or_errored(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=FAILING)
    r = pytester.runpytest(*QUICK, "--trt-baseline=update", "--trt-max-time=0.5", "--trt-json=out.json",
                           "--junitxml=j.xml")
    r.assert_outcomes(passed=2, failed=1, errors=1, xfailed=1)
    assert set(load_baseline(pytester)["results"]) == {"test_perf.py::test_spin"}
    r.stdout.fnmatch_lines([f"baseline not written for {rid}: {why}" for rid, why in sorted(WITHHELD.items())])
    # The results are still reported (table and JSON), as not written, and counted so.
    # the 100-column table shortens the id in the middle (issue 26): file and end stay
    r.stdout.fnmatch_lines(["test_perf.py::test_*fails  median * not written *"])
    r.stdout.fnmatch_lines(["3 not written, 1 updated"])
    assert "4 updated" not in r.stdout.str()
    assert_reported_as_not_written(json.loads((pytester.path / "out.json").read_text()))
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "j.xml").iter("property")}
    assert props["trtperf[fails].verdict"] == props["trtperf[xfails].verdict"] == "not_written"
    assert props["trtperf.verdict"] == "updated"


def test_update_under_xdist_withholds_failed_tests_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=FAILING)
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-max-time=0.5", "-n", "2",
                                      "--trt-json=out.json")
    r.assert_outcomes(passed=2, failed=1, errors=1, xfailed=1)
    assert set(load_baseline(pytester)["results"]) == {"test_perf.py::test_spin"}
    doc = json.loads((pytester.path / "out.json").read_text())
    assert len(doc["results"]) == 4
    assert_reported_as_not_written(doc)
    r.stdout.fnmatch_lines(["3 not written, 1 updated"])


def test_a_compare_lists_nothing_as_not_written(pytester: pytest.Pytester) -> None:
    """Only an update writes: a failing test in a compare run is no baseline not written."""
    pytester.makepyfile(test_perf=FAILING)
    pytester.runpytest(*QUICK, "--trt-baseline=update", "--trt-max-time=0.5")
    r = pytester.runpytest(*QUICK, "--trt-max-time=0.5", "--trt-json=out.json", "--trt-tolerance=90%")
    assert "not written" not in r.stdout.str()
    doc = json.loads((pytester.path / "out.json").read_text())
    assert doc["session"]["baselines_not_written"] == []
    assert "not_written" not in {res["verdict"]["status"] for res in doc["results"]}


def test_an_update_that_cannot_write_exits_4_and_names_the_file(pytester: pytest.Pytester) -> None:
    """Kept from before issue 11: never a green run when the baseline was not written."""
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / "blocker").write_text("a file where the baseline directory should be")
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-baseline-dir=blocker/base")
    assert r.ret == 4
    # Found at session start since issue 25, before anything is measured.
    r.stderr.fnmatch_lines(["ERROR: baseline directory *blocker/base cannot be written: *blocker is not a directory*"])
    assert "test_perf.py" not in r.stdout.str()
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
