"""How long a host-timed block waited for a CPU, on each side of a pair.

Interleaving cancels load that changes slower than a block; a host shared by
more runnable threads than cores changes faster than that. The scheduler
then hands out the CPU unevenly between the two processes: on the 2-core CI
machine at load 12, the reference's blocks waited for a CPU far more than this
process's, and the paired ratio of the same code read 0.29 where the truth
was 0.77, with an interval that excluded it: both sides' blocks spent 70-85%
of their time waiting for a CPU, so each block's median was the other
processes' time slices. At 25-60% waiting (load 8, 0.15 ms calls) the ratios
of the same pairs stayed within a few percent of the truth. A pair is a fair
comparison when both of its blocks had the CPU for most and about the same
share of their time;
Linux says how long a thread waited on a run queue (``/proc/thread-self/schedstat``,
the second field), read around every block on both sides.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: Largest difference between the two blocks' shares of time spent waiting for
#: a CPU for which a pair still compares like with like.
FAIR_GAP = 0.20
#: Largest share of a block spent waiting for a CPU: beyond it a block's
#: median is the other processes' time slices, not the code's.
MAX_SHARE = 0.65
_SCHEDSTAT = "/proc/thread-self/schedstat"


def run_delay_s() -> float | None:
    """Seconds this thread has waited on a run queue so far (None: not Linux)."""
    try:
        with open(_SCHEDSTAT, "rb") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, IndexError, ValueError):
        return None


class DelayWatched:
    """A workload whose every ``run`` records how long it waited for a CPU
    (``delays``, one entry per call, None where unknown)."""

    def __init__(self, workload: Any) -> None:
        self.w = workload
        self.kind = workload.kind
        self.inferences_per_iteration = workload.inferences_per_iteration
        self.delays: list[float | None] = []

    def setup(self) -> None:
        self.w.setup()

    def run(self, iterations: int) -> Any:
        before = run_delay_s()
        batch = self.w.run(iterations)
        after = run_delay_s()
        self.delays.append(after - before if before is not None and after is not None else None)
        return batch

    def teardown(self) -> None:
        self.w.teardown()

    def identity(self) -> Mapping[str, Any]:
        return self.w.identity()

    def notes(self) -> tuple[str, ...]:
        return tuple(self.w.notes())


def shares(delays: Sequence[float | None], blocks: Sequence[tuple[int, float]]) -> list[float | None]:
    """Each measured block's share of its wall time spent waiting (the last
    ``len(blocks)`` runs are the measured blocks)."""
    last = list(delays)[-len(blocks):] if blocks else []
    if len(last) != len(blocks):
        return [None] * len(blocks)
    return [min(d / wall, 1.0) if d is not None and wall > 0 else None for d, (_, wall) in zip(last, blocks)]


def fair_pairs(a: Sequence[float | None], b: Sequence[float | None]) -> list[bool]:
    """Which pairs compare like with like (unknown shares count as fair)."""
    out = []
    for sa, sb in zip(a, b):
        if sa is None or sb is None:
            out.append(True)
        else:
            out.append(abs(sa - sb) <= FAIR_GAP and max(sa, sb) <= MAX_SHARE)
    return out
