"""The command-line options and ini keys of pytest-trtperf: the one
``OPTIONS`` table, their registration (``pytest_addoption``) and the one
reader of pytest's options and ini values, :func:`settings_from_config`.

This is the only module that reads this plugin's options and ini values
(``config.getoption`` / ``config.getini`` of ``--trt-*`` / ``trt_*``). Two other
readers are by design, and ``tests/test_hygiene.py`` allows no third:
``trt/spec.py`` validates the ``trt_engine`` marker's arguments (the engine
description, ``EngineSpec.from_marker``), and ``gpu/session.py`` reads
pytest's and xdist's own options (``collectonly``, ``dist``, ``tx``) to know
whether and where workers run. The settings it makes are the frozen
dataclasses of ``core/config.py``.

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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from pytest_trtperf.core.config import (AB_BASELINE, AB_OFF, BACKEND_CHOICES, BASELINE_LOADED, BASELINE_MODES, MAX_SECONDS, METRICS,
                                        MISSING, MODES, OFF, PASS_FAIL, PERF_ARGS, STRICT_FIELDS,
                                        STRICT_ITEMS, AbSettings, GpuSettings, LockSpec,
                                        MeasureOptions, Settings, TrtOptions, parse_bool, parse_choice, parse_group_by,
                                        parse_number, parse_revision, parse_strict, shown, strict_default)
from pytest_trtperf.core.errors import UsageError


# -- the option table ---------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One command-line option that is also an ini key.

    ``default`` is the value as a user writes it, derived from the settings
    dataclasses (None: unset or computed, such as a path), never written
    twice; ``choices`` the words it takes, where it takes a fixed set;
    ``knob`` the ``trt_perf`` marker argument that sets the same
    :class:`MeasureOptions` field with the same parser (``PERF_ARGS``);
    ``negative`` the older flag (and ini key) that says ``off``, kept because
    scripts, CI files and side-by-side reference processes of older revisions
    use it."""

    flag: str
    help: str
    default: Any = None
    kind: str = "str"  # str | bool | path
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    knob: str | None = None
    negative: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def negative_dest(self) -> str | None:
        return self.negative.lstrip("-").replace("-", "_") if self.negative else None

    @property
    def help_text(self) -> str:
        """The help with its default, as ``--help`` shows it."""
        if self.kind == "bool" or self.default is None:
            return self.help
        return f"{self.help} Default: {self.default}."


def _knob(key: str, flag: str, help: str, *, kind: str = "str", metavar: str | None = None,
          choices: tuple[str, ...] | None = None, negative: str | None = None) -> Option:
    """An option that sets the same field as the marker argument ``key``, with its parser and default."""
    return Option(flag, help, PERF_ARGS[key].default(), kind, metavar, choices, knob=key, negative=negative)


#: The words of an on/off option (``parse_bool`` also takes true/false, yes/no, 1/0).
ON_OFF = ("on", "off")


def _field_default(cls: type, name: str) -> Any:
    """A settings dataclass's default for ``name``."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING, f"{cls.__name__}.{name} has no default"
    return f.default_factory()


_GPU, _TRT = GpuSettings(), TrtOptions()

OPTIONS: tuple[Option, ...] = (
    # core: baselines and the gate
    Option("--trt-baseline", "compare: gate against baselines; update: measure and write baselines; off: measure "
           "only.", BASELINE_MODES[0], metavar="compare|update|off", choices=BASELINE_MODES),
    Option("--trt-baseline-loaded", "skip: an update does not write a result whose window was measured on a loaded "
           "host or a busy GPU after waiting and measuring again; write: write it anyway (the entry records it).",
           _field_default(Settings, "baseline_loaded"), metavar="skip|write", choices=BASELINE_LOADED),
    Option("--trt-baseline-dir", "Directory of the JSON baselines (default: .trtperf/ under the rootdir).",
           None, "path", metavar="DIR"),
    _knob("tolerance", "--trt-tolerance", "Slowdown allowed before a test fails, e.g. 5% or 0.05; a bare number "
          "above 1 is refused.", metavar="FRACTION"),
    _knob("memory_tolerance", "--trt-memory-tolerance", "Growth of a gated memory figure (host peak per call, "
          "device peak) allowed before a test fails, e.g. 10% or 0.1; it must also exceed 64 KiB. 'off' records "
          "memory without gating it.", metavar="FRACTION|off"),
    _knob("metric", "--trt-metric", "Metric the gate compares: median, mean, p90, p95, p99, throughput.",
          metavar="METRIC", choices=METRICS),
    _knob("confidence", "--trt-confidence", "Confidence level of the statistical test.", metavar="LEVEL"),
    _knob("missing_baseline", "--trt-missing-baseline", "pass (with a note) or fail when a result has no baseline.",
          metavar="pass|fail", choices=MISSING),
    _knob("remeasure", "--trt-remeasure", "on: measure a suspected regression again before deciding; off: decide "
          "on the first measurement (--trt-no-remeasure says off too).", metavar="on|off", choices=ON_OFF,
          negative="--trt-no-remeasure"),
    _knob("incomparable", "--trt-incomparable", "pass (with a warning) or fail when a baseline cannot be compared "
          "(other measurement method, clock state, device class).", metavar="pass|fail", choices=PASS_FAIL),
    _knob("unreliable", "--trt-unreliable", "pass (with a warning) or fail when a result stays unreliable (a busy "
          "GPU or a loaded host after the wait and a re-measure).", metavar="pass|fail", choices=PASS_FAIL),
    Option("--trt-strict", "What fails instead of passing with a note or a warning, comma-joined: missing "
           "(--trt-missing-baseline=fail), incomparable (--trt-incomparable=fail), unreliable "
           "(--trt-unreliable=fail), clocks (--trt-lock-clocks-strict); all or none. An option of its own that "
           "says pass beside it is a usage error.", strict_default(), metavar="LIST", choices=(*STRICT_ITEMS, "all", "none")),
    _knob("busy_wait", "--trt-busy-wait", "Seconds to wait for a busy GPU or a loaded host to become quiet before "
          "measuring again.", metavar="SECONDS"),
    _knob("run_noise", "--trt-run-noise", "Between-run noise (relative sd) the gate allows for: auto (from the "
          "baseline's history of update runs, with a prior per workload family), or e.g. 2%; 0 turns it off.",
          metavar="auto|FRACTION"),
    Option("--trt-watch-host-load", "on: watch the host's CPU load during host-timed measurements (host_busy "
           "flag, wait, unreliable verdicts for host load); off: don't (--trt-ignore-host-load says off too).",
           shown(_field_default(Settings, "watch_host")), metavar="on|off", choices=ON_OFF,
           negative="--trt-ignore-host-load"),
    Option("--trt-allow-cpu-sharing", "Allow more xdist workers than CPU cores for host-timed tests; their "
           "measured windows then take turns.", False, "bool"),
    _knob("ab_confirm", "--trt-ab-confirm", "TensorRT tests built from an ONNX file under git: confirm a suspected "
          "regression by building the model as it was at the baseline's commit and measuring both engines "
          "interleaved; the paired ratio decides.", kind="bool"),
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
           "setup command, reaching a measurement, one block) before it counts as hung.",
           shown(AbSettings().timeout_s), metavar="SECONDS"),
    # core: how to measure
    _knob("warmup_ms", "--trt-warmup-ms", "Warm-up time before measuring, as trtexec.", metavar="MS"),
    _knob("min_time", "--trt-min-time", "Measure at least this many seconds before the adaptive stop (one period "
          "of the GPU power-cap controller).", metavar="SECONDS"),
    _knob("max_time", "--trt-max-time", "Hard cap on measured seconds per result.", metavar="SECONDS"),
    _knob("target_ci", "--trt-target-ci", "Stop when the confidence interval of the median is narrower than this, "
          "relative to the median.", metavar="FRACTION"),
    _knob("stop", "--trt-stop", "The stop rule in one option: auto (the adaptive stop between the minimum and "
          "maximum time and iterations), N (exactly N iterations, as --trt-iterations) or Ns (exactly N seconds, "
          "as --trt-duration).", metavar="auto|N|Ns"),
    _knob("duration", "--trt-duration", "Measure for exactly this many seconds (turns the adaptive stop off), like "
          "trtexec --duration.", metavar="SECONDS"),
    _knob("iterations", "--trt-iterations", "Measure exactly this many iterations (turns the adaptive stop off), "
          "like trtexec --iterations.", metavar="N"),
    _knob("min_iterations", "--trt-min-iterations", "Measure at least this many iterations before the adaptive "
          "stop.", metavar="N"),
    _knob("max_iterations", "--trt-max-iterations", "Hard cap on measured iterations per result.", metavar="N"),
    _knob("mode", "--trt-mode", "latency (inferences one after another, GPU time per inference) or throughput "
          "(enqueue ahead, inferences per second).", metavar="latency|throughput", choices=MODES),
    _knob("streams", "--trt-streams", "Streams in throughput mode, like trtexec --infStreams.", metavar="N"),
    _knob("cuda_graph", "--trt-cuda-graph", "on: capture the enqueue in a CUDA graph and replay it (trtexec "
          "--useCudaGraph); off: plain enqueue (--trt-no-cuda-graph says off too).", metavar="on|off",
          choices=ON_OFF, negative="--trt-no-cuda-graph"),
    _knob("blocking_sync", "--trt-blocking-sync", "Block on events instead of spin-waiting (trtexec --useSpinWait "
          "off).", kind="bool"),
    _knob("include_transfers", "--trt-include-transfers", "Copy inputs H2D and outputs D2H every iteration and "
          "report them (trtexec --includeDataTransfers).", kind="bool"),
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
    Option("--trt-group-by", "How the terminal table, job summary and HTML report group results: group (the "
           "group= of trt_perf / measure()), file, func, test, name, param or param:NAME; join several with "
           "commas.", ",".join(_field_default(Settings, "group_by")), metavar="LABEL"),
    Option("--trt-lock-timeout", "Seconds to wait for another session's lock on the baseline directory before "
           "giving up.", shown(_field_default(Settings, "lock_timeout_s")), metavar="SECONDS"),
    # GPU
    Option("--trt-lock-clocks", "Lock the SM clock of every GPU used for the session (needs root): off, base "
           "(default applications clock), max, or MHz (snapped).", _GPU.lock_sm.value, metavar="off|base|max|MHZ"),
    Option("--trt-lock-memory-clocks", "Also lock the memory clock (Ampere or newer, needs root): off, base, max "
           "or MHz.", _GPU.lock_mem.value, metavar="off|base|max|MHZ"),
    Option("--trt-lock-clocks-strict", "Fail the session when clocks cannot be locked instead of warning "
           "and running unlocked.", False, "bool"),
    Option("--trt-allow-gpu-sharing", "Allow more xdist workers than GPUs; measured windows on a shared GPU "
           "are serialised.", False, "bool"),
    Option("--trt-nvml-interval-ms", "NVML sampling interval during measurements, in ms.",
           shown(_GPU.interval_s * 1000), metavar="MS"),
    Option("--trt-nvtx", "Put each measured window (not warm-up, not builds) in an NVTX range named after the "
           "result id, domain trtperf, for Nsight Systems and ncu --nvtx-include (needs the nvtx package).",
           False, "bool"),
    Option("--trt-profiler-api", "Call cudaProfilerStart/cudaProfilerStop around each measured window of GPU "
           "workloads, for nsys profile --capture-range=cudaProfilerApi.", False, "bool"),
    Option("--trt-export-dir", "Write each result's timing samples here; for TensorRT also the engine inspector "
           "JSON (trtexec --exportLayerInfo) and, with --trt-profile-layers, the per-layer profile (trtexec "
           "--exportProfile).", None, "path", metavar="DIR"),
    # TensorRT
    Option("--trt-backend", "auto|tensorrt|tensorrt_rtx: which library builds and runs engines (auto: TensorRT, "
           "then TensorRT-RTX).", _TRT.backend, metavar="auto|tensorrt|tensorrt_rtx", choices=BACKEND_CHOICES),
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
        text = opt.help_text.replace("%", "%%")  # argparse formats help with %
        if opt.kind == "bool":
            group.addoption(opt.flag, action="store_true", default=None, dest=opt.dest, help=text)
        else:
            group.addoption(opt.flag, action="store", default=None, dest=opt.dest, help=text, metavar=opt.metavar)
        # Booleans are ini strings too, so a bad spelling is an error naming the key.
        parser.addini(opt.dest, opt.help_text, default="")
        if opt.negative and opt.negative_dest:
            group.addoption(opt.negative, action="store_const", const="off", default=None, dest=opt.dest,
                            help=f"Same as {opt.flag}=off.")
            parser.addini(opt.negative_dest, f"true: same as {opt.dest} = off.", default="")


class _Reader:
    """The one reader of pytest's options and ini values."""

    _OPTS = {o.dest: o for o in OPTIONS}

    def __init__(self, config: Any) -> None:
        self.config = config
        self.rootdir = Path(str(config.rootpath))

    def given(self, dest: str) -> tuple[Any, str] | None:
        """(value, label) from the command line, else the ini file; None when neither sets it."""
        opt = self._OPTS[dest]
        value = self.config.getoption(dest, default=None)
        if value is not None:
            return value, opt.flag
        ini = self.config.getini(dest)
        if ini not in ("", None, []):
            return ini, f"{dest} (ini)"
        old = self.config.getini(opt.negative_dest) if opt.negative_dest else None
        if old not in ("", None, []):  # trt_no_cuda_graph = true: cuda_graph off
            label = f"{opt.negative_dest} (ini)"
            return ("off" if parse_bool(old, what=label) else "on"), label
        return None

    def raw(self, dest: str) -> tuple[Any, str]:
        """(value, label): the command line's, else the ini file's, else the default."""
        return self.given(dest) or (self._OPTS[dest].default, self._OPTS[dest].flag)

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

    def knobs(self) -> dict[str, Any]:
        """The ``MeasureOptions`` fields the command line or the ini file set,
        each through its marker argument's parser (``PERF_ARGS``)."""
        out: dict[str, Any] = {}
        for opt in OPTIONS:
            found = self.given(opt.dest) if opt.knob is not None else None
            if opt.knob is not None and found is not None:
                knob = PERF_ARGS[opt.knob]
                out[knob.field] = knob.parse_text(*found)
        return out

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



def settings_from_config(config: Any) -> Settings:
    """The session's settings, read once from pytest's options and ini values."""
    r = _Reader(config)
    baseline_dir = r.path("trt_baseline_dir", keep_link=True)
    assert not isinstance(baseline_dir, str)
    baseline_dir = baseline_dir or r.rootdir / ".trtperf"
    trt = _trt_options(r, baseline_dir)
    baseline_mode = r.get("trt_baseline", lambda v, w: parse_choice(v, BASELINE_MODES, what=w))
    skip_perf, only_perf, disabled = r.flag("trt_skip"), r.flag("trt_only"), r.flag("trt_disable")
    compare_rev = r.optional("trt_compare", lambda v, w: parse_revision(v, what=w))
    _check_run_modes(baseline_mode, only_perf=only_perf, disabled=disabled, compare_rev=compare_rev)
    json_path, report_path = _plain_path(r.path("trt_json")), _plain_path(r.path("trt_report"))
    csv_path = _plain_path(r.path("trt_csv"))
    outputs = (("--trt-json", json_path), ("--trt-csv", csv_path), ("--trt-report", report_path))
    _not_a_baseline_file(baseline_dir, outputs)
    _usable_outputs(outputs)
    return Settings(
        baseline_mode=baseline_mode,
        baseline_dir=baseline_dir,
        rootdir=r.rootdir,
        require_gpu=r.flag("trt_require_gpu"),
        json_path=json_path,
        report_path=report_path,
        lock_timeout_s=r.get("trt_lock_timeout", lambda v, w: float(parse_number(v, what=w, low=0,
                                                                                high=MAX_SECONDS))),
        measure=_measure_options(r),
        gpu=_gpu_settings(r, baseline_dir),
        trt=trt,
        watch_host=r.flag("trt_watch_host_load"),
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
        ab=read_ab_settings(r, baseline_mode=baseline_mode, disabled=disabled, trt=trt),
    )


def _measure_options(r: _Reader) -> MeasureOptions:
    """Measuring and gating: the marker's fields, each through the marker's
    parser; unset ones keep the dataclass default."""
    values = r.knobs()
    _apply_strict(r, values)
    _one_stop_rule(r, values)
    m = MeasureOptions(**values)
    m.check(where="command line / ini:")
    return m


def _apply_strict(r: _Reader, values: dict[str, Any]) -> None:
    """``--trt-strict``: each item's field set to ``fail``; the item's own
    option saying ``pass`` beside it is a usage error (one thing said twice)."""
    strict, label = r.get("trt_strict", parse_strict), r.raw("trt_strict")[1]
    for item in strict:
        field = STRICT_FIELDS.get(item)
        if field is None:
            continue
        if values.get(field, "fail") != "fail":
            own = next(o for o in OPTIONS if o.knob is not None and PERF_ARGS[o.knob].field == field)
            raise UsageError(f"{label} makes {item} fail, and {r.raw(own.dest)[1]} says {values[field]}; keep one")
        values[field] = "fail"


#: The options that set the stop rule, by the field ``_Reader.knobs`` reads them into.
_STOP_OPTIONS = {"iterations": "--trt-iterations", "duration_s": "--trt-duration", "stop": "--trt-stop"}


def _one_stop_rule(r: _Reader, values: dict[str, Any]) -> None:
    """At most one of ``--trt-iterations``, ``--trt-duration`` and
    ``--trt-stop``: the command line wins over the ini file; in one place,
    two is an error. ``stop`` becomes the two fields it says."""
    said = [f for f in _STOP_OPTIONS if f in values]
    if len(said) > 1:
        from_cli = [f for f in said if r.from_cli(_STOP_OPTIONS[f].lstrip("-").replace("-", "_"))]
        if len(from_cli) != 1:
            raise UsageError(f"{' and '.join(_STOP_OPTIONS[f] for f in said)} both given; a measurement stops on "
                             f"one of them: keep one")
        for f in said:
            if f != from_cli[0]:
                del values[f]
    if "stop" in values:
        values["iterations"], values["duration_s"] = values.pop("stop")


def _gpu_settings(r: _Reader, baseline_dir: Path) -> GpuSettings:
    return GpuSettings(
        lock_sm=r.get("trt_lock_clocks", lambda v, w: LockSpec.parse(v, w)),
        lock_mem=r.get("trt_lock_memory_clocks", lambda v, w: LockSpec.parse(v, w)),
        strict=r.flag("trt_lock_clocks_strict") or "clocks" in r.get("trt_strict", parse_strict),
        allow_sharing=r.flag("trt_allow_gpu_sharing"),
        interval_s=r.get("trt_nvml_interval_ms", lambda v, w: float(
            parse_number(v, what=w, low=1, high=10_000))) / 1000.0,
        state_dir=baseline_dir / ".state",
        nvtx=r.flag("trt_nvtx"),
        profiler_api=r.flag("trt_profiler_api"),
    )


def _trt_options(r: _Reader, baseline_dir: Path) -> TrtOptions:
    engine_cache = r.path("trt_engine_cache", allow_off=True)
    timing_cache = r.path("trt_timing_cache", allow_off=True)
    cache_dir = None if engine_cache == "off" else (engine_cache or baseline_dir / "engines")
    timing = None if timing_cache == "off" else timing_cache
    assert not isinstance(cache_dir, str) and not isinstance(timing, str)
    return TrtOptions(
        backend=r.get("trt_backend", lambda v, w: parse_choice(v, BACKEND_CHOICES, what=w)),
        engine_cache=cache_dir,
        timing_cache=(None if timing_cache == "off" else
                      timing or (cache_dir / "timing.cache" if cache_dir is not None else None)),
        allow_engine_host_code=r.flag("trt_allow_engine_host_code"),
        profile_layers=r.flag("trt_profile_layers"),
    )


def _check_run_modes(baseline_mode: str, *, only_perf: bool, disabled: bool, compare_rev: str | None) -> None:
    """Options that contradict each other: one line each, before anything runs."""
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


#: Options a reference process gets from its session: the ones that decide how
#: a workload is made (the session decides how long and how it is measured).
AB_FORWARDED = ("--trt-mode", "--trt-streams", "--trt-cuda-graph", "--trt-blocking-sync",
                "--trt-include-transfers", "--trt-backend", "--trt-allow-engine-host-code", "--trt-require-gpu")


def read_ab_settings(r: _Reader, *, baseline_mode: str, disabled: bool, trt: TrtOptions) -> AbSettings:
    from pytest_trtperf.relative.protocol import FD_ENV

    fd_text = os.environ.get(FD_ENV, "").strip()
    if fd_text:  # a reference process: it serves, it never starts another
        if not fd_text.isdigit():
            raise UsageError(f"{FD_ENV}={fd_text!r} is not a file descriptor (it is set by pytest-trtperf for "
                             f"its reference processes; unset it)")
        return AbSettings(serve_fd=int(fd_text))
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
        return AbSettings(timeout_s=timeout_s, confirm=confirm, forwarded=_forwarded(r, trt) if confirm else ())
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
    return AbSettings(rev=rev, python=python, setup=setup, timeout_s=timeout_s, forwarded=_forwarded(r, trt),
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
    """The session's ``AB_FORWARDED`` options as ``--flag=value`` (flags alone;
    an on/off option that is off as its older negative flag, which a reference
    process of an older revision knows too)."""
    out: list[str] = []
    for opt in OPTIONS:
        if opt.flag not in AB_FORWARDED:
            continue
        value, label = r.raw(opt.dest)
        if opt.negative:
            if not parse_bool(value, what=label):
                out.append(opt.negative)
        elif opt.kind == "bool":
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
