"""Adversarial loops for the baseline store (issue 16 items 6 and 8): the
slow versions of tests/test_interrupted_writes.py, with real processes.

* ``kill``: ``pytest --trt-baseline=update`` on a small suite, hit by SIGKILL,
  SIGTERM or SIGINT at a random moment (half of the trials inside the write
  window, found through the test hook ``TRTPERF_TEST_WRITE_PAUSE``). After
  each: the baseline file must parse and hold every entry (old or new, never
  half); SIGINT must exit 2 without a traceback; a following ``update`` must
  leave no temporary file behind.
* ``race``: several ``update`` sessions at once, each measuring other tests
  (``-k``), repeated; no entry may be lost.

Usage (from the repository root)::

    PYTHONPATH=$PWD python bench/interrupts.py kill --trials 60
    PYTHONPATH=$PWD python bench/interrupts.py race --rounds 10 --ways 6
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.files import PAUSE_ENV  # noqa: E402

TESTS = 6
SUITE = "\n".join(f"def test_{i}(trt_bench):\n    trt_bench.measure(lambda: sum(range({200 + 50 * i})))\n"
                  for i in range(TESTS))
ARGS = ["-p", "no:cacheprovider", "-q", "--color=no", "--trt-warmup-ms=5", "--trt-iterations=200"]


def pytest_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *ARGS, *extra]


def env(pause: float | None = None) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in (PAUSE_ENV, "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    e["PYTHONPATH"] = str(ROOT)
    if pause is not None:
        e[PAUSE_ENV] = str(pause)
    return e


def entries(d: Path) -> set[str]:
    out: set[str] = set()
    for p in baseline.BaselineStore(d).files():
        out |= set(baseline.read_file(p).entries)
    return out


def temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def cmd_kill(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    counts: dict[str, object] = {"trials": 0, "corrupt or lost": 0, "temp left after kill": 0,
                                 "temp left after next update": 0, "sigint in window: exit 2, no traceback": 0,
                                 "sigint in window: other": 0, "sigint at random: exit codes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_suite.py").write_text(SUITE)
        d = root / ".trtperf"
        t0 = time.monotonic()
        assert subprocess.run(pytest_cmd("--trt-baseline=update"), cwd=root, env=env(), capture_output=True).returncode == 0
        t_session = time.monotonic() - t0
        want = entries(d)
        for trial in range(args.trials):
            sig = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[trial % 3]
            in_window = trial % 2 == 1
            proc = subprocess.Popen(pytest_cmd("--trt-baseline=update"), cwd=root, env=env(0.5 if in_window else None),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if in_window:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if "in the write window" in line:
                        break
            else:
                time.sleep(rng.uniform(0.0, t_session))
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=120)
            counts["trials"] += 1  # type: ignore[operator]
            try:
                ok = entries(d) == want
            except baseline.BaselineFileError:
                ok = False
            counts["corrupt or lost"] += not ok  # type: ignore[operator]
            counts["temp left after kill"] += any(n.endswith(".tmp") for n in temps(d))  # type: ignore[operator]
            if sig == signal.SIGINT and in_window:
                clean = proc.returncode == 2 and "Traceback" not in (out or "")
                counts["sigint in window: exit 2, no traceback" if clean else "sigint in window: other"] += 1  # type: ignore[operator]
                if not clean and args.verbose:
                    print(f"SIGINT in the write window: exit {proc.returncode}\n{out[-3000:]}", file=sys.stderr)
            elif sig == signal.SIGINT:  # pytest's own Ctrl-C handling, wherever it lands
                codes: dict[str, int] = counts["sigint at random: exit codes"]  # type: ignore[assignment]
                codes[str(proc.returncode)] = codes.get(str(proc.returncode), 0) + 1
            subprocess.run(pytest_cmd("--trt-baseline=update"), cwd=root, env=env(), capture_output=True, timeout=120)
            counts["temp left after next update"] += bool(temps(d))  # type: ignore[operator]
    print(json.dumps({"session_s": round(t_session, 2), **counts}))


def cmd_race(args: argparse.Namespace) -> None:
    lost = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_suite.py").write_text(SUITE)
        d = root / ".trtperf"
        for _ in range(args.rounds):
            for p in d.glob("*.json") if d.is_dir() else []:
                p.unlink()
            procs = [subprocess.Popen(pytest_cmd("--trt-baseline=update", "-k", " or ".join(
                f"test_{i}" for i in range(TESTS) if i % args.ways == w)), cwd=root, env=env(),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for w in range(args.ways)]
            rcs = [p.wait(300) for p in procs]
            got = entries(d)
            lost += TESTS - len(got)
            assert all(rc == 0 for rc in rcs), rcs
    print(json.dumps({"rounds": args.rounds, "ways": args.ways, "entries_lost": lost}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kill")
    k.add_argument("--trials", type=int, default=60)
    k.add_argument("--seed", type=int, default=16)
    k.add_argument("--verbose", action="store_true", help="print the output of SIGINT runs that failed")
    k.set_defaults(func=cmd_kill)
    r = sub.add_parser("race")
    r.add_argument("--rounds", type=int, default=10)
    r.add_argument("--ways", type=int, default=6)
    r.set_defaults(func=cmd_race)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
