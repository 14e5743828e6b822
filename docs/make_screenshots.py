"""Regenerate the README's screenshots (docs/img/*.png) from real runs.

    python docs/make_screenshots.py [--keep DIR]

Needs: this package installed with matplotlib, git, headless Chromium
(Debian: ``apt-get install -y chromium``) and ``markdown-it-py`` (renders the
job summary's Markdown the way GitHub does, for the picture only).

What each picture is:

* ``job-summary.png`` and ``html-report.png``: a real run of host-timed
  workloads in groups (``group=``) against a real baseline of the same
  workloads, with the encoder made 35% slower (it hashes 35% more bytes) and
  the decoder 23% faster: the job summary Markdown ($GITHUB_STEP_SUMMARY)
  rendered locally, and the --trt-report page.
* ``history.png``: ``pytest-trtperf history`` over a real git repository
  whose first commit is that real baseline; seven later commits scale its
  entries (the encoder +1.5% per commit, the others +-0.2%), which is what a
  creep looks like.
* ``html-report-gpu-synthetic.png``: a TensorRT result's section from
  synthetic data (the machine that makes these has no GPU): a 20% regression
  with the clocks dropping and power rising, flagged ``power_throttle``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMG = HERE / "img"

SUITE = '''
import hashlib
import os

import pytest

DATA = memoryview(b"\\x5a" * 8_000_000)
ENCODER = float(os.environ.get("ENCODER", "1"))
DECODER = float(os.environ.get("DECODER", "1"))


@pytest.mark.trt_perf(group="encoder")
def test_encoder_latency(trt_bench):
    trt_bench.extra_info["model"] = "encoder-v2"
    trt_bench.measure(hashlib.sha256, DATA[:int(400_000 * ENCODER)])


@pytest.mark.trt_perf(group="decoder")
def test_decoder_step(trt_bench):
    trt_bench.measure(hashlib.sha256, DATA[:int(500_000 * DECODER)])


@pytest.mark.trt_perf(group="decoder")
def test_batch_sweep(trt_bench):
    for bs in (1, 16, 64):
        trt_bench.measure(hashlib.sha256, DATA[:bs * 4096], name=f"bs{bs}", inferences_per_iteration=bs)
'''

GITHUB_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif;
 font-size:14px;color:#1f2328;background:#f6f8fa;margin:0;padding:16px}
.box{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:16px 24px}
.title{color:#57606a;font-size:12px;border-bottom:1px solid #d0d7de;padding-bottom:8px;margin-bottom:8px}
h2{font-size:20px;border-bottom:1px solid #d8dee4;padding-bottom:6px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:6px 13px}
tr:nth-child(2n){background:#f6f8fa}th{font-weight:600}
pre{background:#f6f8fa;border-radius:6px;padding:12px;font-size:12px;white-space:pre-wrap}
summary{cursor:pointer}
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def pytest_run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark",
                "--trt-min-time=1", "--trt-max-time=3", *args], cwd, env)


def screenshot(html: Path, png: Path, width: int, height: int, profile: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs headless Chromium: apt-get install -y chromium")
    profile.mkdir(parents=True, exist_ok=True)
    run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
         f"--screenshot={png}", f"--window-size={width},{height}", html.as_uri()], html.parent)
    if not png.exists():
        sys.exit(f"Chromium wrote no {png}")
    print(f"wrote {png}")


def job_summary_page(markdown: str, out: Path) -> None:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    out.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{GITHUB_CSS}</style></head><body>"
                   f"<div class='box'><div class='title'>gate summary (job summary Markdown rendered locally with "
                   f"markdown-it-py)</div>{body}</div></body></html>", encoding="utf-8")


def git(cwd: Path, *args: str) -> None:
    run(["git", "-c", "user.name=docs", "-c", "user.email=docs@example.invalid", "-c", "commit.gpgsign=false",
         *args], cwd)


def history(work: Path, real_baseline: Path, profile: Path) -> None:
    """A repository whose first commit is the real baseline, then a creep."""
    from pytest_trtperf.baselines.store import dumps

    repo = work / "history"
    bdir = repo / ".trtperf"
    bdir.mkdir(parents=True)
    target = bdir / real_baseline.name
    shutil.copy(real_baseline, target)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline from a real run")
    doc = json.loads(real_baseline.read_text())
    for k in range(1, 8):
        for rid, entry in doc["results"].items():
            factor = 1.015 if "encoder" in rid else (1.002 if k % 2 else 0.998)
            lat = entry["latency_ms"]
            for key in ("median", "mean", "p90", "p95", "p99"):
                lat[key] *= factor
            lat["median_ci"] = [x * factor for x in lat["median_ci"]]
        target.write_text(dumps(doc))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"merge {k}")
    out = work / "history.html"
    run([sys.executable, "-m", "pytest_trtperf.cli", "history", "--baseline-dir", str(bdir), "--output", str(out)],
        repo)
    screenshot(out, IMG / "history.png", 1280, 1100, profile)


def gpu_synthetic(work: Path, profile: Path) -> None:
    """A TensorRT result's section from synthetic numbers (no GPU here)."""
    import numpy as np

    from pytest_trtperf.core import stats
    from pytest_trtperf.baselines.store import BaselineEntry
    from pytest_trtperf.report.html import render
    from pytest_trtperf.core.results import DeviceState, Result, Verdict

    def result(median_ms: float, layers: tuple, timeline: tuple, status: str) -> Result:
        samples = np.random.default_rng(1).normal(median_ms, median_ms / 100, 2000) / 1000.0
        state = DeviceState(kind="tensorrt", samples=len(timeline), sm_clock_mhz_min=1755.0,
                            sm_clock_mhz_median=1830.0, mem_clock_mhz_median=2619.0, power_w_median=640.0,
                            power_w_max=699.0, temperature_c_max=71.0, throttle_reasons=("sw_power_cap",),
                            flags=("power_throttle",) if timeline else (), clocks_locked="off", timeline=timeline)
        fp = {"device_class": "NVIDIA H100 80GB HBM3 sm90 trt10.13", "critical": {"kind": "tensorrt"}, "info": {}}
        return Result(id="tests/test_models.py::test_vit_latency", nodeid="tests/test_models.py::test_vit_latency",
                      name=None, kind="tensorrt", mode="latency", latency=stats.summarize(samples),
                      throughput=128_000 / median_ms, distribution=stats.compress(samples), stop_reason="converged",
                      warmup_iterations=20, warmup_s=0.2, measured_s=1.5, config_hash="c0ffee", identity={},
                      fingerprint=fp, device_class=fp["device_class"], device_state=state, layers=layers,
                      group="vision", verdict=Verdict(
                          status=status, metric="median", tolerance=0.05, baseline_value=10.01,
                          current_value=median_ms, change=median_ms / 10.01 - 1, ci=(0.199, 0.206), confidence=0.99,
                          message="tests/test_models.py::test_vit_latency: median latency regressed +20.3% "
                                  "(10.012 ms -> 12.044 ms, 99% CI +19.9%..+20.6%, tolerance 5.0%); GPU state vs "
                                  "the baseline: power_throttle (new)\n  layers that added the most time:\n"
                                  "    gemm_0: 4.000 ms -> 6.500 ms (+2.500 ms, +62.5%)",
                          flags=("power_throttle (new)",)))

    timeline = tuple((i * 0.025, 1980.0 - 3.5 * i, 2619.0, 560.0 + 2.4 * i, 58.0 + i / 8) for i in range(60))
    base = result(10.01, ({"name": "gemm_0", "ms": 4.0}, {"name": "attn/Softmax", "ms": 1.0},
                          {"name": "conv_1", "ms": 2.0}), (), "pass")
    cur = result(12.04, ({"name": "gemm_0", "ms": 6.5}, {"name": "attn/Softmax", "ms": 1.01},
                         {"name": "conv_1", "ms": 1.5}), timeline, "regression")
    entry = BaselineEntry.from_result(base, timestamp="2026-11-20T09:12:44+00:00", git_commit="4fcd6c3474aa")
    page = render([cur], {cur.id: entry}, generated="synthetic data", baseline_mode="compare")
    out = work / "gpu.html"
    out.write_text(page, encoding="utf-8")
    screenshot(out, IMG / "html-report-gpu-synthetic.png", 1280, 1320, profile)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="trtperf-shots-"))
    work.mkdir(parents=True, exist_ok=True)
    profile = work / "chromium-profile"
    suite = work / "suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_models.py").write_text(SUITE)
    IMG.mkdir(exist_ok=True)

    print(pytest_run(suite, "--trt-baseline=update", env={"DECODER": "1.3"}))
    (real_baseline,) = (suite / ".trtperf").glob("*.json")
    summary = work / "summary.md"
    summary.write_text("")
    out = pytest_run(suite, f"--trt-report={work / 'report.html'}", f"--trt-json={work / 'r.json'}",
                     env={"ENCODER": "1.35", "GITHUB_STEP_SUMMARY": str(summary)})
    print(out)
    job_summary_page(summary.read_text(), work / "summary.html")
    screenshot(work / "summary.html", IMG / "job-summary.png", 1280, 520, profile)
    screenshot(work / "report.html", IMG / "html-report.png", 1280, 1500, profile)
    history(work, real_baseline, profile)
    gpu_synthetic(work, profile)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
