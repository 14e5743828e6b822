"""What the ``trt_bench`` fixture calls. Nothing else in ``trt/`` is needed by it.

* ``get_engine(spec, options, progress)``: build from ONNX through the engine
  cache, or read a plan file; returns an :class:`EngineHandle` (plain data).
* ``make_workload(handle, shapes, inputs, **cuda_opts)``: a
  :class:`~pytest_trtperf.workloads.tensorrt.TensorRTWorkload` the measurement
  core can time; it deserializes in ``setup()`` (needs a GPU).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import UsageError
from .backend import Backend, load_backend
from .build import build_plan
from .engine import EngineHandle, plan_identity, read_engine_file
from .engine_cache import EngineCache, cache_key, file_digest
from .options import TrtOptions
from .progress import ProgressCallback
from .spec import EngineSpec
from .tensors import TensorInfo


def get_engine(
    spec: EngineSpec,
    options: TrtOptions,
    progress: ProgressCallback | None = None,
    backend: Backend | None = None,
) -> EngineHandle:
    """The engine ``spec`` describes: cached plan, fresh build, or plan file.

    Raises ``UsageError`` (bad model, shapes, flags, foreign plan) or
    ``BackendUnavailable`` (no TensorRT).
    """
    backend = backend or load_backend(options.backend)
    gpu = backend.gpu_identity()
    if spec.engine is not None:
        handle = read_engine_file(backend, spec.engine, spec.where, gpu, options.allow_engine_host_code)
        return _replace(handle, run_shapes=spec.run_shapes())
    assert spec.onnx is not None
    if not spec.onnx.is_file():
        raise UsageError(f"{spec.where}: ONNX model not found: {spec.onnx}")
    digest = file_digest(spec.onnx)
    key = cache_key(digest, spec.build_config(), backend.identity(), gpu)
    identity = {
        **backend.identity(),
        "gpu": gpu,
        "onnx_sha256": digest[:16],
        "build": spec.build_hash(),
        "source": spec.onnx.name,
    }
    cache = EngineCache(options.engine_cache) if options.engine_cache is not None else None
    entry = cache.get(key) if cache is not None else None
    if entry is not None and cache is not None:
        problem = backend.plan_problem(backend.module.Runtime(backend.logger()), entry.plan)
        if problem:
            cache.discard(key, problem)
            entry = None
    if entry is not None:
        return EngineHandle(
            plan=entry.plan,
            backend=backend,
            where=spec.where,
            source=str(spec.onnx),
            io=tuple(TensorInfo.from_dict(t) for t in entry.meta.get("io", ())),
            identity=identity,
            cache_hit=True,
            build_seconds=entry.meta.get("build_seconds"),
            plan_path=entry.path,
            allow_host_code=options.allow_engine_host_code,
            run_shapes=spec.run_shapes(),
        )
    result = build_plan(backend, spec, timing_cache=options.timing_cache, progress=progress)
    plan_path = None
    if cache is not None:
        stored = cache.put(
            key,
            result.plan,
            {
                "io": [t.to_dict() for t in result.io],
                "onnx": str(spec.onnx),
                "onnx_sha256": digest,
                "build": spec.build_config(),
                "library": backend.identity(),
                "gpu": gpu,
                "build_seconds": result.seconds,
            },
        )
        plan_path = stored.path
    return EngineHandle(
        plan=result.plan,
        backend=backend,
        where=spec.where,
        source=str(spec.onnx),
        io=result.io,
        identity=identity,
        cache_hit=False,
        build_seconds=result.seconds,
        plan_path=plan_path,
        notes=result.notes,
        allow_host_code=options.allow_engine_host_code,
        run_shapes=spec.run_shapes(),
    )


def engine_from_plan(backend: Backend, plan: bytes, where: str, source: str = "<plan>", allow_host_code: bool = False) -> EngineHandle:
    """A handle for plan bytes already in memory (e.g. built by the caller)."""
    gpu = backend.gpu_identity()
    return EngineHandle(
        plan=plan,
        backend=backend,
        where=where,
        source=source,
        identity=plan_identity(backend, plan, gpu, None, source),
        allow_host_code=allow_host_code,
    )


def make_workload(
    engine: EngineHandle,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    inputs: Mapping[str, Any] | str | None = None,
    *,
    seed: int = 0,
    profile_layers: bool = False,
    **cuda_opts: Any,
) -> Any:
    """A Workload running ``engine`` at ``shapes`` (default: the spec's run shapes).

    ``cuda_opts`` go unchanged to the GPU core's ``CudaWorkload`` (mode,
    streams, cuda_graph, blocking_sync, transfers). With ``profile_layers`` the
    workload collects per-layer times in a separate pass after measuring
    (``workload.layers()``).
    """
    from ..workloads.tensorrt import TensorRTWorkload

    return TensorRTWorkload(engine, shapes=shapes, inputs=inputs, seed=seed, profile_layers=profile_layers, **cuda_opts)


def _replace(handle: EngineHandle, **changes: Any) -> EngineHandle:
    from dataclasses import replace

    return replace(handle, **changes)
