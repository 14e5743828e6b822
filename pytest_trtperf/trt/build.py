"""ONNX -> serialized plan, the way trtexec builds it.

Shapes or min/opt/max profiles (several profiles, shape-tensor values),
timing cache loaded and merged back under a lock, optimization level, memory
pools, precision, profiling verbosity, version compatibility and weight
streaming, with progress reported through a callback. Everything a user can
get wrong ends as one :class:`UsageError` line naming the test and file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.files import UnreadableFile, atomic_write, file_lock, read_regular_file
from pytest_trtperf.trt.allocator import AllocationStats, can_track, figures, make_tracking_allocator
from pytest_trtperf.trt.backend import LOWERED, Backend, CapturingLogger, last_line, no_gc
from pytest_trtperf.trt.progress import ProgressCallback, make_monitor
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.trt.tensors import ProfileRange, Shape, TensorInfo, dims, dtype_name

if TYPE_CHECKING:
    import tensorrt as trt

_MIB = 1 << 20
#: Largest timing cache read (TensorRT's are a few MiB; hardened read: never a FIFO or device).
MAX_TIMING_CACHE_BYTES = 1 << 30
_VERBOSITY = {"layer_names_only": "LAYER_NAMES_ONLY", "detailed": "DETAILED", "none": "NONE"}
_POOLS = {"workspace": "WORKSPACE", "tactic_shared_memory": "TACTIC_SHARED_MEMORY", "tactic_dram": "TACTIC_DRAM"}


@dataclass(frozen=True)
class BuildResult:
    plan: bytes
    io: tuple[TensorInfo, ...]
    seconds: float
    notes: tuple[str, ...] = ()
    #: Builder flags set on the config, by name (as the library reports them).
    flags: tuple[str, ...] = ()
    #: Warnings the library logged during this build.
    warnings: tuple[str, ...] = ()
    #: The plan may be captured into a CUDA graph (TensorRT-RTX: built with
    #: ``REQUIRE_USER_ALLOCATION``; other libraries: not known at build time).
    capturable: bool | None = None
    #: ``build_peak_bytes`` / ``build_total_bytes``: device memory the builder
    #: took through the tracking allocator (``trt/allocator.py``); empty when none
    #: was installed (no cuda-python) or the builder allocated nothing (a
    #: TensorRT-RTX build on a machine without a GPU).
    memory: Mapping[str, int] = field(default_factory=dict)
    #: What the builder's tracking allocator saw (None: none installed).
    allocator: AllocationStats | None = None


def build_plan(
    backend: Backend,
    spec: EngineSpec,
    *,
    timing_cache: Path | None = None,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    """Parse ``spec.onnx``, configure the builder from ``spec`` and build a plan."""
    with no_gc():
        try:
            return _build(backend, spec, timing_cache, progress)
        except UsageError as exc:
            # Drop the frames holding builder/network/parser so they die now,
            # by refcount, not later inside some TensorRT callback (see no_gc).
            raise exc.with_traceback(None) from None


def _build(
    backend: Backend, spec: EngineSpec, timing_cache: Path | None, progress: ProgressCallback | None
) -> BuildResult:
    onnx_path = spec.onnx
    if onnx_path is None:
        raise UsageError(f"{spec.where}: nothing to build (engine= given, not onnx=)")
    if not onnx_path.is_file():
        raise UsageError(f"{spec.where}: ONNX model not found: {onnx_path}")
    if spec.version_compatible:
        why = backend.version_compatible_problem()
        if why:
            raise UsageError(f"{spec.where}: version_compatible=True is not possible: {why}; drop version_compatible")
    t0 = time.perf_counter()
    log = backend.logger()
    mark = log.mark()
    notes: list[str] = []
    plugin_note = backend.init_plugins()
    if plugin_note:
        notes.append(plugin_note)
    user_alloc = backend.user_allocation_flag if not spec.weight_streaming else None
    plan, network, flags, tc_notes, stats = _attempt(backend, spec, timing_cache, progress, log, user_alloc)
    capturable: bool | None = True if user_alloc is not None else None
    if plan is None and user_alloc is not None and _about_user_allocation(log.errors(since=mark)):
        # NVIDIA: REQUIRE_USER_ALLOCATION makes the build fail for networks that
        # need runtime allocation (data-dependent shapes); such engines cannot
        # be stream-captured, so build them without it and say so.
        why = last_line(log.errors(since=mark))
        mark = log.mark()
        plan, network, flags, tc_notes, stats = _attempt(backend, spec, timing_cache, progress, log, None)
        capturable = False
        notes.append(f"built without REQUIRE_USER_ALLOCATION ({why}): this engine cannot be captured into a CUDA graph")
    elif user_alloc is None and backend.is_rtx:
        capturable = False
        why = ("weight streaming needs runtime allocation" if spec.weight_streaming
               else f"{backend.label} has no BuilderFlag.REQUIRE_USER_ALLOCATION (TensorRT-RTX >= 1.2)")
        notes.append(f"{why}: this TensorRT-RTX engine cannot be captured into a CUDA graph")
    if plan is None:
        detail = "; ".join(log.errors(since=mark)[-3:]) or "no error message"
        raise UsageError(f"{spec.where}: {backend.label} failed to build {onnx_path}: {detail}")
    notes += tc_notes
    return BuildResult(
        plan=plan,
        io=_io(network, spec, backend),
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
        flags=flags,
        warnings=tuple(log.warnings(since=mark)),
        capturable=capturable,
        memory=figures(stats, "build"),
        allocator=stats,
    )


def _attempt(
    backend: Backend,
    spec: EngineSpec,
    timing_cache: Path | None,
    progress: ProgressCallback | None,
    log: CapturingLogger,
    user_alloc: Any,
) -> tuple[bytes | None, trt.INetworkDefinition, tuple[str, ...], list[str], AllocationStats | None]:
    """One build: parse, configure, build; the plan (None on failure), the
    network (for its I/O), the flags set, timing-cache notes, and what the
    builder's tracking allocator saw (None without cuda-python)."""
    trt = backend.module
    assert spec.onnx is not None
    builder = trt.Builder(log)
    tracker = make_tracking_allocator(trt) if can_track() else None
    if tracker is not None:
        # Write-only in the binding (it keeps the allocator alive); the stubs
        # leave write-only properties out (stub defect: only the docstring's :ivar).
        builder.gpu_allocator = tracker  # pyright: ignore[reportAttributeAccessIssue]  # tensorrt-stubs 10.13 declares it only in a docstring
    network = builder.create_network(backend.network_flags(network_typing(backend, spec)))
    parser = trt.OnnxParser(network, log)
    if not parser.parse_from_file(str(spec.onnx)):
        raise UsageError(f"{spec.where}: {backend.label} could not parse {spec.onnx}: {_parser_errors(parser)}")
    config = configure(backend, builder, network, spec)
    if user_alloc is not None:
        config.set_flag(user_alloc)
    notes: list[str] = []
    if timing_cache is not None:
        notes += _load_timing_cache(backend, config, timing_cache)
    if progress is not None:
        monitor = make_monitor(trt, progress)
        config.progress_monitor = monitor  # keep a reference: TensorRT does not own it
    flags = flag_names(backend, config)
    serialized = builder.build_serialized_network(network, config)
    stats = tracker.stats() if tracker is not None else None
    if serialized is None:
        return None, network, flags, notes, stats
    plan = bytes(serialized)
    if timing_cache is not None:
        notes += _save_timing_cache(backend, config, timing_cache)
    return plan, network, flags, notes, stats


def configure(
    backend: Backend, builder: trt.Builder, network: trt.INetworkDefinition, spec: EngineSpec
) -> trt.IBuilderConfig:
    """A builder config for ``spec``: profiles, level, pools, precision,
    verbosity and flags (what trtexec's ``setupNetworkAndConfig`` does)."""
    trt = backend.module
    assert spec.onnx is not None
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    config = builder.create_builder_config()
    for index, ranges in enumerate(_profiles(spec, inputs, spec.onnx)):
        profile = builder.create_optimization_profile()
        for t in inputs:
            if t.name not in ranges:
                continue
            lo, opt, hi = ranges[t.name]
            if t.is_shape_tensor:
                profile.set_shape_input(t.name, list(lo), list(opt), list(hi))
            else:
                profile.set_shape(t.name, trt.Dims(list(lo)), trt.Dims(list(opt)), trt.Dims(list(hi)))
        if config.add_optimization_profile(profile) < 0:
            raise UsageError(f"{spec.where}: {backend.label} rejected shape profile {index} {ranges} for {spec.onnx}")

    if spec.optimization_level is not None:
        config.builder_optimization_level = spec.optimization_level
    pools = dict(spec.memory_pools)
    if spec.workspace_mb is not None:
        pools["workspace"] = spec.workspace_mb
    for pool, mib in pools.items():
        config.set_memory_pool_limit(getattr(trt.MemoryPoolType, _POOLS[pool]), mib * _MIB)
    precision = backend.precision_flags(spec.precision, spec.where)
    for flag in precision.set:
        config.set_flag(flag)
    for flag in precision.clear:
        config.clear_flag(flag)
    config.profiling_verbosity = getattr(trt.ProfilingVerbosity, _VERBOSITY[spec.profiling_verbosity])
    extra = list(spec.builder_flags)
    if spec.version_compatible:
        extra.append("VERSION_COMPATIBLE")
    if spec.weight_streaming:
        extra.append("WEIGHT_STREAMING")
    for name in extra:
        flag = backend.builder_flag(name)
        if flag is None:
            raise UsageError(f"{spec.where}: builder flag {name!r} does not exist in {backend.label}")
        config.set_flag(flag)
    return config


def flag_names(backend: Backend, config: trt.IBuilderConfig) -> tuple[str, ...]:
    """Names of the builder flags set on ``config``, read back from the library."""
    members: dict[str, Any] = dict(getattr(backend.module.BuilderFlag, "__members__", {}))
    seen: dict[int, str] = {}
    for name, flag in members.items():
        if int(flag) not in seen and config.get_flag(flag):
            seen[int(flag)] = name
    return tuple(sorted(seen.values()))


def _about_user_allocation(errors: list[str]) -> bool:
    text = " ".join(errors).lower()
    return "require_user_allocation" in text or "user allocation" in text or "user-managed allocation" in text


def network_typing(backend: Backend, spec: EngineSpec) -> bool:
    """Whether the network is strongly typed, as trtexec decides it; a one-line
    error for what the library refuses (precision flags on a strongly typed
    network, weak typing on TensorRT 11 / RTX, weight streaming without
    strong typing)."""
    lowered = any(p in LOWERED for p in spec.precision)
    if spec.strongly_typed is False and backend.strongly_typed_only:
        raise UsageError(f"{spec.where}: strongly_typed=False is not possible with {backend.label} (always strongly typed)")
    if spec.strongly_typed is False and spec.weight_streaming:
        raise UsageError(f"{spec.where}: weight_streaming=True needs a strongly typed network (trtexec: "
                         "--allowWeightStreaming must come with --stronglyTyped); drop strongly_typed=False")
    backend.precision_flags(spec.precision, spec.where)  # raises the one-line explanation
    if backend.strongly_typed_only:
        return True
    if spec.weight_streaming:
        strongly = True
    elif spec.strongly_typed is not None:
        strongly = spec.strongly_typed
    else:  # TensorRT 10: precision flags need a weakly typed network; "auto" follows the model's types
        strongly = spec.precision == ("auto",)
    if strongly and lowered:
        why = "weight streaming needs" if spec.weight_streaming else "strongly_typed=True asks for"
        raise UsageError(
            f"{spec.where}: precision={'/'.join(spec.precision)} needs a weakly typed network, but {why} a strongly "
            "typed one, which takes its precision from the ONNX model; export the model in that precision"
        )
    return strongly


def _parser_errors(parser: trt.OnnxParser) -> str:
    parts = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        desc = " ".join(str(err.desc()).split())
        op = err.node_operator()
        node = err.node_name() or (f"#{err.node()}" if err.node() >= 0 else "")
        where = f"node {node} ({op}): " if op else ""
        parts.append(f"{where}{desc} [{getattr(err.code(), 'name', err.code())}]")
    return "; ".join(parts) or "no error reported"


def _profiles(spec: EngineSpec, inputs: list[Any], onnx_path: Path) -> list[dict[str, ProfileRange]]:
    """min/opt/max per dynamic input (values per shape-tensor input), one dict
    per profile; a one-line error for anything missing or wrong."""
    by_name = {t.name: t for t in inputs}
    requested = spec.profiles()
    for ranges in requested:
        for name in ranges:
            if name not in by_name:
                raise UsageError(
                    f"{spec.where}: {onnx_path.name} has no input {name!r}; its inputs are {', '.join(by_name)}"
                )
    out: list[dict[str, ProfileRange]] = []
    for ranges in requested or ({},):
        checked: dict[str, ProfileRange] = {}
        for name, t in by_name.items():
            triple = _input_range(spec, t, ranges, onnx_path)
            if triple is not None:
                checked[name] = triple
        if checked or requested:
            out.append(checked)
    return out


def _input_range(spec: EngineSpec, t: Any, ranges: Mapping[str, ProfileRange],
                 onnx_path: Path) -> ProfileRange | None:
    """The checked min/opt/max of network input ``t`` in one profile; None for
    a static input the profile need not name; a one-line error for a dynamic
    input or shape tensor it does not name."""
    name = t.name
    shape_dims = dims(t.shape)
    if name in ranges:
        triple = ranges[name]
    elif t.is_shape_tensor:
        raise UsageError(
            f"{spec.where}: input {name!r} of {onnx_path.name} is a shape tensor ({_fmt(shape_dims)} values); "
            f"give its values in shapes={{{name!r}: (...)}} or min_shapes/opt_shapes/max_shapes"
        )
    elif any(d < 0 for d in shape_dims):
        raise UsageError(
            f"{spec.where}: input {name!r} of {onnx_path.name} has dynamic shape {_fmt(shape_dims)}; "
            f"give shapes={{{name!r}: (...)}} or min_shapes/opt_shapes/max_shapes"
        )
    else:
        return None
    for shape in triple:
        _check_fits(spec, t, shape, onnx_path)
    return triple


def _check_fits(spec: EngineSpec, t: Any, shape: Shape, onnx_path: Path) -> None:
    """``shape`` fits network input ``t``: as many values as a shape tensor
    holds, else its rank and every fixed dimension."""
    name = t.name
    shape_dims = dims(t.shape)
    if t.is_shape_tensor:
        count = 1
        for d in shape_dims:
            count *= d
        if len(shape) != count:
            raise UsageError(
                f"{spec.where}: input {name!r} of {onnx_path.name} is a shape tensor of {count} "
                f"value(s); {shape} has {len(shape)}"
            )
    elif len(shape) != len(shape_dims) or any(d >= 0 and s != d for s, d in zip(shape, shape_dims, strict=True)):
        raise UsageError(
            f"{spec.where}: input {name!r} of {onnx_path.name} has shape {_fmt(shape_dims)}; {shape} does not fit it"
        )


def _io(network: trt.INetworkDefinition, spec: EngineSpec, backend: Backend) -> tuple[TensorInfo, ...]:
    assert spec.onnx is not None
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    profiles = _profiles(spec, inputs, spec.onnx)
    out = []
    for t in inputs:
        prof = tuple(p[t.name] for p in profiles if t.name in p)
        out.append(TensorInfo(t.name, "input", dtype_name(t.dtype), dims(t.shape), prof,
                              shape_tensor=bool(t.is_shape_tensor)))
    for i in range(network.num_outputs):
        o = network.get_output(i)
        out.append(TensorInfo(o.name, "output", dtype_name(o.dtype), dims(o.shape)))
    return tuple(out)


def _load_timing_cache(backend: Backend, config: trt.IBuilderConfig, path: Path) -> list[str]:
    notes = []
    data = b""
    if os.path.lexists(path):
        try:  # written whole by os.replace: no lock needed to read
            data = read_regular_file(path, limit=MAX_TIMING_CACHE_BYTES)
        except UnreadableFile as e:
            notes.append(f"timing cache {path} {e}; building with a fresh one")
    if not backend.set_timing_cache(config, data):
        notes.append(f"timing cache {path} is unreadable; building with a fresh one")
        backend.set_timing_cache(config, b"")
    if not backend.timing_cache_effective:
        notes.append(f"{backend.label} ignores timing caches")
    return notes


def _save_timing_cache(backend: Backend, config: trt.IBuilderConfig, path: Path) -> list[str]:
    """Merge this build's timing cache into the file, under the file's lock:
    read what other builds saved since we loaded it, combine, replace. Two
    xdist workers building at once both keep their entries (Polygraphy's scheme)."""
    with file_lock(path):
        try:
            on_disk = read_regular_file(path, limit=MAX_TIMING_CACHE_BYTES) if os.path.lexists(path) else b""
        except UnreadableFile as e:
            return [f"timing cache {path} {e}; not saved"]
        data, note = backend.merged_timing_cache(config, on_disk)
        if data:
            atomic_write(path, data)
    return [f"timing cache {path}: {note}"] if note else []


def _fmt(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in dims) + ")"
