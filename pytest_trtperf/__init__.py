"""pytest-trtperf: TensorRT inference performance as ordinary pytest tests."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import BackendUnavailable, TrtPerfError, UsageError
from .results import DeviceState, Distribution, Result, SeriesStats, Verdict
from .workload import Batch, Workload

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
