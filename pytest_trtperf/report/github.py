"""GitHub Actions output: a Markdown job summary and error annotations.

A red check mark is only useful if the page it leads to says what moved. The
job summary (``$GITHUB_STEP_SUMMARY``) gets a table of every result,
regressions first; a failing result also prints an ``::error`` workflow
command, so GitHub marks the test's line in the pull request's diff.
Pure text functions plus two tiny writers; the plugin decides when to call them.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from collections.abc import Mapping, Sequence

from pytest_trtperf.report import grouping, memory_rows
from pytest_trtperf.core import units
from pytest_trtperf.core.formatting import fmt_change, message_safe, no_controls
from pytest_trtperf.report.terminal import compared_cells, fails_above_cell, shown_flags, sort_results, table_unit
from pytest_trtperf.core.results import Result

#: Above this many rows, the full table is folded into <details>.
FOLD_ROWS = 20
#: GitHub refuses step summaries over 1 MiB; stay well below.
MAX_ROWS = 1000
MAX_ID = 120
#: Largest summary we append, in UTF-8 bytes: GitHub drops a step's summary
#: over 1 MiB whole (4,938 regressions made 1.24 MB: the summary was lost
#: exactly when everything regressed). The rest of the MiB is left to the
#: other steps' summaries of the same job step.
MAX_SUMMARY_BYTES = 768 * 1024
#: Shares of the budget: the table of results that need attention, their
#: details, then the table of all results gets what is left.
_ATTENTION_SHARE, _DETAILS_SHARE = 0.40, 0.30
_LEFT_OUT = ("left out: GitHub drops job summaries over 1 MiB; every result is in the terminal log and in the "
             "--trt-json and --trt-report files when given")

_ICON = {"regression": "\u274c", "unreliable": "\u23f3", "improved": "\U0001f680", "missing": "\u2753",
         "incomparable": "\u26a0\ufe0f", "pass": "\u2705", "not_written": "\U0001f6ab", "updated": "\U0001f4dd",
         "off": "\u2796", "disabled": "\u23f8\ufe0f", "new": "\U0001f195"}
_ATTENTION = ("regression", "unreliable", "incomparable", "missing", "not_written")


def enabled(environ: Mapping[str, str] | None = None) -> tuple[Path | None, bool]:
    """(summary file, annotations on) from the environment GitHub sets."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_STEP_SUMMARY") or None
    return (Path(path) if path else None, env.get("GITHUB_ACTIONS") == "true")


def md_cell(text: str, max_len: int | None = None) -> str:
    """Text safe inside a Markdown table cell: GitHub renders HTML in cells, so
    escape it; pipes and newlines would break the row."""
    if max_len is not None and len(text) > max_len:
        keep = max_len - 1
        text = text[: keep // 2] + "\u2026" + text[len(text) - (keep - keep // 2):]
    text = html.escape(no_controls(text), quote=False).replace("|", "\\|").replace("`", "&#96;")
    return " ".join(text.split())


def _row(r: Result, unit: units.TimeUnit) -> str:
    v = r.verdict
    metric, baseline, current = compared_cells(r, unit)
    status = v.status if v else "off"
    verdict = f"{_ICON.get(status, '')} **{status}**" if status in _ATTENTION else f"{_ICON.get(status, '')} {status}"
    if v and v.remeasured:
        verdict += " (re-measured)"
    cells = [
        md_cell(r.id, MAX_ID),
        md_cell(metric),
        md_cell(baseline),
        md_cell(current),
        md_cell(fmt_change(v.change if v else None, v.ci if v else None)),
        verdict,
        md_cell(fails_above_cell(r)),
        md_cell(shown_flags(r)),
    ]
    lines = ["| " + " | ".join(cells) + " |"]
    for m in memory_rows.rows(r):  # the memory gate's figures, before/after bytes
        icon = _ICON.get(m.status, "")
        mark = f"{icon} **{m.status}**" if m.status in _ATTENTION else f"{icon} {m.status}"
        lines.append("| " + " | ".join([md_cell(r.id, MAX_ID), m.metric, m.baseline, m.current, m.change,
                                        mark + (" (re-measured)" if m.remeasured else ""), "-", "-"]) + " |")
    return "\n".join(lines)


_HEAD = ["| result | metric | baseline | current | change [CI] | verdict | fails above | state flags |",
         "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |"]


def _table(results: Sequence[Result], unit: units.TimeUnit, group_by: Sequence[str] = ("group",)) -> list[str]:
    """One table in the summary's time unit; with groups, a bold row opens each block."""
    shown = results[:MAX_ROWS]
    blocks = grouping.grouped(shown, group_by)
    rows = []
    for label, block in blocks:
        if grouping.show_labels(blocks):
            rows.append(f"| **{md_cell(label or grouping.NO_GROUP)}** | | | | | | | |")
        rows += [_row(r, unit) for r in block]
    if len(results) > MAX_ROWS:
        rows.append(f"| \u2026 {len(results) - MAX_ROWS} more results in the --trt-json output | | | | | | | |")
    return [*_HEAD, *rows]


def _icon_counts(statuses: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{_ICON.get(s, '')} {counts[s]} {s}" for s in sorted(counts, key=lambda s: list(_ICON).index(s) if s in _ICON else len(_ICON)))


def counts_line(results: Sequence[Result]) -> str:
    """``❌ 1 regression, ✅ 3 pass; memory: ❌ 1 regression``. Results are
    counted by the status the tables sort them by (``memory_rows.status``), so
    a result whose memory regressed counts as a regression and the headline
    never shows only a pass mark for a failed test; the memory verdicts that
    moved follow."""
    line = _icon_counts([memory_rows.status(r) for r in results])
    moved = [r.memory_verdict.status for r in results
             if r.memory_verdict is not None and r.memory_verdict.status in ("regression", "improved")]
    return line + (f"; memory: {_icon_counts(moved)}" if moved else "")


def _size(lines: Sequence[str]) -> int:
    return sum(len(x.encode("utf-8")) + 1 for x in lines)


def _fit(lines: Sequence[str], budget: int, what: str, keep: int = 0) -> list[str]:
    """The first lines of ``lines`` that fit ``budget`` bytes (the first
    ``keep`` always: a table's head), then one line saying how many were
    left out and where they are."""
    out = list(lines[:keep])
    used = _size(out)
    for i, line in enumerate(lines[keep:], keep):
        used += len(line.encode("utf-8")) + 1
        if used > budget:
            out.append(f"\u2026 {len(lines) - i} more {what} {_LEFT_OUT}")
            break
        out.append(line)
    return out


def _table_fit(results: Sequence[Result], unit: units.TimeUnit, group_by: Sequence[str], budget: int) -> list[str]:
    """``_table`` within ``budget`` bytes; the left-out line is a table row."""
    rows = _table(results, unit, group_by)
    fitted = _fit(rows, budget, "rows", keep=len(_HEAD))
    if len(fitted) <= len(rows) and fitted[-1] not in rows:
        fitted[-1] = f"| {md_cell(fitted[-1])} | | | | | | |"
    return fitted


def step_summary(results: Sequence[Result], *, title: str = "pytest-trtperf",
                 group_by: Sequence[str] = ("group",)) -> str:
    """The Markdown section appended to the job summary, at most
    ``MAX_SUMMARY_BYTES``: the counts line always, then the results that
    need attention, their details and the table of all results, each within
    its share of the budget and ending with a line that says what was left
    out and where it is. Every table of it writes times in the unit the
    terminal's table chose from the same results, so a number reads the same
    in the table of results that need attention, in the table of all results
    and in the terminal; the messages spell microseconds ``µs`` as the tables
    do."""
    ordered = sort_results(results)
    attention = [r for r in ordered if memory_rows.status(r) in _ATTENTION]
    unit = table_unit(ordered, units.MICRO)
    out = [f"## {md_cell(title)}", "", counts_line(ordered), ""]
    budget = MAX_SUMMARY_BYTES - _size(out) - 1024  # room for the fences and closing lines
    if len(ordered) <= FOLD_ROWS:
        out += _table_fit(ordered, unit, group_by, budget)
        budget -= _size(out)
        full: list[str] = []
    else:
        if attention:
            out += _table_fit(attention, unit, group_by, int(budget * _ATTENTION_SHARE)) + [""]
        full = ["<details>", f"<summary>All {len(ordered)} results</summary>", ""]
    messages = [message_safe(f"{r.id}: {units.spelled(r.verdict.message, units.MICRO, (r.id, r.name or ''))}", r.id)
                for r in ordered
                if r.verdict and r.verdict.status in ("regression", "unreliable")]
    messages += [message_safe(m, r.id) for r in ordered for m in memory_rows.messages([r], ("regression",))]
    if messages:
        lines = _fit([m.replace("```", "'''") for m in messages], int(budget * _DETAILS_SHARE), "details")
        out += ["", "<details open>", "<summary>Regression and unreliable details</summary>", "", "```text",
                *lines, "```", "", "</details>"]
    if full:
        left = MAX_SUMMARY_BYTES - _size(out) - _size(full) - 256
        out += ["", *full, *_table_fit(ordered, unit, group_by, max(left, 0)), "", "</details>"]
    return "\n".join(out) + "\n\n"


def append_step_summary(path: Path, text: str) -> None:
    """Append (GitHub concatenates what every step wrote)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _escape_data(s: str) -> str:
    s = no_controls(s)  # CR and LF are escaped below; no other control character reaches the log raw
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def relative_path(path: str, roots: Sequence[Path]) -> str:
    """``path`` relative to the first root containing it (the workspace, then
    the rootdir); unchanged when outside all of them."""
    p = Path(path)
    for root in roots:
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return p.as_posix()


def workflow_annotations(results: Sequence[Result], roots: Sequence[Path]) -> list[str]:
    """``::error`` for results that failed the gate (regressions, invalid
    data), ``::warning`` for unreliable results and incomparable baselines."""
    out = []
    for r in sort_results(results):
        v = r.verdict
        if v is None or (v.status not in ("regression", "unreliable", "incomparable")
                         and v.decided_by != "suspect_baseline"):
            continue
        level = "error" if v.failed else "warning"
        what = f"{v.status}, suspect baseline" if v.decided_by == "suspect_baseline" else v.status
        props = [f"title={_escape_property('trtperf ' + what + ': ' + r.id[:200])}"]
        if r.location:
            props.insert(0, f"file={_escape_property(relative_path(str(r.location[0]), roots))}")
            props.insert(1, f"line={int(r.location[1])}")
        out.append(f"::{level} {','.join(props)}::{_escape_data(v.message)}")
    for r in memory_rows.failed(sort_results(results)):
        assert r.memory_verdict is not None
        props = [f"title={_escape_property('trtperf memory regression: ' + r.id[:200])}"]
        if r.location:
            props.insert(0, f"file={_escape_property(relative_path(str(r.location[0]), roots))}")
            props.insert(1, f"line={int(r.location[1])}")
        out.append(f"::error {','.join(props)}::{_escape_data(r.memory_verdict.message)}")
    return out


def write_step_summary(results: Sequence[Result], environ: Mapping[str, str] | None = None, *,
                       group_by: Sequence[str] = ("group",)) -> list[str]:
    """Append the summary when ``$GITHUB_STEP_SUMMARY`` is set; returns the
    line for the terminal (an unwritable file is reported, never raised)."""
    path, _ = enabled(environ)
    if path is None or not results:
        return []
    try:
        append_step_summary(path, step_summary(results, group_by=group_by))
    except OSError as e:
        return [f"GitHub job summary NOT written: {path}: {e.strerror or e}"]
    return [f"GitHub job summary appended to {path}"]


def annotations_for(results: Sequence[Result], rootdir: Path,
                    environ: Mapping[str, str] | None = None) -> list[str]:
    """Workflow commands to print, only under GitHub Actions. Paths are made
    relative to ``$GITHUB_WORKSPACE`` (the repository), else to the rootdir."""
    env = os.environ if environ is None else environ
    if not enabled(env)[1]:
        return []
    roots = [Path(env["GITHUB_WORKSPACE"])] if env.get("GITHUB_WORKSPACE") else []
    return workflow_annotations(results, [*roots, rootdir])
