"""What the plugin costs a pytest run that never measures (issue 13).

A one-test project (``def test_one(): assert 1``) is run as a whole process
with the plugin loaded (A) and with ``-p no:trtperf`` (B), alternately
(A B A B ...), so machine drift hits both sides alike. Each run's wall time and
CPU time (user + sys, from ``os.wait4``) is recorded; the pairwise ratio A/B
is summarised by its median. Target: within 10% (ratio <= 1.10).

    python bench/startup.py --pairs 40

Run it on a quiet machine and note the load average it prints. It measures
twice: with Python's bytecode cache (``__pycache__``, what users have) and
with ``PYTHONDONTWRITEBYTECODE=1`` (every module compiled at every start, as
in some sandboxes and containers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def pairs(proj: Path, env: dict[str, str], n: int, warmup: int) -> tuple[list[float], ...]:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    with_plugin, without = base, [*base, "-p", "no:trtperf"]
    for _ in range(warmup):
        run_once(with_plugin, proj, env)
        run_once(without, proj, env)
    a_wall, a_cpu, b_wall, b_cpu, r_wall, r_cpu = [], [], [], [], [], []
    for i in range(n):
        order = (with_plugin, without) if i % 2 == 0 else (without, with_plugin)
        got = {id(cmd): run_once(cmd, proj, env) for cmd in order}
        (aw, ac), (bw, bc) = got[id(with_plugin)], got[id(without)]
        a_wall.append(aw), a_cpu.append(ac), b_wall.append(bw), b_cpu.append(bc)
        r_wall.append(aw / bw), r_cpu.append(ac / bc)
    return a_wall, a_cpu, b_wall, b_cpu, r_wall, r_cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args(argv)
    med = statistics.median
    load = os.getloadavg()
    print(f"{args.pairs} pairs per mode, load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"python {sys.version.split()[0]}")
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for label, env in (("bytecode cache on", cached), ("PYTHONDONTWRITEBYTECODE=1", {**cached,
                                                                                      "PYTHONDONTWRITEBYTECODE": "1"})):
        if "PYTHONDONTWRITEBYTECODE" in env:
            # No cached bytecode of the plugin at all (a fresh install where none may be
            # written): every start compiles its modules. The next cached run rewrites them.
            import shutil

            import pytest_trtperf

            for cache in Path(pytest_trtperf.__file__).parent.rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            proj = Path(tmp)
            (proj / "test_one.py").write_text("def test_one():\n    assert 1\n")
            (proj / "pytest.ini").write_text("[pytest]\n")
            a_wall, a_cpu, b_wall, b_cpu, r_wall, r_cpu = pairs(proj, env, args.pairs, args.warmup)
        print(f"[{label}] with plugin: wall {med(a_wall) * 1e3:.0f} ms, cpu {med(a_cpu) * 1e3:.0f} ms; "
              f"-p no:trtperf: wall {med(b_wall) * 1e3:.0f} ms, cpu {med(b_cpu) * 1e3:.0f} ms; "
              f"ratio A/B (median of pairs): wall {med(r_wall):.3f}, cpu {med(r_cpu):.3f}; target <= 1.10")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
