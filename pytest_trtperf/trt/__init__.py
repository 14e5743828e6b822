"""TensorRT / TensorRT-RTX adapter: build, cache, load, run, profile.

Knows nothing about pytest: settings arrive as :class:`~pytest_trtperf.config.TrtOptions`. Importing this package does
not import TensorRT; :func:`.backend.load_backend` does, on first use.
"""

from __future__ import annotations

from .api import engine_from_kwargs, engine_from_marker, engine_from_plan, get_engine
from .backend import Backend, load_backend
from .engine import EngineHandle
from ..config import TrtOptions
from .progress import ProgressEvent, line_printer
from .spec import EngineSpec
from .tensors import TensorInfo

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
