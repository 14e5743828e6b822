"""What the host was doing during a measured window, read from /proc.

A host-timed result measured while other processes kept our thread from a
CPU is not a number about the code: on the 2-core CI machine a load spike moved
a pure-Python loop's median by 20-30%, and ``-n 4`` on 2 cores turned an
unchanged p99 into "regressed +1448%". So host windows are watched like GPU
windows are (``gpu/device_state.py``) and flagged ``host_busy``; the runner
then waits for the load to pass and measures again, and a window that stays
busy is reported as ``unreliable``, never as a regression.

What is read (Linux; elsewhere nothing is flagged), at the start and the end
of the window only, from the measuring thread itself:

* its ``/proc/self/task/<tid>/schedstat`` and ``status``: the time it was
  runnable but waited for a CPU (``cpu_delayed``, a share of the window) and
  how often it was preempted (``cpu_gaps``, involuntary context switches).
  Each preemption is a wait inside one sample, so with ``g`` of them, samples
  of length ``m`` and ``r`` seconds on a CPU about ``g*m/r`` of the samples
  contain a wait (``cpu_hit``). That is what moves a statistic: a median
  moves once about a quarter of the samples are hit, a p99 once half a
  percent are, the mean by every wait (``busy_for``). A window an
  ``update`` saves is also busy under heavy load whatever the metric
  (``HEAVY_DELAYED``): the entry keeps every statistic.
* ``/proc/stat``: the CPU time of all processes minus this process's own
  (``os.times``) is the cores' worth of time others used (``cpu_others``);
  the ``steal`` column the time the hypervisor gave to other guests
  (``cpu_steal``); ``procs_running`` beyond the CPUs at the end
  (``cpu_waiting``).

No thread runs during the window, so nothing takes the GIL from the code being
timed; the reads cost tens of microseconds before and after it
(bench/RESULTS.md, "Host-load sampler"). ``wait_until_quiet`` polls
``procs_running`` every 250 ms between windows to let a load spike pass.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from pytest_trtperf.core.results import DeviceState
from pytest_trtperf.core.timers import REAL

#: A window is ``host_busy`` for a quantile metric at level p when at least
#: (1 - p) / 2 of its samples contain a wait for a CPU: a quarter for the
#: median, 5% for p90, half a percent for p99 ...
QUANTILE_LEVEL = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
#: ... for the mean and throughput, which every wait adds to, when the thread
#: waited for a CPU this share of the window or more ...
DELAYED_BUSY = 0.02
#: ... and for any metric when the hypervisor stole this share of CPU time.
STEAL_BUSY = 0.10
#: An ``update`` (a window to be saved) is also ``host_busy``, whatever its
#: metric, when the measuring thread waited for a CPU this share of the window
#: or more: heavy load. The entry keeps every statistic, and a later compare
#: may gate another one (the saved mean is off by about this share), and a
#: loaded host slows even samples it does not preempt (shared caches, memory
#: bandwidth): four busy loops on two cores made a 28 us call wait 78% of its
#: window with 1% of its samples preempted, a median "not at risk" by the
#: quantile rule. Twice the default tolerance, so ordinary background load
#: (0.5-5% on the shared 2-core CI machine) does not flag every update.
HEAVY_DELAYED = 0.10
#: A serve window (requests on an open-loop schedule, run by slot threads
#: that sleep between them) is ``host_busy``, whatever its metric, when the
#: slot threads waited for a CPU this share of their time on requests (from
#: when each request could start, its arrival or its slot freeing up, to its
#: completion) or more. Not the requests' response time: a slot slowed by the
#: load makes a queue, whose waits would dilute the share. Every such wait
#: is in some request's latency; the bar is the heavy-load one, not
#: ``DELAYED_BUSY``, because on an idle host every request still pays a
#: couple of wake-ups of its slot thread (tens of microseconds each against
#: millisecond requests). On the shared 2-core machine four busy loops made
#: 2 ms requests wait several times their service; the background load of
#: other test sessions 40% of it.
SERVE_DELAYED_BUSY = 0.10
#: ``wait_until_quiet``: the host is quiet when fewer than this many runnable
#: tasks, on average over a second, had no CPU.
WAITING_QUIET = 0.5
#: How long ``wait_until_quiet`` looks at the host before calling it quiet.
QUIET_WINDOW_S = 1.0


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class CpuTimes:
    """One read of /proc/stat: jiffies of all CPUs, and runnable tasks."""

    busy: int
    steal: int
    total: int
    running: int
    #: CPUs /proc/stat lists. ``procs_running`` counts the tasks of all of
    #: them, so the run queue is held against this, not the affinity mask
    #: (in a container /proc/stat is the whole machine's).
    cpus: int = 1


def read_stat(path: str = "/proc/stat") -> CpuTimes | None:
    """Parse /proc/stat, or None where there is none (macOS, Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            raw = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
    except OSError:
        return None
    busy = steal = total = 0
    running = 0
    cpus = 0
    for line in raw.split(b"\n"):
        if line.startswith(b"cpu "):
            v = [int(x) for x in line.split()[1:]]
            v += [0] * (8 - len(v))
            # user nice system idle iowait irq softirq steal (guest is inside user)
            idle = v[3] + v[4]
            steal = v[7]
            total = sum(v[:8])
            busy = total - idle - steal
        elif line.startswith(b"cpu"):
            cpus += 1
        elif line.startswith(b"procs_running"):
            running = int(line.split()[1])
    if total <= 0:
        return None
    return CpuTimes(busy=busy, steal=steal, total=total, running=running, cpus=max(cpus, 1))


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ThreadTimes:
    """One thread's scheduler counters."""

    run_ns: int  # on a CPU
    wait_ns: int  # runnable, waiting for a CPU
    preempted: int  # involuntary context switches


def read_thread(tid: int) -> ThreadTimes | None:
    """The counters of thread ``tid`` of this process (schedstat and
    status), or None where /proc does not have them."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
            run, wait = (int(x) for x in f.read().split()[:2])
        with open(f"/proc/self/task/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"nonvoluntary_ctxt_switches:"):
                    return ThreadTimes(run_ns=run, wait_ns=wait, preempted=int(line.split()[1]))
    except (OSError, ValueError):
        return None
    return None


def busy_for(state: DeviceState, metric: str, *, saving: bool = False) -> bool:
    """Whether the CPU waits of a host window could have moved ``metric``;
    ``saving`` (an ``update``): also whether the host was heavily loaded,
    whatever the metric (``HEAVY_DELAYED``)."""
    if state.cpu_steal is not None and state.cpu_steal >= STEAL_BUSY:
        return True
    if saving and state.cpu_delayed is not None and state.cpu_delayed >= HEAVY_DELAYED:
        return True
    if metric in QUANTILE_LEVEL:
        return state.cpu_hit is not None and state.cpu_hit >= (1.0 - QUANTILE_LEVEL[metric]) / 2.0
    return state.cpu_delayed is not None and state.cpu_delayed >= DELAYED_BUSY


def judge_window(state: DeviceState, metric: str, median_s: float, *, saving: bool = False) -> DeviceState:
    """``state`` with ``cpu_hit`` (share of samples of length ``median_s``
    that contained a wait for a CPU) and the ``host_busy`` flag for ``metric``
    (``saving``: for a window an ``update`` writes, see ``busy_for``)."""
    if state.cpu_gaps is None or not state.cpu_run_s:
        return state
    hit = min(1.0, state.cpu_gaps * max(median_s, 0.0) / state.cpu_run_s)
    state = replace(state, cpu_hit=round(hit, 4))
    flags = tuple(f for f in state.flags if f != "host_busy")
    if busy_for(state, metric, saving=saving):
        flags += ("host_busy",)
    return replace(state, flags=flags)


def judge_serve_window(state: DeviceState, threads: ThreadTimes | None, on_requests_s: float) -> DeviceState:
    """``state`` (the host watch of a serve window) with the slot threads'
    counters (``threads``, summed over the run) and the ``host_busy`` flag:
    ``cpu_delayed`` is their waits for a CPU as a share of ``on_requests_s``,
    the slots' summed time on requests (see ``SERVE_DELAYED_BUSY``)."""
    if threads is None or on_requests_s <= 0:
        return state
    delayed = min(1.0, threads.wait_ns / 1e9 / on_requests_s)
    state = replace(state, cpu_delayed=round(delayed, 4), cpu_gaps=threads.preempted,
                    cpu_run_s=round(threads.run_ns / 1e9, 6), cpu_hit=None)
    flags = tuple(f for f in state.flags if f != "host_busy")
    steal = state.cpu_steal is not None and state.cpu_steal >= STEAL_BUSY
    if delayed >= SERVE_DELAYED_BUSY or steal:
        flags += ("host_busy",)
    return replace(state, flags=flags)


def describe_load(state: DeviceState) -> str:
    """What the host's load did to a window, in words: ``the measuring thread
    waited for a CPU 78% of the window, 1% of the samples contained a wait,
    1.8 cores used by other processes`` (what is known of it)."""
    waited = (f"the measuring thread waited for a CPU {state.cpu_delayed:.0%} of the window"
              if state.cpu_delayed is not None else None)
    hit = f"{state.cpu_hit:.0%} of the samples contained a wait" if state.cpu_hit is not None else None
    return _load_words(state, waited, hit)


def describe_serve_load(state: DeviceState) -> str:
    """:func:`describe_load` for a serve window (``judge_serve_window``): the
    waits are the slot threads', a share of their time on requests."""
    waited = (f"the serving threads waited for a CPU {state.cpu_delayed:.0%} of their time on requests"
              if state.cpu_delayed is not None else None)
    return _load_words(state, waited)


def _load_words(state: DeviceState, *first: str | None) -> str:
    """The window's own waits (``first``), then what every window shares:
    stolen time and the other processes' cores."""
    parts = [p for p in first if p]
    if state.cpu_steal:
        parts.append(f"{state.cpu_steal:.0%} of CPU time stolen by the hypervisor")
    if state.cpu_others is not None:
        parts.append(f"{state.cpu_others:.1f} cores used by other processes")
    return ", ".join(parts) or "loaded"


class HostSampler:
    """``workload.StateMonitor`` for host windows. Reads /proc at start and
    stop only, from the measuring thread: no thread runs during the window, so
    nothing takes the GIL from the code being timed."""

    def __init__(self, *, read: Callable[[], CpuTimes | None] = read_stat) -> None:
        self._read = read
        self._start: CpuTimes | None = None
        self._own0 = 0.0
        self._t0 = 0.0
        self._tid = 0
        self._thread0: ThreadTimes | None = None
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("HostSampler.start() called twice")
        self._started = True
        self._start = self._read()
        self._own0 = _own_cpu_s()
        self._tid = threading.get_native_id()  # the measuring thread: start() is called from it
        self._thread0 = read_thread(self._tid)
        self._t0 = REAL.monotonic()

    def stop(self) -> DeviceState:
        """Summarise the window. ``host_busy`` is set later, by
        ``judge_window``, once the samples' length and the metric are known."""
        if not self._started:
            raise RuntimeError("HostSampler.stop() without start()")
        thread = read_thread(self._tid)
        wall = REAL.monotonic() - self._t0
        own = _own_cpu_s() - self._own0
        end = self._read()
        start, t0, self._start, self._started = self._start, self._thread0, None, False
        out = DeviceState(kind="host", load_avg=load_average())
        if start is not None and end is not None and wall > 0:
            d_total = max(end.total - start.total, 1)
            out = replace(out, cpu_others=round(max((end.busy - start.busy) / _HZ - own, 0.0) / wall, 3),
                          cpu_steal=round(max(end.steal - start.steal, 0) / d_total, 4),
                          cpu_waiting=float(max(end.running - end.cpus, 0)))
        if thread is not None and t0 is not None and wall > 0:
            out = replace(out, cpu_delayed=round(max(thread.wait_ns - t0.wait_ns, 0) / 1e9 / wall, 4),
                          cpu_gaps=max(thread.preempted - t0.preempted, 0),
                          cpu_run_s=round(max(thread.run_ns - t0.run_ns, 0) / 1e9, 6))
        return out


def busiest_others(seconds: float = 0.5, top: int = 5, *, exclude: set[int] | None = None) -> tuple[str, ...]:
    """``("1234 python3 (0.9 cores)", ...)``: the processes that used the
    most CPU over ``seconds``, not counting ``exclude`` (default: this one)."""
    exclude = exclude if exclude is not None else {os.getpid()}

    def snapshot() -> dict[int, tuple[int, str]]:
        out = {}
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return {}
        for pid in pids:
            if pid in exclude:
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            name_end = raw.rfind(b")")
            fields = raw[name_end + 2:].split()
            if len(fields) < 13:
                continue
            name = raw[raw.find(b"(") + 1:name_end].decode(errors="replace")
            out[pid] = (int(fields[11]) + int(fields[12]), name)
        return out

    a = snapshot()
    t0 = REAL.monotonic()
    REAL.sleep(seconds)
    b = snapshot()
    wall = max(REAL.monotonic() - t0, 1e-3)
    used = sorted(((ticks - a[pid][0]) / _HZ / wall, pid, name) for pid, (ticks, name) in b.items() if pid in a)
    return tuple(f"{pid} {name} ({cores:.1f} cores)" for cores, pid, name in reversed(used[-top:]) if cores >= 0.05)


def wait_until_quiet(timeout_s: float, *, poll_s: float = 0.25,
                     read: Callable[[], CpuTimes | None] = read_stat,
                     sleep: Callable[[float], None] = REAL.sleep) -> bool:
    """Wait up to ``timeout_s`` for a second in which the host is not busy
    (by the same rule as a measured window). True when it got quiet."""
    deadline = REAL.monotonic() + timeout_s
    window = max(int(QUIET_WINDOW_S / poll_s), 1)
    waiting: list[int] = []
    first = read()
    if first is None:
        return True
    last = first
    while True:
        sleep(poll_s)
        now = read()
        if now is None:
            return True
        waiting.append(max(now.running - now.cpus - 1, 0))  # this thread is running while it reads
        if len(waiting) >= window:
            recent = waiting[-window:]
            steal = max(now.steal - last.steal, 0) / max(now.total - last.total, 1)
            if sum(recent) / window < WAITING_QUIET and steal < STEAL_BUSY:
                return True
            last = now
        if REAL.monotonic() >= deadline:
            return False


def cpu_sharing_error(workers: int, cores: int, baseline_mode: str, allow: bool) -> str | None:
    """More xdist workers than CPU cores is an error when host-timed numbers
    are gated or saved (the same rule as more workers than GPUs)."""
    if workers <= cores or allow or baseline_mode == "off":
        return None
    return (f"pytest -n {workers} on {cores} CPU core(s): workers timing host code on shared cores slow each other "
            f"down and --trt-baseline={baseline_mode} would gate or save those numbers; use -n {cores} or fewer, "
            f"or pass --trt-allow-cpu-sharing to take turns measuring")
