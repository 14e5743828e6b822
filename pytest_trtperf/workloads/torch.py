"""Time a torch callable on the GPU with the same machinery as CudaWorkload.

:class:`TorchWorkload` takes ``fn()`` (no arguments: a module call, a
Torch-TensorRT engine, any torch code) that launches its work on torch's
*current* stream. Setup makes a side stream current, warms ``fn`` up, and
captures it with ``torch.cuda.CUDAGraph`` (on by default). If capture fails
(``fn`` syncs, calls ``.item()``, allocates outside the graph pool, ...) the
capture is ended, the error cleared, and ``fn`` itself is timed; notes() says so.

A capture can also succeed and change the program (PyTorch's SDPA runs other
kernels under capture: the guide's ViT-large replays in 2x its eager time).
So after a successful capture, setup times eager calls and replays with CUDA
events in interleaved blocks and lets :mod:`.capture_check` choose what to
time, with hysteresis around the baseline's previous choice
(:meth:`TorchWorkload.use_baseline_choice`). The choice is
``identity()["timed_as"]``; the numbers are ``identity()["capture_check"]``.

Timing is delegated to :class:`~pytest_trtperf.workloads.cuda.CudaWorkload` on
that stream, so events, modes, blocking sync and chunking are identical.

torch is optional: importing this module never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from pytest_trtperf.gpu import cuda
from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.core.workload import Batch, Clock, KeepsLastValue
from pytest_trtperf.workloads.capture_check import CHOICES, EAGER, GRAPH, CaptureCheck, time_and_decide
from pytest_trtperf.workloads.cuda import CudaWorkload

_TORCH_HINT = "pip install torch (a CUDA build)"

#: Eager calls whose device memory is measured after the timed window (median).
MEMORY_CALLS = 3


def _torch() -> Any:
    """torch with a usable GPU, or BackendUnavailable in one line."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailable(f"torch is not installed (needed for timer='torch'): {_TORCH_HINT}") from None
    # torch is optional and not installed where CI type-checks: pyright cannot see its names.
    if not torch.cuda.is_available():  # pyright: ignore[reportAttributeAccessIssue]  # torch is optional, absent where pyright runs
        raise BackendUnavailable("torch sees no CUDA GPU (CPU-only build or no device)")
    return torch


def torch_cuda_initialized() -> bool:
    """True when the process already uses torch on CUDA (without importing torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:
        return False


class TorchWorkload:
    """Times ``fn()`` on torch's current stream (kind ``"torch"``)."""

    kind = "torch"
    clock: Clock = "device"

    def __init__(
        self,
        fn: Callable[[], Any],
        *,
        mode: str = "latency",
        streams: int = 1,
        cuda_graph: bool = True,
        blocking_sync: bool = False,
        inferences_per_iteration: int = 1,
        identity: Mapping[str, Any] | None = None,
        capture_mode: str = "thread_local",
        warmup_calls: int = 3,
        queue_depth: int = 2,
    ) -> None:
        if not callable(fn):
            raise UsageError("TorchWorkload needs a callable fn() that runs on torch's current stream")
        if capture_mode not in cuda.CAPTURE_MODES:
            raise UsageError(f"capture_mode={capture_mode!r} is not one of {', '.join(cuda.CAPTURE_MODES)}")
        self.fn = fn
        self.cuda_graph = bool(cuda_graph)
        self.capture_mode = capture_mode
        self.warmup_calls = max(1, int(warmup_calls))
        self.inferences_per_iteration = int(inferences_per_iteration)
        self._streams = int(streams)
        self._opts: dict[str, Any] = dict(mode=mode, streams=self._streams, blocking_sync=bool(blocking_sync),
                                          inferences_per_iteration=int(inferences_per_iteration),
                                          queue_depth=int(queue_depth))
        # Validate the shared options now (no GPU needed), as CudaWorkload does.
        CudaWorkload(lambda h: None, cuda_graph=False, **self._opts)
        self._user_identity = dict(identity or {})
        self._inner: CudaWorkload | None = None
        self._torch_streams: list[Any] = []
        self._graphs: list[Any] = []
        self._notes: list[str] = []
        self._prior: str | None = None
        #: "graph" or "eager" once set up: what run() times.
        self.timed_as: str | None = None
        #: The capture check's numbers and choice (None when no check ran).
        self.check: CaptureCheck | None = None

    @property
    def last_value(self) -> Any:
        """What ``fn`` returned on its last call, when it keeps it
        (``select.LastCall``; a graph replay does not call it)."""
        return self.fn.value if isinstance(self.fn, KeepsLastValue) else None

    def use_baseline_choice(self, timed_as: str | None) -> None:
        """What the baseline timed (``"graph"`` / ``"eager"``), before setup:
        the capture check keeps it unless the evidence is clearly against it,
        so a compare run does not flip near the threshold."""
        self._prior = timed_as if timed_as in CHOICES else None

    # ------------------------------------------------------------ contract

    @property
    def graph_used(self) -> bool:
        return bool(self._graphs)

    def identity(self) -> Mapping[str, Any]:
        ident: dict[str, Any] = {
            "kind": self.kind,
            "mode": self._opts["mode"],
            "streams": self._opts["streams"],
            "cuda_graph": self.cuda_graph,
            "sync": "blocking" if self._opts["blocking_sync"] else "spin",
            "transfers": False,
            "inferences_per_iteration": self.inferences_per_iteration,
        }
        if self.timed_as is not None:
            ident["timed_as"] = self.timed_as
        if self.check is not None:
            ident["capture_check"] = self.check.identity()
        ident.update(self._user_identity)
        return ident

    def notes(self) -> tuple[str, ...]:
        inner = self._inner.notes() if self._inner is not None else ()
        return tuple(self._notes) + tuple(inner)

    def setup(self) -> None:
        if self._inner is not None:
            return
        torch = _torch()
        cuda.require_gpu()
        self._notes = []
        self.check = None
        try:
            self._torch_streams = [torch.cuda.Stream() for _ in range(self._streams)]
            for ts in self._torch_streams:
                with torch.cuda.stream(ts):
                    for _ in range(self.warmup_calls):
                        self.fn()
                ts.synchronize()
            if self.cuda_graph:
                self._capture_all(torch)
                if self._graphs:
                    self._check_capture(torch)
            self.timed_as = GRAPH if self._graphs else EAGER
            self._inner = self._make_inner(torch)
            self._inner.setup()
        except BaseException:
            self.teardown()
            raise

    def run(self, iterations: int) -> Batch:
        if self._inner is None:
            raise UsageError("TorchWorkload.run() called before setup()")
        torch = _torch()
        with torch.cuda.stream(self._torch_streams[0]):
            return self._inner.run(iterations)

    def memory_figures(self) -> Mapping[str, int]:
        """Device memory of the callable, measured after the timed window with
        torch's allocator statistics: ``device_peak_bytes`` is the median over
        a few eager calls of ``max_memory_allocated`` during the call minus
        ``memory_allocated`` before it (what one call needs on top of what is
        already held: activations, temporaries); the process-wide peaks of the
        same calls are recorded as ``torch_peak_allocated_bytes`` /
        ``torch_peak_reserved_bytes``. Eager calls, because a graph replay
        reuses its pool and would read 0. Resets torch's peak statistics."""
        if not self._torch_streams:
            return {}
        torch = _torch()
        ts = self._torch_streams[0]
        per_call: list[int] = []
        allocated = reserved = 0
        with torch.cuda.stream(ts):
            for _ in range(MEMORY_CALLS):
                torch.cuda.synchronize()
                before = int(torch.cuda.memory_allocated())
                torch.cuda.reset_peak_memory_stats()
                self.fn()
                ts.synchronize()
                peak = int(torch.cuda.max_memory_allocated())
                per_call.append(max(peak - before, 0))
                allocated = max(allocated, peak)
                reserved = max(reserved, int(torch.cuda.max_memory_reserved()))
        per_call.sort()
        return {"device_peak_bytes": per_call[len(per_call) // 2], "torch_peak_allocated_bytes": allocated,
                "torch_peak_reserved_bytes": reserved}

    def teardown(self) -> None:
        if self._inner is not None:
            self._inner.teardown()
            self._inner = None
        self._graphs = []
        self._torch_streams = []

    # --------------------------------------------------------------- setup

    def _capture_all(self, torch: Any) -> None:
        graphs = []
        for ts in self._torch_streams:
            why = self._capture_one(torch, ts, graphs)
            if why is not None:
                self._notes.append(
                    f"CUDA graph capture of the torch callable failed, timing it eagerly instead: {why}")
                graphs = []
                break
        self._graphs = graphs

    def _capture_one(self, torch: Any, ts: Any, graphs: list[Any]) -> str | None:
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g, stream=ts, capture_error_mode=self.capture_mode):
                self.fn()
        except Exception as exc:
            warning = _recover_stream(torch, ts)
            if warning is not None:
                self._notes.append(warning)
            return _one_line(exc)
        g.replay()
        ts.synchronize()
        graphs.append(g)
        return None

    def _check_capture(self, torch: Any) -> None:
        """Time eager calls and replays in interleaved blocks on the first
        stream (:func:`.capture_check.time_and_decide`); drop the graphs when
        the rule says the capture changed the program."""
        ts, replay = self._torch_streams[0], self._graphs[0].replay
        with torch.cuda.stream(ts):  # both fn() and replay() launch on the current stream
            self.check = time_and_decide(int(ts.cuda_stream), self.fn, replay, prior=self._prior,
                                         subject="the torch callable")
        if self.check.choice == EAGER:
            self._graphs = []
        note = self.check.note()
        if note is not None:
            self._notes.append(note)

    def _make_inner(self, torch: Any) -> CudaWorkload:
        by_handle = {int(ts.cuda_stream): ts for ts in self._torch_streams}
        targets = ([g.replay for g in self._graphs] if self._graphs
                   else [self.fn] * len(self._torch_streams))
        target_by_handle = {h: t for h, t in zip(by_handle, targets, strict=False)}
        enqueue: Callable[[int], None]
        if len(by_handle) == 1:
            (target,) = targets

            def enqueue_one(_h: int) -> None:
                target()

            enqueue = enqueue_one
        else:
            set_stream = torch.cuda.set_stream

            def enqueue_many(h: int) -> None:
                set_stream(by_handle[h])
                target_by_handle[h]()

            enqueue = enqueue_many
        return CudaWorkload(enqueue, cuda_graph=False, stream=list(by_handle),
                            **self._opts)


def _recover_stream(torch: Any, ts: Any) -> str | None:
    """After a failed capture: end it if torch did not, clear errors, and put
    torch's CUDA RNG back in eager mode (a capture that dies before torch's
    capture_end leaves the generator "capturing": the next random op raises
    "Offset increment outside graph capture"). A trivial capture that succeeds
    runs the generator's capture epilogue. Returns a warning or None."""
    for step in (lambda: cuda.abandon_capture(int(ts.cuda_stream)), torch.cuda.synchronize,
                 cuda.get_last_error):
        try:
            step()
        except Exception:
            pass
    try:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=ts):
            torch.zeros(1, device="cuda").add_(1)
        del g
        torch.rand(1, device="cuda")
        torch.cuda.synchronize()
        return None
    except Exception as exc:
        cuda.get_last_error()
        return f"torch may be unusable after the failed capture ({_one_line(exc)}); use cuda_graph=False"


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


__all__ = ["TorchWorkload", "torch_cuda_initialized"]
