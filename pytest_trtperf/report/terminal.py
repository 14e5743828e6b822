"""Terminal summary table and the ``--trt-json`` document."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .. import __version__
from ..baseline import dumps
from ..files import atomic_write
from .format import fmt_change, fmt_value
from ..results import Result

#: Version of the --trt-json document (see schemas/trtperf-json.schema.json).
JSON_SCHEMA_VERSION = 1

#: Regressions first, then what needs attention, then the rest.
_ORDER = {"regression": 0, "missing": 1, "incomparable": 2, "improved": 3, "pass": 4, "updated": 5, "off": 6}


def sort_results(results: Iterable[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (_ORDER.get(r.verdict.status if r.verdict else "off", 9), r.id))


def shown_flags(r: Result, sep: str = ", ") -> str:
    """The flags that bear on the verdict (``Verdict.flags``), or ``-``; the
    raw ``device_state.flags`` stay in the JSON and the HTML detail."""
    return sep.join(r.verdict.flags) if r.verdict is not None and r.verdict.flags else "-"


def compared_cells(r: Result) -> tuple[str, str, str]:
    """The metric, baseline and current cells of a report row. A relative
    verdict compares side a with side b (``median b/a``, ``a 1.2 ms``,
    ``b 1.3 ms``); one re-measured against the baseline's own model
    (``--trt-ab-confirm``) names the model's commit for a and ``now`` for b."""
    v = r.verdict
    rel = r.relative
    if rel is not None:
        first = f"{rel.commit[:7]} " if rel.origin == "ab_confirm" and rel.commit else "a "
        second = "now " if rel.origin == "ab_confirm" else "b "
        return (f"{rel.metric} b/a" if rel.origin == "compare" else f"{rel.metric} A/B",
                first + fmt_value(rel.metric, rel.a.metric_value(rel.metric)),
                second + fmt_value(rel.metric, rel.b.metric_value(rel.metric)))
    metric = v.metric if v else "median"
    return metric, fmt_value(metric, v.baseline_value if v else None), fmt_value(metric, r.metric_value(metric))


def table_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = []
    for r in sort_results(results):
        v = r.verdict
        rows.append([
            r.id,
            *compared_cells(r),
            fmt_change(v.change if v else None),
            (v.status.upper() if v and v.status == "regression" else (v.status if v else "-"))
            + (" (re-measured)" if v and v.remeasured else ""),
            shown_flags(r),
        ])
    return rows


HEADER = ["result", "metric", "baseline", "current", "change", "verdict", "flags"]


def format_table(results: Sequence[Result], *, max_id: int = 60) -> list[str]:
    """Plain-text table, one row per result."""
    rows = table_rows(results)
    for row in rows:
        if len(row[0]) > max_id:
            row[0] = "..." + row[0][-(max_id - 3):]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(HEADER), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def summary_lines(results: Sequence[Result], *, written: Sequence[str], write_error: str | None) -> list[str]:
    """Everything the terminal summary prints below the table."""
    out: list[str] = []
    counts: dict[str, int] = {}
    for r in results:
        s = r.verdict.status if r.verdict else "off"
        counts[s] = counts.get(s, 0) + 1
    out.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: _ORDER.get(kv[0], 9))))
    for r in sort_results(results):
        if r.verdict and r.verdict.status in ("regression", "incomparable", "improved"):
            out.append(r.verdict.message)
    missing = [r for r in results if r.verdict and r.verdict.status == "missing"]
    if missing:
        out.append(f"{len(missing)} result(s) have no baseline; record them with pytest --trt-baseline=update")
    for r in results:
        for note in r.notes:
            out.append(f"{r.id}: note: {note}")
    for p in written:
        out.append(f"baseline written: {p}")
    if write_error:
        out.append(f"baseline NOT written: {write_error}")
    return out


def json_document(results: Sequence[Result], *, settings: Any, started: str, finished: str,
                  exitstatus: int | None, written: Sequence[str]) -> dict[str, Any]:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": {"name": "pytest-trtperf", "version": __version__},
        "session": {
            "started": started,
            "finished": finished,
            "exitstatus": exitstatus,
            "baseline_mode": settings.baseline_mode,
            "baseline_dir": str(settings.baseline_dir),
            "baselines_written": list(written),
        },
        "results": [r.to_dict() for r in sort_results(results)],
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    atomic_write(path, dumps(doc))


def junit_properties(results: Sequence[Result]) -> list[tuple[str, Any]]:
    """Per-result properties for JUnit XML (``--junitxml``)."""
    props: list[tuple[str, Any]] = []
    for r in results:
        label = f"trtperf[{r.name}]" if r.name else "trtperf"
        props += [(f"{label}.median_ms", f"{r.latency.median:.6g}"),
                  (f"{label}.throughput", f"{r.throughput:.6g}")]
        if r.verdict is not None:
            props.append((f"{label}.verdict", r.verdict.status))
            if r.verdict.change is not None:
                props.append((f"{label}.change", f"{r.verdict.change:+.4f}"))
        if r.relative is not None:
            rel = r.relative
            props += [(f"{label}.ratio", f"{rel.ratio:.6g}"), (f"{label}.ratio_ci", f"{rel.ci[0]:.6g}..{rel.ci[1]:.6g}"),
                      (f"{label}.a_{rel.metric}", f"{rel.a.metric_value(rel.metric):.6g}")]
    return props
