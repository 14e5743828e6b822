"""HTML report at scale: time and size of ``--trt-report`` for many results.

Two measurements (issue 16 item 7: under 10 s extra and under 10 MB for 2000
results, with matplotlib installed):

* ``render``: ``report.html.write_report`` on N synthetic results shaped like
  real ones (101-point quantiles, a baseline entry for most, a GPU timeline
  and a layer profile for a quarter, a few regressions, improvements and
  incomparable baselines, the rest passing). Prints seconds, bytes, plots.
* ``session``: a real pytest session of N host-timed measurements (one test
  with N named ``trt_bench.measure`` calls, ``--trt-iterations``), run twice
  in fresh processes, without and with ``--trt-report``; the difference of
  the two wall times is what the report adds to a session.

Usage (from the repository root)::

    PYTHONPATH=$PWD python bench/html_scale.py render --n 2000
    PYTHONPATH=$PWD python bench/html_scale.py session --n 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry  # noqa: E402
from pytest_trtperf.core.fingerprint import host_fingerprint  # noqa: E402
from pytest_trtperf.report import html as report_html  # noqa: E402
from pytest_trtperf.core.results import DeviceState, Result, Verdict  # noqa: E402

TIMELINE = tuple((i * 0.05, 1980.0 - i * 3, 2619.0, 600.0 + i, 60.0 + i / 10) for i in range(60))


def synthetic(n: int, seed: int = 0) -> tuple[list[Result], dict[str, BaselineEntry]]:
    rng = np.random.default_rng(seed)
    fp = host_fingerprint().to_dict()
    results, entries = [], {}
    for i in range(n):
        status = "regression" if i % 200 == 0 else "improved" if i % 250 == 1 else \
            "incomparable" if i % 333 == 2 else "missing" if i % 100 == 3 else "pass"
        base_ms = float(rng.uniform(0.2, 30.0))
        factor = {"regression": 1.2, "improved": 0.8}.get(status, 1.0 + float(rng.normal(0, 0.005)))
        gpu = i % 4 == 0
        layers = tuple({"name": f"layer_{k}", "ms": base_ms / 20 * factor} for k in range(20)) if gpu else ()
        cur = rng.normal(base_ms * factor, base_ms / 100, 400) / 1000.0
        base = rng.normal(base_ms, base_ms / 100, 400) / 1000.0
        ds = DeviceState(kind="cuda", samples=60, sm_clock_mhz_median=1980.0, timeline=TIMELINE) if gpu else DeviceState()
        rid = f"tests/perf/test_models.py::test_model[{i}]::bs{1 + i % 64}"
        verdict = Verdict(status=status, metric="median", tolerance=0.05,
                          baseline_value=None if status == "missing" else float(np.median(base)) * 1000,
                          current_value=float(np.median(cur)) * 1000,
                          change=None if status == "missing" else factor - 1,
                          ci=None if status == "missing" else (factor - 1.01, factor - 0.99),
                          message=f"{rid}: median latency {status}")
        r = Result(id=rid, nodeid=rid.rsplit("::", 1)[0], name=f"bs{1 + i % 64}", kind="tensorrt" if gpu else "host",
                   mode="latency", latency=stats.summarize(cur), throughput=1.0 / float(cur.mean()),
                   distribution=stats.compress(cur), stop_reason="converged", warmup_iterations=10, warmup_s=0.2,
                   measured_s=1.0, config_hash="h", identity={}, fingerprint=fp, device_class="gpu-x",
                   device_state=ds, layers=layers, verdict=verdict)
        results.append(r)
        if status != "missing":
            b = Result(**{**r.__dict__, "latency": stats.summarize(base), "distribution": stats.compress(base)})
            entries[rid] = BaselineEntry.from_result(b, timestamp="2026-11-20T00:00:00+00:00", git_commit="ab" * 20)
    return results, entries


def cmd_render(args: argparse.Namespace) -> None:
    results, entries = synthetic(args.n)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "report.html"
        t0 = time.perf_counter()
        line = report_html.write_report(out, results, entries, generated="bench", baseline_mode="compare")
        seconds = time.perf_counter() - t0
        raw = out.read_text(encoding="utf-8")
    plots = raw.count("data:image/svg+xml")
    print(f"render: {args.n} results, {seconds:.2f} s, {len(raw.encode()) / 1e6:.2f} MB, {plots} plots, "
          f"{raw.count('<section')} sections ({line.split(':')[0]})")


SESSION_TEST = '''
import pytest

def test_many(trt_bench):
    for i in range({n}):
        trt_bench.measure(lambda: sum(range(50)), name=f"m{{i}}")
'''


def cmd_session(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "test_many.py").write_text(SESSION_TEST.format(n=args.n))
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--trt-baseline=off",
                "--trt-iterations=20", "--trt-warmup-ms=0", "test_many.py"]
        times = {}
        for label, extra in (("without report", []), ("with --trt-report", ["--trt-report=r.html"])):
            t0 = time.perf_counter()
            proc = subprocess.run(base + extra, cwd=d, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            times[label] = time.perf_counter() - t0
            tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
            print(f"session {label}: {times[label]:.1f} s (exit {proc.returncode}; {tail})")
        size = Path(d, "r.html").stat().st_size
        print(f"session: {args.n} results, report adds {times['with --trt-report'] - times['without report']:.1f} s, "
              f"{size / 1e6:.2f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn in (("render", cmd_render), ("session", cmd_session)):
        s = sub.add_parser(name)
        s.add_argument("--n", type=int, default=2000)
        s.set_defaults(func=fn)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
