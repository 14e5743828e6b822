"""Thin layer over the CUDA runtime (``cuda.bindings.runtime``, cuda-python).

Why a layer at all: every runtime call returns an error code that is easy to
drop, and a dropped error shows up much later as a nonsense timing. Here every
call is checked and turned into a :class:`CudaError` that names the call, the
error and its description, in one line.

cuda-python is optional. Importing this module never needs it; the first call
that does raises :class:`~pytest_trtperf.core.errors.BackendUnavailable` saying what
to install. Works with cuda-bindings 12.x and 13.x (13.0 removed the old
``cuda.cudart`` trampoline, so that spelling is only a fallback for old 12.x).

Handles cross this API as plain ``int`` (stream handles, device pointers), which
is what TensorRT's ``execute_async_v3`` and ``set_tensor_address`` take.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from pytest_trtperf.core.errors import BackendUnavailable, TrtPerfError

INSTALL_HINT = "pip install 'pytest-trtperf[gpu]'"

#: Capture modes accepted by :func:`begin_capture` (cudaStreamCaptureMode).
CAPTURE_MODES = ("thread_local", "global", "relaxed")

_rt: Any = None
_import_error: str | None = None


def _import_runtime() -> None:
    """Find the runtime module once: new layout first, then the 12.x trampoline."""
    global _rt, _import_error
    try:
        # cuda-bindings >= 12.6.1; a compiled module whose names pyright cannot read.
        from cuda.bindings import runtime as rt  # pyright: ignore[reportAttributeAccessIssue]  # a compiled module without stubs
    except ImportError as exc:
        try:
            from cuda import cudart as rt  # type: ignore[no-redef]  # cuda-python 12.x only, not 13.x
        except ImportError:
            _import_error = str(exc)
            return
    _rt = rt


_import_runtime()


class CudaError(TrtPerfError):
    """A CUDA runtime call failed. ``str()`` is one line: call, error name, description."""

    def __init__(self, call: str, code: int, name: str, description: str) -> None:
        self.call = call
        self.code = int(code)
        self.name = name
        self.description = description
        super().__init__(f"CUDA call {call} failed: {name} ({description})")


class CaptureFailed(TrtPerfError):
    """Stream capture of a workload did not produce a usable graph (the stream
    has been cleaned up and is usable again)."""


# --------------------------------------------------------------------------- core


def is_installed() -> bool:
    """True when cuda-python's runtime module can be imported."""
    return _rt is not None


def runtime() -> Any:
    """The runtime module, or BackendUnavailable with the install line."""
    if _rt is None:
        raise BackendUnavailable(
            f"cuda-python is not installed (needed for GPU timing): {INSTALL_HINT}"
        )
    return _rt


def _error(call: str, err: Any) -> CudaError:
    rt = runtime()
    try:
        name = rt.cudaGetErrorName(err)[1].decode()
        desc = rt.cudaGetErrorString(err)[1].decode()
    except Exception:  # pragma: no cover - defensive, names are always known
        name, desc = f"cudaError {int(err)}", "unknown error"
    return CudaError(call, int(err), name, desc)


def check(call: str, result: Any) -> Any:
    """Unwrap a cuda-python ``(err, *values)`` tuple: raise on error, else
    return None, the single value, or the tuple of values."""
    err = result[0]
    if err:
        raise _error(call, err)
    if len(result) == 1:
        return None
    if len(result) == 2:
        return result[1]
    return tuple(result[1:])


def _call(name: str, *args: Any) -> Any:
    """Call runtime function ``name`` and check its error."""
    return check(name, getattr(runtime(), name)(*args))


def as_handle(obj: Any) -> int:
    """Integer value of a cuda-python handle (stream, event, graph) or an int."""
    if obj is None:
        return 0
    if isinstance(obj, int):
        return obj
    try:
        from cuda.bindings.utils import get_cuda_native_handle  # 13.x

        return int(get_cuda_native_handle(obj))
    except (ImportError, TypeError):  # 12.x (int() is the documented way) or a foreign type
        return int(obj)


def get_last_error() -> str | None:
    """Return and clear the calling thread's last (non-sticky) error name."""
    rt = runtime()
    err = rt.cudaGetLastError()[0]
    if not err:
        return None
    return rt.cudaGetErrorName(err)[1].decode()


def peek_last_error() -> str | None:
    """The last error name without clearing it."""
    rt = runtime()
    err = rt.cudaPeekAtLastError()[0]
    if not err:
        return None
    return rt.cudaGetErrorName(err)[1].decode()


# ------------------------------------------------------------------- device info


_NO_DEVICE_ERRORS = ("cudaErrorNoDevice", "cudaErrorInsufficientDriver")


def device_count() -> int:
    """Number of visible GPUs; 0 when there is no driver or no device."""
    rt = runtime()
    err, n = rt.cudaGetDeviceCount()
    if err:
        if rt.cudaGetErrorName(err)[1].decode() in _NO_DEVICE_ERRORS:
            rt.cudaGetLastError()
            return 0
        raise _error("cudaGetDeviceCount", err)
    return int(n)


def unavailable_reason() -> str | None:
    """One line saying why GPU timing cannot run here, or None when it can."""
    if _rt is None:
        return f"cuda-python is not installed: {INSTALL_HINT}"
    try:
        n = device_count()
    except CudaError as exc:
        return str(exc)
    if n == 0:
        return "no CUDA GPU visible (no driver or no device)"
    return None


def require_gpu() -> None:
    """Raise BackendUnavailable unless cuda-python and a GPU are both there."""
    reason = unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(reason)


def current_device() -> int:
    return int(_call("cudaGetDevice"))


def set_device(index: int) -> None:
    _call("cudaSetDevice", index)


def _dev(index: int | None) -> int:
    return current_device() if index is None else index


def device_name(index: int | None = None) -> str:
    prop = _call("cudaGetDeviceProperties", _dev(index))
    name = prop.name
    return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()


def pci_bus_id(index: int | None = None) -> str:
    """PCI bus id like ``0000:3B:00.0``: the key NVML uses for the same GPU."""
    raw = _call("cudaDeviceGetPCIBusId", 32, _dev(index))
    return raw.split(b"\0", 1)[0].decode() if isinstance(raw, bytes) else str(raw)


def compute_capability(index: int | None = None) -> tuple[int, int]:
    rt = runtime()
    dev = _dev(index)
    major = _call("cudaDeviceGetAttribute", rt.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, dev)
    minor = _call("cudaDeviceGetAttribute", rt.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, dev)
    return int(major), int(minor)


def _split_version(v: int) -> tuple[int, int]:
    return int(v) // 1000, (int(v) % 1000) // 10


def driver_version() -> tuple[int, int]:
    """CUDA version the driver supports, e.g. (13, 0); (0, 0) without a driver."""
    return _split_version(_call("cudaDriverGetVersion"))


def runtime_version() -> tuple[int, int]:
    """Version of the CUDA runtime library cuda-python loaded."""
    return _split_version(_call("cudaRuntimeGetVersion"))


def bindings_version() -> str:
    """cuda-python (cuda-bindings) version string."""
    runtime()
    try:
        import cuda.bindings as cb

        return str(getattr(cb, "__version__", "unknown"))
    except ImportError:  # pragma: no cover - old 12.x layout
        return "unknown"


@dataclass(frozen=True)
class DeviceInfo:
    """What identifies the GPU a measurement ran on."""

    index: int
    name: str
    pci_bus_id: str
    compute_capability: tuple[int, int]
    driver_cuda_version: tuple[int, int]
    runtime_version: tuple[int, int]
    bindings_version: str


def device_info(index: int | None = None) -> DeviceInfo:
    dev = _dev(index)
    return DeviceInfo(
        index=dev,
        name=device_name(dev),
        pci_bus_id=pci_bus_id(dev),
        compute_capability=compute_capability(dev),
        driver_cuda_version=driver_version(),
        runtime_version=runtime_version(),
        bindings_version=bindings_version(),
    )


def device_synchronize() -> None:
    _call("cudaDeviceSynchronize")


# ----------------------------------------------------------------------- streams

StreamLike = Union["Stream", int]


def stream_handle(stream: StreamLike | None) -> int:
    """Integer handle of a :class:`Stream` or an int (0 = legacy default stream)."""
    if stream is None:
        return 0
    if isinstance(stream, Stream):
        return stream.handle
    return as_handle(stream)


class Stream:
    """A CUDA stream: created here (owned, destroyed by :meth:`close`) or
    wrapping an external handle (torch's, TensorRT's; never destroyed here)."""

    def __init__(self, handle: int | None = None, *, non_blocking: bool = True) -> None:
        rt = runtime()
        if handle is None:
            flags = rt.cudaStreamNonBlocking if non_blocking else rt.cudaStreamDefault
            self._obj: Any = _call("cudaStreamCreateWithFlags", flags)
            self.handle = as_handle(self._obj)
            self.owned = True
        else:
            self._obj = handle
            self.handle = int(handle)
            self.owned = False

    def synchronize(self) -> None:
        _call("cudaStreamSynchronize", self.handle)

    def query(self) -> bool:
        """True when all work on the stream has completed."""
        rt = runtime()
        err = rt.cudaStreamQuery(self.handle)[0]
        if err == rt.cudaError_t.cudaErrorNotReady:
            return False
        if err:
            raise _error("cudaStreamQuery", err)
        return True

    def capture_status(self) -> str:
        return capture_status(self.handle)

    def close(self) -> None:
        if self.owned and self._obj is not None:
            _call("cudaStreamDestroy", self._obj)
        self._obj = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __int__(self) -> int:
        return self.handle

    def __repr__(self) -> str:
        return f"Stream(0x{self.handle:x}, owned={self.owned})"


def stream_synchronize(stream: StreamLike) -> None:
    _call("cudaStreamSynchronize", stream_handle(stream))


# ------------------------------------------------------------------------ events


class Event:
    """A CUDA event. ``blocking_sync=True`` makes :meth:`synchronize` sleep in
    the driver instead of spinning (trtexec's default; ours is spin)."""

    def __init__(self, *, blocking_sync: bool = False, timing: bool = True) -> None:
        rt = runtime()
        flags = rt.cudaEventDefault
        if blocking_sync:
            flags |= rt.cudaEventBlockingSync
        if not timing:
            flags |= rt.cudaEventDisableTiming
        self.obj: Any = _call("cudaEventCreateWithFlags", flags)
        self.blocking_sync = blocking_sync

    @property
    def handle(self) -> int:
        return as_handle(self.obj)

    def record(self, stream: StreamLike | None = None) -> None:
        _call("cudaEventRecord", self.obj, stream_handle(stream))

    def synchronize(self) -> None:
        _call("cudaEventSynchronize", self.obj)

    def query(self) -> bool:
        """True when the work before the last record has completed."""
        rt = runtime()
        err = rt.cudaEventQuery(self.obj)[0]
        if err == rt.cudaError_t.cudaErrorNotReady:
            return False
        if err:
            raise _error("cudaEventQuery", err)
        return True

    def spin_wait(self) -> None:
        """Poll until complete: wakes within a poll (~0.5 us) of completion."""
        spin_wait(self.obj)

    def close(self) -> None:
        if self.obj is not None:
            _call("cudaEventDestroy", self.obj)
            self.obj = None

    def __enter__(self) -> Event:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def spin_wait(event_obj: Any) -> None:
    """Busy-poll ``cudaEventQuery`` on a raw event until it completes."""
    rt = runtime()
    query = rt.cudaEventQuery
    not_ready = rt.cudaError_t.cudaErrorNotReady
    while True:
        err = query(event_obj)[0]
        if not err:
            return
        if err != not_ready:
            raise _error("cudaEventQuery", err)


def elapsed_ms(start: Event | Any, end: Event | Any) -> float:
    """Milliseconds between two completed events (resolution about 0.5 us)."""
    s = start.obj if isinstance(start, Event) else start
    e = end.obj if isinstance(end, Event) else end
    return float(_call("cudaEventElapsedTime", s, e))


def stream_wait_event(stream: StreamLike, event: Event) -> None:
    _call("cudaStreamWaitEvent", stream_handle(stream), event.obj, 0)


def time_calls(stream: StreamLike, fn: Callable[[], Any], n: int) -> list[float]:
    """Milliseconds of each of ``n`` calls of ``fn()``, which enqueues its work
    on ``stream``: a CUDA event pair around each call, all enqueued back to
    back behind one untimed call (so the first pair does not hold an idle
    GPU's launch latency), one synchronisation at the end.

    Any code that launches on a stream handle can be timed so (a graph
    replay, a raw launch, torch code whose current stream is ``stream``); the
    capture check compares an eager call with its graph replay this way."""
    if int(n) < 1:
        raise ValueError("time_calls() needs n >= 1")
    h = stream_handle(stream)
    record = runtime().cudaEventRecord
    pairs = [(Event(), Event()) for _ in range(int(n))]
    try:
        fn()
        for start, end in pairs:
            err = record(start.obj, h)[0]
            if err:
                raise _error("cudaEventRecord", err)
            fn()
            err = record(end.obj, h)[0]
            if err:
                raise _error("cudaEventRecord", err)
        stream_synchronize(h)
        return [elapsed_ms(start, end) for start, end in pairs]
    finally:
        for start, end in pairs:
            start.close()
            end.close()


# ------------------------------------------------------------------------ graphs


def _capture_mode(mode: str) -> Any:
    rt = runtime()
    m = rt.cudaStreamCaptureMode
    table = {
        "thread_local": m.cudaStreamCaptureModeThreadLocal,
        "global": m.cudaStreamCaptureModeGlobal,
        "relaxed": m.cudaStreamCaptureModeRelaxed,
    }
    if mode not in table:
        from pytest_trtperf.core.errors import UsageError

        raise UsageError(f"capture mode {mode!r} is not one of {', '.join(CAPTURE_MODES)}")
    return table[mode]


def begin_capture(stream: StreamLike, mode: str = "thread_local") -> None:
    _call("cudaStreamBeginCapture", stream_handle(stream), _capture_mode(mode))


def capture_status(stream: StreamLike) -> str:
    """'none', 'active' or 'invalidated'."""
    rt = runtime()
    status = _call("cudaStreamIsCapturing", stream_handle(stream))
    s = rt.cudaStreamCaptureStatus
    if status == s.cudaStreamCaptureStatusActive:
        return "active"
    if status == s.cudaStreamCaptureStatusInvalidated:
        return "invalidated"
    return "none"


class Graph:
    """A captured (not yet executable) CUDA graph."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def node_count(self) -> int:
        res = _call("cudaGraphGetNodes", self.obj, 0)
        return int(res[-1]) if isinstance(res, tuple) else int(res)

    def instantiate(self) -> GraphExec:
        return GraphExec(_call("cudaGraphInstantiate", self.obj, 0))

    def close(self) -> None:
        if self.obj is not None:
            _call("cudaGraphDestroy", self.obj)
            self.obj = None


class GraphExec:
    """An instantiated graph; :meth:`launch` replays it on a stream."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def launch(self, stream: StreamLike) -> None:
        _call("cudaGraphLaunch", self.obj, stream_handle(stream))

    def upload(self, stream: StreamLike) -> None:
        """Do the one-time upload now so the first timed launch does not pay it."""
        _call("cudaGraphUpload", self.obj, stream_handle(stream))

    def close(self) -> None:
        if self.obj is not None:
            _call("cudaGraphExecDestroy", self.obj)
            self.obj = None


def end_capture(stream: StreamLike) -> Graph:
    obj = _call("cudaStreamEndCapture", stream_handle(stream))
    if obj is None or as_handle(obj) == 0:
        raise CudaError("cudaStreamEndCapture", 0, "null graph", "capture was invalidated")
    return Graph(obj)


def abandon_capture(stream: StreamLike) -> None:
    """End a capture that went wrong, drop its graph, clear the last error, so
    the stream takes ordinary work again. Safe to call when not capturing."""
    rt = runtime()
    h = stream_handle(stream)
    err, status = rt.cudaStreamIsCapturing(h)
    if not err and status != rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone:
        err, graph = rt.cudaStreamEndCapture(h)
        if not err and graph is not None and as_handle(graph):
            rt.cudaGraphDestroy(graph)
    rt.cudaGetLastError()


def capture(stream: StreamLike, fn: Callable[[int], Any], mode: str = "thread_local") -> Graph:
    """Capture what ``fn(stream_handle)`` enqueues into a graph.

    Raises :class:`CaptureFailed` (stream cleaned up) when ``fn`` raises, syncs,
    allocates, enqueues nothing on this stream, or otherwise breaks capture.
    """
    h = stream_handle(stream)
    begin_capture(h, mode)
    try:
        fn(h)
    except Exception as exc:
        abandon_capture(h)
        raise CaptureFailed(f"the workload raised during capture: {_one_line(exc)}") from exc
    try:
        graph = end_capture(h)
    except CudaError as exc:
        abandon_capture(h)
        raise CaptureFailed(f"capture was invalidated ({exc.name}): the workload synchronises, "
                            "allocates or uses another stream") from exc
    runtime().cudaGetLastError()
    if graph.node_count() == 0:
        graph.close()
        raise CaptureFailed("capture recorded no work on the stream (the workload enqueues "
                            "on another stream, e.g. the legacy default stream)")
    return graph


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# ---------------------------------------------------------------------- profiler


def profiler_start() -> None:
    """``cudaProfilerStart``: open a capture range for a profiler that waits
    for one (``nsys profile --capture-range=cudaProfilerApi``, ``ncu
    --profile-from-start off``). Without a profiler attached it does nothing."""
    _call("cudaProfilerStart")


def profiler_stop() -> None:
    """``cudaProfilerStop``: close the capture range :func:`profiler_start` opened."""
    _call("cudaProfilerStop")


# ------------------------------------------------------------------------ memory


def malloc(nbytes: int) -> int:
    """Device allocation; returns the pointer as int."""
    return as_handle(_call("cudaMalloc", int(nbytes)))


def free(ptr: int) -> None:
    _call("cudaFree", int(ptr))


def malloc_host(nbytes: int) -> int:
    """Pinned (page-locked) host allocation: async copies need it to be async."""
    return as_handle(_call("cudaMallocHost", int(nbytes)))


def free_host(ptr: int) -> None:
    _call("cudaFreeHost", int(ptr))


def _kind(name: str) -> Any:
    return getattr(runtime().cudaMemcpyKind, name)


def memcpy_h2d_async(dst: int, src: int, nbytes: int, stream: StreamLike) -> None:
    _call("cudaMemcpyAsync", int(dst), int(src), int(nbytes),
          _kind("cudaMemcpyHostToDevice"), stream_handle(stream))


def memcpy_d2h_async(dst: int, src: int, nbytes: int, stream: StreamLike) -> None:
    _call("cudaMemcpyAsync", int(dst), int(src), int(nbytes),
          _kind("cudaMemcpyDeviceToHost"), stream_handle(stream))


def memcpy_d2d_async(dst: int, src: int, nbytes: int, stream: StreamLike) -> None:
    _call("cudaMemcpyAsync", int(dst), int(src), int(nbytes),
          _kind("cudaMemcpyDeviceToDevice"), stream_handle(stream))


def memset_async(ptr: int, value: int, nbytes: int, stream: StreamLike) -> None:
    _call("cudaMemsetAsync", int(ptr), int(value), int(nbytes), stream_handle(stream))


class DeviceBuffer:
    """Device memory owned by Python; freed by :meth:`close`."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self.ptr = malloc(self.nbytes)

    def close(self) -> None:
        if self.ptr:
            free(self.ptr)
            self.ptr = 0

    def __enter__(self) -> DeviceBuffer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class PinnedBuffer:
    """Pinned host memory with a numpy view, for real async H2D/D2H copies."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = int(nbytes)
        self.ptr = malloc_host(self.nbytes)

    def array(self, dtype: Any = np.uint8) -> np.ndarray:
        """A numpy view of the buffer (no copy); invalid after :meth:`close`."""
        raw = (ctypes.c_uint8 * self.nbytes).from_address(self.ptr)
        return np.frombuffer(memoryview(raw), dtype=np.uint8).view(dtype)

    def close(self) -> None:
        if self.ptr:
            free_host(self.ptr)
            self.ptr = 0

    def __enter__(self) -> PinnedBuffer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = [
    "CAPTURE_MODES", "INSTALL_HINT", "CaptureFailed", "CudaError", "DeviceBuffer",
    "DeviceInfo", "Event", "Graph", "GraphExec", "PinnedBuffer", "Stream",
    "abandon_capture", "as_handle", "begin_capture", "bindings_version", "capture",
    "capture_status", "check", "compute_capability", "current_device", "device_count",
    "device_info", "device_name", "device_synchronize", "driver_version", "elapsed_ms",
    "end_capture", "free", "free_host", "get_last_error", "is_installed", "malloc",
    "malloc_host", "memcpy_d2d_async", "memcpy_d2h_async", "memcpy_h2d_async",
    "memset_async", "pci_bus_id", "peek_last_error", "profiler_start", "profiler_stop",
    "require_gpu", "runtime",
    "runtime_version", "set_device", "spin_wait", "stream_handle", "stream_synchronize",
    "stream_wait_event", "time_calls", "unavailable_reason",
]
