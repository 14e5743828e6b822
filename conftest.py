"""Repository-wide test configuration: the one ``gpu`` skip gate, and the
``long`` tests first.

``gpu`` marks tests that need a CUDA GPU; without one they skip with a single
line saying what is missing (cuda-python, driver, device), so the CPU-only CI
stays green and the GPU machine runs them for real. ``tests/`` uses this gate
(its GPU fixtures, ``tests/gpu/conftest.py``, rely on it and do not skip
again). ``example_suite/`` does not: it is what users copy into projects that
have no such conftest, so its GPU and TensorRT modules skip with their own
``pytestmark = pytest.mark.skipif(...)``.

``long`` marks the few tests that run for tens of seconds (the README clone
test, end-to-end runs under load). They are collected first, so they start at once
and the workers finish together, instead of one worker starting a two-minute
test when the other has little left (under xdist, ``tests/conftest.py`` then
puts them at the head of the second worker's share: ``cpu_slots.schedule``).
"""

from __future__ import annotations

import functools

import numpy  # noqa: F401 - loaded before pytester's in-process runs: they drop modules
# first imported inside them from sys.modules, and numpy cannot be imported twice.
import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU and cuda-python (skipped with one line otherwise)")
    config.addinivalue_line("markers", "long: runs for tens of seconds; collected first, so xdist workers end together")


@functools.lru_cache(maxsize=1)
def gpu_missing_reason() -> str | None:
    """Why GPU tests cannot run here (one line), or None when a CUDA device answers."""
    from pytest_trtperf.gpu.cuda import unavailable_reason

    return unavailable_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: otherwise collection order
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = gpu_missing_reason() if gpu_items else None
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPU tests skipped: {reason}")
    for item in gpu_items:
        item.add_marker(skip)
