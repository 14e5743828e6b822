"""ONNX -> serialized plan, the way trtexec builds it.

Shapes or min/opt/max profiles, timing cache loaded and saved, optimization
level, memory pools, precision, profiling verbosity, version compatibility and
weight streaming, with progress reported through a callback. Everything a user
can get wrong ends as one :class:`UsageError` line naming the test and file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..files import atomic_write
from .backend import Backend, no_gc
from .progress import ProgressCallback, make_monitor
from .spec import EngineSpec
from .tensors import TensorInfo, dtype_name

_MIB = 1 << 20
_VERBOSITY = {"layer_names_only": "LAYER_NAMES_ONLY", "detailed": "DETAILED", "none": "NONE"}
_POOLS = {"workspace": "WORKSPACE", "tactic_shared_memory": "TACTIC_SHARED_MEMORY", "tactic_dram": "TACTIC_DRAM"}


@dataclass(frozen=True)
class BuildResult:
    plan: bytes
    io: tuple[TensorInfo, ...]
    seconds: float
    notes: tuple[str, ...] = ()


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
    trt = backend.module
    onnx_path = spec.onnx
    if onnx_path is None:
        raise UsageError(f"{spec.where}: nothing to build (engine= given, not onnx=)")
    if not onnx_path.is_file():
        raise UsageError(f"{spec.where}: ONNX model not found: {onnx_path}")
    t0 = time.perf_counter()
    notes: list[str] = []
    logger = backend.logger()
    builder = trt.Builder(logger)
    strongly_typed = _strongly_typed(backend, spec)
    network = builder.create_network(backend.network_flags(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise UsageError(f"{spec.where}: {backend.label} could not parse {onnx_path}: {_parser_errors(parser)}")

    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    config = builder.create_builder_config()
    profile_ranges = _profile(spec, inputs, onnx_path)
    if profile_ranges:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_ranges.items():
            profile.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(profile) < 0:
            raise UsageError(f"{spec.where}: {backend.label} rejected the shape profile {profile_ranges} for {onnx_path}")

    if spec.optimization_level is not None:
        config.builder_optimization_level = spec.optimization_level
    pools = dict(spec.memory_pools)
    if spec.workspace_mb is not None:
        pools["workspace"] = spec.workspace_mb
    for pool, mib in pools.items():
        config.set_memory_pool_limit(getattr(trt.MemoryPoolType, _POOLS[pool]), mib * _MIB)
    if not strongly_typed:
        for flag in backend.precision_flags(spec.precision, spec.where):
            config.set_flag(flag)
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

    if timing_cache is not None:
        notes += _load_timing_cache(backend, config, timing_cache)
    if progress is not None:
        monitor = make_monitor(trt, progress)
        config.progress_monitor = monitor  # keep a reference: TensorRT does not own it

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        detail = "; ".join(logger.errors[-3:]) or "no error message"
        raise UsageError(f"{spec.where}: {backend.label} failed to build {onnx_path}: {detail}")
    plan_bytes = bytes(plan)
    if timing_cache is not None:
        data = backend.timing_cache_bytes(config)
        if data:
            atomic_write(timing_cache, data)
    io = _io(network, profile_ranges)
    return BuildResult(plan=plan_bytes, io=io, seconds=time.perf_counter() - t0, notes=tuple(notes))


def _strongly_typed(backend: Backend, spec: EngineSpec) -> bool:
    lowered = any(p not in ("auto", "fp32", "tf32") for p in spec.precision)
    if spec.strongly_typed is False and backend.strongly_typed_only:
        raise UsageError(f"{spec.where}: strongly_typed=False is not possible with {backend.label} (always strongly typed)")
    if spec.strongly_typed is True and lowered:
        raise UsageError(
            f"{spec.where}: precision={'/'.join(spec.precision)} contradicts strongly_typed=True; "
            "a strongly typed network takes its precision from the ONNX model"
        )
    if spec.strongly_typed is not None:
        return spec.strongly_typed
    if backend.strongly_typed_only:
        backend.precision_flags(spec.precision, spec.where)  # raises the one-line explanation
        return True
    # TensorRT 10: precision flags need a weakly typed network; "auto" follows the model's types.
    return not lowered and spec.precision == ("auto",)


def _parser_errors(parser: Any) -> str:
    parts = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        desc = " ".join(str(err.desc()).split())
        op = err.node_operator()
        node = err.node_name() or (f"#{err.node()}" if err.node() >= 0 else "")
        where = f"node {node} ({op}): " if op else ""
        parts.append(f"{where}{desc} [{getattr(err.code(), 'name', err.code())}]")
    return "; ".join(parts) or "no error reported"


def _profile(spec: EngineSpec, inputs: list[Any], onnx_path: Path) -> dict[str, tuple[tuple[int, ...], ...]]:
    """min/opt/max per dynamic input; a one-line error for anything missing or wrong."""
    by_name = {t.name: tuple(t.shape) for t in inputs}
    given = dict(spec.min_shapes) if spec.has_profile else dict(spec.shapes)
    for name in given:
        if name not in by_name:
            raise UsageError(
                f"{spec.where}: {onnx_path.name} has no input {name!r}; its inputs are {', '.join(by_name)}"
            )
    ranges: dict[str, tuple[tuple[int, ...], ...]] = {}
    for name, dims in by_name.items():
        if spec.has_profile and name in spec.min_shapes:
            triple = (spec.min_shapes[name], spec.opt_shapes[name], spec.max_shapes[name])
        elif name in spec.shapes:
            triple = (spec.shapes[name],) * 3
        elif any(d < 0 for d in dims):
            raise UsageError(
                f"{spec.where}: input {name!r} of {onnx_path.name} has dynamic shape {_fmt(dims)}; "
                f"give shapes={{{name!r}: (...)}} or min_shapes/opt_shapes/max_shapes"
            )
        else:
            continue
        for shape in triple:
            if len(shape) != len(dims) or any(d >= 0 and s != d for s, d in zip(shape, dims)):
                raise UsageError(
                    f"{spec.where}: input {name!r} of {onnx_path.name} has shape {_fmt(dims)}; {shape} does not fit it"
                )
        ranges[name] = triple
    return ranges


def _io(network: Any, ranges: dict[str, tuple[tuple[int, ...], ...]]) -> tuple[TensorInfo, ...]:
    out = []
    for i in range(network.num_inputs):
        t = network.get_input(i)
        prof = (ranges[t.name],) if t.name in ranges else ()
        out.append(TensorInfo(t.name, "input", dtype_name(t.dtype), tuple(t.shape), prof))  # type: ignore[arg-type]
    for i in range(network.num_outputs):
        t = network.get_output(i)
        out.append(TensorInfo(t.name, "output", dtype_name(t.dtype), tuple(t.shape)))
    return tuple(out)


def _load_timing_cache(backend: Backend, config: Any, path: Path) -> list[str]:
    notes = []
    data = b""
    if path.is_file():
        data = path.read_bytes()
    if not backend.set_timing_cache(config, data):
        notes.append(f"timing cache {path} is unreadable; building with a fresh one")
        backend.set_timing_cache(config, b"")
    if not backend.timing_cache_effective:
        notes.append(f"{backend.label} ignores timing caches")
    return notes


def _fmt(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in dims) + ")"
