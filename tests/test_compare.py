"""Comparing runs: --trt-compare=REV against the baselines committed at a git
revision (real git repositories), ``pytest-trtperf compare A.json B.json``
over two real --trt-json documents, --trt-csv, and ``--version``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import baseline_files, spin_test, run_inner
from pytest_trtperf import __version__
from pytest_trtperf.cli import main


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(pytester: pytest.Pytester) -> pytest.Pytester:
    """A git repository whose first commit holds the baseline of a short spin."""
    pytester.makepyfile(test_perf=spin_test())
    git(pytester.path, "init", "-q", "-b", "main")
    run_inner(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "fast baseline")
    return pytester


def test_compare_against_a_revision_without_checking_it_out(repo: pytest.Pytester) -> None:
    # The working tree's baseline is now 3x slower (not committed): the default
    # gate passes a slow run, --trt-compare=main judges it against main.
    run_inner(repo, "--trt-baseline=update", scale=3.0).assert_outcomes(passed=1)
    (path,) = baseline_files(repo)
    before = path.read_bytes()
    run_inner(repo, scale=3.0).assert_outcomes(passed=1)
    r = run_inner(repo, "--trt-compare=main", scale=3.0)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin: median latency regressed +*"])
    # xdist workers judge too: each reads the revision's files itself
    run_inner(repo, "--trt-compare=main", "-n", "2", scale=3.0).assert_outcomes(failed=1)
    assert path.read_bytes() == before  # the working tree is untouched
    assert git(repo.path, "status", "--porcelain", "--untracked-files=no").strip() == f"M .trtperf/{path.name}"


def test_missing_baseline_message_names_the_revision(repo: pytest.Pytester) -> None:
    repo.makepyfile(test_new="def test_new(trt_bench):\n    trt_bench.measure(lambda: None)\n")
    r = run_inner(repo, "--trt-compare=main", "--trt-json=r.json", "test_new.py")
    r.assert_outcomes(passed=1)
    doc = json.loads((repo.path / "r.json").read_text())
    assert "no baseline in main:.trtperf/host-" in doc["results"][0]["verdict"]["message"]


@pytest.mark.parametrize("rev, needle", [
    ("no-such-branch", "ERROR: --trt-compare=no-such-branch: no commit named 'no-such-branch' in *; give a branch, "
                       "tag or commit*"),
    ("--output=x", "ERROR: --trt-compare: '--output=x' is not a git revision; *"),
])
def test_a_bad_revision_is_one_line(repo: pytest.Pytester, rev: str, needle: str) -> None:
    r = run_inner(repo, f"--trt-compare={rev}")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines([needle])
    assert "Traceback" not in r.stderr.str()


def test_a_revision_without_baselines_is_one_line(repo: pytest.Pytester) -> None:
    git(repo.path, "commit", "-q", "--allow-empty", "-m", "empty")
    first = git(repo.path, "rev-list", "--max-parents=0", "HEAD").strip()
    repo.path.joinpath("other.txt").write_text("x")
    git(repo.path, "checkout", "-q", "--orphan", "bare")
    git(repo.path, "rm", "-rq", "--cached", ".")
    git(repo.path, "add", "other.txt")
    git(repo.path, "commit", "-qm", "no baselines")
    r = run_inner(repo, "--trt-compare=bare")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["ERROR: --trt-compare=bare: no baseline files in .trtperf/ at bare (*); pick a revision "
                            "that has them*"])
    run_inner(repo, f"--trt-compare={first}").assert_outcomes(passed=1)


def test_outside_a_git_repository_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    env_dir = pytester.path
    if subprocess.run(["git", "rev-parse"], cwd=env_dir, capture_output=True).returncode == 0:
        pytest.skip("the temporary directory is inside a git work tree")
    r = run_inner(pytester, "--trt-compare=main")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["ERROR: --trt-compare=main: git rev-parse failed in *: *not a git repository*"])


@pytest.mark.parametrize("args, needle", [
    (["--trt-baseline=update"], "ERROR: --trt-compare=main compares with baselines; it cannot be combined with "
                                "--trt-baseline=update"),
])
def test_compare_needs_compare_mode(repo: pytest.Pytester, args: list[str], needle: str) -> None:
    r = run_inner(repo, "--trt-compare=main", *args)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines([needle])


# -- pytest-trtperf compare A.json B.json ---------------------------------------------

@pytest.fixture
def two_runs(pytester: pytest.Pytester) -> tuple[Path, Path, Path]:
    pytester.makepyfile(test_perf=spin_test(), test_other="def test_only_in_a(trt_bench):\n"
                                                          "    trt_bench.measure(lambda: None)\n")
    a, b, same = (pytester.path / n for n in ("a.json", "b.json", "same.json"))
    run_inner(pytester, "--trt-baseline=off", f"--trt-json={a}").assert_outcomes(passed=2)
    run_inner(pytester, "--trt-baseline=off", f"--trt-json={b}", "test_perf.py", scale=2.0).assert_outcomes(passed=1)
    run_inner(pytester, "--trt-baseline=off", f"--trt-json={same}", "test_perf.py").assert_outcomes(passed=1)
    return a, b, same


def test_compare_command_gates_b_against_a(two_runs: tuple[Path, Path, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b, same = two_runs
    html, table = tmp_path / "c.html", tmp_path / "c.csv"
    assert main(["compare", str(a), str(b), "--html", str(html), "--csv", str(table)]) == 1
    out = capsys.readouterr().out
    assert f"{b} against {a}: 1 result(s), 1 regression(s) (exit status 1)" in out
    assert "test_perf.py::test_spin: median latency regressed +" in out
    assert f"1 result(s) only in {a}, not in {b}: test_other.py::test_only_in_a" in out
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [(r["id"], r["status"]) for r in rows] == [("test_perf.py::test_spin", "regression")]
    assert 0.5 < float(rows[0]["change"]) < 1.6
    assert "regression" in html.read_text() and "pytest-trtperf compare" in html.read_text()
    # a run against an equivalent one passes the gate (a loose tolerance: host timings move between processes)
    assert main(["compare", str(a), str(same), "--tolerance", "60%"]) == 0
    # and b against itself is a pass with a change of zero
    assert main(["compare", str(b), str(b)]) == 0
    assert "+0.0%" in capsys.readouterr().out


def test_compare_command_reads_documents_through_validation(two_runs: tuple[Path, Path, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _ = two_runs
    doc = json.loads(b.read_text())
    doc["results"][0]["verdict"]["metric"] = "fastest"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["compare", str(a), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pytest-trtperf: error: ") and "results[0].verdict.metric" in err and "\n" not in err
    assert main(["compare", str(a), str(b), "--tolerance", "5"]) == 2
    assert "would mean 500%" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"pytest-trtperf {__version__}"


def test_trt_csv_writes_one_row_per_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a='''
import pytest
@pytest.mark.parametrize("name", ["=cmd()", "plain"])
def test_a(trt_bench, name):
    trt_bench.measure(lambda: None, name=name, extra_info={"k": 1})
''')
    out = pytester.path / "r.csv"
    r = run_inner(pytester, "--trt-baseline=off", f"--trt-csv={out}")
    r.assert_outcomes(passed=2)
    r.stdout.fnmatch_lines([f"--trt-csv written: {out}"])
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["name"] for r in rows} == {"'=cmd()", "plain"}  # no formula a spreadsheet would run
    assert all(float(r["median_ms"]) > 0 and r["status"] == "off" and r["extra_info"] == '{"k": 1}' for r in rows)
    (pytester.path / "a_file").write_text("")
    r = run_inner(pytester, "--trt-baseline=off", f"--trt-csv={pytester.path / 'a_file' / 'r.csv'}")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stdout.fnmatch_lines(["--trt-csv NOT written: */a_file/r.csv: *; check the path"])


def test_a_change_that_rounds_to_zero_never_reads_minus_zero() -> None:
    # A result compared with itself can differ by a rounding error of either
    # sign; '-0.0%' would read as a (tiny) improvement.
    from pytest_trtperf.core.formatting import fmt_change
    assert fmt_change(-1e-12) == "+0.0%" and fmt_change(-0.0004) == "+0.0%"
    assert fmt_change(-0.0006) == "-0.1%" and fmt_change(0.05, (-1e-9, 0.1)) == "+5.0% [+0.0%, +10.0%]"
