"""Does a captured CUDA graph run the same program as the eager call?

A graph replay only removes launch gaps when it replays the kernels the eager
call launches. Some code launches other kernels while a stream is capturing:
PyTorch 2.11's SDPA leaves its cuDNN flash kernel for FP32 math under
``torch.cuda.graph``, so the guide's ViT-large read 31.05 ms as a graph and
15.6 ms eagerly. When the harness captures user code itself, it therefore
times eager calls and graph replays, interleaved, before choosing what to time.

:func:`time_and_decide` is that check for any captured callable (a torch
callable, a stream callable): it times both with CUDA events through
:func:`pytest_trtperf.gpu.cuda.time_calls` and hands the blocks to
:func:`decide`, the rule alone (per-call times in, choice out: no CUDA, no
torch), so the rule can be tested anywhere. The rule (README, "CUDA graphs and
captured code"):

* The statistic is, per round, the replay's median over the eager call's
  median in adjacent blocks; interleaving cancels clock drift.
* "Slower than eager by more than t" holds when all rounds but at most one say
  so (one round hit by a power-cap clock dip cannot decide).
* Without a previous choice, eager is chosen when the replay is slower by more
  than 10%. With the baseline's choice (``prior``) there is hysteresis: a
  baseline timed as a graph switches to eager only above 20%, a baseline
  timed eagerly returns to the graph only below 5%. Between 5% and 20% the
  baseline's choice stays, so a compare run of unchanged code near a
  threshold never flips (a flip changes the configuration: incomparable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_trtperf.gpu import cuda

GRAPH = "graph"
EAGER = "eager"
CHOICES = (GRAPH, EAGER)

#: Rounds of (eager block, replay block), and per block about this many
#: seconds of calls, within [CHECK_MIN_CALLS, CHECK_MAX_CALLS] calls.
CHECK_ROUNDS = 5
CHECK_ROUNDS_LONG = 3  # calls over LONG_CALL_S: fewer rounds keep setup short
LONG_CALL_S = 0.05
CHECK_BLOCK_S = 0.02
CHECK_MIN_CALLS = 2
CHECK_MAX_CALLS = 50


@dataclass(frozen=True)
class CaptureRule:
    """Thresholds on ``replay / eager - 1`` (see the module docstring)."""

    #: No previous choice: time eagerly when the replay is slower by more than this.
    first: float = 0.10
    #: Previous choice "graph": switch to eager only above this.
    enter_eager: float = 0.20
    #: Previous choice "eager": return to the graph only below this.
    leave_eager: float = 0.05
    #: Rounds that may disagree with a "slower"/"not slower" finding.
    outliers: int = 1
    #: A kept graph gets a note when it differs from the eager call by more
    #: than this share: then a user's eager loop reads another number.
    note_share: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.leave_eager <= self.first <= self.enter_eager:
            raise ValueError("CaptureRule needs 0 <= leave_eager <= first <= enter_eager")


@dataclass(frozen=True)
class CaptureCheck:
    """What the check measured and chose."""

    choice: str
    prior: str | None
    #: Medians over all timed eager calls / graph replays, milliseconds.
    eager_ms: float
    graph_ms: float
    #: Per round: replay median / eager median.
    round_ratios: tuple[float, ...]
    #: Why, in a few words ("eager when slower by > 10% in 4 of 5 rounds: 5 were").
    why: str
    rule: CaptureRule = CaptureRule()
    #: What was captured, for the notes ("the torch callable", "the stream callable").
    subject: str = "the callable"

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios (replay / eager)."""
        return float(np.median(self.round_ratios))

    @property
    def hidden_launch_ms(self) -> float:
        """Launch time per call the timed graph leaves out (0 when timed eagerly)."""
        if self.choice != GRAPH:
            return 0.0
        return max(self.eager_ms - self.graph_ms, 0.0)

    def identity(self) -> dict[str, Any]:
        """Measured numbers for ``result.identity["capture_check"]`` (not hashed:
        they vary run to run; ``timed_as`` is the configuration)."""
        return {
            "eager_ms": _round(self.eager_ms),
            "graph_ms": _round(self.graph_ms),
            "ratio": round(self.ratio, 4),
            "hidden_launch_ms": _round(self.hidden_launch_ms),
            "rounds": len(self.round_ratios),
            "prior": self.prior,
            "why": self.why,
        }

    def note(self) -> str | None:
        """One line for ``result.notes``, or None when there is nothing to say
        (graph kept, same kernels, no launch time worth mentioning)."""
        both = f"replay {fmt_ms(self.graph_ms)} vs {fmt_ms(self.eager_ms)} eagerly"
        rounds = f"{len(self.round_ratios)} interleaved rounds"
        if self.choice == EAGER:
            return (f"timed eagerly: the CUDA graph replay of {self.subject} is "
                    f"{self.ratio:.2f}x the eager call ({both}, {rounds}; {self.why}): capturing "
                    f"changed what runs (other kernels while its stream is capturing)")
        slower = self.ratio - 1.0
        if slower > self.rule.note_share:
            return (f"timed the CUDA graph replay although it is {slower:+.1%} vs the eager call "
                    f"({both}, {rounds}; {self.why})")
        if self.hidden_launch_ms > self.rule.note_share * self.eager_ms:
            return (f"timed the CUDA graph replay, which hides {fmt_ms(self.hidden_launch_ms)} of launch "
                    f"time per call ({both}, {rounds}); a loop of eager calls reads the eager time")
        return None


def _round(ms: float) -> float:
    return float(f"{ms:.4g}")


def fmt_ms(ms: float) -> str:
    return f"{ms:.3f} ms" if ms >= 1 else f"{ms * 1000:.1f} us"


def _count(ratios: np.ndarray, threshold: float, above: bool) -> int:
    return int(np.sum(ratios > 1 + threshold)) if above else int(np.sum(ratios < 1 + threshold))


def decide(eager_blocks: Sequence[Sequence[float]], graph_blocks: Sequence[Sequence[float]],
           prior: str | None = None, rule: CaptureRule = CaptureRule(),
           subject: str = "the callable") -> CaptureCheck:
    """Choose ``"graph"`` or ``"eager"`` from interleaved blocks of per-call
    times (round i = ``eager_blocks[i]`` next to ``graph_blocks[i]``).

    ``prior`` is the baseline's choice (None without one; anything else is
    ignored). ``subject`` names what was captured in the note.
    """
    if len(eager_blocks) != len(graph_blocks) or not eager_blocks:
        raise ValueError("decide() needs the same number (>= 1) of eager and graph blocks")
    if any(len(b) == 0 for b in (*eager_blocks, *graph_blocks)):
        raise ValueError("decide() got an empty block")
    prior = prior if prior in CHOICES else None
    e_med = np.array([np.median(b) for b in eager_blocks], dtype=float)
    g_med = np.array([np.median(b) for b in graph_blocks], dtype=float)
    if np.any(e_med <= 0) or np.any(g_med <= 0):
        raise ValueError("decide() needs positive times")
    ratios = g_med / e_med
    n = len(ratios)
    need = max(1, n - rule.outliers)
    above_first = _count(ratios, rule.first, above=True)
    fresh = EAGER if above_first >= need else GRAPH
    if prior == EAGER:
        below = _count(ratios, rule.leave_eager, above=False)
        choice = GRAPH if below >= need else EAGER
        why = (f"baseline timed eagerly; back to the graph when slower by < {rule.leave_eager:.0%} "
               f"in {need} of {n} rounds: {below} were")
    elif prior == GRAPH:
        above = _count(ratios, rule.enter_eager, above=True)
        choice = EAGER if above >= need else GRAPH
        why = (f"baseline timed the graph; eager when slower by > {rule.enter_eager:.0%} "
               f"in {need} of {n} rounds: {above} were")
    else:
        choice = fresh
        why = f"eager when slower by > {rule.first:.0%} in {need} of {n} rounds: {above_first} were"
    if prior is not None and choice != fresh:
        why += f" (without a baseline: {fresh})"
    eager_all = np.concatenate([np.asarray(b, dtype=float) for b in eager_blocks])
    graph_all = np.concatenate([np.asarray(b, dtype=float) for b in graph_blocks])
    return CaptureCheck(choice=choice, prior=prior, eager_ms=float(np.median(eager_all)),
                        graph_ms=float(np.median(graph_all)), round_ratios=tuple(float(r) for r in ratios),
                        why=why, rule=rule, subject=subject)


def plan(per_call_s: float) -> tuple[int, int]:
    """(rounds, calls per block) for calls that take about ``per_call_s``
    seconds: blocks of about :data:`CHECK_BLOCK_S`, fewer rounds for long calls."""
    calls = int(CHECK_BLOCK_S / per_call_s) if per_call_s > 0 else CHECK_MAX_CALLS
    calls = min(max(calls, CHECK_MIN_CALLS), CHECK_MAX_CALLS)
    rounds = CHECK_ROUNDS if per_call_s <= LONG_CALL_S else CHECK_ROUNDS_LONG
    return rounds, calls


def time_and_decide(stream: int, eager: Callable[[], Any], replay: Callable[[], Any], *,
                    prior: str | None, subject: str, rule: CaptureRule = CaptureRule()) -> CaptureCheck:
    """Time ``eager()`` (the callable itself) and ``replay()`` (its captured
    graph), both enqueuing on ``stream``, with CUDA events in interleaved
    blocks, and :func:`decide`. The one check behind every workload that
    captures user code (TorchWorkload, CudaWorkload)."""
    per_s = max(cuda.time_calls(stream, eager, 1)[0], cuda.time_calls(stream, replay, 1)[0]) / 1e3
    rounds, calls = plan(per_s)
    eager_blocks: list[list[float]] = []
    graph_blocks: list[list[float]] = []
    for r in range(rounds):  # ABBA order: drift over the check cancels
        order = (((eager_blocks, eager), (graph_blocks, replay)) if r % 2 == 0
                 else ((graph_blocks, replay), (eager_blocks, eager)))
        for blocks, fn in order:
            blocks.append(cuda.time_calls(stream, fn, calls))
    return decide(eager_blocks, graph_blocks, prior=prior, rule=rule, subject=subject)


__all__ = ["CHECK_BLOCK_S", "CHECK_MAX_CALLS", "CHECK_MIN_CALLS", "CHECK_ROUNDS", "CHECK_ROUNDS_LONG",
           "CHOICES", "CaptureCheck", "CaptureRule", "EAGER", "GRAPH", "LONG_CALL_S", "decide", "fmt_ms",
           "plan", "time_and_decide"]
