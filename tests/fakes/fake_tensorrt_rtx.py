"""FakeTensorRT-RTX: the TensorRT-RTX 1.7 flavour of :mod:`fake_tensorrt`.

Same double, with what TensorRT-RTX does differently (checked against the real
``tensorrt_rtx`` module by ``tests/trt/test_fake_surface.py``): RTX plan magic
and version, RTX ``BuilderFlag`` values (no weak-typing flags,
``REQUIRE_USER_ALLOCATION``), ``Runtime.get_engine_validity``,
``IRuntimeConfig`` with the CUDA-graph and dynamic-shape kernel strategies,
and ``IExecutionContext.is_stream_capturable``: False for engines built without
``REQUIRE_USER_ALLOCATION`` or with data-dependent outputs, and an enqueue
under stream capture then fails, as NVIDIA documents. A dynamic-shape context
that is not EAGER runs fallback kernels first: the double records which kind
each enqueue ran (``enqueues[i]["kernels"]``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from . import fake_tensorrt as _base
from .fake_tensorrt import (  # noqa: F401 - re-exported: the RTX module has the same names
    AllocatorFlag,
    DataType,
    Dims,
    EngineInspector,
    ExecutionContextAllocationStrategy,
    ILogger,
    IOutputAllocator,
    IProfiler,
    IProgressMonitor,
    LayerInformationFormat,
    Logger,
    ProfilingVerbosity,
    TensorIOMode,
    TensorLocation,
)

__version__ = "1.7.1.116"

FAKE_HELPERS = ("FAKE_HELPERS", "MAGIC", "SERIALIZATION_VERSION", "make_plan", "reset_plugin_registry")

MAGIC = b"vtrt"
SERIALIZATION_VERSION = 2


class BuilderFlag(enum.IntEnum):
    """TensorRT-RTX 1.7's values."""

    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 4
    DISABLE_TIMING_CACHE = 5
    TF32 = 6
    SPARSE_WEIGHTS = 7
    SAFETY_SCOPE = 8
    DIRECT_IO = 11
    VERSION_COMPATIBLE = 12
    EXCLUDE_LEAN_RUNTIME = 13
    ERROR_ON_TIMING_CACHE_MISS = 15
    DISABLE_COMPILATION_CACHE = 17
    STRIP_PLAN = 18
    REFIT_IDENTICAL = 19
    WEIGHT_STREAMING = 20
    REFIT_INDIVIDUAL = 22
    STRICT_NANS = 23
    MONITOR_MEMORY = 24
    EDITABLE_TIMING_CACHE = 26
    DISTRIBUTIVE_INDEPENDENCE = 27
    REQUIRE_USER_ALLOCATION = 28


class EngineValidity(enum.IntEnum):
    VALID = 0
    SUBOPTIMAL = 1
    INVALID = 2


class EngineInvalidityDiagnostics(enum.IntEnum):
    VERSION_MISMATCH = 1
    UNSUPPORTED_CC = 2
    OLD_CUDA_DRIVER = 4
    OLD_CUDA_RUNTIME = 8
    INSUFFICIENT_GPU_MEMORY = 16
    MALFORMED_ENGINE = 32
    CUDA_ERROR = 64


class CudaGraphStrategy(enum.IntEnum):
    DISABLED = 0
    WHOLE_GRAPH_CAPTURE = 1


class DynamicShapesKernelSpecializationStrategy(enum.IntEnum):
    LAZY = 0
    EAGER = 1
    NONE = 2


class EngineStat(enum.IntEnum):
    TOTAL_WEIGHTS_SIZE = 0
    STRIPPED_WEIGHTS_SIZE = 1


class IGpuAllocator(_base._GpuAllocatorCore):
    """TensorRT-RTX dropped the deprecated ``allocate``/``deallocate`` from the
    class, yet its library still calls a Python subclass's methods of those
    names (observed on 1.7: the base ``allocate_async`` reaches a subclass's
    ``allocate``, and says "Method: allocate was not overriden" without one)."""

    _binding = "tensorrt_rtx_bindings.tensorrt_rtx.IGpuAllocator"
    _swapped_async_args = False


class IGpuAsyncAllocator(IGpuAllocator):
    _binding = "tensorrt_rtx_bindings.tensorrt_rtx.IGpuAsyncAllocator"
    _async = True


class IRuntimeConfig(_base.IRuntimeConfig):
    def __init__(self) -> None:
        super().__init__()
        self.cuda_graph_strategy = CudaGraphStrategy.DISABLED
        self.dynamic_shapes_kernel_specialization_strategy = DynamicShapesKernelSpecializationStrategy.LAZY


class ICudaEngine(_base.ICudaEngine):
    def get_engine_stat(self, stat: EngineStat = EngineStat.TOTAL_WEIGHTS_SIZE) -> int:
        """Weights in bytes; -1 for STRIPPED_WEIGHTS_SIZE of an engine that is not stripped."""
        if EngineStat(int(stat)) == EngineStat.STRIPPED_WEIGHTS_SIZE:
            return -1
        return int(self._body.get("weights", 0))


class IExecutionContext(_base.IExecutionContext):
    def __init__(self, engine: ICudaEngine, runtime_config: Any = None) -> None:
        super().__init__(engine, runtime_config)
        self._specialized: set[tuple[Any, ...]] = set()

    def _specialization(self) -> DynamicShapesKernelSpecializationStrategy:
        config = self._runtime_config
        if config is None:
            return DynamicShapesKernelSpecializationStrategy.LAZY
        return config.dynamic_shapes_kernel_specialization_strategy

    def _capture_problem(self) -> str | None:
        if not self._engine._body.get("user_allocation", True):
            return "the engine was built without REQUIRE_USER_ALLOCATION and may allocate at run time"
        return super()._capture_problem()

    def is_stream_capturable(self, stream: int) -> bool:
        return self._capture_problem() is None

    def execute_async_v3(self, stream_handle: int) -> bool:
        # Dynamic shapes: LAZY runs a fallback kernel while the specialized one
        # compiles (ready from the next enqueue); EAGER compiles it first.
        dynamic = any(min(t["shape"]) < 0 for t in self._inputs() if not t.get("shape_tensor"))
        key = tuple(sorted(self._shapes.items()))
        strategy = self._specialization()
        if not dynamic:
            kernels = "static"
        elif strategy == DynamicShapesKernelSpecializationStrategy.NONE:
            kernels = "fallback"
        elif strategy == DynamicShapesKernelSpecializationStrategy.EAGER or key in self._specialized:
            kernels = "specialized"
        else:
            kernels = "fallback"
        if dynamic and strategy != DynamicShapesKernelSpecializationStrategy.NONE:
            self._specialized.add(key)
        ok = super().execute_async_v3(stream_handle)
        self.enqueues[-1]["kernels"] = kernels
        return ok


class Runtime(_base.Runtime):
    def get_engine_validity(self, buffer: bytes) -> tuple:
        """``(EngineValidity, diagnostics bits)``, as TensorRT-RTX reports them."""
        body, error = self._header(bytes(buffer))
        if body is None:
            bits = EngineInvalidityDiagnostics.VERSION_MISMATCH if "Version" in str(error) else EngineInvalidityDiagnostics.MALFORMED_ENGINE
            _base._log(self._logger, "The engine header does not conform to the expected format for TensorRT-RTX.",
                       ILogger.Severity.INFO)
            return EngineValidity.INVALID, int(bits)
        here = _base._device_cc()
        if here is None:
            _base._log(self._logger, "Error reading CUDA GPU properties: In getCurrentCC (cudaError 35: CUDA driver "
                       "version is insufficient for CUDA runtime version)", ILogger.Severity.INTERNAL_ERROR)
            return EngineValidity.INVALID, 0
        if body.get("cc") and tuple(body["cc"]) != here:
            return EngineValidity.INVALID, int(EngineInvalidityDiagnostics.UNSUPPORTED_CC)
        return EngineValidity.VALID, 0


RTX = _base._Flavor(version=__version__, magic=MAGIC, serialization=SERIALIZATION_VERSION, rtx=True,
                    engine_cls=ICudaEngine, context_cls=IExecutionContext, runtime_config_cls=IRuntimeConfig,
                    allocator_cls=IGpuAllocator)
Runtime._flavor = RTX


def make_plan(io: Sequence[dict[str, Any]], layers: Sequence[tuple[str, float]] = (("fake_layer_0", 50.0),),
              version: str | None = None, compute_capability: tuple[int, int] | None = None,
              device_memory: int = 1 << 20, **kw: Any) -> bytes:
    """A fake TensorRT-RTX plan (see :func:`fake_tensorrt.make_plan`)."""
    return _base._make_plan(RTX, io, layers, version, compute_capability, device_memory, **kw)


def reset_plugin_registry() -> None:
    """Test helper: as if ``init_libnvinfer_plugins`` was never called."""
    RTX.plugins["initialized"] = False


def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
    RTX.plugins["initialized"] = True
    return True

