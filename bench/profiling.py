"""What ``--trt-nvtx`` and ``--trt-profiler-api`` cost (issue 18).

The window they add is entered after warm-up and left after the last measured
batch, so by construction it is outside every timed batch. This measures that
claim instead of trusting it: one CUDA workload (a 20 us spin kernel, graphs
on, the plugin's own loop through ``measure()``), measured with the window
options off and on in ABBA order in one process (same clocks, same
neighbours), and the host cost of entering and leaving the window itself.
No profiler is attached (the normal run: NVTX calls go to a dummy domain,
``cudaProfilerStart`` has nobody to tell).

Run on a GPU machine from the repository root:

    PYTHONPATH=$PWD python bench/profiling.py [--rounds 8] [--json out.json]

Prints a Markdown table for bench/RESULTS.md. Never changes GPU settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from pytest_trtperf.core.config import GpuSettings, MeasureSettings  # noqa: E402
from pytest_trtperf.gpu import cuda  # noqa: E402
from pytest_trtperf.gpu import nvtx as nvtx_layer  # noqa: E402
from pytest_trtperf.gpu.window import measured_window  # noqa: E402
from pytest_trtperf.core.measure import measure  # noqa: E402
from pytest_trtperf.workloads.cuda import CudaWorkload  # noqa: E402

RID = "bench/profiling.py::test_spin[20us]::window"
ON = GpuSettings(nvtx=True, profiler_api=True)


def load_kernels() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_kernels", ROOT / "tests/gpu/gpu_kernels.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.Kernels()


def one(workload: CudaWorkload, on: bool, seconds: float) -> dict[str, float]:
    settings = MeasureSettings(warmup_s=0.1, min_warmup_iterations=10, duration_s=seconds)
    window = measured_window(ON, RID, "cuda") if on else None
    m = measure(workload, settings, window=window)
    return {"median_us": float(np.median(m.latency_s)) * 1e6, "wall_per_iter_us": m.wall_s / m.iterations * 1e6,
            "iterations": m.iterations}


def window_host_cost(n: int = 2000) -> float:
    """Microseconds to enter and leave the window once (both options on)."""
    t0 = time.perf_counter()
    for _ in range(n):
        with measured_window(ON, RID, "cuda"):  # type: ignore[union-attr]
            pass
    return (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="ABBA rounds (each: off, on, on, off)")
    ap.add_argument("--seconds", type=float, default=0.5, help="measured seconds per window")
    ap.add_argument("--spin-us", type=float, default=20.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"bench/profiling.py: {reason}")
        return 2
    k = load_kernels()
    ns = int(args.spin_us * 1000)
    w = CudaWorkload(lambda s: k.spin(s, ns))
    w.setup()
    rows: list[dict[str, Any]] = []
    try:
        for r in range(args.rounds):
            for on in (False, True, True, False):
                rows.append({"round": r, "on": on, **one(w, on, args.seconds)})
    finally:
        w.teardown()
    host_us = window_host_cost()

    def per_round(key: str) -> list[float]:
        out = []
        for r in range(args.rounds):
            off = statistics.mean(x[key] for x in rows if x["round"] == r and not x["on"])
            on = statistics.mean(x[key] for x in rows if x["round"] == r and x["on"])
            out.append(on / off - 1.0)
        return out

    med, wall = per_round("median_us"), per_round("wall_per_iter_us")

    def summary(d: list[float]) -> str:
        m = statistics.mean(d)
        half = 2.0 * statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        return f"{m * 100:+.3f}% (+-{half * 100:.3f}%, rounds {min(d) * 100:+.2f}..{max(d) * 100:+.2f}%)"

    info = cuda.device_info()
    off_med = statistics.median(x["median_us"] for x in rows if not x["on"])
    on_med = statistics.median(x["median_us"] for x in rows if x["on"])
    doc = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "gpu": info.name, "driver_cuda": info.driver_cuda_version, "runtime": info.runtime_version,
        "bindings": info.bindings_version, "nvtx": nvtx_layer.version(), "nvtx_tool_attached": nvtx_layer.tool_attached(),
        "spin_us": args.spin_us, "rounds": args.rounds, "seconds": args.seconds, "rows": rows,
        "median_change_per_round": med, "wall_change_per_round": wall, "window_host_us": host_us,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(f"### Profiling aids: cost ({doc['date'][:10]}, {info.name}, nvtx {doc['nvtx']}, "
          f"tool attached: {doc['nvtx_tool_attached']})\n")
    print(f"`PYTHONPATH=$PWD python bench/profiling.py --rounds {args.rounds}`: {args.spin_us:g} us spin kernel, "
          f"graphs on, {args.seconds:g} s per window, `--trt-nvtx --trt-profiler-api` off vs on, ABBA x "
          f"{args.rounds}, one process.\n")
    print("| check | off | on | change on/off (mean of rounds, +-2 SE) |")
    print("| --- | ---: | ---: | --- |")
    print(f"| median latency per iteration | {off_med:.3f} us | {on_med:.3f} us | {summary(med)} |")
    print(f"| host wall time per iteration | "
          f"{statistics.median(x['wall_per_iter_us'] for x in rows if not x['on']):.3f} us | "
          f"{statistics.median(x['wall_per_iter_us'] for x in rows if x['on']):.3f} us | {summary(wall)} |")
    print(f"| entering + leaving the window once (host) | - | {host_us:.2f} us | once per measured window |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
