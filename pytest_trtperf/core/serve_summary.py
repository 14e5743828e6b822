"""Plain data of latency under load (no numpy): the SLO, one rate's figures,
the rate search, and what a ``trt_bench.serve`` result carries. Everything
has ``to_dict`` / ``from_dict``: it crosses the xdist wire and lands in
``--trt-json``, baselines and reports."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any
from collections.abc import Mapping

#: Percentile names the reports use, and their probabilities.
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
#: Percentiles an SLO may name: those the baseline gate can judge.
SLO_PERCENTILES = ("p50", "p90", "p95", "p99")

_SLO = re.compile(r"^\s*(p50|p90|p95|p99)\s*(<=|<)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s)\s*$")
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Slo:
    """A latency objective: ``percentile`` of response times at most ``bound_ms``."""

    percentile: str
    bound_ms: float

    @classmethod
    def parse(cls, text: str) -> Slo:
        """``"p99<20ms"`` (``<`` or ``<=``; ``us``, ``ms`` or ``s``); ValueError otherwise."""
        m = _SLO.match(str(text))
        if m is None:
            raise ValueError(f"SLO {text!r} is not '<percentile><<bound><unit>' (e.g. 'p99<20ms'; percentiles "
                             f"{', '.join(SLO_PERCENTILES)}; units us, ms, s)")
        bound = float(m.group(3)) * _UNIT_MS[m.group(4)]
        if not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"SLO {text!r}: the bound must be a finite time > 0")
        return cls(percentile=m.group(1), bound_ms=bound)

    def __str__(self) -> str:
        return f"{self.percentile}<{self.bound_ms:g}ms"


@dataclass(frozen=True)
class RatePoint:
    """One open-loop run at one offered rate, measured requests only (the
    warm-up's are run, not counted). Times in ms; bounds are one-sided at
    ``confidence`` (inf: too few finished requests to bound)."""

    offered_rate: float
    achieved_rate: float
    requests: int
    unfinished: int
    mean_ms: float
    percentiles: Mapping[str, tuple[float, float, float]]  # name -> (value, lower, upper)
    confidence: float
    queue_mean: float
    queue_max: int
    #: The driver's own lag (start after the request could have started), p99.
    lag_p99_ms: float
    #: Whether the SLO's percentile is met: its upper bound within the SLO (None without an SLO).
    meets: bool | None = None

    def value(self, name: str) -> float:
        return self.percentiles[name][0]

    def upper(self, name: str) -> float:
        return self.percentiles[name][2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["percentiles"] = {k: [_num(x) for x in v] for k, v in self.percentiles.items()}
        d["mean_ms"] = _num(self.mean_ms)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RatePoint:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["percentiles"] = {str(k): tuple(_float(x) for x in v) for k, v in d["percentiles"].items()}
        kw["mean_ms"] = _float(d["mean_ms"])
        return cls(**kw)


@dataclass(frozen=True)
class Search:
    """The highest rate whose SLO percentile met the SLO (conservatively: its
    upper bound did): ``sustainable_rate`` is the highest rate that met it,
    ``failed_rate`` the lowest above it that did not (None: none failed within
    the search's bounds), so the true sustainable rate lies between them."""

    sustainable_rate: float
    failed_rate: float | None
    steps: int
    stop_reason: str

    @property
    def bracket(self) -> tuple[float, float]:
        hi = self.failed_rate if self.failed_rate is not None else self.sustainable_rate
        return (self.sustainable_rate, hi)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Search:
        return cls(**{f.name: d[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Serve:
    """What a ``trt_bench.serve`` result carries beside the ordinary figures:
    the configuration, the run at the stated rate, every rate tried (the
    knee), and the search."""

    rate: float
    arrivals: str
    concurrency: int
    slo: str | None
    seed: int
    duration_s: float
    at_rate: RatePoint
    points: tuple[RatePoint, ...] = ()
    search: Search | None = None
    #: ``"latency"`` (p-th percentile at the stated rate) or ``"sustainable_rate"``.
    gated: str = "latency"

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "arrivals": self.arrivals, "concurrency": self.concurrency, "slo": self.slo,
                "seed": self.seed, "duration_s": self.duration_s, "at_rate": self.at_rate.to_dict(),
                "points": [p.to_dict() for p in self.points], "gated": self.gated,
                "search": self.search.to_dict() if self.search is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Serve:
        return cls(rate=float(d["rate"]), arrivals=str(d["arrivals"]), concurrency=int(d["concurrency"]),
                   slo=d.get("slo"), seed=int(d["seed"]), duration_s=float(d["duration_s"]),
                   at_rate=RatePoint.from_dict(d["at_rate"]),
                   points=tuple(RatePoint.from_dict(p) for p in d.get("points", ())),
                   search=Search.from_dict(d["search"]) if d.get("search") else None,
                   gated=str(d.get("gated", "latency")))


def _num(x: float) -> float | str:
    """JSON has no infinity: an unbounded figure is written ``"inf"``."""
    return x if math.isfinite(x) else "inf"


def _float(x: Any) -> float:
    return math.inf if x == "inf" else float(x)


