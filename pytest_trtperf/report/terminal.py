"""Terminal summary table and the ``--trt-json`` document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from pytest_trtperf.core.version import __version__
from pytest_trtperf.baselines.store import dumps
from pytest_trtperf.core.files import atomic_write
from pytest_trtperf.report import grouping, memory_rows, serve_rows
from pytest_trtperf.core import metrics, units
from pytest_trtperf.core.formatting import fmt_change, fmt_value, log_safe, message_safe, metric_of, no_controls
from pytest_trtperf.core.results import Result

#: Version of the --trt-json document (see schemas/trtperf-json.schema.json).
#: 2 added memory, memory_verdict, group, extra_info, params and relative per
#: result; readers still accept 1 (report.document.SCHEMA_FILES).
JSON_SCHEMA_VERSION = 2

#: Regressions first, then what needs attention, then the rest.
_ORDER = {"regression": 0, "unreliable": 1, "missing": 2, "incomparable": 3, "improved": 4, "pass": 5,
          "new": 6, "not_written": 7, "updated": 8, "off": 9, "disabled": 10}


def status_words(status: str) -> str:
    """A status as the terminal writes it: ``not_written`` -> ``not written``."""
    return status.replace("_", " ")


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """``t[1000]`` before ``t[10000]`` before ``t[100000]``: runs of digits
    compare as numbers (parametrised results in their natural order)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(text) if part)


def sort_results(results: Iterable[Result]) -> list[Result]:
    """A memory regression sorts as a regression (``memory_rows.status``);
    within a status, ids in natural order."""
    return sorted(results, key=lambda r: (_ORDER.get(memory_rows.status(r), 11), natural_key(r.id)))


def shown_flags(r: Result, sep: str = ", ") -> str:
    """The flags that bear on the verdict (``Verdict.flags``), or ``-``; the
    raw ``device_state.flags`` stay in the JSON and the HTML detail."""
    return sep.join(r.verdict.flags) if r.verdict is not None and r.verdict.flags else "-"


def verdict_cell(r: Result) -> str:
    """``REGRESSION (re-measured)``, ``pass``, ``not written (host busy)``:
    the verdict word, and for an update that was not written, why (in place
    of ``(re-measured)``: its message says both)."""
    v = r.verdict
    if v is None:
        return "-"
    text = v.status.upper() if v.status == "regression" else status_words(v.status)
    if v.status == "not_written":
        why = {"host_busy": "host busy", "gpu_busy": "GPU busy"}.get(v.decided_by or "", "test failed")
        return f"{text} ({why})"
    return text + (" (re-measured)" if v.remeasured else "")


def fails_above_cell(r: Result) -> str:
    """The smallest slowdown that would have failed the result now
    (``Verdict.fails_above``): ``+13.6%``, or ``-`` when nothing was judged."""
    v = r.verdict
    return fmt_change(v.fails_above) if v is not None and v.fails_above is not None else "-"


def compared_cells(r: Result, unit: units.TimeUnit | None = None) -> tuple[str, str, str]:
    """The metric, baseline and current cells of a report row. A relative
    verdict compares side a with side b (``median b/a``, ``a 1.2 ms``,
    ``b 1.3 ms``); one re-measured against the baseline's own model
    (``--trt-ab-confirm``) names the model's commit for a and ``now`` for b."""
    v = r.verdict
    rel = r.relative
    if rel is not None:
        against = rel.origin in ("ab_confirm", "side_by_side")
        first = f"{rel.commit[:7]} " if against and rel.commit else ("ref " if against else "a ")
        second = "now " if against else "b "
        return (f"{rel.metric} b/a" if rel.origin == "compare" else f"{rel.metric} A/B",
                first + fmt_value(rel.metric, rel.a.metric_value(rel.metric), unit),
                second + fmt_value(rel.metric, rel.b.metric_value(rel.metric), unit))
    metric = v.metric if v else "median"
    return (metric, fmt_value(metric, v.baseline_value if v else None, unit),
            fmt_value(metric, metric_of(r, metric), unit))


def time_values(results: Iterable[Result]) -> list[float | None]:
    """The times (ms) a results table shows: baseline and current values of
    every time metric. ``units.choose`` picks the table's unit from them."""
    out: list[float | None] = []
    for r in results:
        v = r.verdict
        metric = v.metric if v else "median"
        if metrics.timing(metric).unit == metrics.TIME:
            out += [v.baseline_value if v else None, metric_of(r, metric)]
    return out


def table_unit(results: Iterable[Result], micro: str = "us") -> units.TimeUnit:
    return units.choose(time_values(results), micro, across=True)


def table_rows(results: Sequence[Result], unit: units.TimeUnit | None = None) -> list[list[str]]:
    unit = unit or table_unit(results)
    rows = []
    for r in sort_results(results):
        v = r.verdict
        rows.append([
            r.id,
            *compared_cells(r, unit),
            fmt_change(v.change if v else None),
            verdict_cell(r),
            shown_flags(r),
        ])
        for m in memory_rows.rows(r):  # the memory gate's figures: before/after bytes
            rows.append([r.id, m.metric, m.baseline, m.current, m.change,
                         (m.status.upper() if m.status == "regression" else m.status)
                         + (" (re-measured)" if m.remeasured else ""), "-"])
    return rows


#: ``state``: the flags of the machine's state that bear on the verdict (GPU or host).
HEADER = ["result", "metric", "baseline", "current", "change", "verdict", "state"]
#: The table's width where the terminal's is not known (CI logs).
DEFAULT_WIDTH = 100
#: An id is never shortened below this many characters.
MIN_ID = 24


def shorten_middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut in the middle: an id
    keeps its file name and its test (``.../test_x.py::test_long_na...3]``),
    directories go first."""
    if len(text) <= limit:
        return text
    path, sep, rest = text.partition("::")
    if sep and "/" in path:
        text = ".../" + path.rsplit("/", 1)[1] + sep + rest
        if len(text) <= limit:
            return text
    parts = text.split("::", 2)
    if len(parts) == 3:  # file::test::name: keep file::test, shorten the name
        prefix = f"{parts[0]}::{parts[1]}::"
        if len(prefix) + 8 <= limit:
            return prefix + _cut(parts[2], limit - len(prefix))
    if sep and len(parts[0]) + 2 + 12 <= limit:  # keep the file; the test keeps its start and [params]
        return parts[0] + "::" + _cut_keep_params(text[len(parts[0]) + 2:], limit - len(parts[0]) - 2)
    return _cut(text, limit)


def _cut_keep_params(text: str, limit: int) -> str:
    """``test_long_na...[100000]``: a test name cut in the middle with its
    parameters kept whole when they fit in half the room."""
    if len(text) > limit and text.endswith("]") and "[" in text:
        tail = text[text.rindex("["):]
        if len(tail) <= limit // 2:
            return text[: limit - len(tail) - 3] + "..." + tail
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    """``text`` cut in the middle to ``limit`` characters (``...`` in the cut)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    head = (keep + 1) // 2
    return text[:head] + "..." + text[len(text) - (keep - head):]


def format_table(results: Sequence[Result], *, width: int = DEFAULT_WIDTH, micro: str = "us",
                 group_by: Sequence[str] = ("group",)) -> list[str]:
    """Plain-text table, one row per result, in blocks under a ``[label]``
    line when results have groups (``--trt-group-by``); one time unit for the
    whole table (``micro``: how microseconds are spelled). It fits ``width``
    columns: long ids are shortened in the middle (:func:`shorten_middle`),
    and flags that do not fit continue on the next line, under their column.
    Cells are made safe for CI logs (an id with a newline or an escape
    sequence cannot start a line)."""
    unit = table_unit(results, micro)
    blocks = grouping.grouped(sort_results(results), group_by)
    labelled = grouping.show_labels(blocks)
    parts = [(lbl, [[log_safe(c) for c in row] for row in table_rows(rs, unit)]) for lbl, rs in blocks]
    rows = [row for _, block in parts for row in block]
    need = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    room = width - sum(need[1:-1]) - 2 * (len(HEADER) - 1)  # for the id and the flags
    id_width = min(need[0], max(MIN_ID, room - need[-1]))
    longest_flag = max((len(f) for row in rows for f in row[-1].split(", ")), default=0)
    flag_width = max(len(HEADER[-1]), longest_flag + 1, room - id_width)  # a flag is never cut
    wrapped: dict[int, list[str]] = {}
    for row in rows:
        row[0] = shorten_middle(row[0], id_width)
        wrapped[id(row)] = _wrap(row[-1], flag_width)
        row[-1] = wrapped[id(row)][0]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()  # noqa: E731
    out = [line(HEADER), line(["-" * w for w in widths])]
    for lbl, block in parts:
        if labelled:
            out.append(log_safe(f"[{lbl or grouping.NO_GROUP}]"))
        for r in block:
            out.append(line(r))
            out += [line([""] * (len(HEADER) - 1) + [more]) for more in wrapped[id(r)][1:]]
    return out


def _wrap(flags: str, limit: int) -> list[str]:
    """A flags cell in lines of at most ``limit`` characters, split after
    its commas (a single flag longer than that is cut in the middle)."""
    lines: list[str] = []
    for flag in flags.split(", "):
        if lines and len(lines[-1]) + 2 + len(flag) <= limit:
            lines[-1] += ", " + flag
        else:
            if lines:
                lines[-1] += ","
            lines.append(_cut(flag, limit))
    return lines or [""]


def skip_lines(skipped: Sequence[tuple[str, str]], *, max_ids: int = 5) -> list[str]:
    """Why trt_bench tests skipped, one line per reason (the node ids of the
    first few), so nobody needs ``-rs`` to learn that a GPU was missing."""
    by_reason: dict[str, list[str]] = {}
    for nodeid, reason in skipped:
        by_reason.setdefault(reason, []).append(nodeid)
    out = []
    for reason, ids in by_reason.items():
        shown = ", ".join(ids[:max_ids]) + (f" (+{len(ids) - max_ids} more)" if len(ids) > max_ids else "")
        out.append(log_safe(f"skipped {len(ids)} trt_bench test(s): {reason}: {shown}"))
    return out


def _hidden_by_noise(r: Result) -> bool:
    """A pass slower than its tolerance: the reader expects a failure, so
    the summary says what this test can tell apart (``Verdict.could_catch``)."""
    v = r.verdict
    return (v is not None and v.status == "pass" and v.change is not None and v.fails_above is not None
            and v.change > v.tolerance)


def summary_lines(results: Sequence[Result], *, written: Sequence[str], write_error: str | None,
                  not_written: Mapping[str, str] | None = None, notes: Sequence[str] = (),
                  micro: str = "us") -> list[str]:
    """Everything the terminal summary prints below the table: counts, the
    message of each result that needs attention (``<id>: <verdict>``), notes,
    and which baselines were and were not written. User text in it (ids,
    messages, notes) is made safe for CI logs; the messages' microseconds
    are spelled ``micro``, as in the table (``units.spelled``)."""
    out: list[str] = []
    counts: dict[str, int] = {}
    for r in results:  # a result whose memory regressed counts as a regression, as in the table
        s = memory_rows.status(r)
        counts[s] = counts.get(s, 0) + 1
    out.append(", ".join(f"{n} {status_words(s)}" for s, n in sorted(counts.items(),
                                                                     key=lambda kv: _ORDER.get(kv[0], 10)))
               + (f"; {memory_rows.counts_text(results)}" if memory_rows.counts_text(results) else ""))
    for r in sort_results(results):
        if r.verdict and r.verdict.status in ("regression", "unreliable", "incomparable", "improved"):
            message = units.spelled(r.verdict.message, micro, (r.id, r.name or ""))
            out.append(message_safe(f"{r.id}: {message}", r.id))
        elif _hidden_by_noise(r):
            assert r.verdict is not None
            out.append(message_safe(f"{r.id}: pass ({r.verdict.could_catch})", r.id))
        out += [message_safe(m, r.id) for m in memory_rows.messages([r])]
    suspect = [r.id for r in sort_results(results) if r.verdict and r.verdict.decided_by == "suspect_baseline"]
    if suspect:
        n = len(suspect)
        out.append(log_safe(
            f"WARNING: {n} baseline {'entry does' if n == 1 else 'entries do'} not describe the code it gates "
            f"(edited by hand, or a change to record with pytest --trt-baseline=update; pytest-trtperf verify "
            f"checks a file against its git history): {', '.join(suspect[:20])}{' ...' if n > 20 else ''}; "
            f"--trt-incomparable=fail fails them"))
    missing = [r for r in results if r.verdict and r.verdict.status == "missing"]
    if missing:
        out.append(f"{len(missing)} result(s) have no baseline; record them with pytest --trt-baseline=update")
    out += serve_rows.lines(results)
    for r in results:
        for note in r.notes:
            out.append(log_safe(f"{r.id}: note: {note}"))
    for p in written:
        out.append(log_safe(f"baseline written: {p}"))
    for line in notes:
        out.append(log_safe(f"baseline note: {line}"))
    for rid, why in sorted((not_written or {}).items()):
        out.append(log_safe(f"baseline not written for {rid}: {why}"))
    if write_error:
        out.append(log_safe(f"baseline NOT written: {write_error}", multiline=True))
    return out


def json_document(results: Sequence[Result], *, settings: Any, started: str, finished: str,
                  exitstatus: int | None, written: Sequence[str],
                  not_written: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``not_written``: result id -> why an ``update`` did not write it."""
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
            "baselines_not_written": [{"id": rid, "reason": why} for rid, why in sorted((not_written or {}).items())],
        },
        "results": [r.to_dict() for r in sort_results(results)],
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    atomic_write(path, dumps(doc))


def junit_properties(results: Sequence[Result]) -> list[tuple[str, Any]]:
    """Per-result properties for JUnit XML (``--junitxml``): the gated metric
    and its value (ms, or inferences/s for throughput), the verdict, the
    change, and the median and throughput whatever was gated."""
    props: list[tuple[str, Any]] = []
    for r in results:
        # pytest writes property names into the XML as they are: a control
        # character in a name made --junitxml ill-formed (issue 25).
        label = f"trtperf[{no_controls(r.name, multiline=False)}]" if r.name else "trtperf"
        metric = r.verdict.metric if r.verdict is not None else "median"
        props += [(f"{label}.metric", metric),
                  (f"{label}.value", f"{r.metric_value(metric):.6g}"),
                  (f"{label}.median_ms", f"{r.latency.median:.6g}"),
                  (f"{label}.throughput", f"{r.throughput:.6g}")]
        if r.verdict is not None:
            props.append((f"{label}.verdict", r.verdict.status))
            if r.verdict.baseline_value is not None:
                props.append((f"{label}.baseline", f"{r.verdict.baseline_value:.6g}"))
            if r.verdict.change is not None:
                props.append((f"{label}.change", f"{r.verdict.change:+.4f}"))
        props += [(f"{label}.{name}", str(value)) for name, value in sorted(r.memory.items())]
        if r.memory_verdict is not None:
            props.append((f"{label}.memory_verdict", r.memory_verdict.status))
        if r.relative is not None:
            rel = r.relative
            props += [(f"{label}.ratio", f"{rel.ratio:.6g}"), (f"{label}.ratio_ci", f"{rel.ci[0]:.6g}..{rel.ci[1]:.6g}"),
                      (f"{label}.a_{rel.metric}", f"{rel.a.metric_value(rel.metric):.6g}")]
    return props
