"""What a verdict could have caught: the smallest slowdown that would have
failed it now, and what more baseline runs would bring that bar down to.

A gate whose bar is invisible is a gate users stop trusting: with a one-run
host baseline the tolerance of 5% is widened by the between-run prior to about
13.6%, so +13% passes, and without this number a user concludes the gate is
broken. The bar itself is ``noise.fail_bar`` (the function ``noise.status``
decides by); this module only asks it again with a longer history, so the
projection cannot drift from the decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

from pytest_trtperf.core.noise import HISTORY_RUNS, centre, estimate, fail_bar

#: The projection suggests at most this many more ``update`` runs.
MORE_RUNS = 3
#: A projection is shown only when it lowers the bar by at least this much
#: (absolute): "1 more run would bring it from 5.3% to 5.2%" helps nobody.
MIN_GAIN = 0.005


@dataclass(frozen=True)
class Projection:
    """``more_runs`` more ``update`` runs would bring the bar to ``fails_above``."""

    more_runs: int
    fails_above: float

    def to_dict(self) -> dict[str, Any]:
        return {"more_runs": self.more_runs, "fails_above": self.fails_above}


def projection(clock: str, values: Sequence[float], *, within: float, tolerance: float, confidence: float,
               fails_above: float, override: float | None = None) -> Projection | None:
    """The bar after up to :data:`MORE_RUNS` more baseline runs that land at
    the centre of the runs so far (the history cannot hold more than
    ``noise.HISTORY_RUNS``), with this run's within-run half-width
    ``within``. None when the history is full, the bar is the tolerance
    already, or more runs would lower it by less than :data:`MIN_GAIN`."""
    more = min(MORE_RUNS, HISTORY_RUNS - len(values))
    if more <= 0 or not values or not math.isfinite(fails_above) or fails_above <= tolerance:
        return None
    longer = [*values, *([centre(values)] * more)]
    then = fail_bar(within, estimate(clock, longer, override).allowance(confidence), tolerance)
    if not math.isfinite(then) or fails_above - then < MIN_GAIN:
        return None
    return Projection(more, then)


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.05 else f"{x:.1%}"


def explain(change: float | None, fails_above: float | None, run_noise: Mapping[str, Any] | None,
            later: Mapping[str, Any] | None) -> str:
    """``+13.0% is inside what this test can tell apart: 13.6%; 1 baseline
    run; 3 more update runs would bring it to about 7%`` (empty without a
    bar)."""
    if fails_above is None or not math.isfinite(fails_above):
        return ""
    head = (f"{change * 100:+.1f}% is inside what this test can tell apart: {fails_above:.1%}"
            if change is not None else f"this test can tell apart {fails_above:.1%}")
    runs = run_noise.get("runs") if run_noise else None
    if isinstance(runs, int):
        head += f"; {runs} baseline run{'s' if runs != 1 else ''}"
    if later:
        n = later.get("more_runs")
        head += (f"; {n} more update run{'s' if n != 1 else ''} would bring it to about "
                 f"{_pct(float(later.get('fails_above', math.nan)))}")
    return head
