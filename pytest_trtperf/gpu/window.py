"""The measured window as profilers see it.

``measure()`` enters the context this module builds right after warm-up and
leaves it right after the last measured batch, so a profiler can keep to
what was measured, test by test:

* ``--trt-profiler-api``: ``cudaProfilerStart()`` / ``cudaProfilerStop()``
  around the window (GPU workloads only: a host workload must not create a
  CUDA context), for ``nsys profile --capture-range=cudaProfilerApi
  --capture-range-end=repeat``: engine builds, warm-up, CUDA graph capture,
  the per-layer profiling pass and every other test stay out of the report.
* ``--trt-nvtx``: a push/pop NVTX range named after the result id in the
  ``trtperf`` domain (any workload), for Nsight Systems' timeline and
  ``ncu --nvtx --nvtx-include "trtperf@<id>/"``.

An interleaved A/B run (``relative/interleave.py``: ``trt_bench.compare`` and
the ``--trt-ab-confirm`` re-measure) gets the same window around all of its
measured blocks, and inside it one range per block named after the side
(:func:`side_range_name`: ``<id> [a]`` / ``<id> [b]``), from
:func:`block_ranges`; so ``trtperf@<id>/`` keeps to both sides and
``trtperf@<id> \\[a\\]/`` to one (``report.nsight.ncu_filter``).

A profiling aid never fails a measurement: a missing ``nvtx`` package, a
missing cuda-python or a CUDA error becomes a :class:`ProfilingWarning` and
the window runs unannotated. Everything happens outside the timed batches
(events and host clocks are read inside ``Workload.run``), so it cannot move
the numbers; ``bench/profiling.py`` measures that claim on a GPU.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from pytest_trtperf.core.errors import BackendUnavailable


class ProfilingWarning(UserWarning):
    """A profiling aid (NVTX range, profiler API) could not be applied."""


def measured_window(settings: Any, result_id: str, clock: str) -> contextlib.AbstractContextManager[None] | None:
    """The context around one measured window of work timed by ``clock``
    (``core.workload.clock_of``), or None when neither ``settings.nvtx`` nor
    (for device-timed work) ``settings.profiler_api`` is on."""
    api = bool(getattr(settings, "profiler_api", False)) and clock != "host"
    ranges = bool(getattr(settings, "nvtx", False))
    if not (api or ranges):
        return None
    return _window(result_id, nvtx_on=ranges, api=api)


@contextlib.contextmanager
def _window(result_id: str, *, nvtx_on: bool, api: bool) -> Iterator[None]:
    from pytest_trtperf.gpu import nvtx

    started = _profiler("start") if api else False
    pushed = False
    if nvtx_on:
        why = nvtx.unavailable_reason()
        if why is not None:
            # One text for every window, so pytest's summary lists it once.
            _warn(f"--trt-nvtx: measured windows carry no NVTX range: {why}")
        else:
            pushed = nvtx.push(result_id)
    try:
        yield
    finally:
        if pushed:
            nvtx.pop()
        if started:
            _profiler("stop")


def side_range_name(result_id: str, side: str) -> str:
    """The NVTX range of one side's blocks in an interleaved run."""
    return f"{result_id} [{side}]"


def block_ranges(settings: Any, result_id: str) -> Callable[[str], contextlib.AbstractContextManager[Any]] | None:
    """For an interleaved run under ``--trt-nvtx``: ``block(side)`` gives the
    push/pop range ``<id> [a]`` or ``<id> [b]`` to put around one measured
    block; None when ``settings.nvtx`` is off. Without the nvtx package the
    ranges are no-ops (:func:`measured_window` around the run says so).

    One range per block, not per iteration: a block is ~50 ms of one side, so
    a push and a pop per block cost nothing next to it, and they run between
    ``Workload.run`` calls, outside the clocks each block reads; a range per
    iteration would put two Python calls into every timed iteration (more than
    a CUDA-graph replay of a small engine takes) and move host-timed numbers.
    """
    if not bool(getattr(settings, "nvtx", False)):
        return None
    from pytest_trtperf.gpu import nvtx

    return lambda side: nvtx.nvtx_range(side_range_name(result_id, side))


def _profiler(which: str) -> bool:
    """Call ``cudaProfilerStart``/``Stop``; True when it succeeded."""
    from pytest_trtperf.gpu import cuda

    try:
        (cuda.profiler_start if which == "start" else cuda.profiler_stop)()
    except (cuda.CudaError, BackendUnavailable) as exc:
        _warn(f"--trt-profiler-api: cudaProfiler{which.title()} failed ({exc}); measured windows are not "
              f"bracketed for nsys --capture-range=cudaProfilerApi")
        return False
    return True


def _warn(text: str) -> None:
    warnings.warn(ProfilingWarning(text), stacklevel=4)


def header_line(settings: Any) -> str | None:
    """One line for pytest's report header saying what measured windows carry
    (and, when the nvtx package is missing, that ranges are off)."""
    parts = []
    if getattr(settings, "profiler_api", False):
        parts.append("cudaProfilerStart/Stop around GPU windows")
    if getattr(settings, "nvtx", False):
        from pytest_trtperf.gpu import nvtx

        why = nvtx.unavailable_reason()
        parts.append(f"NVTX ranges in domain {nvtx.DOMAIN!r} (nvtx {nvtx.version()})" if why is None
                     else f"no NVTX ranges: {why}")
    return f"trtperf measured windows: {'; '.join(parts)}" if parts else None
