"""Which workload times a callable: the one rule behind ``timer=``.

``trt_bench.measure(fn)`` and scripts outside pytest pick the same workload
for the same callable: ``host`` (the host clock), ``cuda`` (``fn(stream)`` on
a CUDA stream, CUDA events), ``torch`` (``fn()`` on torch's current stream),
or ``auto``: CUDA for a callable that takes exactly one argument (the
stream), else the host clock, waiting for the GPU after each call when the
callable leaves torch GPU work running.
"""

from __future__ import annotations

import sys
from typing import Any

from ..config import MeasureOptions
from ..errors import UsageError
from ..workload import Workload

TIMERS = ("auto", "host", "cuda", "torch")


def for_callable(fn: Any, *, timer: str = "auto", opts: MeasureOptions | None = None,
                 inferences_per_iteration: int = 1, where: str = "trt_bench.measure()") -> Workload:
    """The workload that times ``fn`` with ``timer`` (one-line errors name ``where``)."""
    if timer not in TIMERS:
        raise UsageError(f"{where}: timer={timer!r} is not one of {', '.join(TIMERS)}")
    if not callable(fn):
        raise UsageError(f"{where}: needs a callable, a Workload or an engine, got {type(fn).__name__}")
    opts = opts or MeasureOptions()
    if timer == "auto":
        timer = "cuda" if takes_stream(fn) else "host"
        if timer == "host" and enqueues_torch_gpu_work(fn):
            # The callable leaves torch GPU work running when it returns: time
            # it end to end (host clock + synchronize) so it is never too short.
            import torch

            from .host import HostWorkload

            return HostWorkload(fn, inferences_per_iteration=inferences_per_iteration,
                                sync=torch.cuda.synchronize, sync_name="torch.cuda.synchronize")
    if timer == "host":
        from .host import HostWorkload

        return HostWorkload(fn, inferences_per_iteration=inferences_per_iteration)
    gpu_kw: dict[str, Any] = dict(mode=opts.mode, streams=opts.streams, cuda_graph=opts.cuda_graph,
                                  blocking_sync=opts.blocking_sync,
                                  inferences_per_iteration=inferences_per_iteration)
    if timer == "cuda":
        from .cuda import CudaWorkload

        return CudaWorkload(fn, **gpu_kw)
    from .torch import TorchWorkload

    return TorchWorkload(fn, **gpu_kw)


def takes_stream(fn: Any) -> bool:
    """True for ``lambda stream: ...``: exactly one required positional parameter."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(required) == 1 and not any(p.kind == p.VAR_POSITIONAL for p in params)


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
