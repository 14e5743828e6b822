"""Serve blocks in alternating pairs, and more of them while the verdict is open.

``relative.load.alternate`` serves A and B in ABBA order; side by side under
load (``relative.serve_pairs``) asks for whole ABBA cycles more while the
paired interval neither shows the tolerance exceeded nor shows it kept, up to
twice the pairs. Checked with blocks whose values are set by the test, so the
verdict each set of pairs deserves is known without the code under test.
"""

from __future__ import annotations

import itertools

import numpy as np

from pytest_trtperf.relative.load import Blocks, ServedBlock, alternate
from pytest_trtperf.relative.serve_pairs import MORE_PAIRS, undecided


def blocks_of(values: list[float], log: list[str], side: str):
    it = itertools.cycle(values)

    def block() -> ServedBlock:
        log.append(side)
        return ServedBlock(next(it), 100.0, np.array([1e-3]))

    return block


def test_pairs_alternate_abba_and_stop_at_the_count_without_a_rule() -> None:
    log: list[str] = []
    out = alternate(blocks_of([1.0], log, "a"), blocks_of([1.0], log, "b"), 3)
    assert "".join(log) == "ab" "ba" "ab"
    assert len(out.served["a"]) == len(out.served["b"]) == 3


def test_more_pairs_come_in_whole_abba_cycles_up_to_the_cap() -> None:
    log: list[str] = []
    asked: list[int] = []

    def always(blocks: Blocks) -> bool:
        asked.append(len(blocks.served["b"]))
        return True

    out = alternate(blocks_of([1.0], log, "a"), blocks_of([1.0], log, "b"), 6, more=always, max_pairs=12)
    assert len(out.served["b"]) == 12 and "".join(log) == "abba" * 6
    assert asked == [6, 8, 10]  # asked only at the start of a cycle


def run(a: list[float], b: list[float], pairs: int = 6) -> int:
    log: list[str] = []
    out = alternate(blocks_of(a, log, "a"), blocks_of(b, log, "b"), pairs,
                    more=undecided(1.05, 0.99, "t"), max_pairs=MORE_PAIRS * pairs)
    return len(out.served["b"])


def test_a_clear_slowdown_or_a_clear_no_change_stops_at_the_pairs() -> None:
    a = [10.0, 10.1, 9.9]
    assert run(a, [13.0, 13.1, 12.9]) == 6  # b/a 1.3 on every pair: a regression, decided
    assert run(a, [10.0, 10.05, 9.95]) == 6  # b/a 1.00 +- 1%: within 5%, decided


def test_pairs_that_straddle_the_bound_are_served_again_up_to_the_cap() -> None:
    # b/a swings 0.9..1.2 from pair to pair: neither shown above 1.05 nor below it.
    assert run([10.0], [9.0, 12.0, 10.5, 11.5, 9.5, 12.0]) == MORE_PAIRS * 6
