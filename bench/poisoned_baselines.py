"""Gate quality against edited baselines (issue 25): what the verdicts are,
run the way users meet them (a baseline from one process, candidates from
fresh processes later), for a clean baseline and for the audit's edits.

For each baseline variant (clean, history poisoned 0.3x/4x, whole entry 2x
slower, config_hash edited) it runs ``--runs`` fresh pytest processes of a
host workload unchanged and ``--runs`` made 3x slower, and counts verdicts.
Expected: clean: unchanged pass (an occasional unreliable under load is
honest), 3x regression; poisoned history: never pass for 3x (regression);
2x-slower entry: improved with decided_by suspect_baseline; config_hash:
incomparable with decided_by suspect_baseline.

    python bench/poisoned_baselines.py --runs 5        # writes to $OUT or stdout

CPU only; about 2 s per run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
TEST = '''
import hashlib, os

DATA = memoryview(b"\\x5a" * 8_000_000)
N = int(300_000 * float(os.environ.get("TRTPERF_TEST_SCALE", "1")))


def test_hash(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(DATA[:N]).digest())
'''
FAST = ["--trt-warmup-ms=50", "--trt-min-time=0.3", "--trt-max-time=2", "--trt-ignore-host-load",
        "-p", "no:cacheprovider", "-q"]
RID = "test_perf.py::test_hash"
METRICS = ("median", "mean", "p90", "p95", "p99")


def _pytest(cwd: Path, scale: float, *args: str) -> dict[str, Any]:
    env = dict(os.environ, TRTPERF_TEST_SCALE=str(scale), PYTHONPATH=str(ROOT))
    env.pop("GITHUB_STEP_SUMMARY", None)
    out = cwd / "out.json"
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", *FAST, f"--trt-json={out}", *args], cwd=cwd, env=env,
                   capture_output=True, timeout=300, check=False)
    doc = json.loads(out.read_text()) if out.exists() else {"results": []}
    return doc["results"][0]["verdict"] if doc["results"] else {"status": "no result"}


def poison_history(e: dict[str, Any]) -> None:
    last = e["history"][-1]
    rows = []
    for i in range(9):
        f = 0.3 if i % 2 == 0 else 4.0
        row = dict(last, timestamp=f"2026-01-0{i + 1}T00:00:00+00:00")
        row.update({k: last[k] * f for k in METRICS})
        row["throughput"] = last["throughput"] / f
        rows.append(row)
    e["history"] = [*rows, last]


def slower_entry(e: dict[str, Any]) -> None:
    lat = e["latency_ms"]
    for k in (*METRICS, "min", "max", "stdev"):
        lat[k] *= 2
    lat["median_ci"] = [x * 2 for x in lat["median_ci"]]
    e["distribution"]["quantiles_ms"] = [q * 2 for q in e["distribution"]["quantiles_ms"]]
    e["throughput"] /= 2
    for row in e["history"]:
        row.update({k: row[k] * 2 for k in METRICS})
        row["throughput"] /= 2


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "clean": lambda e: None,
    "history 0.3x/4x": poison_history,
    "entry 2x slower": slower_entry,
    "config_hash edited": lambda e: e.__setitem__("config_hash", "0123456789abcdef"),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    lines = [f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "test_perf.py").write_text(TEST)
        _pytest(work, 1.0, "--trt-baseline=update")
        (clean,) = (work / ".trtperf").glob("*.json")
        pristine = clean.read_text()
        for name, edit in VARIANTS.items():
            for scale in (1.0, 3.0):
                counts: Counter[str] = Counter()
                for _ in range(args.runs):
                    doc = json.loads(pristine)
                    edit(doc["results"][RID])
                    clean.write_text(json.dumps(doc, indent=1))
                    v = _pytest(work, scale)
                    counts[f"{v['status']}" + (f"/{v['decided_by']}" if v.get("decided_by") in (
                        "too_wide", "suspect_baseline") else "")] += 1
                lines.append(f"{name:20s} x{scale:g}: {dict(sorted(counts.items()))}")
        shutil.rmtree(work / ".trtperf", ignore_errors=True)
    lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
    text = "\n".join(lines) + "\n"
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "poisoned_baselines.txt").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
