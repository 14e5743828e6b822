"""The HTML report: generated from real runs and parsed back; self-contained;
hostile ids escaped; GPU timeline and layer tables; no matplotlib fallback."""

from __future__ import annotations

import base64
import dataclasses
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import spin_test, run_inner
from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.fingerprint import host_fingerprint
from pytest_trtperf.report.html import PLOTS_HINT, render
from pytest_trtperf.core.results import DeviceState, Result, Verdict


class Page(HTMLParser):
    """Every element with its attributes, the text of each section, and the
    nesting checked (void elements aside)."""

    VOID = {"meta", "img", "br", "hr", "input", "link"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.sections: list[dict[str, Any]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()
        assert self.stack == [], self.stack

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag == "section":
            self.sections.append({"attrs": a, "imgs": [], "text": []})
        if tag == "img" and self.sections and "section" in self.stack:
            self.sections[-1]["imgs"].append(a)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if "section" in self.stack:
            self.sections[-1]["text"].append(data)

    def tags(self, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == name]


def assert_self_contained(page: Page, raw: str) -> None:
    for tag, attrs in page.elements:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, attrs[key][:80])
    assert "url(" not in raw and "@import" not in raw


def svg_of(img: dict[str, str]) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert img["src"].startswith(prefix)
    root = ET.fromstring(base64.b64decode(img["src"][len(prefix):]))
    assert root.tag.endswith("svg")
    return root


SWEEP = "\n\ndef test_sweep(trt_bench):\n    for n in (20_000, 60_000):\n" \
        "        trt_bench.measure(lambda: spin(n), name=f'n{n}')\n"


def test_report_from_a_real_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test() + SWEEP)
    run_inner(pytester, "--trt-baseline=update").assert_outcomes(passed=2)
    r = run_inner(pytester, "--trt-report=out/report.html", "--trt-tolerance=40%", scale=1.8)
    r.assert_outcomes(failed=1, passed=1)
    path = pytester.path / "out" / "report.html"
    r.stdout.fnmatch_lines([f"HTML report: {path}"])
    raw = path.read_text(encoding="utf-8")
    page = Page(raw)
    assert_self_contained(page, raw)
    statuses = [s["attrs"]["data-status"] for s in page.sections]
    assert statuses == ["regression", "pass", "pass"]
    ids = ["test_perf.py::test_spin", "test_perf.py::test_sweep::n20000", "test_perf.py::test_sweep::n60000"]
    for section, rid in zip(page.sections, ids, strict=False):
        text = "".join(section["text"])
        assert rid in text and "baseline from" in text
        (plot,) = section["imgs"]  # host workload: the distribution only, no GPU timeline
        svg = svg_of(plot)
        assert "baseline (n=" in ET.tostring(svg, encoding="unicode")
    assert "median latency regressed" in "".join(page.sections[0]["text"])
    # Summary table: one linked row per result, in the same order as the sections.
    links = [a["href"] for a in page.tags("a")]
    assert links == [f"#{s['attrs']['id']}" for s in page.sections]
    assert PLOTS_HINT not in raw


def test_update_report_shows_the_previous_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    run_inner(pytester, "--trt-baseline=update", scale=2.0).assert_outcomes(passed=1)
    run_inner(pytester, "--trt-baseline=update", "--trt-report=r.html").assert_outcomes(passed=1)
    page = Page((pytester.path / "r.html").read_text(encoding="utf-8"))
    (section,) = page.sections
    assert section["attrs"]["data-status"] == "updated"
    assert len(section["imgs"]) == 1
    # The baseline column holds the previous (2x slower) entry, read before the
    # update replaced it, not the values just written.
    cells = [t.strip() for t in section["text"] if t.strip()]
    i = cells.index("median")
    base_ms, cur_ms = (float(c.split()[0]) for c in cells[i + 1:i + 3])
    assert base_ms > 1.4 * cur_ms, cells[i:i + 4]
    legend = ET.tostring(svg_of(section["imgs"][0]), encoding="unicode")
    assert "baseline (n=" in legend and "this run (n=" in legend


def test_without_matplotlib_tables_and_hint(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    pytester.makepyfile(test_perf=spin_test())
    run_inner(pytester, "--trt-baseline=off", "--trt-report=r.html").assert_outcomes(passed=1)
    raw = (pytester.path / "r.html").read_text(encoding="utf-8")
    page = Page(raw)
    assert page.tags("img") == []
    assert "pip install 'pytest-trtperf[plots]'" in "".join(page.text)
    assert len(page.sections) == 1 and "p50" in "".join(page.sections[0]["text"])


def test_unwritable_report_path_does_not_change_the_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / "afile").write_text("x")
    r = run_inner(pytester, "--trt-baseline=off", "--trt-report=afile/r.html")
    r.assert_outcomes(passed=1)
    assert r.ret == 0
    r.stdout.fnmatch_lines(["HTML report NOT written: *afile/r.html*"])


# -- synthetic results: what a host run cannot produce ------------------------

def make(rid: str, median_ms: float, *, status: str = "pass", layers: tuple = (), timeline: tuple = ()) -> Result:
    samples = np.random.default_rng(1).normal(median_ms, median_ms / 100, 500) / 1000.0
    fp = host_fingerprint()
    state = DeviceState(kind="cuda", samples=len(timeline), sm_clock_mhz_median=1980.0, power_w_max=690.0,
                        flags=("power_throttle",) if timeline else (), timeline=timeline)
    return Result(id=rid, nodeid=rid, name=None, kind="tensorrt", mode="latency",
                  latency=stats.summarize(samples, 0.99), throughput=1000 / median_ms,
                  distribution=stats.compress(samples), stop_reason="converged", warmup_iterations=5, warmup_s=0.2,
                  measured_s=1.0, config_hash="h", identity={}, fingerprint=fp.to_dict(), device_class="gpu-x",
                  device_state=state, layers=layers,
                  verdict=Verdict(status=status, metric="median", tolerance=0.05, baseline_value=10.0,
                                  current_value=median_ms, change=median_ms / 10 - 1, message=f"{rid}: message"))


def entry_for(r: Result) -> BaselineEntry:
    return BaselineEntry.from_result(r, timestamp="2024-05-01T00:00:00+00:00", git_commit="abc123def4567890")


TIMELINE = tuple((i * 0.05, 1980.0 - i * 3, 2619.0, 600.0 + i, 60.0 + i / 10) for i in range(60))
BASE_LAYERS = ({"name": "gemm_0", "ms": 4.0}, {"name": "conv_1", "ms": 2.0}, {"name": "softmax", "ms": 1.0})
CUR_LAYERS = ({"name": "gemm_0", "ms": 6.5}, {"name": "conv_1", "ms": 1.5}, {"name": "softmax", "ms": 1.01})


def test_gpu_timeline_and_layers() -> None:
    base = make("m.py::test_vit", 10.0, layers=BASE_LAYERS)
    cur = make("m.py::test_vit", 12.0, status="regression", layers=CUR_LAYERS, timeline=TIMELINE)
    raw = render([cur], {cur.id: entry_for(base)}, generated="now")
    page = Page(raw)
    (section,) = page.sections
    assert len(section["imgs"]) == 2  # distribution + GPU timeline
    timeline_svg = ET.tostring(svg_of(section["imgs"][1]), encoding="unicode")
    assert "SM clock" in timeline_svg and "temperature" in timeline_svg
    text = "".join(section["text"])
    assert "Layers whose time changed most" in text and "power_throttle" in text
    assert text.index("gemm_0") < text.index("conv_1") < text.index("softmax")
    assert "+2.500" in text and "-0.500" in text and "commit abc123def456" in text
    # No profile on one side: no layer table.
    assert "Layers whose" not in render([dataclasses.replace(cur, layers=())], {cur.id: entry_for(base)},
                                        generated="now")


@pytest.mark.parametrize("rid", ["<script>alert(1)</script>", "../../x\" onerror=\"alert(1)", "\u540d\u524d-\U0001f680",
                                 "a" * 5000, "x & y <b>"])
def test_hostile_ids_are_escaped(rid: str) -> None:
    raw = render([make(rid, 10.0)], {}, generated="<now>", plots=False)
    page = Page(raw)
    assert page.tags("script") == [] and page.tags("b") == []
    assert all(set(a) <= {"id", "class", "style", "data-status", "href", "lang", "charset", "name", "content",
                          "alt", "src"} for _, a in page.elements)
    text = "".join(page.text)
    assert rid in text and "<now>" in text
    assert [s["attrs"]["id"] for s in page.sections] == ["r0"]


def test_empty_session_renders() -> None:
    page = Page(render([], {}, generated="now"))
    assert page.sections == [] and "No results" in "".join(page.text)


def test_report_is_written_atomically(tmp_path: Path) -> None:
    from pytest_trtperf.report.html import write_report

    out = tmp_path / "deep" / "r.html"
    assert write_report(out, [make("a", 1.0)], {}, generated="now", baseline_mode="off") == f"HTML report: {out}"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


# -- scale (issue 16 item 7) ----------------------------------------------------

def test_large_sessions_get_sections_only_where_attention_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_SECTIONS results, sections (and so plots) are drawn for the
    regressions, improvements and largest changes only; every result keeps its
    row in the summary table. The cost of one more passing result is then a
    table row, not a plot. (A smaller limit here keeps the test fast.)"""
    from pytest_trtperf.report import html as report_html

    limit = 6
    monkeypatch.setattr(report_html, "MAX_SECTIONS", limit)

    def results(n: int) -> list[Result]:
        out = [make(f"t.py::test_{i:04d}", 10.0 + (i % 7) * 0.01) for i in range(n)]
        out[n // 2] = make("t.py::test_slow", 13.0, status="regression")
        out[n // 3] = make("t.py::test_fast", 7.0, status="improved")
        out[1] = make("t.py::test_moved", 10.4)  # +4%: the largest change among the passes
        return out

    small = render(results(limit), {}, generated="now")
    page = Page(small)
    assert len(page.sections) == limit and len(page.tags("img")) == limit
    big_n = 40 * limit
    big = results(big_n)
    raw = render(big, {}, generated="now")
    page = Page(raw)
    assert len(page.sections) == limit and len(page.tags("img")) == limit
    shown = [("".join(s["text"]), s["attrs"]["data-status"]) for s in page.sections]
    assert shown[0][1] == "regression" and "t.py::test_slow" in shown[0][0]
    assert any("t.py::test_fast" in text for text, _ in shown) and any("t.py::test_moved" in t for t, _ in shown)
    rows = raw.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")
    assert rows == big_n
    assert [a["href"] for a in page.tags("a")] == [f"#{s['attrs']['id']}" for s in page.sections]
    assert f"{big_n} results: the {limit} that need attention most" in "".join(page.text)
    # 40 times the results, not 40 times the page: the extra ones are rows.
    assert len(raw) < 2 * len(small), (len(raw), len(small))


def test_baseline_values_no_run_produces_render_as_dashes() -> None:
    """What issue 16 saw crash the session after the baseline was written
    (a non-string git_commit, NaN quantiles, a string median) renders, with
    ``-`` where a value is unusable, whatever the loader lets through."""
    r = make("m.py::test_vit", 12.0, status="regression", timeline=TIMELINE)
    good = entry_for(make("m.py::test_vit", 10.0))
    q = list(good.distribution.quantiles_ms)
    q[3] = float("nan")
    odd = dataclasses.replace(good, git_commit=12345, distribution=dataclasses.replace(good.distribution,
                                                                                        quantiles_ms=tuple(q)),
                              latency=dataclasses.replace(good.latency, median="abc", p99=float("inf")))
    page = Page(render([r], {r.id: odd}, generated="now"))
    (section,) = page.sections
    text = "".join(section["text"])
    assert "commit 12345" in text and "abc" not in text
    cells = [t.strip() for t in section["text"] if t.strip()]
    i = cells.index("median")
    assert cells[i + 1] == "-" and cells[i + 2].endswith(" ms") and cells[i + 3] == "-"
    assert len(section["imgs"]) == 2  # this run's distribution (the baseline's is not drawn) and the timeline
    assert "baseline (n=" not in ET.tostring(svg_of(section["imgs"][0]), encoding="unicode")
