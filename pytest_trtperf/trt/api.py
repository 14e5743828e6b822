"""What the ``trt_bench`` fixture calls to get engines. Nothing else in ``trt/`` is needed by it.

* ``get_engine(spec, options, progress)``: build from ONNX through the engine
  cache, or read a plan file; returns an :class:`EngineHandle` (plain data).
  ``workloads.tensorrt.make_workload`` turns a handle into something the
  measurement core can time (``trt/`` does not know about workloads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.trt.backend import Backend, load_backend, no_gc
from pytest_trtperf.trt.build import build_plan
from pytest_trtperf.trt.engine import EngineHandle, plan_identity, read_engine_file
from pytest_trtperf.trt.engine_cache import EngineCache, cache_key, file_digest
from pytest_trtperf.core.config import TrtOptions
from pytest_trtperf.trt.progress import ProgressCallback, line_printer
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.trt.tensors import TensorInfo


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
        identity = dict(handle.identity)
        if spec.weight_streaming_budget is not None:
            identity["weight_streaming_budget"] = spec.weight_streaming_budget
        return _replace(handle, identity=identity, run_shapes=spec.run_shapes(), run_inputs=spec.inputs, seed=spec.seed,
                        profile=spec.profile, weight_streaming_budget=spec.weight_streaming_budget)
    assert spec.onnx is not None
    if not spec.onnx.is_file():
        raise UsageError(f"{spec.where}: ONNX model not found: {spec.onnx}")
    digest = file_digest(spec.onnx)
    key = cache_key(digest, spec.build_config(), backend.identity(), gpu)
    allow_host_code, host_code_note = host_code_policy(spec, options)
    identity = built_identity(spec, backend.identity(), gpu, digest, host_code_note)
    common: dict[str, Any] = dict(
        backend=backend,
        where=spec.where,
        source=str(spec.onnx),
        identity=identity,
        allow_host_code=allow_host_code,
        run_shapes=spec.run_shapes(),
        run_inputs=spec.inputs,
        seed=spec.seed,
        profile=spec.profile,
        weight_streaming_budget=spec.weight_streaming_budget,
    )
    cache = EngineCache(options.engine_cache) if options.engine_cache is not None else None
    entry = cache.get(key) if cache is not None else None
    if entry is not None and cache is not None:
        with no_gc():
            problem = backend.check_plan(entry.plan).problem
        if problem:
            cache.discard(key, problem)
            entry = None
    if entry is not None:
        return EngineHandle(
            plan=entry.plan,
            io=tuple(TensorInfo.from_dict(t) for t in entry.meta.get("io", ())),
            cache_hit=True,
            build_seconds=entry.meta.get("build_seconds"),
            plan_path=entry.path,
            notes=backend.notes,
            capturable=entry.meta.get("capturable"),
            build_memory=_build_memory(entry.meta),
            **common,
        )
    if cache is not None:  # before the timing cache's lock creates it: only a directory we create is git-ignored
        cache.ensure_directory()
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
                "flags": list(result.flags),
                "capturable": result.capturable,
                "build_memory": dict(result.memory),
            },
        )
        plan_path = stored.path
    return EngineHandle(
        plan=result.plan,
        io=result.io,
        cache_hit=False,
        build_seconds=result.seconds,
        plan_path=plan_path,
        notes=(*backend.notes, *result.notes),
        capturable=result.capturable,
        build_memory=dict(result.memory),
        **common,
    )


def built_identity(spec: EngineSpec, library: Mapping[str, Any], gpu: str, digest: str,
                   host_code_note: str | None) -> dict[str, Any]:
    """The engine part of a result's identity for a plan built from ONNX.

    ``identity.split_config`` sorts its keys: ``build_config``,
    ``host_code_allowed`` and ``weight_streaming_budget`` are build
    configuration (a change is compared and named in the verdict), the rest
    is the model, the library or the GPU (not configuration)."""
    assert spec.onnx is not None
    identity: dict[str, Any] = {
        **library,
        "gpu": gpu,
        "onnx_sha256": digest[:16],
        "build": spec.build_hash(),
        # Named in a verdict when it changes (the gate compares build changes).
        "build_config": spec.build_config(),
        "source": spec.onnx.name,
    }
    if host_code_note:
        identity["host_code_allowed"] = host_code_note
    if spec.weight_streaming_budget is not None:
        identity["weight_streaming_budget"] = spec.weight_streaming_budget
    return identity


def _build_memory(meta: Mapping[str, Any]) -> dict[str, int]:
    """The build figures a cache entry recorded (none in entries written before)."""
    value = meta.get("build_memory")
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def host_code_policy(spec: EngineSpec, options: TrtOptions) -> tuple[bool, str | None]:
    """Whether the runtime may load host code from the plan ``spec`` builds,
    and what the identity records about it. trtexec and Polygraphy allow it for
    the version-compatible plans they built themselves (the lean runtime is
    host code); so do we. Plan files from elsewhere need the option."""
    if spec.onnx is not None and spec.version_compatible:
        return True, "built here (version_compatible)"
    return options.allow_engine_host_code, None


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
        notes=backend.notes,
    )


def engine_from_marker(
    marker: Any,
    where: str,
    progress: Callable[[str], None] | None = None,
    base_dir: str | Path | None = None,
    *,
    options: TrtOptions,
) -> EngineHandle:
    """``trt_bench()``: the engine of a ``@pytest.mark.trt_engine`` marker.

    ``progress`` takes text lines (build phases, cache hits); ``base_dir`` is
    the test file's directory, against which relative paths resolve.
    """
    spec = EngineSpec.from_marker(marker, where, base_dir)
    return _get_with_text(spec, options, progress)


def engine_from_kwargs(
    onnx: str | Path | None = None,
    *,
    where: str,
    progress: Callable[[str], None] | None = None,
    rootdir: str | Path | None = None,
    options: TrtOptions,
    **kwargs: Any,
) -> EngineHandle:
    """``trt_bench.engine("m.onnx" | "m.plan", min_shapes=..., ...)``."""
    if onnx is not None:
        key = "onnx" if str(onnx).lower().endswith(".onnx") else "engine"
        if key in kwargs:
            raise UsageError(f"{where}: trt_bench.engine() got the model twice (positional and {key}=)")
        kwargs[key] = onnx
    spec = EngineSpec.create(where, rootdir, **kwargs)
    return _get_with_text(spec, options, progress)


def _get_with_text(spec: EngineSpec, options: TrtOptions, progress: Callable[[str], None] | None) -> EngineHandle:
    label = spec.source.name
    events: ProgressCallback | None = line_printer(progress, label) if progress is not None else None
    handle = get_engine(spec, options, events)
    if progress is not None:
        if handle.cache_hit:
            progress(f"{label}: engine from cache {handle.plan_path}")
        elif handle.build_seconds is not None:
            progress(f"{label}: built with {handle.backend.label} in {handle.build_seconds:.1f}s")
    return handle


def _replace(handle: EngineHandle, **changes: Any) -> EngineHandle:
    from dataclasses import replace

    return replace(handle, **changes)
