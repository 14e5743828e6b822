"""The flag column of every report shows only what bears on the verdict;
the raw flags stay in the JSON and in the HTML detail.

GPU states are constructed as data (``results.DeviceState``), the verdicts
come from the real gate on real samples, and the real renderers draw them.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.fingerprint import gpu_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.report import github, html, terminal
from pytest_trtperf.core.results import DeviceState, Result

FP = gpu_fingerprint(kind="cuda", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", trt_version=None,
                     clocks="off", info={})


def gpu_result(rid: str, scale: float, *, flags: tuple[str, ...], sm: float, seed: int) -> Result:
    x = np.random.default_rng(seed).normal(1.0, 0.005, 2000) * scale * 2e-4
    state = DeviceState(kind="cuda", samples=100, sm_clock_mhz_median=sm, sm_clock_mhz_min=sm - 50,
                        throttle_reasons=tuple(sorted({"sw_power_cap"} if "power_throttle" in flags else set())),
                        flags=flags)
    return Result(id=rid, nodeid=rid, name=None, kind="cuda", mode="latency", latency=stats.summarize(x),
                  throughput=1 / x.mean(), distribution=stats.compress(x), stop_reason="converged",
                  warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash="cfg", identity={},
                  fingerprint=FP.to_dict(), device_class=FP.device_class, device_state=state)


def judged(base: Result, cur: Result) -> tuple[Result, BaselineEntry]:
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None)
    v = judge(cur, entry, baseline_mode="compare", metric="median", tolerance=0.03, confidence=0.99,
              baseline_path="b.json")
    return dataclasses.replace(cur, verdict=v), entry


def suite() -> tuple[list[Result], dict[str, BaselineEntry]]:
    """Two GEMM-like results at the power cap in baseline and compare alike
    (one unchanged, one 1% slower), and one that ran into a thermal slowdown
    with its clock 15% down and got 12% slower."""
    pairs = [
        ("t.py::test_gemm", 1.0, 1.0, ("power_throttle",), ("power_throttle",), 1410.0, 1400.0),
        ("t.py::test_mlp", 1.0, 1.01, ("power_throttle",), ("power_throttle",), 1980.0, 1965.0),
        ("t.py::test_vit", 1.0, 1.12, ("power_throttle",), ("power_throttle", "thermal_throttle"), 1410.0, 1200.0),
    ]
    results, entries = [], {}
    for i, (rid, b, c, bf, cf, bsm, csm) in enumerate(pairs):
        r, e = judged(gpu_result(rid, b, flags=bf, sm=bsm, seed=2 * i), gpu_result(rid, c, flags=cf, sm=csm,
                                                                                    seed=2 * i + 1))
        results.append(r)
        entries[rid] = e
    return results, entries


def test_terminal_table_shows_only_flags_that_bear_on_the_verdict() -> None:
    results, _ = suite()
    lines = terminal.format_table(results)
    text = "\n".join(lines)
    rows = {ln.split()[0]: ln for ln in lines[2:]}
    assert rows["t.py::test_gemm"].rstrip().endswith("-")
    assert rows["t.py::test_mlp"].rstrip().endswith("-")
    # 100 columns: the second flag continues on the next line, under its column (issue 26)
    vit = lines.index(rows["t.py::test_vit"])
    assert "SM clock -14.9%," in lines[vit] and lines[vit + 1].strip() == "thermal_throttle (new)"
    assert all(len(ln) <= 100 for ln in lines)
    assert "power_throttle" not in text  # carried by every window: says nothing about a change


def test_job_summary_flag_column() -> None:
    results, _ = suite()
    md = github.step_summary(results)
    rows = [ln for ln in md.splitlines() if ln.startswith("| t.py::")]
    flags = {row.split("|")[1].strip(): row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows}
    assert flags == {"t.py::test_gemm": "-", "t.py::test_mlp": "-",
                     "t.py::test_vit": "SM clock -14.9%, thermal_throttle (new)"}
    assert "power_throttle" not in md


def test_html_summary_shows_verdict_flags_and_the_detail_keeps_the_raw_ones() -> None:
    results, entries = suite()
    page = html.render(results, entries, generated="now", plots=False)
    summary, details = page.split("<section", 1)
    assert "thermal_throttle (new)" in summary and "power_throttle" not in summary
    gemm = details[details.index("t.py::test_gemm"):details.index("</section>", details.index("t.py::test_gemm"))]
    assert "flags of this window</td><td>power_throttle" in gemm
    assert "sw_power_cap" in gemm
    assert "flags vs the baseline</td><td>-" in gemm


def test_json_keeps_raw_flags_and_carries_the_verdict_flags() -> None:
    results, _ = suite()
    doc = json.loads(json.dumps([r.to_dict() for r in results]))
    by_id = {d["id"]: d for d in doc}
    assert by_id["t.py::test_gemm"]["device_state"]["flags"] == ["power_throttle"]
    assert by_id["t.py::test_gemm"]["verdict"]["flags"] == []
    assert by_id["t.py::test_vit"]["verdict"]["flags"] == ["SM clock -14.9%", "thermal_throttle (new)"]
    assert Result.from_dict(by_id["t.py::test_vit"]) == results[2]
