"""An update shows the diff it writes, and a loaded window is not written
(issue 26 point 4). Real pytest sessions, real baseline files, real load
(busy-looping processes) for the loaded case."""

from __future__ import annotations

import json

import pytest

from helpers import FAST
from test_host_load import LONG_HASH, QUICK, needs_schedstat

pytest_plugins = ["test_host_load"]  # its ``load`` fixture: busy loops on every core

WORK = '''
import hashlib, os

DATA = b"\\x5a" * 200_000
ROUNDS = int(os.environ.get("ROUNDS", "2"))


def test_hash(trt_bench):
    trt_bench.measure(lambda: [hashlib.sha256(DATA).digest() for _ in range(ROUNDS)])
'''


def test_a_second_update_shows_the_previous_value_the_new_one_and_the_change(pytester: pytest.Pytester,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_perf=WORK)
    first = pytester.runpytest(*FAST, "--trt-baseline=update", "--trt-json=first.json")
    first.assert_outcomes(passed=1)
    (v1,) = [r["verdict"] for r in json.loads((pytester.path / "first.json").read_text())["results"]]
    assert v1["baseline_value"] is None and "(new entry)" in v1["message"]
    monkeypatch.setenv("ROUNDS", "6")  # three times the work
    r = pytester.runpytest(*FAST, "--trt-baseline=update", "--trt-json=out.json")
    r.assert_outcomes(passed=1)
    (v,) = [res["verdict"] for res in json.loads((pytester.path / "out.json").read_text())["results"]]
    assert v["status"] == "updated"
    assert v["baseline_value"] == pytest.approx(v1["current_value"], rel=1e-9)  # the entry it replaces
    assert v["change"] == pytest.approx(v["current_value"] / v["baseline_value"] - 1, rel=1e-9)
    assert 1.0 < v["change"] < 5.0, v  # about +200%: three times the hashing
    row = next(line for line in r.stdout.lines if line.startswith("test_perf.py::test_hash"))
    cells = row.split()
    assert "updated" in cells and f"{v['change'] * 100:+.1f}%" in cells, row
    assert "-" not in cells[2:6], row  # baseline, current and change all shown
    assert "(1 run) -> " in v["message"]


@needs_schedstat
def test_a_loaded_update_is_re_measured_then_not_written(pytester: pytest.Pytester, load: list[int]) -> None:
    pytester.makepyfile(test_perf=LONG_HASH)
    r = pytester.runpytest(*QUICK, "--trt-baseline=update", "--trt-busy-wait=0.3", "--trt-json=out.json")
    r.assert_outcomes(passed=1)
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    v = res["verdict"]
    assert v["status"] == "not_written" and v["remeasured"] is True, v
    assert v["message"].startswith("baseline not written: host busy (") and "--trt-baseline-loaded=write" in \
        v["message"]
    text = r.stdout.str()
    assert "not written (host busy)" in text
    assert "baseline not written for test_perf.py::test_hash: host busy (" in text
    assert not list((pytester.path / ".trtperf").glob("*.json"))
    doc = json.loads((pytester.path / "out.json").read_text())
    assert [e["id"] for e in doc["session"]["baselines_not_written"]] == ["test_perf.py::test_hash"]
