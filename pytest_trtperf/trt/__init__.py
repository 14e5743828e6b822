"""TensorRT / TensorRT-RTX adapter: build, cache, load, run, profile.

Knows nothing about pytest: settings arrive as :class:`~pytest_trtperf.core.config.TrtOptions`. Importing this package does
not import TensorRT; :func:`.backend.load_backend` does, on first use.
"""

from __future__ import annotations

from pytest_trtperf.trt.api import engine_from_kwargs, engine_from_marker, engine_from_plan, get_engine
from pytest_trtperf.trt.backend import Backend, load_backend
from pytest_trtperf.trt.engine import EngineHandle
from pytest_trtperf.core.config import TrtOptions
from pytest_trtperf.trt.progress import ProgressEvent, line_printer
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.trt.tensors import TensorInfo

__all__ = [
    "Backend",
    "EngineHandle",
    "EngineSpec",
    "ProgressEvent",
    "TensorInfo",
    "TrtOptions",
    "engine_from_kwargs",
    "engine_from_marker",
    "engine_from_plan",
    "get_engine",
    "line_printer",
    "load_backend",
]
