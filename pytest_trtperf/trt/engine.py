"""Engines: the plain handle the fixture passes around, and the live objects.

:class:`EngineHandle` is data (plan bytes, I/O tensors, identity) and exists
on any machine. :func:`deserialize` turns it into a :class:`LiveEngine`
(runtime + ``ICudaEngine``), which needs a GPU; failures say why in one line:
another TensorRT version, another GPU, a truncated file, or no GPU at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.trt.allocator import AllocationStats, can_track, make_tracking_allocator
from pytest_trtperf.trt.backend import Backend, CapturingLogger, last_line, no_gc, no_gpu
from pytest_trtperf.trt.tensors import TensorInfo, dims, dtype_name

if TYPE_CHECKING:
    import tensorrt as trt

_MIB = 1 << 20

#: Library error fragments and what they mean for the user.
_EXPLAIN = (
    ("Version tag does not match", "built by another TensorRT version"),
    ("not compatible with this version", "built by another TensorRT version"),
    ("Magic tag does not match", "not a serialized engine of this library"),
    ("incompatible device", "built for another GPU"),
    ("Plugin creator", "uses a plugin this process has not loaded"),
    ("not found in plugin registry", "uses a plugin this process has not loaded"),
)


@dataclass(frozen=True)
class EngineHandle:
    """A built or loaded plan and what is known about it without a GPU."""

    #: Lets the fixture recognise an engine passed to ``trt_bench.measure``.
    __trtperf_engine__ = True

    plan: bytes = field(repr=False)
    backend: Backend
    where: str
    source: str  # the ONNX model or engine file it came from
    io: tuple[TensorInfo, ...] = ()
    #: Hashed into results: changes whenever the plan changes.
    identity: Mapping[str, Any] = field(default_factory=dict)
    cache_hit: bool = False
    build_seconds: float | None = None
    plan_path: Path | None = None
    notes: tuple[str, ...] = ()
    allow_host_code: bool = False
    #: Default run shapes from the spec (``shapes`` or ``opt_shapes``).
    run_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: Default input data (``inputs=`` of the spec) and seed for random inputs.
    run_inputs: Any = field(default=None, repr=False, compare=False)
    seed: int = 0
    #: Optimization profile the run uses (trtexec ``--profile``).
    profile: int = 0
    #: Weight-streaming budget to apply after deserializing (see :func:`resolve_budget`).
    weight_streaming_budget: str | None = None
    #: Whether the plan may be stream-captured (False: TensorRT-RTX engine built
    #: without REQUIRE_USER_ALLOCATION; None: unknown until run).
    capturable: bool | None = None
    #: The builder's device memory (``build_peak_bytes``, ``build_total_bytes``):
    #: from this build, or recorded in the engine cache when it was built.
    build_memory: Mapping[str, int] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return tuple(t for t in self.io if t.is_input)

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return tuple(t for t in self.io if not t.is_input)

    def tensor(self, name: str) -> TensorInfo:
        for t in self.io:
            if t.name == name:
                return t
        raise UsageError(f"{self.where}: engine {self.source} has no tensor {name!r}; it has {', '.join(t.name for t in self.io)}")


def plan_identity(backend: Backend, plan: bytes, gpu: str, build: str | None, source: str) -> dict[str, Any]:
    return {
        **backend.identity(),
        "plan_sha256": hashlib.sha256(plan).hexdigest()[:16],
        "gpu": gpu,
        "build": build,
        "source": Path(source).name,
    }


@dataclass
class LiveEngine:
    """Deserialized engine plus the runtime and logger that must outlive it."""

    handle: EngineHandle
    runtime: trt.Runtime
    engine: trt.ICudaEngine
    logger: CapturingLogger
    io: tuple[TensorInfo, ...]
    notes: tuple[str, ...] = ()
    #: The runtime's tracking ``IGpuAllocator`` (``trt/allocator.py``), None
    #: without cuda-python. It counts deserialization, every execution context
    #: and whatever they allocate while running.
    allocator: Any = None

    @property
    def device_memory_bytes(self) -> int | None:
        return self.handle.backend.device_memory_size(self.engine)

    def allocator_stats(self) -> AllocationStats | None:
        return self.allocator.stats() if self.allocator is not None else None

    def memory_figures(self) -> dict[str, int]:
        """What the engine says about itself: context memory for the run's
        profile, plan size, weights (where the library reports them)."""
        out = {"plan_bytes": len(self.handle.plan)}
        context = self.handle.backend.device_memory_size_for_profile(self.engine, self.handle.profile)
        if context is not None:
            out["context_memory_bytes"] = context
        weights = self.handle.backend.weights_size(self.engine)
        if weights is not None:
            out["weights_bytes"] = weights
        return out

    @property
    def profiling_verbosity(self) -> Any:
        """The ``ProfilingVerbosity`` the engine was built with (caps NVTX verbosity)."""
        return self.engine.profiling_verbosity

    def layer_info(self) -> Any:
        """The engine inspector's JSON (``Layers`` list; TensorRT 10 adds
        ``Bindings``, TensorRT 11 and RTX ``I/O Tensors``), or None."""
        trt = self.handle.backend.module
        try:
            inspector = self.engine.create_engine_inspector()
            text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
            return json.loads(text) if text else None
        except Exception:  # noqa: BLE001 - inspection is a nice-to-have
            return None


def deserialize(handle: EngineHandle) -> LiveEngine:
    """Deserialize ``handle.plan``; one-line errors for every way this fails."""
    with no_gc():
        try:
            return _deserialize(handle)
        except (UsageError, BackendUnavailable) as exc:
            raise exc.with_traceback(None) from None


def _deserialize(handle: EngineHandle) -> LiveEngine:
    backend = handle.backend
    trt = backend.module
    notes: list[str] = []
    plugins = backend.init_plugins()  # before deserializing, as trtexec and Polygraphy do
    if plugins:
        notes.append(plugins)
    check = backend.check_plan(handle.plan)
    gpu = handle.identity.get("gpu", backend.gpu_identity())
    if check.problem:
        raise UsageError(f"{handle.where}: cannot load engine {handle.source}: {check.problem}; "
                         f"rebuild it with {backend.label} on this GPU ({gpu})")
    if check.unavailable:
        raise BackendUnavailable(f"{backend.label} cannot load engines here: {check.unavailable}")
    if check.note:
        notes.append(check.note)
    log = backend.logger()
    runtime = trt.Runtime(log)
    runtime.engine_host_code_allowed = bool(handle.allow_host_code)
    tracker = make_tracking_allocator(trt) if can_track() else None
    if tracker is not None:
        # Before deserializing, so the weights are counted too. Write-only in the
        # binding; left out of the stubs (stub defect, see trt/build.py).
        runtime.gpu_allocator = tracker  # pyright: ignore[reportAttributeAccessIssue]  # tensorrt-stubs 10.13 declares it only in a docstring
    mark = log.mark()
    engine = runtime.deserialize_cuda_engine(handle.plan)
    if engine is None:
        errors = log.errors(since=mark)
        if no_gpu(errors):
            raise BackendUnavailable(f"{backend.label} cannot load engines here: no usable GPU ({last_line(errors)})")
        reason = explain(errors) or "the library gave no reason"
        hint = ""
        if "host code" in " ".join(errors).lower() and not handle.allow_host_code:
            hint = "; it contains host code: pass --trt-allow-engine-host-code if you trust it"
        raise UsageError(
            f"{handle.where}: cannot load engine {handle.source}: {reason}{hint}; "
            f"rebuild it with {backend.label} on this GPU ({gpu})"
        )
    io = introspect(backend, engine)
    live = LiveEngine(handle=handle, runtime=runtime, engine=engine, logger=log, io=io, notes=tuple(notes),
                      allocator=tracker)
    note = apply_weight_streaming(live)
    if note:
        live.notes = (*live.notes, note)
    return live


def explain(errors: list[str]) -> str:
    """The library's last error, prefixed with what it means when we know."""
    raw = last_line(errors)
    if not raw:
        return ""
    for fragment, meaning in _EXPLAIN:
        if fragment.lower() in raw.lower():
            return f"{meaning} ({raw})"
    return raw


def resolve_budget(budget: str, streamable: int, automatic: Callable[[], int]) -> int:
    """Bytes of streamable weights to keep on the GPU for a
    ``weight_streaming_budget`` (trtexec ``--weightStreamingBudget``): "off"
    keeps all of them (no streaming), "auto" asks TensorRT, "<n>%" is that share
    of the streamable weights, digits are bytes."""
    if budget == "off":
        return streamable
    if budget == "auto":
        return int(automatic())
    if budget.endswith("%"):
        return int(float(budget[:-1]) / 100.0 * streamable)
    return int(budget)


def apply_weight_streaming(live: LiveEngine) -> str | None:
    """Set the handle's weight-streaming budget on the engine (the v2 API,
    before any execution context exists); a note saying what is resident."""
    budget = live.handle.weight_streaming_budget
    if budget is None:
        return None
    engine = live.engine
    where, source = live.handle.where, live.handle.source
    streamable = int(engine.streamable_weights_size)
    if streamable <= 0:
        raise UsageError(f"{where}: weight_streaming_budget={budget!r} but engine {source} has no streamable weights; "
                         "build it with weight_streaming=True")
    value = resolve_budget(budget, streamable, engine.get_weight_streaming_automatic_budget)
    engine.weight_streaming_budget_v2 = value
    if int(engine.weight_streaming_budget_v2) != value:
        raise UsageError(f"{where}: {live.handle.backend.label} refused weight streaming budget {value} bytes "
                         f"for {source} ({last_line(live.logger.errors()) or 'no reason given'})")
    return (f"weight streaming: {min(value, streamable) / _MIB:.1f} MiB of {streamable / _MIB:.1f} MiB streamable "
            f"weights resident (budget {budget})")


def timed_nvtx_verbosity(trt_module: Any, built: Any) -> Any:
    """NVTX verbosity for timed execution contexts: layer names only, as
    trtexec times (detailed NVTX adds ``enqueueV3`` latency, TensorRT's docs
    say), or NONE when the engine was built with NONE (it cannot be raised)."""
    levels = trt_module.ProfilingVerbosity
    return levels.NONE if int(built) == int(levels.NONE) else levels.LAYER_NAMES_ONLY


def introspect(backend: Backend, engine: Any) -> tuple[TensorInfo, ...]:
    """Names, modes, dtypes, shapes and per-profile ranges of every I/O tensor."""
    trt = backend.module
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape_tensor = is_input and bool(engine.is_shape_inference_io(name))
        profiles: tuple[Any, ...] = ()
        if shape_tensor:
            # The binding labels its arguments (name, profile_index) but takes
            # (profile_index, name), as its types say: pass them by position.
            profiles = tuple(
                tuple(tuple(int(v) for v in values) for values in engine.get_tensor_profile_values(p, name))
                for p in range(engine.num_optimization_profiles)
            )
        elif is_input:
            profiles = tuple(
                tuple(dims(d) for d in engine.get_tensor_profile_shape(name, p))
                for p in range(engine.num_optimization_profiles)
            )
        out.append(
            TensorInfo(
                name=name,
                mode="input" if is_input else "output",
                dtype=dtype_name(engine.get_tensor_dtype(name)),
                shape=dims(engine.get_tensor_shape(name)),
                profiles=profiles,
                shape_tensor=shape_tensor,
            )
        )
    return tuple(out)


def read_engine_file(backend: Backend, path: Path, where: str, gpu: str, allow_host_code: bool) -> EngineHandle:
    """Read a plan file into a handle; its I/O is learnt on :func:`deserialize`.

    Catches what can be caught without a GPU: missing or empty file, a plan
    from the other library (magic number), and, on TensorRT-RTX, a version
    mismatch or a malformed file.
    """
    if not path.is_file():
        raise UsageError(f"{where}: engine file not found: {path}")
    plan = path.read_bytes()
    if len(plan) < 64:
        raise UsageError(f"{where}: {path} is not a TensorRT engine ({len(plan)} bytes)")
    with no_gc():
        problem = backend.check_plan(plan).problem
    if problem:
        raise UsageError(f"{where}: cannot load engine {path}: {problem}; rebuild it with {backend.label} ({gpu})")
    return EngineHandle(
        plan=plan,
        backend=backend,
        where=where,
        source=str(path),
        identity=plan_identity(backend, plan, gpu, None, str(path)),
        plan_path=path,
        allow_host_code=allow_host_code,
        notes=backend.notes,
    )
