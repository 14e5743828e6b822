"""Latency under load in words: the terminal's line per ``trt_bench.serve``
result (rate, percentiles with their bounds, queue, SLO, sustainable rate)."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_trtperf.core.serve_summary import RatePoint, Serve
from pytest_trtperf.core.results import Result
from pytest_trtperf.core.formatting import message_safe


def _ms(x: float) -> str:
    return "unbounded" if x == float("inf") else f"{x:.4g} ms"


def point_text(p: RatePoint, slo_percentile: str | None = None) -> str:
    """``200/s offered, 198/s achieved, 1000 requests: p50 2.1 ms, p99 8.3 ms (<= 9.0 ms)``."""
    parts = []
    for name in ("p50", "p99") + ((slo_percentile,) if slo_percentile not in (None, "p50", "p99") else ()):
        if name in p.percentiles:
            value, _, upper = p.percentiles[name]
            parts.append(f"{name} {_ms(value)}" + (f" (<= {_ms(upper)})" if name != "p50" else ""))
    unfinished = f", {p.unfinished} unfinished" if p.unfinished else ""
    return (f"{p.offered_rate:.4g}/s offered, {p.achieved_rate:.4g}/s achieved, {p.requests} requests{unfinished}, "
            f"queue mean {p.queue_mean:.2g} max {p.queue_max}: {', '.join(parts)}")


def serve_text(s: Serve) -> str:
    """One line for a serve measurement: configuration, the stated rate, the
    SLO's verdict there and the sustainable rate."""
    pct = s.slo.split("<")[0] if s.slo else None
    out = (f"served {s.arrivals} arrivals to {s.concurrency} slot{'s' if s.concurrency != 1 else ''}: "
           f"{point_text(s.at_rate, pct)}")
    if s.slo:
        out += f"; SLO {s.slo} {'met' if s.at_rate.meets else 'MISSED'}"
    if s.search is not None:
        lo, hi = s.search.bracket
        if s.search.sustainable_rate > 0:
            above = f"..{hi:.4g}" if s.search.failed_rate is not None else "+"
            out += f"; sustainable rate {lo:.4g}/s ({lo:.4g}{above}/s, {s.search.steps} runs)"
        else:
            out += f"; sustainable rate: none ({s.search.stop_reason})"
    return out


def lines(results: Sequence[Result]) -> list[str]:
    """``<id>: served ...`` for each serve result (its latency result; the
    sustainable-rate result is the same measurement)."""
    return [message_safe(f"{r.id}: {serve_text(r.serve)}", r.id) for r in results
            if r.serve is not None and r.serve.gated == "latency"]
