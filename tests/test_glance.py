"""Output a person reads at a glance (issue 26 point 5): real pytest sessions,
real files; the rules (width, units, order, rounding, plot window) are
checked against what a reader sees, not against the code's own numbers."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from helpers import QUICK
from pytest_trtperf.core import stats
from pytest_trtperf.cli import main
from pytest_trtperf.core import units
from pytest_trtperf.report.terminal import natural_key, shorten_middle

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")

LONG = '''
import hashlib
import pytest

DATA = b"\\x5a" * 20_000


@pytest.mark.parametrize("n", [100000, 10000, 1000])
def test_hash_many_bytes(trt_bench, n):
    trt_bench.measure(lambda: hashlib.sha256(DATA[: n // 100]).digest())
'''


def table_lines(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("result "))
    end = next(i for i in range(start, len(lines)) if re.match(r"\d+ (pass|missing|off|updated)", lines[i]))
    return lines[start:end]


def test_the_table_fits_100_columns_keeps_file_and_test_and_orders_params_naturally(
        pytester: pytest.Pytester) -> None:
    deep = pytester.mkpydir("a_rather_deep") / "directory_of_performance_tests"
    deep.mkdir()
    (deep / "__init__.py").write_text("")
    (deep / "test_hashing_suite.py").write_text(LONG)
    r = pytester.runpytest(*QUICK, "--trt-baseline=off")
    r.assert_outcomes(passed=3)
    table = table_lines(r.stdout.str())
    assert all(len(ln) <= 100 for ln in table), "\n".join(table)
    rows = [ln for ln in table[2:] if "median" in ln]
    assert len(rows) == 3
    for ln in rows:  # directories go first; the file, the test's start and its parameters stay
        assert ln.startswith(".../test_hashing_suite.py::test_ha"), ln
    params = [re.search(r"\[(\d+)\]", ln) for ln in rows]
    assert [int(m.group(1)) for m in params if m] == [1000, 10000, 100000], rows


def test_shortening_and_natural_order_rules() -> None:
    rid = "tests/perf/deep/test_x.py::test_y[100000]::bs128-" + "z" * 60
    short = shorten_middle(rid, 40)
    assert len(short) == 40 and short.startswith(".../test_x.py::test_y[100000]::") and "..." in short[30:]
    assert sorted(["t[100000]", "t[10000]", "t[1000]", "t[999]"], key=natural_key) == \
        ["t[999]", "t[1000]", "t[10000]", "t[100000]"]


def test_one_unit_per_table_reads_without_five_integer_digits() -> None:
    u = units.choose([0.0502, 48.72141], across=True)  # 50.2 us and 48.72 ms in one table
    assert u.name == "ms" and u.fmt(48.72141).startswith("48.72") and "," not in u.fmt(48.72141)
    assert units.choose([0.0502, 1.2], across=True).name == "us"  # 1,200.0 us still reads fine


@pytest.mark.parametrize("encoding, word", [("utf-8", "\u00b5s"), ("ascii", "us")])
def test_microseconds_are_spelled_for_the_terminal(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                    encoding: str, word: str) -> None:
    pytester.makepyfile(test_t="import hashlib\n\ndef test_t(trt_bench):\n"
                               "    trt_bench.measure(lambda: hashlib.sha256(b'x' * 20000).digest())\n")
    monkeypatch.setenv("PYTHONIOENCODING", encoding)
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=off")
    row = next(ln for ln in r.stdout.lines if ln.startswith("test_t.py::test_t"))
    assert re.search(rf"\d {word}\b", row), row
    if word == "us":
        assert "\u00b5" not in r.stdout.str()


def test_reports_name_the_flag_column_for_what_it_holds(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_t="def test_t(trt_bench):\n    trt_bench.measure(lambda: sum(range(100)))\n")
    r = pytester.runpytest(*QUICK, "--trt-baseline=off", "--trt-report=r.html", "--trt-csv=r.csv")
    assert re.search(r"verdict +state\n", r.stdout.str())
    for text in (summary.read_text(), (pytester.path / "r.html").read_text()):
        assert "state flags" in text and "GPU flags" not in text
    row = next(csv.DictReader((pytester.path / "r.csv").open()))
    floats = [v for k, v in row.items() if k.endswith("_ms") or k in ("current", "throughput")]
    assert floats and all(len(re.sub(r"[^0-9]", "", v.split("e")[0]).lstrip("0")) <= 6 for v in floats), row


def test_every_compare_page_names_both_sources(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_t="def test_t(trt_bench):\n    trt_bench.measure(lambda: sum(range(100)))\n")
    pytester.runpytest(*QUICK, "--trt-baseline=off", "--trt-json=a.json").assert_outcomes(passed=1)
    pytester.runpytest(*QUICK, "--trt-baseline=off", "--trt-json=b.json").assert_outcomes(passed=1)
    a, b, html = pytester.path / "a.json", pytester.path / "b.json", tmp_path / "compare.html"
    main(["compare", str(a), str(b), "--html", str(html), "--tolerance", "900%"])
    page = html.read_text()
    assert f"baseline from {a}" in page and str(b) in page


@needs_matplotlib
def test_a_heavy_tail_does_not_squash_the_distribution_plot() -> None:
    """A fifth of the samples 50x slower: the body (p25..p75) keeps a
    readable share of the axis and the clipped tail is marked."""
    from matplotlib.figure import Figure

    from pytest_trtperf.report.html import distribution_figure

    rng = np.random.default_rng(0)
    body = rng.normal(1.0, 0.02, 8000)
    tail = rng.normal(50.0, 1.0, 2000)
    samples = np.concatenate([body, tail]) * 1e-3
    d = stats.compress(samples)
    fig = distribution_figure(Figure, d, None, "pass")
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    q25, q75 = d.quantiles_ms[25] * 1e3, d.quantiles_ms[75] * 1e3  # the unit is us here
    assert "tail clipped" in ax.get_xlabel() and hi < 50_000 / 2
    assert (q75 - q25) / (hi - lo) > 0.05, (q25, q75, lo, hi)


def test_disabled_and_baseline_off_have_distinct_words(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_t="def test_t(trt_bench):\n    r = trt_bench.measure(lambda: 1)\n"
                               "    print('STATUS', r.verdict.status)\n")
    off = pytester.runpytest(*QUICK, "-s", "--trt-baseline=off")
    disabled = pytester.runpytest(*QUICK, "-s", "--trt-disable")
    assert "STATUS off" in off.stdout.str() and "STATUS disabled" in disabled.stdout.str()


def test_json_of_a_disabled_verdict_is_valid() -> None:
    from pytest_trtperf.report.document import schema

    assert "disabled" in json.dumps(schema())


def test_the_step_up_never_writes_a_value_as_zero() -> None:
    u = units.choose([0.000005, 50.0], across=True)  # 5 ns beside 50 ms: no unit reads both well
    assert u.fmt(0.000005) != "0.0000 ms" and float(u.fmt(0.000005).split()[0].replace(",", "")) > 0


class _Cells(HTMLParser):
    """The text of every table cell of an HTML report, by where it stands:
    ``summary`` or the id of a result's section."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, list[str]] = {"summary": []}
        self.where = "summary"
        self.cell: list[str] | None = None
        self.messages: list[str] = []
        self.msg: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.where = a.get("id") or "?"
            self.cells[self.where] = []
        elif tag == "td":
            self.cell = []
        elif tag == "div" and a.get("class") == "msg":
            self.msg = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.cell is not None:
            self.cells[self.where].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "div" and self.msg is not None:
            self.messages.append("".join(self.msg))
            self.msg = None

    def handle_data(self, data: str) -> None:
        for buf in (self.cell, self.msg):
            if buf is not None:
                buf.append(data)


TIME = re.compile(r"\d[\d,]*\.\d+ (ns|\u00b5s|us|ms|s)\b")

TWO_SCALES = '''
import hashlib

BIG = b"\\x5a" * 4_000_000


def test_fast(trt_bench):
    trt_bench.measure(lambda: sum(range(20)))


def test_slow(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(BIG).digest())
'''


def test_the_html_report_writes_every_time_in_one_unit(pytester: pytest.Pytester) -> None:
    """A sub-microsecond result beside a millisecond one: the summary, every
    section's statistics and quantiles write times in one unit, so the slow
    test's median reads the same in the summary and in its section (they
    read ``4,012.55 µs`` and ``4.013 ms`` when each section chose its own)."""
    pytester.makepyfile(test_t=TWO_SCALES)
    r = pytester.runpytest(*QUICK, "--trt-baseline=off", "--trt-report=r.html")
    assert r.ret == 0, r.stdout.str()
    page = _Cells()
    page.feed((pytester.path / "r.html").read_text(encoding="utf-8"))
    assert len(page.cells) == 3, list(page.cells)  # the summary and two sections
    found = {where: {m.group(1) for c in cells for m in TIME.finditer(c)} for where, cells in page.cells.items()}
    assert all(found.values()) and len(set().union(*found.values())) == 1, found
    summary = page.cells["summary"]
    slow_row = summary.index("test_t.py::test_slow")
    median = summary[slow_row + 3]  # result, metric, baseline, current
    assert TIME.fullmatch(median), summary
    slow_section = next(cells for where, cells in page.cells.items() if where != "summary" and median in cells)
    assert slow_section[slow_section.index("median") + 2] == median
    # ... and as the terminal's table wrote it
    terminal = next(ln for ln in r.stdout.lines if ln.startswith("test_t.py::test_slow"))
    assert median.replace("\u00b5s", "us") in terminal.replace("\u00b5s", "us"), (median, terminal)


REGRESSES = '''
import hashlib
import os

DATA = b"\\x5a" * int(os.environ.get("TRT_GLANCE_BYTES", "4000"))


def test_t(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(DATA).digest(), name="at 5 us")
'''


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_messages_spell_microseconds_where_they_are_shown(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    """A regression's message is made in ASCII (``us``: it is data in JSON,
    JUnit and annotations, and may come from a worker that cannot know the
    terminal); the terminal summary spells ``µs`` where it encodes UTF-8, as
    its table does, and the HTML report and the job summary always. The
    measurement's own name (``at 5 us``) is user text and reads as written."""
    pytester.makepyfile(test_t=REGRESSES)
    monkeypatch.setenv("PYTHONIOENCODING", encoding)
    # QUICK windows: a 20x regression needs no long ones; the test is about units.
    assert pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update").ret == 0
    monkeypatch.setenv("TRT_GLANCE_BYTES", "80000")  # 20x the work: a regression of microsecond values
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    r = pytester.runpytest_subprocess(*QUICK, "--junitxml=j.xml", "--trt-json=r.json", "--trt-report=r.html")
    out = r.stdout.str()
    assert r.ret == 1, out
    line = next(ln for ln in r.stdout.lines if ln.startswith("test_t.py::test_t::at 5 us: median latency regressed"))
    units_in_line = {m.group(1) for m in TIME.finditer(line)}
    assert units_in_line == ({"\u00b5s"} if encoding == "utf-8" else {"us"}), line
    if encoding == "ascii":
        assert "\u00b5" not in out
    message = json.loads((pytester.path / "r.json").read_text())["results"][0]["verdict"]["message"]
    assert " us" in message and "\u00b5" not in message  # the data keeps ASCII
    junit = (pytester.path / "j.xml").read_text(encoding="utf-8")
    assert "regressed" in junit and "\u00b5" not in junit
    page = _Cells()
    page.feed((pytester.path / "r.html").read_text(encoding="utf-8"))
    (shown,) = page.messages
    assert {m.group(1) for m in TIME.finditer(shown)} == {"\u00b5s"}, shown
    details = summary.read_text(encoding="utf-8").split("```text", 1)[1]
    assert "regressed" in details and {m.group(1) for m in TIME.finditer(details)} == {"\u00b5s"}, details
    assert "::at 5 us:" in line and "::at 5 us:" in details  # the user's name as written


def test_spelling_a_message_leaves_the_users_text_alone() -> None:
    text = "t.py::t[5 us]: median latency regressed +50.0% (1,776.56 us -> 2,664.84 us); at 3 us"
    spelled = units.spelled(text, "\u00b5s", ["t.py::t[5 us]", "at 3 us"])
    assert spelled == ("t.py::t[5 us]: median latency regressed +50.0% (1,776.56 \u00b5s -> 2,664.84 \u00b5s); "
                       "at 3 us")
    assert units.spelled(text, "us", ["t.py::t[5 us]"]) == text


MANY_AND_ONE = '''
import hashlib
import pytest

BIG = b"\\x5a" * 4_000_000


@pytest.mark.parametrize("i", range(21))
def test_fast(trt_bench, i):
    trt_bench.measure(lambda: sum(range(20)))


def test_slow(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(BIG).digest())
'''


def test_the_job_summary_writes_every_time_in_one_unit(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 20 results the job summary has two tables: the results that need
    attention (here the slow one, without a baseline) and all results. Both
    write times in one unit, so the slow result's value reads the same in
    both (the first table chose ``ms`` from its one row, the second ``µs``)."""
    pytester.makepyfile(test_t=MANY_AND_ONE)
    # QUICK windows: this test reads units, not timings (22 results measured twice)
    assert pytester.runpytest(*QUICK, "--trt-baseline=update", "-k", "fast").ret == 0
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert pytester.runpytest(*QUICK, "--trt-tolerance=1000%").ret == 0  # units, not timing: sub-us calls differ by process
    text = summary.read_text(encoding="utf-8")
    slow_rows = [ln for ln in text.splitlines() if ln.startswith("| test_t.py::test_slow |")]
    assert len(slow_rows) == 2 and slow_rows[0] == slow_rows[1], slow_rows  # attention table, then all
    rows = [ln for ln in text.splitlines() if ln.startswith("| test_t.py::")]
    assert len(rows) == 23 and {m.group(1) for ln in rows for m in TIME.finditer(ln)} == {"\u00b5s"}, rows
