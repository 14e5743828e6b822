"""Frozen result objects: what a measurement produced and what the gate decided.

Everything here is plain data with ``to_dict`` / ``from_dict`` so results can
cross the xdist wire, land in ``--trt-json`` and be compared with baselines.
Times are milliseconds unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any
from collections.abc import Mapping

from pytest_trtperf.core import metrics
from pytest_trtperf.core.serve_summary import Serve
from pytest_trtperf.core.workload import Clock, kind_clock


#: Verdict statuses. ``regression`` always fails a test; ``missing``,
#: ``incomparable`` and ``unreliable`` fail it when their option says ``fail``
#: (``unreliable`` for invalid data always fails). The memory verdict
#: (``MemoryVerdict``) uses the same words and fails on ``regression`` too.
STATUSES = (
    "pass",  # within tolerance or not significant given all the noise
    "regression",  # slower beyond tolerance and significant
    "improved",  # faster beyond tolerance and significant (reported, never failed)
    "unreliable",  # measured on a busy GPU or a loaded host (after waiting and re-measuring), or invalid data
    "missing",  # no baseline for this result
    "incomparable",  # baseline from another device class / measurement method
    "updated",  # --trt-baseline=update: this result becomes the baseline
    "not_written",  # --trt-baseline=update, but its test failed or errored: the baseline keeps its old entry
    "off",  # --trt-baseline=off: measured, not compared
    "disabled",  # --trt-disable: ran once, untimed (never reported)
    "new",  # --trt-ab: the test (or this measurement) does not exist at the reference; measured, not judged
)
#: ``Verdict.decided_by`` values. Compared verdicts: which bar the change was
#: held to (the larger one decides). Unreliable verdicts: why.
DECIDED_BY = ("tolerance", "run_noise", "sample_noise", "host_busy", "gpu_busy", "invalid_data", "too_wide",
              "suspect_baseline", "no_reference")


@dataclass(frozen=True)
class SeriesStats:
    """Summary of one timing series, in milliseconds."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    p90: float
    p95: float
    p99: float
    stdev: float
    #: Distribution-free confidence interval of the median (order statistics).
    median_ci: tuple[float, float]

    @property
    def median_ms(self) -> float:
        return self.median

    @property
    def mean_ms(self) -> float:
        return self.mean

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["median_ci"] = list(self.median_ci)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesStats:
        kw = {f.name: d[f.name] for f in fields(cls)}
        kw["median_ci"] = tuple(kw["median_ci"])
        return cls(**kw)


@dataclass(frozen=True)
class Distribution:
    """Compact form of a sample: ``n`` and its quantile function at evenly spaced
    probabilities (first = min, last = max). Enough to redraw a sample of the
    same size for the statistical test, at a fixed size on disk."""

    n: int
    quantiles_ms: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "quantiles_ms": list(self.quantiles_ms)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Distribution:
        return cls(n=int(d["n"]), quantiles_ms=tuple(float(x) for x in d["quantiles_ms"]))


@dataclass(frozen=True)
class DeviceState:
    """What the device was doing during the measured window.

    ``flags`` marks conditions that make the numbers suspect: ``power_throttle``,
    ``thermal_throttle``, ``busy`` (other processes on the GPU), ``clocks_unlocked``
    when locking was asked for and failed.
    """

    kind: str = "host"
    sm_clock_mhz_min: float | None = None
    sm_clock_mhz_median: float | None = None
    mem_clock_mhz_median: float | None = None
    power_w_median: float | None = None
    power_w_max: float | None = None
    temperature_c_max: float | None = None
    throttle_reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    clocks_locked: str = "off"
    samples: int = 0
    #: Time series for reports: list of (t_s, sm_mhz, mem_mhz, power_w, temp_c).
    timeline: tuple[tuple[float, float, float, float, float], ...] = ()
    #: Host: CPU cores' worth of time other processes used during the window
    #: (from /proc/stat minus this process's own CPU time); None when unknown.
    cpu_others: float | None = None
    #: Host: share of CPU time the hypervisor stole during the window (VMs).
    cpu_steal: float | None = None
    #: Host: runnable tasks that had no core, averaged over the window (read
    #: every 100 ms from /proc/stat ``procs_running``).
    cpu_waiting: float | None = None
    #: Host: share of the window the measuring thread was runnable but waited
    #: for a CPU (its /proc schedstat).
    cpu_delayed: float | None = None
    #: Host: times the measuring thread was put back on a CPU during the window.
    cpu_gaps: int | None = None
    #: Host: seconds the measuring thread ran on a CPU during the window.
    cpu_run_s: float | None = None
    #: Host: estimated share of samples that contained a wait for a CPU
    #: (``host_state.judge_window``); what decides ``host_busy``.
    cpu_hit: float | None = None
    #: Host: 1-minute load average at the end of the window.
    load_avg: float | None = None
    #: Other processes that shared the device: ``"1234 python3"`` (GPU: from
    #: NVML and /proc; host: the busiest others, when the host was busy).
    other_processes: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["throttle_reasons"] = list(self.throttle_reasons)
        d["flags"] = list(self.flags)
        d["timeline"] = [list(t) for t in self.timeline]
        d["other_processes"] = list(self.other_processes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceState:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["throttle_reasons"] = tuple(kw.get("throttle_reasons", ()))
        kw["flags"] = tuple(kw.get("flags", ()))
        kw["timeline"] = tuple(tuple(t) for t in kw.get("timeline", ()))
        kw["other_processes"] = tuple(kw.get("other_processes", ()))
        return cls(**kw)


@dataclass(frozen=True)
class Verdict:
    """The gate's decision for one result."""

    status: str
    metric: str
    tolerance: float
    baseline_value: float | None = None
    current_value: float | None = None
    #: current/baseline - 1 for time metrics; baseline/current - 1 for
    #: throughput, so a positive change always means slower.
    change: float | None = None
    #: Confidence interval of ``change``.
    ci: tuple[float, float] | None = None
    confidence: float | None = None
    message: str = ""
    #: Set when the first measurement looked like a regression and the gate
    #: measured again before deciding.
    remeasured: bool = False
    #: GPU-state flags that bear on this verdict (``gate.verdict_flags``): what
    #: the reports' flag column shows. The raw flags are ``device_state.flags``.
    flags: tuple[str, ...] = ()
    #: Which term decided (``DECIDED_BY``): for compared verdicts the largest
    #: of the tolerance, the between-run noise allowance and the within-run
    #: interval; for ``unreliable`` the cause. None otherwise.
    decided_by: str | None = None
    #: The between-run noise term: ``sd`` (relative), ``source`` ("history"
    #: or "prior <kind>"), ``runs`` (baseline runs behind it), ``allowance``
    #: (the change it alone explains at the confidence level).
    run_noise: Mapping[str, Any] | None = None
    #: Build-configuration changes the compared baseline differs by
    #: (``"precision ['fp16'] -> ['fp32']"``); the gate judges them.
    config_changes: tuple[str, ...] = ()
    #: The smallest slowdown (fraction, like ``change``) that would have
    #: failed this verdict now: the tolerance, the within-run interval and the
    #: between-run allowance combined (``noise.fail_bar``). None when nothing
    #: was judged.
    fails_above: float | None = None
    #: What more ``update`` runs would bring ``fails_above`` down to
    #: (``catch.Projection``: ``more_runs``, ``fails_above``), or None.
    fails_above_later: Mapping[str, Any] | None = None

    @property
    def could_catch(self) -> str:
        """``+13.0% is inside what this test can tell apart: 13.6%; 1 baseline
        run; ...`` for a judged verdict, else empty."""
        from pytest_trtperf.core.catch import explain

        return explain(self.change, self.fails_above, self.run_noise, self.fails_above_later)

    @property
    def failed(self) -> bool:
        """Fails its test whatever the options say (regressions, invalid data)."""
        return self.status == "regression" or (self.status == "unreliable" and self.decided_by == "invalid_data")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["flags"] = list(self.flags)
        d["run_noise"] = dict(self.run_noise) if self.run_noise is not None else None
        d["config_changes"] = list(self.config_changes)
        d["fails_above_later"] = dict(self.fails_above_later) if self.fails_above_later is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if kw.get("ci") is not None:
            kw["ci"] = tuple(kw["ci"])
        kw["flags"] = tuple(kw.get("flags", ()))
        kw["config_changes"] = tuple(kw.get("config_changes", ()))
        return cls(**kw)


#: Every figure a result may carry (bytes), in report order, with its label:
#: the gated ones (``metrics.MEMORY``) first, then those recorded for reading.
FIGURES: dict[str, str] = {
    **{m.name: m.words for m in metrics.MEMORY},
    "device_total_bytes": "device memory allocated in total",
    "context_memory_bytes": "execution context memory",
    "weights_bytes": "engine weights",
    "plan_bytes": "serialized plan",
    "build_peak_bytes": "builder device memory peak",
    "build_total_bytes": "builder device memory allocated in total",
    "torch_peak_allocated_bytes": "torch peak allocated (process)",
    "torch_peak_reserved_bytes": "torch peak reserved (process)",
}

@dataclass(frozen=True)
class MemoryChange:
    """One gated figure against the baseline's."""

    figure: str
    current: int
    baseline: int | None = None
    #: current/baseline - 1; None without a baseline figure or when it was 0.
    change: float | None = None
    status: str = "missing"

    @property
    def label(self) -> str:
        return FIGURES.get(self.figure, self.figure)

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "current": self.current, "baseline": self.baseline, "change": self.change,
                "status": self.status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemoryChange:
        return cls(figure=str(d["figure"]), current=int(d["current"]),
                   baseline=None if d.get("baseline") is None else int(d["baseline"]),
                   change=d.get("change"), status=str(d.get("status", "missing")))


@dataclass(frozen=True)
class MemoryVerdict:
    """The memory gate's decision for one result (the time verdict is separate).

    ``status`` uses the time verdict's words: ``regression`` fails the test;
    ``off`` means memory is not gated (``--trt-baseline=off`` or
    ``memory_tolerance="off"``).
    """

    status: str
    tolerance: float | None
    changes: tuple[MemoryChange, ...] = ()
    message: str = ""
    remeasured: bool = False

    @property
    def failed(self) -> bool:
        return self.status == "regression"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "tolerance": self.tolerance, "changes": [c.to_dict() for c in self.changes],
                "message": self.message, "remeasured": self.remeasured}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemoryVerdict:
        return cls(status=str(d["status"]), tolerance=d.get("tolerance"),
                   changes=tuple(MemoryChange.from_dict(c) for c in d.get("changes", ())),
                   message=str(d.get("message", "")), remeasured=bool(d.get("remeasured", False)))



def figures_from_json(value: Any) -> dict[str, int]:
    """Figures read from a baseline entry (absent in files written before
    memory was recorded: ``{}``). Names this version does not know are kept,
    so an update does not drop what a newer version wrote. Raises ValueError
    for anything that is not a mapping of names to whole, non-negative bytes."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("memory is not an object of figures")
    out = {}
    for name, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"memory figure {name!r} is {v!r}, not a whole number of bytes")
        out[str(name)] = v
    return out



@dataclass(frozen=True)
class Side:
    """One side of an interleaved A/B measurement (``Relative``)."""

    #: What was measured, for people: the engine's file or the callable's name.
    label: str
    kind: str
    latency: SeriesStats
    throughput: float
    distribution: Distribution
    config_hash: str
    identity: Mapping[str, Any] = field(default_factory=dict)

    def metric_value(self, metric: str) -> float:
        return metrics.timing(metric).read(self)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "latency_ms": self.latency.to_dict(),
                "throughput": self.throughput, "distribution": self.distribution.to_dict(),
                "config_hash": self.config_hash, "identity": dict(self.identity)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Side:
        return cls(label=str(d["label"]), kind=str(d["kind"]), latency=SeriesStats.from_dict(d["latency_ms"]),
                   throughput=float(d["throughput"]), distribution=Distribution.from_dict(d["distribution"]),
                   config_hash=str(d["config_hash"]), identity=d.get("identity", {}))


#: Where a relative verdict came from.
ORIGINS = (
    "compare",  # trt_bench.compare(a, b, ...): a relative gate written in the test
    "ab_confirm",  # --trt-ab-confirm: a suspected regression re-measured against the baseline's own model
    "side_by_side",  # --trt-ab: the same test at another revision or environment, in a second process
)


@dataclass(frozen=True)
class Relative:
    """Both sides of an interleaved A/B measurement and their paired ratio.

    ``ratio`` is B over A for the metric, time-like (throughput: A's rate over
    B's), so above 1 always means B is slower; ``ci`` is its confidence
    interval and ``bound`` the largest ratio the expectation allows.
    """

    a: Side
    b: Side
    metric: str
    ratio: float
    ci: tuple[float, float]
    pairs: int
    bound: float
    #: The expectation in words: "b at most 3.0% slower than a".
    expectation: str
    origin: str = "compare"
    #: ``ab_confirm``: the commit side A's model was taken from.
    commit: str | None = None
    #: B over A of every pair, in the order measured (the report plots them).
    pair_ratios: tuple[float, ...] = ()
    #: ``side_by_side``: where side A ran (``revision`` as given, ``commit``,
    #: ``python``, ``python_version``, ``packages``, ``setup``) and this side's
    #: ``python`` / ``python_version`` as ``here``; its memory figures.
    reference: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"a": self.a.to_dict(), "b": self.b.to_dict(), "metric": self.metric, "ratio": self.ratio,
             "ci": list(self.ci), "pairs": self.pairs, "bound": self.bound, "expectation": self.expectation,
             "origin": self.origin, "commit": self.commit, "pair_ratios": list(self.pair_ratios)}
        if self.reference is not None:
            d["reference"] = dict(self.reference)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Relative:
        return cls(a=Side.from_dict(d["a"]), b=Side.from_dict(d["b"]), metric=str(d["metric"]),
                   ratio=_num(d["ratio"]), ci=(_num(d["ci"][0]), _num(d["ci"][1])), pairs=int(d["pairs"]),
                   bound=float(d["bound"]), expectation=str(d["expectation"]), origin=str(d.get("origin", "compare")),
                   commit=d.get("commit"), pair_ratios=tuple(_num(x) for x in d.get("pair_ratios", ())),
                   reference=dict(d["reference"]) if isinstance(d.get("reference"), dict) else None)


def _num(x: Any) -> float:
    """JSON writes NaN and infinity as null."""
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class Result:
    """One named measurement: ``<test id>::<name>``.

    For a relative gate (``trt_bench.compare``) the top-level numbers are side
    B's and ``relative`` holds both sides and their paired ratio.
    """

    id: str
    nodeid: str
    name: str | None
    kind: str
    mode: str
    latency: SeriesStats
    throughput: float  # inferences per second, host wall time
    distribution: Distribution
    stop_reason: str
    warmup_iterations: int
    warmup_s: float
    measured_s: float
    config_hash: str
    identity: Mapping[str, Any]
    fingerprint: Mapping[str, Any]
    device_class: str
    device_state: DeviceState = field(default_factory=DeviceState)
    extra: Mapping[str, SeriesStats] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    verdict: Verdict | None = None
    #: Optional per-layer profile (TensorRT): list of {"name", "ms"}.
    layers: tuple[Mapping[str, Any], ...] = ()
    location: tuple[str, int] | None = None  # (file, line) of the test
    #: Device memory the engine needs (TensorRT), in bytes.
    device_memory_bytes: int | None = None
    #: Memory figures in bytes (``FIGURES``), measured outside the timed window.
    memory: Mapping[str, int] = field(default_factory=dict)
    #: The memory gate's decision (None: no gated figure); separate from ``verdict``.
    memory_verdict: MemoryVerdict | None = None
    #: Report label (``group=``): reports group results by it (``--trt-group-by``).
    group: str | None = None
    #: The user's own context (``trt_bench.extra_info``, ``extra_info=``): JSON data,
    #: kept in ``--trt-json``, baselines and the HTML report; never judged.
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    #: The test's parameters (``pytest.mark.parametrize``) as text, for ``--trt-group-by=param:NAME``.
    params: Mapping[str, str] = field(default_factory=dict)
    #: What the measured callable returned on its last call (the test's own
    #: process only: never serialised, never compared).
    return_value: Any = field(default=None, compare=False, repr=False)
    #: Both sides of an interleaved A/B measurement, when the verdict rests on one.
    relative: Relative | None = None
    #: Latency under load (``trt_bench.serve``, mode ``serve``): the
    #: configuration, every rate run and the rate search.
    serve: Serve | None = None
    #: Which clock timed it (``core.workload.clock_of`` of its workload);
    #: None when made: the clock of its ``kind``. Written to JSON only when
    #: it differs from that, so documents of the built-in kinds are unchanged.
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.clock is None:
            object.__setattr__(self, "clock", kind_clock(self.kind))

    @property
    def is_relative_gate(self) -> bool:
        """A ``trt_bench.compare`` result: it carries both sides itself and
        never becomes (or fails to become) a baseline entry."""
        return self.relative is not None and self.relative.origin == "compare"

    # Friendly accessors matching the design's vocabulary.
    @property
    def gpu_compute(self) -> SeriesStats | None:
        return self.extra.get("gpu_compute")

    @property
    def enqueue(self) -> SeriesStats | None:
        return self.extra.get("enqueue")

    @property
    def h2d(self) -> SeriesStats | None:
        return self.extra.get("h2d")

    @property
    def d2h(self) -> SeriesStats | None:
        return self.extra.get("d2h")

    @property
    def flagged(self) -> bool:
        return self.device_state.flagged

    def metric_value(self, metric: str) -> float:
        """The value of ``metric`` for this result (ms, or inferences/s)."""
        return metrics.timing(metric).read(self)

    def withheld(self, why: str) -> Result:
        """This result when an ``update`` does not write it (``why``: its test
        failed or errored): the ``updated`` verdicts (time and memory) become
        ``not_written``, so no report counts it as updated."""
        message = f"baseline not written: {why}"
        v, m = self.verdict, self.memory_verdict
        if v is not None and v.status == "updated":
            v = replace(v, status="not_written", message=message)
        if m is not None and m.status == "updated":
            m = replace(m, status="not_written", message=message)
        return replace(self, verdict=v, memory_verdict=m)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "nodeid": self.nodeid,
            "name": self.name,
            "kind": self.kind,
            "mode": self.mode,
            "latency_ms": self.latency.to_dict(),
            "throughput": self.throughput,
            "distribution": self.distribution.to_dict(),
            "stop_reason": self.stop_reason,
            "warmup_iterations": self.warmup_iterations,
            "warmup_s": self.warmup_s,
            "measured_s": self.measured_s,
            "config_hash": self.config_hash,
            "identity": dict(self.identity),
            "fingerprint": dict(self.fingerprint),
            "device_class": self.device_class,
            "device_state": self.device_state.to_dict(),
            "extra_ms": {k: v.to_dict() for k, v in self.extra.items()},
            "notes": list(self.notes),
            "verdict": self.verdict.to_dict() if self.verdict else None,
            "layers": [dict(x) for x in self.layers],
            "location": list(self.location) if self.location else None,
            "device_memory_bytes": self.device_memory_bytes,
            "memory": dict(self.memory),
            "memory_verdict": self.memory_verdict.to_dict() if self.memory_verdict else None,
            "group": self.group,
            "extra_info": dict(self.extra_info),
            "params": dict(self.params),
            "relative": self.relative.to_dict() if self.relative is not None else None,
            **({"serve": self.serve.to_dict()} if self.serve is not None else {}),
            **({"clock": self.clock} if self.clock != kind_clock(self.kind) else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        return cls(
            id=d["id"],
            nodeid=d["nodeid"],
            name=d.get("name"),
            kind=d["kind"],
            mode=d["mode"],
            latency=SeriesStats.from_dict(d["latency_ms"]),
            throughput=float(d["throughput"]),
            distribution=Distribution.from_dict(d["distribution"]),
            stop_reason=d["stop_reason"],
            warmup_iterations=int(d["warmup_iterations"]),
            warmup_s=float(d["warmup_s"]),
            measured_s=float(d["measured_s"]),
            config_hash=d["config_hash"],
            identity=d.get("identity", {}),
            fingerprint=d.get("fingerprint", {}),
            device_class=d["device_class"],
            device_state=DeviceState.from_dict(d.get("device_state", {})),
            extra={k: SeriesStats.from_dict(v) for k, v in d.get("extra_ms", {}).items()},
            notes=tuple(d.get("notes", ())),
            verdict=Verdict.from_dict(d["verdict"]) if d.get("verdict") else None,
            layers=tuple(d.get("layers", ())),
            location=tuple(d["location"]) if d.get("location") else None,
            device_memory_bytes=d.get("device_memory_bytes"),
            memory=dict(d.get("memory") or {}),
            memory_verdict=MemoryVerdict.from_dict(d["memory_verdict"]) if d.get("memory_verdict") else None,
            group=d.get("group") if isinstance(d.get("group"), str) else None,
            extra_info=dict(d.get("extra_info") or {}),
            params={str(k): str(v) for k, v in (d.get("params") or {}).items()},
            relative=Relative.from_dict(d["relative"]) if d.get("relative") else None,
            serve=Serve.from_dict(d["serve"]) if d.get("serve") else None,
            clock=d.get("clock"),
        )
