"""One xdist worker per GPU.

Two workers timing on one GPU slow each other down, so ``pytest -n N`` gives
worker ``gwK`` its own GPU by setting ``CUDA_VISIBLE_DEVICES`` to that GPU's
UUID before anything in the worker initialises CUDA. The caller's own visible
set is respected: the GPUs handed out are those its ``CUDA_VISIBLE_DEVICES``
lists (or all GPUs NVML enumerates when unset), so a runner that gives a job
GPUs 2 and 3 keeps the job on them.

Sharing (more workers than GPUs) is refused when results are gated or saved,
unless asked for; then :class:`GpuLock` serialises the measured windows of the
workers on one GPU, so at most one of them is timing at any moment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_trtperf.gpu import nvml
from pytest_trtperf.core.files import ignore_in_git
from pytest_trtperf.core.errors import BackendUnavailable, UsageError

try:  # POSIX; elsewhere sharing runs unserialised
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_WORKER_RE = re.compile(r"^gw(\d+)$")


@dataclass(frozen=True)
class VisibleGpu:
    """A GPU the session may use. ``cuda_id`` is what a worker's
    ``CUDA_VISIBLE_DEVICES`` gets: a ``GPU-...`` (or ``MIG-...``) UUID."""

    cuda_id: str
    pci_bus_id: str | None
    name: str

    def to_dict(self) -> dict[str, str | None]:
        return {"cuda_id": self.cuda_id, "pci_bus_id": self.pci_bus_id, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict[str, str | None]) -> VisibleGpu:
        return cls(cuda_id=str(d["cuda_id"]), pci_bus_id=d.get("pci_bus_id"), name=str(d.get("name") or ""))


def parse_visible(text: str) -> list[str]:
    """Entries of a ``CUDA_VISIBLE_DEVICES`` value, as CUDA reads it: the list
    ends at the first entry that is neither an index nor a UUID; ``-1`` or an
    empty value means no GPU."""
    entries: list[str] = []
    for raw in text.split(","):
        entry = raw.strip()
        if re.fullmatch(r"\d+", entry) or entry.startswith(("GPU-", "MIG-")):
            entries.append(entry)
        else:
            break
    return entries


def device_for_entry(entry: str, position: int | None = None) -> nvml.Device:
    """The NVML device a ``CUDA_VISIBLE_DEVICES`` entry names.

    UUIDs (and unique UUID prefixes, which CUDA accepts) are exact. An index
    is looked up by the PCI bus id CUDA reports for ``position`` when CUDA is
    available, else as an NVML index, which is right when
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or all GPUs are the same model.
    """
    if entry.startswith(("GPU-", "MIG-")):
        try:
            return nvml.by_uuid(entry)
        except Exception as exc:
            if not nvml.is_nvml_error(exc):
                raise
        matches = [d for d in nvml.all_devices() if d.uuid().startswith(entry)]
        if len(matches) != 1:
            raise UsageError(f"CUDA_VISIBLE_DEVICES entry {entry!r} names {len(matches)} GPUs; use full GPU UUIDs (nvidia-smi -L)")
        return matches[0]
    if position is not None:
        bus = cuda_pci_bus_id(position)
        if bus:
            return nvml.by_pci_bus_id(bus)
    return nvml.by_index(int(entry))


def visible_gpus(environ: dict[str, str] | None = None) -> list[VisibleGpu]:
    """GPUs this process may use, in CUDA order. Needs an NVML session."""
    env = os.environ if environ is None else environ
    text = env.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        devices = nvml.all_devices()
    else:
        devices = [device_for_entry(e, i) for i, e in enumerate(parse_visible(text))]
    out = []
    for d in devices:
        out.append(VisibleGpu(cuda_id=d.uuid(), pci_bus_id=_bus_or_none(d), name=d.name()))
    return out


def _bus_or_none(d: nvml.Device) -> str | None:
    try:
        return d.pci_bus_id()
    except Exception:
        return None


def worker_number(worker_id: str) -> int | None:
    """``gw3`` -> 3; None for the controller or a non-xdist run."""
    m = _WORKER_RE.match(worker_id or "")
    return int(m.group(1)) if m else None


def assign(worker_id: str, gpus: list[VisibleGpu]) -> VisibleGpu:
    """The GPU of worker ``gwK``: round-robin, so K < len(gpus) owns one alone."""
    k = worker_number(worker_id)
    if k is None:
        raise ValueError(f"not an xdist worker id: {worker_id!r}")
    if not gpus:
        raise ValueError("no GPU to assign")
    return gpus[k % len(gpus)]


def check_worker_count(workers: int, gpus: int, baseline_mode: str, allow_sharing: bool) -> None:
    """More workers than GPUs is an error when numbers are gated or saved."""
    if gpus == 0 or workers <= gpus or allow_sharing or baseline_mode == "off":
        return
    raise UsageError(
        f"pytest -n {workers} with {gpus} visible GPU(s): workers sharing a GPU slow each other down "
        f"and --trt-baseline={baseline_mode} would gate or save those numbers; "
        f"use -n {gpus} (or -n auto), or pass --trt-allow-gpu-sharing to serialise measurements per GPU"
    )


class GpuLock:
    """Inter-process lock per GPU (a ``flock`` on ``<dir>/gpu-<uuid>.lock``).

    Held around each measured window when workers share a GPU. Reentrant
    within a process, so nested measurements do not deadlock.
    """

    def __init__(self, directory: str | os.PathLike[str], cuda_id: str, *, name: str | None = None) -> None:
        self.path = Path(directory) / (name or f"gpu-{_safe(cuda_id)}.lock")
        self._depth = 0
        self._fd: int | None = None

    @classmethod
    def for_cpu(cls, directory: str | os.PathLike[str]) -> GpuLock:
        """The same lock for host-timed windows when more xdist workers than
        CPU cores were allowed (``--trt-allow-cpu-sharing``): one window at a time."""
        return cls(directory, "", name="cpu.lock")

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        if self._depth == 0 and fcntl is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore_in_git(self.path.parent)  # <baseline dir>/.state: ours by name, never committed
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            assert fcntl is not None  # a descriptor is only taken where fcntl exists
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def register_pid(directory: str | os.PathLike[str], cuda_id: str, pid: int) -> Path:
    """Note that ``pid`` (an xdist worker of this session) uses the GPU, so the
    sampler does not flag its siblings as foreign ``busy`` processes."""
    d = Path(directory) / f"gpu-{_safe(cuda_id)}.pids"
    d.mkdir(parents=True, exist_ok=True)
    path = d / str(pid)
    path.touch()
    return path


def session_pids(directory: str | os.PathLike[str], cuda_id: str) -> set[int]:
    d = Path(directory) / f"gpu-{_safe(cuda_id)}.pids"
    try:
        return {int(p.name) for p in d.iterdir() if p.name.isdigit()}
    except OSError:
        return set()


def resolve_cuda_device(cuda_device_index: int = 0) -> nvml.Device:
    """The NVML device that CUDA calls ``cuda_device_index`` in this process.

    Order of trust: a UUID in ``CUDA_VISIBLE_DEVICES`` (what the xdist pinning
    sets), then the PCI bus id that CUDA reports, then (only without
    ``CUDA_VISIBLE_DEVICES``) the NVML index.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = parse_visible(visible)
        if cuda_device_index < len(entries) and entries[cuda_device_index].startswith("GPU-"):
            return device_for_entry(entries[cuda_device_index], cuda_device_index)
    bus_id = cuda_pci_bus_id(cuda_device_index)
    if bus_id:
        return nvml.by_pci_bus_id(bus_id)
    if visible is not None:
        entries = parse_visible(visible)
        if cuda_device_index >= len(entries):
            raise BackendUnavailable(f"no CUDA device {cuda_device_index} with CUDA_VISIBLE_DEVICES={visible!r}")
        return device_for_entry(entries[cuda_device_index], cuda_device_index)
    return nvml.by_index(cuda_device_index)


def cuda_pci_bus_id(cuda_device_index: int) -> str | None:
    """PCI bus id of a CUDA device through the driver API, or None without CUDA."""
    try:
        from cuda.bindings import driver  # type: ignore[import-not-found]  # a compiled module without stubs
    except ImportError:
        return None
    try:
        (err,) = driver.cuInit(0)
        if err != driver.CUresult.CUDA_SUCCESS:
            return None
        err, dev = driver.cuDeviceGet(cuda_device_index)
        if err != driver.CUresult.CUDA_SUCCESS:
            return None
        err, raw = driver.cuDeviceGetPCIBusId(32, dev)
        if err != driver.CUresult.CUDA_SUCCESS:
            return None
    except Exception:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text.split("\x00", 1)[0] or None
