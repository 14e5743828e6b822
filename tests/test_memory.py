"""Memory as a gated metric, for real: pytest runs (pytester, separate
processes where the claim is about processes) of host callables whose
per-call allocation is set from outside, real baseline files, real reports.

The callables allocate with ``numpy.empty`` (numpy reports its buffers to
``tracemalloc``; the pages are never touched, so the time hardly changes):
doubling the bytes changes the memory, not the latency.
"""

from __future__ import annotations

import functools
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import QUICK, load_baseline, run_inner
from pytest_trtperf.core import memory
from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry, read_file
from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.plugin.options import OPTIONS
from pytest_trtperf.core.errors import BaselineFileError, UsageError
from pytest_trtperf.core.fingerprint import host_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.core.memory import MemoryVerdict
from pytest_trtperf.gate import memory as memory_gate
from pytest_trtperf.gate.memory import MIN_GROWTH_BYTES, judge_memory
from pytest_trtperf.report import github, html, terminal
from pytest_trtperf.core.results import Result

ALLOC_TEST = '''
import os
import numpy as np
import pytest

MB = int(float(os.environ.get("TRTPERF_TEST_MB", "4")) * (1 << 20))


def test_alloc(trt_bench):
    trt_bench.measure(lambda: np.empty(MB, np.uint8))
'''

#: Time is not under test here: a loose time tolerance keeps host noise out.
LOOSE = ["--trt-tolerance=200%", "--trt-json=r.json"]


run = functools.partial(run_inner, opts=(*QUICK, *LOOSE), subprocess=True)


def result_json(p: pytest.Pytester) -> dict:
    (r,) = json.loads((p.path / "r.json").read_text())["results"]
    return r


@pytest.fixture
def alloc(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_mem=ALLOC_TEST)
    return pytester


# ------------------------------------------------------------- the whole loop
def test_twice_the_allocation_fails_and_the_same_passes(alloc: pytest.Pytester) -> None:
    run(alloc, "--trt-baseline=update").assert_outcomes(passed=1)
    entry = load_baseline(alloc)["results"]["test_mem.py::test_alloc"]
    assert 4 << 20 <= entry["memory"]["host_peak_bytes"] < (4 << 20) + MIN_GROWTH_BYTES

    same = run(alloc)
    same.assert_outcomes(passed=1)
    assert result_json(alloc)["memory_verdict"]["status"] == "pass"

    doubled = run(alloc, mb=8)
    doubled.assert_outcomes(failed=1)
    doubled.stdout.fnmatch_lines([
        # The failure text, the cause first ...
        "host memory peak per call grew +100.0% (4.0 MiB -> 8.0 MiB, tolerance 10.0% "
        "and 64.0 KiB) (confirmed by a second measurement)",
        # ... the terminal summary names the result ...
        "test_mem.py::test_alloc: host memory peak per call grew +100.0%*",
        # ... and so an 80-column short summary shows the cause.
        "FAILED test_mem.py::test_alloc - Failed: host memory peak per call grew*",
    ])
    assert "Traceback" not in doubled.stdout.str()
    r = result_json(alloc)
    assert r["verdict"]["status"] != "regression"  # the time did not fail it: the memory did
    assert r["memory_verdict"]["status"] == "regression" and r["memory_verdict"]["remeasured"] is True
    (change,) = r["memory_verdict"]["changes"]
    assert change["figure"] == "host_peak_bytes" and change["current"] >= 8 << 20
    assert 0.95 < change["change"] < 1.05
    # The terminal table: a memory row with the bytes before and after, sorted first.
    doubled.stdout.fnmatch_lines(["*result*metric*baseline*current*change*verdict*",
                                  "test_mem.py::test_alloc*median*",
                                  "test_mem.py::test_alloc*host memory*4.0 MiB*8.0 MiB*+100.0%*REGRESSION*"])


def test_half_the_allocation_is_improved_not_failed(alloc: pytest.Pytester) -> None:
    run(alloc, "--trt-baseline=update", mb=8).assert_outcomes(passed=1)
    r = run(alloc, mb=4)
    r.assert_outcomes(passed=1)
    assert result_json(alloc)["memory_verdict"]["status"] == "improved"
    r.stdout.fnmatch_lines(["*host memory peak per call shrank -50.0% (8.0 MiB -> 4.0 MiB)*"])


def test_memory_tolerance_marker_option_and_off(alloc: pytest.Pytester) -> None:
    run(alloc, "--trt-baseline=update").assert_outcomes(passed=1)
    # 1.5x the bytes: over the 10% default, under a 60% tolerance from the command line or the ini file.
    run(alloc, mb=6).assert_outcomes(failed=1)
    run(alloc, "--trt-memory-tolerance=60%", mb=6).assert_outcomes(passed=1)
    alloc.makeini("[pytest]\ntrt_memory_tolerance = 60%\n")
    run(alloc, mb=6).assert_outcomes(passed=1)
    # The marker wins over both; "off" records memory and never fails.
    alloc.makepyfile(test_mem=ALLOC_TEST.replace("def test_alloc", "@pytest.mark.trt_perf(memory_tolerance='20%')\n"
                                                                   "def test_alloc"))
    run(alloc, mb=6).assert_outcomes(failed=1)
    r = run(alloc, "--trt-memory-tolerance=off", mb=6, subprocess=False)
    r.assert_outcomes(failed=1)  # the marker's 20% still applies
    alloc.makepyfile(test_mem=ALLOC_TEST.replace("def test_alloc", "@pytest.mark.trt_perf(memory_tolerance='off')\n"
                                                                   "def test_alloc"))
    run(alloc, mb=6).assert_outcomes(passed=1)
    v = result_json(alloc)["memory_verdict"]
    assert v["status"] == "off" and v["tolerance"] is None and v["changes"][0]["current"] >= 6 << 20


def test_a_baseline_written_before_memory_still_loads(alloc: pytest.Pytester) -> None:
    run(alloc, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (alloc.path / ".trtperf").glob("*.json")
    data = json.loads(path.read_text())
    for entry in data["results"].values():
        del entry["memory"]
    path.write_text(json.dumps(data))
    r = run(alloc, mb=8)
    r.assert_outcomes(passed=1)  # nothing to compare memory with: a note, not a failure
    v = result_json(alloc)["memory_verdict"]
    assert v["status"] == "missing" and v["changes"][0]["baseline"] is None
    # An update writes the figures; the entries it merges keep theirs.
    run(alloc, "--trt-baseline=update", mb=8).assert_outcomes(passed=1)
    assert "memory" in load_baseline(alloc)["results"]["test_mem.py::test_alloc"]


def test_tracked_calls_run_after_the_timed_window(pytester: pytest.Pytester) -> None:
    """Every timed call (warm-up included) runs untraced; only the few calls
    after the measurement are traced, so tracemalloc never slows what is timed."""
    pytester.makepyfile(test_order='''
import tracemalloc

SEEN = []


def test_order(trt_bench):
    r = trt_bench.measure(lambda: SEEN.append(tracemalloc.is_tracing()))
    traced = [i for i, t in enumerate(SEEN) if t]
    timed = r.latency.n + r.warmup_iterations
    assert 3 <= len(traced) <= 5, len(traced)
    assert traced == list(range(len(SEEN) - len(traced), len(SEEN)))
    assert len(SEEN) - len(traced) >= timed
    assert not tracemalloc.is_tracing()
''')
    pytester.runpytest(*QUICK, "--trt-baseline=off").assert_outcomes(passed=1)


# ------------------------------------------------------------------ the rule
def test_rule_needs_the_tolerance_and_the_floor() -> None:
    mib = 1 << 20
    assert memory_gate.compare("host_peak_bytes", 10 * mib, 11 * mib + 1, 0.10).status == "regression"
    assert memory_gate.compare("host_peak_bytes", 10 * mib, 11 * mib, 0.10).status == "pass"
    assert memory_gate.compare("host_peak_bytes", 10 * mib, 9 * mib - 1, 0.10).status == "improved"
    # Small figures: doubling 20 KiB is under the 64 KiB floor.
    assert memory_gate.compare("host_peak_bytes", 20 << 10, 40 << 10, 0.10).status == "pass"
    assert memory_gate.compare("host_peak_bytes", 20 << 10, (20 << 10) + MIN_GROWTH_BYTES + 1, 0.10).status == "regression"
    grown = memory_gate.compare("device_peak_bytes", 0, mib, 0.10)
    assert grown.status == "regression" and grown.change is None  # from nothing
    assert memory_gate.compare("device_peak_bytes", None, mib, 0.10).status == "missing"


def host_result(rid: str = "t.py::test_m", **figures: int) -> Result:
    x = np.full(50, 1e-4)
    fp = host_fingerprint()
    return Result(id=rid, nodeid=rid, name=None, kind="host", mode="latency", latency=stats.summarize(x),
                  throughput=1e4, distribution=stats.compress(x), stop_reason="converged", warmup_iterations=5,
                  warmup_s=0.2, measured_s=1.0, config_hash="c0ffee", identity={}, fingerprint=fp.to_dict(),
                  device_class=fp.device_class, memory=figures, location=("t.py", 3))


def judged(base: Result, cur: Result, tolerance: float | None = 0.10) -> Result:
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None)
    v = judge(cur, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
              baseline_path="b.json")
    mv = judge_memory(cur.memory, entry, v, baseline_mode="compare", tolerance=tolerance,
                      baseline_path="b.json")
    return dataclasses.replace(cur, verdict=v, memory_verdict=mv)


def test_verdict_states() -> None:
    base, cur = host_result(host_peak_bytes=4 << 20), host_result(host_peak_bytes=8 << 20)
    assert judged(base, cur).memory_verdict.status == "regression"
    assert judged(base, cur, tolerance=None).memory_verdict.status == "off"
    incomparable = dataclasses.replace(cur, config_hash="other")
    v = judged(base, incomparable).memory_verdict
    assert v.status == "incomparable" and "not comparable" in v.message
    for mode, status in (("update", "updated"), ("off", "off")):
        assert judge_memory(cur.memory, None, None, baseline_mode=mode, tolerance=0.1,
                            baseline_path="b").status == status
    assert judge_memory(cur.memory, None, None, baseline_mode="compare", tolerance=0.1,
                        baseline_path="b").status == "missing"
    assert judge_memory({"plan_bytes": 1}, None, None, baseline_mode="compare", tolerance=0.1,
                        baseline_path="b") is None  # no gated figure: no memory verdict
    round_trip = Result.from_dict(json.loads(json.dumps(judged(base, cur).to_dict())))
    assert round_trip.memory_verdict == judged(base, cur).memory_verdict and round_trip.memory == cur.memory


def test_remeasure_lets_the_second_measurement_decide() -> None:
    """A one-off allocation (a cache filled once) must not fail the test."""
    class OnceBig:
        kind = "host"
        calls = 0

        def memory_figures(self) -> dict[str, int]:
            self.calls += 1
            return {"host_peak_bytes": (8 << 20) if self.calls == 1 else (4 << 20)}

    entry = BaselineEntry.from_result(host_result(host_peak_bytes=4 << 20), timestamp="T", git_commit=None)

    def judge_one(figures: dict) -> MemoryVerdict | None:
        return judge_memory(figures, entry, None, baseline_mode="compare", tolerance=0.1, baseline_path="b")

    w = OnceBig()
    figures, v = memory.measure_and_judge(w, judge_one, remeasure=True)
    assert (v.status, v.remeasured, figures["host_peak_bytes"], w.calls) == ("pass", True, 4 << 20, 2)
    w = OnceBig()
    figures, v = memory.measure_and_judge(w, judge_one, remeasure=False)
    assert (v.status, w.calls) == ("regression", 1)


# ------------------------------------------------------------ options, files
def test_default_tolerance_is_one_number_everywhere() -> None:
    (opt,) = [o for o in OPTIONS if o.flag == "--trt-memory-tolerance"]
    assert MeasureOptions().memory_tolerance == memory.DEFAULT_TOLERANCE == float(opt.default.rstrip("%")) / 100


@pytest.mark.parametrize("value, fragment", [("5", "would mean 500%"), ("-1%", "non-negative"),
                                             ("nan", "non-negative"), ("lots", "not a fraction")])
def test_bad_memory_tolerance_is_one_line(value: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as exc:
        MeasureOptions().with_overrides({"memory_tolerance": value}, where="t.py::test_x")
    assert "\n" not in str(exc.value) and "t.py::test_x: memory_tolerance" in str(exc.value)


def test_bad_option_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mem=ALLOC_TEST)
    r = pytester.runpytest(*QUICK, "--trt-memory-tolerance=5")
    assert r.ret == 4
    r.stderr.fnmatch_lines(["*--trt-memory-tolerance: '5' would mean 500%*"])


@pytest.mark.parametrize("figures", [{"host_peak_bytes": -1}, {"host_peak_bytes": 1.5}, {"host_peak_bytes": True},
                                     {"host_peak_bytes": "4"}, [1, 2]])
def test_malformed_memory_in_a_baseline_is_refused_in_one_line(tmp_path: Path, figures: object) -> None:
    r = host_result(host_peak_bytes=1)
    entry = BaselineEntry.from_result(r, timestamp="T", git_commit=None).to_dict()
    entry["memory"] = figures
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"schema_version": 1, "device_class": r.device_class, "results": {r.id: entry}}))
    with pytest.raises(BaselineFileError) as exc:
        read_file(path)
    assert "\n" not in str(exc.value) and "malformed" in str(exc.value)


def test_unknown_figures_survive_a_round_trip(tmp_path: Path) -> None:
    """A newer version may record more figures: an update here keeps them."""
    r = host_result(host_peak_bytes=1)
    entry = BaselineEntry.from_result(r, timestamp="T", git_commit=None).to_dict()
    entry["memory"]["future_bytes"] = 7
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"schema_version": 1, "device_class": r.device_class, "results": {r.id: entry}}))
    assert read_file(path).entries[r.id].memory == {"host_peak_bytes": 1, "future_bytes": 7}


# ------------------------------------------------------------------- reports
def suite() -> list[Result]:
    base = host_result("t.py::test_grew", host_peak_bytes=4 << 20)
    grew = judged(base, host_result("t.py::test_grew", host_peak_bytes=8 << 20))
    same = judged(host_result("t.py::test_same", host_peak_bytes=1 << 20),
                  host_result("t.py::test_same", host_peak_bytes=1 << 20))
    return [same, grew]


def test_terminal_table_summary_and_junit() -> None:
    results = suite()
    lines = terminal.format_table(results)
    assert lines[2].startswith("t.py::test_grew") and "median" in lines[2]  # a memory regression sorts first
    assert lines[3].split() == ["t.py::test_grew", "host", "memory", "4.0", "MiB", "8.0", "MiB", "+100.0%",
                                "REGRESSION", "-"]
    assert len(lines) == 5  # the unchanged result has no memory row
    summary = terminal.summary_lines(results, written=[], write_error=None)
    assert summary[0] == "1 regression, 1 pass; 1 memory regression"  # never "2 pass" for a failed test
    assert any("host memory peak per call grew +100.0% (4.0 MiB -> 8.0 MiB" in s for s in summary)
    props = dict(terminal.junit_properties(results[1:]))
    assert props["trtperf.host_peak_bytes"] == str(8 << 20) and props["trtperf.memory_verdict"] == "regression"


def test_job_summary_and_annotations(tmp_path: Path) -> None:
    results = suite()
    md = github.step_summary(results)
    assert "| t.py::test_grew | host memory | 4.0 MiB | 8.0 MiB | +100.0% | \u274c **regression** | - |" in md
    assert md.splitlines()[2] == "\u274c 1 regression, \u2705 1 pass; memory: \u274c 1 regression"
    assert "host memory peak per call grew +100.0%" in md.split("Regression and unreliable details")[1]
    (note,) = github.workflow_annotations(results, [tmp_path])
    assert note.startswith("::error file=t.py,line=3,title=trtperf memory regression%3A t.py%3A%3Atest_grew::")
    assert "4.0 MiB -> 8.0 MiB" in note


def test_job_summary_headline_fails_on_a_memory_regression_alone() -> None:
    """The time verdict passed, memory regressed, the test failed: the
    headline must not read ``✅ 1 pass; 1 memory regression``."""
    grew = suite()[1]
    assert grew.verdict is not None and grew.verdict.status == "pass"
    headline = github.step_summary([grew]).splitlines()[2]
    assert headline.startswith("\u274c 1 regression") and "\u2705" not in headline, headline
    assert headline.endswith("; memory: \u274c 1 regression")


def test_html_memory_table_and_status() -> None:
    results = suite()
    base = BaselineEntry.from_result(host_result("t.py::test_grew", host_peak_bytes=4 << 20), timestamp="T",
                                     git_commit=None)
    page = html.render(results, {"t.py::test_grew": base}, generated="now", plots=False)
    grew = page.split('id="r0"')[1].split("</section>")[0]
    assert 'data-status="regression"' in page.split("<section")[1]  # the memory regression colours the result
    assert "<h3>Memory</h3>" in grew and "host memory peak per call" in grew
    assert "4.0 MiB" in grew and "8.0 MiB" in grew and "+100.0%" in grew
    assert "grew +100.0%" in grew  # the memory verdict's message
