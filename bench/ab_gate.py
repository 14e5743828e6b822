"""Interleaved A/B gates next to baseline-file gates: same workloads, same
machine, same time (issue 17).

A relative gate (``trt_bench.compare(a, b, max_slowdown="3%")``) measures A and
B in alternating blocks of one process, so an offset that belongs to the run
(a process's layout, a load burst, a card at its power cap) hits both sides.
This study asks how often each kind of gate is fooled, on real data:

* ``collect-cpu`` (this 2-core machine, shared with other people's test runs):
  many fresh processes, each doing, in shuffled order, (1) the baseline-file
  study's recordings of ``bench/gate_quality.py`` (slots of back-to-back
  samples at +0/+0/+3/+5/+10% injected work, replayed offline by its rules
  with baseline and candidate from different processes, as CI sees them) and
  (2) live A/B verdicts through the plugin's own policy
  (``relative.run_relative``: interleaved measurement, paired ratio,
  re-measure of a suspected failure) for no-change pairs (B = the same code as
  A) and +3/+5/+10% injected work in B. The load average is recorded with
  every verdict.
* ``evaluate``: both kinds of gate side by side, failure rate per case.
* ``gpu``: one call on the GPU machine (< 4 min): baseline windows of a
  4096^3 FP16 GEMM in a fresh process on a cool card, then a heat soak, then a
  second process running GEMMs on the same GPU for the rest of the run, while
  this process alternates A/B verdicts (B = the GEMM plus a spin kernel of
  0/3/5/10% of its time) with baseline-file verdicts of the same cases
  (separate windows against the cool baseline). Never changes GPU settings.
  ``--cpu-dry-run`` runs the same script with host workloads (to test it
  without a GPU).

Usage (from the repository root)::

    PYTHONPATH=$PWD python bench/ab_gate.py collect-cpu --procs 25 --out /tmp/ab_gate_cpu_raw.npz
    PYTHONPATH=$PWD python bench/ab_gate.py evaluate /tmp/ab_gate_cpu_raw.npz --json bench/data/ab_gate_cpu_eval.json
    PYTHONPATH=$PWD python bench/ab_gate.py gpu --budget 200 --out $OUT/ab_gate_gpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineStore  # noqa: E402
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings  # noqa: E402
from pytest_trtperf.core.measure import measure  # noqa: E402
from pytest_trtperf.relative.policy import Expectation, run_relative  # noqa: E402
from pytest_trtperf.core.results import Distribution  # noqa: E402
from pytest_trtperf.pipeline.runner import Runner, Target, confirm  # noqa: E402


def _gate_quality() -> Any:
    spec = importlib.util.spec_from_file_location("gate_quality", Path(__file__).with_name("gate_quality.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["gate_quality"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


gq = _gate_quality()

#: Tolerance of the baseline-file gate and max_slowdown of the A/B gate.
TOLERANCE = 0.03
SLOT_LEVELS = (0.0, 0.0, 0.03, 0.05, 0.10)
AB_CASES = (0.03, 0.05, 0.10)
CASE_NAMES = {0.0: "no change", 0.03: "+3%", 0.05: "+5%", 0.10: "+10%"}


def bench_runner() -> Runner:
    """The plugin's runner without a pytest session: no GPU side (no lock,
    no NVML monitor), no baselines (a relative gate reads none)."""
    nowhere = Path(tempfile.gettempdir()) / "ab_gate-no-baselines"  # never created: nothing is read or written
    settings = Settings(baseline_mode="off", baseline_dir=nowhere, rootdir=nowhere, require_gpu=False,
                        json_path=None, report_path=None)
    return Runner(settings, BaselineStore(nowhere))


def ab_verdict(runner: Runner, a: Any, b: Any, *, workload: str, level: float, opts: MeasureOptions,
               seed: str) -> dict[str, Any]:
    """One live A/B verdict through ``relative.run_relative`` (the plugin's policy)."""
    target = Target(id=f"ab::{workload}::{level}::{seed}", nodeid="bench/ab_gate.py", name=None)
    t0 = time.perf_counter()
    r = run_relative(runner, a, b, target, opts, Expectation.from_config("max_slowdown", TOLERANCE))
    rel = r.relative
    assert rel is not None and r.verdict is not None
    return dict(kind="ab", workload=workload, level=level, failed=r.verdict.status == "regression",
                ratio=rel.ratio, ci=list(rel.ci), pairs=rel.pairs, remeasured=r.verdict.remeasured,
                seconds=time.perf_counter() - t0, stop=r.stop_reason, load=os.getloadavg()[0],
                pair_ratios=list(rel.pair_ratios))


# =====================================================================
# CPU
# =====================================================================

#: Iterations of the pure-Python loop: 0.2-0.3 ms on the 2-core dev box.
PY_N = 5000


def _py_work(n: int) -> int:
    """Interpreter-bound work (no C code doing the heavy lifting): what moves
    most between fresh processes (memory layout, hash seeds, caches)."""
    acc = 0
    for i in range(n):
        acc ^= (i * 2654435761) & 0xFFFF
    return acc


def cpu_workload(name: str, level: float) -> Any:
    """A host workload of the study at ``level`` extra work."""
    from pytest_trtperf.workloads.host import HostWorkload

    if name.startswith("sha256-"):
        return gq.host_workload(int(round(gq.HOST_WORKLOADS[name] * (1.0 + level))))
    if name == "python-loop-5k":
        n = int(round(PY_N * (1.0 + level)))
        return HostWorkload(lambda: _py_work(n))
    raise SystemExit(f"unknown workload {name!r}; known: {', '.join([*gq.HOST_WORKLOADS, 'python-loop-5k'])}")


def child_cpu(args: argparse.Namespace) -> None:
    """One fresh process: slots for the baseline-file rules and live A/B
    verdicts, in one shuffled order so load changes hit both alike."""
    rng = np.random.default_rng(7000 + args.proc)
    jobs: list[tuple[str, float]] = [("slot", lv) for lv in SLOT_LEVELS]
    jobs += [("ab", 0.0)] * args.ab_nochange + [("ab", lv) for lv in AB_CASES]
    rng.shuffle(jobs)  # type: ignore[arg-type]
    runner = bench_runner()
    opts = MeasureOptions(tolerance=TOLERANCE)
    slots: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    for i, (job, level) in enumerate(jobs):
        for name in args.workloads.split(","):
            if job == "slot":
                w = cpu_workload(name, level)
                w.setup()
                measure(w, MeasureSettings(warmup_s=0.2, duration_s=0.001))  # warm, as trt_bench does
                slots.append(dict(workload=name, level=level, **gq.record_slot(w, args.slot)))
                w.teardown()
            else:
                a, b = cpu_workload(name, 0.0), cpu_workload(name, level)
                trials.append(dict(ab_verdict(runner, a, b, workload=name, level=level, opts=opts,
                                              seed=f"{args.proc}:{i}"), proc=args.proc))
    gq.write_child(Path(args.out), args.proc, slots, np.zeros((0, 5)), dict(load=os.getloadavg()))
    Path(args.out).with_suffix(".ab.json").write_text(json.dumps(trials))


def collect_cpu(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ab_gate_"))
    t0 = time.monotonic()
    loads_before = os.getloadavg()
    parts, trials, loads = [], [], []
    for proc in range(args.procs):
        if args.budget and time.monotonic() - t0 > args.budget:
            print(f"[ab_gate] budget: stopping before process {proc}", flush=True)
            break
        part = tmp / f"p{proc}.npz"
        loads.append(os.getloadavg()[0])
        cmd = [sys.executable, __file__, "_child-cpu", "--proc", str(proc), "--slot", str(args.slot),
               "--ab-nochange", str(args.ab_nochange), "--workloads", args.workloads, "--out", str(part)]
        t1 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        tail = (r.stdout + r.stderr).strip().splitlines()[-2:]
        print(f"[ab_gate] process {proc}: rc={r.returncode} {time.monotonic() - t1:.0f} s, load "
              f"{os.getloadavg()[0]:.2f} {' | '.join(tail)}", flush=True)
        if part.exists():
            parts.append(part)
            trials += json.loads(part.with_suffix(".ab.json").read_text())
    meta = dict(gq.machine_info("cpu"), kind="cpu", slot_s=args.slot, levels=list(SLOT_LEVELS),
                loadavg_before=loads_before, loadavg_after=os.getloadavg(), loadavg_at_process_starts=loads,
                collect_s=round(time.monotonic() - t0, 1), command=" ".join(sys.argv))
    gq.merge(parts, out, meta)
    out.with_suffix(".ab.json").write_text(json.dumps(dict(meta=meta, trials=trials)))
    print(f"[ab_gate] wrote {out} and {out.with_suffix('.ab.json')} ({len(parts)} processes, "
          f"{len(trials)} A/B verdicts)", flush=True)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def ab_rows(trials: Sequence[dict[str, Any]], workload: str) -> dict[float, dict[str, float]]:
    """Failure rate, count, seconds and re-measure share per case of one workload."""
    out: dict[float, dict[str, float]] = {}
    for level in (0.0, *AB_CASES):
        ts = [t for t in trials if t["workload"] == workload and abs(t["level"] - level) < 1e-9]
        if ts:
            out[level] = dict(rate=float(np.mean([t["failed"] for t in ts])), n=len(ts),
                              seconds=float(np.median([t["seconds"] for t in ts])),
                              remeasured=float(np.mean([t["remeasured"] for t in ts])),
                              ratio_median=float(np.median([t["ratio"] for t in ts])),
                              ratio_sd=float(np.std([np.log(t["ratio"]) for t in ts], ddof=1)) if len(ts) > 1 else 0.0,
                              ratio_min=float(min(t["ratio"] for t in ts)), ratio_max=float(max(t["ratio"] for t in ts)),
                              pairs=float(np.median([t["pairs"] for t in ts])))
    return out


def evaluate(args: argparse.Namespace) -> None:
    data = gq.load(Path(args.data))
    ab = json.loads(Path(args.data).with_suffix(".ab.json").read_text())
    trials = ab["trials"]
    rules = gq.default_rules(TOLERANCE)
    rows = gq.study(data, rules, TOLERANCE)
    meta = {k: v for k, v in data.meta.items() if k != "children"}
    print(f"machine: {json.dumps(meta)}")
    loads = [t["load"] for t in trials]
    print(f"A/B verdicts: {len(trials)}; 1-min load average during them: median {np.median(loads):.2f}, "
          f"range {min(loads):.2f}..{max(loads):.2f}")
    out_rows = []
    for wl in sorted({s.workload for s in data.slots}):
        truth = gq.true_slowdowns(data, wl)
        off = gq.process_offsets(data, wl)
        print(f"\n**{wl}** (tolerance / max_slowdown {_pct(TOLERANCE)}; measured effect of the injected work: "
              + ", ".join(f"+{int(k * 100)}% -> {v * 100:+.2f}%" for k, v in truth.items() if k in AB_CASES)
              + f"; process offset sd {_pct(off['between_sd'])}, within-process window sd {_pct(off['within_sd'])})\n")
        cases = ("no change", *(CASE_NAMES[lv] for lv in AB_CASES))
        print("| gate | " + " | ".join(cases) + " | s/verdict (no change / +5%) |")
        print("|---|" + "---|" * (len(cases) + 1))
        for rule in rules:
            by = {r.case: r for r in rows if r.workload == wl and r.rule == rule.name}
            cells = [f"{_pct(by[c].rate)} ({by[c].pairs})" if c in by else "-" for c in cases]
            secs = f"{by['no change'].median_s:.2f} / {by['+5%'].median_s:.2f}" if "no change" in by and "+5%" in by else "-"
            print(f"| baseline file: {rule.name} | " + " | ".join(cells) + f" | {secs} |")
            out_rows += [dict(gate=f"baseline file: {rule.name}", workload=wl, case=c, rate=by[c].rate, n=by[c].pairs,
                              seconds=by[c].median_s) for c in cases if c in by]
        abr = ab_rows(trials, wl)
        cells = [f"**{_pct(abr[lv]['rate'])}** ({abr[lv]['n']})" if lv in abr else "-" for lv in (0.0, *AB_CASES)]
        secs = f"{abr[0.0]['seconds']:.2f} / {abr[0.05]['seconds']:.2f}" if 0.0 in abr and 0.05 in abr else "-"
        print("| **A/B interleaved** (`compare`, max_slowdown 3%) | " + " | ".join(cells) + f" | {secs} |")
        out_rows += [dict(gate="A/B interleaved", workload=wl, case=CASE_NAMES[lv], rate=v["rate"], n=v["n"],
                          seconds=v["seconds"]) for lv, v in abr.items()]
        print("\nA/B ratio b/a per case: " + "; ".join(
            f"{CASE_NAMES[lv]}: median {v['ratio_median']:.4f}, sd {_pct(v['ratio_sd'])}, range "
            f"{v['ratio_min']:.4f}..{v['ratio_max']:.4f}, {v['pairs']:.0f} pairs, re-measured {_pct(v['remeasured'])}"
            for lv, v in abr.items()))
    print("\nCells: share of verdicts that FAILED (count in brackets): no change = false alarms; +x% = detections.")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(meta=meta, ab_meta=ab["meta"], rows=out_rows,
                                                   ab_trials=[{k: v for k, v in t.items() if k != "pair_ratios"}
                                                              for t in trials]), indent=1))


# =====================================================================
# GPU (one call on the device machine), and its CPU dry run
# =====================================================================


class GemmSide:
    """A 4096^3 FP16 GEMM through ``TorchWorkload``; level x adds a spin
    kernel of x times the GEMM's own time (``bench/gate_quality.py``)."""

    name = "gemm-4096-fp16"

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.gw = gq.GpuWorkloads(self.notes)

    def calibrate(self) -> None:
        self.gw.calibrate()

    def make(self, level: float) -> Any:
        return self.gw.gemm(level)

    def soak(self, seconds: float) -> int:
        torch = self.gw.torch
        fn = self.gw.gemm_fn(0)
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(50):
                fn()
            torch.cuda.synchronize()
            n += 50
        return n


class HostSide:
    """The same script on a CPU: sha256 of 300 kB, level x hashes x more."""

    name = "sha256-300k (cpu dry run)"
    notes: list[str] = []

    def calibrate(self) -> None:
        pass

    def make(self, level: float) -> Any:
        return gq.host_workload(int(round(300_000 * (1.0 + level))))

    def soak(self, seconds: float) -> int:
        w, n, end = self.make(0.0), 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            w.run(50)
            n += 50
        return n


def _side(dry: bool) -> Any:
    return HostSide() if dry else GemmSide()


def gpu_baseline(args: argparse.Namespace) -> None:
    """Fresh process, cool card: baseline windows with the default settings."""
    side = _side(args.cpu_dry_run)
    out = []
    for _ in range(args.windows):
        w = side.make(0.0)
        w.setup()
        try:
            m = measure(w, MeasureSettings())
        finally:
            w.teardown()
        out.append(stats.compress(m.latency_s).to_dict())
    Path(args.out).write_text(json.dumps(dict(windows=out, notes=list(side.notes))))


def neighbour(args: argparse.Namespace) -> None:
    """Another process using the same GPU (or CPU) until SIGTERM or ``seconds``."""
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    end = time.perf_counter() + args.seconds
    n = 0
    if args.cpu_dry_run:
        print("ready", flush=True)
        while time.perf_counter() < end and not stop:
            sum(i * i for i in range(10_000))
            n += 1
    else:
        import torch

        a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
        b = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
        c = torch.empty_like(a)
        torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        print("ready", flush=True)  # CUDA is up and the GEMMs run
        while time.perf_counter() < end and not stop:
            for _ in range(20):
                torch.matmul(a, b, out=c)
            torch.cuda.synchronize()
            n += 20
    print(f"neighbour ran {n} units", flush=True)


def file_verdict(side: Any, level: float, base: Distribution, opts: MeasureOptions, seed: str) -> dict[str, Any]:
    """A baseline-file verdict of the same case: a separate window (and a
    second one when it looks like a regression, as the runner does) against a
    baseline window from a fresh process on a cool card."""
    t0 = time.perf_counter()
    w = side.make(level)
    w.setup()
    try:
        def once() -> Distribution:
            return stats.compress(measure(w, MeasureSettings.from_options(opts)).latency_s)

        def judge(d: Distribution) -> str:
            cmp = stats.compare(base, d, metric=opts.metric, confidence=opts.confidence, seed=seed)
            return stats.decide(cmp, TOLERANCE)

        d, status, again = confirm(once, judge, is_regression=lambda s: s == "regression", remeasure=opts.remeasure,
                                   flagged=lambda _: False)
    finally:
        w.teardown()
    change = float(np.interp(0.5, np.linspace(0, 1, len(d.quantiles_ms)), d.quantiles_ms)
                   / np.interp(0.5, np.linspace(0, 1, len(base.quantiles_ms)), base.quantiles_ms) - 1.0)
    return dict(kind="file", level=level, failed=status == "regression", change=change, remeasured=again,
                seconds=time.perf_counter() - t0)


def nvml_now() -> dict[str, Any]:
    """Read-only NVML snapshot (SM clock, power, temperature, reasons)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return dict(sm_mhz=pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                    power_w=pynvml.nvmlDeviceGetPowerUsage(h) / 1e3,
                    temp_c=pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
                    reasons=hex(int(reasons(h))),
                    processes=len(pynvml.nvmlDeviceGetComputeRunningProcesses(h)))
    except Exception as exc:  # noqa: BLE001 - informative only
        return dict(error=f"{type(exc).__name__}: {exc}")


#: Cases in the order trials cycle through them: no change and +5% (the
#: targets) most often.
GPU_CYCLE = (0.0, 0.05, 0.0, 0.05, 0.0, 0.10, 0.0, 0.05, 0.0, 0.03)


def trial_options(max_time_s: float | None) -> MeasureOptions:
    """The plugin's default measurement (what a user's gate runs), or with
    its time capped at ``max_time_s`` (the minimum time shortened to fit)."""
    opts = MeasureOptions(tolerance=TOLERANCE)
    if max_time_s is None:
        return opts
    return dataclasses.replace(opts, max_time_s=max_time_s, min_time_s=min(opts.min_time_s, max_time_s))


def run_gpu(args: argparse.Namespace) -> None:
    t_start = time.monotonic()
    dry = args.cpu_dry_run
    deadline = t_start + args.budget
    tmp = Path(tempfile.mkdtemp(prefix="ab_gate_gpu_"))
    log: dict[str, Any] = dict(machine=gq.machine_info("cpu" if dry else "gpu"), command=" ".join(sys.argv),
                               tolerance=TOLERANCE, dry_run=dry, phases={})

    def phase(name: str, **kw: Any) -> None:
        kw.update(t=round(time.monotonic() - t_start, 1), nvml=None if dry else nvml_now())
        log["phases"][name] = kw
        print(f"[ab_gate gpu] {name}: {json.dumps(kw)}", flush=True)

    flag = ["--cpu-dry-run"] if dry else []
    base_path = tmp / "baseline.json"
    r = subprocess.run([sys.executable, __file__, "_gpu-baseline", "--windows", str(args.windows), "--out",
                        str(base_path), *flag], capture_output=True, text=True)
    if r.returncode != 0 or not base_path.exists():
        raise SystemExit(f"baseline process failed (rc={r.returncode}): {(r.stdout + r.stderr)[-2000:]}")
    bases = [Distribution.from_dict(d) for d in json.loads(base_path.read_text())["windows"]]
    phase("baseline (fresh process, cool card)",
          medians_us=[round(float(np.interp(0.5, np.linspace(0, 1, len(b.quantiles_ms)), b.quantiles_ms)) * 1e3, 2)
                      for b in bases])

    side = _side(dry)
    n = side.soak(args.soak)
    phase("heat soak", seconds=args.soak, units=n)
    neigh = subprocess.Popen([sys.executable, __file__, "_neighbour", "--seconds", str(args.budget), *flag],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said: list[str] = []  # wait for torch's import and CUDA start-up; warnings may come first
    while neigh.stdout is not None and (line := neigh.stdout.readline()) and line.strip() != "ready":
        said.append(line.strip())
    if neigh.poll() is not None:
        raise SystemExit(f"the neighbour process did not start (rc={neigh.returncode}): {' | '.join(said)[-2000:]}")
    # The injected spin is a fraction of the GEMM's time as it is now (hot, shared).
    side.calibrate()
    phase("neighbour started", pid=neigh.pid, gemm_us=round(getattr(getattr(side, "gw", None), "gemm_ns", 0) / 1e3, 2))
    runner = bench_runner()
    opts = trial_options(args.max_time)
    trials: list[dict[str, Any]] = []
    i = 0
    try:
        while i == 0 or time.monotonic() + args.trial_s < deadline:  # at least one trial
            level = GPU_CYCLE[i % len(GPU_CYCLE)]
            ab = ab_verdict(runner, side.make(0.0), side.make(level), workload=side.name, level=level, opts=opts,
                            seed=str(i))
            trials.append(ab)
            fv = file_verdict(side, level, bases[i % len(bases)], opts, seed=str(i))
            trials.append(dict(fv, workload=side.name))
            print(f"[ab_gate gpu] trial {i} {CASE_NAMES[level]}: A/B b/a {ab['ratio']:.4f} "
                  f"[{ab['ci'][0]:.4f}, {ab['ci'][1]:.4f}] {'FAIL' if ab['failed'] else 'pass'} "
                  f"({ab['seconds']:.1f} s, {ab['pairs']} pairs); baseline file {fv['change'] * 100:+.1f}% "
                  f"{'FAIL' if fv['failed'] else 'pass'} ({fv['seconds']:.1f} s)", flush=True)
            i += 1
    finally:
        neigh.send_signal(signal.SIGTERM)
        try:
            out, _ = neigh.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            neigh.kill()
            out, _ = neigh.communicate()
        phase("neighbour stopped", output=(out or "").strip()[-200:], returncode=neigh.returncode)
    log["trials"] = trials
    log["notes"] = list(side.notes)
    log["summary"] = gpu_summary(trials)
    log["seconds"] = round(time.monotonic() - t_start, 1)
    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(log, indent=1))
    print("\n" + log["summary"], flush=True)
    print(f"[ab_gate gpu] wrote {args.out} in {log['seconds']} s", flush=True)


def gpu_summary(trials: Sequence[dict[str, Any]]) -> str:
    lines = ["| gate | " + " | ".join(CASE_NAMES[lv] for lv in (0.0, *AB_CASES)) + " | median s/verdict |",
             "|---|---|---|---|---|---|"]
    for kind, label in (("file", "baseline file (cool fresh-process baseline)"), ("ab", "A/B interleaved")):
        cells = []
        for lv in (0.0, *AB_CASES):
            ts = [t for t in trials if t["kind"] == kind and abs(t["level"] - lv) < 1e-9]
            cells.append(f"{_pct(float(np.mean([t['failed'] for t in ts])))} ({len(ts)})" if ts else "-")
        secs = np.median([t["seconds"] for t in trials if t["kind"] == kind]) if trials else float("nan")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {secs:.2f} |")
    ab = [t for t in trials if t["kind"] == "ab"]
    for lv in (0.0, *AB_CASES):
        rs = [t["ratio"] for t in ab if abs(t["level"] - lv) < 1e-9]
        if rs:
            lines.append(f"A/B {CASE_NAMES[lv]}: b/a median {np.median(rs):.4f}, range {min(rs):.4f}..{max(rs):.4f}")
    fs = [t for t in trials if t["kind"] == "file"]
    for lv in (0.0, *AB_CASES):
        cs = [t["change"] for t in fs if abs(t["level"] - lv) < 1e-9]
        if cs:
            lines.append(f"baseline file {CASE_NAMES[lv]}: change median {np.median(cs) * 100:+.2f}%, range "
                         f"{min(cs) * 100:+.2f}..{max(cs) * 100:+.2f}%")
    return "\n".join(lines)


# =====================================================================


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("collect-cpu", "_child-cpu"):
        p = sub.add_parser(name)
        p.add_argument("--procs", type=int, default=25)
        p.add_argument("--proc", type=int, default=0)
        p.add_argument("--slot", type=float, default=2.5, help="seconds recorded per level and workload")
        p.add_argument("--ab-nochange", type=int, default=6, help="no-change A/B verdicts per workload and process")
        p.add_argument("--budget", type=float, default=0.0, help="stop starting processes after this many s")
        p.add_argument("--workloads", default="sha256-300k,sha256-60k",
                       help="comma-separated: sha256-300k, sha256-60k, python-loop-5k")
        p.add_argument("--out", required=True)
    p = sub.add_parser("evaluate")
    p.add_argument("data")
    p.add_argument("--json")
    p = sub.add_parser("gpu")
    p.add_argument("--budget", type=float, default=200.0, help="seconds for the whole run (one device call)")
    p.add_argument("--soak", type=float, default=45.0, help="seconds of back-to-back GEMMs before the trials")
    p.add_argument("--windows", type=int, default=3, help="baseline windows in the fresh process")
    p.add_argument("--trial-s", type=float, default=6.0, help="time one trial (A/B + baseline file) may need")
    p.add_argument("--max-time", type=float, default=None,
                   help="cap in s on each A/B and baseline-file measurement (default: the plugin's); a short "
                        "cap makes a quick dry run (tests/test_ab_gate_bench.py)")
    p.add_argument("--cpu-dry-run", action="store_true")
    p.add_argument("--out", required=True)
    for name in ("_gpu-baseline", "_neighbour"):
        p = sub.add_parser(name)
        p.add_argument("--windows", type=int, default=3)
        p.add_argument("--seconds", type=float, default=60.0)
        p.add_argument("--cpu-dry-run", action="store_true")
        p.add_argument("--out")
    args = ap.parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], None]] = {
        "collect-cpu": collect_cpu, "_child-cpu": child_cpu, "evaluate": evaluate, "gpu": run_gpu,
        "_gpu-baseline": gpu_baseline, "_neighbour": neighbour}
    commands[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
