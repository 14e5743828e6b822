"""Latency under load in the HTML report: percentiles against offered rate
(the knee), this run's and the baseline's, with the SLO line, the stated rate
and the sustainable rate; and the table of every rate run.

Drawn with the HTML report's ``Figure`` (matplotlib, optional: without it
only the table is shown), the same way as its other pictures.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Callable, Sequence

from pytest_trtperf.core.serve_summary import RatePoint, Serve, Slo
from pytest_trtperf.core.formatting import no_controls
from pytest_trtperf.report.serve_rows import serve_text

#: Percentiles drawn (solid: this run; dashed: the baseline).
DRAWN = (("p50", ":"), ("p99", "-"))


def _curve(points: Sequence[RatePoint], name: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for p in sorted(points, key=lambda p: p.offered_rate):
        value = p.percentiles.get(name, (math.nan,))[0]
        if math.isfinite(value):
            xs.append(p.offered_rate)
            ys.append(value)
    return xs, ys


def knee_figure(Figure: Callable[..., Any], current: Serve, baseline: Serve | None, color: str,
                baseline_color: str) -> Any:
    """p50 and p99 (and the SLO's percentile) against offered rate."""
    fig = Figure(figsize=(5.6, 3.2))
    ax = fig.add_subplot()
    slo = Slo.parse(current.slo) if current.slo else None
    names = [n for n, _ in DRAWN] + ([slo.percentile] if slo and slo.percentile not in ("p50", "p99") else [])
    for serve, label, col, width in ((baseline, "baseline", baseline_color, 1.5), (current, "this run", color, 2.0)):
        if serve is None:
            continue
        points = (serve.at_rate, *serve.points)
        for name in names:
            xs, ys = _curve(points, name)
            if xs:
                style = dict(DRAWN).get(name, "--")
                ax.plot(xs, ys, style if label == "this run" else "--", marker="o", ms=3, color=col, lw=width,
                        label=f"{label} {name}")
        if serve.search is not None and serve.search.sustainable_rate > 0:
            ax.axvline(serve.search.sustainable_rate, color=col, lw=1, ls="-.",
                       label=f"{label} sustainable {serve.search.sustainable_rate:.4g}/s")
    if slo is not None:
        ax.axhline(slo.bound_ms, color="#000000", lw=1, label=f"SLO {slo}")
    ax.axvline(current.rate, color="#616161", lw=0.8, ls=":", label=f"stated rate {current.rate:g}/s")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("latency (ms), log scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=7)
    return fig


def _ms(x: float) -> str:
    return "&infin;" if not math.isfinite(x) else f"{x:.4g}"


def points_table(serve: Serve, esc: Callable[[Any], str], table: Callable[..., str]) -> str:
    """Every rate run: offered and achieved rate, requests, p50, p99 with its
    bounds, queue, and whether it met the SLO."""
    rows = []
    for p in sorted((serve.at_rate, *serve.points), key=lambda p: p.offered_rate):
        p99 = p.percentiles.get("p99", (math.nan, math.nan, math.nan))
        met = "" if p.meets is None else ("met" if p.meets else "missed")
        rows.append([f"{p.offered_rate:.4g}", f"{p.achieved_rate:.4g}", str(p.requests), str(p.unfinished),
                     _ms(p.value("p50")), f"{_ms(p99[0])} [{_ms(p99[1])}, {_ms(p99[2])}]",
                     f"{p.queue_mean:.2g} / {p.queue_max}", esc(met)])
    unique = []
    for row in rows:  # the stated rate is also the search's first step
        if row not in unique:
            unique.append(row)
    head = ["offered /s", "achieved /s", "requests", "unfinished", "p50 ms", "p99 ms [bounds]",
            "queue mean / max", "SLO"]
    return table(head, unique, num_cols=range(7))


def section(serve: Serve, baseline: Serve | None, Figure: Callable[..., Any] | None, *, esc: Callable[[Any], str],
            table: Callable[..., str], img: Callable[[Any, str], str], color: str, baseline_color: str) -> str:
    """The report's "Latency under load" block of one result."""
    parts = ["<h3>Latency under load</h3>", f'<p class="meta">{esc(no_controls(serve_text(serve)))}</p>']
    if Figure is not None:
        fig = knee_figure(Figure, serve, baseline, color, baseline_color)
        parts.append(img(fig, "latency percentiles against offered rate, this run and the baseline, with the SLO"))
    parts.append(points_table(serve, esc, table))
    return "\n".join(parts)
