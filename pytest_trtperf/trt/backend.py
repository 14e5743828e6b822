"""One adapter over TensorRT 10.x, TensorRT 11.x and TensorRT-RTX.

Every difference between the libraries lives here, so the rest of ``trt/``
calls one vocabulary:

* TensorRT 11 and TensorRT-RTX are strongly typed: precision builder flags
  (FP16, BF16, INT8, FP8) are gone; TensorRT 10 still has them.
* TensorRT-RTX keeps the timing-cache API but it is a no-op (it warns with a
  ``DeprecationWarning``); it can tell why a plan is invalid
  (``Runtime.get_engine_validity``) where full TensorRT cannot.
* Module names: ``tensorrt``; ``tensorrt_rtx`` (NVIDIA's wheel) or
  ``tensorrt_rtx_bindings`` (standalone ``tensorrt-rtx-cu13-bindings`` wheel).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..config import BACKEND_CHOICES
from ..errors import BackendUnavailable, UsageError

#: ``--trt-backend`` values, and the modules each one may import, in order.
BACKEND_MODULES: dict[str, tuple[str, ...]] = {
    "tensorrt": ("tensorrt",),
    "tensorrt_rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}

#: Precisions the builder can be asked for (trtexec ``--fp16`` etc.).
PRECISIONS = ("auto", "fp32", "tf32", "fp16", "bf16", "int8", "fp8")
_PRECISION_FLAG = {"tf32": "TF32", "fp16": "FP16", "bf16": "BF16", "int8": "INT8", "fp8": "FP8"}

#: Plan-file magic numbers: the first four bytes of a serialized engine.
PLAN_MAGIC = {b"ftrt": "tensorrt", b"vtrt": "tensorrt_rtx"}

_cache: dict[str, "Backend"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Backend:
    """The loaded library and what it can do. Compare by name and version."""

    name: str
    version: str
    module: Any = field(compare=False, repr=False)

    # -- identity ---------------------------------------------------------
    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            return 0

    @property
    def label(self) -> str:
        """Human name with version: ``TensorRT 10.13.0`` / ``TensorRT-RTX 1.7.1``."""
        return f"{'TensorRT-RTX' if self.is_rtx else 'TensorRT'} {self.version}"

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt_rtx"

    def identity(self) -> dict[str, str]:
        return {"backend": self.name, "version": self.version}

    # -- capabilities -----------------------------------------------------
    @property
    def strongly_typed_only(self) -> bool:
        """TensorRT 11 and TensorRT-RTX have no weak typing."""
        return self.is_rtx or self.major >= 11

    @property
    def timing_cache_effective(self) -> bool:
        """TensorRT-RTX accepts a timing cache but ignores it."""
        return not self.is_rtx

    def builder_flag(self, name: str) -> Any | None:
        return getattr(self.module.BuilderFlag, name.upper(), None)

    def precision_flags(self, precision: tuple[str, ...], where: str) -> tuple[Any, ...]:
        """Builder flags for ``precision``; a one-line error when the library has none."""
        flags = []
        for p in precision:
            if p in ("auto", "fp32"):
                continue
            flag_name = _PRECISION_FLAG[p]
            flag = None if (self.strongly_typed_only and p != "tf32") else self.builder_flag(flag_name)
            if flag is None:
                raise UsageError(
                    f"{where}: precision={p!r} needs BuilderFlag.{flag_name}, which {self.label} does not have "
                    f"(strongly typed); export the ONNX model in {p} and use precision='auto'"
                )
            flags.append(flag)
        return tuple(flags)

    def network_flags(self, strongly_typed: bool) -> int:
        """``create_network`` flags: strongly typed where asked and still a flag."""
        flag = getattr(self.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed and flag is not None and not (self.major >= 11 and not self.is_rtx):
            return 1 << int(flag)
        return 0

    # -- objects ----------------------------------------------------------
    def logger(self, verbose: bool = False) -> "Any":
        """An ``ILogger`` that keeps errors and warnings for one-line messages."""
        return _make_logger(self.module, verbose)

    def set_timing_cache(self, config: Any, data: bytes) -> bool:
        """Attach a timing cache (``data`` empty: a fresh one). False if unreadable."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                cache = config.create_timing_cache(data)
                return cache is not None and bool(config.set_timing_cache(cache, False))
            except Exception:  # noqa: BLE001 - TensorRT raises on a corrupt cache blob
                if not data:
                    raise
                return False

    def timing_cache_bytes(self, config: Any) -> bytes | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cache = config.get_timing_cache()
            return None if cache is None else bytes(cache.serialize())

    def plan_problem(self, runtime: Any, data: bytes) -> str | None:
        """Why ``data`` cannot be deserialized here, when the library can tell.

        Returns None when the plan looks fine or the library cannot check.
        """
        magic = bytes(data[:4])
        owner = PLAN_MAGIC.get(magic)
        if owner is not None and owner != self.name:
            return f"built by {'TensorRT-RTX' if owner == 'tensorrt_rtx' else 'TensorRT'}, not {self.label}"
        check = getattr(runtime, "get_engine_validity", None)
        if check is None:
            return None
        validity, diagnostics = check(data)
        bits = int(diagnostics)
        reasons = [
            text
            for bit, text in (
                ("VERSION_MISMATCH", f"built by another TensorRT version than {self.label}"),
                ("UNSUPPORTED_CC", "built for another GPU (compute capability)"),
                ("MALFORMED_ENGINE", "not a valid or complete engine (truncated or foreign file)"),
                ("OLD_CUDA_DRIVER", "needs a newer CUDA driver"),
                ("OLD_CUDA_RUNTIME", "needs a newer CUDA runtime"),
                ("INSUFFICIENT_GPU_MEMORY", "needs more GPU memory than this GPU has"),
            )
            if bits & int(getattr(self.module.EngineInvalidityDiagnostics, bit, 0))
        ]
        return "; ".join(reasons) or None

    def device_memory_size(self, engine: Any) -> int | None:
        for attr in ("device_memory_size_v2", "device_memory_size"):
            value = getattr(engine, attr, None)
            if value is not None:
                return int(value)
        return None

    def gpu_identity(self) -> str:
        return gpu_identity()


_gc_depth = 0
_gc_lock = threading.Lock()
_gc_was_enabled = False


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause Python's cyclic GC around TensorRT calls.

    TensorRT calls our Python logger/monitor while holding internal locks. If
    the GC runs inside such a callback and frees an *older* TensorRT object
    (kept alive by an exception traceback cycle), that object's destructor
    waits on the same lock: a deadlock we hit in the test suite. Objects are
    freed by reference counting instead (see ``strip_traceback``).
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def _make_logger(trt: Any, verbose: bool) -> Any:
    severity = trt.ILogger.Severity

    class CapturingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        """Keeps error messages so failures can be reported in one line."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.min_severity = severity.VERBOSE if verbose else severity.WARNING
            self.errors: list[str] = []
            self.warnings: list[str] = []
            self.messages: list[str] = []

        def log(self, sev: Any, msg: str) -> None:
            # Called from TensorRT's own threads while it may hold internal
            # locks: only list appends here (atomic under the GIL), never
            # ``logging``, whose module lock deadlocked the builder.
            if sev in (severity.INTERNAL_ERROR, severity.ERROR):
                self.errors.append(msg)
            elif sev == severity.WARNING:
                self.warnings.append(msg)
            elif verbose:
                self.messages.append(msg)

    return CapturingLogger()


def gpu_identity() -> str:
    """``<name> sm<major><minor>`` of the current CUDA device, or ``no-gpu``.

    Part of the engine-cache key: a plan is specific to a GPU model.
    """
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        return "no-gpu"
    try:
        err, device = cudart.cudaGetDevice()
        if int(err) != 0:
            return "no-gpu"
        err, props = cudart.cudaGetDeviceProperties(device)
        if int(err) != 0:
            return "no-gpu"
        name = props.name.split(b"\0", 1)[0].decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return f"{name.strip()} sm{props.major}{props.minor}"
    except Exception:  # noqa: BLE001 - no driver, no device: same answer
        return "no-gpu"


def from_module(module: Any, name: str | None = None) -> Backend:
    """Wrap an already imported module (tests pass the fake here)."""
    if name is None:
        name = "tensorrt_rtx" if "rtx" in getattr(module, "__name__", "") else "tensorrt"
    return Backend(name=name, version=str(getattr(module, "__version__", "0")), module=module)


def load_backend(choice: str = "auto", importer: Callable[[str], Any] = importlib.import_module) -> Backend:
    """Import the library ``choice`` names (``auto``: TensorRT first, then TensorRT-RTX).

    Raises :class:`BackendUnavailable` with one line listing what was tried.
    """
    if choice not in BACKEND_CHOICES:
        raise UsageError(f"--trt-backend={choice!r}: choose one of {', '.join(BACKEND_CHOICES)}")
    with _lock:
        if choice in _cache:
            return _cache[choice]
        names = list(BACKEND_MODULES) if choice == "auto" else [choice]
        tried: list[str] = []
        for name in names:
            for mod_name in BACKEND_MODULES[name]:
                try:
                    module = importer(mod_name)
                except ImportError:
                    tried.append(mod_name)
                    continue
                except Exception as exc:  # noqa: BLE001 - a broken install is "unavailable" too
                    tried.append(f"{mod_name} ({type(exc).__name__}: {exc})")
                    continue
                backend = from_module(module, name)
                _cache[choice] = backend
                return backend
        raise BackendUnavailable(
            f"TensorRT is not installed (tried {', '.join(tried)}); "
            "pip install 'pytest-trtperf[rtx]' or install tensorrt"
        )
