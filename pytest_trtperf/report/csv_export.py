"""Results as CSV (``--trt-csv``, ``pytest-trtperf compare --csv``): one row
per result, for spreadsheets and quick scripts.

Numbers are plain (times in milliseconds, throughput in inferences per
second, changes as fractions; floats to 6 significant digits), so a column
sorts and sums as numbers; the
``metric`` column says whether ``baseline``/``current`` are ms or /s. Text
cells hold user text (test ids, ``name=``, messages), so they get the same
care as in every other writer: control characters become visible escapes,
and a cell that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``) starts with ``'`` instead (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from pytest_trtperf.core.files import atomic_write
from pytest_trtperf.core.results import Result
from pytest_trtperf.core.formatting import metric_of, no_controls
from pytest_trtperf.report.terminal import sort_results

COLUMNS = ("id", "group", "name", "kind", "mode", "device_class", "metric", "status", "baseline", "current",
           "change", "ci_low", "ci_high", "tolerance", "fails_above", "n", "median_ms", "mean_ms", "min_ms", "max_ms", "p90_ms",
           "p95_ms", "p99_ms", "stdev_ms", "throughput", "flags", "memory_status", "extra_info", "message")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: Any) -> str:
    s = no_controls("" if value is None else value, multiline=False)
    return "'" + s if s.startswith(_FORMULA) else s


#: Significant digits of every float cell: a timer's resolution and the
#: noise of a run are far coarser, and ``1.7468810000000001`` reads worse.
CSV_DIGITS = 6


def number_cell(value: Any) -> str:
    """An int as is; a float to :data:`CSV_DIGITS` significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return format(value, f".{CSV_DIGITS}g") if isinstance(value, float) else str(value)


def row(r: Result) -> list[str]:
    v = r.verdict
    metric = v.metric if v else "median"
    ci = v.ci if v is not None and v.ci is not None else (None, None)
    lat = r.latency
    return [
        text_cell(r.id), text_cell(r.group), text_cell(r.name), text_cell(r.kind), text_cell(r.mode),
        text_cell(r.device_class), text_cell(metric), text_cell(v.status if v else "off"),
        number_cell(v.baseline_value if v else None), number_cell(metric_of(r, metric)),
        number_cell(v.change if v else None), number_cell(ci[0]), number_cell(ci[1]),
        number_cell(v.tolerance if v else None), number_cell(v.fails_above if v else None), number_cell(lat.n), number_cell(lat.median), number_cell(lat.mean),
        number_cell(lat.min), number_cell(lat.max), number_cell(lat.p90), number_cell(lat.p95), number_cell(lat.p99),
        number_cell(lat.stdev), number_cell(r.throughput), text_cell("; ".join(v.flags) if v else ""),
        text_cell(r.memory_verdict.status if r.memory_verdict else ""),
        text_cell(json.dumps(dict(r.extra_info), sort_keys=True) if r.extra_info else ""),
        text_cell(v.message.splitlines()[0] if v and v.message else ""),
    ]


def render(results: Sequence[Result]) -> str:
    """The CSV text: a header row, then one row per result (regressions first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sort_results(results):
        w.writerow(row(r))
    return buf.getvalue()


def write_csv(path: Path, results: Sequence[Result]) -> None:
    atomic_write(Path(path), render(results))
