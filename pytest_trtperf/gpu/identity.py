"""Fingerprint of a GPU workload: which GPU, which library line, which clocks.

Kept apart from ``fingerprint.py`` so the host path never imports CUDA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_trtperf.gpu import cuda
from pytest_trtperf.core.fingerprint import Fingerprint, gpu_fingerprint


def library_line(identity: Mapping[str, Any]) -> str | None:
    """``tensorrt 10.13.0`` / ``tensorrt_rtx 1.7.1`` from a TensorRT workload's
    identity, or None for plain CUDA/torch workloads."""
    engine = identity.get("engine")
    if isinstance(engine, Mapping) and engine.get("version"):
        return f"{engine.get('backend', 'tensorrt')} {engine['version']}"
    return None


def _nvml_driver() -> str | None:
    try:
        from pytest_trtperf.gpu import nvml

        return str(nvml.driver_version())
    except Exception:  # noqa: BLE001 - the driver version is informative only
        return None


def gpu_fingerprint_for(workload: Any, *, clocks: str) -> Fingerprint:
    """Raises ``BackendUnavailable`` without cuda-python or a GPU."""
    cuda.require_gpu()
    info = cuda.device_info()
    identity = dict(workload.identity())
    lib = library_line(identity)
    trt_version = None
    extra: dict[str, Any] = {
        "driver": _nvml_driver(),
        "driver_cuda": ".".join(map(str, info.driver_cuda_version)),
        "cuda_runtime": ".".join(map(str, info.runtime_version)),
        "cuda_bindings": info.bindings_version,
    }
    if lib is not None:
        backend, trt_version = lib.split(" ", 1)
        extra["trt_backend"] = backend
        engine = identity.get("engine", {})
        extra["model"] = engine.get("onnx_sha256") or engine.get("plan_sha256")
    fp = gpu_fingerprint(kind=workload.kind, gpu_name=info.name,
                         compute_capability=f"{info.compute_capability[0]}.{info.compute_capability[1]}",
                         trt_version=trt_version, clocks=clocks, info=extra)
    if lib is not None and lib.startswith("tensorrt_rtx"):
        fp = Fingerprint(device_class=fp.device_class.replace(" trt", " trtrtx"), critical=fp.critical, info=fp.info)
    return fp
