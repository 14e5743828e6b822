"""GPU test helpers: known-duration kernels and the card's event-pair floor.

Tests that need a GPU carry ``@pytest.mark.gpu`` (or ``pytestmark``); the
repository's root ``conftest.py`` skips them with one line without a GPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.gpu import cuda

_HERE = Path(__file__).parent


def load_kernels_module() -> Any:
    """Import gpu_kernels.py by path (works under any pytest import mode)."""
    spec = importlib.util.spec_from_file_location("trtperf_gpu_kernels", _HERE / "gpu_kernels.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def kernels() -> Any:
    """Compiled spin / add_one kernels (NVRTC), shared by the session. Only
    ``gpu``-marked tests use it: without a GPU the root gate has skipped them."""
    k = load_kernels_module().Kernels()
    # First launches pay lazy module loading; keep that out of every test.
    buf = cuda.DeviceBuffer(1024)
    for _ in range(3):
        k.spin(0, 1000)
        k.add_one(0, buf.ptr, 256)
    cuda.device_synchronize()
    buf.close()
    return k


_FLOOR_KEY = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def floor(kernels: Any, request: pytest.FixtureRequest) -> Any:
    """This GPU's own cost of an event pair around a kernel, measured before
    any timed assertion (timing_bounds.py derives every bound from it)."""
    from timing_bounds import measure_floor

    f = measure_floor(kernels)
    request.config.stash[_FLOOR_KEY] = f"{cuda.device_name(0)}: {f.pair_us:.2f} us"
    return f


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line for bench/RESULTS.md: which card, which floor the bounds used."""
    line = config.stash.get(_FLOOR_KEY, None)
    if line is not None:
        terminalreporter.write_line(f"GPU tests: event-pair floor measured on {line}")


@pytest.fixture
def stream() -> Any:
    s = cuda.Stream()
    yield s
    s.close()
