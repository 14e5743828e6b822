"""Does a verdict's reported bar (``fails_above``) mean what it says, the way
users meet it? (issue 26 point 1)

A host test (sha256 over a buffer whose size sets the work) gets a baseline of
N ``update`` runs, each a fresh pytest process; then fresh compare processes
run it slowed by a known factor, a multiple of the bar the quiet no-change
run reported. Each row: how often the compare failed, and the bars the
verdicts reported. The claim under test: slowdowns well below the bar pass,
well above it fail, and N = 4 runs report about the bar the 1-run verdict
projected ("3 more update runs would bring it to about 7%").

    PYTHONPATH=$PWD python bench/could_catch.py            # about 3 minutes on 2 cores
    PYTHONPATH=$PWD python bench/could_catch.py --quick    # fewer trials (a smoke run)

Writes a text table to ``$OUT/could_catch.txt`` when ``OUT`` is set, else to
stdout. Needs only this package and pytest (no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = '''
import hashlib, os

DATA = b"\\x5a" * 4_000_000
N = int(200_000 * float(os.environ.get("SLOW", "1")))


def test_hash(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(DATA[:N]).digest())
'''
ARGS = ["-p", "no:cacheprovider", "-p", "no:benchmark", "-q", "--trt-warmup-ms=50", "--trt-min-time=0.5",
        "--trt-max-time=2", "--trt-no-remeasure"]
#: Off unless --watch-host: on a shared machine every window would be unreliable (not written, not judged).
NO_WATCH = ["--trt-ignore-host-load"]


def run(project: Path, *args: str, slow: float = 1.0, watch: bool = False) -> dict:
    env = {**os.environ, "SLOW": repr(slow), "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    out = project / "out.json"
    subprocess.run([sys.executable, "-m", "pytest", *ARGS, *([] if watch else NO_WATCH), *args, f"--trt-json={out}"], cwd=project, env=env,
                   capture_output=True, text=True, timeout=300)
    (res,) = json.loads(out.read_text())["results"]
    return res["verdict"]


def pct(x: object) -> str:
    return f"{x:+.1%}" if isinstance(x, float) else "-"


def study(runs: int, trials: int, multiples: list[float], watch: bool) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "test_perf.py").write_text(TEST)
        for _ in range(runs):
            run(project, "--trt-baseline=update", watch=watch)
        quiet = run(project, watch=watch)
        bar = quiet.get("fails_above")
        if not isinstance(bar, float):
            return [f"baseline runs {runs}: no-change run {quiet['status']}: {quiet.get('message', '')}"]
        later = quiet.get("fails_above_later") or {}
        lines.append(f"baseline runs {runs}: no-change run read {pct(quiet['change'])}, status {quiet['status']}, "
                     f"fails_above {bar:.1%}; projected with {later.get('more_runs')} more runs: "
                     f"{pct(later.get('fails_above'))}")
        lines.append("| slowdown | x bar | failed | bars reported |")
        lines.append("| --- | --- | --- | --- |")
        for m in multiples:
            slow = 1.0 + m * bar
            verdicts = [run(project, slow=slow, watch=watch) for _ in range(trials)]
            failed = sum(v["status"] == "regression" for v in verdicts)
            bars = sorted(v["fails_above"] for v in verdicts if v.get("fails_above") is not None)
            shown = f"{bars[0]:.1%}..{bars[-1]:.1%}" if bars else "-"
            lines.append(f"| +{slow - 1:.1%} | {m:g} | {failed}/{trials} | {shown} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 trials per slowdown")
    p.add_argument("--watch-host", action="store_true", help="keep the host-load watch on (a quiet machine)")
    a = p.parse_args()
    trials = 2 if a.quick else 5
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    out = [f"# could_catch.py, {started}, load average {os.getloadavg()[0]:.2f} at start, "
           f"{os.cpu_count()} CPUs, trials {trials}, host watch {'on' if a.watch_host else 'off'}"]
    for runs in (1, 4):
        out += study(runs, trials, [0.5, 2.0] if a.quick else [0.5, 0.8, 1.3, 2.0], a.watch_host)
        out.append("")
    out.append(f"load average {os.getloadavg()[0]:.2f} at the end")
    text = "\n".join(out) + "\n"
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "could_catch.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
