"""What tracking memory costs, and that it does not reach the timed window (issue 14).

Three measurements:

1. **Allocator call cost**: an allocate + deallocate pair through the tracking
   ``IGpuAllocator`` as the library makes it (the binding's base-class
   ``allocate_async``/``deallocate_async``, i.e. TensorRT's C++ trampoline into
   our Python methods), against the same pair on the allocation functions
   alone. Uses the real ``tensorrt_rtx`` binding when it imports, else the
   test double's dispatch. On a GPU the functions are cudaMalloc/cudaFree; without one,
   libc malloc/free (what is left is the Python callback's own cost).
2. **Timed window, TensorRT** (GPU): a FakeTensorRT engine (real kernels, 50 us
   per layer) measured with the plugin's ``measure()`` with the tracking
   allocator installed and without it (``--no-track`` path: the runtime keeps
   its default), in interleaved rounds (ABAB); medians and their difference,
   and the number of allocator calls made while timed enqueues ran (expected 0:
   static context memory is allocated at context creation).
3. **Timed window, host**: tracemalloc is never on while a host callable is
   timed (the memory calls come after): checked on a measurement by recording
   ``tracemalloc.is_tracing()`` in the callable.

Run from the repository root (about 30 s on a GPU; parts 1 and 3 without one):

    PYTHONPATH=$PWD python bench/memory_overhead.py --json OUT/memory_overhead.json

Never changes GPU settings.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any


from pytest_trtperf.core.config import MeasureSettings  # noqa: E402
from pytest_trtperf.gpu import cuda  # noqa: E402
from pytest_trtperf.core.measure import measure  # noqa: E402
from pytest_trtperf.trt import allocator as allocator_mod  # noqa: E402

PAIRS = 2000
ROUNDS = 6


def _capsule_tools() -> tuple[Callable[[Any], int], Callable[[int], Any]]:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return (lambda c: int(get(c, None))), (lambda p: new(p, None, None))


def allocation_functions() -> tuple[str, Callable[[int], int], Callable[[int], None]]:
    if cuda.is_installed() and cuda.unavailable_reason() is None:
        return "cudaMalloc/cudaFree", cuda.malloc, cuda.free
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return "libc malloc/free (no GPU)", (lambda n: int(libc.malloc(n))), (lambda p: libc.free(p))


def trt_module() -> tuple[str, Any]:
    for name in ("tensorrt_rtx", "tensorrt_rtx_bindings", "tensorrt"):
        try:
            mod = __import__(name)
            if hasattr(mod, "IGpuAllocator"):
                return f"{name} {getattr(mod, '__version__', '?')}", mod
        except ImportError:
            continue
    from tests.fakes import fake_tensorrt_rtx

    return "FakeTensorRT-RTX (no TensorRT installed)", fake_tensorrt_rtx


def allocator_cost(size: int = 1 << 20) -> dict[str, Any]:
    label, malloc, free = allocation_functions()
    module_label, mod = trt_module()
    get, new = _capsule_tools()
    tracker = allocator_mod.make_tracking_allocator(mod, malloc=malloc, free=free)
    base = mod.IGpuAllocator

    def raw() -> None:
        free(malloc(size))

    def tracked() -> None:
        p = get(base.allocate_async(tracker, size, 256, 0, 0))
        base.deallocate_async(tracker, new(p), 0)

    out: dict[str, list[float]] = {"raw": [], "tracked": []}
    for r in range(ROUNDS):
        for name, fn in (("raw", raw), ("tracked", tracked)) if r % 2 == 0 else (("tracked", tracked), ("raw", raw)):
            t0 = time.perf_counter_ns()
            for _ in range(PAIRS):
                fn()
            out[name].append((time.perf_counter_ns() - t0) / PAIRS / 1e3)
    raw_us, tracked_us = statistics.median(out["raw"]), statistics.median(out["tracked"])
    stats = tracker.stats()
    return {"functions": label, "binding": module_label, "size_bytes": size, "pairs_per_round": PAIRS,
            "rounds": ROUNDS, "raw_us_per_pair": raw_us, "tracked_us_per_pair": tracked_us,
            "overhead_us_per_pair": tracked_us - raw_us, "allocations_seen": stats.allocations,
            "live_bytes_after": stats.live_bytes}


def timed_window() -> dict[str, Any]:
    """Needs a GPU: the fake engine launches real kernels."""
    reason = cuda.unavailable_reason() if cuda.is_installed() else "cuda-python not installed"
    if reason is not None:
        return {"skipped": reason}
    from pytest_trtperf.trt.api import engine_from_plan
    from pytest_trtperf.workloads.tensorrt import make_workload
    from pytest_trtperf.trt.backend import from_module
    from tests.fakes import fake_tensorrt

    backend = from_module(fake_tensorrt, "tensorrt")
    io = [{"name": "x", "mode": "input", "dtype": "FLOAT", "shape": [4, 256]},
          {"name": "y", "mode": "output", "dtype": "FLOAT", "shape": [4, 256]}]
    plan = fake_tensorrt.make_plan(io, [("a", 50.0), ("b", 50.0)], device_memory=8 << 20, weights=4 << 20)
    settings = MeasureSettings(warmup_s=0.2, min_time_s=1.0, max_time_s=2.0, target_rel_ci=0.002)
    real_can_track = allocator_mod.can_track
    medians: dict[str, list[float]] = {"tracked": [], "default": []}
    run_allocations: list[int] = []
    try:
        for r in range(ROUNDS):
            for name in ("tracked", "default") if r % 2 == 0 else ("default", "tracked"):
                # The engine module imported can_track by name: switch it there.
                from pytest_trtperf.trt import engine as engine_mod

                engine_mod.can_track = real_can_track if name == "tracked" else (lambda: False)
                w = make_workload(engine_from_plan(backend, plan, "bench", "fake.plan"))
                w.setup()
                try:
                    m = measure(w, settings)
                    if name == "tracked":
                        run_allocations.append(w._run_allocations)
                finally:
                    w.teardown()
                medians[name].append(float(statistics.median(m.latency_s)) * 1e6)
    finally:
        from pytest_trtperf.trt import engine as engine_mod

        engine_mod.can_track = real_can_track
    t, d = statistics.median(medians["tracked"]), statistics.median(medians["default"])
    return {"rounds": ROUNDS, "median_us_tracked": t, "median_us_default": d, "difference_us": t - d,
            "difference_rel": t / d - 1, "per_round_us": medians,
            "allocator_calls_during_timed_enqueues": run_allocations}


def host_window() -> dict[str, Any]:
    from pytest_trtperf.workloads.host import HostWorkload

    seen: list[bool] = []
    w = HostWorkload(lambda: seen.append(tracemalloc.is_tracing()))
    m = measure(w, MeasureSettings(warmup_s=0.05, min_time_s=0.2, max_time_s=0.5))
    timed_calls = len(seen)
    figures = w.memory_figures()
    return {"timed_calls": timed_calls, "timed_calls_traced": sum(seen[:timed_calls]),
            "memory_calls": len(seen) - timed_calls, "memory_calls_traced": sum(seen[timed_calls:]),
            "iterations_measured": m.iterations, "host_peak_bytes": figures["host_peak_bytes"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": platform.node(),
        "python": platform.python_version(),
        "gpu": cuda.device_name() if cuda.is_installed() and cuda.unavailable_reason() is None else None,
        "allocator_cost": allocator_cost(),
        "timed_window_tensorrt": timed_window(),
        "timed_window_host": host_window(),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
