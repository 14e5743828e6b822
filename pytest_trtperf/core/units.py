"""One time unit per table, chosen from the values the table shows.

A table that writes ``67.23 us`` in one row and ``0.06723 ms`` in the next,
or a report that says ``0.006142 ms`` where the terminal said ``6.14 us``,
makes the reader convert before comparing. Every report table (terminal,
history, ``compare``) picks its unit here, once, from its own values, and the
HTML report and the job summary take the terminal table's unit for the
whole page (``html.page_unit``), so one number reads the same everywhere:
the largest unit in which the smallest value is at least 1, like
pytest-benchmark's tables, and one number of decimals for the whole table.
Single values inside messages (``format.fmt_value``) use the same rule on
their own value.

Messages are made once, in ASCII (``us``), where the verdict is reached,
often in an xdist worker that cannot know how the text will be shown: they
are data (JSON, CSV, JUnit, workflow annotations, pytest's failure text).
Each display that knows its encoding spells them with :func:`spelled` (the
terminal summary by the terminal's encoding, the HTML report and the job
summary always).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

#: (name, units per millisecond), smallest unit first.
UNITS = (("ns", 1e6), ("us", 1e3), ("ms", 1.0), ("s", 1e-3))
#: A table whose largest value would need this many digits before the point
#: in the smallest value's unit takes the next unit up (``48,721.41 us`` reads
#: as ``48.72 ms``; the small values then get more decimals).
MAX_INTEGER = 10_000.0
#: ... but only while the smallest value still reads at least this much
#: there (``0.0502 ms``, never ``0.0000 ms``).
MIN_SHOWN = 0.01
#: The micro sign where the output encodes it (HTML, Markdown, a UTF-8 terminal).
MICRO = "\u00b5s"


def micro_for(encoding: str | None) -> str:
    """``µs`` for an output that encodes UTF-8, ``us`` otherwise."""
    return MICRO if (encoding or "").lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig") else "us"


#: ``us`` as :func:`format.fmt_value` writes it: right after a number.
_US = re.compile(r"(?<=\d) us\b")


def spelled(text: str, micro: str, keep: Iterable[str] = ()) -> str:
    """A message (ASCII, ``1,776.56 us``) with microseconds spelled ``micro``
    (:func:`micro_for`). Only a number's unit changes, and never inside the
    user's own text quoted in it (``keep``: the result id, a measurement's
    name), so an id ``test_x[5 us]`` reads as written."""
    if micro == "us" or " us" not in text:
        return text
    protected = sorted({k for k in keep if k}, key=len, reverse=True)
    if not protected:
        return _US.sub(" " + micro, text)
    parts = re.split("(" + "|".join(re.escape(k) for k in protected) + ")", text)
    return "".join(part if i % 2 else _US.sub(" " + micro, part) for i, part in enumerate(parts))


@dataclass(frozen=True)
class TimeUnit:
    """A unit and the decimals of one table."""

    name: str
    per_ms: float
    decimals: int

    def scale(self, ms: float) -> float:
        """``ms`` in this unit."""
        return ms * self.per_ms

    def fmt(self, ms: Any) -> str:
        """``ms`` written in this unit (``-`` for a missing or non-finite value)."""
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
            return "-"
        return f"{ms * self.per_ms:,.{self.decimals}f} {self.name}"

    @property
    def label(self) -> str:
        """For axis labels: ``latency (us)``."""
        return self.name


def choose(values_ms: Iterable[Any], micro: str = "us", *, across: bool = False) -> TimeUnit:
    """The unit for a table of these values (milliseconds): the largest unit
    in which the smallest positive finite value reads at least 1; for a table
    ``across`` results (the summary tables), a larger one while the largest
    value would read :data:`MAX_INTEGER` or more (one result's quantiles keep
    the smallest value's unit: a tail must not turn them into ``0.0007
    ms``). 3, 2 or 1 decimals as the smallest value has 1, 2 or 3+ digits
    before the point (4 when it reads below 1). ``micro`` spells microseconds
    (:func:`micro_for`)."""
    vals = [float(v) for v in values_ms
            if not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if not vals:
        return TimeUnit("ms", 1.0, 3)
    smallest, largest = min(vals), max(vals)
    i = 0
    for k, (_, p) in enumerate(UNITS):
        if smallest * p >= 1.0:
            i = k
    while (across and i + 1 < len(UNITS) and largest * UNITS[i][1] >= MAX_INTEGER
           and smallest * UNITS[i + 1][1] >= MIN_SHOWN):
        i += 1
    name, per_ms = UNITS[i]
    v = smallest * per_ms
    decimals = 4 if v < 1 else 3 if v < 10 else 2 if v < 100 else 1
    return TimeUnit(micro if name == "us" else name, per_ms, decimals)
