"""Any text the user gives survives every writer (issue 25 item 4).

A lone surrogate (what ``os.fsdecode`` gives for an undecodable file name) in
``name=`` made ``update`` write no baseline at all (exit 3, "this is a bug")
and ``--trt-report`` end in a traceback; a control character in a name made
``--junitxml`` not well-formed. Lone surrogates in names, groups and
``extra_info`` are refused at ``measure()`` with one line (no UTF-8 file can
hold them); ``parametrize`` values (not ours to refuse) get them escaped;
control characters are carried and every writer escapes them (issue 16's
``tests/test_log_safety.py`` for the logs). Real sessions, real parsers.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import pytest

from helpers import QUICK

BAD = {
    "surrogate-name": ("name=os.fsdecode(b'model-\\xff')", "name='model-\\udcff'", "a lone surrogate"),
    "surrogate-extra": ("extra_info={'file': os.fsdecode(b'\\xfe.onnx')}", "extra_info", "a lone surrogate"),
    "surrogate-key": ("extra_info={os.fsdecode(b'\\xfe'): 1}", "extra_info", "a lone surrogate"),
}

SOURCE = '''
import os


def test_good(trt_bench):
    trt_bench.measure(lambda: sum(range(500)), name="good")


def test_bad(trt_bench):
    trt_bench.measure(lambda: sum(range(500)), {arg})
'''

OUTPUTS = ["--trt-json=out.json", "--trt-report=out.html", "--trt-csv=out.csv", "--junitxml=junit.xml"]


def _all_written(pytester: pytest.Pytester) -> None:
    json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    with open(pytester.path / "out.csv", newline="", encoding="utf-8") as f:
        list(csv.reader(f))
    assert "</html>" in (pytester.path / "out.html").read_text(encoding="utf-8")
    ET.parse(pytester.path / "junit.xml")  # well-formed
    summary = (pytester.path / "summary.md").read_text(encoding="utf-8")
    summary.encode("utf-8")


@pytest.mark.parametrize("case", list(BAD))
def test_hostile_text_is_refused_at_measure_with_one_line(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                          case: str) -> None:
    arg, shown, words = BAD[case]
    pytester.makepyfile(test_perf=SOURCE.format(arg=arg))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", *OUTPUTS, timeout=120)
    assert r.ret == 1, r.stdout.str()  # the bad test fails; no INTERNALERROR, no "this is a bug"
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out and "this is a bug" not in out, out
    r.stdout.fnmatch_lines(["FAILED test_perf.py::test_bad - Failed: *"])
    lines = [ln for ln in r.stdout.lines if f"contains {words}" in ln and not ln.startswith("FAILED")]
    assert len(lines) == 1 and shown in lines[0] and "trt_bench.measure()" in lines[0], r.stdout.lines
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    assert list(json.loads(path.read_text())["results"]) == ["test_perf.py::test_good::good"]
    _all_written(pytester)


PARAMS = '''
import os
import pytest


@pytest.mark.parametrize("model", [os.fsdecode(b"m\\xff.onnx"), "line\\x07bell"], ids=["undecodable", "bell"])
def test_param(trt_bench, model):
    trt_bench.measure(lambda: sum(range(500)))
'''


def test_parametrize_values_are_escaped_in_every_writer(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_perf=PARAMS)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", *OUTPUTS, timeout=120)
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    _all_written(pytester)
    doc = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    params = sorted(res["params"]["model"] for res in doc["results"])
    assert params == ["line\x07bell", "m\\udcff.onnx"], params  # controls carried (JSON escapes them)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    assert len(json.loads(path.read_text())["results"]) == 2


CONTROLS = '''
def test_controls(trt_bench):
    trt_bench.measure(lambda: sum(range(500)), name="a\\x07b\\x1b[31m<&>", group="g\\x1b[31m\\x00",
                      extra_info={"note": "tab\\there\\x0c"})
'''


def test_control_characters_are_escaped_in_every_writer(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """JUnit property names were written raw: ``--junitxml`` was not well-formed XML."""
    pytester.makepyfile(test_perf=CONTROLS)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", *OUTPUTS, timeout=120)
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    _all_written(pytester)
    props = [p.get("name") for p in ET.parse(pytester.path / "junit.xml").iter("property")]
    assert "trtperf[a\\x07b\\x1b[31m<&>].metric" in props, props
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    (rid,) = json.loads(path.read_text())["results"]
    assert rid == "test_perf.py::test_controls::a\x07b\x1b[31m<&>"
