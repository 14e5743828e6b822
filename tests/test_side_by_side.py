"""``--trt-ab``: every perf test judged against the same test at another git
revision (or in another interpreter), in a second pytest process, the two
measuring in alternating blocks.

Everything here is real: git repositories and worktrees, the reference
process, the socket between them, the plugin under pytester, and slowdowns made by real extra work in the code at one revision and not
the other (hashing 30% more bytes), so a test fails when the mechanism does
not tell the two revisions apart, or tells them apart when they are equal.

Tests whose point is a ratio or a timing verdict measure with ``FAST``
windows; tests of plumbing (new, unreliable and crash lines, cleanup,
exports, the setup command, what is served) measure with ``QUICK`` windows:
their assertions hold for any window the gate accepts. The judging session
runs in this process (``run``; the reference is a second process either
way); where the judging process itself is the point (stopped, killed, xdist
workers, a shallow clone run as users run it) it is a process of its own.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitrepo import commit_all, git, init
from helpers import FAST, QUICK, hash_test, run_inner, scratch_tmpdir

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

#: Bytes hashed per call at the reference; +30% is the slowdown the tests inject.
N = 300_000
SLOWER = int(N * 1.3)


@pytest.fixture
def repo(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory,
         monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester's directory as a git repository with the hash test committed;
    worktrees go to a temp directory of their own (outside the tree), so a
    test can see that nothing is left there."""
    init(pytester.path)
    pytester.makepyfile(test_perf=hash_test(N))
    (pytester.path / ".gitignore").write_text(".trtperf/\n")
    commit_all(pytester.path, "reference")
    scratch_tmpdir(monkeypatch, tmp_path_factory)
    return pytester


def scratch_left() -> list[str]:
    return sorted(os.listdir(os.environ["TMPDIR"]))


def results(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(path.read_text())["results"]}


#: One judging session, in this process: pytester restores sys.modules after
#: it, and ``repo`` points tempfile at the scratch directory as TMPDIR does
#: for a process of its own.
run = functools.partial(run_inner, opts=FAST)  # hashing, timed: FAST windows


def test_a_real_slowdown_fails_and_the_same_code_passes(repo: pytest.Pytester) -> None:
    head = git(repo.path, "rev-parse", "HEAD")
    out = repo.path / "same.json"
    same = run(repo, "--trt-ab=HEAD", f"--trt-json={out}")
    same.assert_outcomes(passed=1)
    r = results(out)["test_perf.py::test_hash"]
    assert r["verdict"]["status"] == "pass"
    assert "side by side against HEAD" in r["verdict"]["message"]
    rel = r["relative"]
    assert rel["origin"] == "side_by_side" and rel["commit"] == head and len(rel["pair_ratios"]) >= 10
    assert rel["reference"]["revision"] == "HEAD" and rel["reference"]["python"]
    assert 0.9 < rel["ratio"] < 1.1  # the same code on both sides
    # Nothing of this session is left: no worktree, no scratch directory, the user's tree as it was.
    assert scratch_left() == []
    assert git(repo.path, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo.path, "status", "--porcelain", "--untracked-files=no") == ""  # the checkout untouched

    repo.makepyfile(test_perf=hash_test(SLOWER))  # the candidate hashes 30% more bytes; REV is unchanged
    summary, html = repo.path / "summary.md", repo.path / "r.html"
    slow = run(repo, "--trt-ab=HEAD", f"--trt-json={out}", f"--trt-report={html}",
               env={"GITHUB_STEP_SUMMARY": str(summary)})
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*median latency regressed +*% side by side against HEAD (" + head[:12]
                               + "), measured interleaved in two processes*"])
    ratio = results(out)["test_perf.py::test_hash"]["relative"]["ratio"]
    assert 1.15 < ratio < 1.5, ratio  # the work grew by 30%; the paired ratio sees it, not the noise
    # Both sides, the revision and the environment in the job summary and the HTML report.
    assert f"{head[:7]} " in summary.read_text() and "now " in summary.read_text()
    page = html.read_text()
    assert "reference revision" in page and f"HEAD ({head[:12]})" in page and "reference python" in page
    assert scratch_left() == []
    assert not (repo.path / ".trtperf").exists()  # side by side writes no baseline


def test_new_tests_and_new_parametrisations_are_new_not_judged(repo: pytest.Pytester) -> None:
    repo.makepyfile(test_param="""
import hashlib, pytest
@pytest.mark.parametrize("k", [1, 2])
def test_p(trt_bench, k):
    trt_bench.measure(lambda: hashlib.sha256(b"x" * 1000 * k).digest())
""")
    commit_all(repo.path, "params")
    repo.makepyfile(test_param="""
import hashlib, pytest
@pytest.mark.parametrize("k", [1, 3])
def test_p(trt_bench, k):
    trt_bench.measure(lambda: hashlib.sha256(b"x" * 1000 * k).digest())
""", test_brand_new="def test_b(trt_bench):\n    trt_bench.measure(lambda: sum(range(50)))\n")
    out = repo.path / "r.json"
    result = run(repo, "--trt-ab=HEAD", f"--trt-json={out}", "test_param.py", "test_brand_new.py", opts=QUICK)
    result.assert_outcomes(passed=3)
    got = results(out)
    assert got["test_param.py::test_p[1]"]["verdict"]["status"] == "pass"
    new3 = got["test_param.py::test_p[3]"]["verdict"]
    assert new3["status"] == "new"
    assert "test_p[3] is not among that test's parametrisations at HEAD" in new3["message"]
    assert "test_p[1], test_p[2]" in new3["message"]
    brand = got["test_brand_new.py::test_b"]["verdict"]
    assert brand["status"] == "new" and "test_brand_new.py does not exist at HEAD" in brand["message"]
    result.stdout.fnmatch_lines(["*1 pass*2 new*"])


def test_a_shallow_clone_is_one_line_and_unreliable_without_a_baseline(repo: pytest.Pytester,
                                                                         tmp_path: Path) -> None:
    repo.makepyfile(test_perf=hash_test(N + 1000))
    commit_all(repo.path, "second")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))
    args = [sys.executable, "-m", "pytest", *QUICK, "--trt-ab=HEAD~1", "-q", str(clone / "test_perf.py")]
    done = subprocess.run(args, cwd=clone, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout  # unreliable passes by default, with the line
    assert "HEAD~1 is not in this shallow clone; fetch the history (git fetch --unshallow, or actions/checkout " \
           "with fetch-depth: 0)" in done.stdout
    strict = subprocess.run([*args, "--trt-unreliable=fail"], cwd=clone, capture_output=True, text=True,
                            timeout=240)
    assert strict.returncode == 1
    assert "unreliable: side by side not possible (HEAD~1 is not in this shallow clone" in strict.stdout
    assert "(--trt-unreliable=fail)" in strict.stdout
    assert "Traceback" not in strict.stdout + strict.stderr


def test_without_the_reference_a_baseline_verdict_stands_marked(repo: pytest.Pytester) -> None:
    run(repo, "--trt-baseline=update", opts=QUICK).assert_outcomes(passed=1)
    # The line is the point, not the timing: a loaded machine must not turn the baseline verdict.
    calm = ("--trt-tolerance=400%", "--trt-watch-host-load=off")
    out = repo.path / "r.json"
    result = run(repo, "--trt-ab=no-such-branch", "-rA", f"--trt-json={out}", *calm, opts=QUICK)
    result.assert_outcomes(passed=1)
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    assert v["status"] in ("pass", "improved")
    assert v["message"].endswith("; side by side not possible (no-such-branch is not a revision of this "
                                 "repository; fetch it (git fetch origin) or name a branch, tag or commit that "
                                 "exists): this verdict rests on the baseline file")


def test_a_failing_setup_command_shows_its_last_lines(repo: pytest.Pytester) -> None:
    out = repo.path / "r.json"
    result = run(repo, "--trt-ab=HEAD", "--trt-ab-setup=echo compiling; echo 'error: no compiler' >&2; exit 3",
                 f"--trt-json={out}", opts=QUICK)
    result.assert_outcomes(passed=1)
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    assert v["status"] == "unreliable" and v["decided_by"] == "no_reference"
    assert "failed with exit code 3 in the worktree of HEAD" in v["message"]
    assert "compiling | error: no compiler" in v["message"]
    assert scratch_left() == []


def test_the_setup_command_runs_in_the_worktree_before_the_reference(repo: pytest.Pytester) -> None:
    """A setup step that builds what the code at REV imports: the reference
    only works if it ran there, in the worktree, before the process started."""
    repo.makepyfile(test_perf="""
import hashlib
import built  # made by --trt-ab-setup at the reference; here by hand
def test_hash(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"y" * built.SIZE).digest())
""")
    (repo.path / ".gitignore").write_text(".trtperf/\nbuilt.py\n")
    commit_all(repo.path, "needs a build step")
    (repo.path / "built.py").write_text("SIZE = 100_000\n")
    out = repo.path / "r.json"
    result = run(repo, "--trt-ab=HEAD", "--trt-ab-setup=echo 'SIZE = 100_000' > built.py", f"--trt-json={out}",
                 opts=QUICK)
    result.assert_outcomes(passed=1)
    rel = results(out)["test_perf.py::test_hash"]["relative"]
    assert rel["reference"]["setup"] == "echo 'SIZE = 100_000' > built.py"
    assert 0.9 < rel["ratio"] < 1.1


@pytest.mark.parametrize("how, timeout, needle", [
    # A crash: the wait is long enough for the reference to start under load, so it dies inside it.
    ("import os\n    os._exit(7)", 4, "the reference process died while it should reach the measurement without a "
                                      "name of test_perf.py::test_hash (exit code 7)"),
    # A hang: stopped at the wait, whatever it was doing by then.
    ("import time\n    time.sleep(120)", 2, "the reference process did not reach the measurement without a name "
                                             "of test_perf.py::test_hash within 2 s and was stopped"),
])
def test_a_reference_that_crashes_or_hangs_is_one_line(repo: pytest.Pytester, how: str, timeout: int,
                                                       needle: str) -> None:
    repo.makepyfile(test_perf=f"""
import hashlib
def test_hash(trt_bench):
    {how}
""")
    commit_all(repo.path, "the reference misbehaves")
    repo.makepyfile(test_perf=hash_test(N))
    out = repo.path / "r.json"
    started = time.monotonic()
    result = run(repo, "--trt-ab=HEAD", f"--trt-ab-timeout={timeout}", f"--trt-json={out}", opts=QUICK)
    assert time.monotonic() - started < 100  # bounded: never the reference's 120 s sleep
    result.assert_outcomes(passed=1)
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    assert v["status"] == "unreliable" and needle in v["message"], v["message"]
    assert scratch_left() == []
    assert git(repo.path, "worktree", "list", "--porcelain").count("worktree ") == 1


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_worktree_and_reference_go_away_when_the_session_is_stopped(repo: pytest.Pytester, sig: int) -> None:
    """SIGTERM and Ctrl-C: the session removes them; SIGKILL (a crashed xdist
    worker): the reference process sees its socket close and removes its
    worktree itself."""
    repo.makepyfile(test_perf=hash_test(N) + "\n\ndef test_then_wait(trt_bench):\n"
                    "    trt_bench.measure(lambda: None, name='x')\n    print('MEASURED', flush=True)\n"
                    "    import time; time.sleep(120)\n")
    commit_all(repo.path, "two tests")
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *QUICK, "-s", "-q", "--trt-ab=HEAD"], cwd=repo.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "MEASURED" in line:
                break
        assert scratch_left(), "the worktree should exist while the session runs"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _wait_for(lambda: scratch_left() == [], 30), scratch_left()
    assert git(repo.path, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_two_sessions_at_once_and_xdist_workers_each_have_their_own(repo: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    repo.makepyfile(test_more=hash_test(N // 2).replace("test_hash", "test_hash_half"))
    commit_all(repo.path, "two files")
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", *QUICK, "-q", "--trt-ab=HEAD", "-n", "2",
                               "--trt-allow-cpu-sharing", "--trt-iterations=1000", f"--trt-json=s{i}.json"],
                              cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, text in zip(procs, outs, strict=False):
        assert p.returncode == 0, text
    for i in range(2):
        got = results(repo.path / f"s{i}.json")
        # Eight processes on this machine may leave too few fair pairs (unreliable, host busy); never a
        # false regression, never a broken reference.
        assert all(r["relative"]["origin"] == "side_by_side" for r in got.values()), got
        assert all(r["verdict"]["status"] in ("pass", "improved") or r["verdict"]["decided_by"] == "host_busy"
                   for r in got.values()), got
    assert scratch_left() == []
    assert git(repo.path, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("how", [["--trt-ab=baseline"], []], ids=["explicit", "default"])
def test_the_baseline_commit_confirms_a_suspected_regression(repo: pytest.Pytester, how: list[str]) -> None:
    """``--trt-ab=baseline``, and the default in baseline compare mode: the
    baseline file suspects a regression; the commit its entry records is
    measured side by side and decides."""
    run(repo, "--trt-baseline=update").assert_outcomes(passed=1)
    (repo.path / "notes.txt").write_text("a later commit\n")  # the baseline file itself is ignored by git
    commit_all(repo.path, "later")
    entry_commit = git(repo.path, "rev-parse", "HEAD~1")  # the baseline was measured at the reference's commit
    # Twice the bytes: the file must suspect it whatever this VM's speed did since the update (a whole -n 2
    # run read +30% as +9.7%, inside the 13.6% a one-run baseline allows, so nothing was suspected).
    repo.makepyfile(test_perf=hash_test(2 * N))
    out = repo.path / "r.json"
    result = run(repo, *how, f"--trt-json={out}")
    result.assert_outcomes(failed=1)
    r = results(out)["test_perf.py::test_hash"]
    assert r["relative"]["origin"] == "side_by_side" and r["relative"]["commit"] == entry_commit
    assert r["verdict"]["message"].startswith("median latency regressed +")
    assert "; the baseline file said +" in r["verdict"]["message"]
    assert scratch_left() == []


def test_another_interpreter_alone_is_this_checkout_in_that_environment(repo: pytest.Pytester,
                                                                        tmp_path: Path) -> None:
    """``--trt-ab-python`` without a revision: the reference is this tree run
    by another interpreter. Here it differs by an environment variable the
    code reads (as a dependency's version would), and the ratio shows it."""
    repo.makepyfile(test_perf="""
import hashlib, os
N = 390_000 if os.environ.get("OLD_DEPENDENCY") else 300_000
def test_hash(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"z" * N).digest())
""")
    other = tmp_path / "other-python"
    other.write_text(f"#!/bin/sh\nOLD_DEPENDENCY=1 exec {sys.executable} \"$@\"\n")
    other.chmod(0o755)
    out = repo.path / "r.json"
    result = run(repo, f"--trt-ab-python={other}", f"--trt-json={out}")
    result.assert_outcomes(passed=1)
    r = results(out)["test_perf.py::test_hash"]
    assert r["verdict"]["status"] == "improved", r["verdict"]["message"]
    assert r["relative"]["commit"] is None and r["relative"]["reference"]["revision"] is None
    assert 0.65 < r["relative"]["ratio"] < 0.87


@pytest.mark.parametrize("args, needle", [
    (["--trt-ab=HEAD", "--trt-baseline=update"], "cannot be combined with --trt-baseline=update"),
    (["--trt-ab-setup=make"], "--trt-ab-setup runs in the reference's worktree; give the revision with --trt-ab=REV"),
    (["--trt-ab-python=/no/such/python"], "--trt-ab-python=/no/such/python: not an executable file"),
    (["--trt-ab=-x"], "is not a git revision"),
    (["--trt-ab=HEAD", "--trt-ab-timeout=0"], "--trt-ab-timeout"),
    (["--trt-ab=off", f"--trt-ab-python={sys.executable}"], "--trt-ab=off turns side by side off; drop "
                                                            "--trt-ab-python and --trt-ab-setup"),
])
def test_bad_options_are_one_line(pytester: pytest.Pytester, args: list[str], needle: str) -> None:
    pytester.makepyfile(test_a="def test_a(trt_bench):\n    trt_bench.measure(lambda: None)\n")
    result = pytester.runpytest(*args)
    assert result.ret == 4
    assert needle in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


WORKLOAD_TEST = '''
import hashlib
import numpy as np
from pytest_trtperf.core.workload import Batch

SIZE = {size}


class Hasher:
    """A Workload object of the test's own (no callable): served as it is."""
    kind = "host"
    inferences_per_iteration = 1

    def setup(self):
        self.data = b"w" * SIZE

    def run(self, n):
        import time
        out = np.empty(n)
        t0 = time.perf_counter()
        for i in range(n):
            a = time.perf_counter()
            hashlib.sha256(self.data).digest()
            out[i] = time.perf_counter() - a
        return Batch(latency_s=out, wall_s=time.perf_counter() - t0)

    def teardown(self):
        self.data = None

    def identity(self):
        return {{"size": SIZE}}

    def notes(self):
        return ("hashing {{}} bytes".format(SIZE),)


def test_workload_object(trt_bench):
    trt_bench.measure(Hasher(), name="w")


def test_compare_pair(trt_bench):
    r = trt_bench.compare(lambda: hashlib.sha256(b"a" * 1000).digest(),
                          lambda: hashlib.sha256(b"a" * 1000).digest(), max_slowdown="50%", name="pair")
    assert r.relative.origin == "compare"
'''


def test_workload_objects_are_served_and_compare_pairs_stay_in_process(repo: pytest.Pytester) -> None:
    """A ``Workload`` object goes through the block server as it is (its
    identity and notes come back); a ``trt_bench.compare()`` gate is judged
    here as always while its copy at the reference runs once."""
    repo.makepyfile(test_wl=WORKLOAD_TEST.format(size=N))
    commit_all(repo.path, "workload object")
    repo.makepyfile(test_wl=WORKLOAD_TEST.format(size=SLOWER))
    out = repo.path / "r.json"
    # The regression decides on its first side-by-side measurement (its re-measure is the gate's policy,
    # run by test_a_real_slowdown_fails_and_the_same_code_passes).
    result = run(repo, "--trt-ab=HEAD", f"--trt-json={out}", "test_wl.py", "--trt-no-remeasure")
    result.assert_outcomes(failed=1, passed=1)
    got = results(out)
    w = got["test_wl.py::test_workload_object::w"]
    assert w["verdict"]["status"] == "regression" and w["relative"]["origin"] == "side_by_side"
    assert w["relative"]["a"]["identity"]["size"] == N and w["relative"]["b"]["identity"]["size"] == SLOWER
    assert f"reference: hashing {N} bytes" in w["notes"] and f"hashing {SLOWER} bytes" in w["notes"]
    pair = got["test_wl.py::test_compare_pair::pair"]
    assert pair["relative"]["origin"] == "compare" and pair["verdict"]["status"] == "pass"
    # Said in one line: a compare() pair is its own interleaved gate here, not a side-by-side one.
    assert ("trt_bench.compare() is judged in this process (a against b, interleaved here), not side by side "
            "against HEAD: the reference ran its copy once, untimed") in pair["notes"], pair["notes"]
    result.stdout.fnmatch_lines(["*test_compare_pair::pair: note: trt_bench.compare() is judged in this process*"])



@pytest.mark.under_load
@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"), reason="needs Linux schedstats")
def test_a_window_too_busy_to_judge_is_judged_side_by_side_against_the_baseline_commit(
        repo: pytest.Pytester, request: pytest.FixtureRequest) -> None:
    """Point 2(b): on a loaded host the baseline gate alone (``--trt-ab=off``)
    ends ``unreliable`` (a pass by default); by default the commit the entry
    records is measured side by side and a real +30% fails."""
    long = hash_test(2_000_000)
    repo.makepyfile(test_perf=long)
    commit_all(repo.path, "long hash")
    run(repo, "--trt-baseline=update").assert_outcomes(passed=1)  # an entry, measured before the load
    request.getfixturevalue("load")  # the busy loops from here on: only the windows judged need them
    repo.makepyfile(test_perf=long.replace("2000000", "2600000"))
    quick = ["--trt-warmup-ms=50", "--trt-min-time=0.5", "--trt-max-time=2", "-p", "no:cacheprovider",
             "--trt-busy-wait=0.5", "--trt-run-noise=0", "--trt-tolerance=5%"]
    out = repo.path / "r.json"
    alone = run(repo, "--trt-ab=off", f"--trt-json={out}", opts=quick)  # as before
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    if v["status"] != "unreliable":
        pytest.skip(f"the load did not make the window busy here ({v['status']})")
    alone.assert_outcomes(passed=1)
    assert results(out)["test_perf.py::test_hash"]["relative"] is None  # off: no reference
    # The default in baseline compare mode (no --trt-ab): confirmed against the entry's commit.
    confirmed = run(repo, "--trt-unreliable=fail", f"--trt-json={out}", opts=quick)
    confirmed.assert_outcomes(failed=1)  # never a pass: judged a regression, or too busy even side by side
    r = results(out)["test_perf.py::test_hash"]
    v = r["verdict"]
    assert r["relative"]["origin"] == "side_by_side"
    assert v["message"].endswith("; the baseline-file window was too busy to judge")
    if v["status"] == "regression":
        # Right direction, never a pass. No upper bound: under two more busy loops than
        # CPUs a call 1.3x as long is preempted inside itself more often than the shorter
        # one, so the ratio over-reads (measured 1.57-2.88 here), while no change reads
        # 1.002 under the same load (both sides' calls are hit alike).
        assert r["relative"]["ratio"] > 1.15
    else:  # this much load cuts most calls of most blocks on a side: said so, not passed
        assert v["status"] == "unreliable" and v["decided_by"] == "host_busy", v
        assert v["message"].startswith("unreliable: host busy: too few pairs kept their calls whole on both sides")


def test_the_reference_environment_need_not_have_the_plugin(repo: pytest.Pytester, tmp_path: Path) -> None:
    """``--trt-ab-python`` with a virtualenv that has pytest and numpy but
    not pytest-trtperf: this session's plugin serves there (``-p``)."""
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    made = subprocess.run([base, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                          capture_output=True, text=True)
    python = venv / "bin" / "python"
    if made.returncode != 0 or not python.exists():
        pytest.skip(f"cannot make a virtualenv here: {made.stderr[-200:]}")
    probe = subprocess.run([str(python), "-c", "import pytest, numpy; from importlib.metadata import entry_points;"
                            "print(any(e.name == 'trtperf' for e in entry_points(group='pytest11')))"],
                           capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                if k != "PYTHONPATH"})
    if probe.returncode != 0 or probe.stdout.strip() != "False":
        pytest.skip("the base interpreter lacks pytest or numpy, or has pytest-trtperf installed")
    out = repo.path / "r.json"
    result = run(repo, f"--trt-ab-python={python}", f"--trt-json={out}", opts=QUICK)
    result.assert_outcomes(passed=1)
    rel = results(out)["test_perf.py::test_hash"]["relative"]
    assert rel["reference"]["python"] == str(python)
    assert 0.8 < rel["ratio"] < 1.25


def test_a_test_that_fails_at_the_reference_is_not_new(repo: pytest.Pytester) -> None:
    """A test that exists at REV but fails there before measuring cannot be a
    reference: one line with its error, not ``new``; a measurement name that
    is new in a test that passes there is ``new``."""
    repo.makepyfile(test_perf="""
import hashlib
def test_hash(trt_bench):
    assert 1 == 2, "broken at the reference"
def test_named(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"q" * 1000).digest(), name="old")
""")
    commit_all(repo.path, "broken reference")
    repo.makepyfile(test_perf=hash_test(N) + """
def test_named(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"q" * 1000).digest(), name="renamed")
""")
    out = repo.path / "r.json"
    run(repo, "--trt-ab=HEAD", f"--trt-json={out}", opts=QUICK).assert_outcomes(passed=2)
    got = results(out)
    v = got["test_perf.py::test_hash"]["verdict"]
    assert v["status"] == "unreliable" and "the test failed at HEAD" in v["message"]
    assert "broken at the reference" in v["message"]
    renamed = got["test_perf.py::test_named::renamed"]["verdict"]
    assert renamed["status"] == "new" and "has no measurement named 'renamed'" in renamed["message"]


def test_exports_hold_both_sides_samples(repo: pytest.Pytester) -> None:
    exports = repo.path / "exports"
    run(repo, "--trt-ab=HEAD", f"--trt-export-dir={exports}", "--trt-iterations=400",
        opts=QUICK).assert_outcomes(passed=1)
    files = sorted(p.name for p in exports.iterdir())
    a = [f for f in files if f.endswith(".a.samples.json")]
    b = [f for f in files if f.endswith(".b.samples.json")]
    assert len(a) == 1 and len(b) == 1, files
    doc = json.loads((exports / a[0]).read_text())
    assert doc["origin"] == "side_by_side" and sum(doc["blocks"]) == 400


# -- the default in baseline compare mode: suspect verdicts confirmed against the entry's commit ---------

#: The hash test, logging each import of its file: the reference process imports it in its worktree.
LOGGED = hash_test(N) + '''
if os.environ.get("IMPORT_LOG"):
    with open(os.environ["IMPORT_LOG"], "a") as _log:
        _log.write(__file__ + "\\n")
'''


def reference_started(log: Path) -> bool:
    """Whether a reference process imported the test file (in a worktree)."""
    return log.exists() and any("trtperf-ab-" in line for line in log.read_text().splitlines())


@pytest.fixture
def baselined(repo: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The logged hash test committed, its baseline written at that commit
    (the entry records it); returns the import log."""
    repo.makepyfile(test_perf=LOGGED)
    commit_all(repo.path, "logged hash")
    run(repo, "--trt-baseline=update", opts=QUICK).assert_outcomes(passed=1)
    log = tmp_path / "imports.log"
    monkeypatch.setenv("IMPORT_LOG", str(log))
    return log


def test_no_change_starts_no_reference_unless_a_verdict_is_suspect(repo: pytest.Pytester, baselined: Path) -> None:
    out = repo.path / "r.json"
    run(repo, f"--trt-json={out}", opts=QUICK).assert_outcomes(passed=1)
    r = results(out)["test_perf.py::test_hash"]
    # Lazy: a reference process only where the baseline file suspected something (then it decided).
    assert reference_started(baselined) == (r["relative"] is not None), r["verdict"]
    if r["relative"] is None:
        assert r["verdict"]["status"] in ("pass", "improved") and "side by side" not in r["verdict"]["message"]
    assert scratch_left() == []


def test_a_slower_machine_is_not_a_regression_of_the_code(repo: pytest.Pytester, baselined: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Both processes hash twice the bytes (as a much slower machine would
    run the same code): the baseline file reads a regression, the baseline's
    own commit side by side reads the same speed, and that decides. With
    ``--trt-ab=off`` the baseline file's regression stands, nothing started."""
    entry_commit = git(repo.path, "rev-parse", "HEAD")
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "2")  # far beyond this shared machine's drift between runs
    out = repo.path / "r.json"
    run(repo, f"--trt-json={out}").assert_outcomes(passed=1)
    r = results(out)["test_perf.py::test_hash"]
    assert reference_started(baselined)
    assert r["relative"]["origin"] == "side_by_side" and r["relative"]["commit"] == entry_commit
    assert 0.9 < r["relative"]["ratio"] < 1.1
    v = r["verdict"]
    assert v["status"] == "pass", v["message"]
    assert f"side by side against commit {entry_commit[:12]}" in v["message"]
    assert "; the baseline file said +" in v["message"]
    assert scratch_left() == []

    baselined.unlink()
    off = run(repo, "--trt-ab=off", f"--trt-json={out}", opts=QUICK)
    off.assert_outcomes(failed=1)
    r = results(out)["test_perf.py::test_hash"]
    assert r["verdict"]["status"] == "regression" and r["relative"] is None
    assert "side by side" not in r["verdict"]["message"]
    assert not reference_started(baselined)


def test_a_baseline_commit_missing_from_a_shallow_clone_is_one_line(repo: pytest.Pytester, tmp_path: Path) -> None:
    run(repo, "--trt-baseline=update", opts=QUICK).assert_outcomes(passed=1)
    entry_commit = git(repo.path, "rev-parse", "HEAD")
    (repo.path / "notes.txt").write_text("a later commit\n")
    commit_all(repo.path, "later")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))
    shutil.copytree(repo.path / ".trtperf", clone / ".trtperf")  # the baseline file (ignored in the repository)
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "pytest", *QUICK, "-q", f"--trt-json={out}"], cwd=clone,
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TRTPERF_TEST_SCALE": "2"})
    assert done.returncode == 1, done.stdout
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    assert v["status"] == "regression"
    first, line = v["message"].split("\n")
    assert first.startswith("median latency regressed +")
    assert line == (f"  side by side not possible (the baseline's commit {entry_commit[:12]} is not in this shallow "
                    f"clone; fetch the history (git fetch --unshallow, or actions/checkout with fetch-depth: 0)): "
                    f"the verdict rests on the baseline file")
    assert line.strip() in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_baseline_written_outside_git_says_the_verdict_rests_on_it(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_perf=hash_test(N))
    run_inner(pytester, "--trt-baseline=update", opts=QUICK).assert_outcomes(passed=1)
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "2")
    out = pytester.path / "r.json"
    result = run_inner(pytester, f"--trt-json={out}", opts=QUICK)
    result.assert_outcomes(failed=1)
    v = results(out)["test_perf.py::test_hash"]["verdict"]
    assert v["status"] == "regression"
    assert v["message"].endswith("\n  side by side not possible (the baseline entry names no commit: it was written "
                                 "outside a git checkout): the verdict rests on the baseline file")
    result.stdout.fnmatch_lines(["median latency regressed +*", "  side by side not possible (the baseline entry "
                                 "names no commit*): the verdict rests on the baseline file"])


def test_check_commit_is_cheap_and_says_why_not(tmp_path: Path) -> None:
    from pytest_trtperf.relative.gitfiles import Unavailable
    from pytest_trtperf.relative.worktree import check_commit

    top = init(tmp_path / "r")
    (top / "f").write_text("x")
    head = commit_all(top, "one")
    (top / "sub").mkdir()
    assert check_commit(top / "sub", head) == top.resolve()
    assert check_commit(top, head[:10]) == top.resolve()
    for commit, needle in [("0" * 40, f"the baseline's commit {'0' * 12} is not in this repository"),
                           ("--output=/tmp/x", "the baseline entry's git_commit '--output=/tmp/x' is not a commit id"),
                           ("HEAD", "the baseline entry's git_commit 'HEAD' is not a commit id")]:
        with pytest.raises(Unavailable) as e:
            check_commit(top, commit)
        assert needle in str(e.value)
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(Unavailable, match="is not in a git work tree"):
        check_commit(outside, head)


ALLOC_TEST = '''
def test_alloc(trt_bench):
    trt_bench.measure(lambda: bytearray({size}))
'''


def test_memory_is_gated_against_the_reference_side(repo: pytest.Pytester) -> None:
    """Point 3: both processes measure the call's host peak after their
    timings; this side's figure is gated against the reference's like
    against a baseline entry (tolerance and 64 KiB floor), no baseline file."""
    repo.makepyfile(test_alloc=ALLOC_TEST.format(size=1 << 20))
    commit_all(repo.path, "1 MiB a call")
    out = repo.path / "r.json"
    # Time is not the point: short windows, and a time tolerance (200%) above what twice the allocation
    # costs in time, so the outcome is the memory verdict's alone.
    loose = ("--trt-tolerance=200%",)
    run(repo, "--trt-ab=HEAD", f"--trt-json={out}", "test_alloc.py", *loose, opts=QUICK).assert_outcomes(passed=1)
    r = results(out)["test_alloc.py::test_alloc"]
    m = r["memory_verdict"]
    assert m["status"] == "pass", m
    (change,) = m["changes"]
    assert change["figure"] == "host_peak_bytes" and change["baseline"] == change["current"]
    assert r["relative"]["reference"]["memory"]["a"]["host_peak_bytes"] == change["baseline"]

    repo.makepyfile(test_alloc=ALLOC_TEST.format(size=2 << 20))  # twice the allocation here, not at HEAD
    slow = run(repo, "--trt-ab=HEAD", f"--trt-json={out}", "test_alloc.py", *loose, opts=QUICK)
    slow.assert_outcomes(failed=1)
    m = results(out)["test_alloc.py::test_alloc"]["memory_verdict"]
    assert m["status"] == "regression" and m["remeasured"], m
    (change,) = m["changes"]
    assert change["current"] >= 2 * change["baseline"] - 4096, change
    assert m["message"].startswith("host memory peak per call grew +")
    assert m["message"].endswith(f"side by side against HEAD ({git(repo.path, 'rev-parse', 'HEAD')[:12]})")
    slow.stdout.fnmatch_lines(["*host memory peak per call grew +*side by side against HEAD*"])


@pytest.mark.parametrize("args, ini, expected", [
    ([], "", "CONFIRM=True EVERY=False"),  # the default in compare mode
    (["--trt-ab=off"], "", "CONFIRM=False EVERY=False"),
    ([], "trt_ab = off", "CONFIRM=False EVERY=False"),
    (["--trt-ab=baseline"], "", "CONFIRM=True EVERY=False"),
    (["--trt-baseline=off"], "", "CONFIRM=False EVERY=False"),  # nothing compared, nothing to confirm
    (["--trt-baseline=update"], "", "CONFIRM=False EVERY=False"),
    (["--trt-disable"], "", "CONFIRM=False EVERY=False"),
    (["--trt-ab=HEAD"], "", "CONFIRM=False EVERY=True"),
])
def test_confirmation_is_the_default_of_compare_mode_and_off_turns_it_off(
        pytester: pytest.Pytester, args: list[str], ini: str, expected: str) -> None:
    pytester.makepyfile(test_s="""
from pytest_trtperf.plugin.hooks import session_settings
def test_s(request):
    ab = session_settings(request.config).ab
    print(f"CONFIRM={ab.confirm} EVERY={ab.every_test}")
""")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    r = pytester.runpytest("-s", "-p", "no:cacheprovider", *args)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines([f"*{expected}*"])
