"""Which workload times a callable: the one rule behind ``timer=``.

``trt_bench.measure(fn)`` and scripts outside pytest pick the same workload
for the same callable: ``host`` (the host clock), ``cuda`` (``fn(stream)`` on
a CUDA stream, CUDA events), ``torch`` (``fn()`` on torch's current stream),
or ``auto``: the host clock, waiting for the GPU after each call when the
callable leaves torch GPU work running. ``auto`` never guesses CUDA from a
signature: a one-parameter host function measured without its argument would
otherwise be handed a stream handle (or skipped for want of cuda-python); it
is a one-line error saying to pass the argument or say ``timer="cuda"``.

Arguments (``trt_bench.measure(fn, x, kwargs={...})``) are bound here, after
the callable's signature was checked against them: a callable that cannot
take what it will be called with is one line naming the test, not a
``TypeError`` from deep inside the measurement loop.
"""

from __future__ import annotations

import functools
import sys
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.workload import KeepsLastValue, ValueKeepingWorkload, Workload

TIMERS = ("auto", "host", "cuda", "torch")


class LastCall(KeepsLastValue):
    """Calls ``fn`` and keeps what it returned. Wraps GPU callables only:
    their time is CUDA events (or a graph replay that does not call them), so
    the wrapper's few host nanoseconds stay out of the result; host callables
    keep their return value inside the timed loop instead (``HostWorkload``)."""

    __slots__ = ("fn", "value")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.value: Any = None

    def __call__(self, *args: Any) -> Any:
        value = self.value = self.fn(*args)
        return value


def last_value(workload: Workload) -> Any:
    """What the callable behind ``workload`` returned on its last call
    (None for engines and workloads that do not keep it)."""
    return workload.last_value if isinstance(workload, ValueKeepingWorkload) else None


def for_callable(fn: Any, *, timer: str = "auto", opts: MeasureOptions | None = None,
                 inferences_per_iteration: int = 1, where: str = "trt_bench.measure()",
                 args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Workload:
    """The workload that times ``fn(*args, **kwargs)`` with ``timer`` (a CUDA
    callable gets the stream handle first); one-line errors name ``where``."""
    if timer not in TIMERS:
        raise UsageError(f"{where}: timer={timer!r} is not one of {', '.join(TIMERS)}")
    if not callable(fn):
        raise UsageError(f"{where}: needs a callable, a Workload or an engine, got {type(fn).__name__}")
    opts = opts or MeasureOptions()
    args, kwargs = tuple(args), dict(kwargs or {})
    if timer == "auto":
        timer = "host"
        check_call(fn, args, kwargs, stream=False, where=where, auto=True)
        call = _bound(fn, args, kwargs)
        if enqueues_torch_gpu_work(call):
            # The callable leaves torch GPU work running when it returns: time
            # it end to end (host clock + synchronize) so it is never too short.
            import torch

            from pytest_trtperf.workloads.host import HostWorkload

            return HostWorkload(call, inferences_per_iteration=inferences_per_iteration,
                                # torch is optional and not installed where CI type-checks.
                                sync=torch.cuda.synchronize,  # pyright: ignore[reportAttributeAccessIssue]  # torch is optional, absent where pyright runs
                                sync_name="torch.cuda.synchronize")
    check_call(fn, args, kwargs, stream=timer == "cuda", where=where)
    if timer == "host":
        from pytest_trtperf.workloads.host import HostWorkload

        return HostWorkload(_bound(fn, args, kwargs), inferences_per_iteration=inferences_per_iteration)
    gpu_kw: dict[str, Any] = dict(mode=opts.mode, streams=opts.streams, cuda_graph=opts.cuda_graph,
                                  blocking_sync=opts.blocking_sync,
                                  inferences_per_iteration=inferences_per_iteration)
    if timer == "cuda":
        from pytest_trtperf.workloads.cuda import CudaWorkload

        enqueue = fn if not args and not kwargs else (lambda stream: fn(stream, *args, **kwargs))
        return CudaWorkload(LastCall(enqueue), **gpu_kw)
    from pytest_trtperf.workloads.torch import TorchWorkload

    return TorchWorkload(LastCall(_bound(fn, args, kwargs)), **gpu_kw)


def _bound(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], Any]:
    return functools.partial(fn, *args, **kwargs) if args or kwargs else fn


def check_call(fn: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, stream: bool, where: str,
               auto: bool = False) -> None:
    """A one-line usage error unless ``fn`` accepts ``(stream?, *args,
    **kwargs)``. Callables without an inspectable signature (some C
    functions) pass: they say for themselves when called. Under ``auto``
    (``timer="auto"``) a callable measured without arguments that one
    argument would satisfy may be a stream callable, so the fix names both
    ways."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*((0,) if stream else ()), *args, **kwargs)
    except TypeError as e:
        parts = (["the stream handle"] if stream else []) + (
            [f"{len(args)} positional argument{'s' if len(args) != 1 else ''}"] if args else []) + (
            [f"keyword argument{'s' if len(kwargs) != 1 else ''} {', '.join(map(str, kwargs))}"] if kwargs else [])
        called = " and ".join(parts) if parts else "no arguments"
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        fix = ("give it one parameter for the stream handle" if stream and not args and not kwargs else
               "pass its arguments after it, trt_bench.measure(fn, x, y), and keyword arguments as kwargs={...}")
        if auto and not args and not kwargs and _binds(sig, (0,)):  # one missing argument: maybe a stream
            fix = ("pass the argument after it, trt_bench.measure(fn, x), or say timer=\"cuda\" if it takes a CUDA "
                   "stream handle")
        raise UsageError(f"{where}: {name}{sig} cannot be called with {called} ({e}); {fix}") from None


def _binds(sig: Any, args: tuple[Any, ...]) -> bool:
    try:
        sig.bind(*args)
    except TypeError:
        return False
    return True


def enqueues_torch_gpu_work(fn: Any, probes: int = 3) -> bool:
    """Does ``fn()`` return while GPU work it enqueued on torch's current
    stream is still running? Only asked once torch has initialised CUDA; a
    pure host function leaves the stream idle."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_initialized():
            return False
        stream = torch.cuda.current_stream()
        for _ in range(probes):
            torch.cuda.synchronize()
            fn()
            if not stream.query():
                return True
        return False
    except Exception:  # noqa: BLE001 - any torch oddity means "not torch"
        return False
