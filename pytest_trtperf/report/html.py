"""``--trt-report=report.html``: one self-contained page to look at.

People would rather look than read: per result, this run's latency
distribution over the baseline's, the verdict, the GPU state over the measured
window and the layers whose time changed most; a summary on top. Everything is
inline (CSS, plots as base64 SVG images), so the file opens from a CI artifact
with no network. Plots need matplotlib (extra ``plots``); without it the page
still has every table and says how to get the plots. The page shell and plot
helpers are shared with ``history.py``.

At scale (issue 16: 2000 results took 195 s and 58 MB with a plot each), only
the results that need attention most get a section with plots, at most
``MAX_SECTIONS``; every result keeps its row in the summary table.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Mapping, Sequence

from pytest_trtperf.core.version import __version__
from pytest_trtperf.core.attribution import most_changed
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.core.files import atomic_write
from pytest_trtperf.report import grouping, memory_rows
from pytest_trtperf.core import units
from pytest_trtperf.core.workload import clock_of
from pytest_trtperf.core.formatting import fmt_change, fmt_value, no_controls
from pytest_trtperf.report.terminal import compared_cells, fails_above_cell, shown_flags, sort_results, time_values
from pytest_trtperf.core.results import Distribution, Relative, Result, SeriesStats

PLOTS_HINT = "Plots need matplotlib: pip install 'pytest-trtperf[plots]'"
COLORS = {"regression": "#c62828", "unreliable": "#ad1457", "improved": "#2e7d32", "pass": "#1565c0",
          "missing": "#757575", "incomparable": "#ef6c00", "updated": "#6a1b9a", "not_written": "#4e342e",
          "off": "#757575", "disabled": "#9e9e9e", "new": "#00838f"}
BASELINE_COLOR = "#9e9e9e"
#: Above this many results, sections (with their plots) are drawn for this many
#: only: regressions, improvements, incomparable baselines, then the largest
#: changes. A plot costs about 0.1 s and 40 KB, so this bounds both.
MAX_SECTIONS = 30

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
header{background:#263238;color:#fff;padding:16px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cfd8dc;font-size:13px}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #e0e0e0;border-left:6px solid #9e9e9e;border-radius:4px;
 padding:12px 16px;margin:16px 0}
h2{font-size:17px;margin:4px 0 8px;word-break:break-all}h3{font-size:14px;margin:14px 0 6px;color:#455a64}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:90%}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{border-bottom:1px solid #eeeeee;padding:3px 10px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody td:first-child{max-width:520px;word-break:break-all}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:1px 7px;font-size:12px;font-weight:600;
 text-transform:uppercase;vertical-align:middle}
.msg{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f5f5f5;
 padding:6px 8px;border-radius:3px;word-break:break-all}
.grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.plot img{max-width:100%;height:auto}
.hint{background:#fff8e1;border:1px solid #ffe082;padding:8px 12px;border-radius:4px}
.meta{color:#607d8b;font-size:13px;margin:6px 0}
.counts span{margin-right:14px}.flags{color:#ef6c00;font-weight:600}
.bar{display:inline-block;height:10px;vertical-align:middle}
tr.group th{background:#eceff1;color:#37474f;font-size:13px;padding:4px 10px}
"""


def esc(value: Any) -> str:
    """HTML-escaped text with control characters as visible escapes (a NUL
    or an ESC from a test id never reaches the page raw)."""
    return html.escape(no_controls(value), quote=True)


def _num(x: Any) -> float | None:
    """``x`` when it is a finite number, else None: values read from files
    are shown as ``-`` rather than breaking the page."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def _plottable(dist: Distribution | None) -> bool:
    q = dist.quantiles_ms if dist is not None else ()
    return len(q) >= 2 and all(_num(x) is not None for x in q)


def page(title: str, subtitle: str, body: str) -> str:
    """The HTML document around ``body``: inline CSS, no scripts, no links."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><header><h1>{esc(title)}</h1>"
            f"<p>{esc(subtitle)}</p></header>\n<main>\n{body}\n</main></body></html>\n")


def badge(status: str) -> str:
    return f'<span class="badge" style="background:{COLORS.get(status, "#757575")}">{esc(status)}</span>'


def table(head: Sequence[str], rows: Iterable[Sequence[str] | str], num_cols: Sequence[int] = ()) -> str:
    """Rows are already-escaped HTML cells, or a whole ``<tr>`` as a string
    (a group row spanning the table)."""
    th = "".join(f'<th class="num">{h}</th>' if i in num_cols else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join(row if isinstance(row, str) else
                   "<tr>" + "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def group_row(label: str, span: int) -> str:
    return f'<tr class="group"><th colspan="{span}">{esc(label or grouping.NO_GROUP)}</th></tr>'



# -- plots -------------------------------------------------------------------

def figure_factory() -> Callable[..., Any] | None:
    """matplotlib's ``Figure`` (no pyplot: no global backend state in the user's
    process), or None when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def img(fig: Any, alt: str) -> str:
    """A figure as an inline SVG image. A data: URI keeps each plot's element
    ids apart and needs no network."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trtperf"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<div class="plot"><img alt="{esc(alt)}" src="data:image/svg+xml;base64,{data}"></div>'


def _ecdf_xy(dist: Distribution) -> tuple[list[float], list[float]]:
    q = list(dist.quantiles_ms)
    k = len(q) - 1
    return q, [i / k for i in range(k + 1)]


def readable_ticks(axis: Any, nbins: int = 6) -> None:
    """At most ``nbins`` plain tick labels on ``axis`` (no offset or
    scientific notation: ``+6.5e1`` reads worse than a unit that fits)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    axis.set_major_locator(MaxNLocator(nbins=nbins))
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


#: The distribution plot's x axis ends at most this many interquartile
#: ranges above the median (or at the 95th percentile, when lower).
TAIL_IQRS = 6.0


def distribution_figure(Figure: Callable[..., Any], current: Distribution, baseline: Distribution | None,
                        status: str, labels: tuple[str, str] = ("baseline", "this run"),
                        unit: units.TimeUnit | None = None) -> Any:
    """ECDF of this run over the baseline's (or side b over side a), in
    ``unit`` (the page's), else the unit that suits their values. The x axis spans the 1st..95th percentiles
    of both, and never more than :data:`TAIL_IQRS` interquartile ranges above
    the median, so a heavy tail (a fifth of the samples 50x slower) cannot
    squash the body into a line; a clipped tail is marked on the plot and in
    the axis label with its largest value (the quantile table has the rest)."""
    fig = Figure(figsize=(5.6, 3.0))
    ax = fig.add_subplot()
    dists = [d for d in (baseline, current) if d is not None and _plottable(d)]
    unit = unit or units.choose((q for d in dists for q in d.quantiles_ms), units.MICRO)
    lo_hi: list[float] = []
    largest = 0.0
    for dist, label, color in ((baseline, labels[0], BASELINE_COLOR), (current, labels[1], COLORS.get(status))):
        if dist is None or not _plottable(dist):
            continue
        x, y = _ecdf_xy(dist)
        x = [unit.scale(v) for v in x]
        ax.step(x, y, where="post", color=color, lw=2, label=f"{label} (n={dist.n})")
        k = len(x) - 1
        ax.axvline(x[k // 2], color=color, lw=1, ls="--")
        iqr = x[round(k * 0.75)] - x[round(k * 0.25)]
        upper = min(x[round(k * 0.95)], x[k // 2] + TAIL_IQRS * max(iqr, abs(x[k // 2]) * 0.01))
        lo_hi += [x[round(k * 0.01)], upper]
        largest = max(largest, x[-1])
    lo, hi = min(lo_hi), max(lo_hi)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 1e-6)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(0, 1)
    readable_ticks(ax.xaxis)
    clipped = largest > hi + pad
    if clipped:
        ax.annotate(f"tail to {largest:,.4g} {unit.label} \u2192", xy=(0.99, 0.04), xycoords="axes fraction",
                    ha="right", fontsize=8, color="#555555")
    ax.set_xlabel(f"latency per iteration ({unit.label}), "
                  + (f"tail clipped (max {largest:,.4g})" if clipped else "p1..p95 shown"))
    ax.set_ylabel("fraction of iterations")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_distribution(Figure: Callable[..., Any], current: Distribution, baseline: Distribution | None,
                      status: str, labels: tuple[str, str] = ("baseline", "this run"),
                      unit: units.TimeUnit | None = None) -> str:
    return img(distribution_figure(Figure, current, baseline, status, labels, unit),
               f"latency distribution: {labels[1]} over {labels[0]}")


def plot_pairs(Figure: Callable[..., Any], rel: Relative, status: str) -> str:
    """B/A of every interleaved pair in the order measured, with the
    estimate, its interval and the expectation's bound: drift moves both
    sides of a pair, so the points stay level while each side alone moves."""
    fig = Figure(figsize=(5.6, 3.0))
    ax = fig.add_subplot()
    xs = list(range(1, len(rel.pair_ratios) + 1))
    ax.plot(xs, rel.pair_ratios, "o", ms=3, color=COLORS.get(status), label="b/a of one pair")
    if all(math.isfinite(x) for x in rel.ci):
        ax.axhspan(rel.ci[0], rel.ci[1], color=COLORS.get(status), alpha=0.15, label="interval of the estimate")
    ax.axhline(rel.ratio, color=COLORS.get(status), lw=1.5, label=f"estimate {rel.ratio:.3f}")
    ax.axhline(rel.bound, color="#212121", lw=1, ls="--", label=f"bound {rel.bound:.3f}")
    ax.set_xlabel("pair (alternating a/b blocks)")
    ax.set_ylabel(f"{rel.metric} b/a")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return img(fig, "b/a of every interleaved pair")


def plot_timeline(Figure: Callable[..., Any], timeline: Sequence[Sequence[float]]) -> str:
    return img(timeline_figure(Figure, timeline), "GPU clocks, power and temperature during the run")


def timeline_figure(Figure: Callable[..., Any], timeline: Sequence[Sequence[float]]) -> Any:
    """Clocks, power and temperature over the measured window."""
    t = [p[0] for p in timeline]
    fig = Figure(figsize=(5.6, 3.4))
    axes = fig.subplots(3, 1, sharex=True)
    groups = [[(1, "SM clock"), (2, "memory clock")], [(3, "power")], [(4, "temperature")]]
    units = ["MHz", "W", "\u00b0C"]
    for ax, group, unit in zip(axes, groups, units, strict=False):
        for col, label in group:
            ax.plot(t, [p[col] for p in timeline], lw=1.5, label=label)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        readable_ticks(ax.yaxis, nbins=3)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    readable_ticks(axes[-1].xaxis)
    axes[-1].set_xlabel("time in the measured window (s)")
    return fig


# -- the report --------------------------------------------------------------

def baseline_entries(store: Any, results: Sequence[Result]) -> dict[str, BaselineEntry]:
    """The baseline of every result, read before an update overwrites them.
    A file that cannot be read just leaves its results without a baseline."""
    out: dict[str, BaselineEntry] = {}
    for r in results:
        if r.relative is not None and r.relative.origin == "compare":
            continue  # a relative gate has no baseline
        try:
            entry = store.lookup(r.device_class, r.id)
        except (BaselineFileError, OSError):
            entry = None
        if entry is not None:
            out[r.id] = entry
    return out


def _status(r: Result) -> str:
    """A memory regression colours the result as a regression."""
    return memory_rows.status(r)


def detailed(ordered: Sequence[Result], limit: int = MAX_SECTIONS) -> set[int]:
    """Indices (into ``ordered``) of the results that get a section: all of
    them up to ``limit``; above, regressions, improvements and incomparable
    baselines first, then the largest changes."""
    if len(ordered) <= limit:
        return set(range(len(ordered)))
    rank = {"regression": 0, "improved": 1, "incomparable": 2}

    def key(i: int) -> tuple[int, float, int]:
        r = ordered[i]
        change = _num(r.verdict.change) if r.verdict is not None else None
        return rank.get(_status(r), 3), -abs(change or 0.0), i

    return set(sorted(range(len(ordered)), key=key)[:limit])


def _summary(results: Sequence[Result], plots: bool, shown: set[int], unit: units.TimeUnit,
             group_by: Sequence[str] = ("group",)) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[_status(r)] = counts.get(_status(r), 0) + 1
    parts = [f'<p class="counts">{"".join(f"<span>{badge(s)} {n}</span>" for s, n in counts.items())}</p>']
    if not plots:
        parts.append(f'<p class="hint">{esc(PLOTS_HINT)}</p>')
    if len(shown) < len(results):
        parts.append(f'<p class="meta">{len(results)} results: the {len(shown)} that need attention most '
                     f"(regressions, improvements, incomparable baselines, then the largest changes) have a "
                     f"section below; the others are in this table only, and every number is in --trt-json.</p>")
    labels = [grouping.label(r, group_by) for r in results]
    labelled = any(labels)
    rows: list[list[str] | str] = []
    for i, r in enumerate(results):
        if labelled and (i == 0 or labels[i] != labels[i - 1]):
            rows.append(group_row(labels[i], 8))
        v = r.verdict
        metric, baseline, current = compared_cells(r, unit)
        name = f"<code>{esc(r.id)}</code>"
        rows.append([f'<a href="#r{i}">{name}</a>' if i in shown else name, esc(metric), esc(baseline), esc(current),
                     esc(fmt_change(v.change if v else None, v.ci if v else None)),
                     badge(v.status if v else "off"), esc(fails_above_cell(r)),
                     f'<span class="flags">{esc(shown_flags(r))}</span>' if v and v.flags else "-"])
        for m in memory_rows.rows(r):
            rows.append([f'<a href="#r{i}"><code>{esc(r.id)}</code></a>', esc(m.metric), esc(m.baseline),
                         esc(m.current), esc(m.change), badge(m.status), "-", "-"])
    head = ["result", "metric", "baseline", "current", "change [CI]", "verdict", "fails above", "state flags"]
    return "<h2>Summary</h2>" + "\n".join(parts) + table(head, rows, num_cols=(2, 3, 4, 6))


def _stats_table(r: Result, entry: BaselineEntry | None, unit: units.TimeUnit) -> str:
    return _two_sides(entry.latency if entry else None, entry.throughput if entry else None, r.latency, r.throughput,
                      ("baseline", "this run"), unit)


#: The times of a statistics table (``n`` is a count; ``stdev`` a spread,
#: written in the unit the times chose).
_STAT_TIMES = ("median", "mean", "p90", "p99", "min", "max")
#: The quantiles a result's section lists.
_PERCENTILES = (0, 1, 10, 25, 50, 75, 90, 99, 100)


def _two_sides(base: SeriesStats | None, base_tp: float | None, cur: SeriesStats, cur_tp: float,
               head: tuple[str, str], unit: units.TimeUnit) -> str:
    rows = []
    for key in ("n", "median", "mean", "p90", "p99", "min", "max", "stdev"):
        c = getattr(cur, key)
        b = getattr(base, key) if base else None
        if key == "n":
            rows.append([key, esc(b if b is not None else "-"), esc(c), ""])
            continue
        c, b = _num(c), _num(b)
        change = fmt_change(c / b - 1) if b and c is not None else "-"
        rows.append([key, esc(unit.fmt(b)), esc(unit.fmt(c)), esc(change if key != "stdev" else "")])
    rows.append(["throughput", esc(fmt_value("throughput", base_tp)), esc(fmt_value("throughput", cur_tp)), ""])
    return table(["", esc(head[0]), esc(head[1]), "change"], rows, num_cols=(1, 2, 3))


def environment_facts(reference: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where each side of a side-by-side run ran (``Relative.reference``)."""
    out = []
    if reference.get("revision"):
        commit = str(reference.get("commit") or "")[:12]
        out.append(("reference revision", f"{reference['revision']} ({commit})" if commit else
                    str(reference["revision"])))
    for key, label in (("python", "reference python"), ("python_version", "reference python version")):
        if reference.get(key):
            out.append((label, str(reference[key])))
    packages = reference.get("packages")
    if isinstance(packages, Mapping) and packages:
        out.append(("reference packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))))
    here = reference.get("here")
    if isinstance(here, Mapping):
        out.append(("this side", f"{here.get('python', '')} {here.get('python_version', '')}".strip()))
    if reference.get("setup"):
        out.append(("reference setup", str(reference["setup"])))
    return out


def _relative(r: Result, rel: Relative, status: str, Figure: Callable[..., Any] | None, unit: units.TimeUnit) -> str:
    """Both sides of an interleaved A/B measurement and their pairs."""
    names = ((f"a: model at {rel.commit[:12]}" if rel.commit else "a: baseline's model", "b: now")
             if rel.origin == "ab_confirm" else (f"a: {rel.a.label}", f"b: {rel.b.label}"))
    if rel.origin == "side_by_side":
        names = (f"a: {rel.a.label}", "b: now")
    lo, hi = rel.ci
    facts = [("expectation", rel.expectation), ("b/a", f"{rel.ratio:.4f}"),
             ("interval", f"{lo:.4f} .. {hi:.4f}" if math.isfinite(hi) else "too few pairs"),
             ("pairs", str(rel.pairs)), ("metric", rel.metric), ("a", f"{rel.a.label} ({rel.a.kind})"),
             ("b", f"{rel.b.label} ({rel.b.kind})")]
    if rel.reference:
        facts += environment_facts(rel.reference)
    grid = []
    if Figure is not None:
        grid.append(plot_distribution(Figure, rel.b.distribution, rel.a.distribution, status, labels=names,
                                      unit=unit))
        if rel.pair_ratios:
            grid.append(plot_pairs(Figure, rel, status))
    grid.append("<div>" + table(["", ""], ([esc(k), esc(v)] for k, v in facts))
                + _two_sides(rel.a.latency, rel.a.throughput, rel.b.latency, rel.b.throughput, names, unit) + "</div>")
    return "<h3>Interleaved A/B</h3>" + '<div class="grid">' + "".join(grid) + "</div>"


def _device_state(r: Result, Figure: Callable[..., Any] | None) -> str:
    ds = r.device_state
    if clock_of(r) == "host" and not ds.samples:
        return '<p class="meta">host-timed workload: no GPU state sampled</p>'
    parts = []
    if ds.timeline and Figure is not None and all(len(p) == 5 and all(_num(x) is not None for x in p)
                                                  for p in ds.timeline):
        parts.append(plot_timeline(Figure, ds.timeline))
    info = [("kind", ds.kind), ("clocks locked", ds.clocks_locked), ("samples", ds.samples),
            ("SM clock min / median", _pair(ds.sm_clock_mhz_min, ds.sm_clock_mhz_median, "MHz")),
            ("memory clock median", _pair(None, ds.mem_clock_mhz_median, "MHz")),
            ("power median / max", _pair(ds.power_w_median, ds.power_w_max, "W")),
            ("temperature max", _pair(None, ds.temperature_c_max, "\u00b0C")),
            ("throttle reasons", ", ".join(ds.throttle_reasons) or "-"),
            ("flags of this window", ", ".join(ds.flags) or "-"),
            ("flags vs the baseline", shown_flags(r))]
    shown = ([esc(k), esc(v)] for k, v in info if v not in (None, "", "-") or k.startswith("flags"))
    parts.append(table(["", ""], shown))
    return '<div class="grid">' + "".join(parts) + "</div>"


def _pair(a: float | None, b: float | None, unit: str) -> str:
    a, b = _num(a), _num(b)
    if a is None and b is None:
        return ""
    return " / ".join("-" if x is None else f"{x:.0f}" for x in (a, b) if x is not None or a is not None) + f" {unit}"


def _layers(r: Result, entry: BaselineEntry | None) -> str:
    if entry is None or not entry.layers or not r.layers:
        return ""
    deltas = most_changed(entry.layers, r.layers, 10)
    if not deltas:
        return ""
    biggest = max(abs(d.delta_ms) for d in deltas) or 1.0
    rows = []
    for d in deltas:
        width = int(120 * abs(d.delta_ms) / biggest)
        color = COLORS["regression"] if d.delta_ms > 0 else COLORS["improved"]
        rel = "new" if d.baseline_ms is None else ("gone" if d.current_ms is None else fmt_change(d.change))
        rows.append([f"<code>{esc(d.name)}</code>", esc("-" if d.baseline_ms is None else f"{d.baseline_ms:.3f}"),
                     esc("-" if d.current_ms is None else f"{d.current_ms:.3f}"), esc(f"{d.delta_ms:+.3f}"),
                     esc(rel), f'<span class="bar" style="width:{width}px;background:{color}"></span>'])
    return ("<h3>Layers whose time changed most</h3>"
            + table(["layer", "baseline ms", "this run ms", "change ms", "change", ""], rows, num_cols=(1, 2, 3, 4)))


def _memory(r: Result, entry: BaselineEntry | None) -> str:
    """Every memory figure against the baseline's, and the memory verdict."""
    table_rows = memory_rows.figures_table(r, dict(entry.memory) if entry is not None else None)
    if not table_rows:
        return ""
    v = r.memory_verdict
    parts = ["<h3>Memory</h3>"]
    if v is not None:
        parts.append(f'<p class="meta">memory gate: {badge(v.status)}'
                     + (f" tolerance {esc(f'{v.tolerance:.1%}')}" if v.tolerance is not None else "")
                     + (" (re-measured)" if v.remeasured else "") + "</p>")
        if v.message and v.status not in ("pass", "off", "updated"):
            parts.append(f'<div class="msg">{esc(v.message)}</div>')
    parts.append(table(["", "baseline", "this run", "change"], ([esc(c) for c in row] for row in table_rows),
                       num_cols=(1, 2, 3)))
    return "\n".join(parts)


def _quantile_pairs(r: Result, entry: BaselineEntry | None) -> list[tuple[int, float | None, float | None]]:
    """(percentile, baseline, this run) of every quantile a section lists."""
    cur = r.distribution.quantiles_ms
    base = entry.distribution.quantiles_ms if entry else None
    pairs = []
    for pct in _PERCENTILES:
        c = _num(cur[round(pct / 100 * (len(cur) - 1))]) if cur else None
        b = _num(base[round(pct / 100 * (len(base) - 1))]) if base else None
        pairs.append((pct, b, c))
    return pairs


def _quantiles(r: Result, entry: BaselineEntry | None, unit: units.TimeUnit) -> str:
    pairs = _quantile_pairs(r, entry)
    rows = [[f"p{pct}", esc(unit.fmt(b)), esc(unit.fmt(c))] for pct, b, c in pairs]
    return ("<details><summary>quantiles</summary>"
            + table(["", "baseline", "this run"], rows, num_cols=(1, 2)) + "</details>")


def _extra_info(r: Result, entry: BaselineEntry | None) -> str:
    """The user's context (``extra_info``): this run's, beside the baseline's."""
    base = dict(entry.extra_info) if entry is not None else {}
    mine = dict(r.extra_info)
    if not mine and not base:
        return ""

    def show(d: dict[str, Any], key: str) -> str:
        if key not in d:
            return "-"
        v = d[key]
        return esc(v if isinstance(v, str) else json.dumps(v, sort_keys=True))

    rows = [[f"<code>{esc(k)}</code>", show(base, k), show(mine, k)] for k in sorted(set(mine) | set(base))]
    return "<h3>extra_info</h3>" + table(["", "baseline", "this run"], rows)


def _section(i: int, r: Result, entry: BaselineEntry | None, Figure: Callable[..., Any] | None,
             unit: units.TimeUnit) -> str:
    status = _status(r)
    v = r.verdict
    parts = [f'<section id="r{i}" class="result" data-status="{esc(status)}" '
             f'style="border-left-color:{COLORS.get(status, "#9e9e9e")}">',
             f"<h2>{badge(status)} <code>{esc(r.id)}</code></h2>"]
    if v is not None and v.message:
        parts.append(f'<div class="msg">{esc(units.spelled(v.message, units.MICRO, (r.id, r.name or "")))}</div>')
    if v is not None and v.could_catch:
        parts.append(f'<p class="meta">what this test can catch: {esc(v.could_catch)}</p>')
    meta = [f"{esc(r.kind)} / {esc(r.mode)}", f"stopped: {esc(r.stop_reason)}", f"device class: {esc(r.device_class)}"]
    if r.group:
        meta.insert(0, f"group: {esc(r.group)}")
    if entry is not None:
        meta.append(f"baseline from {esc(entry.timestamp)}" + (f" (commit {esc(str(entry.git_commit)[:12])})"
                                                                if entry.git_commit else ""))
    parts.append(f'<p class="meta">{" &middot; ".join(meta)}</p>')
    if r.relative is not None:
        parts.append(_relative(r, r.relative, status, Figure, unit))
    if r.relative is None or r.relative.origin != "compare":
        grid = []
        if Figure is not None and _plottable(r.distribution):
            grid.append(plot_distribution(Figure, r.distribution, entry.distribution if entry else None, status,
                                          unit=unit))
        grid.append("<div>" + _stats_table(r, entry, unit) + _quantiles(r, entry, unit) + "</div>")
        parts.append('<div class="grid">' + "".join(grid) + "</div>")
    if r.serve is not None and r.serve.gated == "latency":
        from pytest_trtperf.report.knee import section as serve_section

        parts.append(serve_section(r.serve, entry.serve if entry is not None else None, Figure, esc=esc,
                                   table=table, img=img, color=COLORS.get(status, "#1565c0"),
                                   baseline_color=BASELINE_COLOR))
    if clock_of(r) != "host" or r.device_state.samples:  # host timings have no GPU state to show
        parts.append("<h3>GPU state during the run</h3>" + _device_state(r, Figure))
    parts.append(_memory(r, entry))
    parts.append(_extra_info(r, entry))
    parts.append(_layers(r, entry))
    parts.append("</section>")
    return "\n".join(parts)


def _section_times(r: Result, entry: BaselineEntry | None) -> list[float | None]:
    """The times (ms) a result's section shows: its statistics, quantiles
    and the sides of an interleaved measurement."""
    sides = [r.latency, entry.latency if entry else None]
    if r.relative is not None:
        sides += [r.relative.a.latency, r.relative.b.latency]
    out: list[float | None] = [getattr(s, k, None) for s in sides if s is not None for k in _STAT_TIMES]
    if r.relative is None or r.relative.origin != "compare":
        out += [x for _, b, c in _quantile_pairs(r, entry) for x in (b, c)]
    return out


def page_unit(ordered: Sequence[Result], entries: Mapping[str, BaselineEntry], shown: set[int]) -> units.TimeUnit:
    """One time unit for the whole page: the one the terminal's table chose
    from the same results (``terminal.table_unit``: every result's baseline
    and current value), used by the summary, every section's statistics,
    quantiles and the plots' axes, so a number reads the same on the page
    and in the terminal (``1,776.56 µs`` in the summary and ``1.777 ms`` in
    its section made the reader convert). Tails and minima are written in
    it too rather than choose another unit; a page with no such value (a
    file that held none) chooses from what its sections show."""
    values = time_values(ordered)
    if any((_num(v) or 0.0) > 0 for v in values):
        return units.choose(values, units.MICRO, across=True)
    return units.choose((v for i in sorted(shown) for v in _section_times(ordered[i], entries.get(ordered[i].id))),
                        units.MICRO, across=True)


def render(results: Sequence[Result], entries: Mapping[str, BaselineEntry], *, generated: str,
           baseline_mode: str = "compare", plots: bool = True, group_by: Sequence[str] = ("group",),
           title: str = "pytest-trtperf report") -> str:
    """The whole page as a string."""
    Figure = figure_factory() if plots else None
    ordered = [r for _, block in grouping.grouped(sort_results(results), group_by) for r in block]
    shown = detailed(ordered, MAX_SECTIONS)
    unit = page_unit(ordered, entries, shown)
    body = [_summary(ordered, Figure is not None, shown, unit, group_by)]
    body += [_section(i, r, entries.get(r.id), Figure, unit) for i, r in enumerate(ordered) if i in shown]
    if not ordered:
        body.append("<p>No results were measured in this session.</p>")
    subtitle = f"{generated} \u00b7 baseline mode {baseline_mode} \u00b7 pytest-trtperf {__version__}"
    return page(title, subtitle, "\n".join(body))


def write_report(path: Path, results: Sequence[Result], entries: Mapping[str, BaselineEntry], *,
                 generated: str, baseline_mode: str, group_by: Sequence[str] = ("group",),
                 title: str = "pytest-trtperf report") -> str:
    """Write the report; returns the line for the terminal summary. Never
    raises (but for Ctrl-C): a report must not hide the test outcome, and
    results or baselines read from files may hold what no run produces."""
    try:
        text = render(results, entries, generated=generated, baseline_mode=baseline_mode, group_by=group_by,
                      title=title)
    except Exception as e:  # noqa: BLE001 - one line instead of a traceback after the tests ran
        return f"HTML report NOT written: {path}: could not render it ({type(e).__name__}: {e})"
    try:
        atomic_write(path, text)
    except OSError as e:
        return f"HTML report NOT written: {path}: {e.strerror or e}"
    return f"HTML report: {path}"
