"""A committed baseline is untrusted input (issue 25 item 1): no edit that
passes validation turns a real slowdown into a pass.

Each attack is the one the adversarial run of 2026-12-06 used, applied to a
real baseline file written by a real ``update`` run, then judged by a real
session of a host workload made slower by an exact amount of extra work.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from helpers import FAST, spin_test, run_inner

RID = "test_perf.py::test_spin"
METRICS = ("median", "mean", "p90", "p95", "p99")


def _recorded(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*FAST, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    return path


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads(path.read_text())
    change(doc["results"][RID])
    path.write_text(json.dumps(doc, indent=1))


def _run(pytester: pytest.Pytester, scale: float, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    out = pytester.path / "out.json"
    r = run_inner(pytester, f"--trt-json={out}", *args, scale=scale, subprocess=True, timeout=180, opts=FAST)
    doc = json.loads(out.read_text()) if out.exists() else {}
    return r, doc


def _verdict(doc: dict[str, Any]) -> dict[str, Any]:
    (res,) = doc["results"]
    return res["verdict"]


def poison_history(entry: dict[str, Any]) -> None:
    """Nine rows alternating 0.3x and 4x of the real run, the real run last."""
    last = entry["history"][-1]
    rows = []
    for i in range(9):
        f = 0.3 if i % 2 == 0 else 4.0
        row = dict(last, timestamp=f"2026-01-0{i + 1}T00:00:00+00:00")
        row.update({k: last[k] * f for k in METRICS})
        row["throughput"] = last["throughput"] / f
        rows.append(row)
    entry["history"] = [*rows, last]


def test_a_poisoned_history_cannot_pass_a_3x_slowdown(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit: between-run noise 1932.7%, a 3.2x slowdown read ``pass``, exit 0."""
    path = _recorded(pytester)
    _edit(path, poison_history)
    r, doc = _run(pytester, 3.2)
    assert r.ret == 1, r.stdout.str()
    v = _verdict(doc)
    assert v["status"] == "regression", v
    assert v["run_noise"]["allowance"] < 1.0, v["run_noise"]  # the between-run allowance is bounded


def test_a_poisoned_history_without_a_slowdown_is_unreliable_not_pass(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _recorded(pytester)
    _edit(path, poison_history)
    r, doc = _run(pytester, 1.0, "--trt-tolerance=60%")
    v = _verdict(doc)
    assert v["status"] == "unreliable" and v["decided_by"] == "too_wide", v
    assert "too wide to decide" in v["message"], v["message"]
    assert r.ret == 0, r.stdout.str()
    strict, doc = _run(pytester, 1.0, "--trt-tolerance=60%", "--trt-unreliable=fail")
    assert strict.ret == 1 and _verdict(doc)["status"] == "unreliable", strict.stdout.str()


def test_update_does_not_keep_a_poisoned_history(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _recorded(pytester)
    _edit(path, poison_history)
    r, _ = _run(pytester, 1.0, "--trt-baseline=update")
    assert r.ret == 0, r.stdout.str()
    entry = json.loads(path.read_text())["results"][RID]
    assert len(entry["history"]) == 1, entry["history"]
    r.stdout.fnmatch_lines(["*earlier runs spread*too wide*history restarts with this run"])


def poison_tails(entry: dict[str, Any]) -> None:
    qs = entry["distribution"]["quantiles_ms"]
    half = len(qs) // 2
    entry["distribution"]["quantiles_ms"] = [1e-6] * half + [qs[half]] + [1e6] * (len(qs) - half - 1)


def test_poisoned_quantile_tails_are_refused(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit: "within this run's own noise (99% CI -100.0%..+3767019.0%)", exit 0."""
    path = _recorded(pytester)
    _edit(path, poison_tails)
    r, _ = _run(pytester, 3.0)
    assert r.ret == 4, r.stdout.str()
    errors = [ln for ln in r.stderr.lines if ln.startswith("ERROR:")]
    assert len(errors) == 1 and "distribution.quantiles_ms" in errors[0] and "edited" in errors[0], r.stderr.lines


def test_poisoned_tails_with_matching_percentiles_are_never_a_plain_pass(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same attack with every summary figure edited to agree with the
    tails (a guard: the median's interval hardly widens, the 3x slowdown stays
    a regression; an interval too wide is tests/test_noise.py's
    ``test_an_interval_too_wide_to_decide``)."""
    path = _recorded(pytester)

    def change(entry: dict[str, Any]) -> None:
        qs = entry["distribution"]["quantiles_ms"]
        lo, hi = [q / 3 for q in qs[:40]], [q * 3 for q in qs[61:]]
        qs[:40], qs[61:] = lo, hi
        lat = entry["latency_ms"]
        lat.update(min=qs[0], max=qs[-1], p90=qs[90], p95=qs[95], p99=qs[99])
        lat["median_ci"] = [qs[40], qs[60]]
        values = [float(q) for q in qs]
        lat["mean"] = sum(values) / len(values)
        lat["stdev"] = math.sqrt(sum((x - lat["mean"]) ** 2 for x in values) / len(values))
        entry["history"][-1].update({k: lat[k] for k in METRICS})
    _edit(path, change)
    r, doc = _run(pytester, 3.0)
    v = _verdict(doc)
    assert r.ret == 1 and v["status"] == "regression", v


def scale_entry(factor: float) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        lat = entry["latency_ms"]
        for k in (*METRICS, "min", "max", "stdev"):
            lat[k] *= factor
        lat["median_ci"] = [x * factor for x in lat["median_ci"]]
        entry["distribution"]["quantiles_ms"] = [q * factor for q in entry["distribution"]["quantiles_ms"]]
        entry["throughput"] /= factor
        for row in entry["history"]:
            row.update({k: row[k] * factor for k in METRICS})
            row["throughput"] /= factor
    return change


def test_an_entry_made_2x_slower_is_a_loud_warning_and_fails_when_strict(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit: a whole entry consistently 2x slower validates and reads
    "improved -50%" silently."""
    path = _recorded(pytester)
    _edit(path, scale_entry(2.0))
    r, doc = _run(pytester, 1.0)
    assert r.ret == 0, r.stdout.str()
    v = _verdict(doc)
    assert v["status"] == "improved" and v["decided_by"] == "suspect_baseline", v
    r.stdout.fnmatch_lines(["WARNING: 1 baseline entry does not describe the code it gates*test_perf.py::test_spin*"])
    gh = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(gh))
    r, _ = _run(pytester, 1.0)
    assert any(ln.startswith("::warning ") and "suspect" in ln for ln in r.stdout.lines), r.stdout.str()
    for _ in range(3):  # a loaded moment can read the code slower than the entry's half (then not suspect): again
        strict, _ = _run(pytester, 1.0, "--trt-incomparable=fail")
        if "more than 1.5x faster" in strict.stdout.str():
            break
    assert strict.ret == 1, strict.stdout.str()
    strict.stdout.fnmatch_lines(["*(--trt-incomparable=fail)*"])


@pytest.mark.parametrize("change", [
    lambda e: e.__setitem__("config_hash", "0123456789abcdef"),
    lambda e: e.__setitem__("mode", "throughput"),
    lambda e: e["fingerprint"]["critical"].__setitem__("kind", "cuda"),
], ids=["config_hash", "mode", "fingerprint.critical.kind"])
def test_an_edited_identity_field_is_a_loud_warning_and_fails_when_strict(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, change: Callable[[dict[str, Any]], None]) -> None:
    """Audit: a one-line edit made a 3x slowdown ``incomparable``, which passes."""
    path = _recorded(pytester)
    _edit(path, change)
    r, doc = _run(pytester, 3.0)
    v = _verdict(doc)
    assert v["status"] == "incomparable" and v["decided_by"] == "suspect_baseline", v
    assert "edited" in v["message"], v["message"]
    r.stdout.fnmatch_lines(["WARNING: 1 baseline entry does not describe the code it gates*"])
    strict, _ = _run(pytester, 3.0, "--trt-incomparable=fail")
    assert strict.ret == 1, strict.stdout.str()


def _verify(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[str]]:
    from pytest_trtperf.cli import main

    capsys.readouterr()  # what the pytester runs printed
    code = main(["verify", *map(str, paths)])
    return code, capsys.readouterr().out.splitlines()


def test_verify_names_commits_that_changed_entries_outside_an_update(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A real git repository: two real updates are clean; a commit that made
    the whole entry 2x slower (every figure consistent, so the session's
    checks cannot see it) is named, as is an uncommitted history rewrite."""
    from gitrepo import commit_all, init

    init(pytester.path)
    path = _recorded(pytester)
    commit_all(pytester.path, "record baselines")
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "1.01")
    pytester.runpytest(*FAST, "--trt-baseline=update").assert_outcomes(passed=1)
    commit_all(pytester.path, "refresh baselines")
    code, out = _verify(capsys, pytester.path / ".trtperf")
    assert code == 0 and out[-1].startswith("verify: 1 baseline file(s), 2 version(s): every change came from"), out

    _edit(path, scale_entry(2.0))
    commit_all(pytester.path, "tune numbers")
    code, out = _verify(capsys, path)
    assert code == 1, out
    (line,) = [ln for ln in out if "tune numbers" in ln]
    assert f"entry '{RID}' changed outside an update" in line and "under an unchanged timestamp" in line, line
    assert "distribution" in line and "latency_ms" in line and "history" in line, line

    def rewrite(entry: dict[str, Any]) -> None:
        poison_history(entry)
        entry["timestamp"] = entry["history"][-1]["timestamp"] = "2026-12-31T00:00:00+00:00"
    _edit(path, rewrite)
    code, out = _verify(capsys, path)
    assert code == 1
    assert any(ln.startswith(f"{path}: working tree: entry '{RID}'") and "history rows were rewritten" in ln
               for ln in out), out
    assert out[-1].startswith("verify: 2 finding(s) in 1 baseline file(s), 4 version(s)"), out


def test_verify_reports_a_missing_path_and_no_git_as_one_line(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_trtperf.cli import main

    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().endswith("no such baseline file or directory")
    (tmp_path / "a.json").write_text('{"results": {}}')
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "git rev-parse failed" in err, err


def test_verify_tells_two_updates_in_one_second_from_an_edit() -> None:
    """Timestamps have whole seconds: a second update within the same second
    keeps the entry's timestamp and appends its own run, which verify accepts;
    numbers changed under that timestamp without a new run are still named."""
    from pytest_trtperf.baselines.verify import entry_change

    stamp = "2026-12-06T05:15:26+00:00"
    row1 = {"timestamp": stamp, "latency_ms": {"median": 1.0}}
    row2 = {"timestamp": stamp, "latency_ms": {"median": 1.01}}
    old = {"timestamp": stamp, "latency_ms": {"median": 1.0}, "history": [row1]}
    again = {"timestamp": stamp, "latency_ms": {"median": 1.01}, "history": [row1, row2]}
    assert entry_change(old, again) is None
    edited = {"timestamp": stamp, "latency_ms": {"median": 2.0}, "history": [{**row1, "latency_ms": {"median": 2.0}}]}
    assert "changed under an unchanged timestamp" in (entry_change(old, edited) or "")
    appended_twice = {**again, "history": [row1, row2, row2]}
    assert "changed under an unchanged timestamp" in (entry_change(again, appended_twice) or "")


def test_verify_takes_several_updates_between_two_commits() -> None:
    """A history is built by several update runs, often before any commit:
    runs appended in time order are updates; rows out of order, or a history
    rewritten under a new last run, are not."""
    from pytest_trtperf.baselines.verify import entry_change

    rows = [{"timestamp": f"2026-12-06T05:0{i}:00+00:00", "latency_ms": {"median": 1.0 + i / 100}} for i in range(5)]

    def entry(hist: list[dict[str, object]]) -> dict[str, object]:
        return {"timestamp": hist[-1]["timestamp"], "history": hist}

    assert entry_change(None, entry(rows[:3])) is None
    assert entry_change(entry(rows[:2]), entry(rows[:5])) is None
    assert "not runs in time order" in (entry_change(None, entry([rows[2], rows[1], rows[3]])) or "")
    forged = [{**r, "latency_ms": {"median": 9.0}} for r in rows[:2]] + rows[2:4]
    assert "rewritten" in (entry_change(entry(rows[:2]), entry(forged)) or "")
