"""The ``pytest-trtperf`` console script: things done outside a test session.

* ``history``: each result's median over the git history of the baseline
  files, as an HTML page (and a text summary), so a slow creep shows.
* ``report``: the HTML report again from a ``--trt-json`` document.
* ``compare``: one ``--trt-json`` document judged against another with the
  gate's rule (a table, optional HTML and CSV; exit status 1 on a regression).
* ``verify``: baseline files checked against their own git history (entries
  changed outside ``--trt-baseline=update``); exit status 1 on a finding.
* ``schema``: where the ``--trt-json`` JSON Schema is, or its text.
* ``plan-info``: which TensorRT built a plan file, its I/O tensors and
  optimization profiles (the header needs no GPU; the rest may).

Every error is one line on stderr and exit status 2, a bug of ours included
(then the line says so); what is printed from files (result ids) is made
safe for CI logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_trtperf.core.config import parse_fraction
from pytest_trtperf.report.document import schema_text
from pytest_trtperf.core.errors import UsageError


def _now() -> str:
    from pytest_trtperf.plugin.session import now_iso

    return now_iso()


def _history(args: argparse.Namespace) -> int:
    from pytest_trtperf.report import history
    from pytest_trtperf.core.files import atomic_write

    from pytest_trtperf.core.formatting import log_safe

    tolerance = parse_fraction(args.tolerance, what="--tolerance")
    if args.max_commits is not None and args.max_commits < 1:
        raise UsageError(f"--max-commits {args.max_commits}: give a positive number of commits")
    series = history.collect(Path(args.baseline_dir), max_commits=args.max_commits)
    for line in history.summary_lines(series, tolerance):
        print(log_safe(line))
    text = history.render(series, tolerance=tolerance, generated=_now(), source=str(args.baseline_dir),
                          plots=not args.no_plots)
    atomic_write(Path(args.output), text)
    print(log_safe(f"history: {len(series)} result(s), written to {args.output}"))
    return 0


def _report(args: argparse.Namespace) -> int:
    from pytest_trtperf.baselines.store import BaselineStore
    from pytest_trtperf.report.document import read_document
    from pytest_trtperf.core.formatting import log_safe
    from pytest_trtperf.report.html import baseline_entries, write_report

    doc = read_document(Path(args.json))
    bdir = args.baseline_dir or doc.baseline_dir
    entries = baseline_entries(BaselineStore(Path(bdir)), doc.results) if bdir and doc.baseline_mode != "update" else {}
    line = write_report(Path(args.output), doc.results, entries, generated=_now(), baseline_mode=doc.baseline_mode)
    if "NOT written" in line:
        raise UsageError(line)
    print(log_safe(line))
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Judge B against A; exit status 1 when anything regressed (a gate)."""
    from pytest_trtperf.core.config import METRICS, parse_choice, parse_group_by
    from pytest_trtperf.report import compare, csv_export, terminal
    from pytest_trtperf.report.document import read_document
    from pytest_trtperf.core.formatting import log_safe
    from pytest_trtperf.report.html import write_report

    metric = parse_choice(args.metric, METRICS, what="--metric") if args.metric else None
    tolerance = parse_fraction(args.tolerance, what="--tolerance", bare_max=1.0) if args.tolerance else None
    confidence = parse_fraction(args.confidence, what="--confidence") if args.confidence else None
    if confidence is not None and not 0.5 <= confidence < 1.0:
        raise UsageError(f"--confidence {args.confidence!r} must be between 0.5 and 1 (e.g. 0.99)")
    group_by = parse_group_by(args.group_by, what="--group-by")
    a, b = read_document(Path(args.a)), read_document(Path(args.b))
    c = compare.compare_documents(a, b, a_name=args.a, metric=metric, tolerance=tolerance, confidence=confidence)
    print(log_safe(compare.headline(c, args.a, args.b)))
    if c.results:
        for line in terminal.format_table(c.results, group_by=group_by):
            print(line)
    for line in compare.summary_lines(c, args.a, args.b):
        print(log_safe(line, multiline=True))
    if args.csv:
        csv_export.write_csv(Path(args.csv), c.results)
        print(log_safe(f"CSV written: {args.csv}"))
    if args.html:
        line = write_report(Path(args.html), c.results, c.entries, generated=_now(), baseline_mode="compare",
                            group_by=group_by, title=f"pytest-trtperf compare: {args.b} against {args.a}")
        if "NOT written" in line:
            raise UsageError(line)
        print(log_safe(line))
    return 1 if c.regressions else 0


def _verify(args: argparse.Namespace) -> int:
    """Exit status 1 when an entry changed outside an update (a gate for CI)."""
    from pytest_trtperf.baselines import verify
    from pytest_trtperf.core.formatting import log_safe

    found, summary = verify.verify([Path(p) for p in args.paths])
    for line in found:
        print(log_safe(line))
    print(log_safe(summary))
    return 1 if found else 0


def _schema(args: argparse.Namespace) -> int:
    print(schema_text(), end="")
    return 0


def _plan_info(args: argparse.Namespace) -> int:
    from pytest_trtperf.trt import plan_info

    info = plan_info.plan_info(Path(args.plan), allow_host_code=args.allow_engine_host_code)
    if args.json:
        print(json.dumps(plan_info.to_dict(info), indent=1))
    else:
        for line in plan_info.render(info):
            print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pytest_trtperf.core.version import __version__

    p = argparse.ArgumentParser(prog="pytest-trtperf", description="pytest-trtperf tools outside a test session")
    p.add_argument("--version", action="version", version=f"pytest-trtperf {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("history", help="plot each result's median over the committed baselines' git history")
    h.add_argument("--baseline-dir", default=".trtperf", help="directory of the baseline files (default .trtperf)")
    h.add_argument("--output", "-o", default="trtperf-history.html", help="HTML file to write")
    h.add_argument("--max-commits", type=int, default=None, help="only the newest N commits touching the files")
    h.add_argument("--tolerance", default="5%", help="drift above which a slow creep is marked (default 5%%)")
    h.add_argument("--no-plots", action="store_true", help="tables only, even with matplotlib installed")
    h.set_defaults(func=_history)
    r = sub.add_parser("report", help="render the HTML report from a --trt-json document")
    r.add_argument("json", help="the --trt-json file")
    r.add_argument("--baseline-dir", default=None, help="baselines to show (default: the document's)")
    r.add_argument("--output", "-o", default="trtperf-report.html")
    r.set_defaults(func=_report)
    c = sub.add_parser("compare", help="judge the results of B.json against A.json with the gate's rule "
                                       "(two --trt-json documents); exit status 1 when something regressed")
    c.add_argument("a", metavar="A.json", help="the reference run (plays the baseline)")
    c.add_argument("b", metavar="B.json", help="the run to judge")
    c.add_argument("--metric", default=None, help="metric to compare (default: what each result of B was gated on)")
    c.add_argument("--tolerance", default=None, help="allowed slowdown, e.g. 5%% (default: B's own per result)")
    c.add_argument("--confidence", default=None, help="confidence level (default: B's own per result, else 0.99)")
    c.add_argument("--group-by", default="group", help="group the table like --trt-group-by (default group)")
    c.add_argument("--html", default=None, metavar="FILE", help="also write the HTML report of the comparison")
    c.add_argument("--csv", default=None, metavar="FILE", help="also write the comparison as CSV")
    c.set_defaults(func=_compare)
    v = sub.add_parser("verify", help="check baseline files against their git history: entries whose numbers "
                                      "changed in a commit that was not an update; exit status 1 on a finding")
    v.add_argument("paths", nargs="*", default=[".trtperf"], metavar="PATH",
                   help="baseline files or directories (default .trtperf)")
    v.set_defaults(func=_verify)
    s = sub.add_parser("schema", help="print the JSON Schema of the --trt-json document")
    s.set_defaults(func=_schema)
    pi = sub.add_parser("plan-info", help="which TensorRT built a plan, its I/O tensors and profiles "
                                          "(like trtexec --getPlanVersionOnly)")
    pi.add_argument("plan", help="a serialized engine (.plan / .engine)")
    pi.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    pi.add_argument("--allow-engine-host-code", action="store_true",
                    help="allow deserializing a plan that contains host code (lean runtime, plugins)")
    pi.set_defaults(func=_plan_info)
    return p


def _check_outputs(args: argparse.Namespace) -> None:
    """The files a command will write: each a regular file (or new), never a
    device, FIFO, socket, directory or Python source, and no two the same;
    checked before anything is read or computed."""
    from pytest_trtperf.core.files import distinct_outputs

    names = {"output": "-o", "html": "--html", "csv": "--csv"}
    distinct_outputs((f"{names[flag]} {value}", Path(value)) for flag in names
                     if (value := getattr(args, flag, None)) is not None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        return int(args.func(args))
    except UsageError as e:
        message = str(e)
    except OSError as e:
        message = f"{e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}"
    except KeyboardInterrupt:
        message = "interrupted (Ctrl-C); files not yet written are left as they were"
    except Exception as e:  # noqa: BLE001 - the promise is one line, exit 2, even for our own bugs
        message = f"internal error ({type(e).__name__}: {e}); this is a bug in pytest-trtperf, please report it"
    from pytest_trtperf.core.formatting import log_safe

    print(f"pytest-trtperf: error: {log_safe(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
