"""Between-run noise: how much a fresh process's number moves by itself.

The bootstrap in ``stats.compare`` sees only the noise inside one measured
window. Two CI runs differ by more: a fresh process carries its own offset
(memory layout, frequency, the neighbours of that minute). On a 2-core machine
a pure-Python loop's median moved with sd 3-4% between fresh processes while
its in-process interval was 0.01-1.3% wide, so a rule built on the window alone
reduces to "more than the tolerance slower" and fails one no-change run in five
(bench/RESULTS.md, "Between-run noise").

So the gate also asks: is the change larger than what the spread between runs
explains at the confidence level? The spread comes from the baseline entry's
history (the summaries of its last ``update`` runs), pooled with a prior per
workload family while the history is short. Plain ``math``: no numpy, so the
baseline store can use it when it merges histories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from collections.abc import Iterable, Sequence

#: Relative sd of a fresh process's metric around the long-run value, used
#: until an entry has a history of its own. Chosen from data (bench/RESULTS.md,
#: "Between-run noise"): host workloads on the 2-core CI machine, worst kind
#: (pure-Python loops); GPU workloads on an H100, worst kind (a GEMM at its
#: power cap: fresh processes 0.0% apart, windows 0.7%).
PRIOR_SD = {"host": 0.035, "gpu": 0.007}
#: The prior counts as this many runs' worth of evidence when pooled with a
#: history: three runs that agree within 0.5% pull a host entry's sd from 3.5%
#: to 2.5%; ten runs to 1.6%.
PRIOR_WEIGHT = 3.0
#: Runs kept in an entry's history (the newest last).
HISTORY_RUNS = 10
#: Largest between-run sd (relative, log scale) a history may claim. Measured
#: spreads: 3-4% for pure-Python code between fresh quiet processes, 20-30% in
#: load spikes (runs flagged busy, which the centre leaves out), ~0% for a GEMM
#: on the GPU (bench/RESULTS.md). A history whose rows spread more than this is
#: too wide to decide anything: its allowance is held at this sd (so a large
#: slowdown is still a regression) and a change it would pass is ``unreliable``
#: (:func:`too_wide`). Without the bound, history rows edited to alternate
#: 0.3x / 4x gave an allowance of 1932.7% and a 3.2x slowdown read ``pass``.
MAX_SD = 0.20
#: Largest "smallest slowdown this verdict could catch" (the bar of
#: :func:`widen`, within-run interval and between-run allowance combined) at
#: which a ``pass`` still means something: +100%, twice as slow. Wider, the
#: verdict is ``unreliable`` (``decided_by="too_wide"``), never a plain pass.
MAX_BAR = 1.0


def family(clock: str) -> str:
    """``host`` or ``gpu``: which prior a workload timed by ``clock``
    (``core.workload.clock_of``) uses. Host code must not inherit the GPU's
    near-zero spread."""
    return "host" if clock == "host" else "gpu"


def z_value(confidence: float) -> float:
    """Two-sided normal quantile of the confidence level."""
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


@dataclass(frozen=True)
class RunNoise:
    """The between-run term of one verdict.

    ``sd`` is relative (log scale); ``runs`` is how many baseline runs the
    centre averages; ``source`` is ``history`` (pooled with the prior),
    ``prior`` (one run: the prior alone) or ``option`` (``--trt-run-noise``).
    """

    sd: float
    source: str
    runs: int
    family: str

    def allowance(self, confidence: float) -> float:
        """The log change that the spread alone explains: ``z * sd *
        sqrt(1 + 1/runs)`` (the candidate's own offset, and the uncertainty of
        the centre of ``runs`` baseline runs)."""
        if self.sd <= 0:
            return 0.0
        return z_value(confidence) * self.used_sd * math.sqrt(1.0 + 1.0 / max(self.runs, 1))

    @property
    def capped(self) -> bool:
        """The history spreads wider than :data:`MAX_SD` (its allowance is
        held there). ``--trt-run-noise`` is the user's own figure: never capped."""
        return self.source != "option" and self.sd > MAX_SD

    @property
    def used_sd(self) -> float:
        return MAX_SD if self.capped else self.sd

    def to_dict(self, confidence: float) -> dict[str, object]:
        return {"sd": self.sd, "source": self.source, "runs": self.runs, "family": self.family,
                "allowance": math.expm1(self.allowance(confidence))}

    def describe(self, confidence: float) -> str:
        """``between-run noise 13.6% (sd 3.5%, host prior, 1 run)``."""
        where = {"history": f"from {self.runs} runs", "prior": f"{self.family} prior, {self.runs} run"
                 + ("s" if self.runs != 1 else ""), "option": "--trt-run-noise"}[self.source]
        sd = f"sd {self.sd:.1%} held at {MAX_SD:.0%}" if self.capped else f"sd {self.sd:.1%}"
        return f"between-run noise {math.expm1(self.allowance(confidence)):.1%} ({sd}, {where})"


def estimate(clock: str, values: Sequence[float], override: float | None = None) -> RunNoise:
    """The spread of ``values`` (one metric value per baseline run, all > 0),
    pooled with the prior of ``clock``'s family: ``sd^2 = (w p^2 + (k-1) s^2)
    / (w + k - 1)``. ``override`` (``--trt-run-noise``) replaces it."""
    fam = family(clock)
    k = max(len(values), 1)
    if override is not None:
        return RunNoise(sd=float(override), source="option", runs=k, family=fam)
    prior = PRIOR_SD[fam]
    if len(values) < 2:
        return RunNoise(sd=prior, source="prior", runs=k, family=fam)
    logs = [math.log(v) for v in values]
    mean = sum(logs) / len(logs)
    s2 = sum((x - mean) ** 2 for x in logs) / (len(logs) - 1)
    pooled = (PRIOR_WEIGHT * prior ** 2 + (len(logs) - 1) * s2) / (PRIOR_WEIGHT + len(logs) - 1)
    return RunNoise(sd=math.sqrt(pooled), source="history", runs=k, family=fam)


def centre(values: Iterable[float]) -> float:
    """Geometric mean: the baseline value a change is measured from."""
    vals = [float(v) for v in values]
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


@dataclass(frozen=True)
class Judged:
    """A change with its interval widened by the between-run term."""

    change: float
    ci: tuple[float, float]
    decided_by: str
    significant_slower: bool
    significant_faster: bool
    #: The smallest slowdown that fails (:func:`fail_bar`); NaN when invalid.
    fails_above: float = math.nan
    #: The within-run half-width below the change (log scale), what
    #: :func:`fail_bar` combines with the allowance; NaN when invalid.
    within: float = math.nan


def fail_bar(within: float, allowance: float, tolerance: float) -> float:
    """The smallest slowdown that fails the gate: beyond the tolerance AND
    beyond the within-run half-width ``within`` and the between-run
    ``allowance`` (log scale) added in quadrature. :func:`status` decides by
    this number, so the bar a report shows is the bar the gate applied."""
    return max(tolerance, _expm1(math.hypot(within, allowance)))


def _expm1(x: float) -> float:
    """``math.expm1`` that gives infinity instead of raising OverflowError."""
    return math.inf if x > 700.0 else math.expm1(x)


def widen(change: float, ci: tuple[float, float], allowance: float, tolerance: float) -> Judged:
    """Combine the within-run interval of ``change`` with the between-run
    allowance (both at the same confidence level, log scale): the half-widths
    add in quadrature. ``decided_by`` names the largest bar the change was
    held to: the tolerance, or else the larger noise term.

    Never raises: a change or bound that is not a finite number > -1 (no
    logarithm), or an interval that overflows, gives ``decided_by="invalid"``
    with a NaN interval, which :func:`status` never calls a pass."""
    if not all(math.isfinite(x) and x > -1.0 for x in (change, *ci)) or not math.isfinite(allowance):
        return Judged(change=change, ci=(math.nan, math.nan), decided_by="invalid", significant_slower=False,
                      significant_faster=False)
    mid = math.log1p(change)
    d_lo = max(mid - math.log1p(ci[0]), 0.0)
    d_hi = max(math.log1p(ci[1]) - mid, 0.0)
    lo = _expm1(mid - math.hypot(d_lo, allowance))
    hi = _expm1(mid + math.hypot(d_hi, allowance))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return Judged(change=change, ci=(math.nan, math.nan), decided_by="invalid", significant_slower=False,
                      significant_faster=False)
    side = d_lo if change >= 0 else d_hi
    bar = _expm1(math.hypot(side, allowance))
    fails_above = fail_bar(d_lo, allowance, tolerance)
    if tolerance >= bar:
        decided = "tolerance"
    else:
        decided = "run_noise" if allowance >= side else "sample_noise"
    return Judged(change=change, ci=(lo, hi), decided_by=decided, significant_slower=lo > 0.0,
                  significant_faster=hi < 0.0, fails_above=fails_above, within=d_lo)


def status(j: Judged, tolerance: float) -> str:
    """The regression rule: beyond the tolerance AND significant given all
    the noise (both in :func:`fail_bar`, the ``fails_above`` every verdict
    reports); faster beyond both is ``improved``. A change that could not be
    judged (``widen``'s ``invalid``) is ``unreliable``, never a pass."""
    if j.decided_by == "invalid" or not all(math.isfinite(x) for x in (j.change, *j.ci, j.fails_above)):
        return "unreliable"
    if j.change > max(tolerance, j.fails_above):
        return "regression"
    if j.change < -tolerance and j.significant_faster:
        return "improved"
    return "pass"


def too_wide(noise: RunNoise, change: float, ci: tuple[float, float], confidence: float) -> str | None:
    """Why a verdict that would pass cannot be trusted to, or None: the
    history spreads beyond :data:`MAX_SD`, or the interval is so wide that not
    even a slowdown of :data:`MAX_BAR` would have been caught."""
    if noise.capped:
        return (f"the baseline's runs spread with sd {noise.sd:.1%}, beyond the {MAX_SD:.0%} any real history "
                f"shows (an edited history, or runs measured under load)")
    if not all(math.isfinite(x) and x > -1.0 for x in (change, *ci)):
        return None
    side = max(math.log1p(change) - math.log1p(ci[0]), 0.0)
    smallest = _expm1(math.hypot(side, noise.allowance(confidence)))
    if smallest > MAX_BAR:
        return (f"the smallest slowdown it could catch is {smallest:+.0%} (this run's and the baseline's own "
                f"spread), more than {MAX_BAR:+.0%}")
    return None


def moved(new: float, history: Sequence[float], *, clock: str, tolerance: float, confidence: float,
          override: float | None = None) -> float | None:
    """The relative move of ``new`` from the history's centre when it is
    beyond both the tolerance and the between-run noise (the level changed:
    an accepted regression or improvement), else None."""
    if not history:
        return None
    noise = estimate(clock, history, override)
    step = math.log(new / centre(history))
    if abs(step) > max(math.log1p(tolerance), noise.allowance(confidence)):
        return math.expm1(step)
    return None
