"""Gate quality: false-alarm rate, detection power and time to verdict of our
regression rule against the simple rules peers use, on the same real data.

Two steps, so that tuning never needs new device time:

1. ``collect-cpu`` / ``collect-gpu`` (expensive): many fresh processes, each
   measuring every workload at every injected slowdown level in shuffled
   "slots" of a few seconds (a no-change level twice). Every sample of every
   slot is stored with its wall-clock position (and, on a GPU, the NVML power,
   SM clock and clock-event reasons over time) in one NPZ file.
2. ``evaluate`` (cheap, offline): baseline/candidate pairs are formed ACROSS
   processes (baseline from process i, candidate from process j != i, as CI
   sees it: a fresh process carries its own layout/frequency offset). Each
   rule is replayed on the recorded samples. Our rule runs the real
   ``measure.measure`` (adaptive stop) on a replayed clock, then the real
   ``stats.compress`` / ``stats.compare`` / ``stats.decide``, and re-measures
   on the samples that follow, through ``runner.confirm`` (the plugin's own policy).

Peers, on the same samples and tolerance:

* ``pytest-benchmark``: ``--benchmark-compare-fail=median:X%`` after its
  default measurement (no warm-up, 1 s, >= 5 rounds): current median worse
  than the baseline median by more than X% fails.
* ``trtexec-style``: 200 ms warm-up, then ``--duration=3`` (clamped to what a
  slot holds), one median compared with one median.

Usage (from the repository root)::

    PYTHONPATH=$PWD python bench/gate_quality.py collect-cpu --procs 20 --out bench/data/gate_quality_cpu_raw.npz
    PYTHONPATH=$PWD python bench/gate_quality.py collect-gpu --procs 6 --out $OUT/gate_quality_gpu_raw.npz
    PYTHONPATH=$PWD python bench/gate_quality.py evaluate bench/data/gate_quality_cpu_raw.npz --json out.json

Never changes GPU settings.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.core import measure as measure_mod
from pytest_trtperf.core import noise
from pytest_trtperf.core import stats
from pytest_trtperf.core.config import MeasureOptions  # noqa: E402
from pytest_trtperf.core.measure import MeasureSettings, measure  # noqa: E402
from pytest_trtperf.core.results import Distribution  # noqa: E402
from pytest_trtperf.pipeline.runner import confirm  # noqa: E402
from pytest_trtperf.core.workload import Batch  # noqa: E402

#: Injected slowdowns (fractions); 0.0 appears twice per process so the
#: within-process repeatability can be told apart from the process offset.
LEVELS = (0.0, 0.0, 0.01, 0.02, 0.03, 0.05, 0.10)
SLOWDOWNS = (0.01, 0.02, 0.03, 0.05, 0.10)
#: NVML clock-event reason bits that mean "slowed by power or heat".
POWER_BITS = 0x4 | 0x80  # SW power cap, HW power brake
THERMAL_BITS = 0x20 | 0x40  # SW / HW thermal slowdown
HW_SLOWDOWN_BIT = 0x8


# =====================================================================
# Recording
# =====================================================================


class Recorder:
    """Workload proxy that keeps every batch ``measure`` asks for, with its
    host wall-clock position, so a slot can be replayed exactly later."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.inferences_per_iteration = inner.inferences_per_iteration
        self.lat: list[np.ndarray] = []
        self.t0: list[float] = []
        self.t1: list[float] = []

    def setup(self) -> None:
        self.inner.setup()

    def teardown(self) -> None:
        self.inner.teardown()

    def identity(self) -> Any:
        return self.inner.identity()

    def notes(self) -> tuple[str, ...]:
        return tuple(self.inner.notes())

    def run(self, n: int) -> Batch:
        t0 = time.perf_counter()
        b = self.inner.run(n)
        t1 = time.perf_counter()
        self.lat.append(np.asarray(b.latency_s, dtype=np.float64))
        self.t0.append(t0)
        self.t1.append(t1)
        return b


def record_slot(workload: Any, slot_s: float) -> dict[str, np.ndarray]:
    """``slot_s`` seconds of back-to-back samples through ``measure.measure``
    (fixed duration, no warm-up: the workload is already warm)."""
    rec = Recorder(workload)
    measure(rec, MeasureSettings(warmup_s=0.0, min_warmup_iterations=1, duration_s=slot_s))
    n = np.array([a.size for a in rec.lat], dtype=np.int64)
    return dict(lat=np.concatenate(rec.lat), batch_n=n, batch_t0=np.array(rec.t0), batch_t1=np.array(rec.t1))


class NvmlSampler:
    """Power, SM clock and clock-event reasons every ``interval_s`` (pynvml);
    read only, never sets anything."""

    def __init__(self, interval_s: float = 0.025) -> None:
        self.interval_s = interval_s
        self.rows: list[tuple[float, float, float, float, int]] = []
        self.error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)  # the one visible GPU
            reasons = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
        except Exception as exc:  # noqa: BLE001 - no NVML: record that, measure anyway
            self.error = f"{type(exc).__name__}: {exc}"
            return

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.rows.append((time.perf_counter(), pynvml.nvmlDeviceGetPowerUsage(h) / 1e3,
                                      float(pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)),
                                      float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),
                                      int(reasons(h))))
                except Exception as exc:  # noqa: BLE001
                    self.error = f"{type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> np.ndarray:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return np.array(self.rows, dtype=np.float64).reshape(-1, 5)


def write_child(path: Path, proc: int, slots: list[dict[str, Any]], nvml_rows: np.ndarray,
                meta: dict[str, Any]) -> None:
    """One process's slots as flat arrays (what ``merge`` concatenates)."""
    lat = np.concatenate([s["lat"] for s in slots]) if slots else np.zeros(0)
    np.savez_compressed(
        path,
        lat=lat.astype(np.float32),
        slot_len=np.array([s["lat"].size for s in slots], dtype=np.int64),
        slot_workload=np.array([s["workload"] for s in slots], dtype="U32"),
        slot_level=np.array([s["level"] for s in slots], dtype=np.float64),
        slot_sustained=np.array([s.get("sustained", False) for s in slots], dtype=bool),
        slot_proc=np.full(len(slots), proc, dtype=np.int64),
        batch_slot=np.concatenate([np.full(s["batch_n"].size, i) for i, s in enumerate(slots)]).astype(np.int64)
        if slots else np.zeros(0, np.int64),
        batch_n=np.concatenate([s["batch_n"] for s in slots]) if slots else np.zeros(0, np.int64),
        batch_t0=np.concatenate([s["batch_t0"] for s in slots]) if slots else np.zeros(0),
        batch_t1=np.concatenate([s["batch_t1"] for s in slots]) if slots else np.zeros(0),
        nvml=nvml_rows,
        meta=np.array(json.dumps(meta)),
    )


def level_order(proc: int) -> list[float]:
    """Shuffled per process, so drift and load bursts spread over all levels."""
    order = list(LEVELS)
    np.random.default_rng(1000 + proc).shuffle(order)
    return order


# ------------------------------------------------------------- host child

HOST_WORKLOADS = {"sha256-300k": 300_000, "sha256-60k": 60_000}
_HOST_DATA = memoryview(b"\x5a" * 8_000_000)


def host_workload(nbytes: int) -> Any:
    from pytest_trtperf.workloads.host import HostWorkload

    data = _HOST_DATA[:nbytes]
    return HostWorkload(lambda: hashlib.sha256(data).digest())


def child_cpu(args: argparse.Namespace) -> None:
    slots = []
    for level in level_order(args.proc):
        for name, nbytes in HOST_WORKLOADS.items():
            w = host_workload(int(round(nbytes * (1.0 + level))))
            w.setup()
            measure(w, MeasureSettings(warmup_s=0.2, duration_s=0.001))  # warm, as trt_bench does
            slots.append(dict(workload=name, level=level, **record_slot(w, args.slot)))
            w.teardown()
    write_child(Path(args.out), args.proc, slots, np.zeros((0, 5)), dict(load=os.getloadavg()))


# -------------------------------------------------------------- GPU child


def _kernels() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_kernels", ROOT / "tests/gpu/gpu_kernels.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.Kernels()


class TorchEventWorkload:
    """Fallback timer (CUDA events through torch directly), used only when
    ``TorchWorkload`` / ``CudaWorkload`` fail on the device."""

    kind = "torch"
    inferences_per_iteration = 1

    def __init__(self, fn: Callable[[], Any]) -> None:
        import torch

        self.torch, self.fn = torch, fn

    def setup(self) -> None:
        self.fn()
        self.torch.cuda.synchronize()

    def run(self, n: int) -> Batch:
        torch = self.torch
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        t0 = time.perf_counter()
        for a, b in ev:
            a.record()
            self.fn()
            b.record()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        return Batch(latency_s=np.array([a.elapsed_time(b) for a, b in ev]) / 1e3, wall_s=wall)

    def teardown(self) -> None:
        pass

    def identity(self) -> dict[str, Any]:
        return {"timer": "torch-events"}

    def notes(self) -> tuple[str, ...]:
        return ()


class GpuWorkloads:
    """The two GPU workloads at any injected slowdown: a 100 us kernel spinning
    on %globaltimer (slowdown = longer spin), and a 4096^3 FP16 GEMM followed
    by a spin kernel whose length is the injected fraction of the GEMM's time
    (level 0 has a 0 ns spin, so the extra work is exactly the added spin)."""

    SPIN_NS = 100_000

    def __init__(self, notes: list[str]) -> None:
        import torch

        self.torch = torch
        self.k = _kernels()
        g = torch.Generator(device="cuda").manual_seed(0)
        self.a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16, generator=g)
        self.b = torch.randn(4096, 4096, device="cuda", dtype=torch.float16, generator=g)
        self.c = torch.empty(4096, 4096, device="cuda", dtype=torch.float16)
        self.notes = notes
        self.gemm_ns = 0.0

    def spin(self, level: float) -> Any:
        from pytest_trtperf.workloads.cuda import CudaWorkload

        ns = int(round(self.SPIN_NS * (1.0 + level)))
        k = self.k
        return CudaWorkload(lambda h: k.spin(h, ns))

    def gemm_fn(self, extra_ns: int) -> Callable[[], None]:
        torch, k, a, b, c = self.torch, self.k, self.a, self.b, self.c

        def fn() -> None:
            torch.matmul(a, b, out=c)
            k.spin(torch.cuda.current_stream().cuda_stream, extra_ns)
        return fn

    def gemm(self, level: float) -> Any:
        from pytest_trtperf.workloads.torch import TorchWorkload

        return TorchWorkload(self.gemm_fn(int(round(self.gemm_ns * level))))

    def calibrate(self) -> None:
        """The GEMM's own time in this process (median of 0.3 s), so the
        injected spin is the intended fraction of it."""
        w = self.make("gemm", 0.0)
        m = measure(w, MeasureSettings(warmup_s=0.2, duration_s=0.3))
        w.teardown()
        self.gemm_ns = float(np.median(m.latency_s)) * 1e9

    def make(self, name: str, level: float) -> Any:
        """Set up a workload; fall back to plain torch events if ours fail."""
        w = self.spin(level) if name == "spin-100us" else self.gemm(level)
        try:
            w.setup()
            return w
        except Exception as exc:  # noqa: BLE001 - keep the study going, say so
            note = f"{name}: {type(w).__name__} failed ({type(exc).__name__}: {exc}); torch events used"
            if note not in self.notes:
                self.notes.append(note)
            k, torch = self.k, self.torch
            if name == "spin-100us":
                ns = int(round(self.SPIN_NS * (1.0 + level)))
                fb = TorchEventWorkload(lambda: k.spin(torch.cuda.current_stream().cuda_stream, ns))
            else:
                fb = TorchEventWorkload(self.gemm_fn(int(round(self.gemm_ns * level))))
            fb.setup()
            return fb


GPU_WORKLOADS = ("spin-100us", "gemm-4096-fp16")


def child_gpu(args: argparse.Namespace) -> None:
    notes: list[str] = []
    sampler = NvmlSampler()
    sampler.start()
    slots: list[dict[str, Any]] = []
    try:
        gw = GpuWorkloads(notes)
        gw.calibrate()
        if args.sustained > 0:
            # Back-to-back GEMM for args.sustained seconds, levels cycling, as a
            # long suite on a hot card sees it.
            cycle = (0.0, 0.05, 0.0, 0.10, 0.0, 0.03)
            t_end = time.perf_counter() + args.sustained
            i = 0
            while time.perf_counter() < t_end:
                level = cycle[i % len(cycle)]
                w = gw.make("gemm-4096-fp16", level)
                slots.append(dict(workload="gemm-4096-fp16", level=level, sustained=True,
                                  **record_slot(w, args.slot)))
                w.teardown()
                i += 1
        else:
            for level in level_order(args.proc):
                for name in GPU_WORKLOADS:
                    w = gw.make(name, level)
                    measure(w, MeasureSettings(warmup_s=0.2, duration_s=0.001))
                    slots.append(dict(workload=name, level=level, **record_slot(w, args.slot)))
                    w.teardown()
    except Exception as exc:  # noqa: BLE001 - keep what was recorded
        notes.append(f"child stopped early: {type(exc).__name__}: {exc}")
    rows = sampler.stop()
    meta = dict(notes=notes, nvml_error=sampler.error, gemm_ns=getattr(locals().get("gw"), "gemm_ns", None))
    write_child(Path(args.out), args.proc, slots, rows, meta)


# ---------------------------------------------------------------- driver


def machine_info(kind: str) -> dict[str, Any]:
    info: dict[str, Any] = dict(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                python=platform.python_version(), cores=os.cpu_count())
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    if kind == "gpu":
        with contextlib.suppress(Exception):
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(h)
            drv = pynvml.nvmlSystemGetDriverVersion()
            info["gpu"] = name.decode() if isinstance(name, bytes) else name
            info["driver"] = drv.decode() if isinstance(drv, bytes) else drv
            info["power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1e3
    return info


def merge(parts: list[Path], out: Path, meta: dict[str, Any]) -> None:
    """Concatenate the children's files, renumbering slots."""
    keys = ("lat", "slot_len", "slot_workload", "slot_level", "slot_sustained", "slot_proc",
            "batch_slot", "batch_n", "batch_t0", "batch_t1")
    acc: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    nv: list[np.ndarray] = []
    child_meta = []
    n_slots = 0
    for p in parts:
        with np.load(p) as z:
            for k in keys:
                a = z[k]
                acc[k].append(a + n_slots if k == "batch_slot" else a)
            rows = z["nvml"]
            nv.append(np.column_stack([np.full(len(rows), int(z["slot_proc"][0]) if len(z["slot_proc"]) else -1),
                                       rows]) if len(rows) else np.zeros((0, 6)))
            child_meta.append(json.loads(str(z["meta"])))
            n_slots += len(z["slot_len"])
    merged = {k: np.concatenate(v) if v else np.zeros(0) for k, v in acc.items()}
    meta = dict(meta, children=child_meta)
    np.savez_compressed(out, **merged, nvml=np.concatenate(nv) if nv else np.zeros((0, 6)),
                        meta=np.array(json.dumps(meta)))


def collect(args: argparse.Namespace, kind: str) -> None:
    """Run the children one after another (one GPU, or interleaved on a shared
    CPU so load changes hit every level alike) within a time budget."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gate_quality_"))
    t_start = time.monotonic()
    loads_before = os.getloadavg()
    parts: list[Path] = []
    per_proc = None
    sustained_cost = (args.sustained + 15.0) if kind == "gpu" and args.sustained > 0 else 0.0
    jobs = [(p, 0.0) for p in range(args.procs)]
    if sustained_cost:
        jobs.append((args.procs, args.sustained))
    for proc, sustained in jobs:
        elapsed = time.monotonic() - t_start
        reserve = sustained_cost if not sustained else 0.0
        need = (per_proc or 0.0) if not sustained else sustained_cost
        if args.budget and elapsed + need + reserve > args.budget:
            print(f"[gate_quality] budget: skipping process {proc} (elapsed {elapsed:.0f} s)", flush=True)
            continue
        part = tmp / f"p{proc}.npz"
        cmd = [sys.executable, __file__, f"_child-{kind}", "--proc", str(proc), "--slot", str(args.slot),
               "--out", str(part), "--sustained", str(sustained)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt_s = time.monotonic() - t0
        if not sustained:
            per_proc = max(per_proc or 0.0, dt_s)
        tail = (r.stdout + r.stderr).strip().splitlines()[-3:]
        print(f"[gate_quality] process {proc}{' (sustained)' if sustained else ''}: rc={r.returncode} "
              f"{dt_s:.1f} s {' | '.join(tail)}", flush=True)
        if part.exists():
            parts.append(part)
    meta = dict(machine_info(kind), kind=kind, slot_s=args.slot, levels=list(LEVELS),
                loadavg_before=loads_before, loadavg_after=os.getloadavg(),
                collect_s=round(time.monotonic() - t_start, 1))
    merge(parts, out, meta)
    print(f"[gate_quality] wrote {out} ({out.stat().st_size / 1e6:.2f} MB) from {len(parts)} processes", flush=True)


# =====================================================================
# Offline evaluation
# =====================================================================


@dataclass
class Slot:
    """One recorded slot: samples (s) and each sample's end on the host clock."""

    idx: int
    proc: int
    workload: str
    level: float
    sustained: bool
    lat: np.ndarray
    t_end: np.ndarray  # host clock at the end of each sample (s)
    throttled_at: np.ndarray | None = None  # per sample: power/thermal reason seen


@dataclass
class Data:
    slots: list[Slot]
    meta: dict[str, Any]
    nvml: np.ndarray


def _sample_times(n: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """End time of each sample, spreading each batch's wall time evenly."""
    out = []
    for k, a, b in zip(n, t0, t1, strict=False):
        out.append(a + (b - a) * (np.arange(1, k + 1) / max(k, 1)))
    return np.concatenate(out) if out else np.zeros(0)


def load(path: Path) -> Data:
    with np.load(path) as npz:
        z = {k: npz[k] for k in npz.files}
        lat = z["lat"].astype(np.float64)
        lens = z["slot_len"]
        starts = np.concatenate([[0], np.cumsum(lens)])
        nv = z["nvml"]
        meta = json.loads(str(z["meta"]))
        slots = []
        for i in range(lens.size):
            sel = z["batch_slot"] == i
            t_end = _sample_times(z["batch_n"][sel], z["batch_t0"][sel], z["batch_t1"][sel])
            s = Slot(idx=i, proc=int(z["slot_proc"][i]), workload=str(z["slot_workload"][i]),
                     level=float(z["slot_level"][i]), sustained=bool(z["slot_sustained"][i]),
                     lat=lat[starts[i]:starts[i + 1]], t_end=t_end)
            s.throttled_at = _throttle_per_sample(s, nv)
            slots.append(s)
    return Data(slots=slots, meta=meta, nvml=nv)


def _throttle_per_sample(s: Slot, nv: np.ndarray) -> np.ndarray | None:
    """For each sample: was a power/thermal reason reported in the NVML reads
    around it (same process, nearest read at or after it)?"""
    if nv.size == 0:
        return None
    rows = nv[nv[:, 0] == s.proc]
    if rows.size == 0:
        return None
    t, reasons = rows[:, 1], rows[:, 5].astype(np.int64)
    bad = (reasons & (POWER_BITS | THERMAL_BITS)) != 0
    j = np.clip(np.searchsorted(t, s.t_end), 0, len(t) - 1)
    return bad[j]


# ------------------------------------------------------------- replay


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Exhausted(Exception):
    pass


class Replay:
    """A workload that hands back recorded samples and advances a fake clock by
    their recorded wall time, so ``measure.measure`` runs as it did live."""

    kind = "host"
    inferences_per_iteration = 1

    def __init__(self, slot: Slot, start: int, clock: _Clock) -> None:
        self.slot, self.pos, self.clock = slot, start, clock
        self.exhausted = False
        t = slot.t_end
        self.wall = np.diff(np.concatenate([[t[0] - slot.lat[0]], t])) if t.size else t

    def run(self, n: int) -> Batch:
        end = min(self.pos + n, self.slot.lat.size)
        if end == self.pos:
            self.exhausted = True
            raise Exhausted(self.pos)
        wall = float(self.wall[self.pos:end].sum())
        self.clock.now += wall
        lat = self.slot.lat[self.pos:end]
        self.pos = end
        return Batch(latency_s=lat, wall_s=wall)

    def setup(self) -> None: ...

    def teardown(self) -> None: ...


@contextlib.contextmanager
def _fake_time(clock: _Clock) -> Iterator[None]:
    real = measure_mod.time
    measure_mod.time = clock  # type: ignore[assignment]
    try:
        yield
    finally:
        measure_mod.time = real


@dataclass(frozen=True)
class Outcome:
    """One replayed measurement."""

    dist: Distribution
    samples: np.ndarray
    start: int
    end: int
    seconds: float  # warm-up + measured, wall
    truncated: bool
    throttled: bool


def replay_measure(slot: Slot, start: int, settings: MeasureSettings, points: int) -> Outcome:
    reused = start > slot.lat.size - 10
    if reused:  # nothing left in the slot: re-measure on its second half (flagged as cut short)
        start = slot.lat.size // 2
    clock = _Clock()
    w = Replay(slot, start, clock)
    try:
        with _fake_time(clock):
            lat = measure(w, settings).latency_s  # type: ignore[arg-type]
    except Exhausted:
        # The slot ran out: keep what was measured after the warm-up time.
        t = slot.t_end[start:] - (slot.t_end[start] - slot.lat[start])
        first = start + int(np.searchsorted(t, settings.warmup_s))
        first = min(first, max(slot.lat.size - 3, start))
        lat = slot.lat[first:]
    end = w.pos
    t0 = slot.t_end[start] - slot.lat[start] if start < slot.t_end.size else 0.0
    seconds = float(slot.t_end[end - 1] - t0) if end > start else 0.0
    thr = bool(slot.throttled_at is not None and slot.throttled_at[start:end].any())
    return Outcome(dist=compress_points(lat, points), samples=lat, start=start, end=end, seconds=seconds,
                   truncated=w.exhausted or reused, throttled=thr)


def compress_points(samples_s: np.ndarray, points: int) -> Distribution:
    """``stats.compress`` at its own size, or the same form at another size."""
    if points == stats.QUANTILE_POINTS:
        return stats.compress(samples_s)
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    qs = np.percentile(ms, np.linspace(0, 100, points))
    return Distribution(n=int(ms.size), quantiles_ms=tuple(float(f"{q:.6g}") for q in qs))


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class OurRule:
    """Our gate with a given set of defaults (``MeasureOptions`` fields)."""

    name: str
    opts: MeasureOptions
    points: int = stats.QUANTILE_POINTS
    throttle_aware: bool = False  # proposal: a throttled final run is not failed
    never_remeasure: bool = False  # not even a run flagged for throttling
    #: The between-run term (issue 11): "prior" = the plugin's default with a
    #: one-run baseline (the prior of the data's workload family), "off" = the
    #: within-run interval alone (the rule before issue 11).
    run_noise: str = "prior"

    def settings(self) -> MeasureSettings:
        return MeasureSettings.from_options(self.opts)


@dataclass(frozen=True)
class MedianRule:
    """A peer: one median against one median, after ``warmup_s`` of the slot,
    over ``duration_s`` (and at least ``min_rounds`` samples)."""

    name: str
    warmup_s: float
    duration_s: float
    min_rounds: int = 5


@dataclass
class Verdict:
    regression: bool
    seconds: float
    remeasured: bool = False
    truncated: bool = False


class Evaluator:
    """Caches replayed measurements: each (slot, start, rule) is measured once."""

    def __init__(self, tolerance: float, kind: str = "gpu") -> None:
        self.tolerance = tolerance
        #: Workload kind for the between-run prior: "host" for CPU data.
        self.kind = "host" if kind == "cpu" else "cuda"
        self._cache: dict[tuple[int, int, str], Outcome] = {}

    def outcome(self, slot: Slot, start: int, rule: OurRule) -> Outcome:
        key = (slot.idx, start, rule.name)
        if key not in self._cache:
            self._cache[key] = replay_measure(slot, start, rule.settings(), rule.points)
        return self._cache[key]

    def ours(self, base: Slot, cand: Slot, rule: OurRule) -> Verdict:
        """The plugin's own policy (``runner.confirm``) over replayed windows:
        a re-measurement continues where the first measurement ended."""
        b = self.outcome(base, 0, rule)
        runs: list[Outcome] = []

        def measure_once() -> Outcome:
            runs.append(self.outcome(cand, runs[-1].end if runs else 0, rule))
            return runs[-1]

        c, status, remeasured = confirm(
            measure_once, lambda c: self._decide(b, c, rule, cand), is_regression=lambda s: s == "regression",
            remeasure=rule.opts.remeasure and not rule.never_remeasure,
            flagged=lambda c: c.throttled and not rule.never_remeasure)
        if status == "regression" and rule.throttle_aware and c.throttled:
            status = "inconclusive"
        return Verdict(status == "regression", sum(r.seconds for r in runs), remeasured,
                       any(r.truncated for r in runs))

    def _decide(self, b: Outcome, c: Outcome, rule: OurRule, cand: Slot) -> str:
        cmp = stats.compare(b.dist, c.dist, metric=rule.opts.metric, confidence=rule.opts.confidence,
                            seed=f"{cand.idx}:{c.start}")
        if rule.run_noise == "off":
            return stats.decide(cmp, self.tolerance)
        # The gate's rule (gate.judge) with a one-run baseline: the prior of the family.
        term = noise.estimate(self.kind, [1.0])
        j = noise.widen(cmp.change, cmp.ci, term.allowance(rule.opts.confidence), self.tolerance)
        return noise.status(j, self.tolerance)

    def peer(self, base: Slot, cand: Slot, rule: MedianRule) -> Verdict:
        mb, _, _ = self._window_median(base, rule)
        mc, seconds, trunc = self._window_median(cand, rule)
        return Verdict(mc / mb - 1.0 > self.tolerance, seconds, False, trunc)

    @staticmethod
    def _window_median(s: Slot, rule: MedianRule) -> tuple[float, float, bool]:
        t = s.t_end - (s.t_end[0] - s.lat[0])
        i0 = int(np.searchsorted(t, rule.warmup_s))
        i1 = max(int(np.searchsorted(t, rule.warmup_s + rule.duration_s)), i0 + rule.min_rounds)
        trunc = i1 > s.lat.size or t[-1] < rule.warmup_s + rule.duration_s * 0.999
        i1 = min(i1, s.lat.size)
        return float(np.median(s.lat[i0:i1])), float(t[i1 - 1]), trunc


# ---------------------------------------------------------------- study


def pairs(data: Data, workload: str, level: float, sustained: bool = False) -> list[tuple[Slot, Slot]]:
    """(baseline, candidate) across processes: baselines are every no-change
    slot of a normal process; candidates every slot at ``level`` of another
    process (the sustained-load process for ``sustained``)."""
    ws = [s for s in data.slots if s.workload == workload]
    bases = [s for s in ws if s.level == 0.0 and not s.sustained]
    cands = [s for s in ws if abs(s.level - level) < 1e-9 and s.sustained == sustained]
    return [(b, c) for b in bases for c in cands if b.proc != c.proc]


def process_offsets(data: Data, workload: str) -> dict[str, float]:
    """How much a fresh process moves the median, against how much two windows
    of one process differ: the noise source in-process repetition cannot see."""
    by_proc: dict[int, list[float]] = {}
    for s in data.slots:
        if s.workload == workload and s.level == 0.0 and not s.sustained:
            by_proc.setdefault(s.proc, []).append(float(np.log(np.median(s.lat))))
    twins = [v for v in by_proc.values() if len(v) == 2]
    within = float(np.std([a - b for a, b in twins], ddof=1) / np.sqrt(2)) if len(twins) > 2 else float("nan")
    means = [float(np.mean(v)) for v in by_proc.values()]
    total = float(np.std(means, ddof=1)) if len(means) > 2 else float("nan")
    between = float(np.sqrt(max(total ** 2 - within ** 2 / 2, 0.0)))
    spread = float(np.exp(max(means) - min(means)) - 1.0) if means else float("nan")
    return dict(between_sd=between, within_sd=within, max_spread=spread, processes=len(by_proc))


def true_slowdowns(data: Data, workload: str) -> dict[float, float]:
    """Measured effect of each injected level: median over processes of the
    level's slot median over the same process's no-change median."""
    out: dict[float, float] = {}
    for lv in SLOWDOWNS:
        ratios = []
        for p in {s.proc for s in data.slots if not s.sustained}:
            ps = [s for s in data.slots if s.proc == p and s.workload == workload and not s.sustained]
            base = [np.median(s.lat) for s in ps if s.level == 0.0]
            cur = [np.median(s.lat) for s in ps if abs(s.level - lv) < 1e-9]
            if base and cur:
                ratios.append(cur[0] / np.mean(base) - 1.0)
        if ratios:
            out[lv] = float(np.median(ratios))
    return out


@dataclass
class Row:
    rule: str
    workload: str
    case: str  # "no change", "+5%", "sustained no change", ...
    pairs: int
    rate: float
    median_s: float
    remeasured: float
    truncated: float


def study(data: Data, rules: Sequence[Any], tolerance: float,
          workloads: Sequence[str] | None = None) -> list[Row]:
    ev = Evaluator(tolerance, str(data.meta.get("kind", "gpu")))
    names = workloads or sorted({s.workload for s in data.slots})
    rows: list[Row] = []
    cases = [("no change", 0.0, False)] + [(f"+{int(lv * 100)}%", lv, False) for lv in SLOWDOWNS]
    if any(s.sustained for s in data.slots):
        cases += [("sustained: no change", 0.0, True), ("sustained: +5%", 0.05, True),
                  ("sustained: +10%", 0.10, True)]
    for wl in names:
        for case, lv, sus in cases:
            ps = pairs(data, wl, lv, sus)
            if not ps:
                continue
            for rule in rules:
                vs = [ev.ours(b, c, rule) if isinstance(rule, OurRule) else ev.peer(b, c, rule) for b, c in ps]
                rows.append(Row(rule=rule.name, workload=wl, case=case, pairs=len(vs),
                                rate=float(np.mean([v.regression for v in vs])),
                                median_s=float(np.median([v.seconds for v in vs])),
                                remeasured=float(np.mean([v.remeasured for v in vs])),
                                truncated=float(np.mean([v.truncated for v in vs]))))
    return rows


def default_rules(tolerance: float) -> list[Any]:
    base = MeasureOptions(tolerance=tolerance)
    return [
        OurRule("ours (defaults)", base),
        OurRule("ours, without the between-run term (before issue 11)", base, run_noise="off"),
        MedianRule("pytest-benchmark median", warmup_s=0.0, duration_s=1.0),
        MedianRule("trtexec-style median", warmup_s=0.2, duration_s=3.0),
    ]


def tuning_rules(tolerance: float) -> list[Any]:
    """The grid the defaults were chosen from (all offline)."""
    base = MeasureOptions(tolerance=tolerance)
    r = dataclasses.replace
    return [
        OurRule("ours (defaults)", base),
        OurRule("no re-measure unless throttled", r(base, remeasure=False)),
        OurRule("never re-measure", base, never_remeasure=True),
        OurRule("confidence 0.95", r(base, confidence=0.95)),
        OurRule("confidence 0.999", r(base, confidence=0.999)),
        OurRule("min_time 0.1 s", r(base, min_time_s=0.1)),
        OurRule("min_time 0.25 s", r(base, min_time_s=0.25)),
        OurRule("min_time 0.5 s (old default)", r(base, min_time_s=0.5)),
        OurRule("min_time 1.0 s", r(base, min_time_s=1.0)),
        OurRule("warm-up 1 s", r(base, warmup_s=1.0)),
        OurRule("target CI 0.5%", r(base, target_rel_ci=0.005)),
        OurRule("target CI 2%", r(base, target_rel_ci=0.02)),
        OurRule("max_time 1 s", r(base, max_time_s=1.0)),
        OurRule("1001 quantiles", base, points=1001),
        OurRule("21 quantiles", base, points=21),
        OurRule("throttle-aware", base, throttle_aware=True),
    ]


# ---------------------------------------------------------------- report


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def markdown(rows: list[Row], data: Data, tolerance: float) -> str:
    """Side-by-side table: rules as rows, cases as columns, per workload."""
    out: list[str] = []
    for wl in sorted({r.workload for r in rows}):
        rs = [r for r in rows if r.workload == wl]
        cases = list(dict.fromkeys(r.case for r in rs))
        rules = list(dict.fromkeys(r.rule for r in rs))
        off = process_offsets(data, wl)
        truth = true_slowdowns(data, wl)
        out.append(f"\n**{wl}**, tolerance {_pct(tolerance)}; process offset sd {_pct(off['between_sd'])} "
                   f"(within-process window-to-window sd {_pct(off['within_sd'])}, largest spread of "
                   f"process medians {_pct(off['max_spread'])}, {off['processes']} processes); measured "
                   f"effect of the injected levels: "
                   + ", ".join(f"+{int(k * 100)}% -> {v * 100:+.2f}%" for k, v in truth.items()) + "\n")
        head = "| rule | " + " | ".join(f"{c} ({next(r.pairs for r in rs if r.case == c)} pairs)"
                                         for c in cases) + " | median s/verdict (no change / +5%) | re-measured (no change / +5%) |"
        out.append(head)
        out.append("|" + "---|" * (len(cases) + 3))
        for rule in rules:
            cells = []
            by = {r.case: r for r in rs if r.rule == rule}
            for c in cases:
                r = by.get(c)
                cells.append("-" if r is None else _pct(r.rate) + ("*" if r.truncated > 0.05 else ""))
            nc, p5 = by.get("no change"), by.get("+5%")
            secs = f"{nc.median_s:.2f} / {p5.median_s:.2f}" if nc and p5 else "-"
            rem = f"{_pct(nc.remeasured)} / {_pct(p5.remeasured)}" if nc and p5 else "-"
            out.append(f"| {rule} | " + " | ".join(cells) + f" | {secs} | {rem} |")
    out.append("\nCells: share of pairs that FAILED (no change: false alarms; +x%: detections). "
               "* = more than 5% of those verdicts needed more samples than a slot holds (cut short).")
    return "\n".join(out)


def throttle_summary(data: Data) -> str:
    """What the card did during the sustained-load process and normal ones."""
    nv = data.nvml
    if nv.size == 0:
        return "no NVML data"
    lines = []
    sus = {s.proc for s in data.slots if s.sustained}
    for label, procs in (("normal processes", {s.proc for s in data.slots} - sus), ("sustained load", sus)):
        rows = nv[np.isin(nv[:, 0], list(procs))]
        if rows.size == 0:
            continue
        reasons = rows[:, 5].astype(np.int64)
        lines.append(f"{label}: power median {np.median(rows[:, 2]):.0f} W (max {rows[:, 2].max():.0f} W), "
                     f"SM clock median {np.median(rows[:, 3]):.0f} MHz (min {rows[:, 3].min():.0f}), "
                     f"temp max {rows[:, 4].max():.0f} C, power-cap reason in "
                     f"{_pct(float(np.mean((reasons & POWER_BITS) != 0)))} of reads, thermal in "
                     f"{_pct(float(np.mean((reasons & THERMAL_BITS) != 0)))}, HW slowdown in "
                     f"{_pct(float(np.mean((reasons & HW_SLOWDOWN_BIT) != 0)))}")
    sus_slots = [s for s in data.slots if s.sustained]
    if sus_slots:
        meds = [f"{np.median(s.lat) * 1e6:.0f}" for s in sus_slots if s.level == 0.0]
        lines.append("sustained no-change slot medians (us, in order): " + ", ".join(meds))
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> None:
    data = load(Path(args.data))
    rules = tuning_rules(args.tolerance) if args.tune else default_rules(args.tolerance)
    if args.tune and not args.all_rules:
        rules += default_rules(args.tolerance)[1:]
    t0 = time.perf_counter()
    rows = study(data, rules, args.tolerance, args.workload)
    print(f"machine: {json.dumps({k: v for k, v in data.meta.items() if k != 'children'})}")
    print(f"slots: {len(data.slots)}, processes: {len({s.proc for s in data.slots})}, "
          f"evaluated in {time.perf_counter() - t0:.0f} s")
    notes = sorted({n for c in data.meta.get("children", []) for n in c.get("notes", [])})
    if notes:
        print("child notes: " + "; ".join(notes))
    print(markdown(rows, data, args.tolerance))
    if data.nvml.size:
        print(throttle_summary(data))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(meta=data.meta, tolerance=args.tolerance,
                                                   rows=[dataclasses.asdict(r) for r in rows]), indent=1))


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("collect-cpu", "collect-gpu", "_child-cpu", "_child-gpu"):
        p = sub.add_parser(name)
        p.add_argument("--procs", type=int, default=6)
        p.add_argument("--proc", type=int, default=0)
        p.add_argument("--slot", type=float, default=2.0, help="seconds recorded per level and workload")
        p.add_argument("--sustained", type=float, default=0.0, help="GPU: seconds of the sustained-load process")
        p.add_argument("--budget", type=float, default=0.0, help="stop starting processes after this many s")
        p.add_argument("--out", required=True)
    p = sub.add_parser("evaluate")
    p.add_argument("data")
    p.add_argument("--tolerance", type=float, default=0.03)
    p.add_argument("--tune", action="store_true", help="also evaluate the grid of alternative defaults")
    p.add_argument("--all-rules", action="store_true")
    p.add_argument("--workload", nargs="*", default=None)
    p.add_argument("--json")
    args = ap.parse_args(argv)
    if args.cmd == "collect-cpu":
        collect(args, "cpu")
    elif args.cmd == "collect-gpu":
        collect(args, "gpu")
    elif args.cmd == "_child-cpu":
        child_cpu(args)
    elif args.cmd == "_child-gpu":
        child_gpu(args)
    else:
        evaluate(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
