"""The GPU tests' derived bounds hold on an H100 and an H200 and still catch
a wrong timer. Runs without a GPU: the readings are the ones recorded on the
cards (bench/RESULTS.md, H100 80GB HBM3, 2026-11-25; issue 10 for the H200's
event-pair floor), fed through the same functions the GPU tests use."""

from __future__ import annotations

import pytest

from timing_bounds import SANE_PAIR_US, Floor, within

US = 1e-6
H100 = Floor.from_pairs(3.97, 53.89 - 50)  # bench/fidelity.py "GPU-side floor" row
H200 = Floor.from_pairs(4.38, 4.38)  # issue 10: 0 us kernel read 4.38 us


def test_the_harness_readings_are_inside_on_both_cards() -> None:
    # H100, bench/fidelity.py: ours (graph / no graph) for 50 and 500 us kernels
    assert within(52.96 * US, H100.latency(50)) and within(53.15 * US, H100.latency(50))
    assert within(503.10 * US, H100.latency(500))
    # throughput mode, 20 us kernel: 23.11 us wall per inference, 23.10 interval
    assert within(23.11 * US, H100.interval(20))
    # On an H200 a correct timer may read the whole pair on top of the kernel,
    # which the old fixed bound (<= 104 us for 100 us) refused.
    worst_h200 = (100 + H200.pair_us) * US
    assert worst_h200 > 104 * US and within(worst_h200, H200.latency(100))


@pytest.mark.parametrize("wrong, reading_us, true_us", [
    # a record/launch/record/sync loop holds the host's launch latency (H100 hand loop)
    ("host launch latency in the pair", 57.65, 50),
    ("host launch latency in the pair", 508.37, 500),
    # the event pair timed without the kernel (empty graph, other stream): the pair alone
    ("kernel missing", 3.97, 50),
    # microseconds read as milliseconds, or a factor 1000 lost
    ("unit error", 52.96e3, 50),
    ("unit error", 52.96e-3, 50),
    # both events recorded after the previous inference's end event (double counted)
    ("two kernels in one pair", 2 * 52.96, 50),
])
def test_a_wrong_latency_timer_fails_the_bound(wrong: str, reading_us: float, true_us: float) -> None:
    assert not within(reading_us * US, H100.latency(true_us)), wrong
    assert not within(reading_us * US, H200.latency(true_us)), wrong


def test_a_wrong_throughput_timer_fails_the_bound() -> None:
    # syncing every iteration instead of keeping the GPU fed: 30.6 us on the H100
    assert not within(30.6 * US, H100.interval(20))
    # inferences_per_iteration ignored: the interval of a whole 40 us iteration
    assert within(43.0 / 4 * US, H100.interval(40, per_iteration=4))
    assert not within(43.0 * US, H100.interval(40, per_iteration=4))


def test_graph_bound_scales_with_nodes_and_still_needs_every_kernel() -> None:
    lo, hi = H100.graph(150, kernels=3)
    assert lo == 150 * US and hi < 165 * US
    assert not within(100 * US, (lo, hi))  # a node missing


def test_a_broken_floor_is_refused_rather_than_loosening_every_bound() -> None:
    with pytest.raises(AssertionError, match="not linear"):
        Floor.from_pairs(4.0, 9.0)
    with pytest.raises(AssertionError, match="broken"):
        Floor.from_pairs(SANE_PAIR_US + 5, SANE_PAIR_US + 5)
