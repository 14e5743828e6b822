"""Lock GPU clocks for a session and always give them back.

Why: a GPU boosts, then drops its clock when it reaches the power cap or heats
up, so the same kernel runs slower minutes into a run (a 4096^3 FP16 GEMM went
from 183 to 217 us on an H100 at its power cap). A locked SM clock removes the
boost lottery from the comparison.

Safety: a lock outlives the process that set it (until reset, reboot or driver
reload), so every lock is (1) written to a state file before it is set, (2)
reset on every way out we can catch (normal end, failure, Ctrl-C, SIGTERM,
SIGHUP, an exception, interpreter exit) and (3) reported by the next session
with the command that resets it when the process was killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_trtperf.gpu import nvml
from pytest_trtperf.core.config import LockSpec
from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.core.files import UnreadableFile, atomic_write, ignore_in_git, process_alive, read_regular_file
from pytest_trtperf.gpu.pinning import VisibleGpu, device_for_entry

STATE_PREFIX = "clocks-"


@dataclass(frozen=True)
class GpuLockPlan:
    """The clocks to lock on one GPU and why (notes on snapping)."""

    cuda_id: str
    sm_mhz: int | None
    mem_mhz: int | None
    notes: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        parts = []
        if self.sm_mhz is not None:
            parts.append(f"sm={self.sm_mhz}")
        if self.mem_mhz is not None:
            parts.append(f"mem={self.mem_mhz}")
        return ",".join(parts) or "off"


@dataclass(frozen=True)
class LockOutcome:
    """What the session got: ``state`` goes into every result and fingerprint."""

    state: str  # "off", "sm=1980", "sm=1980,mem=2619", "failed:no-permission"
    per_gpu: Mapping[str, str] = field(default_factory=dict)
    warning: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.state.startswith("failed:")

    def for_gpu(self, cuda_id: str | None) -> str:
        if cuda_id is not None and cuda_id in self.per_gpu:
            return self.per_gpu[cuda_id]
        return self.state


def snap(requested: int, supported: Sequence[int]) -> int:
    """The supported clock nearest to ``requested`` (ties go down: cooler)."""
    return min(supported, key=lambda c: (abs(c - requested), c))


def plan_for(device: nvml.Device, cuda_id: str, sm: LockSpec, mem: LockSpec) -> GpuLockPlan:
    """Resolve ``base``/``max``/MHz to clocks this GPU supports."""
    notes: list[str] = []
    mem_clocks = device.supported_memory_clocks()
    if not mem_clocks:
        raise _not_supported()
    mem_mhz: int | None = None
    if mem.value == "base":
        mem_mhz = device.default_applications_clock("mem")
    elif mem.value == "max":
        mem_mhz = mem_clocks[0]
    elif not mem.off:
        mem_mhz = snap(int(mem.value), mem_clocks)
        if mem_mhz != int(mem.value):
            notes.append(f"{cuda_id}: memory clock {mem.value} MHz is not supported, locked {mem_mhz} MHz (nearest)")
    sm_clocks = device.supported_graphics_clocks(mem_mhz if mem_mhz is not None else mem_clocks[0])
    if not sm_clocks:
        raise _not_supported()
    sm_mhz: int | None = None
    if sm.value == "base":
        sm_mhz = snap(device.default_applications_clock("graphics"), sm_clocks)
    elif sm.value == "max":
        sm_mhz = sm_clocks[0]
    elif not sm.off:
        sm_mhz = snap(int(sm.value), sm_clocks)
        if sm_mhz != int(sm.value):
            notes.append(
                f"{cuda_id}: SM clock {sm.value} MHz is not supported, locked {sm_mhz} MHz "
                f"(nearest of {sm_clocks[-1]}..{sm_clocks[0]})"
            )
    return GpuLockPlan(cuda_id, sm_mhz, mem_mhz, tuple(notes))


def _not_supported() -> Exception:
    nv = nvml.module()
    return nv.NVMLError(nv.NVML_ERROR_NOT_SUPPORTED)


def reset_command(cuda_id: str, sm: bool = True, mem: bool = False) -> str:
    flags = (["-rgc"] if sm else []) + (["-rmc"] if mem else [])
    return f"sudo nvidia-smi -i {cuda_id} {' '.join(flags)}"


#: The fix for each reason locking failed: one per cause, so a machine with
#: nvidia-ml-py but no driver is not told to install nvidia-ml-py.
FIXES = {
    "no-permission": "locking clocks needs root (in a container: root plus --cap-add SYS_ADMIN)",
    "not-supported": "this GPU, driver or VM does not allow clock locking (needs Volta+ on bare metal or GPU passthrough)",
    "not-installed": "install it with `pip install nvidia-ml-py`",
    "no-driver": "nvidia-ml-py is installed but no NVIDIA driver is loaded here; lock clocks on a machine where "
                 "nvidia-smi works",
    "no-nvml": "NVML could not start; check the NVIDIA driver with nvidia-smi",
    "no-gpu": "no GPU is visible (check CUDA_VISIBLE_DEVICES and nvidia-smi)",
}


def failure_warning(kind: str, option: str, detail: str, strict: bool = False, cause: str | None = None) -> str:
    """The one line a user sees when locking is refused, with the fix for
    ``cause`` (default: ``kind``; the recorded state stays ``failed:<kind>``)."""
    why = FIXES.get(cause or "", FIXES.get(kind, "see README, Stable numbers"))
    if strict:
        return f"could not lock GPU clocks ({option}): {detail}; {why}; or drop --trt-lock-clocks-strict to run unlocked"
    return (
        f"trtperf: could not lock GPU clocks ({option}): {detail}; {why}; "
        f"continuing with unlocked clocks (results record clocks_locked=failed:{kind})"
    )


class ClockController:
    """Locks the clocks of a set of GPUs and restores them, idempotently.

    ``state_dir`` holds one small JSON file per locking process; it is how a
    later session finds a lock left behind by a killed one.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        sm: LockSpec,
        mem: LockSpec = LockSpec("off"),  # noqa: B008 (a frozen dataclass)
        *,
        strict: bool = False,
        option_text: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.sm, self.mem, self.strict = sm, mem, strict
        self.option_text = option_text or f"--trt-lock-clocks={sm.value}" + (
            "" if mem.off else f" --trt-lock-memory-clocks={mem.value}"
        )
        self._locked: list[tuple[nvml.Device, str, str]] = []  # (device, cuda_id, 'sm'|'mem')
        self._rlock = threading.RLock()
        self._nvml_ref = False
        self.state_file = self.state_dir / f"{STATE_PREFIX}{socket.gethostname()}-{os.getpid()}.json"
        self.outcome = LockOutcome("off")
        self._stale_files: list[tuple[Path, set[str]]] = []

    @property
    def requested(self) -> bool:
        return not (self.sm.off and self.mem.off)

    # ---- stale locks ------------------------------------------------------
    def stale_locks(self) -> list[str]:
        """One line per lock left by a dead process on this host, with the fix."""
        lines = []
        self._stale_files = []
        for path, data in _state_files(self.state_dir):
            if data.get("host") != socket.gethostname() or path == self.state_file:
                continue
            pid = int(data.get("pid", -1))
            if process_alive(pid):
                continue
            gpus = data.get("gpus", [])
            self._stale_files.append((path, {g["cuda_id"] for g in gpus}))
            for g in gpus:
                cmd = reset_command(g["cuda_id"], sm=g.get("sm") is not None, mem=g.get("mem") is not None)
                lines.append(
                    f"trtperf: GPU {g['cuda_id']} may still have clocks locked ({_plan_text(g)}) by pid {pid}, "
                    f"which ended without restoring them ({path}); reset with: {cmd}"
                )
        return lines

    # ---- lock / restore ---------------------------------------------------
    def lock(self, gpus: Sequence[VisibleGpu]) -> LockOutcome:
        """Lock every GPU in ``gpus``; all or none. Raises ``UsageError`` when
        strict and locking is refused, else returns a failed outcome to warn."""
        if not self.requested:
            self.outcome = LockOutcome("off", {g.cuda_id: "off" for g in gpus})
            return self.outcome
        with self._rlock:
            try:
                nvml.init()
            except BackendUnavailable as exc:
                cause, detail = nvml.unavailable_cause(exc)
                return self._fail("no-permission" if cause == "no-permission" else "no-nvml", detail, gpus, cause)
            self._nvml_ref = True
            if not gpus:
                return self._fail("no-gpu", "no GPU visible", gpus)
            try:
                plans = [(device_for_entry(g.cuda_id), g) for g in gpus]
                plans2 = [(d, plan_for(d, g.cuda_id, self.sm, self.mem)) for d, g in plans]
                self._write_state(plans2, status="locking")
                for device, plan in plans2:
                    # Recorded as each call succeeds: a failure midway resets what was set.
                    if plan.mem_mhz is not None:
                        device.lock_memory_clocks(plan.mem_mhz)
                        self._locked.append((device, plan.cuda_id, "mem"))
                    if plan.sm_mhz is not None:
                        device.lock_gpu_clocks(plan.sm_mhz)
                        self._locked.append((device, plan.cuda_id, "sm"))
                self._write_state(plans2, status="locked")
            except Exception as exc:
                if not nvml.is_nvml_error(exc):
                    self.restore()
                    raise
                self.restore()
                name = _name(gpus[0])
                return self._fail(nvml.error_kind(exc), f"NVML says {exc!s} on {gpus[0].cuda_id}{name}", gpus)
            notes = tuple(n for _, p in plans2 for n in p.notes)
            states = {p.cuda_id: p.state for _, p in plans2}
            distinct = sorted(set(states.values()))
            state = distinct[0] if len(distinct) == 1 else ";".join(f"{k}:{v}" for k, v in states.items())
            self.outcome = LockOutcome(state, states, None, notes)
            return self.outcome

    def _fail(self, kind: str, detail: str, gpus: Sequence[VisibleGpu], cause: str | None = None) -> LockOutcome:
        if self.strict:
            raise UsageError(failure_warning(kind, self.option_text, detail, strict=True, cause=cause))
        message = failure_warning(kind, self.option_text, detail, cause=cause)
        state = f"failed:{kind}"
        self.outcome = LockOutcome(state, {g.cuda_id: state for g in gpus}, message)
        return self.outcome

    def restore(self) -> list[str]:
        """Reset every clock this controller locked. Safe to call many times and
        from a signal handler. Returns one line per reset that failed."""
        problems: list[str] = []
        with self._rlock:
            while self._locked:
                device, cuda_id, what = self._locked.pop()
                try:
                    device.reset_gpu_clocks() if what == "sm" else device.reset_memory_clocks()
                except Exception as exc:  # keep resetting the others
                    problems.append(
                        f"trtperf: could not reset {'SM' if what == 'sm' else 'memory'} clocks of {cuda_id} ({exc}); "
                        f"run: {reset_command(cuda_id, sm=what == 'sm', mem=what == 'mem')}"
                    )
            if not problems:
                self._remove_state()
            if self._nvml_ref:
                self._nvml_ref = False
                nvml.shutdown()
        return problems

    @property
    def locked(self) -> bool:
        return bool(self._locked)

    # ---- state file -------------------------------------------------------
    def _write_state(self, plans: list[tuple[nvml.Device, GpuLockPlan]], status: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ignore_in_git(self.state_dir)  # <baseline dir>/.state: ours by name, never committed
        data = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": status,
            "gpus": [{"cuda_id": p.cuda_id, "sm": p.sm_mhz, "mem": p.mem_mhz} for _, p in plans],
        }
        atomic_write(self.state_file, json.dumps(data, indent=1, sort_keys=True))

    def _remove_state(self) -> None:
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass
        # A stale lock on a GPU we locked and reset is gone with our reset.
        ours = set(self.outcome.per_gpu) if not self.outcome.failed and self.requested else set()
        for path, cuda_ids in self._stale_files:
            if cuda_ids and cuda_ids <= ours:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        self._stale_files = []


def _plan_text(g: Mapping[str, Any]) -> str:
    parts = [f"{k}={g[k]}" for k in ("sm", "mem") if g.get(k) is not None]
    return ",".join(parts) or "unknown"


def _name(g: VisibleGpu) -> str:
    return f" ({g.name})" if g.name else ""


def _state_files(state_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    try:
        paths = sorted(state_dir.glob(f"{STATE_PREFIX}*.json"))
    except OSError:
        return out
    for path in paths:
        try:
            data = json.loads(read_regular_file(path, limit=1 << 20))
        except (UnreadableFile, ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            out.append((path, data))
    return out


# ---- restoring on the way out ---------------------------------------------
_CAUGHT = ("SIGTERM", "SIGHUP")


class RestoreGuard:
    """Runs ``restore`` at interpreter exit and on SIGTERM/SIGHUP, then lets the
    signal do what it would have done (the previous handler, or terminate).
    Ctrl-C needs no handler: pytest turns it into a normal session end."""

    def __init__(self, restore: Callable[[], object]) -> None:
        self._restore = restore
        self._previous: dict[int, Any] = {}
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        atexit.register(self._restore)
        if threading.current_thread() is not threading.main_thread():
            return
        for name in _CAUGHT:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        atexit.unregister(self._restore)
        for sig, prev in self._previous.items():
            try:
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, prev)
            except (ValueError, OSError):
                pass
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        try:
            self._restore()
        finally:
            prev = self._previous.get(signum, signal.SIG_DFL)
            self.uninstall()
            if callable(prev):
                prev(signum, frame)
            elif prev != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
