"""A counting ``IGpuAllocator``: what TensorRT allocates on the device, and its peak.

TensorRT's performance guide ("Tracking Memory") recommends exactly this: an
allocator set on the builder (``Builder.gpu_allocator``) and on the runtime
(``Runtime.gpu_allocator``, used for the engine's weights, its execution
contexts and their scratch memory) that counts every request and hands it to
``cudaMalloc``/``cudaFree`` underneath.

How the Python bindings call a Python ``IGpuAllocator`` subclass (TensorRT 10
``python/src/infer/pyCore.cpp``; TensorRT-RTX 1.7 checked on the installed
module, whose class lists only the ``*_async`` names but calls the same way):
the library's ``allocateAsync``/``deallocateAsync`` default to the synchronous
``allocate(size, alignment, flags)`` / ``deallocate(memory)``, which the
binding forwards to the Python methods of those names, with the address as an
``int``. A return value that is not an int (``None``, as the docstring
suggests) is printed as an error and taken as a failed request, so failures
return 0 (a null pointer) here. All five methods are implemented, so the class
works whichever one a binding calls. Requests come from TensorRT's threads:
the bookkeeping is under a lock.

Knows nothing of pytest; the CUDA calls are passed in (``gpu/cuda.py`` by default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorrt as trt


@dataclass(frozen=True)
class AllocationStats:
    """What a tracking allocator saw, in bytes."""

    #: Most bytes held at once.
    peak_bytes: int = 0
    #: Bytes handed out over its life (every allocation counted once).
    total_bytes: int = 0
    #: Bytes held now.
    live_bytes: int = 0
    allocations: int = 0
    frees: int = 0
    #: Requests that could not be served (cudaMalloc failed).
    failures: int = 0


class TrackingAllocatorBase:
    """The bookkeeping; :func:`make_tracking_allocator` mixes it into the
    library's ``IGpuAllocator``."""

    def _setup(self, malloc: Callable[[int], int], free: Callable[[int], None]) -> None:
        self._malloc = malloc
        self._free = free
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}
        self._current = 0
        self._peak = 0
        self._total = 0
        self._allocations = 0
        self._frees = 0
        self._failures = 0

    # -- what the binding calls ---------------------------------------------
    def allocate(self, size: int, alignment: int, flags: int) -> int:
        return self._allocate(size)

    def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int:
        return self._allocate(size)

    def reallocate(self, address: int, alignment: int, new_size: int) -> int:
        """Not offered: 0 tells TensorRT that ``address`` is still valid and
        it allocates anew (counted) instead."""
        return 0

    def deallocate(self, memory: int) -> bool:
        return self._release(memory)

    def deallocate_async(self, memory: int, stream: int) -> bool:
        return self._release(memory)

    # -- bookkeeping ---------------------------------------------------------
    def _allocate(self, size: Any) -> int:
        n = int(size)
        if n <= 0:
            return 0  # a request of size 0 gets a null pointer, as TensorRT specifies
        try:
            ptr = int(self._malloc(n))
        except Exception:  # noqa: BLE001 - out of memory: TensorRT handles a null pointer
            ptr = 0
        with self._lock:
            if not ptr:
                self._failures += 1
                return 0
            self._live[ptr] = n
            self._current += n
            self._total += n
            self._allocations += 1
            self._peak = max(self._peak, self._current)
        return ptr

    def _release(self, memory: Any) -> bool:
        try:
            ptr = int(memory)
        except (TypeError, ValueError):
            return False
        if ptr == 0:
            return True  # TensorRT may release the null pointer it was given
        with self._lock:
            n = self._live.pop(ptr, None)
            if n is None:
                return False  # not ours
            self._current -= n
            self._frees += 1
        try:
            self._free(ptr)
        except Exception:  # noqa: BLE001 - a failed cudaFree must not throw into TensorRT
            return False
        return True

    def stats(self) -> AllocationStats:
        with self._lock:
            return AllocationStats(peak_bytes=self._peak, total_bytes=self._total, live_bytes=self._current,
                                   allocations=self._allocations, frees=self._frees, failures=self._failures)


_classes: dict[int, type] = {}
_classes_lock = threading.Lock()


def make_tracking_allocator(trt_module: Any, malloc: Callable[[int], int] | None = None,
                            free: Callable[[int], None] | None = None) -> TrackingAllocator:
    """A counting allocator for ``trt_module`` (``tensorrt``, ``tensorrt_rtx`` or
    the test double), allocating with ``malloc``/``free`` (default: cudaMalloc
    and cudaFree through ``gpu/cuda.py``)."""
    if malloc is None or free is None:
        default_malloc, default_free = _cuda_calls()
        malloc, free = malloc or default_malloc, free or default_free
    with _classes_lock:
        cls = _classes.get(id(trt_module))
        if cls is None:
            base = trt_module.IGpuAllocator

            def __init__(self: Any) -> None:
                base.__init__(self)  # the binding requires it

            cls = type("TrackingAllocator", (TrackingAllocatorBase, base), {"__init__": __init__,
                                                                            "_module": trt_module})
            _classes[id(trt_module)] = cls
    allocator = cls()
    allocator._setup(malloc, free)
    return allocator


def _cuda_calls() -> tuple[Callable[[int], int], Callable[[int], None]]:
    """cudaMalloc on the device current when the allocator was made (TensorRT
    may ask from its own threads, whose current device is their own), and cudaFree."""
    from pytest_trtperf.gpu import cuda

    try:
        device: int | None = cuda.current_device()
    except Exception:  # noqa: BLE001 - no GPU (a CPU-only TensorRT-RTX build never allocates)
        device = None

    def malloc(n: int) -> int:
        if device is not None and cuda.current_device() != device:
            cuda.set_device(device)
        return cuda.malloc(n)

    return malloc, cuda.free


def can_track() -> bool:
    """Whether cudaMalloc is reachable (cuda-python installed). Without it no
    tracking allocator is installed: TensorRT keeps its own."""
    from pytest_trtperf.gpu import cuda

    return cuda.is_installed()


def figures(stats: AllocationStats | None, prefix: str) -> Mapping[str, int]:
    """``<prefix>_peak_bytes`` / ``<prefix>_total_bytes`` from ``stats``;
    nothing when no allocator was installed or it was never called (TensorRT-RTX
    builds on a machine without a GPU allocate no device memory)."""
    if stats is None or stats.allocations == 0:
        return {}
    return {f"{prefix}_peak_bytes": stats.peak_bytes, f"{prefix}_total_bytes": stats.total_bytes}


if TYPE_CHECKING:

    class TrackingAllocator(TrackingAllocatorBase, trt.IGpuAllocator):
        """What :func:`make_tracking_allocator` returns."""

else:
    TrackingAllocator = TrackingAllocatorBase
