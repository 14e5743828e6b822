"""Static types of the TensorRT calls in ``trt/`` and ``workloads/tensorrt.py``.

Only for the type checker (pyright with ``tensorrt-stubs`` installed, see
``.ci/run``): nothing here imports TensorRT at run time. :class:`TrtModule`
is the part of the ``tensorrt`` module we use, so every call made through
``Backend.module`` is checked against NVIDIA's API (the stubs are generated
from TensorRT 10.13's bindings). TensorRT-RTX adds a few names the stubs do
not have (runtime configuration, ``is_stream_capturable``, plan validity);
those are reached through ``getattr`` and typed by the small protocols below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import tensorrt as trt


class TrtModule(Protocol):
    """``tensorrt`` / ``tensorrt_rtx``: the classes and functions we call."""

    __version__: str
    Builder: type[trt.Builder]
    BuilderFlag: type[trt.BuilderFlag]
    DataType: type[trt.DataType]
    Dims: type[trt.Dims]
    ExecutionContextAllocationStrategy: type[trt.ExecutionContextAllocationStrategy]
    ILogger: type[trt.ILogger]
    IOutputAllocator: type[trt.IOutputAllocator]
    IProfiler: type[trt.IProfiler]
    IProgressMonitor: type[trt.IProgressMonitor]
    LayerInformationFormat: type[trt.LayerInformationFormat]
    MemoryPoolType: type[trt.MemoryPoolType]
    NetworkDefinitionCreationFlag: type[trt.NetworkDefinitionCreationFlag]
    OnnxParser: type[trt.OnnxParser]
    ProfilingVerbosity: type[trt.ProfilingVerbosity]
    Runtime: type[trt.Runtime]
    TensorIOMode: type[trt.TensorIOMode]
    TensorLocation: type[trt.TensorLocation]

    # The stubs declare ``logger: capsule`` (pybind11's ``void*``, which takes
    # any ILogger); ``Any`` here documents that the real call accepts ours.
    def init_libnvinfer_plugins(self, logger: Any, namespace: str) -> bool: ...


class RtxRuntimeConfig(Protocol):
    """``IRuntimeConfig`` of TensorRT-RTX (TensorRT 10.13 lacks these two)."""

    dynamic_shapes_kernel_specialization_strategy: Any
    cuda_graph_strategy: Any


class RtxExecutionContext(Protocol):
    """TensorRT-RTX's ``IExecutionContext.is_stream_capturable`` (RTX >= 1.2)."""

    def is_stream_capturable(self, stream: int) -> bool: ...


class RtxRuntime(Protocol):
    """TensorRT-RTX's ``Runtime.get_engine_validity``: ``(EngineValidity, diagnostics bits)``."""

    def get_engine_validity(self, buffer: bytes) -> tuple[Any, int]: ...


__all__ = ["RtxExecutionContext", "RtxRuntime", "RtxRuntimeConfig", "TrtModule"]
