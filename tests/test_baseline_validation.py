"""Baseline entries are input: every field is checked when a file is read
(issue 16 item 1), old files are read, and histories are merged (issue 11).

Real files on disk: a valid file is written by the store, then edited the way
a pull request (or a typo) would edit it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from helpers import QUICK, spin_test, make_result
from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.errors import BaselineFileError

RID = "t.py::test_a"


def written(tmp_path: Path) -> Path:
    (path,) = baseline.BaselineStore(tmp_path).write([make_result(seed=0)], timestamp="T1", git_commit="a" * 40)
    return path


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(path.read_text())
    change(doc["results"][RID])
    raw = json.dumps(doc).encode()  # json writes NaN/Infinity as JSON5-ish tokens, which json.loads accepts
    path.write_bytes(raw)
    return raw


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        *parents, last = re.split(r"\.", path)
        node: Any = entry
        for p in parents:
            node = node[p]
        if last.endswith("]"):
            key, idx = last[:-1].split("[")
            node[key][int(idx)] = value
        else:
            node[last] = value
    return change


BAD = [
    ("distribution.quantiles_ms[3]", float("nan"), "distribution.quantiles_ms[3] must be a finite number"),
    ("distribution.quantiles_ms[50]", float("inf"), "distribution.quantiles_ms[50] must be a finite number"),
    ("distribution.quantiles_ms", [0.0] * 101, "distribution.quantiles_ms has a median of 0"),
    ("distribution.quantiles_ms", [-1.0] * 101, "distribution.quantiles_ms[0] must be >= 0"),
    ("distribution.quantiles_ms", ["0.5"] * 101, "distribution.quantiles_ms[0] must be a number"),
    ("distribution.quantiles_ms", [0.5] * 2_000_000, "distribution.quantiles_ms has 2000000 values (2 to 1001)"),
    ("distribution.quantiles_ms", [2.0, 1.0], "distribution.quantiles_ms[1] is below the one before"),
    ("distribution.n", 10 ** 400, "distribution.n must be between 1 and 1000000000"),
    ("distribution.n", 0, "distribution.n must be between 1"),
    ("latency_ms.median", "abc", "latency_ms.median must be a number, got 'abc'"),
    ("latency_ms.median", None, "latency_ms.median must be a number, got None"),
    ("latency_ms.p99", -3.0, "latency_ms.p99 must be > 0"),
    ("throughput", 0, "throughput must be > 0"),
    ("layers", [1, 2], "layers[0] must be an object, got 1"),
    ("layers", [{"name": "conv", "ms": float("nan")}], "layers[0].ms must be a finite number"),
    ("git_commit", 5, "git_commit must be a string, got 5"),
    ("flags", "busy", "flags must be a list of strings"),
    ("sm_clock_mhz", "fast", "sm_clock_mhz must be a number"),
    ("history", [], "history has 0 runs"),
    ("history[0]", {"timestamp": "T"}, "history[0].n is missing"),
    ("kind", ["host"], "kind must be a string"),
    ("distribution.quantiles_ms", [1e300] * 101, "distribution.quantiles_ms[0] must be at most 1e+07"),
    ("latency_ms.max", 1e8, "latency_ms.max must be at most 1e+07"),
    ("layers", [{"name": "conv", "ms": 1e300}], "layers[0].ms must be at most 1e+07"),
    ("config_hash", "abc\n::stop-commands::x", "config_hash must be a short lowercase hex string"),
    ("config_hash", "", "config_hash must be a short lowercase hex string"),
    ("config_hash", "f" * 65, "config_hash must be a short lowercase hex string"),
    ("serve", "fast", "serve must be an object"),
    ("serve", {"rate": 10}, "serve is not a serve summary (KeyError"),
    ("serve", {"rate": "x", "arrivals": "poisson", "concurrency": 1, "seed": 0, "duration_s": 1, "at_rate": {}},
     "serve is not a serve summary (ValueError"),
]


@pytest.mark.parametrize("field, value, words", BAD, ids=[b[0] + ":" + repr(b[1])[:12] for b in BAD])
def test_a_bad_field_is_one_line_naming_file_entry_and_field(tmp_path: Path, field: str, value: Any,
                                                             words: str) -> None:
    path = written(tmp_path)
    raw = edit(path, _set(field, value))
    with pytest.raises(BaselineFileError) as e:
        baseline.read_file(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"baseline file {path}, entry '{RID}': field ")
    assert words in msg, msg
    assert path.read_bytes() == raw
    # The store refuses to merge into it: the file stays as it is.
    with pytest.raises(BaselineFileError):
        baseline.BaselineStore(tmp_path).write([make_result(seed=0)], timestamp="T2", git_commit=None)
    assert path.read_bytes() == raw


def _scale(path: str, factor: float) -> Callable[[dict[str, Any]], None]:
    """Multiply one figure (a number or a list of numbers) of the entry;
    ``history.0.median`` is the first history row's median."""
    def change(entry: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = entry
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        value = node[last]
        node[last] = [x * factor for x in value] if isinstance(value, list) else type(value)(value * factor)
    return change


INCONSISTENT = [
    # The audit's attack: only the median set to 1/1000 made a 3x slower run "improve" by 99.7%.
    ("latency_ms.median", 1e-3, "field latency_ms.median is 0.00099", "but the median of distribution.quantiles_ms"),
    ("distribution.quantiles_ms", 1000.0, "field latency_ms.median is 0.99", "but the median of distribution"),
    ("history.0.median", 1.5, "field history[0].median is 1.4", "but latency_ms.median is 0.99"),
    ("history.0.p99", 0.9, "field history[0].p99 is", "but latency_ms.p99 is"),
    ("throughput", 2.0, "field history[0].throughput is", "but throughput is"),
    ("distribution.n", 0.5, "field distribution.n is 250 but latency_ms.n is 500", ""),
    ("history.0.n", 2.0, "field history[0].n is 1000 but latency_ms.n is 500", ""),
]


@pytest.mark.parametrize("field, factor, words, more", INCONSISTENT, ids=[f"{c[0]}*{c[1]:g}" for c in INCONSISTENT])
def test_figures_of_one_run_must_agree(tmp_path: Path, field: str, factor: float, words: str, more: str) -> None:
    """The figures of the entry's run (latency_ms, the distribution's median,
    the last history row, throughput) are written from the same samples; one
    edited on its own is an error naming it, not a quiet change of the gate."""
    path = written(tmp_path)
    raw = edit(path, _scale(field, factor))
    with pytest.raises(BaselineFileError) as e:
        baseline.read_file(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"baseline file {path}, entry '{RID}': {words}"), msg
    assert more in msg and "(was one of them edited?)" in msg, msg
    assert path.read_bytes() == raw


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(entry: dict[str, Any]) -> None:
        for c in changes:
            c(entry)
    return change


def _tails(entry: dict[str, Any]) -> None:
    qs = entry["distribution"]["quantiles_ms"]
    half = len(qs) // 2
    entry["distribution"]["quantiles_ms"] = [1e-6] * half + [qs[half]] + [1e6] * (len(qs) - half - 1)


SPREAD = [
    # Issue 25: quantile tails set to 1e-6 / 1e6 gave "99% CI -100%..+3767019%" and a pass.
    (_tails, "field distribution.quantiles_ms[0] is 1e-06, outside latency_ms.min"),
    (_scale("latency_ms.min", 0.5), "field distribution.quantiles_ms[0] is"),
    (_scale("latency_ms.max", 3.0), "field distribution.quantiles_ms[100] is"),
    (_both(_scale("latency_ms.p90", 1.3), _scale("history.0.p90", 1.3)), "field latency_ms.p90 is"),
    (_scale("latency_ms.median_ci", 0.5), "field latency_ms.median_ci[0] is"),
    (_scale("latency_ms.stdev", 1000.0), "field latency_ms.stdev is"),
    (_both(_scale("history.0.p95", 0.5), _scale("latency_ms.p95", 0.5)), "field latency_ms.p95 is"),
]


@pytest.mark.parametrize("change, words", SPREAD, ids=["tails", "min", "max", "p90", "median_ci", "stdev", "p95"])
def test_spread_figures_must_agree_with_the_quantiles(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                                      words: str) -> None:
    path = written(tmp_path)
    raw = edit(path, change)
    with pytest.raises(BaselineFileError) as e:
        baseline.read_file(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"baseline file {path}, entry '{RID}': {words}"), msg
    assert "edited?" in msg, msg
    assert path.read_bytes() == raw


def test_a_history_row_whose_percentiles_do_not_ascend_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path)
    baseline.BaselineStore(tmp_path).write([make_result(seed=0)], timestamp="T2", git_commit=None)
    edit(path, _scale("history.0.p99", 0.5))
    with pytest.raises(BaselineFileError, match=r"field history\[0\]\.p99 is .* below its p95"):
        baseline.read_file(path)


def test_figures_within_the_agreement_still_load(tmp_path: Path) -> None:
    """Rounding (by hand, by another JSON writer) within 1% is not an error."""
    path = written(tmp_path)
    edit(path, _scale("history.0.median", 1.005))
    edit(path, _scale("latency_ms.p99", 0.995))
    entry = baseline.read_file(path).entries[RID]
    assert entry.runs()[0]["median"] == pytest.approx(entry.latency.median * 1.005)


@pytest.mark.parametrize("version", ["true", "-1", "0", "1.5", '"2"'])
def test_schema_version_must_be_a_whole_number_in_range(tmp_path: Path, version: str) -> None:
    path = written(tmp_path)
    text = re.sub(r'"schema_version": \d+', f'"schema_version": {version}', path.read_text())
    path.write_text(text)
    with pytest.raises(BaselineFileError, match="malformed schema_version"):
        baseline.read_file(path)


def test_a_schema_1_file_is_read_and_written_back_as_2_with_its_run_kept(tmp_path: Path) -> None:
    path = written(tmp_path)
    doc = json.loads(path.read_text())
    doc["schema_version"] = 1
    for e in doc["results"].values():
        del e["history"], e["config"]
    path.write_text(json.dumps(doc))
    old = baseline.read_file(path).entries[RID]
    assert old.config is None and len(old.runs()) == 1 and old.runs()[0]["median"] == old.latency.median
    notes: list[str] = []
    baseline.BaselineStore(tmp_path).write([make_result(scale=1.001, seed=1)], timestamp="T2", git_commit=None,
                                           notes=notes)
    new = json.loads(path.read_text())
    assert new["schema_version"] == 2 and notes == []
    rows = new["results"][RID]["history"]
    assert [r["timestamp"] for r in rows] == ["T1", "T2"]


def test_history_keeps_the_last_runs_and_restarts_on_a_new_level(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    for i in range(12):
        store.write([make_result(scale=1 + 0.001 * (i % 3), seed=i)], timestamp=f"T{i:02d}", git_commit=None)
    (path,) = store.files()
    rows = json.loads(path.read_text())["results"][RID]["history"]
    assert [r["timestamp"] for r in rows] == [f"T{i:02d}" for i in range(2, 12)]  # the last 10
    notes: list[str] = []
    store.write([make_result(scale=1.5, seed=99)], timestamp="T99", git_commit=None, notes=notes)
    rows = json.loads(path.read_text())["results"][RID]["history"]
    assert [r["timestamp"] for r in rows] == ["T99"]
    assert len(notes) == 1 and "median moved +50." in notes[0] and "history restarts" in notes[0]


def test_a_busy_run_is_recorded_with_a_note(tmp_path: Path) -> None:
    notes: list[str] = []
    (path,) = baseline.BaselineStore(tmp_path).write([make_result(seed=0, flags=("host_busy",))], timestamp="T",
                                                     git_commit=None, notes=notes)
    entry = baseline.read_file(path).entries[RID]
    assert entry.flags == ("host_busy",) and list(entry.runs()[0]["flags"]) == ["host_busy"]
    assert "measured while the host was busy" in notes[0]


def test_an_unreadable_result_is_never_written(tmp_path: Path) -> None:
    bad = dataclasses.replace(make_result(seed=0), throughput=0.0)
    notes: list[str] = []
    baseline.BaselineStore(tmp_path).write([bad], timestamp="T", git_commit=None, notes=notes)
    (path,) = baseline.BaselineStore(tmp_path).files()
    assert RID not in json.loads(path.read_text())["results"]
    assert notes == [f"{RID}: not written: field throughput must be > 0, got 0.0"]


@pytest.mark.parametrize("mode", ["compare", "update"])
def test_a_nan_quantile_stops_the_session_with_exit_4(pytester: pytest.Pytester, mode: str) -> None:
    """The attack of issue 16: NaN quantiles made a 4.6x slower run pass."""
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    doc = json.loads(path.read_text())
    doc["results"]["test_perf.py::test_spin"]["distribution"]["quantiles_ms"][7] = float("nan")
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    r = pytester.runpytest_subprocess(*QUICK, f"--trt-baseline={mode}")
    assert r.ret == 4
    errors = [ln for ln in r.stderr.lines if ln.startswith("ERROR:")]
    assert errors == [f"ERROR: baseline file {path}, entry 'test_perf.py::test_spin': field "
                      f"distribution.quantiles_ms[7] must be a finite number, got nan; restore it from version "
                      f"control (git checkout -- {path}) or delete it and run pytest --trt-baseline=update"]
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
    assert path.read_bytes() == before


@pytest.mark.parametrize("edit_entry, field", [
    (lambda e: e["latency_ms"].__setitem__("median", e["latency_ms"]["median"] / 1000), "latency_ms.median is"),
    (lambda e: e["distribution"].__setitem__("quantiles_ms", [1e300] * 101),
     "distribution.quantiles_ms[0] must be at most 1e+07"),
], ids=["median/1000", "quantiles-1e300"])
def test_an_edited_figure_stops_a_3x_slower_run_with_exit_4(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                            edit_entry: Callable[[dict[str, Any]], None],
                                                            field: str) -> None:
    """The audit's attacks: the median alone set to 1/1000 passed a 3x slower run
    (exit 0, "improved -99.7%"); quantiles of 1e300 ended in a traceback."""
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    doc = json.loads(path.read_text())
    edit_entry(doc["results"]["test_perf.py::test_spin"])
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "3")
    r = pytester.runpytest_subprocess(*QUICK, timeout=120)
    assert r.ret == 4, r.stdout.str()
    errors = [ln for ln in r.stderr.lines if ln.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: baseline file {path}, entry 'test_perf.py::test_spin': "
                                                     f"field {field}"), r.stderr.lines
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
    assert path.read_bytes() == before
