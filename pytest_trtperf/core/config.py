"""Every option, ini key and ``trt_perf`` marker argument, resolved once into
frozen settings.

This is the only module that reads this plugin's options and ini values
(``config.getoption`` / ``config.getini`` of ``--trt-*`` / ``trt_*``), and it
parses the ``trt_perf`` marker's arguments (:func:`perf_overrides`). Two other
readers are by design, and ``tests/test_hygiene.py`` allows no third:
``trt/spec.py`` validates the ``trt_engine`` marker's arguments (the engine
description, ``EngineSpec.from_marker``), and ``gpu/session.py`` reads
pytest's and xdist's own options (``collectonly``, ``dist``, ``tx``) to know
whether and where workers run. The session's :class:`Settings` holds three
parts that are handed down to the components that need them: the core
(:class:`MeasureOptions` for measuring and gating, baseline mode and paths),
the GPU part (:class:`GpuSettings`) and the TensorRT part (:class:`TrtOptions`).

Every command-line option is also an ini key of the same name without the
leading dashes and with underscores (``--trt-tolerance`` -> ``trt_tolerance``).
The command line wins over the ini file, the ini file over the default; a
``trt_perf`` marker wins over both; keyword arguments of ``trt_bench.measure``
win over the marker. Paths from the command line are relative to where pytest
was started (like ``--junitxml``), paths from the ini file to that file.

Importing this module is cheap (no numpy): pytest loads it with the plugin.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.metrics import timing_names

BASELINE_MODES = ("compare", "update", "off")
#: ``--trt-baseline-loaded``: what an update does with a window still loaded after the wait and re-measure.
BASELINE_LOADED = ("skip", "write")
METRICS = timing_names()  # core/metrics.py defines them
MODES = ("latency", "throughput")
MISSING = ("pass", "fail")
#: What ``incomparable`` and ``unreliable`` verdicts do to their test.
PASS_FAIL = ("pass", "fail")
#: Default bounded wait for a busy GPU or a loaded host to become quiet
#: before the re-measure (seconds).
BUSY_WAIT_S = 10.0

#: Upper bounds that keep a typo from running for hours or filling memory
#: (10 million samples are 80 MB; an hour is longer than any CI step wants).
MAX_SECONDS = 3600.0
MAX_WARMUP_MS = 600_000.0
MAX_ITERATIONS = 10_000_000
MAX_STREAMS = 64

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


# -- value parsers: one line naming ``what`` on bad input ----------------------
def parse_fraction(value: Any, *, what: str, bare_max: float | None = None) -> float:
    """``"5%"``, ``"0.05"`` or ``0.05`` -> ``0.05``.

    With ``bare_max``, a number without ``%`` above it is refused: a tolerance
    of ``5`` would mean 500%, a gate that never fires.
    """
    if isinstance(value, bool):
        raise UsageError(f"{what}: {value!r} is not a fraction; write it as 5% or 0.05")
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        out = float(text[:-1]) / 100.0 if percent else float(text)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a fraction; write it as 5% or 0.05") from None
    if not math.isfinite(out) or out < 0:
        raise UsageError(f"{what}: {value!r} must be a non-negative number such as 5% or 0.05")
    if bare_max is not None and not percent and out > bare_max:
        raise UsageError(f"{what}: {value!r} would mean {out:.0%}; write {_g(out)}% or {_g(out / 100)} "
                         f"(a bare number is a fraction: 0.05 = 5%)")
    return out


def _g(x: float) -> str:
    return f"{x:g}"


def parse_number(value: Any, *, what: str, low: float, high: float, low_open: bool = False,
                 integer: bool = False) -> Any:
    """A finite number within [low, high] (or (low, high] with ``low_open``).

    NaN and infinity are refused: a NaN duration never ends, a NaN warm-up
    fails every test deep inside the measurement loop.
    """
    if isinstance(value, bool):
        raise UsageError(f"{what}: {value!r} is not a number")
    text = str(value).strip()
    try:
        out: Any = float(text)
    except ValueError:
        raise UsageError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(out):
        raise UsageError(f"{what}: {value!r} must be a finite number")
    if integer:
        if out != int(out):
            raise UsageError(f"{what}: {value!r} is not a whole number")
        out = int(out)
    bad_low = out <= low if low_open else out < low
    if bad_low or out > high:
        lo = f"> {_g(low)}" if low_open else f">= {_g(low)}"
        raise UsageError(f"{what}: {value!r} must be {lo} and <= {_g(high)}")
    return out


def parse_choice(value: Any, choices: tuple[str, ...], *, what: str) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise UsageError(f"{what}: {value!r} is not one of {', '.join(choices)}")
    return text


def parse_bool(value: Any, *, what: str) -> bool:
    """``True``/``False``, or an ini spelling (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{what}: {value!r} is not a boolean; use true or false")


def _strict_bool(value: Any, what: str) -> bool:
    """Marker and keyword arguments take real booleans only."""
    if isinstance(value, bool):
        return value
    raise UsageError(f"{what}: {value!r} must be True or False")


def _confidence(value: Any, what: str) -> float:
    c = parse_fraction(value, what=what)
    if not 0.5 <= c < 1.0:
        raise UsageError(f"{what}: {value!r} must be between 0.5 and 1 (e.g. 0.99)")
    return c


def _target_ci(value: Any, what: str) -> float:
    c = parse_fraction(value, what=what)
    if not 0 < c <= 1:
        raise UsageError(f"{what}: {value!r} must be above 0 and at most 100% (e.g. 1%)")
    return c


def _memory_tolerance(value: Any, what: str) -> float | None:
    """Allowed growth of a gated memory figure (``"10%"``), or None for
    ``"off"`` / None: memory recorded, never failed."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    return parse_fraction(value, what=what, bare_max=1.0)


def _seconds(value: Any, what: str) -> float:
    return float(parse_number(value, what=what, low=0, high=MAX_SECONDS, low_open=True))


def _ms_to_s(value: Any, what: str) -> float:
    return float(parse_number(value, what=what, low=0, high=MAX_WARMUP_MS)) / 1000.0


def _count(value: Any, what: str) -> int:
    return int(parse_number(value, what=what, low=1, high=MAX_ITERATIONS, integer=True))


def _streams(value: Any, what: str) -> int:
    return int(parse_number(value, what=what, low=1, high=MAX_STREAMS, integer=True))


def _wait_s(value: Any, what: str) -> float:
    return float(parse_number(value, what=what, low=0, high=MAX_SECONDS))


def _run_noise(value: Any, what: str) -> float | None:
    """``auto`` (None: the entry's history and the prior) or a relative sd
    such as ``3%``; ``0`` leaves the between-run term out."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return parse_fraction(value, what=what, bare_max=1.0)


# -- measurement settings -------------------------------------------------------
@dataclass(frozen=True)
class MeasureSettings:
    """How long to warm up and measure: what the measurement loop needs.

    Its defaults are the defaults of every option and marker argument below.
    """

    warmup_s: float = 0.2
    min_warmup_iterations: int = 5
    #: At least one period (~1 s) of the GPU's power-cap controller
    #: (bench/RESULTS.md, "Gate quality").
    min_time_s: float = 1.0
    max_time_s: float = 5.0
    min_iterations: int = 10
    max_iterations: int = MAX_ITERATIONS
    target_rel_ci: float = 0.01
    confidence: float = 0.99
    iterations: int | None = None
    duration_s: float | None = None

    @classmethod
    def from_options(cls, o: MeasureOptions) -> MeasureSettings:
        return cls(**{f.name: getattr(o, f.name) for f in dataclasses.fields(cls)})


_CORE = MeasureSettings()


@dataclass(frozen=True)
class MeasureOptions:
    """Everything that decides how one measurement runs and is judged."""

    metric: str = "median"
    tolerance: float = 0.05
    confidence: float = _CORE.confidence
    missing_baseline: str = "pass"
    remeasure: bool = True
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
    #: ``fail``: an incomparable baseline fails the test (strict CI).
    incomparable: str = "pass"
    #: ``fail``: a result measured on a busy GPU or loaded host (after the
    #: wait and the re-measure) fails the test.
    unreliable: str = "pass"
    #: Longest wait for a busy GPU or loaded host to become quiet (seconds).
    busy_wait_s: float = BUSY_WAIT_S
    #: Between-run sd: None = from the baseline's history and the prior;
    #: a number overrides it (0 leaves the term out).
    run_noise: float | None = None
    #: Growth of a gated memory figure allowed before a test fails (None: not
    #: gated); the default is ``memory.DEFAULT_TOLERANCE``.
    memory_tolerance: float | None = 0.10
    #: Report label (``group=``): the terminal table, job summary and HTML
    #: report group results by it (``--trt-group-by``). Not part of how a
    #: result is measured or judged.
    group: str | None = None
    #: Re-measure a suspected TensorRT regression interleaved with the engine
    #: of the baseline's own model (git show of its commit): ``ab_confirm.py``.
    ab_confirm: bool = False

    def with_overrides(self, overrides: Mapping[str, Any], *, where: str) -> MeasureOptions:
        """Apply marker or keyword overrides (user vocabulary), then check the
        same cross-field rules as the command line."""
        if not overrides:
            return self
        updates: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in PERF_ARGS:
                known = ", ".join(sorted(PERF_ARGS))
                hint = (f"; keyword arguments for the measured callable go in kwargs={{{key!r}: ...}}"
                        if where.endswith("measure()") else "")
                raise UsageError(f"{where}: unknown trt_perf argument {key!r} (known: {known}){hint}")
            field_name, convert = PERF_ARGS[key]
            updates[field_name] = convert(value, f"{where}: {key}")
        if "iterations" in updates and "duration_s" in updates:
            raise UsageError(f"{where}: iterations= and duration= both given; a measurement stops on one of them")
        # A fixed stop set here replaces the other fixed stop from a lower layer.
        if "iterations" in updates:
            updates.setdefault("duration_s", None)
        if "duration_s" in updates:
            updates.setdefault("iterations", None)
        out = dataclasses.replace(self, **updates)
        out.check(where=f"{where}:")
        return out

    def check(self, *, where: str = "") -> None:
        """Rules between fields, for the command line and markers alike."""
        prefix = f"{where} " if where else ""
        if self.max_time_s < self.min_time_s:
            raise UsageError(f"{prefix}max_time ({self.max_time_s:g} s) is shorter than min_time "
                             f"({self.min_time_s:g} s); raise the cap or lower the minimum")
        if self.max_iterations < self.min_iterations:
            raise UsageError(f"{prefix}max_iterations ({self.max_iterations}) is below min_iterations "
                             f"({self.min_iterations})")


#: trt_perf marker / measure() keyword -> (MeasureOptions field, converter).
PERF_ARGS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "metric": ("metric", lambda v, w: parse_choice(v, METRICS, what=w)),
    "tolerance": ("tolerance", lambda v, w: parse_fraction(v, what=w, bare_max=1.0)),
    "confidence": ("confidence", _confidence),
    "missing_baseline": ("missing_baseline", lambda v, w: parse_choice(v, MISSING, what=w)),
    "remeasure": ("remeasure", _strict_bool),
    "warmup_ms": ("warmup_s", _ms_to_s),
    "min_time": ("min_time_s", _seconds),
    "max_time": ("max_time_s", _seconds),
    "min_iterations": ("min_iterations", _count),
    "max_iterations": ("max_iterations", _count),
    "target_ci": ("target_rel_ci", _target_ci),
    "iterations": ("iterations", _count),
    "duration": ("duration_s", _seconds),
    "mode": ("mode", lambda v, w: parse_choice(v, MODES, what=w)),
    "streams": ("streams", _streams),
    "cuda_graph": ("cuda_graph", _strict_bool),
    "blocking_sync": ("blocking_sync", _strict_bool),
    "include_transfers": ("include_transfers", _strict_bool),
    "incomparable": ("incomparable", lambda v, w: parse_choice(v, PASS_FAIL, what=w)),
    "unreliable": ("unreliable", lambda v, w: parse_choice(v, PASS_FAIL, what=w)),
    "busy_wait": ("busy_wait_s", _wait_s),
    "run_noise": ("run_noise", _run_noise),
    "memory_tolerance": ("memory_tolerance", _memory_tolerance),
    "group": ("group", lambda v, w: group_name(v, what=w)),
    "ab_confirm": ("ab_confirm", _strict_bool),
}


# -- GPU settings ----------------------------------------------------------------
@dataclass(frozen=True)
class LockSpec:
    """``off``, ``base`` (default applications clock), ``max`` or MHz."""

    value: str = "off"

    @classmethod
    def parse(cls, text: object, option: str = "--trt-lock-clocks") -> LockSpec:
        s = str(text if text is not None else "off").strip().lower()
        if s in ("", "off", "none", "no", "false", "0"):
            return cls("off")
        if s in ("base", "max"):
            return cls(s)
        if s.endswith("mhz"):
            s = s[:-3].strip()
        if s.isascii() and s.isdigit() and int(s) > 0:  # "²".isdigit() is True, int("²") raises
            return cls(str(int(s)))
        raise UsageError(f"{option}={text!r} is not valid; use off, base, max or a clock in MHz such as 1410")

    @property
    def off(self) -> bool:
        return self.value == "off"


@dataclass(frozen=True)
class GpuSettings:
    """Clock locking, GPU sharing under xdist, NVML sampling."""

    lock_sm: LockSpec = field(default_factory=LockSpec)
    lock_mem: LockSpec = field(default_factory=LockSpec)
    strict: bool = False
    allow_sharing: bool = False
    interval_s: float = 0.01
    #: Clock-lock state files and per-GPU locks: ``.state/`` in the baseline directory.
    state_dir: Path = Path(".trtperf/.state")
    #: NVTX range named after the result id around each measured window (``--trt-nvtx``).
    nvtx: bool = False
    #: ``cudaProfilerStart``/``Stop`` around each measured GPU window (``--trt-profiler-api``).
    profiler_api: bool = False


# -- TensorRT settings ------------------------------------------------------------
#: ``--trt-backend`` values (``trt/backend.py`` maps each to the modules it imports).
BACKEND_CHOICES = ("auto", "tensorrt", "tensorrt_rtx")
#: Values that switch a cache off.
OFF = ("off", "none", "no", "false", "0")


@dataclass(frozen=True)
class TrtOptions:
    """Session-wide TensorRT settings. ``None`` paths mean "disabled"."""

    backend: str = "auto"
    engine_cache: Path | None = None
    timing_cache: Path | None = None
    allow_engine_host_code: bool = False
    profile_layers: bool = False

    @classmethod
    def from_values(
        cls,
        backend: str | None = None,
        engine_cache: str | os.PathLike[str] | None = None,
        timing_cache: str | os.PathLike[str] | None = None,
        allow_engine_host_code: bool | str | None = None,
        profile_layers: bool | str | None = None,
        default_cache_dir: Path | None = None,
        rootdir: Path | None = None,
    ) -> TrtOptions:
        """Options for scripts and tests outside a pytest session. Relative
        paths are taken from ``rootdir`` (default: the current directory)."""
        backend = (backend or "auto").strip()
        if backend not in BACKEND_CHOICES:
            raise UsageError(f"--trt-backend={backend!r}: choose one of {', '.join(BACKEND_CHOICES)}")
        root = rootdir or Path.cwd()

        def path(value: Any, default: Path | None) -> Path | None:
            if value is None or str(value).strip() == "":
                return default
            if str(value).strip().lower() in OFF:
                return None
            p = Path(str(value)).expanduser()
            return p if p.is_absolute() else root / p

        cache = path(engine_cache, default_cache_dir)
        timing = path(timing_cache, cache / "timing.cache" if cache is not None else None)
        return cls(
            backend=backend,
            engine_cache=cache,
            timing_cache=timing,
            allow_engine_host_code=parse_bool(allow_engine_host_code or False, what="--trt-allow-engine-host-code"),
            profile_layers=parse_bool(profile_layers or False, what="--trt-profile-layers"),
        )


# -- the option table ---------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One command-line option that is also an ini key."""

    flag: str
    help: str
    default: Any = None
    kind: str = "str"  # str | bool | path
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    # core: baselines and the gate
    Option("--trt-baseline", "compare (default): gate against baselines; update: measure and "
           "write baselines; off: measure only.", "compare", metavar="compare|update|off"),
    Option("--trt-baseline-loaded", "skip (default): an update does not write a result whose window was measured "
           "on a loaded host or a busy GPU after waiting and measuring again; write: write it anyway (the entry "
           "records it).", "skip", metavar="skip|write"),
    Option("--trt-baseline-dir", "Directory of the JSON baselines (default: .trtperf/ under the rootdir).",
           None, "path", metavar="DIR"),
    Option("--trt-tolerance", "Slowdown allowed before a test fails, e.g. 5% or 0.05 (default 5%); a bare "
           "number above 1 is refused.", "5%", metavar="FRACTION"),
    Option("--trt-memory-tolerance", "Growth of a gated memory figure (host peak per call, device peak) allowed "
           "before a test fails, e.g. 10% (default) or 0.1; it must also exceed 64 KiB. 'off' records memory "
           "without gating it.", "10%", metavar="FRACTION|off"),
    Option("--trt-metric", "Metric the gate compares: median (default), mean, p90, p95, p99, throughput.",
           "median", metavar="METRIC"),
    Option("--trt-confidence", "Confidence level of the statistical test (default 0.99).", "0.99", metavar="LEVEL"),
    Option("--trt-missing-baseline", "pass (default, with a note) or fail when a result has no baseline.",
           "pass", metavar="pass|fail"),
    Option("--trt-no-remeasure", "Decide on the first measurement: do not measure again to confirm a "
           "suspected regression.", False, "bool"),
    Option("--trt-incomparable", "pass (default, with a warning) or fail when a baseline cannot be compared "
           "(other measurement method, clock state, device class).", "pass", metavar="pass|fail"),
    Option("--trt-unreliable", "pass (default, with a warning) or fail when a result stays unreliable (a busy "
           "GPU or a loaded host after the wait and a re-measure).", "pass", metavar="pass|fail"),
    Option("--trt-busy-wait", "Seconds to wait for a busy GPU or a loaded host to become quiet before "
           "measuring again (default 10).", "10", metavar="SECONDS"),
    Option("--trt-run-noise", "Between-run noise (relative sd) the gate allows for: auto (default: from the "
           "baseline's history of update runs, with a prior per workload family), or e.g. 2%; 0 turns it off.",
           "auto", metavar="auto|FRACTION"),
    Option("--trt-ignore-host-load", "Do not watch the host's CPU load during host-timed measurements (no "
           "host_busy flag, no wait, no unreliable verdicts for host load).", False, "bool"),
    Option("--trt-allow-cpu-sharing", "Allow more xdist workers than CPU cores for host-timed tests; their "
           "measured windows then take turns.", False, "bool"),
    Option("--trt-ab-confirm", "TensorRT tests built from an ONNX file under git: confirm a suspected regression "
           "by building the model as it was at the baseline's commit and measuring both engines interleaved; the "
           "paired ratio decides.", False, "bool"),
    Option("--trt-ab", "Side by side: judge every perf test against the same test at this git revision (a branch, "
           "tag or commit, run from a temporary git worktree in a second pytest process, measured in alternating "
           "blocks); baseline = confirm suspected regressions and unreliable windows against the commit each "
           "baseline entry records (the default in baseline compare mode when that commit is in the repository); "
           "off = never.", None, metavar="REV|baseline|off"),
    Option("--trt-ab-python", "Side by side: run the reference process with this Python interpreter (another "
           "virtualenv, e.g. the previous TensorRT or torch); alone, the reference is this checkout in that "
           "environment.", None, "path", metavar="PATH"),
    Option("--trt-ab-setup", "Side by side: a shell command run once in the reference's worktree before its "
           "process starts (build an extension, export a model).", None, metavar="CMD"),
    Option("--trt-ab-timeout", "Side by side: longest wait in seconds for the reference process (start-up, "
           "setup command, reaching a measurement, one block) before it counts as hung (default 300).", "300",
           metavar="SECONDS"),
    # core: how to measure
    Option("--trt-warmup-ms", "Warm-up time before measuring (default 200 ms, as trtexec).", "200", metavar="MS"),
    Option("--trt-min-time", "Measure at least this many seconds before the adaptive stop (default 1: one "
           "period of the GPU power-cap controller).", "1", metavar="SECONDS"),
    Option("--trt-max-time", "Hard cap on measured seconds per result (default 5).", "5", metavar="SECONDS"),
    Option("--trt-target-ci", "Stop when the confidence interval of the median is narrower than this, "
           "relative to the median (default 1%).", "1%", metavar="FRACTION"),
    Option("--trt-duration", "Measure for exactly this many seconds (turns the adaptive stop off), like "
           "trtexec --duration.", None, metavar="SECONDS"),
    Option("--trt-iterations", "Measure exactly this many iterations (turns the adaptive stop off), like "
           "trtexec --iterations.", None, metavar="N"),
    Option("--trt-min-iterations", "Measure at least this many iterations before the adaptive stop (default 10).",
           str(_CORE.min_iterations), metavar="N"),
    Option("--trt-max-iterations", "Hard cap on measured iterations per result (default 10,000,000).",
           str(_CORE.max_iterations), metavar="N"),
    Option("--trt-mode", "latency (default: inferences one after another, GPU time per inference) or throughput "
           "(enqueue ahead, inferences per second).", "latency", metavar="latency|throughput"),
    Option("--trt-streams", "Streams in throughput mode (default 1), like trtexec --infStreams.", "1", metavar="N"),
    Option("--trt-no-cuda-graph", "Do not capture the enqueue in a CUDA graph (trtexec without "
           "--useCudaGraph).", False, "bool"),
    Option("--trt-blocking-sync", "Block on events instead of spin-waiting (trtexec --useSpinWait off).",
           False, "bool"),
    Option("--trt-include-transfers", "Copy inputs H2D and outputs D2H every iteration and report them "
           "(trtexec --includeDataTransfers).", False, "bool"),
    Option("--trt-require-gpu", "Fail, instead of skip, tests that need a GPU or TensorRT when none is "
           "available.", False, "bool"),
    # core: which tests run, and whether they measure (pytest-benchmark's --benchmark-skip/-only/-disable)
    Option("--trt-skip", "Skip every test that uses trt_bench (like --benchmark-skip).", False, "bool"),
    Option("--trt-only", "Run only the tests that use trt_bench, skip the others (like --benchmark-only); "
           "wins over --trt-skip.", False, "bool"),
    Option("--trt-disable", "Run each measurement's callable or engine once, untimed: the tests and their "
           "asserts run, nothing is gated, reported or written (like --benchmark-disable).", False, "bool"),
    Option("--trt-benchmark-compat", "Provide pytest-benchmark's benchmark fixture (measured, baselined and "
           "gated like trt_bench) when pytest-benchmark is not installed or is disabled with -p no:benchmark.",
           False, "bool"),
    Option("--trt-compare", "Gate against the baselines as committed at this git revision (git show REV:path), "
           "without checking it out; e.g. main, HEAD~1, v1.2.", None, metavar="REV"),
    # core: outputs
    Option("--trt-json", "Write every result and verdict to this JSON file.", None, "path", metavar="PATH"),
    Option("--trt-report", "Write a self-contained HTML report to this file.", None, "path", metavar="PATH"),
    Option("--trt-csv", "Write every result and verdict as CSV (one row per result) to this file.", None, "path",
           metavar="PATH"),
    Option("--trt-group-by", "How the terminal table, job summary and HTML report group results: group (default: "
           "the group= of trt_perf / measure()), file, func, test, name, param or param:NAME; join several with "
           "commas.", "group", metavar="LABEL"),
    Option("--trt-lock-timeout", "Seconds to wait for another session's lock on the baseline directory before "
           "giving up (default 60).", "60", metavar="SECONDS"),
    # GPU
    Option("--trt-lock-clocks", "Lock the SM clock of every GPU used for the session (needs root): off "
           "(default), base (default applications clock), max, or MHz (snapped).", "off",
           metavar="off|base|max|MHZ"),
    Option("--trt-lock-memory-clocks", "Also lock the memory clock (Ampere or newer, needs root): off (default), "
           "base, max or MHz.", "off", metavar="off|base|max|MHZ"),
    Option("--trt-lock-clocks-strict", "Fail the session when clocks cannot be locked instead of warning "
           "and running unlocked.", False, "bool"),
    Option("--trt-allow-gpu-sharing", "Allow more xdist workers than GPUs; measured windows on a shared GPU "
           "are serialised.", False, "bool"),
    Option("--trt-nvml-interval-ms", "NVML sampling interval during measurements (default 10 ms).", "10",
           metavar="MS"),
    Option("--trt-nvtx", "Put each measured window (not warm-up, not builds) in an NVTX range named after the "
           "result id, domain trtperf, for Nsight Systems and ncu --nvtx-include (needs the nvtx package).",
           False, "bool"),
    Option("--trt-profiler-api", "Call cudaProfilerStart/cudaProfilerStop around each measured window of GPU "
           "workloads, for nsys profile --capture-range=cudaProfilerApi.", False, "bool"),
    Option("--trt-export-dir", "Write each result's timing samples here; for TensorRT also the engine inspector "
           "JSON (trtexec --exportLayerInfo) and, with --trt-profile-layers, the per-layer profile (trtexec "
           "--exportProfile).", None, "path", metavar="DIR"),
    # TensorRT
    Option("--trt-backend", "auto|tensorrt|tensorrt_rtx: which library builds and runs engines (default auto: "
           "TensorRT, then TensorRT-RTX).", "auto", metavar="auto|tensorrt|tensorrt_rtx"),
    Option("--trt-engine-cache", "Directory for built engines keyed by model, build config, TensorRT version "
           "and GPU; 'off' rebuilds every time (default: engines/ inside the baseline directory, git-ignored).",
           None, "path", metavar="DIR|off"),
    Option("--trt-timing-cache", "Timing cache file loaded before and saved after each build, like trtexec "
           "--timingCacheFile (default: <engine cache>/timing.cache; 'off' disables).", None, "path",
           metavar="PATH|off"),
    Option("--trt-allow-engine-host-code", "Allow loading engines that contain host code (version-compatible "
           "lean runtime, plugins); off by default for safety.", False, "bool"),
    Option("--trt-profile-layers", "After measuring, run once more with TensorRT's profiler and attach "
           "per-layer times to each result (trtexec --dumpProfile).", False, "bool"),
)


def add_options(parser: Any) -> None:
    """Register every option and its ini key (``pytest_addoption``)."""
    group = parser.getgroup("trtperf", "TensorRT performance tests (pytest-trtperf)")
    for opt in OPTIONS:
        text = opt.help.replace("%", "%%")  # argparse formats help with %
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=text)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.dest, help=text, metavar=opt.metavar)
        # Booleans are ini strings too, so a bad spelling is an error naming the key.
        parser.addini(opt.dest, opt.help, default="")


class _Reader:
    """The one reader of pytest's options and ini values."""

    _OPTS = {o.dest: o for o in OPTIONS}

    def __init__(self, config: Any) -> None:
        self.config = config
        self.rootdir = Path(str(config.rootpath))

    def raw(self, dest: str) -> tuple[Any, str]:
        """(value, label): the command line's, else the ini file's, else the default."""
        opt = self._OPTS[dest]
        value = self.config.getoption(dest, default=None)
        if value is not None:
            return value, opt.flag
        ini = self.config.getini(dest)
        if ini not in ("", None, []):
            return ini, f"{dest} (ini)"
        return opt.default, opt.flag

    def from_cli(self, dest: str) -> bool:
        return self.config.getoption(dest, default=None) is not None

    def get(self, dest: str, parse: Callable[[Any, str], Any]) -> Any:
        value, label = self.raw(dest)
        return parse(value, label)

    def optional(self, dest: str, parse: Callable[[Any, str], Any]) -> Any:
        value, label = self.raw(dest)
        return None if value is None else parse(value, label)

    def flag(self, dest: str) -> bool:
        value, label = self.raw(dest)
        return parse_bool(value, what=label)

    def path(self, dest: str, *, allow_off: bool = False, keep_link: bool = False) -> Path | None | str:
        """A path, None when unset, or ``"off"`` when ``allow_off`` and the
        value says off. Relative paths are resolved against the invocation
        directory (command line) or the ini file's directory. ``keep_link``:
        the last component stays as given (its parents are resolved), so that
        a symbolic link there (dangling, a loop, to a file) can be checked by
        whoever uses it instead of being followed out of the repository."""
        cli = self.config.getoption(dest, default=None)
        if cli not in (None, ""):
            text, base = str(cli), Path(str(self.config.invocation_params.dir))
        else:
            ini = self.config.getini(dest)
            if ini in ("", None, []):
                return None
            inipath = getattr(self.config, "inipath", None)
            text, base = str(ini), Path(str(inipath.parent)) if inipath else self.rootdir
        if allow_off and text.strip().lower() in OFF:
            return "off"
        joined = base / Path(text.strip()).expanduser()
        try:
            if keep_link:
                plain = Path(os.path.abspath(joined))
                return plain.parent.resolve() / plain.name if plain.name else plain
            return joined.resolve()
        except (OSError, RuntimeError):  # a symlink loop: whoever uses the path says so in one line
            return Path(os.path.abspath(joined))


@dataclass(frozen=True)
class Settings:
    """Session-wide settings: the core's, the GPU part, the TensorRT part."""

    baseline_mode: str
    baseline_dir: Path
    rootdir: Path
    require_gpu: bool
    json_path: Path | None
    report_path: Path | None
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    #: Watch /proc during host windows (``--trt-ignore-host-load`` turns it off).
    watch_host: bool = True
    #: More xdist workers than CPU cores allowed for host-timed tests.
    allow_cpu_sharing: bool = False
    #: Seconds to wait for the baseline directory's lock (``--trt-lock-timeout``).
    lock_timeout_s: float = 60.0
    gpu: GpuSettings = field(default_factory=GpuSettings)
    trt: TrtOptions = field(default_factory=TrtOptions)
    #: ``--trt-export-dir``: samples, inspector and layer-profile files per result.
    export_dir: Path | None = None
    #: ``--trt-skip``: tests that use trt_bench are skipped.
    skip_perf: bool = False
    #: ``--trt-only``: tests that do not use trt_bench are skipped.
    only_perf: bool = False
    #: ``--trt-disable``: each measurement runs its target once, untimed, unreported.
    disabled: bool = False
    #: ``--trt-benchmark-compat``: the plugin provides pytest-benchmark's ``benchmark`` fixture.
    benchmark_compat: bool = False
    #: ``--trt-baseline-loaded``: ``write`` lets an update write a window still loaded after the re-measure.
    baseline_loaded: str = "skip"
    #: ``--trt-group-by``: the grouping keys of the report tables.
    group_by: tuple[str, ...] = ("group",)
    #: ``--trt-compare``: the git revision whose committed baselines are compared with.
    compare_rev: str | None = None
    #: ``--trt-csv``: results as CSV.
    csv_path: Path | None = None
    #: ``--trt-ab*``: side by side against a revision or another environment.
    ab: AbSettings = field(default_factory=lambda: AbSettings())

    @classmethod
    def from_pytest_config(cls, config: Any) -> Settings:
        r = _Reader(config)
        baseline_dir = r.path("trt_baseline_dir", keep_link=True)
        assert not isinstance(baseline_dir, str)
        baseline_dir = baseline_dir or r.rootdir / ".trtperf"
        iterations, duration = r.optional("trt_iterations", _count), r.optional("trt_duration", _seconds)
        if iterations is not None and duration is not None:
            # The command line wins over the ini file; in one place, both is an error.
            from_cli = [d for d in ("trt_iterations", "trt_duration") if r.from_cli(d)]
            if len(from_cli) != 1:
                raise UsageError("--trt-iterations and --trt-duration both given; a measurement stops on one "
                                 "of them: keep one")
            iterations, duration = (iterations, None) if from_cli == ["trt_iterations"] else (None, duration)
        m = MeasureOptions(
            metric=r.get("trt_metric", lambda v, w: parse_choice(v, METRICS, what=w)),
            tolerance=r.get("trt_tolerance", lambda v, w: parse_fraction(v, what=w, bare_max=1.0)),
            confidence=r.get("trt_confidence", _confidence),
            missing_baseline=r.get("trt_missing_baseline", lambda v, w: parse_choice(v, MISSING, what=w)),
            remeasure=not r.flag("trt_no_remeasure"),
            warmup_s=r.get("trt_warmup_ms", _ms_to_s),
            min_time_s=r.get("trt_min_time", _seconds),
            max_time_s=r.get("trt_max_time", _seconds),
            target_rel_ci=r.get("trt_target_ci", _target_ci),
            min_iterations=r.get("trt_min_iterations", _count),
            max_iterations=r.get("trt_max_iterations", _count),
            iterations=iterations,
            duration_s=duration,
            mode=r.get("trt_mode", lambda v, w: parse_choice(v, MODES, what=w)),
            streams=r.get("trt_streams", _streams),
            cuda_graph=not r.flag("trt_no_cuda_graph"),
            blocking_sync=r.flag("trt_blocking_sync"),
            include_transfers=r.flag("trt_include_transfers"),
            incomparable=r.get("trt_incomparable", lambda v, w: parse_choice(v, PASS_FAIL, what=w)),
            unreliable=r.get("trt_unreliable", lambda v, w: parse_choice(v, PASS_FAIL, what=w)),
            busy_wait_s=r.get("trt_busy_wait", _wait_s),
            run_noise=r.get("trt_run_noise", _run_noise),
            memory_tolerance=r.get("trt_memory_tolerance", _memory_tolerance),
            ab_confirm=r.flag("trt_ab_confirm"),
        )
        m.check(where="command line / ini:")
        gpu = GpuSettings(
            lock_sm=r.get("trt_lock_clocks", lambda v, w: LockSpec.parse(v, w)),
            lock_mem=r.get("trt_lock_memory_clocks", lambda v, w: LockSpec.parse(v, w)),
            strict=r.flag("trt_lock_clocks_strict"),
            allow_sharing=r.flag("trt_allow_gpu_sharing"),
            interval_s=r.get("trt_nvml_interval_ms", lambda v, w: float(
                parse_number(v, what=w, low=1, high=10_000))) / 1000.0,
            state_dir=baseline_dir / ".state",
            nvtx=r.flag("trt_nvtx"),
            profiler_api=r.flag("trt_profiler_api"),
        )
        engine_cache = r.path("trt_engine_cache", allow_off=True)
        timing_cache = r.path("trt_timing_cache", allow_off=True)
        cache_dir = None if engine_cache == "off" else (engine_cache or baseline_dir / "engines")
        timing = None if timing_cache == "off" else timing_cache
        assert not isinstance(cache_dir, str) and not isinstance(timing, str)
        trt = TrtOptions(
            backend=r.get("trt_backend", lambda v, w: parse_choice(v, BACKEND_CHOICES, what=w)),
            engine_cache=cache_dir,
            timing_cache=(None if timing_cache == "off" else
                          timing or (cache_dir / "timing.cache" if cache_dir is not None else None)),
            allow_engine_host_code=r.flag("trt_allow_engine_host_code"),
            profile_layers=r.flag("trt_profile_layers"),
        )
        baseline_mode = r.get("trt_baseline", lambda v, w: parse_choice(v, BASELINE_MODES, what=w))
        skip_perf, only_perf, disabled = r.flag("trt_skip"), r.flag("trt_only"), r.flag("trt_disable")
        compare_rev = r.optional("trt_compare", lambda v, w: parse_revision(v, what=w))
        if only_perf and disabled:
            raise UsageError("--trt-only and --trt-disable both given: --trt-only runs only the perf tests, "
                             "--trt-disable stops them measuring; keep one")
        if compare_rev is not None and baseline_mode != "compare":
            raise UsageError(f"--trt-compare={compare_rev} compares with baselines; it cannot be combined with "
                             f"--trt-baseline={baseline_mode}")
        if disabled and (baseline_mode == "update" or compare_rev is not None):
            what = "--trt-baseline=update would write" if baseline_mode == "update" else "--trt-compare would compare"
            raise UsageError(f"--trt-disable runs each measurement once without timing it, so {what} nothing; "
                             f"keep one")
        json_path, report_path = _plain_path(r.path("trt_json")), _plain_path(r.path("trt_report"))
        csv_path = _plain_path(r.path("trt_csv"))
        outputs = (("--trt-json", json_path), ("--trt-csv", csv_path), ("--trt-report", report_path))
        _not_a_baseline_file(baseline_dir, outputs)
        _usable_outputs(outputs)
        return cls(
            baseline_mode=baseline_mode,
            baseline_dir=baseline_dir,
            rootdir=r.rootdir,
            require_gpu=r.flag("trt_require_gpu"),
            json_path=json_path,
            report_path=report_path,
            lock_timeout_s=r.get("trt_lock_timeout", lambda v, w: float(parse_number(v, what=w, low=0,
                                                                                    high=MAX_SECONDS))),
            measure=m,
            gpu=gpu,
            trt=trt,
            watch_host=not r.flag("trt_ignore_host_load"),
            allow_cpu_sharing=r.flag("trt_allow_cpu_sharing"),
            export_dir=_plain_path(r.path("trt_export_dir")),
            skip_perf=skip_perf and not only_perf,  # --trt-only wins, as --benchmark-only does
            only_perf=only_perf,
            disabled=disabled,
            benchmark_compat=r.flag("trt_benchmark_compat"),
            baseline_loaded=r.get("trt_baseline_loaded", lambda v, w: parse_choice(v, BASELINE_LOADED, what=w)),
            group_by=r.get("trt_group_by", lambda v, w: parse_group_by(v, what=w)),
            compare_rev=compare_rev,
            csv_path=csv_path,
            ab=AbSettings.read(r, baseline_mode=baseline_mode, disabled=disabled, trt=trt),
        )


#: ``--trt-ab=baseline``: the commit each baseline entry records.
AB_BASELINE = "baseline"
#: ``--trt-ab=off``: no side by side, not even the default confirmation of suspect verdicts.
AB_OFF = "off"
#: Options a reference process gets from its session: the ones that decide how
#: a workload is made (the session decides how long and how it is measured).
AB_FORWARDED = ("--trt-mode", "--trt-streams", "--trt-no-cuda-graph", "--trt-blocking-sync",
                "--trt-include-transfers", "--trt-backend", "--trt-allow-engine-host-code", "--trt-require-gpu")


@dataclass(frozen=True)
class AbSettings:
    """``--trt-ab``, ``--trt-ab-python``, ``--trt-ab-setup``, ``--trt-ab-timeout``,
    and, in a reference process, the socket it serves on."""

    #: The revision as the user wrote it, ``baseline``, or None.
    rev: str | None = None
    #: The reference's interpreter (None: this one).
    python: Path | None = None
    setup: str | None = None
    timeout_s: float = 300.0
    #: Command-line options the reference process gets (``AB_FORWARDED``, engine caches).
    forwarded: tuple[str, ...] = ()
    #: Set in a reference process: the inherited socket's descriptor.
    serve_fd: int | None = None
    #: A suspected regression or a busy window of baseline compare mode is
    #: confirmed side by side against the commit its baseline entry records
    #: (``--trt-ab=baseline``, and the default unless ``--trt-ab=off``).
    confirm: bool = False

    @property
    def active(self) -> bool:
        """This session compares side by side (it is not itself a reference)."""
        return self.serve_fd is None and (self.rev is not None or self.python is not None)

    @property
    def every_test(self) -> bool:
        """Every perf test is judged side by side (``--trt-ab=REV`` or
        ``--trt-ab-python`` alone); otherwise only suspected regressions and
        unreliable windows are (``confirm``: ``--trt-ab=baseline``, the default)."""
        return self.active and self.rev != AB_BASELINE

    @classmethod
    def read(cls, r: _Reader, *, baseline_mode: str, disabled: bool, trt: TrtOptions) -> AbSettings:
        from pytest_trtperf.relative.protocol import FD_ENV

        fd_text = os.environ.get(FD_ENV, "").strip()
        if fd_text:  # a reference process: it serves, it never starts another
            if not fd_text.isdigit():
                raise UsageError(f"{FD_ENV}={fd_text!r} is not a file descriptor (it is set by pytest-trtperf for "
                                 f"its reference processes; unset it)")
            return cls(serve_fd=int(fd_text))
        rev = r.optional("trt_ab", lambda v, w: parse_revision(v, what=w))
        python = _plain_path(r.path("trt_ab_python", keep_link=True))
        setup = r.optional("trt_ab_setup", lambda v, w: str(v).strip() or None)
        timeout_s = r.get("trt_ab_timeout", lambda v, w: float(parse_number(v, what=w, low=1, high=MAX_SECONDS)))
        off = rev == AB_OFF
        if off and (python is not None or setup is not None):
            raise UsageError("--trt-ab=off turns side by side off; drop --trt-ab-python and --trt-ab-setup, or give "
                             "--trt-ab=REV")
        if off or (rev is None and python is None):
            if setup is not None:
                raise UsageError("--trt-ab-setup runs in the reference's worktree; give the revision with --trt-ab=REV")
            confirm = not off and baseline_mode == "compare" and not disabled
            return cls(timeout_s=timeout_s, confirm=confirm,
                       forwarded=_forwarded(r, trt) if confirm else ())
        if python is not None and not (python.is_file() and os.access(python, os.X_OK)):
            raise UsageError(f"--trt-ab-python={python}: not an executable file; give the interpreter of the other "
                             f"environment (e.g. --trt-ab-python=.venv-old/bin/python)")
        if setup is not None and rev is None:
            raise UsageError("--trt-ab-setup runs in the reference's worktree; give the revision with --trt-ab=REV")
        if baseline_mode == "update":
            raise UsageError("--trt-ab compares side by side and writes nothing; it cannot be combined with "
                             "--trt-baseline=update")
        if disabled:
            raise UsageError("--trt-disable runs each measurement once without timing it, so --trt-ab would compare "
                             "nothing; keep one")
        return cls(rev=rev, python=python, setup=setup, timeout_s=timeout_s, forwarded=_forwarded(r, trt),
                   confirm=rev == AB_BASELINE)


def _forwarded(r: _Reader, trt: TrtOptions) -> tuple[str, ...]:
    """What a reference process gets from this session's command line."""
    forwarded = _forwarded_args(r)
    if trt.engine_cache is not None:
        forwarded += (f"--trt-engine-cache={trt.engine_cache}",)
    if trt.timing_cache is not None:
        forwarded += (f"--trt-timing-cache={trt.timing_cache}",)
    return forwarded


def _forwarded_args(r: _Reader) -> tuple[str, ...]:
    """The session's ``AB_FORWARDED`` options as ``--flag=value`` (flags alone)."""
    out: list[str] = []
    for opt in OPTIONS:
        if opt.flag not in AB_FORWARDED:
            continue
        value, _ = r.raw(opt.dest)
        if opt.kind == "bool":
            if value not in (None, False, "") and parse_bool(value, what=opt.flag):
                out.append(opt.flag)
        elif value is not None and value != opt.default:
            out.append(f"{opt.flag}={value}")
    return tuple(out)


def _plain_path(p: Path | None | str) -> Path | None:
    assert not isinstance(p, str)
    return p


def _usable_outputs(outputs: tuple[tuple[str, Path | None], ...]) -> None:
    """Outputs written at session end: a usage error, before anything runs,
    for one that is not a regular file (``files.output_problem``) or that two
    options name (the last writer silently won)."""
    from pytest_trtperf.core.files import distinct_outputs

    distinct_outputs((f"{flag}={path}", path) for flag, path in outputs if path is not None)


def _not_a_baseline_file(baseline_dir: Path, outputs: tuple[tuple[str, Path | None], ...]) -> None:
    """An output written at session end must not replace a baseline file (the
    one just updated, or the one the next compare reads): a usage error when
    it would land in the baseline directory under a baseline file's name, or
    on a file there that is ours by its content. Other names in the directory
    are allowed (the store skips them with a note)."""
    real_dir = Path(os.path.realpath(baseline_dir))
    for flag, path in outputs:
        if path is None or Path(os.path.realpath(path)).parent != real_dir:
            continue
        from pytest_trtperf.baselines.store import foreign_reason, owned_name

        target = Path(os.path.realpath(path))
        if owned_name(target) or (target.is_file() and foreign_reason(target) is None):
            raise UsageError(f"{flag}={path} would overwrite the baseline file {target.name} in the baseline "
                             f"directory {baseline_dir}; write it outside the baseline directory "
                             f"(e.g. {flag}=trtperf-results{target.suffix or '.json'})")


#: ``--trt-group-by`` keys (``param:NAME`` too): see ``report/grouping.py``.
GROUP_BY_KEYS = ("group", "file", "func", "test", "name", "param")


def parse_group_by(value: Any, *, what: str) -> tuple[str, ...]:
    """``"group"``, ``"file,param:batch"`` -> a tuple of grouping keys."""
    keys = tuple(k.strip() for k in str(value).split(",") if k.strip())
    for k in keys:
        if k not in GROUP_BY_KEYS and not (k.startswith("param:") and k[len("param:"):].isidentifier()):
            raise UsageError(f"{what}: {k!r} is not one of {', '.join(GROUP_BY_KEYS)} or param:NAME")
    if not keys:
        raise UsageError(f"{what}: {value!r} names no grouping; use one of {', '.join(GROUP_BY_KEYS)}")
    return keys


def parse_revision(value: Any, *, what: str) -> str:
    """A git revision as the user wrote it (``main``, ``HEAD~1``, a sha). It
    reaches git as one argument after ``--end-of-options``-like checks: no
    leading dash (an option to git), no whitespace or control characters."""
    text = str(value).strip()
    if not text or text.startswith("-") or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text) \
            or len(text) > 200:
        raise UsageError(f"{what}: {value!r} is not a git revision; give a branch, tag or commit such as main "
                         f"or HEAD~1")
    return text


def text_problem(text: str) -> str | None:
    """What in user text no writer can carry, or None: a lone surrogate
    (``os.fsdecode`` of an undecodable file name). It is not UTF-8, so the
    baseline and JSON writers failed: ``update`` wrote no baseline at all and
    ``--trt-report`` ended in a traceback. Control characters are carried:
    every writer escapes them (``report.format``; JUnit property names too)."""
    for i, c in enumerate(text):
        if 0xD800 <= ord(c) <= 0xDFFF:
            return (f"contains a lone surrogate (U+{ord(c):04X} at position {i}: a file name os.fsdecode could not "
                    f"decode?)")
    return None


def escape_text(text: str) -> str:
    """User text we may not refuse (``parametrize`` values), made safe for
    every writer: lone surrogates as ``\\udc..`` escapes, as ``repr`` writes them."""
    if text_problem(text) is None:
        return text
    return "".join(c if text_problem(c) is None else repr(c)[1:-1] for c in text)


_TEXT_FIX = "give plain text (decode file names with errors='replace', or use their repr)"


def group_name(value: Any, *, what: str) -> str:
    """``group=``: a non-empty string of at most 200 characters (a label in
    every report, so an object's changing repr must not become one), with no
    lone surrogate or control character (``text_problem``)."""
    if isinstance(value, str) and value.strip() and len(value) <= 200:
        why = text_problem(value)
        if why is not None:
            raise UsageError(f"{what}: group={value!r} {why}; {_TEXT_FIX}")
        return value
    raise UsageError(f"{what}: {value!r} must be a non-empty string of at most 200 characters, "
                     f"such as group=\"preprocessing\"")


def measurement_name(value: Any, *, where: str) -> str | None:
    """``name=`` of a measurement: a non-empty string or None. Anything else
    (an object, a number) would put a memory address or a changing repr into
    the result id, so every run would look like a new measurement."""
    if value is None or (isinstance(value, str) and value.strip()):
        why = text_problem(value) if value is not None else None
        if why is not None:
            raise UsageError(f"{where}: name={value!r} {why}; {_TEXT_FIX}")
        return value
    raise UsageError(f"{where}: name={value!r} must be a non-empty string such as name=\"bs16\"")


#: Largest ``extra_info`` (as JSON) a result may carry: it is copied into
#: every baseline entry, --trt-json document and report.
MAX_EXTRA_INFO_BYTES = 64 * 1024


def extra_info(value: Any, *, where: str, what: str = "extra_info") -> dict[str, Any]:
    """``extra_info``: a mapping with string keys of JSON data (strings,
    finite numbers, booleans, None, lists and mappings of them), at most
    ``MAX_EXTRA_INFO_BYTES`` as JSON. Returned as it reads back from JSON
    (tuples become lists), so what a test sets is what a baseline keeps."""
    import json

    fix = "extra_info holds JSON data: strings, numbers, booleans, None, lists and dicts with string keys"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: {what}={type(value).__name__} is not a dict; {fix}")
    bad_key = next((k for k in value if not isinstance(k, str)), None)
    if bad_key is not None:
        raise UsageError(f"{where}: {what} key {bad_key!r} is not a string; {fix}")
    bad = _bad_text(value, what)
    if bad is not None:
        raise UsageError(f"{where}: {bad}; {_TEXT_FIX}")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise UsageError(f"{where}: {what} is not JSON data ({str(e).splitlines()[0][:120]}); {fix}") from None
    size = len(text.encode("utf-8"))
    if size > MAX_EXTRA_INFO_BYTES:
        raise UsageError(f"{where}: {what} is {size} bytes as JSON, more than {MAX_EXTRA_INFO_BYTES}; keep it to "
                         f"context (versions, sizes, settings), not data")
    return dict(json.loads(text))


def _bad_text(value: Any, field: str, depth: int = 0) -> str | None:
    """The first key or string of ``extra_info`` data that ``text_problem``
    refuses."""
    if depth > 32:
        return None  # json.dumps refuses what is deeper than it can write
    if isinstance(value, str):
        why = text_problem(value)
        return f"{field}={value[:60]!r} {why}" if why else None
    items: Any = value.items() if isinstance(value, Mapping) else (
        enumerate(value) if isinstance(value, (list, tuple)) else ())
    for k, v in items:
        why = text_problem(k) if isinstance(k, str) else None
        if why:
            return f"{field} key {k[:60]!r} {why}"
        found = _bad_text(v, f"{field}[{k!r}]", depth + 1)
        if found:
            return found
    return None


def inferences_per_iteration(value: Any, *, where: str) -> int:
    """``inferences_per_iteration=``: a positive whole number (a batch size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where}: inferences_per_iteration={value!r} must be a positive whole number")
    return int(parse_number(value, what=f"{where}: inferences_per_iteration", low=1, high=2**31, integer=True))


#: ``min_speedup=`` above this is a typo, not an expectation.
MAX_SPEEDUP = 1e6


def expectation(max_slowdown: Any, min_speedup: Any, *, where: str) -> tuple[str, float]:
    """The expectation of ``trt_bench.compare(a, b, ...)``: ``("max_slowdown",
    0.03)`` for ``max_slowdown="3%"`` (b at most 3% slower than a) or
    ``("min_speedup", 1.5)`` for ``min_speedup=1.5`` (b at least 1.5x faster).
    Exactly one of them: both bound the same ratio b/a from above."""
    if max_slowdown is None and min_speedup is None:
        raise UsageError(f"{where}: say what to expect of b against a: max_slowdown=\"3%\" (b at most 3% slower) "
                         f"or min_speedup=1.5 (b at least 1.5x faster)")
    if max_slowdown is not None and min_speedup is not None:
        raise UsageError(f"{where}: max_slowdown= and min_speedup= both given; they bound the same ratio b/a "
                         f"(max_slowdown=\"3%\": b/a <= 1.03; min_speedup=1.5: b/a <= 1/1.5): keep one")
    if max_slowdown is not None:
        return "max_slowdown", parse_fraction(max_slowdown, what=f"{where}: max_slowdown", bare_max=1.0)
    text = min_speedup.strip().lower().removesuffix("x") if isinstance(min_speedup, str) else min_speedup
    if isinstance(min_speedup, str) and min_speedup.strip().endswith("%"):
        raise UsageError(f"{where}: min_speedup={min_speedup!r} is a factor, not a percentage: write 1.5 for "
                         f"\"b at least 1.5x faster\" (or max_slowdown= for a percentage)")
    return "min_speedup", float(parse_number(text, what=f"{where}: min_speedup", low=0, high=MAX_SPEEDUP,
                                             low_open=True))


def perf_overrides(markers: list[Any], *, where: str) -> dict[str, Any]:
    """Merge ``trt_perf`` marker kwargs (the closest marker, first, wins) and
    validate them: names, values and cross-field rules, with one-line errors
    naming ``where``."""
    merged: dict[str, Any] = {}
    for mark in reversed(markers):
        if mark.args:
            raise UsageError(f"{where}: @pytest.mark.{mark.name} takes keyword arguments only, "
                             f"got {mark.args!r}")
        merged.update(mark.kwargs)
    MeasureOptions().with_overrides(merged, where=where)
    return merged


# -- pytest-benchmark's vocabulary (--trt-benchmark-compat, trt_bench.pedantic) -----------
#: ``@pytest.mark.benchmark`` arguments pytest-trtperf takes, as ``trt_perf`` arguments.
BENCHMARK_MAPPED = {"group": "group", "min_rounds": "min_iterations", "max_time": "max_time"}
#: Arguments that set how pytest-benchmark calibrates loops per round: every call is
#: timed here, so they have nothing to set; accepted and named in the result's notes.
BENCHMARK_NOTHING_TO_SET = ("min_time", "calibration_precision", "warmup_iterations")
#: Clocks ``timer=`` may name: the host clock (perf_counter_ns) is at least as fine.
BENCHMARK_TIMERS = ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns",
                    "process_time", "process_time_ns")


@dataclass(frozen=True)
class BenchmarkMarker:
    """A ``@pytest.mark.benchmark(...)`` read once: ``trt_perf`` overrides,
    whether the measurement runs with the garbage collector off, and notes on
    what had nothing to set."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    disable_gc: bool = False
    notes: tuple[str, ...] = ()


def _benchmark_timer(value: Any, where: str) -> str | None:
    """A note for a host clock from ``time``, else a usage error."""
    name = getattr(value, "__name__", None)
    if getattr(value, "__module__", None) == "time" and name in BENCHMARK_TIMERS:
        return None if name in ("perf_counter", "perf_counter_ns") else \
            f"benchmark(timer=time.{name}): timed with time.perf_counter_ns, the finer host clock"
    raise UsageError(f"{where}: @pytest.mark.benchmark(timer={value!r}): only the host clocks of the time module "
                     f"are taken; for GPU work use trt_bench.measure(fn, timer='cuda' or 'torch')")


def benchmark_marker(markers: list[Any], *, where: str) -> BenchmarkMarker:
    """``@pytest.mark.benchmark`` arguments mapped to ``trt_perf`` ones, or
    refused with one line each: ``group``, ``min_rounds`` (min_iterations),
    ``max_time``, ``warmup`` (False: no timed warm-up, still a few calls),
    ``disable_gc``, ``timer`` (a host clock of ``time``), and the per-round
    calibration (``min_time``, ``calibration_precision``,
    ``warmup_iterations``), which has nothing to set here. The closest
    marker wins, as in pytest-benchmark."""
    mark = markers[0] if markers else None
    if mark is None:
        return BenchmarkMarker()
    if mark.args:
        raise UsageError(f"{where}: @pytest.mark.benchmark takes keyword arguments only, got {mark.args!r}")
    overrides: dict[str, Any] = {}
    notes: list[str] = []
    disable_gc = False
    for key, value in mark.kwargs.items():
        what = f"{where}: @pytest.mark.benchmark({key}=)"
        if key in BENCHMARK_MAPPED:
            overrides[BENCHMARK_MAPPED[key]] = value
            if key == "max_time":  # a cap below our minimum time lowers the minimum with it
                overrides["min_time"] = min(_seconds(value, what), _CORE.min_time_s)
        elif key == "warmup":
            if not _strict_bool(value, what):
                overrides["warmup_ms"] = 0
        elif key == "disable_gc":
            disable_gc = _strict_bool(value, what)
        elif key == "timer":
            note = _benchmark_timer(value, where)
            notes += [note] if note else []
        elif key in BENCHMARK_NOTHING_TO_SET:
            notes.append(f"benchmark({key}=) ignored: pytest-benchmark calibrates loops per round with it; "
                         f"pytest-trtperf times every call")
        elif key in ("precision", "confidence"):
            raise UsageError(f"{what}: pytest-benchmark's stopping rule on the mean; pytest-trtperf stops on the "
                             f"median's interval: use @pytest.mark.trt_perf(target_ci=...) (and confidence= for "
                             f"the gate's level)")
        elif key == "cprofile":
            raise UsageError(f"{what}: not supported; profile with --trt-nvtx or cProfile around the call")
        else:
            raise UsageError(f"{where}: @pytest.mark.benchmark can't have {key!r} keyword argument (known: "
                             f"{', '.join(sorted([*BENCHMARK_MAPPED, 'warmup', 'disable_gc', 'timer', *BENCHMARK_NOTHING_TO_SET]))})")
    MeasureOptions().with_overrides(overrides, where=f"{where}: @pytest.mark.benchmark")
    return BenchmarkMarker(overrides=overrides, disable_gc=disable_gc, notes=tuple(notes))


def _positive_int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{what}: {value!r} must be an int >= {low}")
    return value


def pedantic_options(opts: MeasureOptions, *, rounds: Any, warmup_rounds: Any, iterations: Any, has_setup: bool,
                     where: str) -> tuple[MeasureOptions, int]:
    """``trt_bench.pedantic``'s numbers, checked as pytest-benchmark checks
    them: ``rounds`` timed rounds (the fixed iteration count), exactly
    ``warmup_rounds`` untimed rounds first, ``iterations`` calls per round
    (1 with a ``setup``). Returns the options and ``iterations``."""
    rounds = _positive_int(rounds, f"{where}: rounds", 1)
    warmup_rounds = _positive_int(warmup_rounds, f"{where}: warmup_rounds", 0)
    iterations = _positive_int(iterations, f"{where}: iterations", 1)
    if iterations > 1 and has_setup:
        raise UsageError(f"{where}: iterations={iterations} with a setup: setup runs once per round, so a round "
                         f"can hold one call only (as in pytest-benchmark)")
    out = dataclasses.replace(opts, iterations=rounds, duration_s=None, warmup_s=0.0,
                              min_warmup_iterations=warmup_rounds, min_iterations=min(opts.min_iterations, rounds))
    return out, iterations


# -- latency under load: trt_bench.serve() and the trt_serve marker ---------------
#: ``trt_bench.serve()`` / ``@pytest.mark.trt_serve`` keywords (the serve
#: configuration; measuring and gating options stay with ``trt_perf``).
SERVE_ARGS = ("rate", "concurrency", "arrivals", "duration", "warmup", "slo", "seed", "search", "search_time",
              "precision")
#: Largest number of execution slots (threads, streams or TensorRT contexts).
MAX_CONCURRENCY = 256
#: Default seconds measured at each rate, and the share of it run first as warm-up.
SERVE_DURATION_S = 5.0
SERVE_WARMUP_SHARE = 0.2


def serve_plan(args: Mapping[str, Any], *, where: str) -> Any:
    """A checked ``load.serve.ServePlan`` from serve keywords (marker defaults
    merged under the call's). One line naming ``where`` on bad input."""
    from pytest_trtperf.load.arrivals import ARRIVALS, check_trace
    from pytest_trtperf.load.serve import ServePlan
    from pytest_trtperf.core.serve_summary import Slo

    unknown = sorted(set(args) - set(SERVE_ARGS))
    if unknown:
        raise UsageError(f"{where}: unknown serve argument(s) {', '.join(unknown)}; known: {', '.join(SERVE_ARGS)}")
    if args.get("rate") is None:
        raise UsageError(f"{where}: serve needs rate= (requests per second offered), e.g. rate=200")
    rate = float(parse_number(args["rate"], what=f"{where}: rate", low=0, high=1e6, low_open=True))
    concurrency = int(parse_number(args.get("concurrency", 1), what=f"{where}: concurrency", low=1,
                                   high=MAX_CONCURRENCY, integer=True))
    arrivals: Any = args.get("arrivals", "poisson")
    if isinstance(arrivals, str):
        arrivals = parse_choice(arrivals, ARRIVALS, what=f"{where}: arrivals")
    else:
        arrivals = check_trace(arrivals, where)
    duration = float(parse_number(args.get("duration", SERVE_DURATION_S), what=f"{where}: duration", low=0,
                                  high=3600, low_open=True))
    warmup = float(parse_number(args.get("warmup", SERVE_WARMUP_SHARE * duration), what=f"{where}: warmup",
                                low=0, high=3600))
    slo = None
    if args.get("slo") is not None:
        try:
            slo = Slo.parse(args["slo"])
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
    search = parse_bool(args.get("search", slo is not None), what=f"{where}: search")
    if search and slo is None:
        raise UsageError(f"{where}: search=True needs slo= (the rate search looks for the highest rate meeting it)")
    seed = int(parse_number(args.get("seed", 0), what=f"{where}: seed", low=0, high=2**63 - 1, integer=True))
    return ServePlan(rate=rate, arrivals=arrivals, concurrency=concurrency, duration_s=duration, warmup_s=warmup,
                     seed=seed, slo=slo, search=search,
                     search_time_s=float(parse_number(args.get("search_time", 10 * (duration + warmup)),
                                                      what=f"{where}: search_time", low=0, high=86400,
                                                      low_open=True)),
                     precision=float(parse_number(args.get("precision", 0.05), what=f"{where}: precision",
                                                  low=0, high=1, low_open=True)),
                     drain_s=max(1.0, duration))


def serve_overrides(markers: list[Any], *, where: str) -> dict[str, Any]:
    """Merged ``trt_serve`` marker keywords (closest marker wins), checked."""
    merged: dict[str, Any] = {}
    for mark in reversed(markers):
        if mark.args:
            raise UsageError(f"{where}: @pytest.mark.{mark.name} takes keyword arguments only, got {mark.args!r}")
        merged.update(mark.kwargs)
    unknown = sorted(set(merged) - set(SERVE_ARGS))
    if unknown:
        raise UsageError(f"{where}: @pytest.mark.trt_serve: unknown argument(s) {', '.join(unknown)}; known: "
                         f"{', '.join(SERVE_ARGS)}")
    return merged
