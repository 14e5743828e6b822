"""The interleaved harness is fair to both sides (issue 27): a cost of
switching from one side to the other, and a drift of the machine, must not
land on one side. Both sides here are the same spin on the host clock
(tests/host_spin.py), so the true ratio is exactly 1 and the effect a harness
asymmetry would have is known from the injected cost, not tuned on a machine:

* a switching cost of ``penalty`` on the first calls after a switch lands,
  in the (A, B), (B, A) order, on the second block of every pair; without the
  untimed lead-in before each block, the pairs where A went first read
  ``1 + penalty/block`` and the others its inverse;
* a linear drift makes the later block of a pair slower by the drift over one
  block; without alternation every pair reads that, and with an odd number of
  pairs the median sits in the majority's mode.

Each test asserts the measured effect is below half the injected one, and
shows on the same machine that the injected cost is real (a harness without
the fix reads it)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from host_spin import Switching, spin_ns
from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.relative.interleave import Interleaved, measure_interleaved
from pytest_trtperf.workloads.host import HostWorkload

WORK_NS = 100_000
BLOCK_S = 0.05
#: An odd plan in a harness that does not insist on whole cycles (10 pairs
#: of each order at least: a median over them ignores the blocks a loaded
#: machine's preemptions inflate).
PAIRS = 21
FIXED = MeasureSettings(warmup_s=0.05, iterations=PAIRS * 100)
#: Runs at most, the first that meets its bound decides and ends the tries (a
#: stall of the loaded machine is not the harness's asymmetry, which reads the
#: same each time).
ATTEMPTS = 3


def order_effect(il: Interleaved, metric: str) -> float:
    """Median pair ratio where A went first over that where B went first:
    (1 + c)^2 when a cost c lands on whichever side goes second, 1 when fair."""
    r = il.ratios(metric)
    first = np.asarray(il.b_first)
    return float(np.median(r[~first]) / np.median(r[first]))


def run_switching(lead_in_fraction: float | None) -> tuple[Interleaved, float]:
    """Both sides the same 100 us spin, 100 calls a block; the first 3 calls
    after a switch cost a third of a block more each: a switched block's mean
    reads about twice an unswitched one's (large next to what preemptions on
    a loaded 2-core machine do to a block mean)."""
    sw = Switching(WORK_NS, penalty_ns=int(100 * WORK_NS / 3), cold_calls=3)
    kw: dict[str, Any] = {} if lead_in_fraction is None else {"lead_in_fraction": lead_in_fraction}
    il = measure_interleaved(HostWorkload(sw.side("a")), HostWorkload(sw.side("b")), FIXED, metric="mean",
                             block_s=BLOCK_S, min_pairs=PAIRS, **kw)
    block_s = float(np.median([w for _, w in il.a_blocks + il.b_blocks]))
    injected = 3 * sw.penalty_ns * 1e-9 / block_s  # what one switched block's mean carries on top
    return il, injected


def fair_switching() -> tuple[Interleaved, float, float, float]:
    """One run: (run, order effect, median ratio, injected)."""
    il, injected = run_switching(None)
    return il, order_effect(il, "mean"), float(np.median(il.ratios("mean"))), injected


def within_half(x: float, injected: float) -> bool:
    return abs(math.log(x)) < math.log(1 + injected) / 2


def test_a_switching_cost_lands_on_neither_side() -> None:
    # A stall of the shared machine spanning many blocks can still move the
    # medians of a block mean: measured again then, as the plugin re-measures
    # (an asymmetry of the harness reads the same every time).
    tries: list[tuple[Interleaved, float, float, float]] = []
    for _ in range(ATTEMPTS):  # the first run that meets both bounds decides (none: the last)
        tries.append(fair_switching())
        if within_half(tries[-1][1], tries[-1][3]) and within_half(tries[-1][2], tries[-1][3]):
            break
    il, effect, r, injected = tries[-1]
    assert within_half(effect, injected), [t[1:] for t in tries]
    assert within_half(r, injected), [t[1:] for t in tries]
    assert il.pairs % 2 == 0 and sum(il.b_first) == il.pairs // 2  # each side first as often as second
    # The same workload without the lead-in: the cost lands on the second block of every pair.
    bare, injected = run_switching(0.0)
    assert bare.lead_ins == (0, 0)
    assert order_effect(bare, "mean") > math.sqrt(1 + injected), (order_effect(bare, "mean"), injected)


class Drifting:
    """The same spin on both sides, ``rate`` per second longer as wall time
    goes on (a machine heating up, a neighbour ramping)."""

    def __init__(self, t0: float, rate: float) -> None:
        self.t0, self.rate = t0, rate

    def __call__(self) -> None:
        spin_ns(int(WORK_NS * (1.0 + self.rate * (time.perf_counter() - self.t0))))


def drifting_run(rate: float) -> tuple[Interleaved, float, float, float]:
    """One run: (run, median ratio, drift between the two blocks of a pair,
    drift over the run). The per-block drift is read from the run: it is what
    a harness that always ran A first (or ended on an odd pair) would report."""
    t0 = time.perf_counter()
    il = measure_interleaved(HostWorkload(Drifting(t0, rate)), HostWorkload(Drifting(t0, rate)), FIXED,
                             block_s=BLOCK_S, min_pairs=PAIRS)
    a_vals = il.values("a", "median")
    spacing = (il.a.wall_s + il.b.wall_s) / (2 * il.pairs)  # measured blocks only: a stricter bound
    per_block = rate * spacing / (1.0 + rate * (time.perf_counter() - t0) / 2)
    return il, float(np.median(il.ratios("median"))), per_block, float(a_vals[-1] / a_vals[0]) - 1.0


def test_a_linear_drift_cancels_over_whole_cycles() -> None:
    rate = 3.0  # +3.0 per second: two blocks 11 ms apart differ by about 3%
    tries: list[tuple[Interleaved, float, float, float]] = []
    for _ in range(ATTEMPTS):  # the first run within the bound decides (none: the last)
        tries.append(drifting_run(rate))
        if abs(math.log(tries[-1][1])) < tries[-1][2] / 2:
            break
    il, r, per_block, overall = tries[-1]
    assert overall > per_block * il.pairs / 2  # it did drift, by many blocks' worth
    assert abs(math.log(r)) < per_block / 2, [t[1:] for t in tries]
    assert il.pairs % 2 == 0 and list(il.b_first) == [i % 2 == 1 for i in range(il.pairs)]
