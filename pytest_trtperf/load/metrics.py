"""The two figures a serve measurement gates, defined once: what each is
called, and which time-gate metric (``core/metrics.py``) judges it, which
says which way is better.

Both go through the ordinary gate (``gate.judge``), baseline store, reports
and ``compare``, as results of their own:

* **latency at the stated rate** (lower is better): the result's latency
  series is the response time of every measured request (scheduled arrival to
  completion), judged on the SLO's percentile (p99 by default) like any
  latency percentile: the bootstrap of that order statistic.
* **sustainable rate** (higher is better): the highest rate that met the SLO,
  judged as the gate's ``throughput`` metric. Its uncertainty is the search's
  final bracket [highest rate that met, lowest that missed]: the result's
  distribution is the time per request over that bracket (two points,
  ``1/failed`` .. ``1/sustainable``), so the gate's interval spans the
  bracket, widened by the between-run noise like any other figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_trtperf.core import metrics
from pytest_trtperf.core.serve_summary import Serve, Slo

#: The ``Serve.gated`` values, in the order a serve call records its results.
FIGURES = ("latency", "sustainable_rate")
#: Result-name suffix of the sustainable-rate result (``<name>:sustainable_rate``).
SUSTAINABLE_SUFFIX = "sustainable_rate"


@dataclass(frozen=True)
class Figure:
    """One gated figure of a serve measurement."""

    name: str
    #: The gate metric it is judged as (``core.metrics.TIMING``).
    gate_metric: str
    #: How verdicts and reports name it.
    words: str

    @property
    def higher_is_better(self) -> bool:
        return not metrics.timing(self.gate_metric).lower_is_better


def latency_figure(slo: Slo | None, rate: float) -> Figure:
    """The percentile at the stated rate: the SLO's (p99 without an SLO)."""
    pct = slo.percentile if slo is not None else "p99"
    return Figure("latency", metrics.percentile_metric(pct), f"{pct} latency at {rate:g}/s")


def sustainable_figure(slo: Slo) -> Figure:
    rate = next(m for m in metrics.TIMING if m.unit == metrics.RATE)
    return Figure("sustainable_rate", rate.name, f"sustainable rate ({slo})")


def sustainable_name(name: str | None) -> str:
    """The sustainable-rate result's name beside the latency result ``name``."""
    return f"{name}:{SUSTAINABLE_SUFFIX}" if name else SUSTAINABLE_SUFFIX


def serve_words(serve: Serve | None, metric: str) -> str | None:
    """How verdicts name ``metric`` of a serve result ("p99 latency at
    200/s", "sustainable rate (p99<20ms)"); None for other results, or for a
    metric the serve result was not gated on (the gate's own words then)."""
    if serve is None:
        return None
    slo = Slo.parse(serve.slo) if serve.slo else None
    figure = (sustainable_figure(slo) if serve.gated == "sustainable_rate" and slo is not None
              else latency_figure(slo, serve.rate))
    return figure.words if figure.gate_metric == metric else None
