"""Reports that read at a glance: one time unit per table chosen from its
values, tick labels that do not overlap, no empty GPU section for host
results, history plots with a tolerance band and a y range that does not
turn a 2% wiggle into a cliff."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import numpy as np
import pytest

from helpers import FAST
from pytest_trtperf.core import stats
from pytest_trtperf.core.fingerprint import host_fingerprint
from pytest_trtperf.core import units
from pytest_trtperf.report.terminal import format_table
from pytest_trtperf.core.results import DeviceState, Result, Verdict
from test_report_html import Page, make

# Not importorskip("matplotlib"): importing the bare package at collection while
# in-process pytester runs import (and then drop) its submodules would mix two
# copies of matplotlib's classes in this process.
needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")


@pytest.mark.parametrize("values, unit, text", [
    ([0.06723, 1.2], "us", "67.23 us"),  # the smallest value decides: 67.23 us, not 0.06723 ms
    ([0.000412], "ns", "412.0 ns"),
    ([12.5, 230.0], "ms", "12.50 ms"),
    ([2500.0], "s", "2.500 s"),
    ([None, float("nan"), 0.0, -1.0], "ms", "-"),  # nothing usable: ms, and no value to show
])
def test_unit_is_chosen_from_the_smallest_value(values: list[Any], unit: str, text: str) -> None:
    u = units.choose(values)
    assert u.name == unit
    assert u.fmt(values[0]) == text


def test_decimals_follow_the_smallest_value_for_the_whole_table() -> None:
    u = units.choose([0.0042, 0.0423, 0.423])  # 4.2, 42.3, 423 us
    assert [u.fmt(v) for v in (0.0042, 0.0423, 0.423)] == ["4.200 us", "42.300 us", "423.000 us"]
    assert units.choose([0.1234]).fmt(1.5) == "1,500.0 us"


def host_result(rid: str, median_ms: float, baseline_ms: float | None = None) -> Result:
    samples = np.random.default_rng(0).normal(median_ms, median_ms / 50, 300) / 1000.0
    fp = host_fingerprint()
    v = Verdict(status="pass" if baseline_ms else "missing", metric="median", tolerance=0.05,
                baseline_value=baseline_ms, current_value=float(np.median(samples)) * 1000)
    return Result(id=rid, nodeid=rid, name=None, kind="host", mode="latency", latency=stats.summarize(samples),
                  throughput=1.0, distribution=stats.compress(samples), stop_reason="converged", warmup_iterations=5,
                  warmup_s=0.2, measured_s=1.0, config_hash="h", identity={}, fingerprint=fp.to_dict(),
                  device_class=fp.device_class, device_state=DeviceState(kind="host"), verdict=v)


def test_terminal_table_has_one_unit() -> None:
    lines = format_table([host_result("t.py::fast", 0.06723, 0.0671), host_result("t.py::slow", 1.2, 1.19)])
    cells = " ".join(lines[2:])
    assert re.findall(r"\d[\d,]*\.\d+ (\w+)", cells) and set(re.findall(r"\d[\d,]*\.\d+ (\w+)", cells)) == {"us"}
    assert re.search(r"1,\d{3}\.\d\d us", cells)  # 1.2 ms written as 1,2xx.xx us


@needs_matplotlib
def test_html_tables_use_one_unit_per_table_and_hosts_have_no_gpu_section() -> None:
    from pytest_trtperf.report.html import render

    fast = host_result("t.py::fast", 0.06723, 0.0671)
    raw = render([fast], {}, generated="now")
    page = Page(raw)
    (section,) = page.sections
    text = "".join(section["text"])
    assert "GPU state" not in text and "no GPU state sampled" not in text
    assert " ms" not in text.replace("ms)", "")  # stats and quantiles in µs, like the terminal
    assert "67." in text and " \u00b5s" in text  # HTML is UTF-8: µs (issue 26)
    # A GPU result keeps its GPU section.
    gpu = make("m.py::test_vit", 12.0, timeline=((0.0, 1980.0, 2619.0, 600.0, 60.0),) * 3)
    assert "GPU state during the run" in render([gpu], {}, generated="now")


def _labels_overlap(fig: Any, axis: Any) -> list[tuple[str, str]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


@needs_matplotlib
@pytest.mark.parametrize("median_ms", [0.0675, 0.675, 6.75, 67.5, 675.0, 6750.0])
def test_distribution_tick_labels_do_not_overlap(median_ms: float) -> None:
    from matplotlib.figure import Figure
    from pytest_trtperf.report.html import distribution_figure

    base = make("m.py::t", median_ms)
    cur = make("m.py::t", median_ms * 1.04)
    fig = distribution_figure(Figure, cur.distribution, base.distribution, "pass")
    ax = fig.axes[0]
    assert _labels_overlap(fig, ax.xaxis) == []
    assert all(len(t.get_text()) <= 6 for t in ax.get_xticklabels())  # "0.0650" -> "65.0" in us
    assert ax.xaxis.get_major_formatter().get_offset() == ""


@needs_matplotlib
def test_history_plot_has_a_tolerance_band_and_a_sane_y_range() -> None:
    from matplotlib.figure import Figure
    from pytest_trtperf.report import history

    commits = [history.Commit(f"{i:040x}", 1_700_000_000 + i, f"c{i}") for i in range(40)]
    wiggle = [0.006142 * (1 + 0.02 * (i % 2)) for i in range(40)]  # a 2% wiggle around 6.1 us
    s = history.Series("dc", "t.py::x", tuple(history.Point(c, m, None, 100) for c, m in zip(commits, wiggle, strict=False)))
    fig = history.series_figure(Figure, s, tolerance=0.05)
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    first = 6.142  # us: the plot is in the unit of its values
    assert lo <= first * 0.95 and hi >= first * 1.05  # the whole band is visible
    assert (max(wiggle) - min(wiggle)) * 1e3 / (hi - lo) < 0.3  # so 2% fills well under a third of the height
    assert "(us)" in ax.get_ylabel()
    assert any("tolerance" in t.get_text() for t in ax.get_legend().get_texts())
    assert _labels_overlap(fig, ax.yaxis) == []
    assert len([t for t in ax.get_xticklabels() if t.get_text()]) <= history.MAX_XTICKS


def test_history_text_uses_the_values_unit() -> None:
    from pytest_trtperf.report import history

    c = [history.Commit("a" * 40, 1, "x"), history.Commit("b" * 40, 2, "y")]
    s = history.Series("dc", "t.py::x", (history.Point(c[0], 0.006142, None, 1), history.Point(c[1], 0.0062, None, 1)))
    (line,) = history.summary_lines([s], 0.05)
    assert "6.142 us -> 6.200 us (+0.9%)" in line


@needs_matplotlib
def test_real_report_reads_in_one_unit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(trt_bench):\n    trt_bench.measure(lambda: sum(range(50)))\n")
    out = pytester.path / "r.html"
    r = pytester.runpytest(*FAST, "--trt-baseline=off", f"--trt-report={out}")
    r.assert_outcomes(passed=1)
    row = next(line for line in r.stdout.lines if line.startswith("test_a.py::test_a"))
    unit = row.split()[4]
    page = Page(out.read_text())
    text = "".join(page.sections[0]["text"])
    assert f" {unit}" in text and "GPU state" not in text


def test_verdict_message_writes_times_in_the_tables_unit() -> None:
    """Sub-microsecond results: the message said ``0.09 us -> 0.09 us`` where
    the table said ``90.00 ns``; both now use report.units' rule."""
    import dataclasses

    from pytest_trtperf.gate import timing as gate
    from pytest_trtperf.report import terminal
    from test_report_html import entry_for, make

    base, cur = make("t.py::test_tiny", 0.000090), make("t.py::test_tiny", 0.000091)
    v = gate.judge(cur, entry_for(base), baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                   baseline_path="b.json")
    row = next(line for line in terminal.format_table([dataclasses.replace(cur, verdict=v)])
               if line.startswith("t.py::test_tiny"))
    baseline_cell, current_cell = [c.strip() for c in row.split("  ") if c.strip()][2:4]
    assert baseline_cell.endswith(" ns") and current_cell.endswith(" ns"), row
    assert f"({baseline_cell} -> {current_cell}," in v.message, (row, v.message)
    assert " us" not in v.message
