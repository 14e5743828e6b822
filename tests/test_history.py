"""History over committed baselines, against a real temporary git repository
whose baseline file starts from a real run and then creeps commit by commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import QUICK, spin_test
from pytest_trtperf import cli
from pytest_trtperf.report import history
from pytest_trtperf.baselines.store import dumps
from pytest_trtperf.core.errors import UsageError
from test_report_html import Page, assert_self_contained, svg_of


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c",
                           "commit.gpgsign=false", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def scaled(doc: dict, rid: str, factor: float) -> dict:
    doc = json.loads(json.dumps(doc))
    lat = doc["results"][rid]["latency_ms"]
    for k in ("median", "mean", "p90", "p99"):
        lat[k] *= factor
    lat["median_ci"] = [x * factor for x in lat["median_ci"]]
    return doc


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    """A git repo whose baseline file: a real run (commit 1), then +2% per
    commit for 5 commits, a commit touching only another entry, a commit with
    an unrelated file, and a broken version that is later fixed."""
    pytester.makepyfile(test_perf=spin_test() + "\n\ndef test_other(trt_bench):\n"
                                                "    trt_bench.measure(lambda: sum(range(300)))\n")
    git(pytester.path, "init", "-q")
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=2)
    (bfile,) = (pytester.path / ".trtperf").glob("*.json")
    commit_all(pytester.path, "real baseline")
    real = json.loads(bfile.read_text())
    rid = "test_perf.py::test_spin"
    for k in range(1, 6):
        bfile.write_text(dumps(scaled(real, rid, 1.02 ** k)))
        commit_all(pytester.path, f"merge {k}: a little slower")
    doc = scaled(real, rid, 1.02 ** 5)
    doc["results"]["test_perf.py::test_other"]["latency_ms"]["median"] *= 0.5
    bfile.write_text(dumps(doc))
    commit_all(pytester.path, "only test_other changed")
    (pytester.path / "README").write_text("x")
    commit_all(pytester.path, "unrelated")
    bfile.write_text("<<<<<<< conflict\n")
    commit_all(pytester.path, "broken merge")
    bfile.write_text(dumps(doc))
    commit_all(pytester.path, "fixed")
    return pytester.path


def test_collect_follows_each_entry_over_commits(repo: Path) -> None:
    series = {s.result_id: s for s in history.collect(repo / ".trtperf")}
    assert set(series) == {"test_perf.py::test_spin", "test_perf.py::test_other"}
    h = series["test_perf.py::test_spin"]
    # real + 5 slower versions; "fixed" restores the same entry: no new point.
    assert [p.commit.subject for p in h.points] == ["real baseline"] + [f"merge {k}: a little slower"
                                                                         for k in range(1, 6)]
    assert h.drift == pytest.approx(1.02 ** 5 - 1, rel=1e-6)
    assert h.largest_step == pytest.approx(0.02, rel=1e-6)
    assert h.creep(0.05) and not h.creep(0.2)
    o = series["test_perf.py::test_other"]
    assert [p.commit.subject for p in o.points] == ["real baseline", "only test_other changed"]
    assert o.drift == pytest.approx(-0.5) and not o.creep(0.05)
    assert h.points[0].n >= 10 and h.points[0].ci_ms[0] <= h.points[0].median_ms <= h.points[0].ci_ms[1]
    # The newest two commits: the broken version is skipped, "fixed" is the only point.
    recent = history.collect(repo / ".trtperf", max_commits=2)
    assert [[p.commit.subject for p in s.points] for s in recent] == [["fixed"], ["fixed"]]
    assert all(s.drift is None and not s.creep(0.0) for s in recent)


def test_cli_writes_html_and_prints_drift(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = repo / "h.html"
    assert cli.main(["history", "--baseline-dir", str(repo / ".trtperf"), "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("test_perf.py::test_spin (") and printed[0].endswith("(+10.4%) over 6 version(s)  [creep]")
    assert "(-50.0%) over 2 version(s)" in printed[1]
    raw = out.read_text(encoding="utf-8")
    page = Page(raw)
    assert_self_contained(page, raw)
    assert [s["attrs"]["data-status"] for s in page.sections] == ["regression", "pass"]
    for s in page.sections:
        (plot,) = s["imgs"]
        svg_of(plot)
    assert "merge 3: a little slower" in "".join(page.sections[0]["text"])


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["history", "--baseline-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pytest-trtperf: error: baseline directory") and err.count("\n") == 1
    (tmp_path / "b").mkdir()
    assert cli.main(["history", "--baseline-dir", str(tmp_path / "b")]) == 2  # not a git repository
    assert "git rev-parse failed" in capsys.readouterr().err
    with pytest.raises(UsageError):
        history.collect(tmp_path / "nope")


def test_console_script_is_installed(repo: Path) -> None:
    script = Path(sys.executable).parent / "pytest-trtperf"
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter (pip install -e .)")
    proc = subprocess.run([str(script), "history", "--no-plots", "-o", "x.html"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "history: 2 result(s), written to x.html" in proc.stdout
    assert "<img" not in (repo / "x.html").read_text(encoding="utf-8")
