"""Frozen settings, built once: from pytest's options/ini (``Settings``) and from
the ``trt_perf`` marker (``PerfSpec``), merged per measurement (``MeasureOptions``).

Every command-line option is also an ini key of the same name without the
leading dashes and with underscores (``--trt-tolerance`` → ``trt_tolerance``).
The command line wins over the ini file, the ini file over the default; a marker
wins over both; keyword arguments of ``trt_bench.measure`` win over the marker.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import UsageError
from .measure import MeasureSettings

BASELINE_MODES = ("compare", "update", "off")
METRICS = ("median", "mean", "p90", "p95", "p99", "throughput")
MODES = ("latency", "throughput")
MISSING = ("pass", "fail")


@dataclass(frozen=True)
class Option:
    """One CLI option that is also an ini key."""

    flag: str
    help: str
    default: Any = None
    kind: str = "str"  # str | bool | float | int | path
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


#: Options owned by the core. Workload-specific modules add their own.
OPTIONS: tuple[Option, ...] = (
    Option("--trt-baseline", "compare (default): gate against baselines; update: measure and "
           "write baselines; off: measure only.", "compare", metavar="compare|update|off"),
    Option("--trt-baseline-dir", "Directory of the JSON baselines (default: .trtperf/ under the rootdir).",
           None, "path", metavar="DIR"),
    Option("--trt-tolerance", "Slowdown allowed before a test fails, e.g. 5% or 0.05 (default 5%).", "5%", metavar="FRACTION"),
    Option("--trt-metric", "Metric the gate compares: median (default), mean, p90, p95, p99, throughput.",
           "median", metavar="METRIC"),
    Option("--trt-confidence", "Confidence level of the statistical test (default 0.99).", "0.99", metavar="LEVEL"),
    Option("--trt-missing-baseline", "pass (default, with a note) or fail when a result has no baseline.",
           "pass", metavar="pass|fail"),
    Option("--trt-no-remeasure", "Decide on the first measurement: do not measure again to confirm a "
           "suspected regression.", False, "bool"),
    Option("--trt-warmup-ms", "Warm-up time before measuring (default 200 ms, as trtexec).", "200", metavar="MS"),
    Option("--trt-min-time", "Measure at least this many seconds before the adaptive stop (default 1: one "
           "period of the GPU power-cap controller, see bench/RESULTS.md 'Gate quality').", "1", metavar="SECONDS"),
    Option("--trt-max-time", "Hard cap on measured seconds per result (default 5).", "5", metavar="SECONDS"),
    Option("--trt-target-ci", "Stop when the confidence interval of the median is narrower than this, "
           "relative to the median (default 1%).", "1%", metavar="FRACTION"),
    Option("--trt-duration", "Measure for exactly this many seconds (turns the adaptive stop off), like "
           "trtexec --duration.", None, metavar="SECONDS"),
    Option("--trt-iterations", "Measure exactly this many iterations (turns the adaptive stop off), like "
           "trtexec --iterations.", None, metavar="N"),
    Option("--trt-mode", "latency (default: inferences one after another, GPU time per inference) or throughput "
           "(enqueue ahead, inferences per second).",
           "latency", metavar="latency|throughput"),
    Option("--trt-streams", "Streams in throughput mode (default 1), like trtexec --infStreams.", "1", metavar="N"),
    Option("--trt-no-cuda-graph", "Do not capture the enqueue in a CUDA graph (trtexec without "
           "--useCudaGraph).", False, "bool"),
    Option("--trt-blocking-sync", "Block on events instead of spin-waiting (trtexec --useSpinWait off).",
           False, "bool"),
    Option("--trt-include-transfers", "Copy inputs H2D and outputs D2H every iteration and report them "
           "(trtexec --includeDataTransfers).", False, "bool"),
    Option("--trt-require-gpu", "Fail, instead of skip, tests that need a GPU or TensorRT when none is "
           "available.", False, "bool"),
    Option("--trt-json", "Write every result and verdict to this JSON file.", None, "path", metavar="PATH"),
    Option("--trt-report", "Write a self-contained HTML report to this file.", None, "path", metavar="PATH"),
)


def parse_fraction(value: Any, *, what: str) -> float:
    """``"5%"``, ``"0.05"`` or ``0.05`` → ``0.05``. Raises a one-line UsageError."""
    text = str(value).strip()
    try:
        out = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a fraction; write it as 5% or 0.05") from None
    if not math.isfinite(out) or out < 0:
        raise UsageError(f"{what}: {value!r} must be a non-negative number such as 5% or 0.05")
    return out


def _positive(value: Any, *, what: str, cast: Callable[[Any], Any] = float, allow_zero: bool = False) -> Any:
    try:
        out = cast(str(value).strip())
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a number") from None
    if (out < 0) if allow_zero else (out <= 0):
        raise UsageError(f"{what}: {value!r} must be {'>= 0' if allow_zero else '> 0'}")
    return out


def _choice(value: Any, choices: tuple[str, ...], *, what: str) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise UsageError(f"{what}: {value!r} is not one of {', '.join(choices)}")
    return text


_CORE = MeasureSettings()


@dataclass(frozen=True)
class MeasureOptions:
    """Everything that decides how one measurement runs and is judged."""

    metric: str = "median"
    tolerance: float = 0.05
    confidence: float = _CORE.confidence
    missing_baseline: str = "pass"
    remeasure: bool = True
    # How long to measure: the measurement core's defaults (one source of truth).
    warmup_s: float = _CORE.warmup_s
    min_warmup_iterations: int = _CORE.min_warmup_iterations
    min_time_s: float = _CORE.min_time_s
    max_time_s: float = _CORE.max_time_s
    min_iterations: int = _CORE.min_iterations
    max_iterations: int = _CORE.max_iterations
    target_rel_ci: float = _CORE.target_rel_ci
    iterations: int | None = None
    duration_s: float | None = None
    mode: str = "latency"
    streams: int = 1
    cuda_graph: bool = True
    blocking_sync: bool = False
    include_transfers: bool = False

    def with_overrides(self, overrides: Mapping[str, Any], *, where: str) -> "MeasureOptions":
        """Apply marker or keyword overrides (user vocabulary, validated)."""
        if not overrides:
            return self
        updates: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in PERF_ARGS:
                known = ", ".join(sorted(PERF_ARGS))
                raise UsageError(f"{where}: unknown trt_perf argument {key!r} (known: {known})")
            field_name, convert = PERF_ARGS[key]
            updates[field_name] = convert(value, f"{where}: {key}")
        return dataclasses.replace(self, **updates)


def _conv_ms(v: Any, what: str) -> float:
    return _positive(v, what=what, allow_zero=True) / 1000.0


def _conv_bool(v: Any, what: str) -> bool:
    if isinstance(v, bool):
        return v
    raise UsageError(f"{what}: {v!r} must be True or False")


#: trt_perf marker / measure() keyword → (MeasureOptions field, converter).
PERF_ARGS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "metric": ("metric", lambda v, w: _choice(v, METRICS, what=w)),
    "tolerance": ("tolerance", lambda v, w: parse_fraction(v, what=w)),
    "confidence": ("confidence", lambda v, w: _confidence(v, w)),
    "missing_baseline": ("missing_baseline", lambda v, w: _choice(v, MISSING, what=w)),
    "remeasure": ("remeasure", _conv_bool),
    "warmup_ms": ("warmup_s", _conv_ms),
    "min_time": ("min_time_s", lambda v, w: _positive(v, what=w)),
    "max_time": ("max_time_s", lambda v, w: _positive(v, what=w)),
    "min_iterations": ("min_iterations", lambda v, w: _positive(v, what=w, cast=int)),
    "max_iterations": ("max_iterations", lambda v, w: _positive(v, what=w, cast=int)),
    "target_ci": ("target_rel_ci", lambda v, w: parse_fraction(v, what=w)),
    "iterations": ("iterations", lambda v, w: _positive(v, what=w, cast=int)),
    "duration": ("duration_s", lambda v, w: _positive(v, what=w)),
    "mode": ("mode", lambda v, w: _choice(v, MODES, what=w)),
    "streams": ("streams", lambda v, w: _positive(v, what=w, cast=int)),
    "cuda_graph": ("cuda_graph", _conv_bool),
    "blocking_sync": ("blocking_sync", _conv_bool),
    "include_transfers": ("include_transfers", _conv_bool),
}


def _confidence(v: Any, what: str) -> float:
    c = parse_fraction(v, what=what)
    if not 0.5 <= c < 1.0:
        raise UsageError(f"{what}: {v!r} must be between 0.5 and 1 (e.g. 0.99)")
    return c


def _raw(config: Any, opt: Option) -> Any:
    """CLI value if given, else the ini value, else the option's default."""
    value = config.getoption(opt.dest, default=None)
    if opt.kind == "bool":
        if value:
            return True
        ini = config.getini(opt.dest)
        return bool(ini) if not isinstance(ini, str) else ini.strip().lower() in ("1", "true", "yes", "on")
    if value is None:
        ini = config.getini(opt.dest)
        value = ini if ini not in ("", None, []) else None
    return opt.default if value is None else value


@dataclass(frozen=True)
class Settings:
    """Session-wide settings from the command line and the ini file."""

    baseline_mode: str
    baseline_dir: Path
    rootdir: Path
    require_gpu: bool
    json_path: Path | None
    report_path: Path | None
    measure: MeasureOptions = field(default_factory=MeasureOptions)

    @classmethod
    def from_pytest_config(cls, config: Any) -> "Settings":
        opts = {o.dest: o for o in OPTIONS}

        def raw(dest: str) -> Any:
            return _raw(config, opts[dest])

        rootdir = Path(str(config.rootpath))
        def opt_path(dest: str) -> Path | None:
            """A path from the command line is relative to where pytest was
            started (like --junitxml); one from the ini file to that file."""
            cli = config.getoption(dest, default=None)
            if cli:
                base = Path(str(config.invocation_params.dir))
                return (base / Path(cli).expanduser()).resolve()
            ini = config.getini(dest)
            if ini:
                base = Path(str(config.inipath.parent)) if config.inipath else rootdir
                return (base / Path(str(ini)).expanduser()).resolve()
            return None

        baseline_dir = opt_path("trt_baseline_dir") or rootdir / ".trtperf"

        m = MeasureOptions(
            metric=_choice(raw("trt_metric"), METRICS, what="--trt-metric"),
            tolerance=parse_fraction(raw("trt_tolerance"), what="--trt-tolerance"),
            confidence=_confidence(raw("trt_confidence"), "--trt-confidence"),
            missing_baseline=_choice(raw("trt_missing_baseline"), MISSING, what="--trt-missing-baseline"),
            remeasure=not raw("trt_no_remeasure"),
            warmup_s=_conv_ms(raw("trt_warmup_ms"), "--trt-warmup-ms"),
            min_time_s=_positive(raw("trt_min_time"), what="--trt-min-time"),
            max_time_s=_positive(raw("trt_max_time"), what="--trt-max-time"),
            target_rel_ci=parse_fraction(raw("trt_target_ci"), what="--trt-target-ci"),
            iterations=(_positive(raw("trt_iterations"), what="--trt-iterations", cast=int)
                        if raw("trt_iterations") is not None else None),
            duration_s=(_positive(raw("trt_duration"), what="--trt-duration")
                        if raw("trt_duration") is not None else None),
            mode=_choice(raw("trt_mode"), MODES, what="--trt-mode"),
            streams=_positive(raw("trt_streams"), what="--trt-streams", cast=int),
            cuda_graph=not raw("trt_no_cuda_graph"),
            blocking_sync=bool(raw("trt_blocking_sync")),
            include_transfers=bool(raw("trt_include_transfers")),
        )
        if m.max_time_s < m.min_time_s:
            raise UsageError(f"--trt-max-time ({m.max_time_s:g} s) is shorter than --trt-min-time "
                             f"({m.min_time_s:g} s); raise the cap or lower the minimum")
        return cls(
            baseline_mode=_choice(raw("trt_baseline"), BASELINE_MODES, what="--trt-baseline"),
            baseline_dir=baseline_dir,
            rootdir=rootdir,
            require_gpu=bool(raw("trt_require_gpu")),
            json_path=opt_path("trt_json"),
            report_path=opt_path("trt_report"),
            measure=m,
        )


def add_options(parser: Any) -> None:
    """Register the core options and their ini keys."""
    group = parser.getgroup("trtperf", "TensorRT performance tests (pytest-trtperf)")
    for opt in OPTIONS:
        text = opt.help.replace("%", "%%")  # argparse formats help with %
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=text)
            parser.addini(opt.dest, opt.help, type="bool", default=False)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.dest, help=text, metavar=opt.metavar)
            parser.addini(opt.dest, opt.help, default="")


def perf_overrides(markers: list[Any], *, where: str) -> dict[str, Any]:
    """Merge ``trt_perf`` marker kwargs (the closest marker, first, wins) and
    validate them: names and values, with one-line errors naming ``where``."""
    merged: dict[str, Any] = {}
    for mark in reversed(markers):
        if mark.args:
            raise UsageError(f"{where}: @pytest.mark.{mark.name} takes keyword arguments only, "
                             f"got {mark.args!r}")
        merged.update(mark.kwargs)
    MeasureOptions().with_overrides(merged, where=where)
    return merged
