"""Whether a host-timed block's median is the code's or the scheduler's, on each side of a pair.

Interleaving cancels load that changes slower than a block; a host shared by
more runnable threads than cores changes faster than that. A call the
scheduler preempts waits out other processes' time slices (milliseconds),
and once a large part of a block's calls contain such a wait, its median is
the other processes' slices, not the code: on the 2-core CI machine at load
12, 1.5 ms calls were preempted in most calls on both sides, and the paired
ratio of a 1.3x change read 0.29 with an interval that excluded the truth.
The share of time spent waiting does not tell (0.18 ms calls whose thread
waited 70% of the time still read both sides within 0.2%); the number of
times the thread was put back on a CPU during the block, against the calls
it made, does: each return to the CPU can have cut at most one call. Linux
counts both (``/proc/thread-self/schedstat``: run-queue wait, time slices),
read around every block on both sides; a pair whose blocks both kept most
calls whole is a fair comparison.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

from pytest_trtperf.core.workload import clock_of

#: Largest share of a block's calls that may have been cut by a return to the
#: CPU (time slices / calls) for its median to be the code's: the half at
#: which a median is lost (``host_state.QUANTILE_LEVEL``'s rule). Returns to the
#: CPU after short interruptions count too, so this is conservative.
MAX_CUT = 0.5
_SCHEDSTAT = "/proc/thread-self/schedstat"


def time_slices() -> int | None:
    """Times this thread has been put on a CPU so far (None: not Linux)."""
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[2])
    except (OSError, IndexError, ValueError):
        return None


class DelayWatched:
    """A workload whose every ``run`` records how many time slices it ran in
    (``delays``, one entry per call, None where unknown)."""

    def __init__(self, workload: Any) -> None:
        self.w = workload
        self.kind = workload.kind
        self.clock = clock_of(workload)
        self.inferences_per_iteration = workload.inferences_per_iteration
        self.delays: list[int | None] = []

    def setup(self) -> None:
        self.w.setup()

    def run(self, iterations: int) -> Any:
        before = time_slices()
        batch = self.w.run(iterations)
        after = time_slices()
        self.delays.append(after - before if before is not None and after is not None else None)
        return batch

    def teardown(self) -> None:
        self.w.teardown()

    def identity(self) -> Mapping[str, Any]:
        return self.w.identity()

    def notes(self) -> tuple[str, ...]:
        return tuple(self.w.notes())


def cut_shares(slices: Sequence[int | None], blocks: Sequence[tuple[int, float]]) -> list[float | None]:
    """Each measured block's share of calls a return to the CPU may have cut
    (the last ``len(blocks)`` runs are the measured blocks)."""
    last = list(slices)[-len(blocks):] if blocks else []
    if len(last) != len(blocks):
        return [None] * len(blocks)
    return [min(max(k - 1, 0) / n, 1.0) if k is not None and n > 0 else None for k, (n, _) in zip(last, blocks, strict=False)]


def fair_pairs(a: Sequence[float | None], b: Sequence[float | None]) -> list[bool]:
    """Which pairs compare like with like (unknown counts as fair)."""
    return [(sa is None or sa <= MAX_CUT) and (sb is None or sb <= MAX_CUT) for sa, sb in zip(a, b, strict=False)]
