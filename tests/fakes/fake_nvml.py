"""FakeNVML: a stand-in for ``pynvml`` (nvidia-ml-py) on machines without a GPU.

Used through ``TRTPERF_NVML_MODULE=<path of this file>`` (or the dotted name
``tests.fakes.fake_nvml``). Function names, argument lists, constants and error
classes follow nvidia-ml-py, so the code under test cannot tell the difference
at the call sites it uses.

The whole state (GPUs, their clocks, locks, permission, processes, a log of the
calls that change something) lives in a JSON file named by
``TRTPERF_FAKE_NVML_STATE``. Every call reads it and every change writes it
atomically under a file lock, so a parent test can look at the state after a
pytest subprocess (and its xdist workers) was killed: the file tells whether the
clocks were left locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import string
import sys
import time
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENV_STATE = "TRTPERF_FAKE_NVML_STATE"

# ---- constants (values as in nvidia-ml-py) ----------------------------------
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

NVML_TEMPERATURE_GPU = 0

NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_RESTRICTED_API_SET_APPLICATION_CLOCKS = 0
NVML_RESTRICTED_API_SET_AUTO_BOOSTED_CLOCKS = 1

nvmlClocksEventReasonGpuIdle = 0x001
nvmlClocksEventReasonApplicationsClocksSetting = 0x002
nvmlClocksEventReasonSwPowerCap = 0x004
nvmlClocksEventReasonHwSlowdown = 0x008
nvmlClocksEventReasonSyncBoost = 0x010
nvmlClocksEventReasonSwThermalSlowdown = 0x020
nvmlClocksEventReasonHwThermalSlowdown = 0x040
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x080
nvmlClocksEventReasonDisplayClockSetting = 0x100
nvmlClocksEventReasonNone = 0
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap
nvmlClocksThrottleReasonSwThermalSlowdown = nvmlClocksEventReasonSwThermalSlowdown
nvmlClocksThrottleReasonHwThermalSlowdown = nvmlClocksEventReasonHwThermalSlowdown


# ---- errors: one subclass per NVML_ERROR_* code, NVMLError(code) maps to it --
class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}
    _text = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    }

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return self._text.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NVMLError) and self.value == other.value

    __hash__ = Exception.__hash__


def _make_error_classes() -> None:
    mod = sys.modules[__name__]
    for const in [n for n in dir(mod) if n.startswith("NVML_ERROR_")]:
        cls_name = "NVMLError_" + string.capwords(const[len("NVML_ERROR_"):], "_").replace("_", "")
        code = getattr(mod, const)

        def new(cls: type, *args: Any, _code: int = code) -> NVMLError:
            return NVMLError.__new__(cls, _code)

        cls = type(cls_name, (NVMLError,), {"__new__": new})
        cls.__module__ = __name__
        setattr(mod, cls_name, cls)
        NVMLError._valClassMapping[code] = cls


_make_error_classes()


# ---- state file ------------------------------------------------------------
def make_gpu(index: int, **over: Any) -> dict[str, Any]:
    """An H100-like GPU description; ``over`` replaces fields."""
    gpu = {
        "uuid": f"GPU-{index:08x}-fake-4000-8000-{index:012x}",
        "pci_bus_id": f"00000000:{0x18 + index * 0x10:02X}:00.0",
        "name": "NVIDIA H100 80GB HBM3",
        "memory_clocks": [2619],
        "graphics_clocks": {"2619": list(range(1980, 344, -15))},
        "default_app_sm": 1755,
        "default_app_mem": 2619,
        "max_sm": 1980,
        "max_mem": 2619,
        "idle_sm": 345,
        "mem_clock": 2619,
        "power_mw": 70000,
        "power_limit_mw": 700000,
        "temperature": 35,
        "reasons": 0,
        # [{"pid": int, "usedGpuMemory": int, "name": "/usr/bin/python3" (optional),
        #   "smUtil": int (optional, default 50: the process runs kernels; 0: an idle context)}]
        "processes": [],
        # False: per-process utilization is not supported (nvmlDeviceGetProcessUtilization
        # raises NOT_SUPPORTED, as on GPUs and drivers without it).
        "process_utilization": True,
        "locked_sm": None,
        "locked_mem": None,
        # "ok", "no-permission" (not root) or "not-supported" (VM, consumer card)
        "permission": "ok",
        "app_clocks_restricted": True,
    }
    gpu.update(over)
    return gpu


def write_state(path: str | os.PathLike[str], gpus: list[dict[str, Any]], **top: Any) -> None:
    """Create the state file: ``top`` may set ``init_error`` (an NVML_ERROR_ code)."""
    state = {"gpus": gpus, "log": [], "init_error": None}
    state.update(top)
    _write(str(path), state)


def read_state(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    with open(path or _path()) as f:
        return json.load(f)


def _path() -> str:
    path = os.environ.get(ENV_STATE)
    if not path:
        raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
    return path


def _write(path: str, state: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".fake_nvml")
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)


@contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    """Read-modify-write the state under an exclusive lock."""
    path = _path()
    with open(path + ".lock", "a") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        state = read_state(path)
        yield state
        _write(path, state)


_initialised = 0


def _gpu(handle: c_nvmlDevice_t) -> dict[str, Any]:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    gpus = read_state()["gpus"]
    if not isinstance(handle, c_nvmlDevice_t) or handle.index >= len(gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpus[handle.index]


class c_nvmlDevice_t:
    """Opaque handle (the real one is a ctypes pointer)."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}>"


class nvmlFriendlyObject:
    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)


# ---- init ------------------------------------------------------------------
def nvmlInit() -> None:
    global _initialised
    state = read_state(_path())
    if state.get("init_error"):
        raise NVMLError(state["init_error"])
    _initialised += 1


def nvmlInitWithFlags(flags: int) -> None:
    nvmlInit()


def nvmlShutdown() -> None:
    global _initialised
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _initialised -= 1


def nvmlSystemGetDriverVersion() -> str:
    return read_state().get("driver", "580.65.06")


# ---- enumeration -----------------------------------------------------------
def nvmlDeviceGetCount() -> int:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return len(read_state()["gpus"])


def nvmlDeviceGetHandleByIndex(index: int) -> c_nvmlDevice_t:
    if not 0 <= index < nvmlDeviceGetCount():
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return c_nvmlDevice_t(index)


def _find(key: str, value: str) -> c_nvmlDevice_t:
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    for i, gpu in enumerate(read_state()["gpus"]):
        if gpu[key].upper() == value.upper():
            return c_nvmlDevice_t(i)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceGetHandleByUUID(uuid: str) -> c_nvmlDevice_t:
    return _find("uuid", uuid.decode() if isinstance(uuid, bytes) else uuid)


def nvmlDeviceGetHandleByPciBusId(pciBusId: str) -> c_nvmlDevice_t:
    bus = pciBusId.decode() if isinstance(pciBusId, bytes) else pciBusId
    parts = bus.split(":")
    if len(parts) == 3:  # NVML accepts a 4- or 8-digit domain
        bus = f"{int(parts[0], 16):08X}:{parts[1]}:{parts[2]}"
    return _find("pci_bus_id", bus)


def nvmlDeviceGetName(handle: c_nvmlDevice_t) -> str:
    return _gpu(handle)["name"]


def nvmlDeviceGetUUID(handle: c_nvmlDevice_t) -> str:
    return _gpu(handle)["uuid"]


def nvmlDeviceGetPciInfo(handle: c_nvmlDevice_t) -> nvmlFriendlyObject:
    # The real struct's busId is a ctypes char array, i.e. bytes.
    return nvmlFriendlyObject({"busId": _gpu(handle)["pci_bus_id"].encode()})


# ---- clocks ----------------------------------------------------------------
def nvmlDeviceGetSupportedMemoryClocks(handle: c_nvmlDevice_t) -> list[int]:
    return list(_gpu(handle)["memory_clocks"])


def nvmlDeviceGetSupportedGraphicsClocks(handle: c_nvmlDevice_t, memoryClockMHz: int) -> list[int]:
    table = _gpu(handle)["graphics_clocks"]
    if str(memoryClockMHz) not in table:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return list(table[str(memoryClockMHz)])


def nvmlDeviceGetDefaultApplicationsClock(handle: c_nvmlDevice_t, type: int) -> int:
    gpu = _gpu(handle)
    return gpu["default_app_mem"] if type == NVML_CLOCK_MEM else gpu["default_app_sm"]


def nvmlDeviceGetApplicationsClock(handle: c_nvmlDevice_t, type: int) -> int:
    return nvmlDeviceGetDefaultApplicationsClock(handle, type)


def nvmlDeviceGetMaxClockInfo(handle: c_nvmlDevice_t, type: int) -> int:
    gpu = _gpu(handle)
    return gpu["max_mem"] if type == NVML_CLOCK_MEM else gpu["max_sm"]


def nvmlDeviceGetClockInfo(handle: c_nvmlDevice_t, type: int) -> int:
    """Current clock: the locked value when locked, else boost (busy) or idle."""
    gpu = _gpu(handle)
    if type == NVML_CLOCK_MEM:
        return gpu["locked_mem"] or gpu["mem_clock"]
    if gpu["locked_sm"]:
        return gpu["locked_sm"]
    return gpu.get("sm_clock") or (gpu["idle_sm"] if gpu["reasons"] & nvmlClocksEventReasonGpuIdle else gpu["max_sm"])


def _change(handle: c_nvmlDevice_t, call: str, **fields: Any) -> None:
    """Apply a root-only change, or raise what a non-root / VM caller gets."""
    _gpu(handle)
    with _locked() as state:
        gpu = state["gpus"][handle.index]
        state["log"].append({"call": call, "gpu": handle.index, "pid": os.getpid(), **fields})
        if gpu["permission"] == "no-permission":
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        if gpu["permission"] == "not-supported":
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        gpu.update(fields)


def nvmlDeviceSetGpuLockedClocks(handle: c_nvmlDevice_t, minGpuClockMHz: int, maxGpuClockMHz: int) -> None:
    gpu = _gpu(handle)
    allowed = {c for clocks in gpu["graphics_clocks"].values() for c in clocks}
    if minGpuClockMHz > maxGpuClockMHz or maxGpuClockMHz > max(allowed):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    _change(handle, "SetGpuLockedClocks", locked_sm=int(maxGpuClockMHz))


def nvmlDeviceResetGpuLockedClocks(handle: c_nvmlDevice_t) -> None:
    _change(handle, "ResetGpuLockedClocks", locked_sm=None)


def nvmlDeviceSetMemoryLockedClocks(handle: c_nvmlDevice_t, minMemClockMHz: int, maxMemClockMHz: int) -> None:
    if maxMemClockMHz not in _gpu(handle)["memory_clocks"]:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    _change(handle, "SetMemoryLockedClocks", locked_mem=int(maxMemClockMHz))


def nvmlDeviceResetMemoryLockedClocks(handle: c_nvmlDevice_t) -> None:
    _change(handle, "ResetMemoryLockedClocks", locked_mem=None)


def nvmlDeviceGetAPIRestriction(device: c_nvmlDevice_t, apiType: int) -> int:
    gpu = _gpu(device)
    return NVML_FEATURE_ENABLED if gpu["app_clocks_restricted"] else NVML_FEATURE_DISABLED


# ---- power, thermal, events, processes ---------------------------------------
def nvmlDeviceGetPowerUsage(handle: c_nvmlDevice_t) -> int:
    return int(_gpu(handle)["power_mw"])


def nvmlDeviceGetEnforcedPowerLimit(handle: c_nvmlDevice_t) -> int:
    return int(_gpu(handle)["power_limit_mw"])


def nvmlDeviceGetPowerManagementLimit(handle: c_nvmlDevice_t) -> int:
    return nvmlDeviceGetEnforcedPowerLimit(handle)


def nvmlDeviceGetPowerManagementDefaultLimit(handle: c_nvmlDevice_t) -> int:
    return nvmlDeviceGetEnforcedPowerLimit(handle)


def nvmlDeviceGetTemperature(handle: c_nvmlDevice_t, sensor: int) -> int:
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(_gpu(handle)["temperature"])


def nvmlDeviceGetCurrentClocksEventReasons(handle: c_nvmlDevice_t) -> int:
    gpu = _gpu(handle)
    locked = nvmlClocksEventReasonApplicationsClocksSetting if gpu["locked_sm"] else 0
    return int(gpu["reasons"]) | locked


def nvmlDeviceGetCurrentClocksThrottleReasons(handle: c_nvmlDevice_t) -> int:
    return nvmlDeviceGetCurrentClocksEventReasons(handle)


def nvmlDeviceGetComputeRunningProcesses(handle: c_nvmlDevice_t) -> list[nvmlFriendlyObject]:
    return [
        nvmlFriendlyObject({"pid": p["pid"], "usedGpuMemory": p.get("usedGpuMemory"), "gpuInstanceId": 0xFFFFFFFF, "computeInstanceId": 0xFFFFFFFF})
        for p in _gpu(handle)["processes"]
    ]


def nvmlDeviceGetProcessUtilization(handle: c_nvmlDevice_t, timeStamp: int) -> list[nvmlFriendlyObject]:
    """Utilization samples newer than ``timeStamp`` (us), one per process with a
    context, as the driver keeps them; NOT_FOUND when there is none (what the
    real call returns without samples), NOT_SUPPORTED where the state says so."""
    gpu = _gpu(handle)
    if not gpu.get("process_utilization", True):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    now_us = int(time.time() * 1e6)
    # A process's ``sampled_us`` is when the driver last sampled it (default:
    # now); the driver samples every so often, so a sample may be older than
    # the caller's window although the process still runs kernels.
    newer = [p for p in gpu["processes"] if int(p.get("sampled_us", now_us)) > int(timeStamp)]
    if not newer:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return [nvmlFriendlyObject({"pid": p["pid"], "timeStamp": int(p.get("sampled_us", now_us)),
                                "smUtil": int(p.get("smUtil", 50)), "memUtil": int(p.get("memUtil", 0)),
                                "encUtil": 0, "decUtil": 0})
            for p in newer]


def nvmlSystemGetProcessName(pid: int) -> str:
    """The process's executable path, as the driver reports it; NOT_FOUND for
    a process the state does not name."""
    if not _initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    for gpu in read_state()["gpus"]:
        for p in gpu["processes"]:
            if p["pid"] == pid and p.get("name"):
                return p["name"]
    raise NVMLError(NVML_ERROR_NOT_FOUND)
