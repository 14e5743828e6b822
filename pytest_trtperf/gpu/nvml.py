"""Thin layer over NVML (``pynvml`` from the ``nvidia-ml-py`` package).

Why a layer: NVML is optional (the package imports without it), its init is
process-global (we refcount it so the sampler, the clock lock and the probe can
nest), and tests on machines without a GPU swap in a double at exactly this
boundary.

Swapping the NVML module: set ``TRTPERF_NVML_MODULE`` to a dotted module name
(``tests.fakes.fake_nvml``) or to a ``.py`` file path before the first NVML use
in the process. The module must follow nvidia-ml-py's API (function names,
signatures, constants, ``NVMLError`` classes). :func:`reset_module` forgets the
loaded module (tests only).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pytest_trtperf.core.errors import BackendUnavailable

#: Environment variable naming the NVML module to use instead of ``pynvml``.
ENV_MODULE = "TRTPERF_NVML_MODULE"

_lock = threading.RLock()
_module: ModuleType | None = None
_refcount = 0

#: Clock-event (throttle) reason bits, named as NVML names them, in bit order.
#: Values are NVML's ``nvmlClocksEventReason*`` constants (stable across drivers).
REASON_BITS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)


def decode_reasons(mask: int) -> tuple[str, ...]:
    """Names of the clock-event reason bits set in ``mask`` (unknown bits as hex)."""
    names = [name for bit, name in REASON_BITS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in REASON_BITS)
    if rest:
        names.append(f"0x{rest:x}")
    return tuple(names)


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or os.sep in name:
        spec = importlib.util.spec_from_file_location("_trtperf_nvml_override", name)
        if spec is None or spec.loader is None:
            raise ImportError(name)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod
    return importlib.import_module(name)


def module() -> ModuleType:
    """The NVML module (``pynvml`` or the ``TRTPERF_NVML_MODULE`` override)."""
    global _module
    with _lock:
        if _module is None:
            name = os.environ.get(ENV_MODULE) or "pynvml"
            try:
                _module = _import(name)
            except ImportError as exc:
                if name == "pynvml":
                    raise BackendUnavailable(
                        "NVML unavailable: pynvml not importable; install it with `pip install nvidia-ml-py`"
                    ) from exc
                raise BackendUnavailable(f"NVML unavailable: {ENV_MODULE}={name} does not import ({exc})") from exc
        return _module


def reset_module() -> None:
    """Forget the loaded module and refcount (tests switch fakes with this)."""
    global _module, _refcount
    with _lock:
        _module, _refcount = None, 0


def available() -> bool:
    """True when NVML imports and initialises (a driver and a GPU are present)."""
    try:
        init()
    except BackendUnavailable:
        return False
    shutdown()
    return True


def available_now() -> bool:
    """Whether NVML is initialised in this process right now (no side effects)."""
    with _lock:
        return _refcount > 0 and _module is not None


def init() -> ModuleType:
    """Initialise NVML (refcounted); raises ``BackendUnavailable`` without it."""
    global _refcount
    nv = module()
    with _lock:
        if _refcount == 0:
            try:
                nv.nvmlInit()
            except nv.NVMLError as exc:
                raise BackendUnavailable(f"NVML unavailable: nvmlInit failed ({exc}); is the NVIDIA driver loaded?") from exc
        _refcount += 1
    return nv


def shutdown() -> None:
    """Drop one reference; the last one shuts NVML down."""
    global _refcount
    with _lock:
        if _refcount == 0:
            return
        _refcount -= 1
        if _refcount == 0 and _module is not None:
            try:
                _module.nvmlShutdown()
            except _module.NVMLError:
                pass


@contextmanager
def session() -> Iterator[ModuleType]:
    """``with nvml.session() as nv:`` — init/shutdown around a block."""
    nv = init()
    try:
        yield nv
    finally:
        shutdown()


def error_kind(exc: BaseException) -> str:
    """Short, stable name of an NVML error: ``no-permission``, ``not-supported``, ..."""
    nv = _module
    value = getattr(exc, "value", None)
    if nv is None or value is None:
        return "error"
    known = {
        getattr(nv, "NVML_ERROR_NO_PERMISSION", 4): "no-permission",
        getattr(nv, "NVML_ERROR_NOT_SUPPORTED", 3): "not-supported",
        getattr(nv, "NVML_ERROR_INVALID_ARGUMENT", 2): "invalid-argument",
        getattr(nv, "NVML_ERROR_NOT_FOUND", 6): "not-found",
        getattr(nv, "NVML_ERROR_GPU_IS_LOST", 15): "gpu-lost",
    }
    return known.get(value, f"nvml-error-{value}")


def unavailable_cause(exc: BackendUnavailable) -> tuple[str, str]:
    """Why :func:`init` failed, as ``(cause, detail)``: ``not-installed`` (no
    pynvml), ``no-driver`` (pynvml, but no driver library or no driver loaded),
    ``no-permission`` or ``error``; the detail says it without a fix, so the
    caller adds the one fix that matches."""
    inner = exc.__cause__
    if isinstance(inner, ImportError):
        name = os.environ.get(ENV_MODULE) or "pynvml"
        return "not-installed", ("pynvml is not importable" if name == "pynvml" else str(exc))
    if inner is None or not is_nvml_error(inner):
        return "error", str(exc)
    nv = _module
    value = getattr(inner, "value", None)
    detail = f"nvmlInit failed ({inner})"
    if value in (getattr(nv, "NVML_ERROR_LIBRARY_NOT_FOUND", 12), getattr(nv, "NVML_ERROR_DRIVER_NOT_LOADED", 9)):
        return "no-driver", detail
    if value == getattr(nv, "NVML_ERROR_NO_PERMISSION", 4):
        return "no-permission", detail
    return "error", detail


def is_nvml_error(exc: BaseException) -> bool:
    nv = _module
    return nv is not None and isinstance(exc, nv.NVMLError)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def normalise_bus_id(bus_id: str) -> str:
    """``0000:3b:00.0`` (CUDA) and ``00000000:3B:00.0`` (NVML) compare equal."""
    parts = bus_id.strip().upper().split(":")
    if len(parts) == 2:  # "3B:00.0": no domain
        parts.insert(0, "0")
    if len(parts) != 3:
        return bus_id.strip().upper()
    domain, bus, devfn = parts
    return f"{int(domain, 16):08X}:{bus.zfill(2)}:{devfn}"


@dataclass(frozen=True, eq=False)
class Device:
    """One GPU as NVML sees it. Methods are read-only unless named lock/reset."""

    handle: Any
    nv: ModuleType

    # ---- identity -------------------------------------------------------
    def name(self) -> str:
        return _text(self.nv.nvmlDeviceGetName(self.handle))

    def uuid(self) -> str:
        return _text(self.nv.nvmlDeviceGetUUID(self.handle))

    def pci_bus_id(self) -> str:
        return normalise_bus_id(_text(self.nv.nvmlDeviceGetPciInfo(self.handle).busId))

    # ---- clocks ---------------------------------------------------------
    def supported_memory_clocks(self) -> list[int]:
        return sorted((int(c) for c in self.nv.nvmlDeviceGetSupportedMemoryClocks(self.handle)), reverse=True)

    def supported_graphics_clocks(self, memory_mhz: int) -> list[int]:
        clocks = self.nv.nvmlDeviceGetSupportedGraphicsClocks(self.handle, memory_mhz)
        return sorted((int(c) for c in clocks), reverse=True)

    def default_applications_clock(self, kind: str = "sm") -> int:
        return int(self.nv.nvmlDeviceGetDefaultApplicationsClock(self.handle, self._clock_type(kind)))

    def applications_clock(self, kind: str = "sm") -> int:
        return int(self.nv.nvmlDeviceGetApplicationsClock(self.handle, self._clock_type(kind)))

    def max_clock(self, kind: str = "sm") -> int:
        return int(self.nv.nvmlDeviceGetMaxClockInfo(self.handle, self._clock_type(kind)))

    def clock(self, kind: str = "sm") -> int:
        """Current clock in MHz; ``kind`` is ``sm``, ``mem`` or ``graphics``."""
        return int(self.nv.nvmlDeviceGetClockInfo(self.handle, self._clock_type(kind)))

    def _clock_type(self, kind: str) -> int:
        return {"sm": self.nv.NVML_CLOCK_SM, "mem": self.nv.NVML_CLOCK_MEM, "graphics": self.nv.NVML_CLOCK_GRAPHICS}[kind]

    # ---- power, thermal, events -----------------------------------------
    def power_w(self) -> float:
        return self.nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def power_limit_w(self) -> float:
        return self.nv.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0

    def temperature_c(self) -> int:
        return int(self.nv.nvmlDeviceGetTemperature(self.handle, self.nv.NVML_TEMPERATURE_GPU))

    def event_reasons(self) -> int:
        """Clock-event reason bit mask (older drivers: throttle reasons)."""
        fn = getattr(self.nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if fn is not None:
            try:
                return int(fn(self.handle))
            except self.nv.NVMLError as exc:
                if error_kind(exc) not in ("not-supported", "nvml-error-13"):  # 13: function not found
                    raise
        return int(self.nv.nvmlDeviceGetCurrentClocksThrottleReasons(self.handle))

    def compute_pids(self) -> tuple[int, ...]:
        """PIDs with a compute context on this GPU (host PIDs inside containers)."""
        return tuple(int(p.pid) for p in self.nv.nvmlDeviceGetComputeRunningProcesses(self.handle))

    def active_pids(self, since_us: int) -> tuple[int, ...] | None:
        """PIDs whose kernels used this GPU's SMs (``smUtil > 0``) in the
        driver's utilization samples newer than ``since_us`` (CPU time, us
        since the epoch): a process that only holds a context (a notebook, the
        parent of a test run) is on the GPU but does not share it. None when
        the driver cannot say (per-process utilization not supported)."""
        fn = getattr(self.nv, "nvmlDeviceGetProcessUtilization", None)
        if fn is None:
            return None
        try:
            samples = fn(self.handle, int(since_us))
        except self.nv.NVMLError as exc:
            if error_kind(exc) == "not-found" or getattr(exc, "value", None) == 0:
                return ()  # no samples since then: nobody ran kernels
            return None
        return tuple(sorted({int(s.pid) for s in samples if int(s.smUtil) > 0}))

    def api_restricted(self, api: str = "application_clocks") -> bool:
        """Whether NVML restricts ``api`` to root (``nvidia-smi -acp``)."""
        api_type = {
            "application_clocks": self.nv.NVML_RESTRICTED_API_SET_APPLICATION_CLOCKS,
            "auto_boosted_clocks": self.nv.NVML_RESTRICTED_API_SET_AUTO_BOOSTED_CLOCKS,
        }[api]
        return bool(self.nv.nvmlDeviceGetAPIRestriction(self.handle, api_type))

    # ---- changes (root) -------------------------------------------------
    def lock_gpu_clocks(self, mhz: int) -> None:
        self.nv.nvmlDeviceSetGpuLockedClocks(self.handle, mhz, mhz)

    def reset_gpu_clocks(self) -> None:
        self.nv.nvmlDeviceResetGpuLockedClocks(self.handle)

    def lock_memory_clocks(self, mhz: int) -> None:
        self.nv.nvmlDeviceSetMemoryLockedClocks(self.handle, mhz, mhz)

    def reset_memory_clocks(self) -> None:
        self.nv.nvmlDeviceResetMemoryLockedClocks(self.handle)


def device_count() -> int:
    return int(module().nvmlDeviceGetCount())


def by_index(index: int) -> Device:
    """NVML index (PCI bus order; NOT the CUDA index unless CUDA_DEVICE_ORDER=PCI_BUS_ID)."""
    nv = module()
    return Device(nv.nvmlDeviceGetHandleByIndex(index), nv)


def by_uuid(uuid: str) -> Device:
    nv = module()
    return Device(nv.nvmlDeviceGetHandleByUUID(uuid), nv)


def by_pci_bus_id(bus_id: str) -> Device:
    """The handle for the GPU at ``bus_id``: independent of CUDA_VISIBLE_DEVICES."""
    nv = module()
    return Device(nv.nvmlDeviceGetHandleByPciBusId(normalise_bus_id(bus_id)), nv)


def all_devices() -> list[Device]:
    return [by_index(i) for i in range(device_count())]


def driver_version() -> str:
    return _text(module().nvmlSystemGetDriverVersion())


def process_name(pid: int) -> str | None:
    """The executable NVML names for ``pid`` (``nvmlSystemGetProcessName``;
    host PIDs inside containers), without its directory; None when NVML
    cannot say."""
    fn = getattr(module(), "nvmlSystemGetProcessName", None)
    if fn is None:
        return None
    try:
        name = _text(fn(int(pid))).strip()
    except Exception:  # noqa: BLE001 - a name is a courtesy, never a failure
        return None
    return os.path.basename(name) or None
