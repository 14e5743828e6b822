"""The interleaved driver on real host workloads: alternating blocks, the
same stops as measure.py, and a ratio that drift cannot move."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import pytest

from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.relative.interleave import BLOCK_S, MIN_BLOCK_ITERATIONS, MIN_PAIRS, measure_interleaved
from pytest_trtperf.core.measure import measure
from pytest_trtperf.relative.paired import compare_pairs
from pytest_trtperf.workloads.host import HostWorkload

#: Timed against closed forms or tight bounds: no busy loops on another xdist worker meanwhile (tests/host_share.py).
pytestmark = pytest.mark.needs_quiet_host

DATA = memoryview(b"\x5a" * 4_000_000)
FAST = MeasureSettings(warmup_s=0.05, min_time_s=0.3, max_time_s=2.0)


def hasher(nbytes: int, **kw: Any) -> HostWorkload:
    chunk = DATA[:nbytes]
    return HostWorkload(lambda: hashlib.sha256(chunk).digest(), **kw)


class Watch:
    """A StateMonitor that records when it was started and stopped."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> str:
        self.calls.append("stop")
        return "state"


def test_blocks_alternate_and_account_for_every_sample() -> None:
    watch, progress = Watch(), []
    il = measure_interleaved(hasher(100_000), hasher(100_000), FAST, monitor=watch, on_progress=progress.append)
    assert il.pairs >= MIN_PAIRS and il.stop_reason in ("converged", "max_time")
    assert list(il.b_first) == [i % 2 == 1 for i in range(il.pairs)]  # AB, BA, AB, ...
    assert len(il.a_blocks) == len(il.b_blocks) == il.pairs
    for m, blocks in ((il.a, il.a_blocks), (il.b, il.b_blocks)):
        assert sum(n for n, _ in blocks) == m.iterations == m.inferences
        assert m.wall_s == pytest.approx(sum(w for _, w in blocks))
        assert all(n >= MIN_BLOCK_ITERATIONS for n, _ in blocks)
        assert m.warmup_iterations >= 5 and m.device_state == "state"
    # Blocks last about BLOCK_S (a loaded 2-core machine stretches some).
    walls = np.array([w for _, w in il.a_blocks + il.b_blocks])
    assert BLOCK_S / 3 < float(np.median(walls)) < BLOCK_S * 3, walls
    assert watch.calls == ["start", "stop"]  # one window for both sides
    assert progress == sorted(progress) and len(progress) == il.pairs
    assert il.ratios("median").shape == (il.pairs,)


def test_twice_the_work_reads_twice_the_time() -> None:
    one = hasher(200_000)
    chunk = DATA[:200_000]
    two = HostWorkload(lambda: (hashlib.sha256(chunk).digest(), hashlib.sha256(chunk).digest()))
    il = measure_interleaved(one, two, FAST)
    cmp = compare_pairs(il.ratios("median"), seed="t")
    assert 1.8 < cmp.ratio < 2.2 and cmp.ci[0] <= cmp.ratio <= cmp.ci[1]
    # throughput: b does two inferences per call, so its time per inference is a's, not twice it
    # (block wall times carry every preemption of a loaded machine: a wide margin, still far from 2)
    per_inference = measure_interleaved(one, hasher(400_000, inferences_per_iteration=2), FAST)
    assert 0.7 < float(np.median(per_inference.ratios("throughput"))) < 1.4


class Drifting:
    """Hashing whose cost grows steadily with wall time (a machine that
    slows down during the run: heat, a neighbour starting). ``extra`` is the
    injected cost of B."""

    kind = "host"
    inferences_per_iteration = 1

    def __init__(self, t0: float, extra: float, nbytes: int = 60_000, rate: float = 0.6) -> None:
        self.t0, self.extra, self.nbytes, self.rate = t0, extra, nbytes, rate

    def setup(self) -> None: ...

    def teardown(self) -> None: ...

    def identity(self) -> dict[str, Any]:
        return {}

    def notes(self) -> tuple[str, ...]:
        return ()

    def run(self, n: int) -> Any:
        drift = 1.0 + self.rate * (time.perf_counter() - self.t0)
        nbytes = int(self.nbytes * drift * (1.0 + self.extra))
        return hasher(nbytes).run(n)


def test_drift_moves_separate_runs_but_not_the_interleaved_ratio() -> None:
    settings = MeasureSettings(warmup_s=0.05, min_time_s=1.0, max_time_s=3.0)
    t0 = time.perf_counter()
    a, b = Drifting(t0, 0.0), Drifting(t0, 0.10)
    il = measure_interleaved(a, b, settings)
    cmp = compare_pairs(il.ratios("median"), seed="drift")
    # Separate runs, A then B, as a baseline file and a later run would see it.
    t1 = time.perf_counter()
    first = measure(Drifting(t1, 0.0), settings)
    second = measure(Drifting(t1, 0.10), settings)
    separate = float(np.median(second.latency_s) / np.median(first.latency_s))
    # Each side alone moved a lot during the interleaved run...
    a_blocks = il.values("a", "median")
    assert a_blocks[-1] / a_blocks[0] > 1.3, a_blocks
    # ...the separate comparison is far off the injected +10%, the paired ratio is not.
    assert abs(separate - 1.10) > 0.15, separate
    assert abs(cmp.ratio - 1.10) < 0.04 and abs(cmp.ratio - 1.10) < abs(separate - 1.10) / 4, (cmp, separate)


def test_fixed_iterations_and_duration() -> None:
    il = measure_interleaved(hasher(20_000), hasher(40_000), MeasureSettings(warmup_s=0.02, iterations=500))
    assert il.stop_reason == "iterations" and il.a.iterations == 500 and il.b.iterations == 500
    assert il.pairs >= MIN_PAIRS
    few = measure_interleaved(hasher(20_000), hasher(20_000), MeasureSettings(warmup_s=0.0, iterations=4))
    assert few.pairs == 4 and few.a.iterations == few.b.iterations == 4
    t = time.perf_counter()
    d = measure_interleaved(hasher(20_000), hasher(20_000), MeasureSettings(warmup_s=0.0, duration_s=0.4))
    assert d.stop_reason == "duration" and d.a.wall_s + d.b.wall_s >= 0.4 * 0.9
    assert time.perf_counter() - t < 0.4 + 5.0  # a pair overshoots by a block, not by seconds


def test_caps() -> None:
    il = measure_interleaved(hasher(20_000), hasher(20_000),
                             MeasureSettings(warmup_s=0.0, min_time_s=0.05, max_time_s=0.2, target_rel_ci=1e-9))
    assert il.stop_reason == "max_time" and il.pairs >= 1
    capped = measure_interleaved(hasher(20_000), hasher(20_000),
                                 MeasureSettings(warmup_s=0.0, min_time_s=0.05, max_iterations=30, min_iterations=1,
                                                 target_rel_ci=1e-9))
    assert capped.stop_reason == "max_iterations" and capped.a.iterations <= 30 + MIN_BLOCK_ITERATIONS
