"""pytest-trtperf: TensorRT inference performance as ordinary pytest tests.

The public names below are loaded on first use: pytest imports this package
with the plugin in every session, also in projects that never measure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_trtperf.core.errors import BackendUnavailable, TrtPerfError, UsageError

from pytest_trtperf.core.version import __version__

if TYPE_CHECKING:
    from pytest_trtperf.core.results import DeviceState, Distribution, Result, SeriesStats, Verdict
    from pytest_trtperf.core.workload import Batch, Workload

#: Public name -> the module that defines it.
_LAZY = {
    "DeviceState": "core.results",
    "Distribution": "core.results",
    "Result": "core.results",
    "SeriesStats": "core.results",
    "Verdict": "core.results",
    "Batch": "core.workload",
    "Workload": "core.workload",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "BackendUnavailable",
    "Batch",
    "DeviceState",
    "Distribution",
    "Result",
    "SeriesStats",
    "TrtPerfError",
    "UsageError",
    "Verdict",
    "Workload",
]
