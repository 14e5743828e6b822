"""The TensorRT test doubles cannot drift from the real API.

Every public name of ``fake_tensorrt_rtx`` must exist in the installed
``tensorrt_rtx`` with the same kind, parameter names, property mutability and
enum values; every public name of ``fake_tensorrt`` (the TensorRT 10.13
double) must match ``tensorrt-stubs`` (installed by ``.ci/run`` for the type
check). The comparison itself is tested on a deliberately wrong double, so a
checker that sees nothing cannot pass.
"""

from __future__ import annotations

import enum
import types

import pytest

from tests.trt import surface


def test_rtx_double_matches_the_real_tensorrt_rtx(rtx) -> None:
    from tests.fakes import fake_tensorrt_rtx as fake

    real = surface.of_module(rtx.module)
    double = surface.of_module(fake, python=True, skip=fake.FAKE_HELPERS)
    assert len(double) > 20  # the double is really read
    problems = surface.compare(double, real)
    assert not problems, "\n".join(problems)


def test_tensorrt10_double_matches_tensorrt_stubs() -> None:
    from tests.fakes import fake_tensorrt as fake

    path = surface.find_stubs()
    if path is None:
        pytest.skip("tensorrt-stubs not installed (pip install --no-deps tensorrt-stubs; .ci/run does)")
    real = surface.of_stubs(path)
    assert real["BuilderFlag"].members["FP16"] == 0 and real["ICudaEngine"].attrs  # the stubs are really read
    # Write-only properties come from the docstring; inherited methods from the stub base class.
    assert real["Runtime"].attrs["gpu_allocator"].settable and real["Builder"].attrs["gpu_allocator"].settable
    assert "reallocate" in real["IGpuAsyncAllocator"].attrs and "engine_host_code_allowed" in real["Runtime"].attrs
    double = surface.of_module(fake, python=True, skip=fake.FAKE_HELPERS)
    problems = surface.compare(double, real)
    assert not problems, "\n".join(problems)


def test_the_tensorrt10_timing_cache_matches_the_real_tensorrt_rtx_binding(rtx) -> None:
    """TensorRT-RTX keeps TensorRT 10's timing-cache API (as no-ops), so the
    double's timing cache is held to a real binding even without the stubs."""
    from tests.fakes import fake_tensorrt as fake

    double = surface.of_module(fake, python=True, skip=fake.FAKE_HELPERS)
    part = {name: double[name] for name in ("ITimingCache", "IBuilderConfig")}
    assert {"combine", "serialize", "queryKeys"} <= set(part["ITimingCache"].attrs)
    assert {"create_timing_cache", "set_timing_cache", "get_timing_cache"} <= set(part["IBuilderConfig"].attrs)
    problems = surface.compare(part, surface.of_module(rtx.module))
    assert not problems, "\n".join(problems)


def test_the_comparison_catches_each_kind_of_drift(rtx) -> None:
    """A double with a wrong enum value, a misnamed parameter, a writable
    read-only property and an invented method is rejected on each count."""

    class BuilderFlag(enum.IntEnum):
        TF32 = 5  # real: 6

    class ICudaEngine:
        def get_tensor_shape(self, tensor: str) -> None:  # real: name
            pass

        def invented(self) -> None:
            pass

        @property
        def num_io_tensors(self) -> int:
            return 0

        @num_io_tensors.setter
        def num_io_tensors(self, value: int) -> None:  # real: read-only
            pass

    wrong = types.ModuleType("tests.fakes.wrong")
    for cls in (BuilderFlag, ICudaEngine):
        cls.__module__ = "tests.fakes.wrong"
        setattr(wrong, cls.__name__, cls)
    problems = surface.compare(surface.of_module(wrong, python=True), surface.of_module(rtx.module))
    text = "\n".join(problems)
    assert "BuilderFlag: members" in text
    assert "ICudaEngine.get_tensor_shape('tensor',)" in text
    assert "ICudaEngine.invented: not in the real API" in text
    assert "ICudaEngine.num_io_tensors: settable in the double, read-only" in text
