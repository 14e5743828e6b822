"""Repository-wide test configuration.

``gpu`` marks tests that need a CUDA GPU; without one they skip with a single
line, so the CPU-only CI stays green and the GPU machine runs them for real.
"""

from __future__ import annotations

import functools

import numpy  # noqa: F401 - loaded before pytester's in-process runs: they drop modules
# first imported inside them from sys.modules, and numpy cannot be imported twice.
import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with one line without one)")


@functools.lru_cache(maxsize=1)
def gpu_missing_reason() -> str | None:
    """Why GPU tests cannot run here, or None when a CUDA device answers."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return "needs cuda-python (pip install 'pytest-trtperf[gpu]') and a CUDA GPU"
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception as e:  # noqa: BLE001 - a missing driver surfaces as anything
        return f"no CUDA driver ({type(e).__name__})"
    if int(err) != 0 or count < 1:
        return "no CUDA GPU visible"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    reason = gpu_missing_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPU test: {reason}")
    for item in gpu_items:
        item.add_marker(skip)
