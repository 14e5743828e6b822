"""One adapter over TensorRT 10.x, TensorRT 11.x and TensorRT-RTX.

Every difference between the libraries lives here, so the rest of ``trt/``
calls one vocabulary:

* TensorRT 11 and TensorRT-RTX are strongly typed: precision builder flags
  (FP16, BF16, INT8, FP8, INT4) are gone; TensorRT 10 still has them. TF32
  exists in all three and is on by default (``precision="fp32"`` clears it,
  trtexec ``--noTF32``).
* TensorRT-RTX keeps the timing-cache API but it is a no-op (it warns with a
  ``DeprecationWarning``); it can tell why a plan is invalid
  (``Runtime.get_engine_validity``) where full TensorRT cannot; its wheels have
  no lean runtime, so it cannot make version-compatible plans.
* Module names: ``tensorrt``; ``tensorrt_rtx`` (NVIDIA's wheel) or
  ``tensorrt_rtx_bindings`` (standalone ``tensorrt-rtx-cu13-bindings`` wheel).
  An importable module is taken only when it is a real library: type-stub
  packages (``tensorrt-stubs``) install an empty ``tensorrt`` namespace.
* One logger per library and process: TensorRT-RTX warns whenever a builder
  or runtime gets a logger other than the one already registered, and the
  plugin library keeps the first logger it is given for good.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pytest_trtperf.core.config import BACKEND_CHOICES
from pytest_trtperf.core.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    import tensorrt as trt

    from pytest_trtperf.trt.types import RtxRuntime, TrtModule

#: ``--trt-backend`` values, and the modules each one may import, in order.
BACKEND_MODULES: dict[str, tuple[str, ...]] = {
    "tensorrt": ("tensorrt",),
    "tensorrt_rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}

#: What a module must have to be a TensorRT library (a stub package has none).
REQUIRED_NAMES = ("Builder", "Runtime", "ILogger", "OnnxParser", "BuilderFlag")

#: Precisions the builder can be asked for, each a trtexec flag:
#: fp32 ``--noTF32``; tf32 the default; fp16/bf16/int8/fp8/int4 ``--fp16`` etc.
PRECISIONS = ("auto", "fp32", "tf32", "fp16", "bf16", "int8", "fp8", "int4")
#: Precisions that are weak-typing builder flags (TensorRT 10 only).
LOWERED = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8", "fp8": "FP8", "int4": "INT4"}

#: Plan-file magic numbers: the first four bytes of a serialized engine.
PLAN_MAGIC = {b"ftrt": "tensorrt", b"vtrt": "tensorrt_rtx"}

#: Logger fragments meaning "there is no usable GPU here", not "bad engine".
NO_GPU_MARKERS = ("cudaError 35", "cudaError 100", "no CUDA-capable device", "driver version is insufficient")

_cache: dict[str, Backend] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class PrecisionFlags:
    """Builder flags for a ``precision=``: to set, and to clear (TF32)."""

    set: tuple[Any, ...] = ()
    clear: tuple[Any, ...] = ()


@dataclass(frozen=True)
class PlanCheck:
    """What the library says about a plan before deserializing it.

    ``problem``: this plan cannot load here (rebuild it). ``unavailable``: this
    machine cannot load any plan (no GPU or driver), which says nothing about the
    plan. ``note``: it loads, with a caveat.
    """

    problem: str | None = None
    unavailable: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Backend:
    """The loaded library and what it can do. Compare by name and version."""

    name: str
    version: str
    module: TrtModule = field(compare=False, repr=False)
    #: One line per import candidate skipped on the way (e.g. a stubs package).
    notes: tuple[str, ...] = field(default=(), compare=False)

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

    def version_compatible_problem(self) -> str | None:
        """Why this library cannot make version-compatible plans, or None."""
        if self.is_rtx:
            return (f"{self.label} wheels ship no lean runtime (libnvinfer_lean), so a version-compatible "
                    "plan can be neither built nor loaded")
        return None

    @property
    def user_allocation_flag(self) -> Any | None:
        """TensorRT-RTX's ``REQUIRE_USER_ALLOCATION``: NVIDIA requires it for CUDA
        stream capture of an RTX engine; None on libraries without it."""
        return self.builder_flag("REQUIRE_USER_ALLOCATION") if self.is_rtx else None

    def builder_flag(self, name: str) -> Any | None:
        return getattr(self.module.BuilderFlag, name.upper(), None)

    def precision_flags(self, precision: tuple[str, ...], where: str) -> PrecisionFlags:
        """trtexec's precision flags for ``precision``; a one-line error for a
        combination trtexec refuses or a flag this library does not have."""
        chosen = set(precision) - {"auto"}
        if {"fp32", "tf32"} <= chosen:
            raise UsageError(f"{where}: precision fp32 (TF32 off, trtexec --noTF32) contradicts tf32; choose one")
        if {"fp8", "int8"} <= chosen:
            raise UsageError(f"{where}: precision fp8 and int8 cannot be enabled together (as in trtexec)")
        to_set: list[Any] = []
        to_clear: list[Any] = []
        for p in sorted(chosen):
            if p in LOWERED:
                flag_name = LOWERED[p]
                flag = None if self.strongly_typed_only else self.builder_flag(flag_name)
                if flag is None:
                    raise UsageError(
                        f"{where}: precision={p!r} needs BuilderFlag.{flag_name}, which {self.label} does not have "
                        f"(strongly typed); export the ONNX model in {p} and use precision='auto'"
                    )
                to_set.append(flag)
                continue
            tf32 = self.builder_flag("TF32")
            if tf32 is None:
                raise UsageError(f"{where}: precision={p!r} needs BuilderFlag.TF32, which {self.label} does not have")
            (to_clear if p == "fp32" else to_set).append(tf32)
        return PrecisionFlags(set=tuple(to_set), clear=tuple(to_clear))

    def network_flags(self, strongly_typed: bool) -> int:
        """``create_network`` flags: strongly typed where asked and still a flag
        (TensorRT 11 removed the flag: every network is strongly typed)."""
        flag = getattr(self.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed and flag is not None and not (self.major >= 11 and not self.is_rtx):
            return 1 << int(flag)
        return 0

    # -- objects ----------------------------------------------------------
    def logger(self) -> CapturingLogger:
        """This library's one logger for the process (see :class:`CapturingLogger`)."""
        return _logger_for(self.module)

    def init_plugins(self) -> str | None:
        """Register TensorRT's own plugins (``init_libnvinfer_plugins``), as trtexec
        and Polygraphy do before parsing or deserializing: an engine or ONNX model
        using them fails otherwise. Idempotent. Returns a note when it fails."""
        init = getattr(self.module, "init_libnvinfer_plugins", None)
        if init is None:
            return None
        log = self.logger()
        mark = log.mark()
        try:
            ok = bool(init(log, ""))
        except Exception as exc:  # noqa: BLE001 - a plugin library that will not load
            return f"{self.label}: TensorRT plugins unavailable ({type(exc).__name__}: {exc})"
        if not ok:
            detail = last_line(log.errors(since=mark)) or "no reason given"
            return f"{self.label}: init_libnvinfer_plugins failed ({detail}); engines using TensorRT plugins will not load"
        return None

    def set_timing_cache(self, config: trt.IBuilderConfig, data: bytes) -> bool:
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

    def merged_timing_cache(self, config: trt.IBuilderConfig, on_disk: bytes) -> tuple[bytes | None, str | None]:
        """The build's timing cache combined with the entries ``on_disk`` (what
        other builds saved meanwhile), serialized; and a note when they could not
        be combined (another TensorRT version or GPU: the file is replaced)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ours = config.get_timing_cache()
            if ours is None:
                return None, None
            note = None
            if on_disk:
                try:
                    theirs = config.create_timing_cache(on_disk)
                    combined = theirs is not None and bool(ours.combine(theirs, False))
                except Exception:  # noqa: BLE001 - corrupt or foreign file
                    combined = False
                if not combined:
                    note = "the timing cache on disk came from another TensorRT version or GPU; replaced it"
            return bytes(ours.serialize()), note

    def check_plan(self, data: bytes) -> PlanCheck:
        """What can be known about ``data`` without deserializing it: the
        other library's magic number, and on TensorRT-RTX the library's own
        verdict (``get_engine_validity``) with every diagnostic bit named."""
        owner = PLAN_MAGIC.get(bytes(data[:4]))
        if owner is not None and owner != self.name:
            return PlanCheck(problem=f"built by {'TensorRT-RTX' if owner == 'tensorrt_rtx' else 'TensorRT'}, not {self.label}")
        log = self.logger()
        runtime = self.module.Runtime(log)
        check = getattr(runtime, "get_engine_validity", None)
        if check is None:
            return PlanCheck()
        mark = log.mark()
        validity, diagnostics = cast("RtxRuntime", runtime).get_engine_validity(data)
        errors = log.errors(since=mark)
        verdict = getattr(validity, "name", str(validity)).split(".")[-1]
        if verdict == "VALID":
            return PlanCheck()
        if verdict == "SUBOPTIMAL":
            return PlanCheck(note=f"{self.label} rates this plan suboptimal for this GPU (built for another one); rebuild it here for full speed")
        diag = self.module_enum("EngineInvalidityDiagnostics")
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
            if bits & int(getattr(diag, bit, 0))
        ]
        if reasons:
            return PlanCheck(problem="; ".join(reasons))
        cuda_error = bits & int(getattr(diag, "CUDA_ERROR", 0))
        if cuda_error or no_gpu(errors):
            return PlanCheck(unavailable=f"no usable GPU ({last_line(errors) or 'CUDA error while checking the plan'})")
        return PlanCheck(problem=f"{self.label} rates the plan invalid ({last_line(errors) or 'no reason given'})")

    def module_enum(self, name: str) -> Any:
        """An enum the stubs of TensorRT 10.13 may not have (e.g. RTX-only)."""
        return getattr(self.module, name, None)

    def device_memory_size(self, engine: trt.ICudaEngine) -> int | None:
        for attr in ("device_memory_size_v2", "device_memory_size"):
            value = getattr(engine, attr, None)
            if value is not None:
                return int(value)
        return None

    def device_memory_size_for_profile(self, engine: trt.ICudaEngine, profile: int) -> int | None:
        """Execution context memory for one optimization profile
        (``get_device_memory_size_for_profile_v2``), else the engine-wide size."""
        getter = getattr(engine, "get_device_memory_size_for_profile_v2", None)
        if getter is not None:
            try:
                return int(getter(int(profile)))
            except Exception:  # noqa: BLE001 - a library that refuses the query: the engine-wide figure
                pass
        return self.device_memory_size(engine)

    def weights_size(self, engine: trt.ICudaEngine) -> int | None:
        """Total weights in bytes (``get_engine_stat(EngineStat.TOTAL_WEIGHTS_SIZE)``),
        or None where the library does not report it (TensorRT 10.13 has no EngineStat)."""
        stat = getattr(self.module_enum("EngineStat"), "TOTAL_WEIGHTS_SIZE", None)
        getter = getattr(engine, "get_engine_stat", None)
        if stat is None or getter is None:
            return None
        try:
            value = int(getter(stat))
        except Exception:  # noqa: BLE001
            return None
        return value if value >= 0 else None

    def gpu_identity(self) -> str:
        return gpu_identity()


def no_gpu(errors: list[str]) -> bool:
    """True when logger lines say there is no usable GPU (not a bad plan)."""
    return any(marker in e for e in errors for marker in NO_GPU_MARKERS)


def last_line(errors: list[str]) -> str:
    """The last logger line, on one line, at most 300 characters."""
    return " ".join(errors[-1].split())[:300] if errors else ""


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


if TYPE_CHECKING:

    class CapturingLogger(trt.ILogger):
        """What :func:`_logger_for` returns: a subclass of the loaded module's
        ``ILogger`` (so TensorRT accepts it) with the methods below."""

        level: int

        def mark(self) -> int: ...
        def errors(self, since: int = 0) -> list[str]: ...
        def warnings(self, since: int = 0) -> list[str]: ...

else:

    class CapturingLogger:
        """Interface of the logger :func:`_logger_for` builds (a ``trt.ILogger``
        subclass of the loaded module): recent warnings and errors, by sequence.

        Filtering happens in ``log()``: only ``trt.Logger`` has a ``min_severity``
        the library reads; an ``ILogger`` subclass is called for every message.
        Operations take a :meth:`mark` first and read what was logged after it.
        """


_loggers: dict[int, CapturingLogger] = {}
_loggers_lock = threading.Lock()


def _logger_for(trt_module: Any) -> CapturingLogger:
    with _loggers_lock:
        logger = _loggers.get(id(trt_module))
        if logger is None:
            # Kept for the life of the process: the plugin library stores the
            # pointer of the first logger it sees.
            logger = _make_logger(trt_module)
            _loggers[id(trt_module)] = logger
        return logger


def _make_logger(trt_module: Any) -> CapturingLogger:
    base = trt_module.ILogger
    warning = int(base.Severity.WARNING)
    error = int(base.Severity.ERROR)

    class _Logger(base):
        def __init__(self) -> None:
            base.__init__(self)
            self.level = warning
            self._seq = itertools.count(1)
            self._records: deque[tuple[int, int, str]] = deque(maxlen=512)
            self._module = trt_module  # keeps the library loaded while we live

        def log(self, severity: Any, msg: str) -> None:
            # Called from TensorRT's own threads while it may hold internal
            # locks: only an atomic counter and a deque append here, never
            # ``logging``, whose module lock deadlocked the builder.
            sev = int(severity)
            if sev > self.level:
                return
            self._records.append((next(self._seq), sev, msg))

        def mark(self) -> int:
            return next(self._seq)

        def _since(self, since: int, lo: int, hi: int) -> list[str]:
            return [m for seq, sev, m in list(self._records) if seq > since and lo <= sev <= hi]

        def errors(self, since: int = 0) -> list[str]:
            return self._since(since, 0, error)

        def warnings(self, since: int = 0) -> list[str]:
            return self._since(since, warning, warning)

    return cast(CapturingLogger, _Logger())


def gpu_identity() -> str:
    """``<name> sm<major><minor>`` of the current CUDA device, or ``no-gpu``.

    Part of the engine-cache key: a plan is specific to a GPU model.
    """
    try:
        # cuda.bindings' runtime is a compiled module without type information.
        from cuda.bindings import runtime as cudart  # pyright: ignore[reportAttributeAccessIssue]  # a compiled module without stubs
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


def not_a_library(module: Any, mod_name: str) -> str | None:
    """Why ``module`` is not a TensorRT library (None when it is one).

    ``tensorrt-stubs`` installs ``tensorrt/__init__.pyi`` only: ``import
    tensorrt`` then succeeds as an empty namespace package.
    """
    missing = [n for n in REQUIRED_NAMES if not hasattr(module, n)]
    if not missing:
        return None
    paths = list(getattr(module, "__path__", None) or [])
    where = getattr(module, "__file__", None) or (paths[0] if paths else "?")
    kind = "a namespace package (type stubs such as tensorrt-stubs?)" if getattr(module, "__file__", None) is None else "not TensorRT"
    return f"'{mod_name}' at {where} is {kind}: no {', '.join(missing)}"


def from_module(module: Any, name: str | None = None, notes: tuple[str, ...] = ()) -> Backend:
    """Wrap an already imported module (tests pass the fake here)."""
    if name is None:
        name = "tensorrt_rtx" if "rtx" in getattr(module, "__name__", "") else "tensorrt"
    return Backend(name=name, version=str(getattr(module, "__version__", "0")), module=module, notes=notes)


def load_backend(choice: str = "auto", importer: Callable[[str], Any] = importlib.import_module) -> Backend:
    """Import the library ``choice`` names (``auto``: TensorRT first, then TensorRT-RTX).

    A module that imports but is no TensorRT library is skipped with a one-line
    note on the backend. Raises :class:`BackendUnavailable` with one line
    listing what was tried.
    """
    if choice not in BACKEND_CHOICES:
        raise UsageError(f"--trt-backend={choice!r}: choose one of {', '.join(BACKEND_CHOICES)}")
    with _lock:
        if choice in _cache:
            return _cache[choice]
        names = list(BACKEND_MODULES) if choice == "auto" else [choice]
        tried: list[str] = []
        notes: list[str] = []
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
                why = not_a_library(module, mod_name)
                if why is not None:
                    tried.append(f"{mod_name} (not a library)")
                    notes.append(f"skipped {why}")
                    continue
                backend = from_module(module, name, tuple(notes))
                _cache[choice] = backend
                return backend
        detail = f"; {'; '.join(notes)}" if notes else ""
        raise BackendUnavailable(
            f"TensorRT is not installed (tried {', '.join(tried)}){detail}; "
            "pip install 'pytest-trtperf[rtx]' or install tensorrt"
        )
