"""Host gate study: does the gate tell a real slowdown from a fresh process?

What a CI job sees, on the machine it runs on: one pytest process records the
baselines (``--trt-baseline=update``, as a main-branch run does); later, fresh
pytest processes compare against them (as pull-request runs do), some with the
code unchanged and some with the work made 10% and 20% larger. Every process is
the real plugin with its defaults (``--trt-json`` keeps each verdict and
sample); the compare processes run in a shuffled order, so the machine's other
load (recorded: load average before and after each process, and each window's
host state) falls on every case alike.

Four host workloads of 0.3-0.8 ms a call: a pure-Python loop, sha256 of 600 kB,
``np.sort`` of 10k floats, ``json.dumps`` of 400 small dicts. The slowdown is
more of the same work (loop terms, bytes, elements, items).

``evaluate`` prints, per workload and case, the verdicts the plugin gave, and
re-judges the recorded results offline with the real ``gate.judge`` for more
pairs: every no-change compare process as the baseline of every other (and of
every slowed one), under the default rule, the rule without the between-run
term (the gate before issue 11) and pytest-benchmark's ``median:5%``. It also
prints the spread of a fresh process's median per workload (the data behind
``noise.PRIOR_SD["host"]``) and the cost of the host-load sampler.

Usage (from the repository root, in the project's virtualenv)::

    PYTHONPATH=$PWD python bench/host_gate_study.py run --out bench/data/host_gate_study.json
    PYTHONPATH=$PWD python bench/host_gate_study.py evaluate bench/data/host_gate_study.json
    PYTHONPATH=$PWD python bench/host_gate_study.py sampler-cost

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any


TESTS = textwrap.dedent('''
    import hashlib, json, os
    import numpy as np

    SCALE = float(os.environ.get("TRTPERF_STUDY_SCALE", "1"))
    DATA = memoryview(b"\\x5a" * 2_000_000)
    LOOP = int(8000 * SCALE)
    NBYTES = int(600_000 * SCALE)
    SORT = np.random.default_rng(0).random(int(10_000 * SCALE))
    OBJ = [{"id": i, "name": f"item{i}", "tags": ["a", "b", "c"], "value": i * 0.5}
           for i in range(int(400 * SCALE))]


    def test_py_loop(trt_bench):
        trt_bench.measure(lambda: sum(i * i for i in range(LOOP)))


    def test_sha256(trt_bench):
        trt_bench.measure(lambda: hashlib.sha256(DATA[:NBYTES]).digest())


    def test_np_sort(trt_bench):
        trt_bench.measure(lambda: np.sort(SORT))


    def test_json_dumps(trt_bench):
        trt_bench.measure(lambda: json.dumps(OBJ))
''')

WORKLOADS = ("test_py_loop", "test_sha256", "test_np_sort", "test_json_dumps")


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def spinners(n: int) -> list[subprocess.Popen]:
    """A load spike: ``n`` busy-looping processes."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_process(workdir: Path, args: list[str], scale: float, json_name: str, spike: int = 0) -> dict[str, Any]:
    env = dict(os.environ, TRTPERF_STUDY_SCALE=str(scale))
    env.pop("PYTEST_ADDOPTS", None)
    load = spinners(spike)
    before = _loadavg()
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_study.py",
                            f"--trt-json={json_name}", *args], cwd=workdir, env=env, capture_output=True, text=True)
    finally:
        for p in load:
            p.kill()
            p.wait()
    wall = time.monotonic() - t0
    doc = json.loads((workdir / json_name).read_text()) if (workdir / json_name).exists() else {"results": []}
    tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
    return dict(args=args, scale=scale, spike=spike, rc=r.returncode, wall_s=round(wall, 1), loadavg_before=before,
                loadavg_after=_loadavg(), results=doc["results"], tail=tail[0])


def run(ns: argparse.Namespace) -> None:
    out = Path(ns.out)
    work = Path(tempfile.mkdtemp(prefix="host_gate_study_"))
    (work / "test_study.py").write_text(TESTS)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    procs: list[dict[str, Any]] = []
    t_start = time.monotonic()
    for b in range(ns.baselines):
        p = run_process(work, ["--trt-baseline=update"], 1.0, f"base{b}.json", spike=ns.baseline_spike)
        p["role"] = "baseline"
        procs.append(p)
        print(f"[study] baseline {b}: rc={p['rc']} {p['wall_s']} s load {p['loadavg_before']} | {p['tail']}",
              flush=True)
    jobs = [(1.0, 0)] * ns.compare + [(1.1, 0)] * ns.slow10 + [(1.2, 0)] * ns.slow20 + [(1.0, ns.spike)] * ns.spiked
    random.Random(ns.seed).shuffle(jobs)
    for i, (scale, spike) in enumerate(jobs):
        p = run_process(work, [], scale, f"cmp{i}.json", spike=spike)
        p["role"] = "compare" if not spike else "spiked"
        procs.append(p)
        statuses = [r["verdict"]["status"] for r in p["results"] if r.get("verdict")]
        print(f"[study] {i + 1}/{len(jobs)} scale {scale}{' spiked' if spike else ''}: rc={p['rc']} {p['wall_s']} s load "
              f"{p['loadavg_before'][:1]} {statuses}", flush=True)
    meta = dict(date=started, python=platform.python_version(), cores=os.cpu_count(), machine=_cpu(),
                collect_s=round(time.monotonic() - t_start, 1), command=" ".join(sys.argv), seed=ns.seed,
                baseline_file=json.loads(next((work / ".trtperf").glob("*.json")).read_text()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(meta=meta, processes=procs)))
    print(f"[study] wrote {out} in {meta['collect_s']} s", flush=True)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ----------------------------------------------------------------- evaluation


def _results(procs: Sequence[dict[str, Any]], scale: float) -> list[dict[str, Any]]:
    return [p for p in procs if p["role"] == "compare" and abs(p["scale"] - scale) < 1e-9]


def _by_id(p: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"].split("::")[-1]: r for r in p["results"]}


def offline(base: dict[str, Any], cur: dict[str, Any], rule: str,
            history: Sequence[dict[str, Any]] = ()) -> str:
    """Re-judge ``cur`` against ``base`` (both ``--trt-json`` results), with
    ``history``: earlier update runs (``--trt-json`` results) of the entry."""
    import math

    from pytest_trtperf.baselines.store import BaselineEntry, history_row
    from pytest_trtperf.gate.timing import judge
    from pytest_trtperf.core.results import Result

    b, c = Result.from_dict(base), Result.from_dict(cur)
    if rule == "pytest-benchmark median:5%":
        return "regression" if c.latency.median / b.latency.median - 1 > 0.05 else "pass"
    rows = tuple(history_row(Result.from_dict(h), timestamp=f"T{i}", git_commit=None) for i, h in enumerate(history))
    entry = BaselineEntry.from_result(b, timestamp="T", git_commit=None, history=rows)
    noise = 0.0 if rule == "within-run only (before)" else None
    v = judge(c, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
              baseline_path="b.json", run_noise=noise)
    if v.change is not None and not math.isfinite(v.change):
        return "error"
    return v.status


RULES = ("default", "within-run only (before)", "pytest-benchmark median:5%")
#: Update runs in the history variant of the evaluation.
HISTORY_K = 10


#: The compare cases: label and how much larger the work was.
CASES = (("no change", 1.0), ("+10%", 1.1), ("+20%", 1.2))


def evaluate(ns: argparse.Namespace) -> None:
    """Print the study's tables (one section per helper below) for one data file."""
    data = json.loads(Path(ns.data).read_text())
    procs = data["processes"]
    _print_header(data["meta"], procs)
    _print_as_run(procs)
    base_med = _print_effects(procs)
    _print_spread(base_med)
    _print_all_pairs(procs)
    _print_spikes(procs, base_med)
    _print_history(procs)
    _print_host_state(procs)


def _print_header(meta: dict[str, Any], procs: list[dict[str, Any]]) -> None:
    import numpy as np

    print(f"date {meta['date']}, {meta['machine']}, {meta['cores']} cores, Python {meta['python']}, "
          f"collection {meta['collect_s']} s, command: {meta['command']}")
    loads = [p["loadavg_before"][0] for p in procs if p["loadavg_before"]]
    print(f"processes: {len(procs)} ({sum(p['role'] == 'baseline' for p in procs)} baseline); load average "
          f"(1 min) before each: median {np.median(loads):.2f}, min {min(loads):.2f}, max {max(loads):.2f}; "
          f"wall per process median {np.median([p['wall_s'] for p in procs]):.1f} s")


def _print_as_run(procs: list[dict[str, Any]]) -> None:
    """The plugin's own verdicts per workload and case."""
    print("\n**As run** (the plugin's own verdicts, defaults: tolerance 5%, one baseline process):\n")
    print("| workload | " + " | ".join(f"{c} fail / unreliable" for c, _ in CASES) + " |")
    print("|---|" + "---|" * len(CASES))
    totals = {c: [0, 0, 0] for c, _ in CASES}
    for w in WORKLOADS:
        cells = []
        for c, scale in CASES:
            ps = _results(procs, scale)
            st = [_by_id(p)[w]["verdict"]["status"] for p in ps if w in _by_id(p)]
            fail, unrel = st.count("regression"), st.count("unreliable")
            totals[c][0] += fail
            totals[c][1] += unrel
            totals[c][2] += len(st)
            cells.append(f"{fail}/{len(st)} / {unrel}")
        print(f"| {w} | " + " | ".join(cells) + " |")
    print("| **all** | " + " | ".join(f"**{t[0]}/{t[2]} ({t[0] / max(t[2], 1):.1%})** / {t[1]}"
                                      for t in totals.values()) + " |")


def _print_effects(procs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """True effect of each level: median over processes of the medians, per
    workload. Returns the no-change processes' medians per workload."""
    import numpy as np

    print("\n**Measured effect of the injected work** (median of slowed processes' medians over the median of "
          "no-change processes' medians):")
    base_med = {}
    for w in WORKLOADS:
        meds = {s: [_by_id(p)[w]["latency_ms"]["median"] for p in _results(procs, s) if w in _by_id(p)]
                for _, s in CASES}
        base_med[w] = meds[1.0]
        effects = [f"{c} -> {np.median(meds[s]) / np.median(meds[1.0]) - 1:+.1%}" for c, s in CASES[1:] if meds[s]]
        print(f"- {w}: median {np.median(meds[1.0]) * 1e3:.1f} us; " + ", ".join(effects))
    return base_med


def _print_spread(base_med: dict[str, list[float]]) -> None:
    import numpy as np

    print("\n**Spread of a fresh process's median** (no-change compare processes; sd of log medians):")
    for w in WORKLOADS:
        logs = np.log(base_med[w])
        print(f"- {w}: sd {np.std(logs, ddof=1):.2%}, range {np.exp(logs.max() - logs.min()) - 1:.1%} "
              f"over {len(logs)} processes")


def _offline_failures(procs: list[dict[str, Any]], w: str, scale: float, rule: str) -> tuple[int, int]:
    """(failed, judged) over every no-change process as the baseline of every
    other process of ``scale``."""
    fails = n = 0
    for bp in _results(procs, 1.0):
        for cp in _results(procs, scale):
            if cp is bp or w not in _by_id(bp) or w not in _by_id(cp):
                continue
            n += 1
            fails += offline(_by_id(bp)[w], _by_id(cp)[w], rule) == "regression"
    return fails, n


def _print_all_pairs(procs: list[dict[str, Any]]) -> None:
    print("\n**All pairs, offline** (every no-change process as the baseline of every other process; "
          "share of pairs that FAILED):\n")
    print("| rule | workload | " + " | ".join(f"{c}" for c, _ in CASES) + " |")
    print("|---|---|" + "---|" * len(CASES))
    pooled: dict[str, dict[str, list[int]]] = {r: {c: [0, 0] for c, _ in CASES} for r in RULES}
    for rule in RULES:
        for w in WORKLOADS:
            cells = []
            for c, scale in CASES:
                fails, n = _offline_failures(procs, w, scale, rule)
                pooled[rule][c][0] += fails
                pooled[rule][c][1] += n
                cells.append(f"{fails / max(n, 1):.1%} ({n})")
            print(f"| {rule} | {w} | " + " | ".join(cells) + " |")
        print(f"| {rule} | **all** | " + " | ".join(f"**{v[0] / max(v[1], 1):.1%}**" for v in pooled[rule].values())
              + " |")


def _print_spikes(procs: list[dict[str, Any]], base_med: dict[str, list[float]]) -> None:
    """No-change processes measured while busy-looping processes ran (if the data has them)."""
    import numpy as np

    spiked = [p for p in procs if p["role"] == "spiked"]
    if not (spiked or any(p.get("spike") for p in procs if p["role"] == "baseline")):
        return
    bl = [p.get("spike", 0) for p in procs if p["role"] == "baseline"]
    print(f"\n**Load spikes** ({spiked[0]['spike'] if spiked else 0} busy-looping processes during each of "
          f"{len(spiked)} extra no-change compare processes; during the baseline process: {bl[0]}):\n")
    print("| workload | no change under a spike: verdicts | host_busy | cpu_hit median | "
          "median vs unspiked processes |")
    print("|---|---|---|---|---|")
    for w in WORKLOADS:
        rs = [_by_id(p)[w] for p in spiked if w in _by_id(p)]
        if not rs:
            continue
        st = [r["verdict"]["status"] for r in rs]
        counts = ", ".join(f"{st.count(x)} {x}" for x in dict.fromkeys(st))
        busy = sum("host_busy" in r["device_state"]["flags"] for r in rs)
        hit = np.median([r["device_state"].get("cpu_hit") or 0 for r in rs])
        shift = np.median([r["latency_ms"]["median"] for r in rs]) / np.median(base_med[w]) - 1
        print(f"| {w} | {counts} | {busy}/{len(rs)} | {hit:.1%} | {shift:+.2%} |")


def _history_failures(procs: list[dict[str, Any]], w: str, scale: float,
                      sds: list[float] | None) -> tuple[int, int]:
    """(failed, judged) with an entry of :data:`HISTORY_K` no-change runs as the
    baseline of each process of ``scale``; appends the history's between-run
    sd to ``sds`` when given."""
    fails = n = 0
    pool = [p for p in _results(procs, 1.0) if w in _by_id(p)]
    for i, cp in enumerate(_results(procs, scale)):
        if w not in _by_id(cp):
            continue
        hist = [q for q in pool if q is not cp]
        start = (i * HISTORY_K) % len(hist)
        chosen = (hist + hist)[start:start + HISTORY_K]
        n += 1
        fails += offline(_by_id(chosen[-1])[w], _by_id(cp)[w], "default",
                         [_by_id(q)[w] for q in chosen[:-1]]) == "regression"
        if sds is not None:
            from pytest_trtperf.core.noise import estimate

            sds.append(estimate("host", [_by_id(q)[w]["latency_ms"]["median"] for q in chosen]).sd)
    return fails, n


def _print_history(procs: list[dict[str, Any]]) -> None:
    import numpy as np

    print(f"\n**With a history** (the entry holds {HISTORY_K} update runs: {HISTORY_K} no-change processes, the "
          f"candidate another process; default rule; share of verdicts that FAILED):\n")
    print("| workload | " + " | ".join(c for c, _ in CASES) + " | between-run sd from history (median) |")
    print("|---|" + "---|" * (len(CASES) + 1))
    pooled_h = {c: [0, 0] for c, _ in CASES}
    for w in WORKLOADS:
        cells = []
        sds: list[float] = []
        for c, scale in CASES:
            fails, n = _history_failures(procs, w, scale, sds if c == "no change" else None)
            pooled_h[c][0] += fails
            pooled_h[c][1] += n
            cells.append(f"{fails}/{n}")
        print(f"| {w} | " + " | ".join(cells) + f" | {np.median(sds):.2%} |")
    print("| **all** | " + " | ".join(f"**{v[0] / max(v[1], 1):.1%}**" for v in pooled_h.values()) + " | |")


def _print_host_state(procs: list[dict[str, Any]]) -> None:
    import numpy as np

    compares = [p for p in procs if p["role"] == "compare"]
    print("\n**Host state of the compare windows** (cpu_delayed: share of the window the measuring thread "
          "waited for a CPU; cpu_hit: estimated share of samples with a wait):")
    for w in WORKLOADS:
        ds = [_by_id(p)[w]["device_state"] for p in compares if w in _by_id(p)]
        delayed = [d.get("cpu_delayed") for d in ds if d.get("cpu_delayed") is not None]
        hit = [d.get("cpu_hit") for d in ds if d.get("cpu_hit") is not None]
        busy = sum("host_busy" in d.get("flags", []) for d in ds)
        if delayed:
            print(f"- {w}: cpu_delayed median {np.median(delayed):.1%} (max {max(delayed):.1%}), cpu_hit median "
                  f"{np.median(hit):.1%} (max {max(hit):.1%}), final windows flagged host_busy: {busy}/{len(ds)}")
    remeasured = sum(r["verdict"]["remeasured"] for p in compares for r in p["results"] if r.get("verdict"))
    print(f"- verdicts re-measured (suspected regression or busy window): {remeasured} of "
          f"{sum(len(p['results']) for p in compares)}")


# ------------------------------------------------------------- sampler cost


def sampler_cost(ns: argparse.Namespace) -> None:
    """What watching the host costs: the reads before and after a window, and
    the median of a timed workload with and without the sampler, interleaved."""
    import hashlib
    import statistics

    from pytest_trtperf.core.config import MeasureSettings
    from pytest_trtperf.core.host_state import HostSampler
    from pytest_trtperf.core.measure import measure
    from pytest_trtperf.workloads.host import HostWorkload

    t = []
    for _ in range(200):
        s = HostSampler()
        t0 = time.perf_counter()
        s.start()
        s.stop()
        t.append(time.perf_counter() - t0)
    print(f"start()+stop(): median {statistics.median(t) * 1e6:.0f} us, p90 "
          f"{sorted(t)[int(0.9 * len(t))] * 1e6:.0f} us (outside the timed loop)")
    data = b"\x5a" * 300_000
    w = HostWorkload(lambda: hashlib.sha256(data).digest())
    w.setup()
    settings = MeasureSettings(warmup_s=0.1, duration_s=0.5)
    ratios = []
    for i in range(ns.rounds):
        pair = []
        for with_sampler in ((True, False) if i % 2 == 0 else (False, True)):
            m = measure(w, settings, HostSampler() if with_sampler else None)
            pair.append((with_sampler, float(statistics.median(m.latency_s))))
        on = next(v for s_, v in pair if s_)
        off = next(v for s_, v in pair if not s_)
        ratios.append(on / off - 1)
    w.teardown()
    print(f"sha256 300 kB, {ns.rounds} ABBA rounds of 0.5 s: median of (with / without - 1) = "
          f"{statistics.median(ratios):+.2%} (rounds: {min(ratios):+.2%} .. {max(ratios):+.2%}); load "
          f"{_loadavg()}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "Host gate study").splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", required=True)
    p.add_argument("--baselines", type=int, default=1)
    p.add_argument("--compare", type=int, default=20, help="no-change compare processes")
    p.add_argument("--slow10", type=int, default=8)
    p.add_argument("--slow20", type=int, default=8)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--spiked", type=int, default=0,
                   help="extra no-change compare processes run during a load spike (reported apart)")
    p.add_argument("--spike", type=int, default=4, help="busy-looping processes of a load spike")
    p.add_argument("--baseline-spike", type=int, default=0,
                   help="busy-looping processes while the baseline process runs (0: none)")
    p = sub.add_parser("evaluate")
    p.add_argument("data")
    p = sub.add_parser("sampler-cost")
    p.add_argument("--rounds", type=int, default=20)
    ns = ap.parse_args(argv)
    {"run": run, "evaluate": evaluate, "sampler-cost": sampler_cost}[ns.cmd](ns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
