"""The whole loop for real: measure -> baseline -> statistical gate -> report.

Every test runs pytest itself (pytester) on real host workloads, with real
JSON files on disk. Slowdowns are injected by spinning longer on the clock
(helpers.SPIN_TEST), so each is exactly the amount asked for.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from gitrepo import commit_all, init
from helpers import FAST, QUICK, baseline_files, hash_test, load_baseline, run_inner, spin_test


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_perf=spin_test())
    return pytester


def test_update_then_compare_passes(suite: pytest.Pytester) -> None:
    r = run_inner(suite, "--trt-baseline=update")
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*trtperf*", "*test_perf.py::test_spin*median*updated*", "baseline written: *.json"])
    data = load_baseline(suite)
    entry = data["results"]["test_perf.py::test_spin"]
    assert data["schema_version"] == 2
    assert entry["distribution"]["n"] == entry["latency_ms"]["n"] >= 10
    (run_row,) = entry["history"]
    assert run_row["median"] == entry["latency_ms"]["median"] and run_row["timestamp"] == entry["timestamp"]
    assert len(entry["distribution"]["quantiles_ms"]) == 101
    assert entry["fingerprint"]["critical"] == {"kind": "host"}

    r = run_inner(suite)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin*median*pass*"])


def test_thirty_percent_slower_fails_with_message(suite: pytest.Pytester) -> None:
    run_inner(suite, "--trt-baseline=update").assert_outcomes(passed=1)
    # In-process: this machine's processes differ by up to ~25% in host speed
    # (bench/RESULTS.md); the gate's arithmetic is what is under test here.
    r = run_inner(suite, scale=1.3)
    r.assert_outcomes(failed=1)
    change = float(re.search(r"regressed \+([\d.]+)%", r.stdout.str())[1])
    assert 25 < change < 35, change  # the spin is exactly 1.3x; calls and preemptions move it a little
    # The cause first: pytest's short summary shows it.
    r.stdout.fnmatch_lines([
        "median latency regressed +*% (* -> *, 99% CI +*..+*; tolerance 5.0%, between-run noise *"
        "(sd 3.5%, host prior, 1 run); * decided) (confirmed by a second measurement)",
        "*test_perf.py::test_spin: median latency regressed +*",
        "FAILED test_perf.py::test_spin - Failed: median latency regressed +*",
    ])
    assert "Traceback" not in r.stdout.str()
    change = float(r.stdout.str().split("regressed +")[1].split("%")[0])
    assert 15 < change < 60, change


def test_faster_is_reported_not_failed(suite: pytest.Pytester) -> None:
    run_inner(suite, "--trt-baseline=update", scale=1.5).assert_outcomes(passed=1)
    r = run_inner(suite, scale=1.0)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_spin*improved*"])


@pytest.mark.long
def test_twenty_no_change_compares_never_fail(suite: pytest.Pytester) -> None:
    """In a git checkout, as most projects are and as a user meets it: a
    suspect baseline verdict is confirmed side by side against the commit the
    baseline entry records (the default in compare mode). Without that, a
    machine whose speed moved since the update fails unchanged code: on this
    project's 2-core VM a vCPU switches between two speeds (sha256 of 300 kB
    read 246 us at the update and 288-295 us later, +17-20%, beyond the 13.6%
    host allowance of a one-run baseline). So this test hashes, as a user's
    code is host-speed bound, instead of spinning a fixed time."""
    suite.makepyfile(test_perf=hash_test())
    init(suite.path)
    (suite.path / ".gitignore").write_text(".trtperf/\n")
    commit_all(suite.path, "reference")
    run_inner(suite, "--trt-baseline=update", opts=FAST).assert_outcomes(passed=1)
    outcomes = []
    for _ in range(20):
        r = run_inner(suite, opts=FAST)
        outcomes.append(r.parseoutcomes())
    failures = [o for o in outcomes if o.get("failed")]
    assert failures == [], outcomes


def test_two_percent_slowdown_passes_five_percent_tolerance(suite: pytest.Pytester) -> None:
    run_inner(suite, "--trt-baseline=update").assert_outcomes(passed=1)
    r = run_inner(suite, "--trt-tolerance=5%", scale=1.02)
    r.assert_outcomes(passed=1)


def test_per_test_tolerance_and_metric_from_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test().replace(
        "def test_spin", "@pytest.mark.trt_perf(tolerance='300%', metric='p99')\ndef test_spin"))
    # FAST windows: a p99 of QUICK's ~200 calls is their second-slowest, and two calls preempted by the other
    # xdist worker (a 4 ms time slice each) read +1622% in a whole -n 2 run.
    run_inner(pytester, "--trt-baseline=update", opts=FAST).assert_outcomes(passed=1)
    # +30% fails at the default 5%; the marker's 300% is wide enough that a p99
    # taken on a loaded shared machine (it moved +80% there) cannot break it. A
    # short window's p99 interval can also be too wide to decide anything
    # (issue 25: unreliable, never a pass): either way the verdict is held to
    # the marker's metric and tolerance.
    r = run_inner(pytester, "--trt-json=out.json", scale=1.3, opts=FAST)
    r.assert_outcomes(passed=1)
    v = json.loads((pytester.path / "out.json").read_text())["results"][0]["verdict"]
    assert v["metric"] == "p99" and v["tolerance"] == 3.0, v
    assert v["status"] == "pass" or (v["status"], v["decided_by"]) == ("unreliable", "too_wide"), v
    r.stdout.fnmatch_lines([f"*test_spin*p99*{v['status']}*"])


@pytest.mark.parametrize("content,what", [
    (b'{"schema_version": 1, "results": {', "truncated"),
    (b"\x00\x01garbage", "corrupt"),
    # A newer schema in another device class's file is a note since issue 25
    # (tests/test_baseline_rewrite.py); for the class that needs it, an error.
    (b'{"schema_version": 1, "device_class": "x", "results": {"a": {"kind": "host"}}}',
     "entry 'a': field fingerprint is missing"),
])
@pytest.mark.parametrize("mode", ["compare", "update"])
def test_bad_baseline_file_is_a_usage_error_and_untouched(suite: pytest.Pytester, content: bytes, what: str,
                                                          mode: str) -> None:
    d = suite.path / ".trtperf"
    d.mkdir()
    bad = d / "host-some-cpu-cpython.json"
    bad.write_bytes(content)
    before = bad.stat().st_mtime_ns
    r = run_inner(suite, f"--trt-baseline={mode}", subprocess=True)
    assert r.ret == 4
    errors = [line for line in r.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, r.stderr.lines
    assert str(bad) in errors[0] and what in errors[0]
    assert "Traceback" not in r.stderr.str() + r.stdout.str()
    assert bad.read_bytes() == content and bad.stat().st_mtime_ns == before
    assert sorted(p.name for p in d.iterdir()) == [bad.name]


def test_update_merges_and_keeps_other_entries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_other(trt_bench):\n"
                                                "    trt_bench.measure(lambda: sum(range(100)))\n")
    run_inner(pytester, "--trt-baseline=update").assert_outcomes(passed=2)
    first = load_baseline(pytester)["results"]
    run_inner(pytester, "--trt-baseline=update", "-k", "test_other").assert_outcomes(passed=1, deselected=1)
    second = load_baseline(pytester)["results"]
    assert set(second) == {"test_perf.py::test_spin", "test_perf.py::test_other"}
    assert second["test_perf.py::test_spin"] == first["test_perf.py::test_spin"]
    assert second["test_perf.py::test_other"]["timestamp"] >= first["test_perf.py::test_other"]["timestamp"]


def test_sigkill_during_update_leaves_previous_file_intact(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_slow(trt_bench):\n"
                                                "    import time\n"
                                                "    open('started', 'w').close()\n"
                                                "    trt_bench.measure(lambda: time.sleep(0.001), max_time=60, "
                                                "min_time=60)\n")
    run_inner(pytester, "--trt-baseline=update", "-k", "test_spin").assert_outcomes(passed=1, deselected=1)
    path = baseline_files(pytester)[0]
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, "--trt-baseline=update"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (pytester.path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert path.read_bytes() == before
    json.loads(before)
    assert [p.name for p in path.parent.iterdir() if p.name != ".gitignore"] == [path.name]  # .gitignore: ours


def test_interrupted_update_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_stop(trt_bench):\n"
                                                "    trt_bench.measure(lambda: None)\n"
                                                "    raise KeyboardInterrupt\n")
    r = run_inner(pytester, "--trt-baseline=update", subprocess=True)
    assert r.ret == 2
    assert baseline_files(pytester) == []
    r.stdout.fnmatch_lines(["*baseline NOT written: the session was interrupted*"])


@pytest.mark.parametrize("workers", ["2"])
def test_xdist_matches_serial(pytester: pytest.Pytester, workers: str) -> None:
    body = spin_test()
    for i in range(4):
        body += (f"\n\ndef test_case_{i}(trt_bench):\n"
                 f"    trt_bench.measure(lambda: spin({50_000 * (i + 1)}), name='n{i}')\n")
    pytester.makepyfile(test_perf=body)
    # The serial sessions run in this process (nothing about processes is tested there); xdist's in their own.
    # Short windows throughout: files, identities and verdicts are compared, not timings.
    serial = run_inner(pytester, "--trt-baseline=update", "--trt-json=serial.json", opts=QUICK)
    serial.assert_outcomes(passed=5)
    serial_file = load_baseline(pytester)
    for p in baseline_files(pytester):
        p.unlink()
    par = run_inner(pytester, "--trt-baseline=update", "-n", workers, "--trt-json=par.json", subprocess=True,
                    opts=QUICK)
    par.assert_outcomes(passed=5)
    par_file = load_baseline(pytester)
    assert par_file.keys() == serial_file.keys()
    assert par_file["results"].keys() == serial_file["results"].keys()
    assert par_file["device_class"] == serial_file["device_class"]
    for key, entry in serial_file["results"].items():
        assert par_file["results"][key].keys() == entry.keys()
        assert par_file["results"][key]["config_hash"] == entry["config_hash"]
    # And a compare under xdist reaches the same verdicts as a serial compare
    # (a wide tolerance: this checks the plumbing, not the speed differences
    # between processes and two cores' contention).
    v_serial = run_inner(pytester, "--trt-json=s.json", "--trt-tolerance=60%", opts=QUICK)
    v_par = run_inner(pytester, "-n", workers, "--trt-json=p.json", "--trt-tolerance=60%", subprocess=True,
                     opts=QUICK)
    verdicts = lambda name: {r["id"]: r["verdict"]["status"]  # noqa: E731
                             for r in json.loads((pytester.path / name).read_text())["results"]}
    assert v_serial.ret == v_par.ret == 0
    assert verdicts("s.json") == verdicts("p.json")
    assert set(verdicts("p.json").values()) == {"pass"}


@pytest.mark.parametrize("name", ["../../escape", "/abs/path", "a" * 5000, "ünïcødé-名前-🚀", "x\\y\nz", ".."])
def test_hostile_result_names_stay_inside_the_baseline_dir(pytester: pytest.Pytester, name: str) -> None:
    pytester.makepyfile(test_perf=spin_test().replace("measure(spin)", f"measure(spin, name={name!r})"))
    before = {p for p in pytester.path.rglob("*")}
    run_inner(pytester, "--trt-baseline=update", "--trt-max-time=0.5").assert_outcomes(passed=1)
    created = {p for p in pytester.path.rglob("*")} - before
    base = pytester.path / ".trtperf"
    assert created and all(p == base or base in p.parents for p in created), created
    assert f"test_perf.py::test_spin::{name}" in load_baseline(pytester)["results"]
    r = run_inner(pytester, "--trt-max-time=0.5")
    r.assert_outcomes(passed=1)


def test_missing_baseline_passes_with_note_or_fails_on_request(suite: pytest.Pytester) -> None:
    r = run_inner(suite)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_spin*missing*", "*have no baseline; record them with pytest --trt-baseline=update*"])
    r = run_inner(suite, "--trt-missing-baseline=fail")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["no baseline in *; run pytest --trt-baseline=update to record one "
                            "(--trt-missing-baseline=fail)"])


def test_several_named_measurements_are_separate_results(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf="""
        import hashlib
        DATA = b"x" * 100_000
        def test_sweep(trt_bench):
            for n in (1_000, 10_000, 100_000):
                r = trt_bench.measure(lambda: hashlib.sha256(DATA[:n]).digest(), name=f"n{n}")
                assert r.id.endswith(f"::n{n}")
        def test_dup(trt_bench):
            trt_bench.measure(lambda: None, name="a")
            trt_bench.measure(lambda: None, name="a")
    """)
    r = run_inner(pytester, "--trt-baseline=update", "--trt-max-time=0.5")
    r.assert_outcomes(passed=1, failed=1)
    r.stdout.fnmatch_lines(["two measurements named 'a' in one test; give each*"])
    assert set(load_baseline(pytester)["results"]) >= {f"test_perf.py::test_sweep::n{n}" for n in (1000, 10000, 100000)}


def test_unknown_marker_argument_fails_that_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf="""
        import pytest
        @pytest.mark.trt_perf(tolerence="5%")
        def test_typo(trt_bench):
            trt_bench.measure(lambda: None)
        def test_fine():
            pass
    """)
    r = run_inner(pytester, "--trt-baseline=off")
    r.assert_outcomes(passed=1, failed=1)
    r.stdout.fnmatch_lines(["unknown trt_perf argument 'tolerence' (known: *",
                            "FAILED test_perf.py::test_typo - Failed: unknown trt_perf argument *"])
    assert "Traceback" not in r.stdout.str()


def test_bad_option_value_is_a_one_line_usage_error(suite: pytest.Pytester) -> None:
    r = run_inner(suite, "--trt-tolerance=lots", subprocess=True)
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-tolerance: 'lots' is not a fraction; write it as 5% or 0.05"])


def test_ini_keys_configure_the_plugin(suite: pytest.Pytester) -> None:
    suite.makeini("[pytest]\ntrt_baseline_dir = perf/baselines\ntrt_metric = mean\n")
    # FAST windows: a mean of QUICK's ~200 calls moves +16% with two of them preempted (see above).
    run_inner(suite, "--trt-baseline=update", opts=FAST).assert_outcomes(passed=1)
    assert len(list((suite.path / "perf" / "baselines").glob("*.json"))) == 1
    r = run_inner(suite, opts=FAST)
    # Compared (the ini's directory was found) on the ini's metric; pass or improved
    # alike: a mean on a loaded shared machine moved -38% once, which is not the point.
    r.stdout.re_match_lines([r".*test_spin\s+mean\s.*\b(pass|improved)\b.*"])


def test_json_report_and_junit_properties(suite: pytest.Pytester) -> None:
    run_inner(suite, "--trt-baseline=update").assert_outcomes(passed=1)
    r = run_inner(suite, "--trt-json=out/results.json", "--junitxml=junit.xml")
    r.assert_outcomes(passed=1)
    doc = json.loads((suite.path / "out" / "results.json").read_text())
    assert doc["schema_version"] == 2 and doc["session"]["baseline_mode"] == "compare"
    (res,) = doc["results"]
    assert res["id"] == "test_perf.py::test_spin"
    assert res["verdict"]["status"] == "pass" and res["verdict"]["ci"][0] < res["verdict"]["ci"][1]
    assert res["latency_ms"]["median"] > 0 and res["throughput"] > 0
    props = {p.get("name"): p.get("value") for p in ET.parse(suite.path / "junit.xml").iter("property")}
    assert props["trtperf.verdict"] == "pass"
    assert float(props["trtperf.median_ms"]) == pytest.approx(res["latency_ms"]["median"], rel=1e-4)
    assert props["trtperf.metric"] == "median"
    assert float(props["trtperf.value"]) == pytest.approx(res["latency_ms"]["median"], rel=1e-4)
    assert float(props["trtperf.baseline"]) == pytest.approx(res["verdict"]["baseline_value"], rel=1e-4)


def test_junit_names_the_gated_metric_and_its_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test().replace(
        "def test_spin", "@pytest.mark.trt_perf(metric='throughput')\ndef test_spin"))
    run_inner(pytester, "--trt-baseline=off", "--junitxml=junit.xml").assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert props["trtperf.metric"] == "throughput"
    assert float(props["trtperf.value"]) == pytest.approx(float(props["trtperf.throughput"]))
    assert float(props["trtperf.value"]) != pytest.approx(float(props["trtperf.median_ms"]))


def test_baseline_off_measures_without_files(suite: pytest.Pytester) -> None:
    r = run_inner(suite, "--trt-baseline=off")
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_spin*off*"])
    assert not (suite.path / ".trtperf").exists()


def test_plugin_can_be_disabled(suite: pytest.Pytester) -> None:
    r = suite.runpytest_subprocess("-p", "no:trtperf", "-p", "no:cacheprovider")
    r.assert_outcomes(errors=1)
    r.stdout.fnmatch_lines(["*fixture 'trt_bench' not found*"])


def test_paths_from_the_command_line_are_relative_to_the_invocation_dir(suite: pytest.Pytester) -> None:
    sub = suite.path / "sub"
    sub.mkdir()
    suite.makeini("[pytest]\n")
    os.chdir(sub)
    r = run_inner(suite, "--trt-baseline=update", "--trt-baseline-dir=base", "--trt-json=out.json",
            str(suite.path / "test_perf.py"), subprocess=True)
    r.assert_outcomes(passed=1)
    assert len(list((sub / "base").glob("*.json"))) == 1 and (sub / "out.json").is_file()
    assert not (suite.path / "base").exists()


def test_unwritable_json_path_is_one_line_and_exit_4(suite: pytest.Pytester) -> None:
    (suite.path / "blocker").write_text("a file, not a directory")
    r = run_inner(suite, "--trt-baseline=off", "--trt-json=blocker/out.json", subprocess=True)
    assert r.ret == 4
    r.stdout.fnmatch_lines(["--trt-json NOT written: */blocker/out.json: *; check the path"])
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
