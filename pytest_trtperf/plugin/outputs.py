"""What the controller writes when the session ends: baselines, the JSON
document, the GitHub job summary, the HTML report; and what it prints.

Plain functions over the session state, so the hooks in ``plugin.py`` stay a
line or two and this can be tested without a terminal.

Nothing here may end the session in a traceback: the tests have run, and
their outcome must reach the terminal. Each output fails on its own with one
line naming it; the terminal says which outputs were written and which were
not; Ctrl-C while writing stops the remaining writes and ends the session
with exit status 2, each file being either the old one or the new one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from pytest_trtperf.report import terminal as report_mod
from pytest_trtperf.report import github as report_github, html as report_html
from pytest_trtperf.core.formatting import log_safe
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.core.fingerprint import git_commit
from pytest_trtperf.core.results import Result
from pytest_trtperf.plugin.session import SessionState, now_iso

#: pytest exit codes (ints, so this module needs no pytest import).
INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR = 2, 3, 4


@dataclass
class _Run:
    lines: list[str] = field(default_factory=list)
    status: int | None = None

    def fail(self, status: int) -> None:
        # The gravest failure decides: Ctrl-C, then our bug, then bad input.
        order = (INTERRUPTED, INTERNAL_ERROR, USAGE_ERROR)
        if self.status is None or order.index(status) < order.index(self.status):
            self.status = status


def _say_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _unexpected(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}; this is a bug in pytest-trtperf, please report it"


def write_outputs(state: SessionState, exitstatus: int,
                  say: Callable[[str], None] | None = None) -> tuple[list[str], int | None]:
    """Write everything the session owes. Returns lines to print and, when a
    write failed, the exit status the session must end with. ``say`` prints a
    line at once (a wait for the baseline lock)."""
    run = _Run()
    say = say or _say_stderr
    s = state.settings
    pending = ["baselines", "--trt-json", "--trt-csv", "GitHub job summary", "HTML report"]
    try:
        # The HTML report shows the baselines as they were before an update.
        entries = _entries(state) if s.report_path else {}
        pending.remove("baselines")
        _baselines(state, exitstatus, run, say)
        pending.remove("--trt-json")
        _json(state, exitstatus, run)
        pending.remove("--trt-csv")
        _csv(state, run)
        pending.remove("GitHub job summary")
        run.lines += _summary(state)
        if s.export_dir is not None and state.collected:
            run.lines.append(_export_index(s.export_dir, state))
        pending.remove("HTML report")
        if s.report_path is not None:
            run.lines.append(report_html.write_report(Path(s.report_path), state.collected, entries,
                                                      generated=now_iso(), baseline_mode=s.baseline_mode,
                                                      group_by=s.group_by))
    except KeyboardInterrupt:
        run.fail(INTERRUPTED)
        wanted = {"baselines": s.baseline_mode == "update" and bool(state.collected),
                  "--trt-json": s.json_path is not None,
                  "--trt-csv": s.csv_path is not None,
                  "GitHub job summary": report_github.enabled()[0] is not None and bool(state.collected),
                  "HTML report": s.report_path is not None}
        left = [name for name in pending if wanted[name] and not (name == "baselines" and state.write_error)]
        if left:
            run.lines.append(f"interrupted (Ctrl-C) while writing outputs: {', '.join(left)} NOT written")
    return [log_safe(line, multiline=True) for line in run.lines], run.status


def _entries(state: SessionState) -> dict:
    try:
        return report_html.baseline_entries(state.store, state.collected)
    except Exception:  # noqa: BLE001 - the report then shows no baselines; the gate read them already
        return {}


def _baselines(state: SessionState, exitstatus: int, run: _Run, say: Callable[[str], None]) -> None:
    s = state.settings
    if s.baseline_mode != "update" or not state.collected:
        return
    if exitstatus in (INTERRUPTED, INTERNAL_ERROR):
        state.write_error = "the session was interrupted; baselines are left as they were"
        return
    # A window still loaded after the re-measure was not written by the runner's
    # rule (its verdict says why); the session lists it with the failed tests.
    for r in state.collected:
        if r.verdict is not None and r.verdict.status == "not_written":
            state.not_written.setdefault(r.id, r.verdict.message.removeprefix("baseline not written: "))
    # A test that failed or errored does not get to set the baseline; a relative
    # gate (trt_bench.compare) carries both sides itself and never becomes one.
    keep = [r for r in state.collected if r.id not in state.not_written and not r.is_relative_gate]
    if not keep:
        return
    written: list[Path] = []
    refused: dict[str, str] = {}
    try:
        state.store.write(keep, timestamp=now_iso(), git_commit=git_commit(str(s.rootdir)),
                          on_wait=lambda line: say(log_safe(line)), written=written, notes=state.write_notes,
                          refused=refused)
    except KeyboardInterrupt:
        state.write_error = ("interrupted (Ctrl-C) while writing; baseline files not listed as written are left "
                             "as they were")
        raise
    except (BaselineFileError, OSError) as e:
        state.write_error = str(e)
        run.fail(USAGE_ERROR)
    except Exception as e:  # noqa: BLE001 - one line, not a traceback after the tests ran
        state.write_error = f"{s.baseline_dir}: {_unexpected(e)}; the files are left as they were"
        run.fail(INTERNAL_ERROR)
    finally:
        state.written = [str(p) for p in written]
        _withhold_unwritten(state, keep, written, refused)


def _withhold_unwritten(state: SessionState, keep: list[Result], written: list[Path], refused: dict[str, str]) -> None:
    """Results whose entry did not reach a file are ``not_written``, never
    counted as updated: refused by the entry checks, or in a file that could
    not be written."""
    done = {str(p) for p in written}
    path_for = getattr(state.store, "path_for", None)
    for r in keep:
        why = refused.get(r.id)
        if why is None and path_for is not None and str(path_for(r.device_class)) not in done:
            why = f"its baseline file was not written ({state.write_error or 'the write stopped'})"
        if why is not None:
            state.withhold(r.id, why)


def _machine_output(run: _Run, flag: str, path: Path, write: Callable[[], None]) -> None:
    """A document for machines (``--trt-json``, ``--trt-csv``): a failed write
    is one line naming it and ends the session with exit status 4 (3 for a bug
    of ours); a written one says so."""
    try:
        write()
    except OSError as e:
        run.lines.append(f"{flag} NOT written: {path}: {e.strerror or e}; check the path")
        run.fail(USAGE_ERROR)
    except Exception as e:  # noqa: BLE001
        run.lines.append(f"{flag} NOT written: {path}: {_unexpected(e)}")
        run.fail(INTERNAL_ERROR)
    else:
        run.lines.append(f"{flag} written: {path}")


def _json(state: SessionState, exitstatus: int, run: _Run) -> None:
    s = state.settings
    if s.json_path is None:
        return
    path = s.json_path

    def write() -> None:
        doc = report_mod.json_document(state.collected, settings=s, started=state.started, finished=now_iso(),
                                       exitstatus=run.status if run.status is not None else exitstatus,
                                       written=state.written,
                                       not_written=state.not_written if s.baseline_mode == "update" else {})
        report_mod.write_json(path, doc)

    _machine_output(run, "--trt-json", path, write)


def _csv(state: SessionState, run: _Run) -> None:
    path = state.settings.csv_path
    if path is None:
        return
    from pytest_trtperf.report import csv_export

    _machine_output(run, "--trt-csv", path, lambda: csv_export.write_csv(path, state.collected))


def _summary(state: SessionState) -> list[str]:
    try:
        return report_github.write_step_summary(state.collected, group_by=state.settings.group_by)
    except Exception as e:  # noqa: BLE001 - the job summary is a courtesy; the outcome is the exit status
        path, _ = report_github.enabled()
        return [f"GitHub job summary NOT written: {path}: {_unexpected(e)}"]


def _export_index(directory: Path, state: SessionState) -> str:
    """``index.json`` of ``--trt-export-dir`` (the measuring processes wrote
    the files); a line for the terminal, never an exception."""
    from pytest_trtperf.report import exports

    try:
        path, n = exports.write_index(directory, (r.id for r in state.collected))
    except OSError as e:
        return f"--trt-export-dir: index NOT written in {directory}: {e.strerror or e}"
    return f"exports: {n} result(s) in {directory} (index: {path.name})"


def terminal_lines(state: SessionState, extra: list[str], *, skips: bool = True, width: int | None = None,
                   encoding: str | None = None) -> list[str]:
    """The trtperf section of the terminal summary (without its separator).
    Every line carrying user text is made safe for CI logs; only our own
    annotations (escaped by ``github.annotations``) start with ``::``.
    ``skips``: say why trt_bench tests skipped (off when ``-rs`` lists them)."""
    out: list[str] = []
    try:
        from pytest_trtperf.core import units

        micro = units.micro_for(encoding)
        if state.collected:
            out += report_mod.format_table(state.collected, group_by=state.settings.group_by,
                                           width=width or report_mod.DEFAULT_WIDTH, micro=micro)
        not_written = state.not_written if state.settings.baseline_mode == "update" else {}
        if state.collected or state.write_error or not_written:
            out += report_mod.summary_lines(state.collected, written=state.written, write_error=state.write_error,
                                            not_written=not_written, notes=state.write_notes, micro=micro)
        if skips:
            out += report_mod.skip_lines(state.skipped)
    except Exception as e:  # noqa: BLE001
        out.append(f"trtperf: the summary table could not be printed ({_unexpected(e)})")
    notes = state.store_notes()
    out += [f"trtperf: note: {n}" for n in notes]
    out += extra
    out = [log_safe(line, multiline=True) for line in out]
    try:
        out += report_github.annotations_for(state.collected, state.settings.rootdir)
    except Exception as e:  # noqa: BLE001
        out.append(log_safe(f"trtperf: GitHub annotations could not be printed ({_unexpected(e)})"))
    return out
