"""The contract between the measurement core and anything that can be timed.

The core (``measure.py``) knows nothing about TensorRT, CUDA or torch: it asks a
:class:`Workload` to run ``n`` iterations and gets a :class:`Batch` of timings
back. Running in batches lets GPU workloads record events for many iterations
and synchronise once, so the Python loop stays out of the measured time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from collections.abc import Mapping, Sequence

from pytest_trtperf.core.errors import UsageError

if TYPE_CHECKING:  # numpy is loaded by whoever makes a Batch, not by loading the plugin
    import numpy as np

#: Names of optional per-iteration series a workload may report next to the
#: primary latency series. All values are seconds.
EXTRA_SERIES = ("gpu_compute", "enqueue", "h2d", "d2h")


@dataclass(frozen=True)
class Batch:
    """Timings of ``n`` consecutive iterations.

    ``latency_s`` is the primary series the gate works on: host wall time for a
    host workload, GPU compute time (CUDA events) for a GPU workload in latency
    mode, the interval between completions in throughput mode.
    ``wall_s`` is the host wall time of the whole batch, from which throughput
    is computed as ``iterations * inferences_per_iteration / wall_s``.
    """

    latency_s: np.ndarray
    wall_s: float
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return int(self.latency_s.shape[0])


#: Which clock times a workload: ``host`` (the host's wall clock: the noise
#: prior of host code, the host watch and its busy-host wait, the host
#: fingerprint) or ``device`` (CUDA events: the GPU's prior, NVML, the GPU
#: fingerprint and lock). Everything that treats host and GPU work apart asks
#: :func:`clock_of`, never the workload's ``kind``.
Clock = Literal["host", "device"]
CLOCKS: tuple[Clock, ...] = ("host", "device")
#: The clock of each workload kind that does not say its own (``clock``
#: attribute): the only place a kind's name decides a clock. Kinds not listed
#: (``cuda``, ``torch``, ``tensorrt`` and any other) are device-timed, as
#: before clocks were declared.
KIND_CLOCKS: Mapping[str, Clock] = {"host": "host"}


def kind_clock(kind: str) -> Clock:
    """The clock of a workload kind that does not declare one."""
    return KIND_CLOCKS.get(kind, "device")


def clock_of(thing: Any) -> Clock:
    """The clock that times ``thing``: a workload, execution slots, a result
    or a device state. Its own ``clock`` attribute when it has one (a
    :class:`ClockedWorkload`, ``Result.clock``), else the clock of its
    ``kind`` (:func:`kind_clock`): user workloads written before clocks
    were declared keep the behaviour they had."""
    clock = getattr(thing, "clock", None)
    if clock is None:
        return kind_clock(str(getattr(thing, "kind", "")))
    if clock not in CLOCKS:
        raise UsageError(f"{type(thing).__name__}.clock is {clock!r}; set it to \"host\" (timed by the host's "
                         f"clock) or \"device\" (timed on the GPU), or leave it out")
    return clock


@runtime_checkable
class Workload(Protocol):
    """Something the core can time. Implementations live in ``workloads/``."""

    #: "host", "cuda", "torch" or "tensorrt": part of the baseline fingerprint.
    #: Which clock times it is its optional ``clock`` (:class:`ClockedWorkload`;
    #: without one, :func:`kind_clock` of the kind).
    kind: str
    #: Inferences (samples of a batch) per iteration; throughput counts these.
    inferences_per_iteration: int

    def setup(self) -> None:
        """Allocate, capture graphs, build: everything outside the timed loop."""

    def run(self, iterations: int) -> Batch:
        """Run ``iterations`` iterations and return their timings."""
        ...

    def teardown(self) -> None:
        """Release what :meth:`setup` took. Called even when ``run`` raised."""

    def identity(self) -> Mapping[str, Any]:
        """JSON-able description that changes whenever the timed work changes.

        Hashed into the result's ``config_hash``; a baseline taken with another
        configuration is reported as incomparable.
        """
        ...

    def notes(self) -> tuple[str, ...]:
        """Things the user should know about this run (e.g. graph fallback)."""
        ...


@runtime_checkable
class ClockedWorkload(Workload, Protocol):
    """A workload that says which clock times it (every workload of the
    package does). Optional, so that a user's ``Workload`` without the
    attribute is still one: :func:`clock_of` gives it its kind's clock."""

    clock: Clock


@runtime_checkable
class ProfiledWorkload(Workload, Protocol):
    """A workload that also reports what an engine knows about itself
    (TensorRT): per-layer times and the device memory it needs."""

    #: Device memory the engine's execution context needs, in bytes, or None.
    device_memory_bytes: int | None

    def layers(self) -> Sequence[Mapping[str, Any]]:
        """Per-layer profile ({"name", "ms", ...}), empty unless profiling was asked for."""
        ...


@runtime_checkable
class ExportingWorkload(Workload, Protocol):
    """A workload with files for ``--trt-export-dir`` beyond the samples
    (TensorRT): what ``trtexec --exportLayerInfo`` / ``--exportProfile`` write."""

    def layer_info(self) -> Any:
        """The engine inspector's JSON, or None when it was not kept."""
        ...

    def layer_profile(self) -> Sequence[Mapping[str, Any]]:
        """The per-layer profile in trtexec's layout, empty without profiling."""
        ...


class KeepsLastValue:
    """Base of the callables that keep what they returned on their last call
    (``workloads.select.LastCall``): a GPU workload whose callable is one can
    give ``Result.return_value``; any other callable's ``value`` is not ours."""

    value: Any = None


@runtime_checkable
class ValueKeepingWorkload(Workload, Protocol):
    """A workload that knows what the measured callable returned on its last
    call (``trt_bench.measure(...).return_value``): host workloads keep it in
    the timed loop, GPU workloads through a :class:`KeepsLastValue` callable."""

    @property
    def last_value(self) -> Any:
        """The last return value (None when nothing was kept)."""
        ...


@runtime_checkable
class ChoosingWorkload(Workload, Protocol):
    """A workload that decides at setup how to time (a torch or stream
    callable the harness captured: graph replay or eager call) and keeps the baseline's decision when the evidence
    is near the threshold, so re-runs of unchanged code do not flip."""

    def use_baseline_choice(self, timed_as: str | None) -> None:
        """The baseline's ``timed_as`` (or None without a baseline); call before ``setup()``."""


@runtime_checkable
class StateMonitor(Protocol):
    """Watches the device during a measured window (NVML on GPUs)."""

    def start(self) -> None: ...

    def stop(self) -> Any:
        """Stop watching and return a ``results.DeviceState``."""
        ...
