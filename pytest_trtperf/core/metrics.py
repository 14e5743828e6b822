"""Every gated metric, defined once: its name, the words messages use, its
unit kind (time, rate, bytes), which way is better, how its value is read
from a result, a baseline entry or a history row, and how a value is written.

The gate, the statistics, the relative gates, the baseline store, the
reports and the settings look a metric up here instead of comparing its name
with ``"throughput"``; adding a metric is one definition in :data:`TIMING`
(a time or rate the gate judges, ``--trt-metric``) or :data:`MEMORY` (a
memory figure the memory gate judges) plus its tests. A serve measurement's
two figures (``load.metrics``) are judged as one of these.

Core module: no numpy, no pytest (``core/config.py`` imports it while the
plugin loads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_trtperf.core import units

#: Unit kinds.
TIME = "time"
RATE = "rate"
BYTES = "bytes"


@dataclass(frozen=True)
class Metric:
    """One gated metric. Its class fixes the unit kind and the direction
    (class attributes, not arguments) and says how a value is read and written."""

    name: str
    #: How verdicts name it ("median latency", "host memory peak per call").
    words: str
    #: :data:`TIME` (ms), :data:`RATE` (per second) or :data:`BYTES`.
    unit = TIME
    lower_is_better = True

    @property
    def paired_words(self) -> str:
        """How a relative gate names it: relative gates compare time-like
        block values (a rate is judged as the time per inference)."""
        return self.words

    @property
    def short(self) -> str:
        """The report tables' metric column."""
        return self.name

    def read(self, source: Any) -> float:
        """Its value in ``source``: a ``Result``, a ``BaselineEntry`` or a
        relative gate's ``Side`` (anything with ``latency`` and ``throughput``)."""
        raise NotImplementedError

    def read_row(self, row: Mapping[str, Any]) -> float:
        """Its value in one history row of a baseline entry."""
        return float(row[self.name])

    def fmt(self, value: float, unit: Any = None) -> str:
        """``value`` written for people (``unit``: a table's time unit)."""
        raise NotImplementedError

    def slowdown(self, current: float, baseline: float) -> float:
        """How many times worse ``current`` is than ``baseline`` (> 1: worse)."""
        return current / baseline if self.lower_is_better else baseline / current

    def change(self, current: float, baseline: float) -> float:
        """The change from ``baseline`` to ``current``, positive when worse."""
        return self.slowdown(current, baseline) - 1.0


@dataclass(frozen=True)
class TimeMetric(Metric):
    """A statistic of the latency series (ms), lower is better."""

    #: The percentile it is (None: the mean): the bootstrap's order statistic
    #: and a relative gate's block value.
    percentile: float | None = None

    @property
    def stat(self) -> str:
        """The time statistic the bootstrap compares (``stats.compare``)."""
        return self.name

    def read(self, source: Any) -> float:
        return float(getattr(source.latency, self.name))

    def fmt(self, value: float, unit: Any = None) -> str:
        """In ``unit`` (a table's ``units.TimeUnit``), else in the unit a
        table of this one value would choose, so a message says ``90.00 ns``
        where the table says ``90.00 ns``, not ``0.09 us``."""
        return str((unit if unit is not None else units.choose([value])).fmt(value))


@dataclass(frozen=True)
class RateMetric(Metric):
    """Inferences per second, higher is better; judged through the mean
    time per inference, whose ratio is the inverse ratio of rates."""

    unit = RATE
    lower_is_better = False
    percentile = None

    @property
    def stat(self) -> str:
        return "mean"

    @property
    def paired_words(self) -> str:
        return "time per inference"

    def read(self, source: Any) -> float:
        return source.throughput

    def fmt(self, value: float, unit: Any = None) -> str:
        return f"{value:,.1f}/s"


@dataclass(frozen=True)
class BytesMetric(Metric):
    """A memory figure in bytes (``Result.memory``), lower is better; judged
    by the memory gate (tolerance and a floor, no significance test)."""

    #: The report tables' metric column ("host memory").
    label: str = ""
    unit = BYTES

    @property
    def short(self) -> str:
        return self.label or self.name

    def read(self, source: Any) -> Any:
        """The figure in ``source.memory`` (None when it has none)."""
        return (getattr(source, "memory", None) or {}).get(self.name)

    def fmt(self, value: float, unit: Any = None) -> str:
        return fmt_bytes(value)


def fmt_bytes(n: int | float | None) -> str:
    """``512 B``, ``64.0 KiB``, ``12.3 MiB``, ``1.25 GiB`` (binary units, as
    CUDA and TensorRT report memory)."""
    if n is None:
        return "-"
    n = float(n)
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.2f} {unit}" if unit == "GiB" else f"{n:.1f} {unit}"
    return f"{n:.2f} GiB"  # pragma: no cover - loop always returns


#: The metrics the time gate judges (``--trt-metric``), in the settings' order.
TIMING: tuple[TimeMetric | RateMetric, ...] = (
    TimeMetric("median", "median latency", percentile=50.0),
    TimeMetric("mean", "mean latency"),
    TimeMetric("p90", "p90 latency", percentile=90.0),
    TimeMetric("p95", "p95 latency", percentile=95.0),
    TimeMetric("p99", "p99 latency", percentile=99.0),
    RateMetric("throughput", "throughput"),
)
#: The memory figures the memory gate judges (the others a result carries are
#: recorded, never failed: ``results.FIGURES``).
MEMORY: tuple[BytesMetric, ...] = (
    BytesMetric("host_peak_bytes", "host memory peak per call", label="host memory"),
    BytesMetric("device_peak_bytes", "device memory peak", label="device memory"),
)


def timing_names() -> tuple[str, ...]:
    """The names ``--trt-metric`` accepts."""
    return tuple(m.name for m in TIMING)


def memory_names() -> tuple[str, ...]:
    """The memory figures the memory gate judges."""
    return tuple(m.name for m in MEMORY)


def find(name: str) -> Metric | None:
    """The metric called ``name``, or None (a name read from a file may be
    one this version does not know)."""
    for m in (*TIMING, *MEMORY):
        if m.name == name:
            return m
    return None


def timing(name: str) -> TimeMetric | RateMetric:
    """The time-gate metric called ``name``; a name this version does not
    know reads as a time statistic of that name (``latency.<name>``)."""
    for m in TIMING:
        if m.name == name:
            return m
    return TimeMetric(name, name)


def percentile_metric(label: str) -> str:
    """The time-gate metric of a percentile label (``"p50"`` -> ``"median"``,
    ``"p99"`` -> ``"p99"``); a label no metric is stays itself."""
    for m in TIMING:
        if m.percentile is not None and label == f"p{m.percentile:g}":
            return m.name
    return label


def words(name: str) -> str:
    """How verdicts name ``name`` (the name itself when unknown)."""
    m = find(name)
    return m.words if m is not None else name


def fmt_value(metric: str, value: float | None, unit: Any = None) -> str:
    """``value`` of ``metric`` written for people; ``-`` for no number."""
    if value is None or not isinstance(value, (int, float)) or value != value:
        return "-"
    return (find(metric) or timing(metric)).fmt(value, unit)
