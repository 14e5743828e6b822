"""What the GPU was doing during a measured window, read from NVML.

A result taken while the card sat at its power cap, ran hot, or shared the GPU
with another process is not comparable with one that did not; the sampler
records enough to flag such results (``results.DeviceState.flags``) and to plot
clocks and power next to the latency.

Cost: one background thread waking every ``interval_s`` for five NVML reads
(SM/memory clock, power, temperature, clock-event reasons); the process list,
a heavier call, is read at start, at stop and every ``PROCESS_EVERY`` samples.
NVML calls go through ctypes, which releases the GIL while the driver answers.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pytest_trtperf.gpu import nvml
from pytest_trtperf.gpu.pinning import resolve_cuda_device
from pytest_trtperf.core.errors import BackendUnavailable
from pytest_trtperf.core.results import DeviceState
from pytest_trtperf.core.timers import REAL

#: Read the process list every this many samples (plus at start and stop).
PROCESS_EVERY = 25
#: The driver keeps per-process utilization as samples taken every so often,
#: not per kernel: a window reads the samples from this long before it began,
#: so a neighbour running kernels throughout is seen even in a short window
#: (on the lent H200 a 1-2 s window sometimes had none of its samples).
WINDOW_LOOKBACK_S = 1.0
#: The wait for a quiet GPU ends only when no other process ran kernels in
#: this long: a poll that found no sample newer than the last poll said
#: nothing (the neighbour may just not have been sampled yet).
QUIET_S = 2.0
#: At most this many points go into ``DeviceState.timeline`` (evenly thinned).
TIMELINE_POINTS = 256

POWER_REASONS = frozenset({"sw_power_cap", "hw_power_brake_slowdown"})
THERMAL_REASONS = frozenset({"sw_thermal_slowdown", "hw_thermal_slowdown"})


@dataclass(frozen=True)
class Sample:
    t_s: float
    sm_mhz: float
    mem_mhz: float
    power_w: float
    temp_c: float
    reasons: int


#: A throttle reason flags a window only when it was read in at least this
#: share of its samples: a reason still asserted at the window's first read
#: (left over from the previous test's load) is recorded but does not flag.
FLAG_SHARE = 0.1


def persistent_reasons(masks: list[int], share: float = FLAG_SHARE) -> tuple[str, ...]:
    """Reasons present in at least ``share`` of the samples' reason masks."""
    if not masks:
        return ()
    counts: dict[str, int] = {}
    for m in masks:
        for name in nvml.decode_reasons(m):
            counts[name] = counts.get(name, 0) + 1
    need = max(1, int(share * len(masks) + 0.999999))
    return tuple(sorted(n for n, c in counts.items() if c >= need))


def flags_for(reasons: Iterable[str], busy: bool) -> tuple[str, ...]:
    """The flags a window earns from the reasons seen in it and other processes.

    ``hw_slowdown`` (NVML: high temperature, power brake or power draw; the
    driver does not say which) gets its own flag rather than a guess.
    """
    seen = set(reasons)
    flags = []
    if seen & POWER_REASONS:
        flags.append("power_throttle")
    if seen & THERMAL_REASONS:
        flags.append("thermal_throttle")
    if "hw_slowdown" in seen:
        flags.append("hw_slowdown")
    if busy:
        flags.append("busy")
    return tuple(flags)


def others_on_gpu(pids: Iterable[int], ours: Iterable[int]) -> tuple[int, ...]:
    """PIDs on the GPU that are not this test session's.

    Inside a container NVML lists host PIDs, so our own process does not
    appear under its own PID; when none of ``ours`` is listed, one unmatched
    process is taken to be us.
    """
    pids = tuple(pids)
    ours = set(ours)
    others = tuple(p for p in pids if p not in ours)
    if len(others) == len(pids) and others:  # we are not listed: PID namespace
        others = others[1:]
    return others


def sharing_gpu(present: Iterable[int], active: Iterable[int] | None, ours: Iterable[int]) -> tuple[int, ...]:
    """PIDs that shared the GPU with us: present and, where the driver reports
    per-process utilization (``active``), running kernels too. An idle
    context (a notebook, the parent process of a test run) does not share it.
    Without ``active`` every other process present counts, as before."""
    present = tuple(present)
    if active is None:
        return others_on_gpu(present, ours)
    ours, active = set(ours), set(active)
    others = [p for p in present if p in active and p not in ours]
    if others and not any(p in ours for p in present):  # PID namespace: one running process is us
        others = others[1:]
    return tuple(others)


def _now_us() -> int:
    """NVML's utilization timestamps: CPU time in microseconds since the epoch."""
    return int(time.time() * 1e6)


def process_label(pid: int) -> str:
    """``"1234 python3"``: the PID with the name NVML gives, else the one in
    /proc (absent for host PIDs seen from inside a container)."""
    name = nvml_mod.process_name(pid) if nvml_mod.available_now() else None
    if not name:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                name = f.read().strip()
        except OSError:
            name = None
    return f"{pid} {name}" if name else str(pid)


def wait_until_idle(timeout_s: float, own_pids: Callable[[], Iterable[int]], cuda_device_index: int = 0, *,
                    poll_s: float = 0.5, sleep: Callable[[float], None] = REAL.sleep) -> tuple[str, ...]:
    """Wait up to ``timeout_s`` for the other compute processes to leave the
    GPU or stop running kernels on it. Returns the labels of those still
    sharing it (empty: the GPU is ours); without NVML, empty."""
    try:
        with nvml_mod.session():
            device = resolve_cuda_device(cuda_device_index)
            deadline = REAL.monotonic() + timeout_s
            while True:
                since = _now_us() - int(QUIET_S * 1e6)
                others = sharing_gpu(device.compute_pids(), device.active_pids(since), own_pids())
                left = deadline - REAL.monotonic()
                if not others:
                    return ()
                if left <= 0:
                    return tuple(process_label(p) for p in others)
                sleep(min(poll_s, left))
    except BackendUnavailable:
        return ()
    except Exception as exc:
        if nvml_mod.is_nvml_error(exc):
            return ()
        raise


class DeviceStateSampler:
    """``workload.StateMonitor`` over NVML for one CUDA device.

    ``cuda_device_index`` is the index as CUDA numbers devices in this process
    (after ``CUDA_VISIBLE_DEVICES``); it is mapped to the NVML handle by UUID or
    PCI bus id (:func:`resolve_cuda_device`), never by NVML index.
    """

    def __init__(
        self,
        cuda_device_index: int = 0,
        interval_s: float = 0.01,
        *,
        nvml: nvml_mod.Device | None = None,  # the device to read (else resolved at start)
        clocks_locked: str = "off",
        extra_flags: tuple[str, ...] = (),
        own_pids: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        self.cuda_device_index = cuda_device_index
        self.interval_s = max(float(interval_s), 0.001)
        self._device = nvml
        self.clocks_locked = clocks_locked
        self.extra_flags = extra_flags
        self._own_pids = own_pids or (lambda: (os.getpid(),))
        self._samples: list[Sample] = []
        self._pids: set[int] = set()
        self._errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._session = False
        self._others: tuple[str, ...] = ()
        self._since_us = 0
        #: PIDs that ran kernels during the window; None: the driver cannot say.
        self._active: tuple[int, ...] | None = None

    # ---- StateMonitor ------------------------------------------------------
    def start(self) -> None:
        """Begin sampling; raises ``BackendUnavailable`` without NVML."""
        if self._thread is not None:
            raise RuntimeError("DeviceStateSampler.start() called twice")
        nvml_mod.init()
        self._session = True
        if self._device is None:
            self._device = resolve_cuda_device(self.cuda_device_index)
        self._samples, self._pids, self._errors = [], set(), []
        self._since_us, self._active = _now_us() - int(WINDOW_LOOKBACK_S * 1e6), None
        self._stop.clear()
        self._t0 = REAL.perf_counter()
        self._read_processes()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="trtperf-nvml-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> DeviceState:
        """Stop sampling and summarise the window."""
        if self._thread is None:
            raise RuntimeError("DeviceStateSampler.stop() without start()")
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            self._sample()
            self._read_processes()
            self._read_activity()
            self._others = tuple(process_label(p) for p in self._sharing())
        finally:
            if self._session:
                nvml_mod.shutdown()
                self._session = False
        return self.summary()

    # ---- internals ---------------------------------------------------------
    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.interval_s):
            self._sample()
            n += 1
            if n % PROCESS_EVERY == 0:
                self._read_processes()

    def _sample(self) -> None:
        d = self._device
        assert d is not None
        try:
            s = Sample(
                t_s=REAL.perf_counter() - self._t0,
                sm_mhz=float(d.clock("sm")),
                mem_mhz=float(d.clock("mem")),
                power_w=d.power_w(),
                temp_c=float(d.temperature_c()),
                reasons=d.event_reasons(),
            )
        except Exception as exc:  # a read failing must not kill the measurement
            if len(self._errors) < 3:
                self._errors.append(f"{type(exc).__name__}: {exc}")
            return
        self._samples.append(s)

    def _read_processes(self) -> None:
        assert self._device is not None
        try:
            self._pids.update(self._device.compute_pids())
        except Exception as exc:
            if len(self._errors) < 3:
                self._errors.append(f"{type(exc).__name__}: {exc}")

    def _read_activity(self) -> None:
        assert self._device is not None
        try:
            self._active = self._device.active_pids(self._since_us)
        except Exception as exc:
            self._active = None  # presence decides, as without the driver's per-process utilization
            if len(self._errors) < 3:
                self._errors.append(f"{type(exc).__name__}: {exc}")

    def _sharing(self) -> tuple[int, ...]:
        return sharing_gpu(sorted(self._pids), self._active, self._own_pids())

    def summary(self) -> DeviceState:
        samples = list(self._samples)
        mask = 0
        for s in samples:
            mask |= s.reasons
        reasons = nvml.decode_reasons(mask)
        others = self._sharing()
        busy = bool(others)
        labels = self._others if len(self._others) == len(others) else tuple(str(p) for p in others)
        flags = flags_for(persistent_reasons([s.reasons for s in samples]), busy) + tuple(
            f for f in self.extra_flags if f)
        if not samples:
            return DeviceState(kind="gpu", throttle_reasons=reasons, flags=flags, clocks_locked=self.clocks_locked,
                               other_processes=labels)
        sm = [s.sm_mhz for s in samples]
        power = [s.power_w for s in samples]
        step = max(1, -(-len(samples) // TIMELINE_POINTS))
        timeline = tuple((s.t_s, s.sm_mhz, s.mem_mhz, s.power_w, s.temp_c) for s in samples[::step])
        return DeviceState(
            kind="gpu",
            sm_clock_mhz_min=min(sm),
            sm_clock_mhz_median=statistics.median(sm),
            mem_clock_mhz_median=statistics.median(s.mem_mhz for s in samples),
            power_w_median=statistics.median(power),
            power_w_max=max(power),
            temperature_c_max=max(s.temp_c for s in samples),
            throttle_reasons=reasons,
            flags=flags,
            clocks_locked=self.clocks_locked,
            samples=len(samples),
            timeline=timeline,
            other_processes=labels,
        )

    @property
    def errors(self) -> tuple[str, ...]:
        """The first few NVML read errors of the window (reads are best-effort)."""
        return tuple(self._errors)


# ``nvml`` is also the keyword the brief names for injection; keep the module
# reachable under another name inside methods.
nvml_mod = nvml


def make_monitor(
    cuda_device_index: int = 0,
    interval_s: float = 0.01,
    **kwargs: Any,
) -> DeviceStateSampler | None:
    """A sampler for the device, or None when NVML or the device is missing."""
    try:
        with nvml.session():
            device = resolve_cuda_device(cuda_device_index)
    except BackendUnavailable:
        return None
    except Exception as exc:
        if nvml.is_nvml_error(exc):
            return None
        raise
    del device  # resolved again in start(): handles need not outlive an NVML session
    return DeviceStateSampler(cuda_device_index, interval_s, **kwargs)
