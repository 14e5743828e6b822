"""FakeTensorRT: the execution side of the ``tensorrt`` module (TensorRT 10.13), for tests.

Used only where nothing real is reachable: *executing* an engine on a GPU
(TensorRT-RTX refuses the Hopper GPUs of our GPU machine, full TensorRT is not
installable here), and the entries of a timing cache (``ITimingCache``,
``IBuilderConfig``'s timing-cache methods: TensorRT-RTX's cache is a no-op
that never holds one, so only this double shows a merge keeping them).
Building stays real (TensorRT-RTX in the venv).
``fake_tensorrt_rtx`` is the TensorRT-RTX flavour of the same double.

It follows the real API, and ``tests/trt/test_fake_surface.py`` holds it to
that: every public name, signature and enum value here must exist in
``tensorrt-stubs`` (TensorRT 10.13) or, for the RTX flavour, in the installed
``tensorrt_rtx`` module. It refuses what the real library refuses:

* ``Runtime.deserialize_cuda_engine`` checks the magic tag and the
  serialization version (TensorRT 10's message), then needs a GPU: without one
  it logs cudaError 35 and returns None, as the real runtime does; then the
  compute capability, TensorRT plugins (``init_libnvinfer_plugins`` first) and
  host code (``engine_host_code_allowed``).
* Read-only properties are read-only; ``nvtx_verbosity`` cannot be raised above
  the engine's build verbosity; the weight-streaming budget cannot change while
  execution contexts exist; ``set_tensor_address`` refuses unknown names and
  device pointers not 256-byte aligned; ``set_optimization_profile_async``
  raises (the binding turns False into RuntimeError); an enqueue under stream
  capture fails for data-dependent outputs; ``report_to_profiler`` returns
  False during capture.

A fake plan is the flavour's magic + JSON made by :func:`make_plan`. On a GPU,
``execute_async_v3`` launches one real kernel per layer on the given stream
(compiled with NVRTC through cuda.bindings, or cupy as a fallback); each kernel
copies input bytes to the first output and spins for the layer's duration on
the GPU's global timer, so graph capture, events and throughput are real CUDA.
"""

from __future__ import annotations

import ctypes
import enum
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__version__ = "10.13.0.35"

#: Names that exist only in the double (helpers for tests), never compared.
FAKE_HELPERS = ("FAKE_HELPERS", "MAGIC", "SERIALIZATION_VERSION", "CACHE_MAGIC", "make_plan", "record_timings",
                "reset_plugin_registry")

MAGIC = b"ftrt"
#: TensorRT 10.13's serialization tag (plans of other versions carry another).
SERIALIZATION_VERSION = 239


# --------------------------------------------------------------------- enums
class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10
    E8M0 = 11


_ITEMSIZE = {"FLOAT": 4, "HALF": 2, "INT8": 1, "INT32": 4, "BOOL": 1, "UINT8": 1, "FP8": 1, "BF16": 2, "INT64": 8}


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class TensorLocation(enum.IntEnum):
    DEVICE = 0
    HOST = 1


class LayerInformationFormat(enum.IntEnum):
    ONELINE = 0
    JSON = 1


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


#: How much NVTX each verbosity emits (NONE < LAYER_NAMES_ONLY < DETAILED).
_NVTX_LEVEL = {ProfilingVerbosity.NONE: 0, ProfilingVerbosity.LAYER_NAMES_ONLY: 1, ProfilingVerbosity.DETAILED: 2}


class ExecutionContextAllocationStrategy(enum.IntEnum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


class BuilderFlag(enum.IntEnum):
    """TensorRT 10.13's values (``WEIGHTLESS`` and ``STRIP_PLAN`` are one flag)."""

    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 4
    DISABLE_TIMING_CACHE = 5
    TF32 = 6
    SPARSE_WEIGHTS = 7
    SAFETY_SCOPE = 8
    OBEY_PRECISION_CONSTRAINTS = 9
    PREFER_PRECISION_CONSTRAINTS = 10
    DIRECT_IO = 11
    REJECT_EMPTY_ALGORITHMS = 12
    VERSION_COMPATIBLE = 13
    EXCLUDE_LEAN_RUNTIME = 14
    FP8 = 15
    ERROR_ON_TIMING_CACHE_MISS = 16
    BF16 = 17
    DISABLE_COMPILATION_CACHE = 18
    WEIGHTLESS = 19
    STRIP_PLAN = 19
    REFIT_IDENTICAL = 20
    WEIGHT_STREAMING = 21
    INT4 = 22
    REFIT_INDIVIDUAL = 23
    STRICT_NANS = 24
    MONITOR_MEMORY = 25
    FP4 = 26
    EDITABLE_TIMING_CACHE = 27
    DISTRIBUTIVE_INDEPENDENCE = 28


class Dims(tuple):
    """``trt.Dims``: iterable, indexable, ``len``."""


# ----------------------------------------------------------------- interfaces
class ILogger:
    """Abstract: TensorRT calls ``log`` for every message (no ``min_severity``)."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    INTERNAL_ERROR = Severity.INTERNAL_ERROR
    ERROR = Severity.ERROR
    WARNING = Severity.WARNING
    INFO = Severity.INFO
    VERBOSE = Severity.VERBOSE

    def __init__(self) -> None:
        pass

    def log(self, severity: ILogger.Severity, msg: str) -> None:  # pragma: no cover - overridden
        pass


class Logger(ILogger):
    """The library's own logger: prints messages at or above ``min_severity``."""

    def __init__(self, min_severity: ILogger.Severity = ILogger.Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        if int(severity) <= int(self.min_severity):
            print(f"[TRT] {msg}")


class IProfiler:
    def __init__(self) -> None:
        pass

    def report_layer_time(self, layer_name: str, ms: float) -> None:  # pragma: no cover - overridden
        pass


class IOutputAllocator:
    def __init__(self) -> None:
        pass


# ------------------------------------------------------------ GPU allocators
class AllocatorFlag(enum.IntEnum):
    RESIZABLE = 0


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_capsule_get = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get.restype = ctypes.c_void_p
_capsule_get.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _to_capsule(ptr: int) -> Any:
    """A ``void*`` as pybind11 returns it: None for null, else an unnamed capsule."""
    return _capsule_new(ptr, None, None) if ptr else None


def _from_capsule(obj: Any, what: str) -> int:
    """A ``void*`` argument: pybind11 takes a capsule (or None), never an int."""
    if obj is None:
        return 0
    if type(obj).__name__ != "PyCapsule":
        raise TypeError(f"{what}(): incompatible function arguments. The following argument types are supported:"
                        f"\n    1. (self, memory: typing_extensions.CapsuleType, ...)\n\nInvoked with: {obj!r}")
    return int(_capsule_get(obj, None) or 0)


def _override(allocator: Any, name: str) -> Any:
    """pybind11's ``get_override``: the Python method ``name`` of a subclass,
    None when only the binding's own method is there."""
    for klass in type(allocator).__mro__:
        if name in vars(klass):
            return None if klass.__module__.startswith("tests.fakes.") else getattr(allocator, name)
    return None


def _library_allocate(allocator: Any, size: int, alignment: int = 256, flags: int = 0, stream: int = 0) -> int:
    """How the library asks an application allocator for memory (the binding's
    trampoline, TensorRT ``python/src/infer/pyCore.cpp``): an ``IGpuAllocator``
    subclass through its Python ``allocate(size, alignment, flags)`` (the
    default ``allocateAsync`` calls the deprecated synchronous method), an
    ``IGpuAsyncAllocator`` subclass through ``allocate_async``; TensorRT 10.13
    passes that one ``(size, alignment, stream, flags)``, TensorRT-RTX 1.7 the
    documented order (observed). Anything but an int is an error on stderr and
    a null pointer."""
    if getattr(allocator, "_async", False):
        name = "allocate_async"
        args: tuple[int, ...] = ((size, alignment, stream, flags) if allocator._swapped_async_args
                                 else (size, alignment, flags, stream))
    else:
        name, args = "allocate", (size, alignment, flags)
    fn = _override(allocator, name)
    if fn is None:
        print(f"Method: {name} was not overriden. Please provide an implementation for this method.", file=sys.stderr)
        return 0
    try:
        ptr = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the binding catches everything
        print(f"[ERROR] Exception caught in allocate(): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 0
    if isinstance(ptr, float) or not hasattr(ptr, "__index__") or int(ptr) < 0:
        print("[ERROR] Return value of allocate() could not be interpreted as an int", file=sys.stderr)
        return 0
    return int(ptr)


def _library_reallocate(allocator: Any, address: int, alignment: int, new_size: int) -> int:
    fn = _override(allocator, "reallocate")
    if fn is None:
        print("Method: reallocate was not overriden. Please provide an implementation for this method.",
              file=sys.stderr)
        return 0
    try:
        ptr = fn(address, alignment, new_size)
    except Exception as exc:  # noqa: BLE001
        print(f"[ERROR] Exception caught in allocate(): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 0
    if isinstance(ptr, float) or not hasattr(ptr, "__index__") or int(ptr) < 0:
        print("[ERROR] Return value of allocate() could not be interpreted as an int", file=sys.stderr)
        return 0
    return int(ptr)


def _library_deallocate(allocator: Any, memory: int, stream: int = 0) -> bool:
    """How the library releases memory: Python ``deallocate(memory)`` of an
    ``IGpuAllocator`` subclass, ``deallocate_async(memory, stream)`` of an
    ``IGpuAsyncAllocator`` one, the address as an int; the result must convert
    to bool (None is False; a str is an error on stderr and False)."""
    name, args = (("deallocate_async", (memory, stream)) if getattr(allocator, "_async", False)
                  else ("deallocate", (memory,)))
    fn = _override(allocator, name)
    if fn is None:
        print(f"Method: {name} was not overriden. Please provide an implementation for this method.", file=sys.stderr)
        return False
    try:
        status = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a Python error: its type and message
        print(f"[ERROR] Exception caught in deallocate(): {type(exc).__name__}: {exc}", file=sys.stderr)
        return False
    if status is not None and not isinstance(status, (bool, int, float)):  # pybind11's cast_error: no type name
        print(f"[ERROR] Exception caught in deallocate(): Unable to cast Python instance of type {type(status)} to "
              "C++ type '?'", file=sys.stderr)
        return False
    return bool(status)


class _AllocatorMeta(type):
    """pybind11 refuses a subclass instance whose ``__init__`` did not call the base's."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        if not getattr(obj, "_initialized", False):
            raise TypeError(f"{cls._binding}.__init__() must be called when overriding __init__")
        return obj


class _GpuAllocatorCore(metaclass=_AllocatorMeta):
    """What ``IGpuAllocator`` has in both libraries. Its methods are the
    binding's: called from Python they go through the library (a subclass's
    Python override, found by name) and return a capsule (or None)."""

    _binding = "tensorrt_bindings.tensorrt.IGpuAllocator"
    _async = False
    _swapped_async_args = True

    def __init__(self) -> None:
        self._initialized = True

    def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> Any:
        return _to_capsule(_library_allocate(self, int(size), int(alignment), int(flags), int(stream)))

    def deallocate_async(self, memory: Any, stream: int) -> bool:
        return _library_deallocate(self, _from_capsule(memory, "deallocate_async"), int(stream))

    def reallocate(self, address: Any, alignment: int, new_size: int) -> Any:
        return _to_capsule(_library_reallocate(self, _from_capsule(address, "reallocate"), int(alignment),
                                               int(new_size)))


class IGpuAllocator(_GpuAllocatorCore):
    """TensorRT 10.13 keeps the deprecated synchronous methods."""

    def allocate(self, size: int, alignment: int, flags: int) -> Any:
        return _to_capsule(_library_allocate(self, int(size), int(alignment), int(flags)))

    def deallocate(self, memory: Any) -> bool:
        return _library_deallocate(self, _from_capsule(memory, "deallocate"))


class IGpuAsyncAllocator(IGpuAllocator):
    _binding = "tensorrt_bindings.tensorrt.IGpuAsyncAllocator"
    _async = True

    def __init__(self) -> None:
        super().__init__()


class IProgressMonitor:
    def __init__(self) -> None:
        pass

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:  # pragma: no cover
        pass

    def step_complete(self, phase_name: str, step: int) -> bool:  # pragma: no cover
        return True

    def phase_finish(self, phase_name: str) -> None:  # pragma: no cover
        pass


def _log(logger: Any, msg: str, severity: ILogger.Severity = ILogger.Severity.ERROR) -> None:
    if logger is not None:
        logger.log(severity, msg)


# ------------------------------------------------------------------ flavours
@dataclass
class _Flavor:
    """What differs between TensorRT 10 and TensorRT-RTX in the double."""

    version: str
    magic: bytes
    serialization: int
    rtx: bool
    engine_cls: Any = None
    context_cls: Any = None
    runtime_config_cls: Any = None
    allocator_cls: Any = None
    #: Plugin registry state of this library in this process.
    plugins: dict[str, Any] = field(default_factory=lambda: {"initialized": False})


def _make_plan(
    flavor: _Flavor,
    io: Sequence[dict[str, Any]],
    layers: Sequence[tuple[str, float]] = (("fake_layer_0", 50.0),),
    version: str | None = None,
    compute_capability: tuple[int, int] | None = None,
    device_memory: int = 1 << 20,
    *,
    profiling_verbosity: str = "DETAILED",
    streamable_weights: int = 0,
    plugins: Sequence[str] = (),
    host_code: bool = False,
    user_allocation: bool = True,
    weights: int = 64 << 10,
    profile_memory: Sequence[int] | None = None,
) -> bytes:
    body = {
        "version": version or flavor.version,
        "serialization": flavor.serialization if version in (None, flavor.version) else flavor.serialization - 1,
        "cc": list(compute_capability) if compute_capability else None,
        "io": list(io),
        "layers": [list(layer) for layer in layers],
        "device_memory": device_memory,
        "profiling_verbosity": profiling_verbosity,
        "streamable_weights": int(streamable_weights),
        "plugins": list(plugins),
        "host_code": bool(host_code),
        "user_allocation": bool(user_allocation),
        "weights": int(weights),
        "profile_memory": list(profile_memory) if profile_memory is not None else None,
    }
    return flavor.magic + json.dumps(body).encode()


def make_plan(io: Sequence[dict[str, Any]], layers: Sequence[tuple[str, float]] = (("fake_layer_0", 50.0),),
              version: str | None = None, compute_capability: tuple[int, int] | None = None,
              device_memory: int = 1 << 20, **kw: Any) -> bytes:
    """A fake serialized engine of this library.

    ``io``: dicts with ``name``, ``mode`` ("input"/"output"), ``dtype`` (DataType
    member name), ``shape`` (-1 = dynamic), ``profiles`` (inputs: one [min, opt,
    max] per optimization profile; for a shape tensor, its *values*),
    ``shape_tensor`` (inputs whose values are a shape, read from host memory),
    and for outputs ``data_dependent`` (shape known only after execution) or
    ``shape_from`` (the shape tensor input whose values are its shape).
    ``layers``: (name, microseconds per inference at batch 1). Keywords:
    ``profiling_verbosity``, ``streamable_weights`` (bytes), ``plugins`` (TensorRT
    plugin names it needs), ``host_code`` (version-compatible lean runtime),
    ``user_allocation`` (TensorRT-RTX ``REQUIRE_USER_ALLOCATION``), ``weights``
    (bytes the engine keeps on the device), ``profile_memory`` (context memory
    per optimization profile; default ``device_memory`` for each). With a
    ``gpu_allocator`` on the runtime, deserializing asks it for the weights and
    each execution context for its memory (STATIC: ``device_memory``, the
    largest profile's; ON_PROFILE_CHANGE: the selected profile's;
    USER_MANAGED: nothing), released when the object goes away.
    """
    return _make_plan(TRT10, io, layers, version, compute_capability, device_memory, **kw)


def reset_plugin_registry() -> None:
    """Test helper: as if ``init_libnvinfer_plugins`` was never called."""
    TRT10.plugins["initialized"] = False


def init_libnvinfer_plugins(logger: Any, namespace: str) -> bool:
    """Register TensorRT's plugins (idempotent, as the real one)."""
    TRT10.plugins["initialized"] = True
    return True


# ---------------------------------------------------------------- timing cache
#: A serialized fake timing cache starts with this, then JSON (real ones: ``ptrtd``).
CACHE_MAGIC = b"ftcache"


def _cache_device() -> list[int] | None:
    """The device property a cache header records: the GPU's compute capability."""
    cc = _device_cc()
    return list(cc) if cc is not None else None


class ITimingCache:
    """Tactic timings builds collected, ``{key: value}``, under a header that
    names the library version and the device. As the real cache: ``combine``
    appends the input's entries and skips keys already here (conflicts keep
    the local value); a cache of another library version is not combined
    (False), one of another device only with ``ignore_mismatch``."""

    def __init__(self, version: str, device: list[int] | None, entries: dict[str, float] | None = None) -> None:
        self._version = version
        self._device = device
        self._entries: dict[str, float] = dict(entries or {})

    def combine(self, input_cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not isinstance(input_cache, ITimingCache):
            raise TypeError("combine(): incompatible function arguments")  # pybind11's refusal
        if input_cache._version != self._version:
            return False
        if input_cache._device != self._device and not ignore_mismatch:
            return False
        for key, value in input_cache._entries.items():
            self._entries.setdefault(key, value)
        return True

    def serialize(self) -> bytes:
        """The real one returns an ``IHostMemory``; ``bytes()`` reads both alike."""
        return CACHE_MAGIC + json.dumps({"version": self._version, "device": self._device,
                                         "entries": self._entries}, sort_keys=True).encode()

    def queryKeys(self) -> list[str]:  # noqa: N802 - the real name
        """The real keys are ``TimingCacheKey`` objects; here their text."""
        return sorted(self._entries)

    def reset(self) -> bool:
        self._entries.clear()
        return True


class IBuilderConfig:
    """The timing-cache part of ``IBuilderConfig`` (the double does not build:
    building is real, with TensorRT-RTX)."""

    def __init__(self) -> None:
        self._timing_cache: ITimingCache | None = None

    def create_timing_cache(self, serialized_timing_cache: Any) -> ITimingCache | None:
        """``b""``: a new, empty cache. Bytes that are not a cache: None (the
        real builder logs an error and returns a null cache)."""
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache(__version__, _cache_device())
        if not data.startswith(CACHE_MAGIC):
            return None
        try:
            body = json.loads(data[len(CACHE_MAGIC):])
            return ITimingCache(str(body["version"]), body["device"], {str(k): float(v)
                                                                       for k, v in body["entries"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        """Attach ``cache`` (shared, not copied, as the real config does);
        False for another library version, or another device unless
        ``ignore_mismatch``."""
        if not isinstance(cache, ITimingCache):
            raise TypeError("set_timing_cache(): incompatible function arguments")
        if cache._version != __version__ or (cache._device != _cache_device() and not ignore_mismatch):
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._timing_cache


def record_timings(config: IBuilderConfig, keys: Sequence[str]) -> None:
    """Test helper: what a build does to the config's timing cache, one
    entry per layer it timed (a key timed before keeps its value)."""
    cache = config.get_timing_cache()
    if cache is not None:
        for i, key in enumerate(keys):
            cache._entries.setdefault(key, float(i + 1))


# -------------------------------------------------------------------- runtime
class Runtime:
    _flavor: _Flavor

    def __init__(self, logger: ILogger) -> None:
        self._logger = logger
        self._host_code = False
        self._allocator: Any = None

    @property
    def logger(self) -> ILogger:
        return self._logger

    @property
    def engine_host_code_allowed(self) -> bool:
        return self._host_code

    @engine_host_code_allowed.setter
    def engine_host_code_allowed(self, value: bool) -> None:
        self._host_code = bool(value)

    def _set_gpu_allocator(self, allocator: Any) -> None:
        """Write-only, as in the binding (``def_property(..., nullptr, setter)``,
        which keeps the allocator alive); None restores the default allocator."""
        if allocator is not None and not isinstance(allocator, self._flavor.allocator_cls):
            raise TypeError("(): incompatible function arguments. The following argument types are supported:\n"
                            f"    1. (arg0: Runtime, arg1: IGpuAllocator) -> None\n\nInvoked with: {self!r}, "
                            f"{allocator!r}")
        self._allocator = allocator

    def _header(self, data: bytes) -> tuple[dict[str, Any] | None, str | None]:
        """The plan's body, or the error the real runtime logs for its header."""
        flavor = self._flavor
        if data[:4] != flavor.magic:
            return None, ("IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                          "magicTagRead == kMAGIC_TAG failed.Magic tag does not match)")
        try:
            body = json.loads(data[4:])
        except ValueError:
            return None, ("IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                          "size == expectedSize failed.)")
        if body.get("serialization") != flavor.serialization:
            return None, ("IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                          "stdVersionRead == kSERIALIZATION_VERSION failed.Version tag does not match. Note: Current "
                          f"Version: {flavor.serialization}, Serialized Engine Version: {body.get('serialization')})")
        return body, None

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        flavor = self._flavor
        body, error = self._header(bytes(serialized_engine))
        if body is None:
            _log(self._logger, str(error))
            return None
        here = _device_cc()
        if here is None:
            _log(self._logger, "IRuntime::deserializeCudaEngine: Error Code 1: Cuda Runtime (In ScopedCudaStream at "
                 "common/dispatch/cudaResources.cpp:25 (cudaError 35: CUDA driver version is insufficient for CUDA "
                 "runtime version))")
            return None
        if body.get("cc") and tuple(body["cc"]) != here:
            _log(self._logger, "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file "
                 f"is generated on an incompatible device, expecting compute {here[0]}.{here[1]} got compute "
                 f"{body['cc'][0]}.{body['cc'][1]}, please rebuild.)")
            return None
        for plugin in body.get("plugins", ()):
            if not flavor.plugins["initialized"]:
                _log(self._logger, f"IPluginRegistry::getCreator: Error Code 4: API Usage Error (Cannot find plugin: "
                     f"{plugin}, version: 1, namespace:.) Plugin creator not found")
                return None
        if body.get("host_code") and not self._host_code:
            # Wording approximated: the real runtime refuses and names host code.
            _log(self._logger, "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine contains "
                 "host code (lean runtime); set engine_host_code_allowed to load it)")
            return None
        weights = _device_allocate(self._allocator, int(body.get("weights", 0)), self._logger,
                                   "IRuntime::deserializeCudaEngine")
        if weights is None:
            return None
        return flavor.engine_cls(body, self._logger, flavor, runtime=self, weights=weights)


# --------------------------------------------------------------------- engine
class IRuntimeConfig:
    def __init__(self) -> None:
        self._strategy = ExecutionContextAllocationStrategy.STATIC

    def get_execution_context_allocation_strategy(self) -> ExecutionContextAllocationStrategy:
        return self._strategy

    def set_execution_context_allocation_strategy(
        self, strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC
    ) -> None:
        self._strategy = strategy


def _device_allocate(allocator: Any, size: int, logger: Any, where: str) -> int | None:
    """Device memory from the application's allocator (0 without one, or for
    nothing); None after logging an out-of-memory error (wording approximated)."""
    if allocator is None or size <= 0:
        return 0
    ptr = _library_allocate(allocator, size)
    if not ptr:
        _log(logger, f"{where}: Error Code 2: OutOfMemory (Requested size was {size} bytes.)")
        return None
    return ptr


class ICudaEngine:
    def __init__(self, body: dict[str, Any], logger: Any, flavor: _Flavor, runtime: Any = None,
                 weights: int = 0) -> None:
        # Keeps the runtime (and its allocator) alive, as the binding's keep_alive does.
        self._runtime = runtime
        self._allocator = runtime._allocator if runtime is not None else None
        self._weights_ptr = weights
        self._body = body
        self._flavor = flavor
        self._io = {t["name"]: t for t in body["io"]}
        self._names = [t["name"] for t in body["io"]]
        self._logger = logger
        self._contexts = 0
        streamable = int(body.get("streamable_weights", 0))
        self._budget = streamable
        inputs = [t for t in body["io"] if t["mode"] == "input"]
        self._n_profiles = max([len(t.get("profiles", ())) for t in inputs] + [1])

    # read-only properties, as in the binding
    @property
    def name(self) -> str:
        return "fake_engine"

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    @property
    def num_layers(self) -> int:
        return len(self._body["layers"])

    @property
    def num_optimization_profiles(self) -> int:
        return self._n_profiles

    @property
    def device_memory_size_v2(self) -> int:
        return int(self._body["device_memory"])

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        per_profile = self._body.get("profile_memory")
        if per_profile is None:
            return self.device_memory_size_v2
        return int(per_profile[int(profile_index)])

    def __del__(self) -> None:
        if getattr(self, "_weights_ptr", 0) and self._allocator is not None:
            _library_deallocate(self._allocator, self._weights_ptr)
            self._weights_ptr = 0

    @property
    def profiling_verbosity(self) -> ProfilingVerbosity:
        return ProfilingVerbosity[self._body.get("profiling_verbosity", "DETAILED")]

    @property
    def streamable_weights_size(self) -> int:
        return int(self._body.get("streamable_weights", 0))

    @property
    def weight_streaming_budget_v2(self) -> int:
        return self._budget

    @weight_streaming_budget_v2.setter
    def weight_streaming_budget_v2(self, value: int) -> None:
        if self._contexts:
            _log(self._logger, "ICudaEngine::setWeightStreamingBudgetV2: Error Code 3: API Usage Error (The weight "
                 "streaming budget cannot be modified while there are active IExecutionContexts.)")
            return
        if int(value) < 0:
            _log(self._logger, "ICudaEngine::setWeightStreamingBudgetV2: Error Code 3: API Usage Error (budget must be >= 0)")
            return
        self._budget = int(value)

    def get_weight_streaming_automatic_budget(self) -> int:
        return self.streamable_weights_size // 2

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        t = self._io.get(name)
        if t is None:
            return TensorIOMode.NONE
        return TensorIOMode.INPUT if t["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self._io[name]["dtype"]]

    def get_tensor_shape(self, name: str) -> Dims:
        return Dims(self._io[name]["shape"])

    def get_tensor_location(self, name: str) -> TensorLocation:
        t = self._io[name]
        return TensorLocation.HOST if t.get("shape_tensor") else TensorLocation.DEVICE

    def is_shape_inference_io(self, name: str) -> bool:
        return bool(self._io[name].get("shape_tensor"))

    def _profile(self, name: str, index: int) -> list[list[int]]:
        t = self._io[name]
        profiles = t.get("profiles") or [[t["shape"]] * 3] * self._n_profiles
        return profiles[index]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        return [Dims(s) for s in self._profile(name, profile_index)]

    def get_tensor_profile_values(self, name: int, profile_index: str) -> list[list[int]]:
        """The binding's labels are swapped: it takes (profile_index, name)."""
        index, tensor = int(name), str(profile_index)
        if not self._io[tensor].get("shape_tensor"):
            raise RuntimeError(f"{tensor} is not an input shape binding")
        return [list(v) for v in self._profile(tensor, index)]

    def create_runtime_config(self) -> Any:
        return self._flavor.runtime_config_cls()

    def create_execution_context(self, *args: Any, **kwargs: Any) -> IExecutionContext:
        """Overloads: ``(strategy=STATIC)`` or ``(runtime_config=None)``."""
        config = kwargs.get("runtime_config", args[0] if args else None)
        if not isinstance(config, IRuntimeConfig):
            strategy = kwargs.get("strategy", config if config is not None else ExecutionContextAllocationStrategy.STATIC)
            if not isinstance(strategy, ExecutionContextAllocationStrategy):
                raise TypeError("create_execution_context(): incompatible function arguments")
            config = None
        else:
            strategy = config.get_execution_context_allocation_strategy()
        strategy = ExecutionContextAllocationStrategy(int(strategy))
        size = {ExecutionContextAllocationStrategy.STATIC: self.device_memory_size_v2,
                ExecutionContextAllocationStrategy.ON_PROFILE_CHANGE: self.get_device_memory_size_for_profile_v2(0),
                }.get(strategy, 0)
        memory = _device_allocate(self._allocator, size, self._logger, "ICudaEngine::createExecutionContext")
        if memory is None:
            return None  # type: ignore[return-value]
        self._contexts += 1
        context = self._flavor.context_cls(self, config)
        context._memory = memory
        context._strategy = strategy
        return context

    def create_engine_inspector(self) -> EngineInspector:
        return EngineInspector(self)


class EngineInspector:
    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self.execution_context: Any = None

    def _layers(self) -> list[Any]:
        verbosity = self._engine.profiling_verbosity
        body = self._engine._body
        if verbosity == ProfilingVerbosity.NONE:
            return []
        if verbosity == ProfilingVerbosity.LAYER_NAMES_ONLY:
            return [name for name, _us in body["layers"]]
        return [{"Name": name, "LayerType": "FakeKernel", "TacticName": "fake_spin", "Duration_us": us}
                for name, us in body["layers"]]

    def _io_section(self) -> dict[str, Any]:
        engine = self._engine
        if not engine._flavor.rtx:  # TensorRT 10's schema
            return {"Bindings": list(engine._names)}
        return {"I/O Tensors": [  # TensorRT 11 / RTX schema
            {"Name": t["name"], "IOMode": "Input" if t["mode"] == "input" else "Output", "DataType": t["dtype"],
             "Dimensions": list(t["shape"]), "Location": "Host" if t.get("shape_tensor") else "Device",
             "IsShapeInferenceIO": bool(t.get("shape_tensor"))}
            for t in engine._body["io"]]}

    def get_engine_information(self, format: LayerInformationFormat) -> str:  # noqa: A002 - real name
        layers = self._layers()
        if format == LayerInformationFormat.JSON:
            return json.dumps({"Layers": layers, **self._io_section()})
        return "\n".join(str(layer if isinstance(layer, str) else layer["Name"]) for layer in layers)

    def get_layer_information(self, layer_index: int, format: LayerInformationFormat) -> str:  # noqa: A002
        layer = self._layers()[layer_index]
        return json.dumps(layer) if format == LayerInformationFormat.JSON else str(layer)


class IExecutionContext:
    #: Attributes only the double has (test-visible records).
    _FAKE_ONLY = ("enqueues", "streams_used")

    def __init__(self, engine: ICudaEngine, runtime_config: Any = None) -> None:
        self._engine = engine
        self._runtime_config = runtime_config
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}
        self._allocators: dict[str, Any] = {}
        self._profile_index = 0
        self._nvtx = engine.profiling_verbosity
        self._pending: list[tuple[str, Any]] = []
        self._last_stream = 0
        self.profiler: Any = None
        self.enqueue_emits_profile = True
        self.debug_sync = False
        self.name = "fake_context"
        #: Test-visible record of every enqueue: nvtx, capturing, profile, profiler.
        self.enqueues: list[dict[str, Any]] = []
        #: Test-visible: every stream this context was enqueued on.
        self.streams_used: set[int] = set()
        #: Held while an enqueue runs: a context is not thread-safe (TensorRT
        #: developer guide, "Thread Safety"); a second thread entering refuses.
        self._in_use = threading.Lock()
        #: Context memory from the runtime's allocator, and how it is allocated.
        self._memory = 0
        self._strategy = ExecutionContextAllocationStrategy.STATIC

    def __del__(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is None:
            return
        if self._memory and engine._allocator is not None:
            _library_deallocate(engine._allocator, self._memory)
            self._memory = 0
        engine._contexts -= 1

    @property
    def engine(self) -> ICudaEngine:
        return self._engine

    @property
    def active_optimization_profile(self) -> int:
        return self._profile_index

    @property
    def nvtx_verbosity(self) -> ProfilingVerbosity:
        return self._nvtx

    @nvtx_verbosity.setter
    def nvtx_verbosity(self, value: ProfilingVerbosity) -> None:
        value = ProfilingVerbosity(int(value))
        if _NVTX_LEVEL[value] > _NVTX_LEVEL[self._engine.profiling_verbosity]:
            # setNvtxVerbosity returns False; the property setter drops it.
            _log(self._engine._logger, "IExecutionContext::setNvtxVerbosity: Error Code 3: API Usage Error (NVTX "
                 "verbosity cannot be raised above the engine's profiling verbosity)")
            return
        self._nvtx = value

    def _log(self, msg: str) -> None:
        _log(self._engine._logger, msg)

    # profiles and shapes
    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        if not 0 <= int(profile_index) < self._engine.num_optimization_profiles:
            self._log(f"IExecutionContext::setOptimizationProfileAsync: Error Code 3: API Usage Error (Parameter "
                      f"check failed, condition: profileIndex >= 0 && profileIndex < mEngine.getNbOptimizationProfiles(). "
                      f"profileIndex = {profile_index})")
            raise RuntimeError("Error in set optimization profile async.")
        on_change = self._strategy == ExecutionContextAllocationStrategy.ON_PROFILE_CHANGE
        if on_change and int(profile_index) != self._profile_index:
            engine = self._engine
            size = engine.get_device_memory_size_for_profile_v2(int(profile_index))
            memory = _device_allocate(engine._allocator, size, engine._logger,
                                      "IExecutionContext::setOptimizationProfileAsync")
            if memory is None:
                raise RuntimeError("Error in set optimization profile async.")
            if self._memory and engine._allocator is not None:
                _library_deallocate(engine._allocator, self._memory)
            self._memory = memory
        self._profile_index = int(profile_index)
        self._shapes.clear()
        return True

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        t = self._engine._io.get(name)
        shape = tuple(int(d) for d in shape)
        if t is None or t["mode"] != "input":
            self._log(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, "
                      f"condition: engineDims.nbDims >= 0. Tensor {name} is not an input.)")
            return False
        lo, _opt, hi = self._engine._profile(name, self._profile_index)
        if t.get("shape_tensor"):
            if shape != tuple(t["shape"]):
                self._log(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Static dimension mismatch for tensor {name}.)")
                return False
            return True
        if len(shape) != len(t["shape"]) or any(s < a or s > b for s, a, b in zip(shape, lo, hi, strict=False)):
            self._log(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, "
                      f"condition: satisfyProfile. Set dimension {list(shape)} for tensor {name} does not satisfy any "
                      "optimization profiles.)")
            return False
        if any(d >= 0 and s != d for s, d in zip(shape, t["shape"], strict=True)):
            self._log(f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Static dimension mismatch for tensor {name}.)")
            return False
        self._shapes[name] = shape
        return True

    def _inputs(self) -> list[dict[str, Any]]:
        return [t for t in self._engine._body["io"] if t["mode"] == "input"]

    def _shape_values(self, name: str) -> tuple[int, ...] | None:
        """A shape tensor's values, read from the host memory set as its address."""
        t = self._engine._io[name]
        ptr = self._addresses.get(name)
        if not ptr:
            return None
        n = 1
        for d in t["shape"]:
            n *= d
        ctype = ctypes.c_int64 if t["dtype"] == "INT64" else ctypes.c_int32
        return tuple(int(v) for v in (ctype * n).from_address(ptr))

    @property
    def all_binding_shapes_specified(self) -> bool:
        for t in self._inputs():
            if t.get("shape_tensor"):
                if self._shape_values(t["name"]) is None:
                    return False
            elif t["name"] not in self._shapes and min(t["shape"]) < 0:
                return False
        return True

    def _batch(self) -> int:
        first = next((t for t in self._inputs() if not t.get("shape_tensor")), None)
        if first is None:
            return 1
        return self._shapes.get(first["name"], tuple(first["shape"]))[0]

    def get_tensor_shape(self, name: str) -> Dims:
        t = self._engine._io[name]
        if t["mode"] == "input":
            return Dims(self._shapes.get(name, t["shape"]))
        if not self.all_binding_shapes_specified or t.get("data_dependent"):
            return Dims(t["shape"])
        if t.get("shape_from"):
            return Dims(self._shape_values(t["shape_from"]) or t["shape"])
        return Dims(self._batch() if d < 0 else d for d in t["shape"])

    def infer_shapes(self) -> list[str]:
        return [t["name"] for t in self._inputs() if t["name"] not in self._shapes and min(t["shape"]) < 0
                and not t.get("shape_tensor")]

    # memory
    def set_tensor_address(self, name: str, memory: int) -> bool:
        t = self._engine._io.get(name)
        if t is None:
            self._log(f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error (Given invalid tensor name: {name})")
            return False
        if not t.get("shape_tensor") and int(memory) % 256:
            self._log(f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error (Parameter check failed, "
                      f"condition: (reinterpret_cast<uintptr_t>(data) & (kDEVICE_ALIGNMENT - 1)) == 0. Address of "
                      f"tensor {name} is not 256-byte aligned.)")
            return False
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def set_output_allocator(self, name: str, output_allocator: Any) -> bool:
        t = self._engine._io.get(name)
        if t is None or t["mode"] != "output":
            self._log(f"IExecutionContext::setOutputAllocator: Error Code 3: API Usage Error ({name} is not an output)")
            return False
        self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> Any:
        return self._allocators.get(name)

    def report_to_profiler(self) -> bool:
        if self.profiler is None or _capturing(self._last_stream):
            return False
        if self._pending:
            launcher = _launcher()
            for name, pair in self._pending:
                self.profiler.report_layer_time(name, launcher.elapsed_ms(pair))
            self._pending = []
        return True

    # execution
    def _capture_problem(self) -> str | None:
        """Why this context cannot run under stream capture (None: it can)."""
        dd = [t["name"] for t in self._engine._body["io"] if t["mode"] == "output" and t.get("data_dependent")]
        if dd:
            return f"output {dd[0]} has a data-dependent shape and needs runtime allocation"
        return None

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not self._in_use.acquire(blocking=False):
            self._log("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (an execution context is not "
                      "thread-safe: enqueued from two threads at once)")
            return False
        try:
            time.sleep(0)  # let another thread that shares this context show itself
            return self._execute(stream_handle)
        finally:
            self._in_use.release()

    def _execute(self, stream_handle: int) -> bool:
        self.streams_used.add(stream_handle)
        capturing = _capturing(stream_handle)
        self._last_stream = stream_handle
        self.enqueues.append({"nvtx": self._nvtx.name, "capturing": capturing, "profile": self._profile_index,
                              "profiler": self.profiler is not None})
        if not self.all_binding_shapes_specified:
            self._log("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (Parameter check failed, condition: "
                      "mContext.profileObliviousBindings.at(profileObliviousIndex) || getPtrOrNull(mOutputAllocators, "
                      "profileObliviousIndex). Neither address or allocator is set for input tensor.)")
            return False
        for t in self._engine._body["io"]:
            if self._addresses.get(t["name"]):
                continue
            if t["mode"] == "output" and t["name"] in self._allocators:
                continue
            self._log("IExecutionContext::enqueueV3: Error Code 3: API Usage Error (Parameter check failed, condition: "
                      "mContext.profileObliviousBindings.at(profileObliviousIndex) || getPtrOrNull(mOutputAllocators, "
                      f"profileObliviousIndex). Neither address or allocator is set for output tensor {t['name']}. Call "
                      "setOutputTensorAddress, setTensorAddress or setOutputAllocator before enqueue/execute.)")
            return False
        if capturing:
            problem = self._capture_problem()
            if problem is not None:
                self._log(f"IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (operation not permitted when "
                          f"stream is capturing: {problem})")
                return False
        device_inputs = [t for t in self._inputs() if not t.get("shape_tensor")]
        src = self._addresses[device_inputs[0]["name"]] if device_inputs else 0
        n_in = self._nbytes(device_inputs[0], self.get_tensor_shape(device_inputs[0]["name"])) if device_inputs else 0
        outputs = [t for t in self._engine._body["io"] if t["mode"] == "output"
                   and self._engine.get_tensor_location(t["name"]) == TensorLocation.DEVICE]
        dst, n_out = 0, 0
        if outputs:
            out = outputs[0]
            shape = tuple(self._batch() if d < 0 else d for d in out["shape"])
            if out.get("shape_from"):
                shape = tuple(self.get_tensor_shape(out["name"]))
            n_out = self._nbytes(out, shape)
            if out["name"] in self._allocators and not self._addresses.get(out["name"]):
                alloc = self._allocators[out["name"]]
                dst = int(alloc.reallocate_output_async(out["name"], 0, n_out, 256, stream_handle))
                alloc.notify_shape(out["name"], Dims(shape))
                if not dst:
                    self._log(f"IExecutionContext::enqueueV3: Error Code 2: OutOfMemory (output allocator returned null for {out['name']})")
                    return False
            else:
                dst = self._addresses[out["name"]]
        batch = max(1, self._batch())
        launcher = _launcher()
        events = []
        for name, us in self._engine._body["layers"]:
            ns = int(us * 1000 * (1 + 0.1 * (batch - 1)))
            if self.profiler is not None and not capturing:
                events.append((name, launcher.event_pair(stream_handle, lambda ns=ns: launcher.launch(stream_handle, src, dst, n_in, n_out, ns))))
            else:
                launcher.launch(stream_handle, src, dst, n_in, n_out, ns)
        if events and self.enqueue_emits_profile:
            launcher.synchronize(stream_handle)
            for name, pair in events:
                self.profiler.report_layer_time(name, launcher.elapsed_ms(pair))
        elif events:
            self._pending = events
        return True

    @staticmethod
    def _nbytes(t: dict[str, Any], shape: Sequence[int]) -> int:
        n = _ITEMSIZE[t["dtype"]]
        for d in shape:
            n *= max(int(d), 0)
        return n


TRT10 = _Flavor(version=__version__, magic=MAGIC, serialization=SERIALIZATION_VERSION, rtx=False,
                engine_cls=ICudaEngine, context_cls=IExecutionContext, runtime_config_cls=IRuntimeConfig,
                allocator_cls=IGpuAllocator)
Runtime._flavor = TRT10
# Set after the class body, like pybind11's def_property: a property that never
# learnt its name ("property of 'Runtime' object has no getter" when read).
setattr(Runtime, "gpu_allocator", property(None, Runtime._set_gpu_allocator))  # noqa: B010


# ----------------------------------------------------------- GPU kernel launch
_KERNEL = r"""
extern "C" __global__ void fake_layer(const unsigned char* src, unsigned char* dst,
                                      unsigned long long n_in, unsigned long long n_out,
                                      unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n_out;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        dst[i] = n_in ? (unsigned char)(src[i % n_in] ^ 0x5a) : (unsigned char)1;
    }
    if (threadIdx.x == 0) {
        do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
    }
}
"""

_launcher_lock = threading.Lock()
_launcher_obj: Any = None


def _device_cc() -> tuple[int, int] | None:
    try:
        from cuda.bindings import runtime as rt

        err, dev = rt.cudaGetDevice()
        if int(err):
            return None
        err, props = rt.cudaGetDeviceProperties(dev)
        return None if int(err) else (int(props.major), int(props.minor))
    except Exception:  # noqa: BLE001
        return None


def _capturing(stream: int) -> bool:
    """Whether ``stream`` is being captured into a CUDA graph right now."""
    try:
        from cuda.bindings import runtime as rt

        err, status = rt.cudaStreamIsCapturing(stream)
        if int(err):
            return False
        return status == rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusActive
    except Exception:  # noqa: BLE001 - no CUDA: nothing captures
        return False


def _launcher() -> Any:
    global _launcher_obj
    with _launcher_lock:
        if _launcher_obj is None:
            errors = []
            for cls in (_DriverLauncher, _TorchLauncher, _CupyLauncher):
                try:
                    _launcher_obj = cls()
                    break
                except Exception as exc:  # noqa: BLE001 - e.g. no NVRTC: try the next way
                    errors.append(f"{cls.__name__}: {type(exc).__name__}: {exc}")
            else:
                raise RuntimeError("FakeTensorRT cannot launch kernels: " + "; ".join(errors))
        return _launcher_obj


def _ok(result: Any, what: str) -> Any:
    err = result[0]
    if int(err):
        raise RuntimeError(f"{what} failed: {err}")
    return result[1] if len(result) == 2 else result[1:]


class _DriverLauncher:
    """NVRTC -> PTX -> cuModuleLoadData -> cuLaunchKernel on the caller's stream."""

    def __init__(self) -> None:
        from cuda.bindings import driver, nvrtc
        from cuda.bindings import runtime as rt

        _ok(rt.cudaFree(0), "cudaFree(0)")  # primary context current on this thread
        cc = _device_cc() or (8, 0)
        prog = _ok(nvrtc.nvrtcCreateProgram(_KERNEL.encode(), b"fake_layer.cu", 0, [], []), "nvrtcCreateProgram")
        opts = [f"--gpu-architecture=compute_{cc[0]}{cc[1]}".encode()]
        err = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
        if int(err):
            size = _ok(nvrtc.nvrtcGetProgramLogSize(prog), "log size")
            buf = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, buf)
            raise RuntimeError(f"NVRTC: {buf.decode(errors='replace')}")
        size = _ok(nvrtc.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize")
        ptx = b" " * size
        _ok(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
        self._driver = driver
        self._rt = rt
        self._module = _ok(driver.cuModuleLoadData(ptx), "cuModuleLoadData")
        self._fn = _ok(driver.cuModuleGetFunction(self._module, b"fake_layer"), "cuModuleGetFunction")

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        d = self._driver
        args = ((src, dst, n_in, n_out, ns), (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_ulonglong, ctypes.c_ulonglong))
        blocks = max(1, min(64, (n_out + 255) // 256))
        _ok((d.cuLaunchKernel(self._fn, blocks, 1, 1, 256, 1, 1, 0, d.CUstream(stream), args, 0)[0],), "cuLaunchKernel")

    def event_pair(self, stream: int, launch: Any) -> tuple[Any, Any]:
        rt = self._rt
        a = _ok(rt.cudaEventCreate(), "cudaEventCreate")
        b = _ok(rt.cudaEventCreate(), "cudaEventCreate")
        rt.cudaEventRecord(a, stream)
        launch()
        rt.cudaEventRecord(b, stream)
        return a, b

    def elapsed_ms(self, pair: tuple[Any, Any]) -> float:
        _ok((self._rt.cudaEventSynchronize(pair[1])[0],), "cudaEventSynchronize")
        ms = _ok(self._rt.cudaEventElapsedTime(pair[0], pair[1]), "cudaEventElapsedTime")
        for e in pair:
            self._rt.cudaEventDestroy(e)
        return float(ms)

    def synchronize(self, stream: int) -> None:
        _ok((self._rt.cudaStreamSynchronize(stream)[0],), "cudaStreamSynchronize")


class _CupyLauncher(_DriverLauncher):
    """Same kernel through cupy's RawKernel, on an external stream."""

    def __init__(self) -> None:
        import cupy
        from cuda.bindings import runtime as rt

        self._cupy = cupy
        self._rt = rt
        self._kernel = cupy.RawKernel(_KERNEL, "fake_layer")

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        import numpy as np

        cp = self._cupy
        blocks = max(1, min(64, (n_out + 255) // 256))
        with cp.cuda.ExternalStream(stream):
            self._kernel((blocks,), (256,), (np.uint64(src), np.uint64(dst), np.uint64(n_in), np.uint64(n_out), np.uint64(ns)))


class _TorchLauncher(_DriverLauncher):
    """No NVRTC: ``torch.cuda._sleep`` (a real spin kernel) on the caller's stream,
    plus a device-to-device copy so the output holds input bytes."""

    def __init__(self) -> None:
        import torch
        from cuda.bindings import runtime as rt

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no GPU")
        torch.cuda.init()
        self._torch = torch
        self._rt = rt
        _ok(rt.cudaFree(0), "cudaFree(0)")
        err, dev = rt.cudaGetDevice()
        khz = _ok(rt.cudaDeviceGetAttribute(rt.cudaDeviceAttr.cudaDevAttrClockRate, dev), "clock rate")
        self._cycles_per_ns = max(int(khz), 1) / 1e6

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        torch = self._torch
        n = min(n_in, n_out)
        if n and src and dst:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
            _ok((self._rt.cudaMemcpyAsync(dst, src, n, kind, stream)[0],), "cudaMemcpyAsync")
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            torch.cuda._sleep(int(ns * self._cycles_per_ns))
