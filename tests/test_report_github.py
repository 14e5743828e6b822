"""GitHub Actions output: the job summary file and ::error annotations, from
real pytest runs with the variables GitHub sets, plus escaping of hostile ids."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from helpers import QUICK, spin_test, make_result
from pytest_trtperf.report.github import (FOLD_ROWS, annotations_for, workflow_annotations as annotations, md_cell, relative_path, step_summary, write_step_summary)


def table_rows(md: str) -> list[list[str]]:
    """Data rows of every Markdown table in ``md`` (header/separator dropped)."""
    rows = []
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| result |") and not line.startswith("| ---"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


def test_real_run_appends_summary_and_annotates_the_failing_test(pytester: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    body = spin_test() + ("\n\ndef test_small(trt_bench):\n"
                          "    trt_bench.measure(lambda: spin(100_000))  # 100 us at any scale\n")
    pytester.makepyfile(test_perf=body)
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=2)
    summary = pytester.path / "step_summary.md"
    summary.write_text("## earlier step\n\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "1.6")
    r = pytester.runpytest(*QUICK, "--trt-tolerance=25%")  # in-process: no process-to-process speed offset
    r.assert_outcomes(failed=1, passed=1)

    md = summary.read_text(encoding="utf-8")
    assert md.startswith("## earlier step\n\n## pytest-trtperf\n")
    rows = table_rows(md)
    assert [row[0] for row in rows] == ["test_perf.py::test_spin", "test_perf.py::test_small"]
    spin_row = rows[0]
    assert spin_row[1] == "median" and "**regression**" in spin_row[5]
    change = re.fullmatch(r"\+(\d+\.\d)% \[\+(\d+\.\d)%, \+(\d+\.\d)%\]", spin_row[4])
    assert change, spin_row[4]
    assert float(change[2]) <= float(change[1]) <= float(change[3]) and float(change[1]) > 25
    assert "Regression and unreliable details" in md and "test_perf.py::test_spin: median latency regressed" in md

    written = (pytester.path / "test_perf.py").read_text().splitlines()
    def_line = written.index("def test_spin(trt_bench):") + 1
    errors = [line for line in r.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 1, r.stdout.str()
    assert errors[0].startswith(f"::error file=test_perf.py,line={def_line},title=trtperf regression")
    assert "test_perf.py%3A%3Atest_spin::median latency regressed +" in errors[0]  # title names it; cause first
    assert not any(line.startswith("::error") for line in r.stderr.lines)


def test_nothing_outside_github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pytester.makepyfile(test_perf=spin_test())
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(passed=1)
    assert "::" not in "\n".join(line for line in r.stdout.lines if line.startswith("::"))
    assert not any(line.startswith("::") for line in r.stdout.lines)


def test_hostile_ids_cannot_break_the_table_or_inject_html() -> None:
    ids = ["a|b<script>alert(1)</script>`x`", "x\ny", "\u540d\u524d-\U0001f680", "../../" + "z" * 5000]
    md = step_summary([make_result(i, "pass") for i in ids])
    rows = table_rows(md)
    assert len(rows) == 4 and all(len(row) == 8 for row in rows)  # 8: the "fails above" column (issue 26)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert max(len(line) for line in md.splitlines()) < 400
    assert md_cell("a|b") == "a\\|b" and md_cell("x\ny") == "x y"
    assert len(md_cell("q" * 500, 120)) == 120


def test_long_tables_fold_with_regressions_visible() -> None:
    results = [make_result(f"t.py::test_{i:03d}", "pass") for i in range(FOLD_ROWS + 5)]
    results.append(make_result("t.py::test_slow", "regression", 0.3))
    md = step_summary(results)
    before, folded = md.split("<details>", 1)
    assert [row[0] for row in table_rows(before)] == ["t.py::test_slow"]
    assert len(table_rows(folded.split("</details>")[0])) == FOLD_ROWS + 6
    assert table_rows(folded)[0][0] == "t.py::test_slow"
    short = step_summary(results[:3])
    assert "<details>" not in short and len(table_rows(short)) == 3


def test_annotation_escaping_and_paths(tmp_path: Path) -> None:
    test_file = tmp_path / "sub" / "test_x.py"
    r = make_result("sub/test_x.py::test_a,b:c", "regression", 0.2, location=(str(test_file), 12),
                    message="50% slower\nsecond line")
    (line,) = annotations([r], [tmp_path])
    assert line == ("::error file=sub/test_x.py,line=12,title=trtperf regression%3A sub/test_x.py%3A%3Atest_a%2Cb%3Ac"
                    "::50%25 slower%0Asecond line")
    warn = annotations([dataclasses.replace(r, verdict=dataclasses.replace(r.verdict, status="incomparable"))],
                       [tmp_path])
    assert warn[0].startswith("::warning file=sub/test_x.py,line=12,")
    assert annotations([make_result("p", "pass")], [tmp_path]) == []
    assert relative_path("/elsewhere/t.py", [tmp_path]) == "/elsewhere/t.py"
    assert annotations_for([r], tmp_path, environ={}) == []
    assert annotations_for([r], tmp_path, environ={"GITHUB_ACTIONS": "true"})[0].startswith("::error file=sub/")


def test_unwritable_summary_is_reported_not_raised(tmp_path: Path) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "missing-dir" / "s.md")}
    (msg,) = write_step_summary([make_result("a", "pass")], environ=env)
    assert msg.startswith("GitHub job summary NOT written")
    assert write_step_summary([], environ=env) == []
    ok = tmp_path / "s.md"
    assert write_step_summary([make_result("a", "pass")], environ={"GITHUB_STEP_SUMMARY": str(ok)}) == [
        f"GitHub job summary appended to {ok}"]
    assert os.path.getsize(ok) > 0


def test_results_an_update_did_not_write_are_counted_and_shown_as_such() -> None:
    """Every status is counted (a status without an icon once vanished from the count line)."""
    from pytest_trtperf.core.results import STATUSES

    md = step_summary([make_result("t.py::test_a", "updated"), make_result("t.py::test_b", "not_written")])
    assert "\U0001f4dd 1 updated" in md and "\U0001f6ab 1 not_written" in md
    assert [row[5] for row in table_rows(md)] == ["\U0001f6ab **not_written**", "\U0001f4dd updated"]
    every = step_summary([make_result(f"t.py::test_{s}", s) for s in STATUSES])
    assert all(f" 1 {s}" in every.split("\n")[2] for s in STATUSES)


def test_the_job_summary_stays_under_githubs_limit_whatever_the_count() -> None:
    """Issue 25: 4,938 regressions made a 1.24 MB summary, which GitHub drops
    (over 1 MiB): the summary was lost exactly when everything regressed."""
    from pytest_trtperf.report.github import MAX_SUMMARY_BYTES, step_summary

    results = [make_result(f"tests/test_models.py::test_model[{'x' * 60}-{i}]", "regression", 0.3, seed=0) for i in range(5000)]
    longer = []
    for r in results:
        assert r.verdict is not None
        longer.append(dataclasses.replace(r, verdict=dataclasses.replace(
            r.verdict, message=r.verdict.message + "; " + "detail " * 40)))
    results = longer
    text = step_summary(results)
    size = len(text.encode("utf-8"))
    assert size <= MAX_SUMMARY_BYTES < 2**20, size
    assert "5000 regression" in text  # the counts line is whole
    left = [ln for ln in text.splitlines() if "left out" in ln]
    assert left and all("GitHub drops job summaries over 1 MiB" in ln for ln in left), left
    assert text.count("<details") == text.count("</details>")
    assert text.count("```") % 2 == 0
