"""The settings of pytest-trtperf as frozen dataclasses, their defaults,
and the value parsers that check every option, ini value and marker argument.

The session's :class:`Settings` holds three parts that are handed down to the
components that need them: the core (:class:`MeasureOptions` for measuring
and gating, baseline mode and paths), the GPU part (:class:`GpuSettings`) and
the TensorRT part (:class:`TrtOptions`). ``plugin/options.py`` reads pytest's
options and ini values into them; ``plugin/markers.py`` reads markers and
keyword arguments. No pytest here.

Importing this module is cheap (no numpy): pytest loads it with the plugin.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
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


def strict_bool(value: Any, what: str) -> bool:
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


def parse_seconds(value: Any, what: str) -> float:
    return float(parse_number(value, what=what, low=0, high=MAX_SECONDS, low_open=True))


def parse_ms_to_s(value: Any, what: str) -> float:
    return float(parse_number(value, what=what, low=0, high=MAX_WARMUP_MS)) / 1000.0


def parse_count(value: Any, what: str) -> int:
    return int(parse_number(value, what=what, low=1, high=MAX_ITERATIONS, integer=True))


def _streams(value: Any, what: str) -> int:
    return int(parse_number(value, what=what, low=1, high=MAX_STREAMS, integer=True))


def parse_wait_s(value: Any, what: str) -> float:
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
        fixed = [k for k in ("iterations", "duration", "stop") if k in overrides]
        if len(fixed) > 1:
            raise UsageError(f"{where}: {' and '.join(k + '=' for k in fixed)} both given; a measurement stops on "
                             f"one of them")
        updates: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in PERF_ARGS:
                known = ", ".join(sorted(PERF_ARGS))
                hint = (f"; keyword arguments for the measured callable go in kwargs={{{key!r}: ...}}"
                        if where.endswith("measure()") else "")
                raise UsageError(f"{where}: unknown trt_perf argument {key!r} (known: {known}){hint}")
            knob = PERF_ARGS[key]
            updates[knob.field] = knob.parse(value, f"{where}: {key}")
        if "stop" in updates:  # stop= says both: a fixed amount, or the adaptive stop (auto)
            updates["iterations"], updates["duration_s"] = updates.pop("stop")
        # A fixed stop set here replaces the other fixed stop from a lower layer.
        if "iterations" in updates:
            updates.setdefault("duration_s", None)
        if "duration_s" in updates:
            updates.setdefault("iterations", None)
        out = dataclasses.replace(self, **updates)
        out.check(where=f"{where}:")
        return out

    @property
    def stop(self) -> str:
        """The stop rule as ``--trt-stop`` and ``stop=`` write it: ``auto``,
        ``N`` (exactly N iterations) or ``Ns`` (exactly N seconds)."""
        if self.iterations is not None:
            return str(self.iterations)
        return "auto" if self.duration_s is None else f"{self.duration_s:g}s"

    def check(self, *, where: str = "") -> None:
        """Rules between fields, for the command line and markers alike."""
        prefix = f"{where} " if where else ""
        if self.max_time_s < self.min_time_s:
            raise UsageError(f"{prefix}max_time ({self.max_time_s:g} s) is shorter than min_time "
                             f"({self.min_time_s:g} s); raise the cap or lower the minimum")
        if self.max_iterations < self.min_iterations:
            raise UsageError(f"{prefix}max_iterations ({self.max_iterations}) is below min_iterations "
                             f"({self.min_iterations})")


def shown(value: Any) -> str | None:
    """A default as a user writes it: ``on``/``off`` for booleans, ``%g`` for numbers."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if isinstance(value, int) else f"{value:g}"


def _percent(none: str) -> Callable[[Any], str]:
    return lambda x: none if x is None else f"{x * 100:g}%"


def _ms(x: float) -> str:
    return f"{x * 1000:g}"


class Knob(NamedTuple):
    """One :class:`MeasureOptions` setting as users write it, for the
    ``trt_perf`` marker, ``measure()`` keywords, the command line and the ini
    file alike: the field it sets, the one parser of its values, and how the
    field's value is written back (the default ``--help`` shows, derived
    from the dataclass)."""

    field: str
    parse: Callable[[Any, str], Any]
    show: Callable[[Any], str | None] = shown

    @property
    def boolean(self) -> bool:
        return self.parse is strict_bool

    def parse_text(self, value: Any, what: str) -> Any:
        """The command line's and the ini file's parser: the marker's, except
        that booleans arrive as words there (``on``/``off``, ``true``/``false``)."""
        return parse_bool(value, what=what) if self.boolean else self.parse(value, what)

    def default(self) -> str | None:
        """The dataclass default as a user writes it."""
        return self.show(getattr(MeasureOptions(), self.field))


def parse_metric(value: Any, what: str) -> str:
    return parse_choice(value, METRICS, what=what)


def parse_tolerance(value: Any, what: str) -> float:
    return parse_fraction(value, what=what, bare_max=1.0)


def parse_missing(value: Any, what: str) -> str:
    return parse_choice(value, MISSING, what=what)


def parse_mode(value: Any, what: str) -> str:
    return parse_choice(value, MODES, what=what)


def parse_pass_fail(value: Any, what: str) -> str:
    return parse_choice(value, PASS_FAIL, what=what)


#: ``--trt-strict`` items: what fails instead of passing with a note or a
#: warning. The first three are the ``MeasureOptions`` fields they set to
#: ``fail``; ``clocks`` is ``GpuSettings.strict`` (``--trt-lock-clocks-strict``).
STRICT_FIELDS = {"missing": "missing_baseline", "incomparable": "incomparable", "unreliable": "unreliable"}
STRICT_ITEMS = (*STRICT_FIELDS, "clocks")


def parse_strict(value: Any, what: str) -> tuple[str, ...]:
    """``"all"``, ``"none"`` or comma-joined ``STRICT_ITEMS`` -> the items, in table order."""
    words = {w.strip().lower() for w in str(value).split(",") if w.strip()}
    if words in ({"all"}, {"none"}) or not words:
        return STRICT_ITEMS if words == {"all"} else ()
    unknown = sorted(words - set(STRICT_ITEMS))
    if unknown:
        raise UsageError(f"{what}: {', '.join(map(repr, unknown))} is not one of {', '.join(STRICT_ITEMS)}, "
                         f"all or none (join several with commas)")
    return tuple(i for i in STRICT_ITEMS if i in words)


def strict_default() -> str:
    """The default of ``--trt-strict``, as the dataclasses have it."""
    m, gpu = MeasureOptions(), GpuSettings()
    on = [i for i, f in STRICT_FIELDS.items() if getattr(m, f) == "fail"] + (["clocks"] if gpu.strict else [])
    return ",".join(on) or "none"


_STOP_FIX = "write auto, a number of iterations such as 500, or seconds such as 2s"


def parse_stop(value: Any, what: str) -> tuple[int | None, float | None]:
    """``--trt-stop`` / ``stop=``, the one spelling of the stop rule:
    ``auto`` (the adaptive stop: (None, None)), ``500`` (exactly 500
    iterations, as ``--trt-iterations``) or ``2s`` (exactly 2 seconds, as
    ``--trt-duration``)."""
    text = str(value).strip().lower() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if text == "auto":
        return None, None
    if re.fullmatch(r"\d+", text):
        return parse_count(text, what), None
    if re.fullmatch(r"(\d+\.?\d*|\.\d+)s", text):
        return None, parse_seconds(text[:-1], what)
    raise UsageError(f"{what}: {value!r} is not a stop rule; {_STOP_FIX}")


def parse_group(value: Any, what: str) -> str:
    return group_name(value, what=what)


#: trt_perf marker / measure() keyword -> its :class:`Knob`. The command-line
#: options that set the same field (``plugin/options.py``) use the same knob.
PERF_ARGS: dict[str, Knob] = {
    "metric": Knob("metric", parse_metric),
    "tolerance": Knob("tolerance", parse_tolerance, _percent("off")),
    "confidence": Knob("confidence", _confidence),
    "missing_baseline": Knob("missing_baseline", parse_missing),
    "remeasure": Knob("remeasure", strict_bool),
    "warmup_ms": Knob("warmup_s", parse_ms_to_s, _ms),
    "min_time": Knob("min_time_s", parse_seconds),
    "max_time": Knob("max_time_s", parse_seconds),
    "min_iterations": Knob("min_iterations", parse_count),
    "max_iterations": Knob("max_iterations", parse_count),
    "target_ci": Knob("target_rel_ci", _target_ci, _percent("off")),
    "iterations": Knob("iterations", parse_count),
    "duration": Knob("duration_s", parse_seconds),
    "stop": Knob("stop", parse_stop),
    "mode": Knob("mode", parse_mode),
    "streams": Knob("streams", _streams),
    "cuda_graph": Knob("cuda_graph", strict_bool),
    "blocking_sync": Knob("blocking_sync", strict_bool),
    "include_transfers": Knob("include_transfers", strict_bool),
    "incomparable": Knob("incomparable", parse_pass_fail),
    "unreliable": Knob("unreliable", parse_pass_fail),
    "busy_wait": Knob("busy_wait_s", parse_wait_s),
    "run_noise": Knob("run_noise", _run_noise, _percent("auto")),
    "memory_tolerance": Knob("memory_tolerance", _memory_tolerance, _percent("off")),
    "group": Knob("group", parse_group),
    "ab_confirm": Knob("ab_confirm", strict_bool),
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


#: ``--trt-ab=baseline``: the commit each baseline entry records.
AB_BASELINE = "baseline"
#: ``--trt-ab=off``: no side by side, not even the default confirmation of suspect verdicts.
AB_OFF = "off"


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


TEXT_FIX = "give plain text (decode file names with errors='replace', or use their repr)"


def group_name(value: Any, *, what: str) -> str:
    """``group=``: a non-empty string of at most 200 characters (a label in
    every report, so an object's changing repr must not become one), with no
    lone surrogate or control character (``text_problem``)."""
    if isinstance(value, str) and value.strip() and len(value) <= 200:
        why = text_problem(value)
        if why is not None:
            raise UsageError(f"{what}: group={value!r} {why}; {TEXT_FIX}")
        return value
    raise UsageError(f"{what}: {value!r} must be a non-empty string of at most 200 characters, "
                     f"such as group=\"preprocessing\"")
