"""Time GPU work put on a CUDA stream, the way trtexec does.

:class:`CudaWorkload` wraps ``enqueue(stream_handle: int) -> None``, a callable
that puts one inference on the given stream (a TensorRT ``execute_async_v3``, a
kernel launch, ...). It implements :class:`pytest_trtperf.core.workload.Workload`.

Method (README, "How it measures" and "CUDA graphs and captured torch code"):

* **latency** mode: one stream, so the GPU runs one inference at a time. CUDA
  events around each inference give GPU compute time; a host clock around the
  ``enqueue`` call gives enqueue time. The host stays ``queue_depth - 1``
  inferences ahead (default one ahead, trtexec's scheme), so each start event is
  already queued behind the previous inference and the launch latency of an idle
  GPU stays out of the event pair (a hand loop that syncs every iteration pays
  it, a few microseconds). With transfers, events split H2D / compute / D2H and
  the latency is their sum (trtexec's latency with data transfers).
* **throughput** mode: one ahead on each of ``streams`` streams, round robin,
  one completion event per iteration. The primary series is the per-inference
  interval between completions (GPU clock, over a window of one completion per
  stream); ``wall_s`` is the host wall time from which the core computes
  inferences per second; ``gpu_compute`` is completion-to-completion time on
  the iteration's own stream (its GPU time while the GPU is kept fed).
* CUDA graphs are on by default: each phase is captured once in :meth:`setup`
  and replayed with ``cudaGraphLaunch``. If capture fails the workload runs the
  plain enqueue and says why in :meth:`notes`.
* A user's enqueue can launch other work while its stream is capturing (it
  calls cuBLAS, cupy or torch on that stream, or asks
  ``cudaStreamIsCapturing``), so a successful capture is not trusted either:
  setup times plain enqueues and replays, interleaved, and lets
  :mod:`.capture_check` choose what to time, with hysteresis around the
  baseline's choice (:meth:`CudaWorkload.use_baseline_choice`), exactly as
  for torch callables. The choice is ``identity()["timed_as"]``, the numbers
  ``identity()["capture_check"]``. ``check_capture=False`` is for enqueues
  the harness wrote itself: TensorRT engines are captured as trtexec does.
* Waiting is a spin on ``cudaEventQuery`` by default; ``blocking_sync=True``
  uses blocking-sync events (sleep in the driver). Both are in :meth:`identity`.

``run(n)`` records events for up to :data:`CHUNK` iterations and synchronises
once per chunk; the Python loop only enqueues, so its cost stays out of the
GPU timings as long as the host keeps ahead of the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_trtperf.gpu import cuda
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import Batch, Clock, KeepsLastValue
from pytest_trtperf.workloads.capture_check import CHOICES, EAGER, GRAPH, CaptureCheck, time_and_decide

Enqueue = Callable[[int], Any]

#: Iterations whose events are recorded before one synchronisation.
CHUNK = 2048
MODES = ("latency", "throughput")


@dataclass(frozen=True)
class Copy:
    """One async copy: ``nbytes`` from ``src`` to ``dst`` (pointers as int)."""

    dst: int
    src: int
    nbytes: int


@dataclass(frozen=True)
class TransferSpec:
    """Host<->device copies around each inference, from pinned host memory.

    Build one with :meth:`pinned`, which allocates pinned host buffers for given
    device buffers (inputs filled with seeded random bytes, never zeros).
    """

    h2d: tuple[Copy, ...] = ()
    d2h: tuple[Copy, ...] = ()
    buffers: tuple[cuda.PinnedBuffer, ...] = field(default=(), compare=False, repr=False)

    def enqueue_h2d(self, stream: int) -> None:
        for c in self.h2d:
            cuda.memcpy_h2d_async(c.dst, c.src, c.nbytes, stream)

    def enqueue_d2h(self, stream: int) -> None:
        for c in self.d2h:
            cuda.memcpy_d2h_async(c.dst, c.src, c.nbytes, stream)

    @property
    def nbytes(self) -> tuple[int, int]:
        """(H2D bytes, D2H bytes) per inference."""
        return sum(c.nbytes for c in self.h2d), sum(c.nbytes for c in self.d2h)

    @classmethod
    def pinned(cls, inputs: Sequence[tuple[int, int]], outputs: Sequence[tuple[int, int]] = (),
               seed: int = 0) -> TransferSpec:
        """Pinned host staging for ``(device_ptr, nbytes)`` inputs and outputs."""
        rng = np.random.default_rng(seed)
        bufs: list[cuda.PinnedBuffer] = []
        h2d, d2h = [], []
        for dev, n in inputs:
            buf = cuda.PinnedBuffer(n)
            buf.array()[:] = rng.integers(1, 255, size=n, dtype=np.uint8)
            bufs.append(buf)
            h2d.append(Copy(dst=int(dev), src=buf.ptr, nbytes=int(n)))
        for dev, n in outputs:
            buf = cuda.PinnedBuffer(n)
            bufs.append(buf)
            d2h.append(Copy(dst=buf.ptr, src=int(dev), nbytes=int(n)))
        return cls(h2d=tuple(h2d), d2h=tuple(d2h), buffers=tuple(bufs))

    def close(self) -> None:
        """Free the pinned buffers :meth:`pinned` allocated."""
        for b in self.buffers:
            b.close()


def _transfer_fns(transfers: Any) -> tuple[Enqueue, Enqueue] | None:
    if transfers is None:
        return None
    if isinstance(transfers, TransferSpec):
        return transfers.enqueue_h2d, transfers.enqueue_d2h
    if isinstance(transfers, (tuple, list)) and len(transfers) == 2 and all(map(callable, transfers)):
        return transfers[0], transfers[1]
    raise UsageError("transfers must be a TransferSpec or a pair (h2d, d2h) of callables "
                     "taking the stream handle")


def _external_handles(stream: Any) -> list[int] | None:
    """Stream handles the caller owns (torch's, TensorRT's), or None."""
    if stream is None:
        return None
    if isinstance(stream, (list, tuple)):
        return [cuda.stream_handle(h) for h in stream]
    return [cuda.stream_handle(stream)]


class _Phase:
    """One phase (h2d, compute or d2h) on one stream: a graph replay or the
    plain enqueue, behind a zero-argument ``launch``."""

    def __init__(self, name: str, fn: Enqueue, stream: int) -> None:
        self.name = name
        self.fn = fn
        self.stream = stream
        self.exec: cuda.GraphExec | None = None
        self.launch: Callable[[], Any] = self.plain

    def plain(self) -> None:
        """The enqueue itself, on this phase's stream."""
        self.fn(self.stream)

    def try_graph(self, mode: str) -> str | None:
        """Capture into a graph; return None on success or why it fell back."""
        try:
            graph = cuda.capture(self.stream, self.fn, mode)
        except cuda.CaptureFailed as exc:
            return str(exc)
        try:
            ge = graph.instantiate()
        except cuda.CudaError as exc:
            cuda.get_last_error()
            return f"graph instantiation failed: {exc}"
        finally:
            graph.close()
        rt = cuda.runtime()
        launch_fn, obj, s = rt.cudaGraphLaunch, ge.obj, self.stream

        def launch() -> None:
            err = launch_fn(obj, s)[0]
            if err:
                cuda.check("cudaGraphLaunch", (err,))

        try:
            ge.upload(s)
            launch()
            cuda.stream_synchronize(s)
        except cuda.CudaError as exc:
            ge.close()
            cuda.get_last_error()
            return f"graph replay failed: {exc}"
        self.exec = ge
        self.launch = launch
        return None

    def close(self) -> None:
        if self.exec is not None:
            self.exec.close()
            self.exec = None
        self.launch = self.plain


class CudaWorkload:
    """Times ``enqueue(stream_handle)`` with CUDA events (kind ``"cuda"``)."""

    kind = "cuda"
    clock: Clock = "device"

    def __init__(
        self,
        enqueue: Enqueue,
        *,
        mode: str = "latency",
        streams: int = 1,
        cuda_graph: bool = True,
        blocking_sync: bool = False,
        transfers: Any = None,
        inferences_per_iteration: int = 1,
        identity: Mapping[str, Any] | None = None,
        capture_mode: str = "thread_local",
        queue_depth: int = 2,
        stream: int | Sequence[int] | None = None,
        check_capture: bool = True,
    ) -> None:
        """``check_capture``: run the capture check when graphs are on (the
        enqueue is user code); False only for enqueues the harness wrote
        (TensorRT engines)."""
        if not callable(enqueue):
            raise UsageError("CudaWorkload needs a callable enqueue(stream_handle) -> None")
        if mode not in MODES:
            raise UsageError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        if int(streams) < 1:
            raise UsageError(f"streams={streams!r} must be at least 1")
        if streams > 1 and mode != "throughput":
            raise UsageError(f"streams={streams} needs mode='throughput' (latency mode uses one stream)")
        external = _external_handles(stream)
        if external is not None and len(external) != int(streams):
            raise UsageError(f"stream= gives {len(external)} external stream(s) but streams={streams}")
        if int(inferences_per_iteration) < 1:
            raise UsageError("inferences_per_iteration must be at least 1")
        if int(queue_depth) < 1:
            raise UsageError("queue_depth must be at least 1 (1 = wait for each inference)")
        if capture_mode not in cuda.CAPTURE_MODES:
            raise UsageError(f"capture_mode={capture_mode!r} is not one of {', '.join(cuda.CAPTURE_MODES)}")
        self.enqueue = enqueue
        self.mode = mode
        self.n_streams = int(streams)
        self.cuda_graph = bool(cuda_graph)
        self.blocking_sync = bool(blocking_sync)
        self._transfer_fns = _transfer_fns(transfers)
        self.inferences_per_iteration = int(inferences_per_iteration)
        self._user_identity = dict(identity or {})
        self.capture_mode = capture_mode
        self.queue_depth = int(queue_depth)
        self._external = external
        self.check_capture = bool(check_capture)
        self._prior: str | None = None
        #: "graph" or "eager" once set up, when the harness captured user code
        #: (graphs on, ``check_capture``): how the enqueue is timed.
        self.timed_as: str | None = None
        #: The capture check's numbers and choice (None when no check ran).
        self.check: CaptureCheck | None = None
        self._notes: list[str] = []
        self._streams: list[cuda.Stream] = []
        self._phases: list[list[_Phase]] = []  # per stream: [h2d?, compute, d2h?]
        self._events: list[Any] = []
        self._ready = False

    # ------------------------------------------------------------ contract

    @property
    def last_value(self) -> Any:
        """What ``enqueue`` returned on its last call, when it keeps it
        (``select.LastCall``; a graph replay does not call it)."""
        return self.enqueue.value if isinstance(self.enqueue, KeepsLastValue) else None

    @property
    def graph_used(self) -> bool:
        """True when every phase replays a captured graph (after setup)."""
        return bool(self._phases) and all(p.exec is not None for ph in self._phases for p in ph)

    @property
    def transfers(self) -> bool:
        return self._transfer_fns is not None

    def identity(self) -> Mapping[str, Any]:
        ident: dict[str, Any] = {
            "kind": self.kind,
            "mode": self.mode,
            "streams": self.n_streams,
            "cuda_graph": self.cuda_graph,
            "sync": "blocking" if self.blocking_sync else "spin",
            "transfers": self.transfers,
            "inferences_per_iteration": self.inferences_per_iteration,
        }
        if self.timed_as is not None:
            ident["timed_as"] = self.timed_as
        if self.check is not None:
            ident["capture_check"] = self.check.identity()
        ident.update(self._user_identity)
        return ident

    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes)

    def use_baseline_choice(self, timed_as: str | None) -> None:
        """What the baseline timed (``"graph"`` / ``"eager"``), before setup:
        the capture check keeps it unless the evidence is clearly against it,
        so a compare run does not flip near the threshold."""
        self._prior = timed_as if timed_as in CHOICES else None

    def setup(self) -> None:
        """Create streams, capture graphs (or fall back), check a captured
        user enqueue (graph or eager), warm each phase once."""
        if self._ready:
            return
        cuda.require_gpu()
        self._notes = []
        self.timed_as = None
        self.check = None
        try:
            self._make_streams()
            for s in self._streams:
                self._phases.append(self._make_phases(s.handle))
            if self.cuda_graph and self.check_capture:
                self._check_capture()
            self._warm()
        except BaseException:
            self.teardown()
            raise
        self._ready = True

    def teardown(self) -> None:
        for phases in self._phases:
            for p in phases:
                p.close()
        self._phases = []
        for ev in self._events:
            cuda.runtime().cudaEventDestroy(ev)
        self._events = []
        for s in self._streams:
            s.close()
        self._streams = []
        self._ready = False

    def run(self, iterations: int) -> Batch:
        if not self._ready:
            raise UsageError("CudaWorkload.run() called before setup()")
        n = int(iterations)
        if n < 1:
            raise UsageError(f"iterations={iterations!r} must be at least 1")
        if self.mode == "latency":
            return self._run_latency(n)
        return self._run_throughput(n)

    # --------------------------------------------------------------- setup

    def _make_streams(self) -> None:
        if self._external is not None:
            self._streams = [cuda.Stream(h) for h in self._external]
        else:
            self._streams = [cuda.Stream(non_blocking=True) for _ in range(self.n_streams)]

    def _make_phases(self, stream: int) -> list[_Phase]:
        phases = []
        if self._transfer_fns is not None:
            phases.append(_Phase("h2d", self._transfer_fns[0], stream))
        phases.append(_Phase("compute", self.enqueue, stream))
        if self._transfer_fns is not None:
            phases.append(_Phase("d2h", self._transfer_fns[1], stream))
        if self.cuda_graph:
            for p in phases:
                why = p.try_graph(self.capture_mode)
                if why is not None:
                    self._add_note(f"CUDA graph capture of {p.name} failed, timing the plain "
                                   f"enqueue instead: {why}")
        return phases

    def _check_capture(self) -> None:
        """Graph or eager for the user's enqueue (the compute phase; copies of
        ``transfers`` are the harness's and keep their graphs): time plain
        enqueues and replays on the first stream, interleaved, and drop the
        compute graphs when the rule says capture changed the program. A
        capture that failed on any stream is eager everywhere, without a check."""
        compute = [p for phases in self._phases for p in phases if p.name == "compute"]
        if all(p.exec is not None for p in compute):
            first = compute[0]
            self.check = time_and_decide(first.stream, first.plain, first.launch, prior=self._prior,
                                         subject="the stream callable")
            note = self.check.note()
            if note is not None:
                self._add_note(note)
            self.timed_as = self.check.choice
        else:
            self.timed_as = EAGER
        if self.timed_as != GRAPH:
            for p in compute:
                p.close()

    def _add_note(self, note: str) -> None:
        if note not in self._notes:
            self._notes.append(note)

    def _warm(self) -> None:
        """Run every phase once so lazy work (module load, graph upload) is done."""
        for phases in self._phases:
            for p in phases:
                p.launch()
        for s in self._streams:
            s.synchronize()
        err = cuda.get_last_error()
        if err is not None:
            raise cuda.CudaError("workload enqueue (warm-up)", 0, err, "error left by the workload")

    def _ensure_events(self, count: int) -> list[Any]:
        rt = cuda.runtime()
        flags = rt.cudaEventBlockingSync if self.blocking_sync else rt.cudaEventDefault
        while len(self._events) < count:
            self._events.append(cuda.check("cudaEventCreateWithFlags",
                                           rt.cudaEventCreateWithFlags(flags)))
        return self._events

    # ---------------------------------------------------------------- loops

    def _waiter(self) -> Callable[[Any], None]:
        rt = cuda.runtime()
        if self.blocking_sync:
            sync = rt.cudaEventSynchronize

            def wait(ev: Any) -> None:
                err = sync(ev)[0]
                if err:
                    cuda.check("cudaEventSynchronize", (err,))
            return wait
        return cuda.spin_wait

    def _elapsed(self, a: Any, b: Any) -> float:
        return float(cuda.check("cudaEventElapsedTime", cuda.runtime().cudaEventElapsedTime(a, b)))

    def _run_latency(self, n: int) -> Batch:
        phases = self._phases[0]
        n_ev = len(phases) + 1  # boundaries: start, after each phase
        compute_idx = 1 if self.transfers else 0
        lat = np.empty(n)
        comp = np.empty(n)
        enq = np.empty(n)
        h2d = np.empty(n if self.transfers else 0)
        d2h = np.empty(n if self.transfers else 0)
        wall = 0.0
        done = 0
        while done < n:
            m = min(CHUNK, n - done)
            evs = self._ensure_events(m * n_ev)
            wall += self._latency_chunk(m, n_ev, compute_idx, phases, evs, enq[done:done + m])
            for i in range(m):
                b = evs[i * n_ev:(i + 1) * n_ev]
                j = done + i
                comp[j] = self._elapsed(b[compute_idx], b[compute_idx + 1])
                if self.transfers:
                    h2d[j] = self._elapsed(b[0], b[1])
                    d2h[j] = self._elapsed(b[2], b[3])
                    lat[j] = self._elapsed(b[0], b[3])
                else:
                    lat[j] = comp[j]
            done += m
        extra = {"gpu_compute": comp / 1e3, "enqueue": enq}
        if self.transfers:
            extra["h2d"] = h2d / 1e3
            extra["d2h"] = d2h / 1e3
        return Batch(latency_s=lat / 1e3, wall_s=wall, extra=extra)

    def _latency_chunk(self, m: int, n_ev: int, compute_idx: int, phases: list[_Phase],
                       evs: list[Any], enq_out: np.ndarray) -> float:
        """Enqueue ``m`` iterations, one stream, ``queue_depth`` in flight; sync
        once at the end. Returns host wall seconds."""
        rt = cuda.runtime()
        record = rt.cudaEventRecord
        s = self._streams[0].handle
        wait = self._waiter()
        depth = self.queue_depth
        launches = [p.launch for p in phases]
        compute = launches[compute_idx]
        pc = REAL.perf_counter
        t_start = pc()
        for i in range(m):
            base = i * n_ev
            if i >= depth:
                wait(evs[base - depth * n_ev + n_ev - 1])
            err = record(evs[base], s)[0]
            if err:
                cuda.check("cudaEventRecord", (err,))
            for k, launch in enumerate(launches):
                if k == compute_idx:
                    t0 = pc()
                    compute()
                    enq_out[i] = pc() - t0
                else:
                    launch()
                err = record(evs[base + k + 1], s)[0]
                if err:
                    cuda.check("cudaEventRecord", (err,))
        wait(evs[(m - 1) * n_ev + n_ev - 1])
        wall = pc() - t_start
        self._check_workload_error()
        return wall

    def _check_workload_error(self) -> None:
        err = cuda.get_last_error()
        if err is not None:
            raise cuda.CudaError("workload enqueue", 0, err, "error left by the workload")

    def _run_throughput(self, n: int) -> Batch:
        """One completion event per iteration (a start event per iteration
        costs GPU time between back-to-back inferences); the previous
        completion on the same stream serves as the start."""
        S = self.n_streams
        comp = np.empty(n)
        enq = np.empty(n)
        done_t = np.empty(n)  # completion time since the chunk's origin, ms
        lat = np.empty(n)
        wall = 0.0
        done = 0
        while done < n:
            m = min(CHUNK, n - done)
            evs = self._ensure_events(m + S)
            wall += self._throughput_chunk(m, evs, enq[done:done + m])
            origins = evs[m:m + S]
            for i in range(m):
                prev = evs[i - S] if i >= S else origins[i % S]
                comp[done + i] = self._elapsed(prev, evs[i])
                done_t[done + i] = self._elapsed(origins[0], evs[i])
            c = np.sort(done_t[done:done + m])
            prev_c = np.concatenate([np.zeros(min(S, m)), c[:-S] if m > S else c[:0]])
            width = np.minimum(np.arange(1, m + 1), S)
            lat[done:done + m] = (c - prev_c) / width
            done += m
        ipi = self.inferences_per_iteration
        extra = {"gpu_compute": comp / 1e3, "enqueue": enq}
        return Batch(latency_s=lat / 1e3 / ipi, wall_s=wall, extra=extra)

    def _throughput_chunk(self, m: int, evs: list[Any], enq_out: np.ndarray) -> float:
        """Round robin over streams, ``queue_depth`` in flight on each; sync
        once. ``evs[:m]`` completions, ``evs[m:m+S]`` per-stream origins."""
        rt = cuda.runtime()
        record = rt.cudaEventRecord
        S = self.n_streams
        handles = [s.handle for s in self._streams]
        launches = [[p.launch for p in ph] for ph in self._phases]
        compute_idx = 1 if self.transfers else 0
        wait = self._waiter()
        ahead = S * self.queue_depth
        pc = REAL.perf_counter
        t_start = pc()
        for k, h in enumerate(handles):
            cuda.check("cudaEventRecord", record(evs[m + k], h))
        for i in range(m):
            k = i % S
            if i >= ahead:
                wait(evs[i - ahead])
            for j, launch in enumerate(launches[k]):
                if j == compute_idx:
                    t0 = pc()
                    launch()
                    enq_out[i] = pc() - t0
                else:
                    launch()
            err = record(evs[i], handles[k])[0]
            if err:
                cuda.check("cudaEventRecord", (err,))
        for i in range(max(0, m - S), m):
            wait(evs[i])
        wall = pc() - t_start
        self._check_workload_error()
        return wall

    def __enter__(self) -> CudaWorkload:
        self.setup()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.teardown()

    def __repr__(self) -> str:
        return (f"CudaWorkload(mode={self.mode!r}, streams={self.n_streams}, "
                f"cuda_graph={self.cuda_graph}, blocking_sync={self.blocking_sync})")


__all__ = ["CHUNK", "Copy", "CudaWorkload", "MODES", "TransferSpec"]
