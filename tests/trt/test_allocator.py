"""The counting IGpuAllocator, through the real TensorRT-RTX binding, and the
test double's allocator interface held to the real one.

No GPU here: "device" memory in the accounting tests is host memory from
libc's malloc, handed to the allocator as its ``malloc``/``free``. The calls
still go through the real binding: the base class's ``allocate_async`` is
TensorRT's C++ code, which reaches a Python subclass through its trampoline
exactly as the library does when it needs memory.
"""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.trt.allocator import AllocationStats, figures, make_tracking_allocator
from pytest_trtperf.trt.backend import from_module
from pytest_trtperf.trt.build import build_plan
from pytest_trtperf.trt.api import get_engine
from pytest_trtperf.trt.spec import EngineSpec

WHERE = "test_x.py::test_memory"

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_get = ctypes.pythonapi.PyCapsule_GetPointer
_get.restype = ctypes.c_void_p
_get.argtypes = [ctypes.py_object, ctypes.c_char_p]
_new = ctypes.pythonapi.PyCapsule_New
_new.restype = ctypes.py_object
_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def ptr(capsule: Any) -> int | None:
    """The address in a ``void*`` the binding returned (None for null)."""
    return None if capsule is None else int(_get(capsule, None))


def capsule(address: int) -> Any:
    return _new(address, None, None)


def host_malloc(n: int) -> int:
    return int(_libc.malloc(n) or 0)


def host_free(p: int) -> None:
    _libc.free(p)


# ---------------------------------------------------------------- the interface
def transcript(m: Any, logger: Any, capfd: pytest.CaptureFixture[str]) -> list[Any]:
    """What a module's allocator interface does, step by step: calls reaching
    Python, return values, errors raised, first line of what it printed."""
    out: list[Any] = []
    calls: list[tuple[Any, ...]] = []

    def printed() -> list[str]:
        err = capfd.readouterr().err
        return [line.split(" (#define")[0] for line in err.splitlines() if line.startswith(("[ERROR]", "Method:"))]

    def step(label: str, fn: Callable[[], Any]) -> None:
        try:
            value = fn()
            out.append((label, "ok", ptr(value) if type(value).__name__ == "PyCapsule" else value, tuple(calls),
                        printed()))
        except Exception as exc:  # noqa: BLE001 - the exception is the observation
            first = str(exc).splitlines()[0] if str(exc) else ""
            out.append((label, type(exc).__name__, first.split(".")[-1] if "must be called" in first
                        else first.split(":")[0], tuple(calls), printed()))
        calls.clear()

    class Sync(m.IGpuAllocator):
        def __init__(self) -> None:
            m.IGpuAllocator.__init__(self)

        def allocate(self, size: int, alignment: int, flags: int) -> int:
            calls.append(("allocate", size, alignment, flags))
            return 4096

        def deallocate(self, memory: int) -> bool:
            calls.append(("deallocate", memory, type(memory).__name__))
            return True

        def reallocate(self, address: int, alignment: int, new_size: int) -> int:
            calls.append(("reallocate", address, alignment, new_size))
            return 0

    class AsyncOnly(m.IGpuAllocator):  # overrides the *_async names only
        def __init__(self) -> None:
            m.IGpuAllocator.__init__(self)

        def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int:
            calls.append(("allocate_async", size))
            return 4096

    class ReturnsNone(m.IGpuAllocator):
        def __init__(self) -> None:
            m.IGpuAllocator.__init__(self)

        def allocate(self, size: int, alignment: int, flags: int) -> Any:
            return None

        def deallocate(self, memory: int) -> Any:
            return "yes"

    class Raises(m.IGpuAllocator):
        def __init__(self) -> None:
            m.IGpuAllocator.__init__(self)

        def allocate(self, size: int, alignment: int, flags: int) -> int:
            raise RuntimeError("boom")

    class NoBaseInit(m.IGpuAllocator):
        def __init__(self) -> None:
            pass

    class Async(m.IGpuAsyncAllocator):
        def __init__(self) -> None:
            m.IGpuAsyncAllocator.__init__(self)

        def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int:
            calls.append(("allocate_async", size, alignment, flags, stream))
            return 8192

        def deallocate_async(self, memory: int, stream: int) -> bool:
            calls.append(("deallocate_async", memory, stream))
            return True

    a = Sync()
    step("allocate", lambda: m.IGpuAllocator.allocate_async(a, 1000, 256, 1, 77))
    step("deallocate", lambda: m.IGpuAllocator.deallocate_async(a, capsule(4096), 77))
    step("deallocate an int", lambda: m.IGpuAllocator.deallocate_async(a, 4096, 77))
    step("reallocate", lambda: m.IGpuAllocator.reallocate(a, capsule(4096), 256, 2000))
    step("size 0", lambda: m.IGpuAllocator.allocate_async(a, 0, 0, 0, 0))
    step("async names only", lambda: m.IGpuAllocator.allocate_async(AsyncOnly(), 64, 256, 0, 0))
    step("None returned", lambda: m.IGpuAllocator.allocate_async(ReturnsNone(), 64, 256, 0, 0))
    step("str returned", lambda: m.IGpuAllocator.deallocate_async(ReturnsNone(), capsule(64), 0))
    step("raises", lambda: m.IGpuAllocator.allocate_async(Raises(), 64, 256, 0, 0))
    step("no base __init__", lambda: NoBaseInit())
    b = Async()
    step("async allocate", lambda: m.IGpuAsyncAllocator.allocate_async(b, 1000, 256, 1, 77))
    step("async deallocate", lambda: m.IGpuAsyncAllocator.deallocate_async(b, capsule(8192), 77))
    runtime = m.Runtime(logger)
    step("runtime takes it", lambda: setattr(runtime, "gpu_allocator", a))
    step("runtime takes None", lambda: setattr(runtime, "gpu_allocator", None))
    step("runtime refuses an object", lambda: setattr(runtime, "gpu_allocator", object()))
    step("write-only", lambda: runtime.gpu_allocator)
    return out


def test_double_allocator_interface_matches_the_real_tensorrt_rtx(rtx, fake_rtx,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """Same script, same transcript: which Python method the library calls,
    with what, what a bad return value or a missing override does, and what
    the binding refuses."""
    real = transcript(rtx.module, rtx.logger(), capfd)
    double = transcript(fake_rtx, from_module(fake_rtx, "tensorrt_rtx").logger(), capfd)
    assert double == real
    by_label = {t[0]: t for t in real}  # the facts the tracking allocator relies on
    assert by_label["allocate"][2:4] == (4096, (("allocate", 1000, 256, 1),))
    assert by_label["deallocate"][3] == (("deallocate", 4096, "int"),)
    assert by_label["async names only"][2:] == (None, (), ["Method: allocate was not overriden. Please provide an "
                                                           "implementation for this method."])
    assert by_label["None returned"][4] == ["[ERROR] Return value of allocate() could not be interpreted as an int"]
    assert by_label["no base __init__"][1] == "TypeError"
    assert by_label["runtime refuses an object"][1] == "TypeError"
    assert by_label["write-only"][1] == "AttributeError"


def test_tensorrt10_double_swaps_the_async_arguments_as_its_binding_does(fake_trt,
                                                                           capfd: pytest.CaptureFixture[str]) -> None:
    """TensorRT 10.13's trampoline (python/src/infer/pyCore.cpp) calls a Python
    ``IGpuAsyncAllocator.allocate_async`` with ``(size, alignment, stream,
    flags)``; the synchronous path is the same as TensorRT-RTX's."""
    t = {step[0]: step for step in transcript(fake_trt, from_module(fake_trt, "tensorrt").logger(), capfd)}
    assert t["async allocate"][3] == (("allocate_async", 1000, 256, 77, 1),)
    assert t["allocate"][3] == (("allocate", 1000, 256, 1),)
    assert t["runtime refuses an object"][1] == "TypeError"


# ------------------------------------------------------------------ accounting
def test_tracking_allocator_counts_what_the_library_asks_for(rtx) -> None:
    a = make_tracking_allocator(rtx.module, malloc=host_malloc, free=host_free)
    base = rtx.module.IGpuAllocator
    one = ptr(base.allocate_async(a, 1 << 20, 256, 0, 0))
    three = ptr(base.allocate_async(a, 3 << 20, 256, 0, 0))
    assert one and three and one != three
    assert a.stats() == AllocationStats(peak_bytes=4 << 20, total_bytes=4 << 20, live_bytes=4 << 20, allocations=2)
    assert base.deallocate_async(a, capsule(one), 0) is True
    half = ptr(base.allocate_async(a, 1 << 19, 256, 0, 0))
    assert half
    s = a.stats()
    assert (s.peak_bytes, s.total_bytes, s.live_bytes, s.allocations, s.frees) == (4 << 20, 9 << 19, 7 << 19, 3, 1)
    # A null pointer for nothing; an address it never gave out is not freed; null is fine to release.
    assert base.allocate_async(a, 0, 256, 0, 0) is None
    assert base.deallocate_async(a, capsule(0xDEAD00), 0) is False
    assert a.deallocate(0) is True
    assert base.reallocate(a, capsule(three), 256, 8 << 20) is None  # not offered: TensorRT keeps the old block
    for p in (three, half):
        assert base.deallocate_async(a, capsule(p), 0) is True
    assert a.stats().live_bytes == 0 and a.stats().peak_bytes == 4 << 20
    assert figures(a.stats(), "device") == {"device_peak_bytes": 4 << 20, "device_total_bytes": 9 << 19}


def test_out_of_memory_is_a_null_pointer_and_counted(rtx) -> None:
    def refuse(n: int) -> int:
        raise MemoryError(f"cudaMalloc({n}) failed: cudaErrorMemoryAllocation")

    a = make_tracking_allocator(rtx.module, malloc=refuse, free=host_free)
    assert rtx.module.IGpuAllocator.allocate_async(a, 1 << 20, 256, 0, 0) is None
    assert a.stats() == AllocationStats(failures=1)
    assert figures(a.stats(), "device") == {}  # nothing was allocated: no figures


def test_concurrent_requests_lose_nothing(rtx) -> None:
    """TensorRT calls allocators from its own threads."""
    a = make_tracking_allocator(rtx.module, malloc=host_malloc, free=host_free)
    base = rtx.module.IGpuAllocator

    def work() -> None:
        for i in range(200):
            p = ptr(base.allocate_async(a, 256 + i, 256, 0, 0))
            assert p and base.deallocate_async(a, capsule(p), 0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = a.stats()
    assert (s.allocations, s.frees, s.live_bytes) == (1600, 1600, 0)
    assert s.total_bytes == 8 * sum(256 + i for i in range(200))


def test_real_builder_and_runtime_take_the_tracking_allocator(rtx) -> None:
    a = make_tracking_allocator(rtx.module, malloc=host_malloc, free=host_free)
    builder = rtx.module.Builder(rtx.logger())
    builder.gpu_allocator = a
    runtime = rtx.module.Runtime(rtx.logger())
    runtime.gpu_allocator = a
    with pytest.raises(TypeError):
        runtime.gpu_allocator = object()


# ------------------------------------------------------------------ the builder
def spec(models: Path, **kw: Any) -> EngineSpec:
    return EngineSpec.create(WHERE, models, onnx="mlp.onnx", optimization_level=0, shapes={"input": (4, 64)}, **kw)


def test_rtx_build_records_the_builders_device_peak(rtx, models: Path) -> None:
    result = build_plan(rtx, spec(models))
    assert result.allocator is not None, "cuda-python is installed: the builder must get the tracking allocator"
    if result.allocator.allocations == 0:
        pytest.skip("TensorRT-RTX built this engine on the CPU (no GPU here) and allocated no device memory through "
                    "the builder's IGpuAllocator (0 calls): the builder's device peak needs a GPU")
    assert result.memory["build_peak_bytes"] > 0
    assert result.memory["build_peak_bytes"] <= result.memory["build_total_bytes"]
    assert result.allocator.failures == 0


def test_build_figures_travel_through_the_engine_cache(rtx, models: Path, options: Any) -> None:
    first = get_engine(spec(models), options)
    assert not first.cache_hit and first.plan_path is not None
    meta_path = first.plan_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    assert meta["build_memory"] == dict(first.build_memory)
    # As a GPU build records them (no GPU here: the CPU build allocated nothing).
    meta["build_memory"] = {"build_peak_bytes": 3 << 20, "build_total_bytes": 5 << 20}
    meta_path.write_text(json.dumps(meta))
    second = get_engine(spec(models), options)
    assert second.cache_hit
    assert dict(second.build_memory) == {"build_peak_bytes": 3 << 20, "build_total_bytes": 5 << 20}
    meta["build_memory"] = {"build_peak_bytes": -1, "build_total_bytes": "5"}  # hand-edited nonsense: ignored
    meta_path.write_text(json.dumps(meta))
    assert dict(get_engine(spec(models), options).build_memory) == {}
