"""Execution slots: the places a request can run at the same time as others.

A slot runs one request at a time and blocks until it is complete; the driver
gives each slot its own host thread. What a slot holds depends on the work:

* host callables: nothing but the thread (``HostSlots``);
* torch callables: one ``torch.cuda.Stream`` per slot, made current in the
  slot's thread around the call, synchronised before the request counts as
  done (``TorchSlots``);
* CUDA-stream callables ``fn(stream)``: one CUDA stream per slot
  (``StreamSlots``);
* TensorRT engines: one ``IExecutionContext`` per slot, each with its own
  stream and its own I/O buffers (``EngineSlots``), because TensorRT's
  execution contexts are not thread-safe and run concurrently only when each
  is enqueued on its own stream (TensorRT developer guide, "Threading" and
  "Streams").
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable
from collections.abc import Callable, Mapping, Sequence

from pytest_trtperf.core.workload import Clock

#: Slot kinds, as the fixture picks them (``timer=`` for callables).
KINDS = ("host", "torch", "cuda", "tensorrt")


@runtime_checkable
class Slots(Protocol):
    """``count`` execution slots over one piece of work."""

    kind: str
    count: int

    def setup(self) -> None:
        """Create streams, contexts and buffers; warm each slot once."""

    def calls(self) -> Sequence[Callable[[], None]]:
        """One blocking call per slot: runs one request there and returns when
        its work is complete. Each is only ever called from one thread."""
        ...

    def teardown(self) -> None:
        """Release what :meth:`setup` made (called even after a failure)."""

    def identity(self) -> Mapping[str, Any]:
        """What the slots add to the measurement identity."""
        ...


class HostSlots:
    """A host callable in ``count`` threads (it must be safe to call from
    several threads at once when ``count > 1``)."""

    kind = "host"
    clock: Clock = "host"

    def __init__(self, fn: Callable[[], Any], count: int) -> None:
        self._fn = fn
        self.count = int(count)

    def setup(self) -> None:
        """Nothing to create: threads belong to the driver."""

    def calls(self) -> Sequence[Callable[[], None]]:
        fn = self._fn
        return [lambda: (fn(), None)[1] for _ in range(self.count)]

    def teardown(self) -> None:
        """Nothing to release."""

    def memory_figures(self) -> Mapping[str, int]:
        """``host_peak_bytes`` of one request, as for ``trt_bench.measure``."""
        from pytest_trtperf.core.memory import host_peak_per_call

        return {"host_peak_bytes": host_peak_per_call(self._fn)}

    def identity(self) -> Mapping[str, Any]:
        return {"slots": "threads"}


class TorchSlots:
    """A torch callable, one ``torch.cuda.Stream`` per slot: the call is made
    with the slot's stream current (torch's current stream is per thread), and
    the request is done when that stream has finished its work."""

    kind = "torch"
    clock: Clock = "device"

    def __init__(self, fn: Callable[[], Any], count: int) -> None:
        self._fn = fn
        self.count = int(count)
        self._streams: list[Any] = []

    def setup(self) -> None:
        from pytest_trtperf.workloads.torch import _torch

        torch = _torch()
        self._streams = [torch.cuda.Stream() for _ in range(self.count)]
        for call in self.calls():  # first-call costs (cuDNN/cuBLAS handles per stream) stay out
            call()

    def calls(self) -> Sequence[Callable[[], None]]:
        from pytest_trtperf.workloads.torch import _torch

        torch = _torch()
        fn = self._fn

        def on(stream: Any) -> Callable[[], None]:
            def call() -> None:
                with torch.cuda.stream(stream):
                    fn()
                stream.synchronize()

            return call

        return [on(s) for s in self._streams]

    def teardown(self) -> None:
        for s in self._streams:
            s.synchronize()
        self._streams = []

    def identity(self) -> Mapping[str, Any]:
        return {"slots": "torch streams"}


class StreamSlots:
    """A CUDA-stream callable ``fn(stream_handle)``, one stream per slot."""

    kind = "cuda"
    clock: Clock = "device"

    def __init__(self, fn: Callable[[int], Any], count: int) -> None:
        self._fn = fn
        self.count = int(count)
        self._streams: list[Any] = []

    def setup(self) -> None:
        from pytest_trtperf.gpu import cuda

        cuda.require_gpu()
        self._streams = [cuda.Stream(non_blocking=True) for _ in range(self.count)]
        for call in self.calls():
            call()

    def calls(self) -> Sequence[Callable[[], None]]:
        fn = self._fn

        def on(stream: Any) -> Callable[[], None]:
            def call() -> None:
                fn(stream.handle)
                stream.synchronize()

            return call

        return [on(s) for s in self._streams]

    def teardown(self) -> None:
        for s in self._streams:
            s.synchronize()
            s.close()
        self._streams = []

    def identity(self) -> Mapping[str, Any]:
        return {"slots": "cuda streams"}


class EngineSlots:
    """A TensorRT engine: ``workload`` is a ``TensorRTWorkload`` made with
    ``streams=count``, whose setup creates one execution context per stream,
    each with its own device buffers (``TensorRTWorkload.slot_calls``)."""

    kind = "tensorrt"
    clock: Clock = "device"

    def __init__(self, workload: Any, count: int) -> None:
        if int(getattr(workload, "n_streams", 0)) != int(count):
            raise ValueError("EngineSlots needs a TensorRTWorkload made with streams=count")
        self.workload = workload
        self.count = int(count)

    def setup(self) -> None:
        self.workload.setup()

    def calls(self) -> Sequence[Callable[[], None]]:
        return list(self.workload.slot_calls())

    def memory_figures(self) -> Mapping[str, int]:
        """The engine's figures over all contexts (``TensorRTWorkload.memory_figures``)."""
        return dict(self.workload.memory_figures())

    def teardown(self) -> None:
        self.workload.teardown()

    def identity(self) -> Mapping[str, Any]:
        return {"slots": "tensorrt contexts", **dict(self.workload.identity())}


def for_callable(fn: Any, *, timer: str, count: int, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None, where: str) -> Slots:
    """The slots for a callable, picked as ``trt_bench.measure`` picks its
    timer (``workloads/select.py``): ``cuda`` for ``fn(stream)`` only when
    ``timer="cuda"`` says so (never guessed from the signature), ``torch`` for
    torch work on the current stream (under ``auto``: a callable that leaves
    torch GPU work running), ``host`` otherwise."""
    import functools

    from pytest_trtperf.core.errors import UsageError
    from pytest_trtperf.workloads.select import TIMERS, check_call, enqueues_torch_gpu_work

    if timer not in TIMERS:
        raise UsageError(f"{where}: timer={timer!r} is not one of {', '.join(TIMERS)}")
    if not callable(fn):
        raise UsageError(f"{where}: needs a callable or an engine, got {type(fn).__name__}")
    args, kw = tuple(args), dict(kwargs or {})
    auto = timer == "auto"
    timer = "host" if auto else timer
    check_call(fn, args, kw, stream=timer == "cuda", where=where, auto=auto)
    if timer == "cuda":
        return StreamSlots(fn if not args and not kw else (lambda stream: fn(stream, *args, **kw)), count)
    call = functools.partial(fn, *args, **kw) if args or kw else fn
    if timer == "torch" or (timer == "host" and enqueues_torch_gpu_work(call)):
        return TorchSlots(call, count)
    return HostSlots(call, count)
