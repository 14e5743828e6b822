"""Side by side (``--trt-ab``) against the baseline file, on the host, the way users meet both.

A temporary git repository holds four host workloads of 0.1-0.8 ms a call
(a pure-Python loop, sha256, ``np.sort``, ``json.dumps`` of small dicts; the
same kinds as ``host_gate_study.py``) whose amount of work is ``scale.py``'s
``SCALE``, committed as 1.0: by default each call repeats one unit of work
``round(20 * SCALE)`` times, so the true slowdown is SCALE (``--work size``:
more data per call, the runs before 2026-12-06 10:20). Per
condition (quiet; loaded by CPU burner processes):

1. one pytest process records the baselines at that commit (``--trt-baseline=update``);
2. then, in shuffled order, fresh pytest processes with the working tree's
   ``SCALE`` at 1.00 (no change), 1.05, 1.10 or 1.20 (a real slowdown: more
   of the same work in the code, the committed reference unchanged), each
   case run twice: once gated on the baseline file alone (``pytest --trt-ab=off``;
   by default a suspect verdict would be confirmed side by side) and once
   side by side (``pytest --trt-ab=HEAD``), both with the plugin's defaults.

Every verdict is kept (``--trt-json``), with the load average around each
process and the session's wall time. ``summary`` prints per condition and
gate the share of verdicts that failed, that passed as ``unreliable`` and the
cost (session seconds, measured seconds per result).

Usage (repository root, the project's virtualenv)::

    python bench/side_by_side.py run --out bench/data/side_by_side.json            # ~25 min on 2 cores
    python bench/side_by_side.py run --out /tmp/sbs.json --dry                      # one of each, short
    python bench/side_by_side.py summary bench/data/side_by_side.json
    python bench/side_by_side.py env --python-a OLD/bin/python --python-b NEW/bin/python --out env.json

Writes to ``$OUT/side_by_side.json`` when ``--out`` is not given and ``$OUT`` is set.
Nothing here needs a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

TESTS = textwrap.dedent('''
    import hashlib, json
    import numpy as np
    from scale import SCALE

    DATA = memoryview(b"\\x5a" * 2_000_000)
    LOOP = int(8000 * SCALE)
    NBYTES = int(600_000 * SCALE)
    SORT = np.random.default_rng(0).random(int(10_000 * SCALE))
    ITEMS = [{"id": i, "name": f"item{i}", "score": i * 0.5} for i in range(int(400 * SCALE))]


    def loop():
        s = 0
        for i in range(LOOP):
            s += i * i
        return s


    def test_python_loop(trt_bench):
        trt_bench.measure(loop)


    def test_sha256(trt_bench):
        trt_bench.measure(lambda: hashlib.sha256(DATA[:NBYTES]).digest())


    def test_numpy_sort(trt_bench):
        trt_bench.measure(lambda: np.sort(SORT))


    def test_json_dumps(trt_bench):
        trt_bench.measure(lambda: json.dumps(ITEMS))
''')

#: ``--work reps`` (the default since 2026-12-06 run 5): each call repeats one
#: fixed unit of work ``round(20 * SCALE)`` times, so the true cost ratio is
#: SCALE itself (22/20 = 1.10 exactly, up to the call's fixed overhead of well
#: under 1%). ``--work size`` (runs 1-4) grew the data instead, and the cost
#: grew less than SCALE: +10% of data read as +6.5..+9.3% (``np.sort``'s and
#: ``json.dumps``' fixed costs), so a "missed +10%" there was a smaller change.
TESTS_REPS = textwrap.dedent('''
    import hashlib, json
    import numpy as np
    from scale import SCALE

    REPS = round(20 * SCALE)
    DATA = memoryview(b"\\x5a" * 30_000)
    SORT = np.random.default_rng(0).random(500)
    ITEMS = [{"id": i, "name": f"item{i}", "score": i * 0.5} for i in range(20)]


    def loop():
        s = 0
        for i in range(400):
            s += i * i
        return s


    def repeat(unit):
        def call():
            for _ in range(REPS):
                unit()
        return call


    def test_python_loop(trt_bench):
        trt_bench.measure(repeat(loop))


    def test_sha256(trt_bench):
        trt_bench.measure(repeat(lambda: hashlib.sha256(DATA).digest()))


    def test_numpy_sort(trt_bench):
        trt_bench.measure(repeat(lambda: np.sort(SORT)))


    def test_json_dumps(trt_bench):
        trt_bench.measure(repeat(lambda: json.dumps(ITEMS)))
''')

CHANGES = (1.0, 1.05, 1.10, 1.20)

#: ``env``: numpy calls whose speed may move with numpy's version (its sort,
#: unique and median kernels, its bundled OpenBLAS for the matrix product).
ENV_TESTS = textwrap.dedent('''
    import numpy as np

    RNG = np.random.default_rng(0)
    FLOATS = RNG.random(20_000)
    INTS = RNG.integers(0, 1000, 20_000)
    MAT = RNG.random((96, 96))


    def test_sort(trt_bench):
        trt_bench.measure(lambda: np.sort(FLOATS))


    def test_unique(trt_bench):
        trt_bench.measure(lambda: np.unique(INTS))


    def test_median(trt_bench):
        trt_bench.measure(lambda: np.median(FLOATS))


    def test_matmul(trt_bench):
        trt_bench.measure(lambda: MAT @ MAT)
''')


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@trtperf.invalid", "-c",
                           "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(where: Path, tests: str = TESTS_REPS) -> Path:
    repo = where / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "test_host.py").write_text(tests)
    (repo / "scale.py").write_text("SCALE = 1.0\n")
    (repo / ".gitignore").write_text(".trtperf/\n*.json\n__pycache__/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "reference")
    return repo


def loadavg() -> float:
    return os.getloadavg()[0]


def pytest_run(repo: Path, args: list[str], out: Path, extra: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_ADDOPTS", None)
    before = loadavg()
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "-p", "no:benchmark", *args, *extra, f"--trt-json={out}"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    results = json.loads(out.read_text())["results"] if out.exists() else []
    verdicts = [{"id": r["id"], "status": r["verdict"]["status"], "change": r["verdict"].get("change"),
                 "decided_by": r["verdict"].get("decided_by"), "measured_s": r.get("measured_s"),
                 "ratio": (r.get("relative") or {}).get("ratio"),
                 "message": r["verdict"]["message"][:300]} for r in results]
    return {"returncode": done.returncode, "wall_s": wall, "load_before": before, "load_after": loadavg(),
            "verdicts": verdicts, "tail": (done.stdout + done.stderr)[-1500:] if done.returncode not in (0, 1)
            else ""}


def burners(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def condition(name: str, repo: Path, *, burn: int, runs: dict[float, int], extra: list[str],
              rng: random.Random, save: Any = None) -> dict[str, Any]:
    procs = burners(burn)
    try:
        if burn:
            time.sleep(20)  # let the load average reflect the burners
        (repo / "scale.py").write_text("SCALE = 1.0\n")
        update = pytest_run(repo, ["--trt-baseline=update"], repo / "update.json", extra)
        cases = [(scale, gate) for scale, n in runs.items() for _ in range(n) for gate in ("baseline", "side")]
        rng.shuffle(cases)
        out: list[dict[str, Any]] = []
        cond = {"name": name, "burners": burn, "update": update, "runs": out}
        for i, (scale, gate) in enumerate(cases):
            (repo / "scale.py").write_text(f"SCALE = {scale}\n")
            # The baseline file alone: --trt-ab=off (by default a suspect verdict is confirmed side by side).
            args = ["--trt-ab=HEAD"] if gate == "side" else ["--trt-ab=off"]
            run = pytest_run(repo, args, repo / f"run{i}.json", extra)
            run.update(scale=scale, gate=gate)
            out.append(run)
            print(f"{name} {i + 1}/{len(cases)} scale {scale} {gate}: "
                  f"{[v['status'] for v in run['verdicts']]} load {run['load_before']:.1f} "
                  f"wall {run['wall_s']:.1f}s", flush=True)
            if save is not None:
                save(cond)
        (repo / "scale.py").write_text("SCALE = 1.0\n")
        return cond
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    extra = ["--trt-min-time=0.3", "--trt-max-time=1", "--trt-warmup-ms=50"] if args.dry else []
    if args.dry:
        runs = {c: 1 for c in CHANGES}
    else:
        runs = {1.0: args.nochange, **{float(x): args.change_runs for x in args.scales.split(",") if x}}
    doc: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "machine": f"{platform.node()} {os.cpu_count()} cores {platform.processor()}",
                           "python": platform.python_version(), "command": " ".join(sys.argv),
                           "conditions": []}
    out_path = Path(args.out) if args.out else (Path(os.environ["OUT"]) / "side_by_side.json"
                                                 if os.environ.get("OUT") else None)
    with tempfile.TemporaryDirectory(prefix="trtperf-sbs-bench-") as tmp:
        repo = make_repo(Path(tmp), TESTS_REPS if args.work == "reps" else TESTS)
        for name in args.conditions.split(","):
            done = list(doc["conditions"])

            def save(cond: dict[str, Any], done: list[Any] = done) -> None:
                if out_path is not None:
                    out_path.write_text(json.dumps({**doc, "conditions": [*done, cond]}, indent=1))

            doc["conditions"].append(condition(name, repo, burn=args.burners if name == "loaded" else 0, runs=runs,
                                               extra=extra, rng=rng, save=save))
            save(doc["conditions"][-1])
    if out_path is None:
        print(json.dumps(doc, indent=1))
    summary_of(doc)


def summary_of(doc: dict[str, Any]) -> None:
    print(f"{doc['date']} {doc['machine']} python {doc['python']}")
    for cond in doc["conditions"]:
        loads = [r["load_before"] for r in cond["runs"]]
        print(f"\n{cond['name']} (burners {cond['burners']}, load {min(loads):.1f}..{max(loads):.1f})")
        print("| gate | scale | verdicts | failed | unreliable | other | median ratio | session s | measured s/result |")
        print("|---|---|---|---|---|---|---|---|---|")
        for gate in ("baseline", "side"):
            for scale in CHANGES:
                rows = [r for r in cond["runs"] if r["gate"] == gate and r["scale"] == scale]
                vs = [v for r in rows for v in r["verdicts"]]
                if not vs:
                    continue
                failed = sum(v["status"] == "regression" for v in vs)
                unrel = sum(v["status"] == "unreliable" for v in vs)
                other = sum(v["status"] not in ("regression", "unreliable", "pass", "improved") for v in vs)
                ratios = sorted(v["ratio"] if v["ratio"] is not None else 1 + (v["change"] or 0) for v in vs)
                walls = sorted(r["wall_s"] for r in rows)
                meas = sorted(v["measured_s"] or 0 for v in vs)
                print(f"| {gate} | {scale:.2f} | {len(vs)} | {failed} ({failed / len(vs):.0%}) | {unrel} | {other} | "
                      f"{ratios[len(ratios) // 2]:.3f} | {walls[len(walls) // 2]:.1f} | {meas[len(meas) // 2]:.2f} |")


def env_case(args: argparse.Namespace) -> None:
    """``--trt-ab-python``: this environment (``--python-b``) judged against
    another (``--python-a``) that differs in one dependency's version; the
    same comparison of ``--python-b`` against itself is the control."""
    out_path = Path(args.out) if args.out else None
    doc: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "machine": f"{platform.node()} {os.cpu_count()} cores", "command": " ".join(sys.argv),
                           "python_a": args.python_a, "python_b": args.python_b, "runs": []}
    with tempfile.TemporaryDirectory(prefix="trtperf-sbs-env-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (repo / "test_numpy.py").write_text(ENV_TESTS)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PYTEST_ADDOPTS", None)
        for i in range(args.runs):
            for reference in (args.python_a, args.python_b):
                out = repo / f"env{i}.json"
                before = loadavg()
                t0 = time.perf_counter()
                done = subprocess.run([args.python_b, "-m", "pytest", "-q", "-p", "pytest_trtperf.plugin.hooks", "-p",
                                       "no:cacheprovider", f"--trt-ab-python={reference}", f"--trt-json={out}"],
                                      cwd=repo, env=env, capture_output=True, text=True, timeout=900)
                results = json.loads(out.read_text())["results"] if out.exists() else []
                run = {"reference": reference, "returncode": done.returncode, "load_before": before,
                       "wall_s": time.perf_counter() - t0,
                       "tail": (done.stdout + done.stderr)[-1500:] if done.returncode not in (0, 1) else "",
                       "verdicts": [{"id": r["id"], "status": r["verdict"]["status"],
                                     "ratio": (r.get("relative") or {}).get("ratio"),
                                     "ci": (r.get("relative") or {}).get("ci"),
                                     "packages": ((r.get("relative") or {}).get("reference") or {}).get("packages"),
                                     "message": r["verdict"]["message"][:300]} for r in results]}
                doc["runs"].append(run)
                print(f"{i} reference {reference}: "
                      f"{[(v['id'].split('::')[-1], v['status'], round(v['ratio'] or 0, 3)) for v in run['verdicts']]}"
                      f" load {before:.1f}", flush=True)
                if out_path is not None:
                    out_path.write_text(json.dumps(doc, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out")
    r.add_argument("--conditions", default="quiet,loaded")
    r.add_argument("--burners", type=int, default=2, help="CPU burner processes in the loaded condition")
    r.add_argument("--nochange", type=int, default=10, help="processes per gate at no change (x4 verdicts)")
    r.add_argument("--change-runs", type=int, default=5, help="processes per gate at each slowdown (x4 verdicts)")
    r.add_argument("--scales", default="1.05,1.10,1.20", help="the slowdowns measured (SCALE values), comma-separated")
    r.add_argument("--work", choices=("reps", "size"), default="reps",
                   help="how SCALE grows the work: repeats of one unit (true ratio = SCALE) or more data (runs 1-4)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--dry", action="store_true", help="one process per case, short windows")
    s = sub.add_parser("summary")
    s.add_argument("path")
    e = sub.add_parser("env", help="--trt-ab-python: two virtualenvs that differ in one dependency's version")
    e.add_argument("--python-a", required=True, help="the reference environment's interpreter")
    e.add_argument("--python-b", required=True, help="the environment judged (runs pytest)")
    e.add_argument("--runs", type=int, default=3)
    e.add_argument("--out")
    a = p.parse_args()
    if a.cmd == "run":
        run(a)
    elif a.cmd == "env":
        env_case(a)
    else:
        summary_of(json.loads(Path(a.path).read_text()))


if __name__ == "__main__":
    main()
