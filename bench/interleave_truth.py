"""Interleaved ratios against ground truth (issue 27).

Workloads of known cost as ``a`` and ``b`` at true ratios 1.000, 1.010,
1.030 and 1.100, through the relative gate's own policy
(``relative.policy.run_relative``, what ``trt_bench.compare`` runs), with
the sides swapped, and each side measured alone (``measure.measure``):

* ``host``: spins on ``time.perf_counter_ns`` (tests/host_spin.py) of about
  20 us, 200 us and 2 ms, quiet and under ``--burners`` busy processes;
* ``gpu``: ``%globaltimer`` spin kernels (tests/gpu/gpu_kernels.py) of 20 us,
  200 us and 2 ms, CUDA graphs on and off, bounds from the event-pair floor
  measured first (tests/gpu/timing_bounds.py); then the issue's real models
  (section ``mlp``: torch MLP 4096-H-4096, batch 64, FP16, H=16384 vs 16896)
  and a launch-bound pair (section ``launch``), each interleaved, swapped,
  against a second copy of itself, alone in this process, alone in fresh
  processes, without the lead-in, with 250 ms blocks, and with graphs off,
  with the GPU's SM clock and power sampled through NVML during each run.
  Each pair ends with ``DIAG`` lines that answer the issue's questions:
  what interleaving adds to each side over its time alone, whether swapping
  gives the reciprocal, whether a no-change pair reads one side slower and
  whether that is position (which side) or placement (which copy), fresh
  process against this process, what the lead-in and longer blocks change,
  graph replay against eager calls.

Output lines: ``<section> T=.. true .. read ..`` is one known ratio (error
against the nominal ratio, the documented bound, the gate's interval, the
swap product, each side interleaved vs alone, ``order``: median pair ratio of
A-first pairs over B-first pairs, ``head``: the first 3 iterations of a block
over the block's median, then ok/MISS for bound, swap, absolute); ``SUMMARY``
counts them; ``mlp``/``launch`` lines are single runs (``b/a`` with interval
and pairs, both sides' medians, SM clock and power while it ran).

Bounds (tests/truth_bounds.py): a reading is ``T + e`` with ``e`` in
``[0, e_max]`` on both sides alike (host: the call and clock overhead measured
on a 0 ns spin plus the spin loop's step; GPU: the event-pair floor plus
timing_bounds' slack), so b/a lies in ``[Tb/Ta, (Tb+e_max)/(Ta+e_max)]``
widened by the timer's quantum over T and twice the half-width of the gate's
own 99% interval. Swapped: ``r_ab * r_ba`` within 1 by both runs' noise.
Each side interleaved against alone: within ``e_max`` (host) or the
event-pair floor (GPU) plus both medians' intervals.

Run (``--out`` defaults to ``$OUT/interleave_truth_<mode>.json`` when ``$OUT``
is set; the text summary goes to stdout and next to the JSON):

    PYTHONPATH=. python3 bench/interleave_truth.py host --burners 2
    PYTHONPATH=. python3 bench/interleave_truth.py gpu              # on the GPU machine, ~5 min
    PYTHONPATH=. python3 bench/interleave_truth.py gpu --cpu-dry-run --quick   # every phase, host stand-ins
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.baselines.store import BaselineStore  # noqa: E402
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings  # noqa: E402
from pytest_trtperf.core.errors import BackendUnavailable  # noqa: E402
from pytest_trtperf.core.measure import measure  # noqa: E402
from pytest_trtperf.relative.interleave import Interleaved, measure_interleaved  # noqa: E402
from pytest_trtperf.relative.paired import compare_pairs  # noqa: E402
from pytest_trtperf.relative.policy import Expectation, run_relative  # noqa: E402
from pytest_trtperf.pipeline.runner import Runner, Target  # noqa: E402
from pytest_trtperf.core.stats import median_ci_rel_width  # noqa: E402
from pytest_trtperf.core.workload import Workload  # noqa: E402
from pytest_trtperf.workloads.host import HostWorkload  # noqa: E402


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


host_spin = _load("host_spin", ROOT / "tests" / "host_spin.py")
truth = _load("truth_bounds", ROOT / "tests" / "truth_bounds.py")

RATIOS = (1.000, 1.010, 1.030, 1.100)
DURATIONS_US = (20.0, 200.0, 2000.0)
#: A bound wider than this says nothing about a 1% change: the run was too
#: noisy (a loaded machine preempting long spins) to judge the harness by.
INFORMATIVE = 0.01
#: The gate's bound is irrelevant here (no verdict is read); never re-measure.
NEVER_FAILS = Expectation.from_config("max_slowdown", 10.0)
#: ``gpu --cpu-dry-run --quick`` (tests/test_interleave_truth.py) proves that
#: every section and output runs; it judges nothing, so each measurement is a
#: fixed 80 iterations: an interleaved run still makes the fewest pairs the
#: loop makes (10, whole (A, B), (B, A) cycles, enough for an interval), in
#: blocks of 8 iterations (enough for the head diagnostic). A GPU run, ``--quick`` or not, keeps its own
#: adaptive windows (``run_gpu``).
DRY_QUICK = MeasureOptions(remeasure=False, iterations=80, warmup_s=0.01)
#: Seconds each fresh process of that dry run measures its side for (after
#: DRY_QUICK's warm-up, not the default 0.2 s).
DRY_QUICK_SIDE_S = 0.05


def bench_runner() -> Runner:
    """The plugin's runner without a pytest session (no GPU lock, no NVML
    monitor of the plugin's own; this script samples NVML itself)."""
    nowhere = Path("/nonexistent/interleave-truth")  # a relative gate reads and writes no baseline
    s = Settings(baseline_mode="off", baseline_dir=nowhere, rootdir=nowhere, require_gpu=False,
                 json_path=None, report_path=None)
    return Runner(s, BaselineStore(nowhere))


# ---------------------------------------------------------------- measuring

def compare(runner: Runner, a: Workload, b: Workload, opts: MeasureOptions, tag: str) -> dict[str, Any]:
    """One relative gate through the plugin's policy: b/a, its interval, both
    sides' medians (us), and the run's order diagnostics."""
    r = run_relative(runner, a, b, Target(id=f"truth::{tag}", nodeid="bench/interleave_truth.py", name=None),
                     opts, NEVER_FAILS)
    rel = r.relative
    assert rel is not None
    il = runner.last_interleaved
    out = dict(ratio=rel.ratio, ci=list(rel.ci), pairs=rel.pairs, a_us=rel.a.latency.median * 1e3,
               b_us=rel.b.latency.median * 1e3, timed_as=[rel.a.identity.get("timed_as"),
                                                          rel.b.identity.get("timed_as")])
    if isinstance(il, Interleaved):
        out.update(diagnose(il, opts.metric))
    return out


def diagnose(il: Interleaved, metric: str = "median") -> dict[str, Any]:
    """Where an asymmetry would show: the pair ratio by which side went first
    (``order_effect`` = median ratio of A-first pairs over B-first pairs; 1
    when fair), and the first iterations of each block against the block's
    median (``head_a``/``head_b``: a switching cost the lead-in did not absorb)."""
    r = il.ratios(metric)
    first = np.asarray(il.b_first, dtype=bool)
    effect = float(np.median(r[~first]) / np.median(r[first])) if first.any() and (~first).any() else math.nan
    return dict(order_effect=effect, head_a=_head(il.a.latency_s, il.a_blocks),
                head_b=_head(il.b.latency_s, il.b_blocks), lead_ins=list(il.lead_ins),
                stop=il.stop_reason)


def _head(lat: np.ndarray, blocks: tuple[tuple[int, float], ...], k: int = 3) -> float:
    """Median over blocks of (mean of the first ``k`` iterations / block median)."""
    vals, start = [], 0
    for n, _ in blocks:
        blk = lat[start:start + n]
        start += n
        if n > 2 * k:
            vals.append(float(np.mean(blk[:k]) / np.median(blk)))
    return float(np.median(vals)) if vals else math.nan


def alone(w: Workload, opts: MeasureOptions) -> dict[str, Any]:
    """The workload measured by itself, as a baseline run would (median, us)."""
    w.setup()
    try:
        m = measure(w, MeasureSettings.from_options(opts))
    finally:
        w.teardown()
    med = float(np.median(m.latency_s))
    return dict(us=med * 1e6, ci_rel=median_ci_rel_width(m.latency_s, opts.confidence))


def truth_row(runner: Runner, make: Callable[[float], Workload], t_us: float, ratio: float,
              opts: MeasureOptions, *, e_max_us: float, quantum_us: float, abs_allowed_us: float,
              tag: str) -> dict[str, Any]:
    """One known ratio: a = ``t_us``, b = ``ratio * t_us``; swapped; each alone."""
    ta, tb = t_us, t_us * ratio
    ab = compare(runner, make(ta), make(tb), opts, f"{tag}:ab")
    ba = compare(runner, make(tb), make(ta), opts, f"{tag}:ba")
    a_alone, b_alone = alone(make(ta), opts), alone(make(tb), opts)
    bound = truth.RatioBound.of(ta, tb, e_max=e_max_us, quantum=quantum_us, ci=tuple(ab["ci"]), ratio=ab["ratio"])
    swap_ok = truth.swap_holds(ab["ratio"], ba["ratio"], tuple(ab["ci"]), tuple(ba["ci"]), quantum_us / ta)

    def agrees(il_us: float, al: dict[str, Any], ci_rel: float) -> bool:
        return truth.absolute_holds(il_us, al["us"], allowed=abs_allowed_us + al["us"] * (al["ci_rel"] + ci_rel))

    il_ci = max(truth.half_width(tuple(ab["ci"]), ab["ratio"]), 0.0)
    abs_ok = agrees(ab["a_us"], a_alone, il_ci) and agrees(ab["b_us"], b_alone, il_ci)
    return dict(t_us=t_us, true_ratio=ratio, ab=ab, ba=ba, a_alone_us=a_alone["us"], b_alone_us=b_alone["us"],
                bound=[bound.lo, bound.hi], bound_rel=bound.rel(ratio), ok=bound.holds(ab["ratio"]),
                informative=bound.rel(ratio) <= INFORMATIVE,
                swap_product=ab["ratio"] * ba["ratio"], swap_ok=swap_ok, abs_ok=abs_ok,
                error_pct=(ab["ratio"] / ratio - 1.0) * 100.0)


def row_line(row: dict[str, Any], label: str) -> str:
    ab = row["ab"]
    flags = " ".join(f"{k}={'ok' if row[k] else 'MISS'}" for k in ("ok", "swap_ok", "abs_ok"))
    flags += "" if row["informative"] else " (bound too wide to judge: noisy run)"
    return (f"{label:<22} T={row['t_us']:>7.1f}us true {row['true_ratio']:.3f} read {ab['ratio']:.4f} "
            f"({row['error_pct']:+.2f}%, bound +-{row['bound_rel'] * 100:.2f}%, CI {ab['ci'][0]:.4f}..{ab['ci'][1]:.4f}, "
            f"{ab['pairs']} pairs) swap x {row['swap_product']:.4f} | a {ab['a_us']:.2f} vs alone "
            f"{row['a_alone_us']:.2f}us, b {ab['b_us']:.2f} vs {row['b_alone_us']:.2f}us | order {ab['order_effect']:.4f} "
            f"head a/b {ab['head_a']:.3f}/{ab['head_b']:.3f} | {flags}")


# --------------------------------------------------------------------- host

def host_overhead_us(opts: MeasureOptions, longest_us: float) -> tuple[float, float]:
    """(e_max, quantum) of a host spin in us: tests/host_spin.py's
    ``overhead_us`` (a 0 ns spin's reading or the excess of the longest spin,
    plus one turn of the spin loop), and the clock's step (perf_counter_ns: 1 ns)."""
    e_max = host_spin.overhead_us(lambda us: alone(HostWorkload(host_spin.spinner(int(us * 1e3))), opts)["us"],
                                  longest_us)
    return e_max, 0.001


class Burners:
    """``n`` busy processes for the length of a ``with`` block."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Burners:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0.0)
        return self

    def __exit__(self, *exc: Any) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def run_host(args: argparse.Namespace) -> dict[str, Any]:
    opts = MeasureOptions(remeasure=False, min_time_s=0.5 if args.quick else 1.0, max_time_s=3.0, warmup_s=0.1)
    runner = bench_runner()
    durations = (200.0,) if args.quick else DURATIONS_US
    conditions = [("quiet", 0)] + ([(f"{args.burners} burners", args.burners)] if args.burners else [])
    out: dict[str, Any] = dict(conditions=[])
    for name, n in conditions:
        with Burners(n):
            load0 = os.getloadavg()
            rows, e_maxes = [], {}
            for t_us in durations:
                e_max, quantum = host_overhead_us(opts, t_us * max(RATIOS))
                e_maxes[t_us] = e_max
                for ratio in RATIOS:
                    row = truth_row(runner, lambda us: HostWorkload(host_spin.spinner(int(us * 1e3))), t_us, ratio,
                                    opts, e_max_us=e_max, quantum_us=quantum, abs_allowed_us=e_max,
                                    tag=f"host:{t_us}:{ratio}")
                    rows.append(row)
                    print(row_line(row, f"host {name}"), flush=True)
            out["conditions"].append(dict(name=name, burners=n, load_before=load0, load_after=os.getloadavg(),
                                          e_max_us=e_maxes, quantum_us=0.001, rows=rows))
    return out


# ---------------------------------------------------------------------- gpu

class ClockSampler:
    """SM clock (MHz) and power (W) of GPU 0 every 10 ms during a ``with``
    block, through NVML (nothing when NVML is missing)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import pynvml  # pyright: ignore[reportMissingImports]  # optional, absent where pyright runs

            pynvml.nvmlInit()
            self._nvml: Any = pynvml
            self._h = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            self._nvml = None

    def _run(self) -> None:
        nv = self._nvml
        while not self._stop.wait(0.01):
            try:
                self.samples.append((float(nv.nvmlDeviceGetClockInfo(self._h, nv.NVML_CLOCK_SM)),
                                     nv.nvmlDeviceGetPowerUsage(self._h) / 1e3))
            except Exception:
                return

    def __enter__(self) -> ClockSampler:
        self.samples = []
        if self._nvml is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return dict(sm_mhz=None, power_w=None)
        arr = np.asarray(self.samples)
        return dict(sm_mhz=float(np.median(arr[:, 0])), sm_mhz_min=float(arr[:, 0].min()),
                    power_w=float(np.median(arr[:, 1])))


def gpu_floor(dry: bool) -> tuple[Any, Any, float, str]:
    """(kernels, floor, timer quantum in us, device name)."""
    if dry:
        floor = _load("timing_bounds", ROOT / "tests" / "gpu" / "timing_bounds.py").Floor(pair_us=1.0)
        return None, floor, 0.001, "CPU dry run (host spins stand in for kernels)"
    from pytest_trtperf.gpu import cuda

    kernels = _load("gpu_kernels", ROOT / "tests" / "gpu" / "gpu_kernels.py").Kernels()
    for _ in range(3):
        kernels.spin(0, 1000)
    cuda.device_synchronize()
    tb = _load("timing_bounds", ROOT / "tests" / "gpu" / "timing_bounds.py")
    floor = tb.measure_floor(kernels)
    return kernels, floor, truth.timer_quantum_us(kernels), cuda.device_name(0)


def spin_maker(kernels: Any, graph: bool, dry: bool) -> Callable[[float], Workload]:
    if dry:
        return lambda us: HostWorkload(host_spin.spinner(int(us * 1e3)))
    from pytest_trtperf.workloads.cuda import CudaWorkload

    def make(us: float) -> Workload:
        ns = int(round(us * 1e3))
        return CudaWorkload(lambda stream: kernels.spin(stream, ns), cuda_graph=graph)

    return make


def run_gpu_spins(args: argparse.Namespace, runner: Runner, opts: MeasureOptions) -> dict[str, Any]:
    kernels, floor, quantum, device = gpu_floor(args.cpu_dry_run)
    print(f"device: {device}; event-pair floor {floor.pair_us:.2f} us; timer quantum {quantum * 1e3:.0f} ns",
          flush=True)
    durations = (200.0,) if args.quick else DURATIONS_US
    rows = []
    for graph in (True, False):
        make = spin_maker(kernels, graph, args.cpu_dry_run)
        for t_us in durations:
            e_max = floor.pair_us + max(0.5, 0.005 * t_us)  # timing_bounds: pair + slack
            for ratio in RATIOS:
                row = truth_row(runner, make, t_us, ratio, opts, e_max_us=e_max, quantum_us=quantum,
                                abs_allowed_us=floor.pair_us, tag=f"spin:{graph}:{t_us}:{ratio}")
                row["cuda_graph"] = graph
                rows.append(row)
                print(row_line(row, f"spin graphs={'on' if graph else 'off'}"), flush=True)
    return dict(device=device, floor_pair_us=floor.pair_us, quantum_us=quantum, rows=rows)


# ---------------------------------------------------- real models (issue 27)

MLP_HIDDEN = (16384, 16896)


def mlp_callable(hidden: int, seed: int, dry: bool) -> Callable[[], Any]:
    """x[64, 4096] -> Linear(4096, H) -> GELU -> Linear(H, 4096), FP16, no grad
    (the issue's pair). Dry run: hashing ``hidden * 4`` bytes (one thread,
    cost proportional to H, as the MLP's FLOPs are)."""
    if dry:
        import hashlib

        data = memoryview(bytes([seed % 251 + 1]) * (hidden * 4))
        return lambda: hashlib.sha256(data).digest()
    import torch  # pyright: ignore[reportMissingImports]  # optional, absent where pyright runs

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4096, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 4096))
    model = model.half().cuda().eval()
    x = torch.randn(64, 4096, device="cuda", dtype=torch.float16)

    def fn() -> Any:
        with torch.no_grad():
            return model(x)

    return fn


def launch_callable(ops: int, dry: bool) -> Callable[[], Any]:
    """``ops`` tiny element-wise kernels in a chain (launch-bound: each runs
    for about a microsecond, the launch costs more)."""
    if dry:
        x = np.ones(1024, dtype=np.float32)

        def host_fn() -> Any:
            y = x
            for _ in range(ops):
                y = y + 1.0
            return y
        return host_fn
    import torch  # pyright: ignore[reportMissingImports]  # optional, absent where pyright runs

    x = torch.ones(1024, device="cuda")

    def fn() -> Any:
        y = x
        for _ in range(ops):
            y = y + 1.0
        return y

    return fn


def model_workload(fn: Callable[[], Any], *, graph: bool, dry: bool) -> Workload:
    if dry:
        return HostWorkload(fn)
    from pytest_trtperf.workloads.torch import TorchWorkload

    return TorchWorkload(fn, cuda_graph=graph)


def fresh_process(kind: str, size: int, graph: bool, dry: bool, seconds: float,
                  warmup_s: float | None = None) -> dict[str, Any]:
    """One side measured alone in a new process (as a baseline run is);
    ``warmup_s`` None: the measurement's default warm-up."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "side", "--kind", kind, "--size", str(size),
           "--graph", str(int(graph)), "--min-time", str(seconds)] + (["--cpu-dry-run"] if dry else [])
    cmd += [] if warmup_s is None else ["--warmup", str(warmup_s)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if p.returncode != 0:
        return dict(error=(p.stderr or p.stdout).strip().splitlines()[-1:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_side(args: argparse.Namespace) -> None:
    """``side``: print one JSON line, the workload's median alone (us)."""
    fn = (mlp_callable(args.size, 0, args.cpu_dry_run) if args.kind == "mlp"
          else launch_callable(args.size, args.cpu_dry_run))
    opts = MeasureOptions(min_time_s=args.min_time, max_time_s=max(args.min_time * 3, 3.0))
    if args.warmup is not None:
        opts = dataclasses.replace(opts, warmup_s=args.warmup)
    sampler = ClockSampler()
    with sampler:
        res = alone(model_workload(fn, graph=bool(args.graph), dry=args.cpu_dry_run), opts)
    print(json.dumps({**res, **sampler.summary()}))


def model_pair(args: argparse.Namespace, runner: Runner, opts: MeasureOptions, *, kind: str,
               sizes: tuple[int, int]) -> dict[str, Any]:
    """The diagnosis of one real pair: what each harness variant reads."""
    dry = args.cpu_dry_run
    mk = (lambda size, seed: mlp_callable(size, seed, dry)) if kind == "mlp" else \
        (lambda size, seed: launch_callable(size, dry))
    fa, fb, fa2 = mk(sizes[0], 0), mk(sizes[1], 1), mk(sizes[0], 2)  # fa2: a second copy of a (no change)
    sampler = ClockSampler()
    res: dict[str, Any] = dict(kind=kind, sizes=list(sizes))

    def record(name: str, f: Callable[[], dict[str, Any]]) -> None:
        with sampler:
            t0 = time.perf_counter()
            r = f()
        r.update(sampler.summary(), seconds=time.perf_counter() - t0)
        res[name] = r
        print(f"{kind} {name:<26} " + _brief(r), flush=True)

    for graph in (True, False):
        g = "graph" if graph else "eager"

        def w(fn: Callable[[], Any], graph: bool = graph) -> Workload:
            return model_workload(fn, graph=graph, dry=dry)

        record(f"{g} a alone", lambda: alone(w(fa), opts))
        record(f"{g} b alone", lambda: alone(w(fb), opts))
        record(f"{g} a/b interleaved", lambda g=g: compare(runner, w(fa), w(fb), opts, f"{kind}:{g}:ab"))
        record(f"{g} b/a swapped", lambda g=g: compare(runner, w(fb), w(fa), opts, f"{kind}:{g}:ba"))
        record(f"{g} a/a' no change", lambda g=g: compare(runner, w(fa), w(fa2), opts, f"{kind}:{g}:aa"))
        record(f"{g} a'/a no change", lambda g=g: compare(runner, w(fa2), w(fa), opts, f"{kind}:{g}:a2a"))
        if graph:
            # The very same model on both sides (one set of weights): position alone, no placement.
            record("graph a/a same model", lambda g=g: compare(runner, w(fa), w(fa), opts, f"{kind}:{g}:same"))
            record("graph a/b no lead-in", lambda: variant(w(fa), w(fb), opts, lead_in_fraction=0.0))
            record("graph a/b 250ms blocks", lambda: variant(w(fa), w(fb), opts, block_s=0.25))
            record("graph a/a' no lead-in", lambda: variant(w(fa), w(fa2), opts, lead_in_fraction=0.0))
    seconds = DRY_QUICK_SIDE_S if args.quick and dry else 1.0
    warmup_s = DRY_QUICK.warmup_s if args.quick and dry else None
    for graph in (True,):  # what compare() times by default; a fresh process costs a torch import and a CUDA context
        g = "graph" if graph else "eager"
        runs = [fresh_process(kind, size, graph, dry, seconds, warmup_s)
                for size in (sizes[0], sizes[1], sizes[1], sizes[0])]
        res[f"{g} separate processes"] = runs
        ok = [r for r in runs if "us" in r]
        if len(ok) == 4:
            ratio = (ok[1]["us"] + ok[2]["us"]) / (ok[0]["us"] + ok[3]["us"])
            print(f"{kind} {g + ' separate processes':<26} a {ok[0]['us']:.2f}/{ok[3]['us']:.2f} us, "
                  f"b {ok[1]['us']:.2f}/{ok[2]['us']:.2f} us: b/a {ratio:.4f}", flush=True)
            res[f"{g} separate ratio"] = ratio
        else:
            print(f"{kind} {g} separate processes failed: {runs}", flush=True)
    res["diagnosis"] = diagnosis(res)
    print("\n".join(res["diagnosis"]), flush=True)
    return res


def diagnosis(res: dict[str, Any]) -> list[str]:
    """The questions of issue 27, answered from one pair's runs (one line each)."""
    kind, g = res["kind"], "graph"
    lines = []

    def get(name: str, key: str) -> float:
        v = res.get(name, {})
        return float(v[key]) if isinstance(v, dict) and v.get(key) is not None else math.nan

    for mode in ("graph", "eager"):
        a_il, b_il = get(f"{mode} a/b interleaved", "a_us"), get(f"{mode} a/b interleaved", "b_us")
        a_al, b_al = get(f"{mode} a alone", "us"), get(f"{mode} b alone", "us")
        lines.append(f"DIAG {kind} {mode}: interleaving adds {(a_il / a_al - 1) * 100:+.2f}% to a, "
                     f"{(b_il / b_al - 1) * 100:+.2f}% to b over each alone in this process "
                     f"(SM clock {get(f'{mode} a alone', 'sm_mhz'):.0f} MHz alone, "
                     f"{get(f'{mode} a/b interleaved', 'sm_mhz'):.0f} MHz interleaved)")
        r_ab, r_ba = get(f"{mode} a/b interleaved", "ratio"), get(f"{mode} b/a swapped", "ratio")
        lines.append(f"DIAG {kind} {mode}: b/a {r_ab:.4f}, swapped gives 1/{1 / r_ba:.4f} (product {r_ab * r_ba:.4f}: "
                     f"1 = no side favoured); alone in this process b/a {b_al / a_al:.4f}")
        aa, a2a = get(f"{mode} a/a' no change", "ratio"), get(f"{mode} a'/a no change", "ratio")
        cis = [res.get(f"{mode} {x} no change", {}).get("ci", [math.nan, math.nan]) for x in ("a/a'", "a'/a")]
        if mode == "graph":
            same = res.get("graph a/a same model", {})
            lines.append(f"DIAG {kind} graph: the same model on both sides b/a {get('graph a/a same model', 'ratio'):.4f} "
                         f"(CI {same.get('ci', [math.nan] * 2)[0]:.4f}..{same.get('ci', [math.nan] * 2)[1]:.4f}): "
                         f"a one-sided bias of the harness itself, without any placement difference")
        why = ("neither differs from 1 beyond its interval: no one-sided bias shown"
               if all(lo <= 1.0 <= hi for lo, hi in cis) else
               "the second side (position) reads slower" if aa > 1 and a2a > 1 else
               "the first side (position) reads slower" if aa < 1 and a2a < 1 else
               "the copy allocated later (a') reads slower: placement" if aa > 1 > a2a else
               "the copy allocated first (a) reads slower: placement")
        lines.append(f"DIAG {kind} {mode}: no change a/a' {aa:.4f}, a'/a {a2a:.4f}: {why} "
                     f"(order effects {get(f'{mode} a/a' + chr(39) + ' no change', 'order_effect'):.4f} / "
                     f"{get(f'{mode} a' + chr(39) + '/a no change', 'order_effect'):.4f})")
    sep = res.get(f"{g} separate ratio")
    if sep is not None:
        runs = res[f"{g} separate processes"]
        a_fresh = (runs[0]["us"] + runs[3]["us"]) / 2
        lines.append(f"DIAG {kind} graph: separate processes b/a {sep:.4f} vs interleaved "
                     f"{get('graph a/b interleaved', 'ratio'):.4f}; a alone in a fresh process {a_fresh:.2f} us vs "
                     f"{get('graph a alone', 'us'):.2f} us alone here (with the other models loaded)")
    lines.append(f"DIAG {kind} graph: b/a with lead-in {get('graph a/b interleaved', 'ratio'):.4f}, without "
                 f"{get('graph a/b no lead-in', 'ratio'):.4f} (first iterations of a block / its median: "
                 f"{get('graph a/b no lead-in', 'head_a'):.3f} a, {get('graph a/b no lead-in', 'head_b'):.3f} b "
                 f"without, {get('graph a/b interleaved', 'head_a'):.3f} / {get('graph a/b interleaved', 'head_b'):.3f} "
                 f"with); 250 ms blocks {get('graph a/b 250ms blocks', 'ratio'):.4f} (a {get('graph a/b 250ms blocks', 'a_us'):.2f} us)")
    lines.append(f"DIAG {kind}: graph replay b/a {get('graph a/b interleaved', 'ratio'):.4f} vs eager "
                 f"{get('eager a/b interleaved', 'ratio'):.4f}; timed_as {res.get('graph a/b interleaved', {}).get('timed_as')}")
    return lines


def variant(a: Workload, b: Workload, opts: MeasureOptions, **kw: Any) -> dict[str, Any]:
    """measure_interleaved with one harness knob changed (no policy around it)."""
    a.setup()
    try:
        b.setup()
        try:
            il = measure_interleaved(a, b, MeasureSettings.from_options(opts), **kw)
        finally:
            b.teardown()
    finally:
        a.teardown()
    cmp = compare_pairs(il.ratios("median"), confidence=opts.confidence, seed="variant")
    return dict(ratio=cmp.ratio, ci=list(cmp.ci), pairs=cmp.pairs, a_us=float(np.median(il.a.latency_s)) * 1e6,
                b_us=float(np.median(il.b.latency_s)) * 1e6, **diagnose(il))


def _brief(r: dict[str, Any]) -> str:
    parts = []
    if "ratio" in r:
        parts.append(f"b/a {r['ratio']:.4f} (CI {r['ci'][0]:.4f}..{r['ci'][1]:.4f}, {r['pairs']} pairs)")
        parts.append(f"a {r['a_us']:.2f} us, b {r['b_us']:.2f} us")
        parts.append(f"order {r['order_effect']:.4f}, head a/b {r['head_a']:.3f}/{r['head_b']:.3f}")
        if r.get("timed_as"):
            parts.append(f"timed_as {r['timed_as']}")
    else:
        parts.append(f"median {r['us']:.2f} us (CI +-{r['ci_rel'] * 50:.2f}%)")
    if r.get("sm_mhz") is not None:
        parts.append(f"SM {r['sm_mhz']:.0f} MHz (min {r['sm_mhz_min']:.0f}), {r['power_w']:.0f} W")
    return "; ".join(parts)


def run_gpu(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The sections in order, the JSON written after each (a run cut short
    keeps what it finished)."""
    if not args.cpu_dry_run:
        from pytest_trtperf.gpu import cuda

        cuda.require_gpu()
    runner = bench_runner()
    opts = MeasureOptions(remeasure=False, min_time_s=0.5 if args.quick else 1.0, max_time_s=4.0)
    if args.quick and args.cpu_dry_run:  # every phase once, as fast as it goes (tests/test_interleave_truth.py)
        opts = DRY_QUICK
    out: dict[str, Any] = {}
    if "spin" in args.sections:
        out["spin"] = run_gpu_spins(args, runner, opts)
        save(out)
    if "mlp" in args.sections:
        out["mlp"] = model_pair(args, runner, opts, kind="mlp", sizes=MLP_HIDDEN)
        save(out)
    if "launch" in args.sections:
        out["launch"] = model_pair(args, runner, opts, kind="launch", sizes=(20, 22))
    return out


# --------------------------------------------------------------------- main

def summary(mode: str, doc: dict[str, Any]) -> str:
    """Pass counts per section: ratio in bound, swap reciprocal, absolute."""
    lines = []
    groups = ([(c["name"], c["rows"]) for c in doc["conditions"]] if mode == "host"
              else [("spin kernels", doc["spin"]["rows"])] if "spin" in doc else [])
    for name, rows in groups:
        n = len(rows)
        worst = max((abs(r["error_pct"]) for r in rows), default=math.nan)
        lines.append(f"SUMMARY {mode} {name}: ratio in bound {sum(r['ok'] for r in rows)}/{n}, swap reciprocal "
                     f"{sum(r['swap_ok'] for r in rows)}/{n}, absolute vs alone {sum(r['abs_ok'] for r in rows)}/{n}; "
                     f"informative (bound <= {INFORMATIVE:.0%}) {sum(r['informative'] for r in rows)}/{n}; "
                     f"worst |error| {worst:.3f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("host", "gpu", "side"))
    ap.add_argument("--burners", type=int, default=0, help="host: busy processes for a second pass")
    ap.add_argument("--quick", action="store_true", help="200 us only, shorter measurements")
    ap.add_argument("--cpu-dry-run", action="store_true", help="gpu: every phase with host stand-ins")
    ap.add_argument("--sections", default="spin,mlp,launch", help="gpu: which of spin,mlp,launch")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--kind", default="mlp", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=16384, help=argparse.SUPPRESS)
    ap.add_argument("--graph", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--min-time", type=float, default=2.0, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.sections = tuple(s.strip() for s in args.sections.split(","))
    if args.mode == "side":
        run_side(args)
        return 0
    started = time.time()
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / f"interleave_truth_{args.mode}.json"

    def save(doc: dict[str, Any]) -> None:
        doc.update(mode=args.mode, argv=sys.argv,
                   date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   machine=f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cpus",
                   python=platform.python_version(), load=os.getloadavg(), seconds=time.time() - started,
                   dry_run=bool(args.cpu_dry_run))
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1, default=float))

    try:
        doc = run_host(args) if args.mode == "host" else run_gpu(args, save)
    except BackendUnavailable as exc:  # no GPU, no torch: one line, not a traceback
        print(f"interleave_truth {args.mode}: {exc} (--cpu-dry-run runs every phase with host stand-ins)",
              file=sys.stderr)
        return 2
    save(doc)
    text = summary(args.mode, doc)
    print(text, flush=True)
    if out is not None:
        out.with_suffix(".txt").write_text(text + "\n")
        print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
