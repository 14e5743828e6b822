"""What keeping the measured callable's return value costs (issue 15).

``result.return_value`` needs the value of the last call. Host callables keep
it inside the timed loop (``value = fn()`` instead of ``fn()``); GPU callables
are wrapped in ``select.LastCall``. This script measures both against the
loops without them, interleaved (A B A B ...: drift hits both sides alike),
and prints the median of the per-pair ratios of the blocks' trimmed means.

    python bench/return_value_cost.py [--pairs 30] [--gpu]

Host: ``HostWorkload.run`` (keeps the value) against the same loop that
discards it, for a no-op, a call returning a fresh 1 KiB bytes object, and
``sum(range(100))``. Target: within 2% and within 10 ns per call.
GPU (``--gpu``, needs a CUDA GPU and tests/gpu/gpu_kernels.py): a 20 us spin
kernel through ``CudaWorkload`` with graphs off (every iteration calls the
Python callable), wrapped in ``LastCall`` or bare. Target: within 0.5%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pytest_trtperf.core.workload import Batch
from pytest_trtperf.workloads.host import HostWorkload
from pytest_trtperf.workloads.select import LastCall


class DiscardingHostWorkload(HostWorkload):
    """The loop before issue 15: the value is dropped at once."""

    def run(self, iterations: int) -> Batch:
        fn = self._fn
        clock = time.perf_counter_ns
        times = np.empty(iterations, dtype=np.int64)
        t_start = clock()
        for i in range(iterations):
            t0 = clock()
            fn()
            times[i] = clock() - t0
        return Batch(latency_s=times * 1e-9, wall_s=(clock() - t_start) * 1e-9)


def block_median(workload: Any, n: int) -> float:
    """The block's 10%-trimmed mean: the host clock ticks in 10 ns steps here,
    so a median cannot show a few nanoseconds; the trimmed mean can."""
    x = np.sort(workload.run(n).latency_s)
    cut = len(x) // 10
    return float(x[cut:len(x) - cut].mean())


def pairs(a: Any, b: Any, n: int, count: int) -> tuple[float, float, float]:
    """(median ratio a/b, median a in ns, median b in ns) over ``count`` ABAB pairs."""
    ratios, aa, bb = [], [], []
    for k in range(count):
        first, second = (a, b) if k % 2 == 0 else (b, a)
        m1, m2 = block_median(first, n), block_median(second, n)
        ma, mb = (m1, m2) if first is a else (m2, m1)
        ratios.append(ma / mb)
        aa.append(ma * 1e9)
        bb.append(mb * 1e9)
    return statistics.median(ratios), statistics.median(aa), statistics.median(bb)


def host(count: int) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "no-op lambda": lambda: None,
        "bytes(1024)": lambda: bytes(1024),
        "sum(range(100))": lambda: sum(range(100)),
    }
    print("host callable        keeps value   drops value   ratio")
    for name, fn in calls.items():
        keep, drop = HostWorkload(fn), DiscardingHostWorkload(fn)
        for w in (keep, drop):
            w.run(20_000)  # warm up
        ratio, a, b = pairs(keep, drop, 20_000, count)
        print(f"{name:<20} {a:9.1f} ns  {b:9.1f} ns   {ratio:.4f} ({a - b:+.1f} ns)")


def gpu(count: int) -> None:
    import importlib.util

    from pytest_trtperf.gpu import cuda
    from pytest_trtperf.workloads.cuda import CudaWorkload

    reason = cuda.unavailable_reason()
    if reason is not None:
        sys.exit(f"--gpu: {reason}")
    path = Path(__file__).resolve().parents[1] / "tests" / "gpu" / "gpu_kernels.py"
    spec = importlib.util.spec_from_file_location("kernels", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    k = mod.Kernels()

    def launch(stream: int) -> None:
        k.spin(stream, 20_000)

    wrapped, bare = CudaWorkload(LastCall(launch), cuda_graph=False), CudaWorkload(launch, cuda_graph=False)
    for w in (wrapped, bare):
        w.setup()
        w.run(200)
    try:
        ratio, a, b = pairs(wrapped, bare, 500, count)
    finally:
        wrapped.teardown()
        bare.teardown()
    print(f"GPU 20 us spin, graphs off: LastCall {a / 1e3:.3f} us, bare {b / 1e3:.3f} us, ratio {ratio:.4f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--gpu", action="store_true", help="also the CUDA callable wrapper (needs a GPU)")
    args = ap.parse_args(argv)
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    host(args.pairs)
    if args.gpu:
        gpu(args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
