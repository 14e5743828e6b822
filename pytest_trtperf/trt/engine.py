"""Engines: the plain handle the fixture passes around, and the live objects.

:class:`EngineHandle` is data (plan bytes, I/O tensors, identity) and exists
on any machine. :func:`deserialize` turns it into a :class:`LiveEngine`
(runtime + ``ICudaEngine``), which needs a GPU; failures say why in one line:
another TensorRT version, another GPU, a truncated file, or no GPU at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import BackendUnavailable, UsageError
from .backend import Backend, no_gc
from .tensors import TensorInfo, dtype_name

#: Logger fragments meaning "there is no usable GPU here", not "bad engine".
_NO_GPU = ("cudaError 35", "cudaError 100", "no CUDA-capable device", "driver version is insufficient")


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
    runtime: Any
    engine: Any
    logger: Any
    io: tuple[TensorInfo, ...]

    @property
    def device_memory_bytes(self) -> int | None:
        return self.handle.backend.device_memory_size(self.engine)

    def layer_info(self) -> Any:
        """The engine inspector's JSON (``Layers`` list), or None if unavailable."""
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
    logger = backend.logger()
    runtime = trt.Runtime(logger)
    if hasattr(runtime, "engine_host_code_allowed"):
        runtime.engine_host_code_allowed = bool(handle.allow_host_code)
    problem = backend.plan_problem(runtime, handle.plan)
    engine = None if problem else runtime.deserialize_cuda_engine(handle.plan)
    if engine is None:
        errors = logger.errors
        if not problem and _no_gpu(errors):
            raise BackendUnavailable(f"{backend.label} cannot load engines here: no usable GPU ({_last(errors)})")
        reason = problem or _last(errors) or "the library gave no reason"
        hint = ""
        if "host code" in " ".join(errors).lower() and not handle.allow_host_code:
            hint = "; it contains host code: pass --trt-allow-engine-host-code if you trust it"
        raise UsageError(
            f"{handle.where}: cannot load engine {handle.source}: {reason}{hint}; "
            f"rebuild it with {backend.label} on this GPU ({handle.identity.get('gpu', backend.gpu_identity())})"
        )
    return LiveEngine(handle=handle, runtime=runtime, engine=engine, logger=logger, io=introspect(backend, engine))


def introspect(backend: Backend, engine: Any) -> tuple[TensorInfo, ...]:
    """Names, modes, dtypes, shapes and per-profile ranges of every I/O tensor."""
    trt = backend.module
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        profiles: tuple[Any, ...] = ()
        if is_input:
            profiles = tuple(
                tuple(tuple(d) for d in engine.get_tensor_profile_shape(name, p))
                for p in range(engine.num_optimization_profiles)
            )
        out.append(
            TensorInfo(
                name=name,
                mode="input" if is_input else "output",
                dtype=dtype_name(engine.get_tensor_dtype(name)),
                shape=tuple(engine.get_tensor_shape(name)),
                profiles=profiles,  # type: ignore[arg-type]
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
        problem = backend.plan_problem(backend.module.Runtime(backend.logger()), plan)
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
    )


def _no_gpu(errors: list[str]) -> bool:
    return any(marker in e for e in errors for marker in _NO_GPU)


def _last(errors: list[str]) -> str:
    return " ".join(errors[-1].split())[:300] if errors else ""
