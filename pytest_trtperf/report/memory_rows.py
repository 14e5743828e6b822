"""Memory in the reports: the rows the tables show for a result whose gated
memory figures moved (before/after bytes, change, verdict), under its time row.

Shared by the terminal table, the GitHub job summary and the HTML report, so
they say the same thing. ``--trt-metric`` picks the time row; memory rows are
always the memory gate's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable, Sequence

from pytest_trtperf.core.memory import FIGURES, SHORT, MemoryVerdict
from pytest_trtperf.gate.memory import overall_status
from pytest_trtperf.core.results import Result
from pytest_trtperf.core.formatting import fmt_bytes, fmt_change

#: Memory verdicts that get their own rows in the tables.
_SHOWN = ("regression", "improved")


@dataclass(frozen=True)
class MemoryRow:
    """One gated figure of one result, as the tables show it."""

    metric: str
    baseline: str
    current: str
    change: str
    status: str
    remeasured: bool = False


def rows(r: Result) -> list[MemoryRow]:
    """Rows for a result whose memory moved beyond its tolerance (regression or
    improved); the others keep one row per result (every figure is in the
    HTML report's memory table and the JSON)."""
    v = r.memory_verdict
    if v is None or v.status not in _SHOWN:
        return []
    out = []
    for c in v.changes:
        status = c.status
        change = fmt_change(c.change) if c.change is not None else ("new" if c.baseline == 0 and c.current else "-")
        out.append(MemoryRow(SHORT.get(c.figure, c.figure), fmt_bytes(c.baseline), fmt_bytes(c.current),
                             change if c.baseline is not None else "-", status, v.remeasured))
    return out


def status(r: Result) -> str:
    """The status a report sorts, counts and colours a result by."""
    return overall_status(r.verdict.status if r.verdict else None, r.memory_verdict)


def failed(results: Iterable[Result]) -> list[Result]:
    """Results whose memory regressed."""
    return [r for r in results if r.memory_verdict is not None and r.memory_verdict.failed]


def messages(results: Sequence[Result], statuses: Sequence[str] = ("regression", "improved")) -> list[str]:
    return [f"{r.id}: {r.memory_verdict.message}" for r in results
            if r.memory_verdict is not None and r.memory_verdict.status in statuses and r.memory_verdict.message]


def counts_text(results: Iterable[Result]) -> str:
    """``1 memory regression, 2 memory improved`` (empty when none)."""
    counts: dict[str, int] = {}
    for r in results:
        v: MemoryVerdict | None = r.memory_verdict
        if v is not None and v.status in ("regression", "improved"):
            counts[v.status] = counts.get(v.status, 0) + 1
    return ", ".join(f"{n} memory {s}" for s, n in sorted(counts.items()))


def figures_table(r: Result, baseline: dict[str, int] | None) -> list[tuple[str, str, str, str]]:
    """Every figure of a result (gated or not) against the baseline's:
    (label, baseline, this run, change)."""
    base = baseline or {}
    out = []
    for name, label in FIGURES.items():
        if name not in r.memory and name not in base:
            continue
        cur, old = r.memory.get(name), base.get(name)
        change = fmt_change(cur / old - 1) if cur is not None and old else "-"
        out.append((label, fmt_bytes(old), fmt_bytes(cur), change))
    return out
