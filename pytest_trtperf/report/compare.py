"""``pytest-trtperf compare A.json B.json``: judge one ``--trt-json``
document against another, offline, with the gate's own rule.

Each result of B is judged against the result of A with the same id, as if A
were its baseline: the same ``gate.judge`` (tolerance and significance from
both samples' stored distributions, incomparable across device classes and
configurations) and the same memory rule. Nothing is measured again, so a
suspected regression cannot be confirmed by a second measurement; the
verdict says what the two documents show. Results only in A are listed;
results only in B are ``missing``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.core.memory import DEFAULT_TOLERANCE
from pytest_trtperf.gate.memory import judge_memory
from pytest_trtperf.core.results import Result
from pytest_trtperf.report.document import Document

#: The gate's defaults, for results whose document carries no verdict.
DEFAULT_METRIC, DEFAULT_TOL, DEFAULT_CONFIDENCE = "median", 0.05, 0.99


@dataclass(frozen=True)
class Comparison:
    """B's results judged against A's, and the ids A has that B lacks."""

    results: list[Result]
    only_in_a: list[str]
    entries: dict[str, BaselineEntry]

    @property
    def regressions(self) -> int:
        return sum(1 for r in self.results
                   if (r.verdict is not None and r.verdict.failed)
                   or (r.memory_verdict is not None and r.memory_verdict.failed))


def compare_documents(a: Document, b: Document, *, a_name: str, metric: str | None = None,
                      tolerance: float | None = None, confidence: float | None = None,
                      a_time: str = "") -> Comparison:
    """Judge every result of ``b`` against ``a``'s result of the same id.
    ``metric``/``tolerance``/``confidence`` override what each of ``b``'s
    results was gated with (its own verdict's settings, else the defaults)."""
    base = {r.id: r for r in a.results}
    # The HTML sections say "baseline from ..." with the entry's timestamp: name A there.
    entries = {rid: BaselineEntry.from_result(r, timestamp=a_time or a_name, git_commit=None)
               for rid, r in base.items()}
    out = []
    for r in b.results:
        v = r.verdict
        m = metric or (v.metric if v is not None else DEFAULT_METRIC)
        tol = tolerance if tolerance is not None else (v.tolerance if v is not None else DEFAULT_TOL)
        conf = confidence or (v.confidence if v is not None and v.confidence else DEFAULT_CONFIDENCE)
        entry = entries.get(r.id)
        verdict = judge(r, entry, baseline_mode="compare", metric=m, tolerance=tol, confidence=conf,
                        baseline_path=a_name)
        mem_tol = r.memory_verdict.tolerance if r.memory_verdict is not None else DEFAULT_TOLERANCE
        memory_verdict = judge_memory(r.memory, entry, verdict, baseline_mode="compare", tolerance=mem_tol,
                                      baseline_path=a_name)
        out.append(dataclasses.replace(r, verdict=verdict, memory_verdict=memory_verdict))
    seen = {r.id for r in b.results}
    return Comparison(results=out, only_in_a=[rid for rid in base if rid not in seen],
                      entries={rid: e for rid, e in entries.items() if rid in seen})


def summary_lines(c: Comparison, a_name: str, b_name: str) -> list[str]:
    """What the terminal says under the table."""
    from pytest_trtperf.report.terminal import summary_lines as session_lines

    out = session_lines(c.results, written=(), write_error=None)
    out = [line.replace("record them with pytest --trt-baseline=update", f"they are not in {a_name}")
           for line in out]
    if c.only_in_a:
        shown = ", ".join(c.only_in_a[:5]) + (f" (+{len(c.only_in_a) - 5} more)" if len(c.only_in_a) > 5 else "")
        out.append(f"{len(c.only_in_a)} result(s) only in {a_name}, not in {b_name}: {shown}")
    return out


def headline(c: Comparison, a_name: str, b_name: str) -> str:
    return (f"{b_name} against {a_name}: {len(c.results)} result(s), {c.regressions} regression(s)"
            + ("" if c.regressions == 0 else " (exit status 1)"))
