"""Each result's median over the committed history of its baseline files.

The gate compares one run with the last baseline, so ten merges that each add
1% pass one by one while the model got 10% slower. Baselines are committed, so
git already holds the whole story: this module reads every committed version
of the baseline files (``git log`` + ``git show <rev>:<path>``), turns it into
one series per result, and renders it in the HTML report's style, with
"creep" marked where the total drift exceeds the tolerance although no single
step did.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from pytest_trtperf.core.version import __version__
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core import units
from pytest_trtperf.report.html import badge, esc, figure_factory, img, page, readable_ticks, table, PLOTS_HINT


@dataclass(frozen=True)
class Commit:
    sha: str
    time: int  # committer time, seconds since the epoch
    subject: str

    @property
    def date(self) -> str:
        return _dt.datetime.fromtimestamp(self.time, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Point:
    """One committed version of one result's baseline entry."""

    commit: Commit
    median_ms: float
    ci_ms: tuple[float, float] | None
    n: int


@dataclass(frozen=True)
class Series:
    device_class: str
    result_id: str
    points: tuple[Point, ...]

    @property
    def drift(self) -> float | None:
        """Last median over the first, minus one."""
        if len(self.points) < 2 or self.points[0].median_ms <= 0:
            return None
        return self.points[-1].median_ms / self.points[0].median_ms - 1.0

    @property
    def largest_step(self) -> float | None:
        steps = [b.median_ms / a.median_ms - 1.0 for a, b in zip(self.points, self.points[1:], strict=False) if a.median_ms > 0]
        return max(steps, key=abs) if steps else None

    def creep(self, tolerance: float) -> bool:
        """Slower than the tolerance in total while no single commit was."""
        d, s = self.drift, self.largest_step
        return d is not None and s is not None and d > tolerance and abs(s) <= tolerance


def _git(cwd: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise UsageError("history needs git on PATH") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"git {args[0]} failed in {cwd}: {last}")
    return proc.stdout


def _point(entry: Any, commit: Commit) -> Point | None:
    try:
        lat = entry["latency_ms"]
        median = float(lat["median"])
        ci = lat.get("median_ci")
        ci_t = (float(ci[0]), float(ci[1])) if ci and None not in ci[:2] else None
        if not math.isfinite(median):
            return None
        return Point(commit=commit, median_ms=median, ci_ms=ci_t, n=int(lat.get("n", 0)))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
        return None


def collect(baseline_dir: Path, *, max_commits: int | None = None) -> list[Series]:
    """Every result's series, oldest commit first. A version that does not
    parse (a conflict marker, a newer schema) is skipped, not fatal: history
    is for looking, the gate is for refusing."""
    if not baseline_dir.is_dir():
        raise UsageError(f"baseline directory {baseline_dir} does not exist; pass --baseline-dir")
    top = Path(_git(baseline_dir, "rev-parse", "--show-toplevel").strip())
    rel = baseline_dir.resolve().relative_to(top.resolve()).as_posix() or "."
    log_args = ["log", "--reverse", "--format=%H%x1f%ct%x1f%s"]
    out = _git(top, *log_args, "--", rel)
    commits = []
    for line in out.splitlines():
        parts = line.split("\x1f", 2)
        if len(parts) == 3 and parts[1].isdigit():
            commits.append(Commit(parts[0], int(parts[1]), parts[2]))
    if max_commits is not None:
        commits = commits[-max_commits:]
    series: dict[tuple[str, str], list[Point]] = {}
    last_seen: dict[tuple[str, str], Any] = {}
    prefix = "" if rel == "." else rel + "/"
    for c in commits:
        names = _git(top, "ls-tree", "--name-only", c.sha, prefix or ".").splitlines()
        for name in sorted(n for n in names if n.endswith(".json") and "/" not in n[len(prefix):]):
            try:
                data = json.loads(_git(top, "show", f"{c.sha}:{name}"))
                results = data["results"]
                device_class = str(data.get("device_class", Path(name).stem))
            except (UsageError, ValueError, KeyError, TypeError, RecursionError):
                continue
            if not isinstance(results, dict):
                continue
            for rid, entry in results.items():
                key = (device_class, rid)
                if last_seen.get(key) == entry:
                    continue  # the commit touched another entry of the file
                last_seen[key] = entry
                p = _point(entry, c)
                if p is not None:
                    series.setdefault(key, []).append(p)
    return [Series(dc, rid, tuple(pts)) for (dc, rid), pts in sorted(series.items())]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


def summary_lines(all_series: Sequence[Series], tolerance: float) -> list[str]:
    """Plain-text lines for the terminal, largest drift first."""
    out = []
    for s in sorted(all_series, key=lambda s: -(s.drift or 0.0)):
        first, last = s.points[0].median_ms, s.points[-1].median_ms
        unit = units.choose([first, last])
        tag = "  [creep]" if s.creep(tolerance) else ""
        out.append(f"{s.result_id} ({s.device_class}): {unit.fmt(first)} -> {unit.fmt(last)} ({_pct(s.drift)}) "
                   f"over {len(s.points)} version(s){tag}")
    return out


#: At most this many commit labels under a history plot (every k-th commit).
MAX_XTICKS = 12


def y_range(values: Sequence[float], first: float, tolerance: float) -> tuple[float, float]:
    """The y range of a history plot: the data and the whole tolerance band
    around the first value, padded. A 2% wiggle inside a 5% band then looks
    like the 2% it is, not like a cliff (matplotlib's autoscale zooms onto
    the data alone)."""
    lo = min([*values, first * (1 - tolerance)])
    hi = max([*values, first * (1 + tolerance)])
    pad = (hi - lo) * 0.15 or abs(first) * 0.05 or 1.0
    return lo - pad, hi + pad


def series_figure(Figure: Callable[..., Any], s: Series, tolerance: float = 0.05) -> Any:
    """A result's median per commit (and its CI), with the band of
    +-tolerance around the first version: leaving it upwards is what the
    creep rule flags."""
    fig = Figure(figsize=(7.0, 2.8))
    ax = fig.add_subplot()
    x = list(range(len(s.points)))
    unit = units.choose([p.median_ms for p in s.points])
    med = [unit.scale(p.median_ms) for p in s.points]
    first = med[0]
    ax.axhspan(first * (1 - tolerance), first * (1 + tolerance), color="#e8f5e9", lw=0,
               label=f"first \u00b1{tolerance:.0%} (tolerance)")
    shown = list(med)
    cis = [p.ci_ms for p in s.points if p.ci_ms]
    if len(cis) == len(s.points):
        lo_ci = [unit.scale(ci[0]) for ci in cis]
        hi_ci = [unit.scale(ci[1]) for ci in cis]
        ax.fill_between(x, lo_ci, hi_ci, color="#90caf9", alpha=0.5, lw=0, label="CI of the median")
        shown += lo_ci + hi_ci
    ax.plot(x, med, marker="o", color="#1565c0", lw=2, label="median")
    ax.axhline(first, color="#9e9e9e", lw=1, ls="--", label="first")
    ax.set_ylim(*y_range(shown, first, tolerance))
    step = max(1, math.ceil(len(x) / MAX_XTICKS))
    ticks = x[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([s.points[i].commit.sha[:7] for i in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(x) - 0.5)
    readable_ticks(ax.yaxis, nbins=5)
    ax.set_ylabel(f"median latency ({unit.label})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)  # never over the data
    return fig


def plot_series(Figure: Callable[..., Any], s: Series, tolerance: float = 0.05) -> str:
    return img(series_figure(Figure, s, tolerance), "median latency over commits")


def render(all_series: Sequence[Series], *, tolerance: float, generated: str, source: str,
           plots: bool = True) -> str:
    Figure = figure_factory() if plots else None
    ordered = sorted(all_series, key=lambda s: -(s.drift or 0.0))
    unit = units.choose(p.median_ms for s in ordered for p in (s.points[0], s.points[-1]))
    rows = []
    for i, s in enumerate(ordered):
        rows.append([f'<a href="#h{i}"><code>{esc(s.result_id)}</code></a>', esc(s.device_class),
                     esc(len(s.points)), esc(unit.fmt(s.points[0].median_ms)),
                     esc(unit.fmt(s.points[-1].median_ms)), esc(_pct(s.drift)), esc(_pct(s.largest_step)),
                     badge("regression").replace(">regression<", ">creep<") if s.creep(tolerance) else ""])
    body = ["<h2>Summary</h2>",
            f"<p>Largest drift first. <b>creep</b>: slower than the tolerance ({tolerance:.1%}) in total "
            f"although no single commit was.</p>"]
    if Figure is None:
        body.append(f'<p class="hint">{esc(PLOTS_HINT)}</p>')
    body.append(table(["result", "device class", "versions", "first", "last", "drift", "largest step", ""],
                      rows, num_cols=(2, 3, 4, 5, 6)))
    if not ordered:
        body.append("<p>No committed baseline entries found.</p>")
    for i, s in enumerate(ordered):
        status = "regression" if s.creep(tolerance) else "pass"
        color = "#c62828" if status == "regression" else "#1565c0"
        part = [f'<section id="h{i}" data-status="{status}" style="border-left-color:{color}">'
                f"<h2><code>{esc(s.result_id)}</code></h2>",
                f'<p class="meta">{esc(s.device_class)} &middot; drift {esc(_pct(s.drift))}</p>']
        if Figure is not None:
            part.append(plot_series(Figure, s, tolerance))
        prev: Point | None = None
        trows = []
        s_unit = units.choose(p.median_ms for p in s.points)
        for p in s.points:
            step = p.median_ms / prev.median_ms - 1.0 if prev and prev.median_ms > 0 else None
            trows.append([f"<code>{esc(p.commit.sha[:12])}</code>", esc(p.commit.date), esc(p.commit.subject),
                          esc(s_unit.fmt(p.median_ms)), esc(_pct(step)), esc(p.n)])
            prev = p
        part.append("<details><summary>versions</summary>" + table(
            ["commit", "date", "subject", "median", "step", "n"], trows, num_cols=(3, 4, 5)) + "</details>")
        part.append("</section>")
        body.append("\n".join(part))
    return page("pytest-trtperf history", f"{generated} \u00b7 {source} \u00b7 pytest-trtperf {__version__}",
                "\n".join(body))
