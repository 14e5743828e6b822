"""What the controller writes when the session ends: baselines, the JSON
document, the GitHub job summary, the HTML report; and what it prints.

Plain functions over the session state, so the hooks in ``plugin.py`` stay a
line or two and this can be tested without a terminal.
"""

from __future__ import annotations

from pathlib import Path

from . import terminal as report_mod
from . import github as report_github, html as report_html
from ..errors import BaselineFileError
from ..fingerprint import git_commit
from ..session import SessionState, now_iso

#: pytest exit codes (ints, so this module needs no pytest import).
INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR = 2, 3, 4


def write_outputs(state: SessionState, exitstatus: int) -> tuple[list[str], int | None]:
    """Write everything the session owes. Returns lines to print and, when a
    write failed, the exit status the session must end with."""
    s = state.settings
    lines: list[str] = []
    status: int | None = None
    # The HTML report shows the baselines as they were before an update.
    entries = report_html.baseline_entries(state.store, state.collected) if s.report_path else {}
    # A relative gate (trt_bench.compare) carries both sides itself: it never becomes a baseline.
    storable = [r for r in state.collected if r.relative is None or r.relative.origin != "compare"]
    if s.baseline_mode == "update" and storable:
        if exitstatus in (INTERRUPTED, INTERNAL_ERROR):
            state.write_error = "the session was interrupted; baselines are left as they were"
        else:
            try:
                paths = state.store.write(storable, timestamp=now_iso(), git_commit=git_commit(str(s.rootdir)))
                state.written = [str(p) for p in paths]
            except (BaselineFileError, OSError) as e:
                state.write_error = str(e)
                status = USAGE_ERROR
    if s.json_path is not None:
        doc = report_mod.json_document(state.collected, settings=s, started=state.started, finished=now_iso(),
                                       exitstatus=status if status is not None else exitstatus,
                                       written=state.written)
        try:
            report_mod.write_json(s.json_path, doc)
        except OSError as e:
            lines.append(f"--trt-json: could not write {s.json_path} ({e.strerror}); check the path")
            status = USAGE_ERROR
    lines += report_github.write_step_summary(state.collected)
    if s.report_path is not None:
        lines.append(report_html.write_report(Path(s.report_path), state.collected, entries, generated=now_iso(),
                                              baseline_mode=s.baseline_mode))
    return lines, status


def terminal_lines(state: SessionState, extra: list[str]) -> list[str]:
    """The trtperf section of the terminal summary (without its separator)."""
    out: list[str] = []
    if state.collected:
        out += report_mod.format_table(state.collected)
    out += report_mod.summary_lines(state.collected, written=state.written, write_error=state.write_error)
    out += extra
    out += report_github.annotations_for(state.collected, state.settings.rootdir)
    return out
