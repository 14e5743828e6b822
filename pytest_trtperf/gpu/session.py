"""pytest hooks for the GPU side of a session: clock lock/restore, one xdist
worker per GPU, and the NVML sampler the ``trt_bench`` fixture attaches.

``plugin.py`` registers :class:`AutoWorkersHook` from ``pytest_addoption``
(xdist asks for ``-n auto`` before ``pytest_configure``) and a
:class:`GpuSessionPlugin` built from the session's frozen
:class:`~pytest_trtperf.core.config.GpuSettings` at configure time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_trtperf.core.config import GpuSettings
from pytest_trtperf.core.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:  # loaded when a GPU is used, not when pytest loads the plugin
    from pytest_trtperf.gpu.clocks import ClockController, LockOutcome, RestoreGuard
    from pytest_trtperf.gpu.device_state import DeviceStateSampler
    from pytest_trtperf.gpu.pinning import GpuLock, VisibleGpu

PLUGIN_NAME = "trtperf-gpu"
EARLY_PLUGIN_NAME = "trtperf-gpu-early"
#: Key in xdist's ``workerinput`` carrying a worker's GPU assignment.
WORKERINPUT_KEY = "trtperf_gpu"


def register_auto_workers(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``-n auto`` hook once (xdist calls it before configure)."""
    if not pluginmanager.has_plugin(EARLY_PLUGIN_NAME):
        pluginmanager.register(AutoWorkersHook(), EARLY_PLUGIN_NAME)


class AutoWorkersHook:
    """``-n auto``: one worker per visible GPU (xdist asks before configure)."""

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_auto_num_workers(self, config: pytest.Config) -> int | None:
        if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
            return None  # the user's explicit choice wins (xdist reads it)
        from pytest_trtperf.gpu import nvml, pinning

        try:
            with nvml.session():
                n = len(pinning.visible_gpus())
        except Exception:
            return None  # no NVML / no driver: xdist's CPU count
        return n or None


def get(config: pytest.Config) -> GpuSessionPlugin | None:
    """The session's GPU plugin (tests and the report reach it by name)."""
    return config.pluginmanager.get_plugin(PLUGIN_NAME)


class GpuSessionPlugin:
    """Holds the GPU state of one pytest process (controller or xdist worker)."""

    def __init__(self, config: pytest.Config, settings: GpuSettings, baseline_mode: str) -> None:
        self.config = config
        self.settings = settings
        self.baseline_mode = baseline_mode
        workerinput = getattr(config, "workerinput", None)
        self.worker_id: str | None = workerinput.get("workerid") if workerinput else None
        self.gpus: list[VisibleGpu] = []
        self.assignment: VisibleGpu | None = None
        self.shared = False
        self.workers = 0
        #: Clock-lock outcome; None until clocks were locked (or a worker was told).
        self.outcome: LockOutcome | None = None
        self.messages: list[str] = []
        self._controller: ClockController | None = None
        self._guard: RestoreGuard | None = None
        self._gpu_lock: GpuLock | None = None
        self._nvml_held = False
        #: Processes of this session's own (``--trt-ab``'s reference): not "another process on the GPU".
        self.partner_pids: set[int] = set()
        self._pid_file: Path | None = None
        self._nvml_error: str | None = None
        self._lock_requested = False

    # ---- configure ---------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        if self.worker_id is not None:
            self._configure_worker(getattr(config, "workerinput", {}))
        else:
            self._configure_controller(config)

    def _configure_worker(self, workerinput: dict[str, Any]) -> None:
        """Pin this worker to its GPU before any test can initialise CUDA."""
        info = workerinput.get(WORKERINPUT_KEY)
        if not info:
            return
        from pytest_trtperf.gpu import pinning
        from pytest_trtperf.gpu.clocks import LockOutcome

        self.assignment = pinning.VisibleGpu.from_dict(info["gpu"])
        os.environ["CUDA_VISIBLE_DEVICES"] = self.assignment.cuda_id
        self.shared = bool(info.get("shared"))
        self.workers = int(info.get("workers", 0))
        self.outcome = LockOutcome(info.get("clock_state", "off"))
        self._lock_requested = bool(info.get("lock_requested"))
        if self.shared:
            self._gpu_lock = pinning.GpuLock(self.settings.state_dir, self.assignment.cuda_id)
            try:
                self._pid_file = pinning.register_pid(self.settings.state_dir, self.assignment.cuda_id, os.getpid())
            except OSError:
                self._pid_file = None

    def _configure_controller(self, config: pytest.Config) -> None:
        self.workers = _xdist_workers(config)
        self._lock_requested = self._wants_lock(config)
        if not (self.workers or self._lock_requested):
            return
        from pytest_trtperf.gpu import nvml, pinning

        try:
            with nvml.session():
                self.gpus = pinning.visible_gpus()
        except BackendUnavailable as exc:
            self._nvml_error = str(exc)
            return
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        except Exception as exc:
            if not nvml.is_nvml_error(exc):
                raise
            self._nvml_error = f"NVML error while listing GPUs: {exc}"
            return
        if self.workers:
            try:
                pinning.check_worker_count(
                    self.workers, len(self.gpus), self.baseline_mode, self.settings.allow_sharing
                )
            except UsageError as exc:
                raise pytest.UsageError(str(exc)) from None
            self.shared = self.workers > len(self.gpus) > 0

    def _wants_lock(self, config: pytest.Config) -> bool:
        s = self.settings
        return not (s.lock_sm.off and s.lock_mem.off) and not config.getoption("collectonly", False)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Controller: tell worker ``gwK`` which GPU is its own."""
        if not self.gpus:
            return
        from pytest_trtperf.gpu import pinning

        worker_id = node.workerinput["workerid"]
        gpu = pinning.assign(worker_id, self.gpus)
        node.workerinput[WORKERINPUT_KEY] = {
            "gpu": gpu.to_dict(),
            "shared": self.shared,
            "workers": self.workers,
            "clock_state": self.outcome.for_gpu(gpu.cuda_id) if self.outcome is not None else "off",
            "lock_requested": self._lock_requested,
        }

    # ---- session: lock and restore ------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Controller: report stale locks, then lock (before xdist starts workers)."""
        if self.worker_id is not None:
            return
        s = self.settings
        if not (self._lock_requested or s.state_dir.is_dir()):
            return  # no lock asked for and no state a killed session could have left
        from pytest_trtperf.gpu.clocks import ClockController, RestoreGuard

        controller = ClockController(s.state_dir, s.lock_sm, s.lock_mem, strict=s.strict)
        for line in controller.stale_locks():
            self._say(line)
        if not self._lock_requested:
            return
        self._controller = controller
        self._guard = RestoreGuard(self._restore)
        self._guard.install()
        try:
            self.outcome = controller.lock(self._gpus_to_lock())
        except UsageError as exc:
            self._restore()
            raise pytest.UsageError(str(exc)) from None
        if self.outcome.warning:
            self._say(self.outcome.warning)
        for note in self.outcome.notes:
            self._say(f"trtperf: {note}")

    def _gpus_to_lock(self) -> list[VisibleGpu]:
        """xdist: the GPUs workers get; otherwise every visible GPU."""
        if self.workers:
            return self.gpus[: min(self.workers, len(self.gpus))]
        return list(self.gpus)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._restore()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._restore()
        if self._guard is not None:
            self._guard.uninstall()
        if self._pid_file is not None:
            with contextlib.suppress(OSError):
                self._pid_file.unlink()
        if self._nvml_held:
            from pytest_trtperf.gpu import nvml

            self._nvml_held = False
            nvml.shutdown()

    def _restore(self) -> None:
        if self._controller is None:
            return
        for problem in self._controller.restore():
            self._say(problem)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        if self.settings.nvtx or self.settings.profiler_api:
            from pytest_trtperf.gpu.window import header_line

            line = header_line(self.settings)
            if line:
                lines.append(line)
        if self._lock_requested:
            lines.append(f"trtperf clocks: {self.outcome.state if self.outcome is not None else 'off'}")
        if self.workers and self.gpus:
            from pytest_trtperf.gpu import pinning

            pins = ", ".join(
                f"gw{k}->{pinning.assign(f'gw{k}', self.gpus).cuda_id}" for k in range(self.workers)
            )
            lines.append(f"trtperf GPU pinning ({'shared, serialised' if self.shared else 'one per worker'}): {pins}")
        return lines

    def pinning_note(self) -> str | None:
        """Why GPU pinning is off under xdist (no NVML): said at the end, and
        only by a session that measured GPU work (``plugin.py``): a CPU-only
        project run with ``-n 2`` is not told about a driver it never needs."""
        if self.workers and not self.gpus and self._nvml_error:
            return f"trtperf GPU pinning: off ({self._nvml_error})"
        return None

    def _say(self, line: str) -> None:
        self.messages.append(line)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(line, yellow=True)
        else:
            print(line, file=sys.stderr)

    # ---- what the fixture uses ---------------------------------------------
    def clock_state(self) -> str:
        """``off``, ``sm=1980``, ``sm=1980,mem=2619`` or ``failed:<why>`` for the
        GPU this process measures on; goes into results and the fingerprint."""
        if self.outcome is None:
            return "off"
        if self.assignment is not None:
            return self.outcome.for_gpu(self.assignment.cuda_id)
        if self.gpus:
            return self.outcome.for_gpu(self.gpus[0].cuda_id)
        return self.outcome.state

    def measurement_lock(self) -> contextlib.AbstractContextManager[None]:
        """Wrap each measured window: serialises workers sharing a GPU."""
        if self._gpu_lock is not None:
            return self._gpu_lock.hold()
        return contextlib.nullcontext()

    def make_monitor(self, interval_s: float | None = None) -> DeviceStateSampler | None:
        """An NVML sampler for CUDA device 0 of this process, or None without NVML."""
        from pytest_trtperf.gpu import device_state, nvml

        if not self._nvml_held:
            try:
                nvml.init()
            except BackendUnavailable:
                return None
            self._nvml_held = True  # keep NVML up: init per measurement is slow
        state = self.clock_state()
        own = self._own_pids
        return device_state.make_monitor(
            0,
            interval_s if interval_s is not None else self.settings.interval_s,
            clocks_locked=state,
            extra_flags=("clocks_unlocked",) if state.startswith("failed:") else (),
            own_pids=own,
        )

    def wait_until_idle(self, timeout_s: float) -> tuple[str, ...]:
        """Wait up to ``timeout_s`` for other processes to leave this worker's
        GPU; the labels (``"1234 python3"``) of those still there."""
        from pytest_trtperf.gpu import device_state

        return device_state.wait_until_idle(timeout_s, self._own_pids, 0)

    def _own_pids(self) -> set[int]:
        pids = {os.getpid(), *self.partner_pids}
        if self.shared and self.assignment is not None:
            from pytest_trtperf.gpu import pinning

            pids |= pinning.session_pids(self.settings.state_dir, self.assignment.cuda_id)
        return pids


def _xdist_workers(config: pytest.Config) -> int:
    """Number of xdist workers this controller will start (0 without xdist)."""
    if config.getoption("dist", "no") == "no" or config.getoption("collectonly", False):
        return 0
    tx = config.getoption("tx", None) or []
    return len(tx)


def xdist_workers(config: pytest.Config) -> int:
    """Workers of the session, in the controller and in every worker alike."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        try:
            return int(workerinput.get("workercount") or 0)
        except (TypeError, ValueError):
            return 0
    return _xdist_workers(config)
