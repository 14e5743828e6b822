"""A TensorRT engine as a Workload (kind ``"tensorrt"``).

Timing is the GPU core's :class:`~pytest_trtperf.workloads.cuda.CudaWorkload`
unchanged (events, graphs, enqueue-ahead, streams, transfers, sync modes); this
module only prepares what ``execute_async_v3`` needs, the way trtexec does: one
execution context per stream (a context must not run on two streams at once)
with layer-names-only NVTX markers, the selected optimization profile, input
shapes (shape-tensor values in host memory), device buffers filled with the
chosen inputs, an output allocator for data-dependent output shapes, and one
plain warm-up enqueue per context *before* any CUDA graph capture (TensorRT
does lazy work on its first enqueue). A graph is only captured when the engine
allows it (no data-dependent outputs; TensorRT-RTX: built with
``REQUIRE_USER_ALLOCATION`` and ``is_stream_capturable``); otherwise the plain
enqueue is timed with a note saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from pytest_trtperf.gpu import cuda
from pytest_trtperf.core.errors import TrtPerfError, UsageError
from pytest_trtperf.trt.backend import last_line, no_gc
from pytest_trtperf.trt.engine import EngineHandle, LiveEngine, deserialize, timed_nvtx_verbosity
from pytest_trtperf.trt.inputs import load_inputs, resolve_shapes, user_shapes
from pytest_trtperf.trt.profiler import make_profiler, summarize, trtexec_profile
from pytest_trtperf.trt.tensors import TensorInfo, dims, numpy_dtype
from pytest_trtperf.core.workload import Batch, Clock

if TYPE_CHECKING:
    import tensorrt as trt

    from pytest_trtperf.trt.types import RtxExecutionContext, RtxRuntimeConfig, TrtModule

class EnqueueFailed(TrtPerfError):
    """``execute_async_v3`` returned False."""


def _make_output_allocator(trt: TrtModule) -> Any:
    """An ``IOutputAllocator`` that grows one device buffer per output and
    remembers the shape TensorRT reports (data-dependent output shapes)."""

    class OutputAllocator(trt.IOutputAllocator):
        def __init__(self) -> None:
            trt.IOutputAllocator.__init__(self)
            self.buffers: dict[str, cuda.DeviceBuffer] = {}
            self.shapes: dict[str, tuple[int, ...]] = {}

        def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
            return self.reallocate_output_async(tensor_name, memory, size, alignment, 0)

        def reallocate_output_async(self, tensor_name: str, memory: int, size: int, alignment: int, stream: int) -> int:
            buf = self.buffers.get(tensor_name)
            if buf is None or buf.nbytes < size:
                if buf is not None:
                    buf.close()
                buf = cuda.DeviceBuffer(max(int(size), 1))
                self.buffers[tensor_name] = buf
            return buf.ptr

        def notify_shape(self, tensor_name: str, shape: Any) -> None:
            self.shapes[tensor_name] = tuple(shape)

        def close(self) -> None:
            for b in self.buffers.values():
                b.close()
            self.buffers.clear()

    return OutputAllocator()


@dataclass
class _Slot:
    """One execution context bound to one stream, with its own buffers."""

    stream: cuda.Stream
    context: trt.IExecutionContext
    buffers: dict[str, cuda.DeviceBuffer] = field(default_factory=dict)
    allocator: Any = None
    pinned: dict[str, cuda.PinnedBuffer] = field(default_factory=dict)
    #: Host memory of shape-tensor inputs (TensorRT reads it at enqueue).
    host_values: dict[str, cuda.PinnedBuffer] = field(default_factory=dict)


class TensorRTWorkload:
    """Runs an :class:`EngineHandle` at fixed shapes; see module docstring."""

    kind = "tensorrt"
    clock: Clock = "device"

    def __init__(
        self,
        engine: EngineHandle,
        shapes: Mapping[str, tuple[int, ...]] | None = None,
        inputs: Mapping[str, Any] | str | None = None,
        *,
        seed: int = 0,
        profile_layers: bool = False,
        profile_iterations: int = 10,
        keep_layer_info: bool = False,
        mode: str = "latency",
        streams: int = 1,
        cuda_graph: bool = True,
        blocking_sync: bool = False,
        transfers: bool = False,
        inferences_per_iteration: int | None = None,
        **cuda_opts: Any,
    ) -> None:
        self.engine = engine
        self._requested = dict(shapes or {})
        self._user_inputs = inputs
        self.seed = int(seed)
        self.profile_layers = bool(profile_layers)
        self.profile_iterations = int(profile_iterations)
        self.keep_layer_info = bool(keep_layer_info)
        self.mode = mode
        self.n_streams = int(streams)
        self.cuda_graph = bool(cuda_graph)
        self.blocking_sync = bool(blocking_sync)
        self.with_transfers = bool(transfers)
        self._ipi = inferences_per_iteration
        self._cuda_opts = cuda_opts
        self.inferences_per_iteration = int(inferences_per_iteration or 1)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.live: LiveEngine | None = None
        self._slots: dict[int, _Slot] = {}
        self._host: dict[str, np.ndarray] = {}
        self._inner: Any = None
        self._notes: list[str] = list(engine.notes)
        self._layers: tuple[Mapping[str, Any], ...] = ()
        self._layer_info: Any = None
        self._profile_export: list[dict[str, Any]] = []
        self._ran = False
        self._timed_nvtx: Any = None
        #: Set when a context was created with EAGER kernel specialization (RTX, dynamic shapes).
        self._eager_kernels = False
        self._data_dependent: list[str] = []
        self._shape_tensors: set[str] = set()
        #: Tracking-allocator calls made while run() was enqueueing (the timed
        #: loop): 0 for engines with static context memory.
        self._run_allocations = 0
        # Shapes can be checked now when the I/O is known (ONNX builds): a bad
        # shape fails before any GPU work, with the engine's allowed range.
        if engine.io:
            self.shapes = self._resolve(engine.io)
            self._set_ipi()

    # ------------------------------------------------------------ contract
    def identity(self) -> Mapping[str, Any]:
        ident: dict[str, Any] = {
            "kind": self.kind,
            "engine": dict(self.engine.identity),
            "shapes": {k: list(v) for k, v in sorted(self.shapes.items())},
            "inputs": self._inputs_digest(),
            "mode": self.mode,
            "streams": self.n_streams,
            "cuda_graph": self.cuda_graph,
            "sync": "blocking" if self.blocking_sync else "spin",
            "transfers": self.with_transfers,
            "profile": self.engine.profile,
        }
        # What the timed contexts were set to, once set up: trtexec's
        # layer-names-only NVTX, or none for an engine built with none; RTX
        # kernel specialization only where it was set (dynamic shapes).
        if self._timed_nvtx is not None:
            ident["nvtx_verbosity"] = str(self._timed_nvtx.name).lower()
        if self._eager_kernels:
            ident["rtx_kernel_specialization"] = "eager"
        return ident

    def notes(self) -> tuple[str, ...]:
        inner = tuple(self._inner.notes()) if self._inner is not None else ()
        alloc = ()
        if self._run_allocations:
            alloc = (f"TensorRT allocated device memory {self._run_allocations} time(s) during timed enqueues, "
                     f"through the tracking allocator (cudaMalloc from a Python callback): the timing includes it",)
        return tuple(dict.fromkeys((*self._notes, *inner, *alloc)))

    def layers(self) -> tuple[Mapping[str, Any], ...]:
        """Per-layer times from the profiling pass (empty unless ``profile_layers``)."""
        return self._layers

    def layer_info(self) -> Any:
        """The engine inspector's JSON, as ``trtexec --exportLayerInfo``
        writes it (kept at setup when ``keep_layer_info``; else None)."""
        return self._layer_info

    def layer_profile(self) -> list[dict[str, Any]]:
        """The profiling pass in ``trtexec --exportProfile``'s layout (empty
        unless ``profile_layers``)."""
        return list(self._profile_export)

    @property
    def device_memory_bytes(self) -> int | None:
        return self.live.device_memory_bytes if self.live is not None else None

    def memory_figures(self) -> Mapping[str, int]:
        """Read after measuring (nothing runs): ``device_peak_bytes`` /
        ``device_total_bytes`` from the runtime's tracking allocator over
        deserialization, context creation and every enqueue so far; the
        engine's own figures (context memory for the profile, plan, weights);
        the builder's (this build or the engine cache's record of it)."""
        if self.live is None:
            return {}
        from pytest_trtperf.trt.allocator import figures

        return {**dict(self.engine.build_memory), **self.live.memory_figures(),
                **figures(self.live.allocator_stats(), "device")}

    def setup(self) -> None:
        with no_gc():
            self._setup()

    def _setup(self) -> None:
        from pytest_trtperf.workloads.cuda import CudaWorkload

        cuda.require_gpu()
        try:
            self.live = deserialize(self.engine)
            for note in self.live.notes:
                self._add_note(note)
            self.shapes = self._resolve(self.live.io)
            self._host = load_inputs(self._inputs(), self.shapes, self._user_inputs, self.seed, self.engine.where)
            self._set_ipi()
            self._timed_nvtx = timed_nvtx_verbosity(self.engine.backend.module, self.live.profiling_verbosity)
            if self.keep_layer_info:
                self._layer_info = self.live.layer_info()
            profiles = int(self.live.engine.num_optimization_profiles)
            if self.engine.profile >= max(profiles, 1):
                raise UsageError(f"{self.engine.where}: profile={self.engine.profile} but engine {self.engine.source} "
                                 f"has {profiles} optimization profile(s)")
            for _ in range(self.n_streams):
                slot = self._make_slot()
                self._slots[slot.stream.handle] = slot
                self._enqueue(slot.stream.handle)  # TensorRT's lazy init, outside capture
                slot.stream.synchronize()
            mem = self.device_memory_bytes
            if mem is not None:
                self._notes.append(f"engine device memory: {mem / (1 << 20):.1f} MiB per context")
            graph = self.cuda_graph
            if graph:
                why = self._capture_refusal()
                if why is not None:
                    graph = False
                    self._add_note(f"CUDA graph capture refused: {why}; timing the plain enqueue")
            transfers = (self._h2d, self._d2h) if self.with_transfers else None
            self._inner = CudaWorkload(
                self._enqueue,
                mode=self.mode,
                streams=self.n_streams,
                cuda_graph=graph,
                blocking_sync=self.blocking_sync,
                transfers=transfers,
                inferences_per_iteration=self.inferences_per_iteration,
                identity=self.identity(),
                stream=list(self._slots),
                check_capture=False,  # TensorRT's own capture rules (_capture_refusal), as trtexec
                **self._cuda_opts,
            )
            self._inner.setup()
        except BaseException:
            self.teardown()
            raise

    def run(self, iterations: int) -> Batch:
        if self._inner is None:
            raise UsageError("TensorRTWorkload.run() called before setup()")
        before = self._allocations()
        with no_gc():  # TensorRT may call our output allocator during enqueue
            batch = self._inner.run(iterations)
        self._ran = True
        self._run_allocations += self._allocations() - before
        return batch

    def slot_calls(self) -> list[Callable[[], None]]:
        """One blocking call per execution context, for open-loop serving
        (``load.slots.EngineSlots``): enqueue on that context's own stream
        (``execute_async_v3``) and wait for the stream. Each call must only be
        made from one thread at a time: a context is not thread-safe."""
        if self._inner is None:
            raise UsageError("TensorRTWorkload.slot_calls() called before setup()")

        def on(slot: _Slot) -> Callable[[], None]:
            def call() -> None:
                with no_gc():  # TensorRT may call our output allocator during enqueue
                    if self.with_transfers:
                        self._h2d(slot.stream.handle)
                    self._enqueue(slot.stream.handle)
                    if self.with_transfers:
                        self._d2h(slot.stream.handle)
                slot.stream.synchronize()

            return call

        return [on(slot) for slot in self._slots.values()]

    def _allocations(self) -> int:
        stats = self.live.allocator_stats() if self.live is not None else None
        return stats.allocations if stats is not None else 0

    def teardown(self) -> None:
        with no_gc():  # destroying contexts and the engine calls our allocator back
            self._teardown()

    def _teardown(self) -> None:
        try:
            if self.profile_layers and self._ran and self._slots:
                self._profile_pass()
        finally:
            if self._inner is not None:
                self._inner.teardown()
                self._inner = None
            for slot in self._slots.values():
                slot.stream.synchronize()
                for b in (*slot.buffers.values(), *slot.pinned.values(), *slot.host_values.values()):
                    b.close()
                if slot.allocator is not None:
                    slot.allocator.close()
                slot.stream.close()
            self._slots = {}
            self.live = None

    # -------------------------------------------------------------- helpers
    def _inputs(self) -> tuple[TensorInfo, ...]:
        assert self.live is not None
        return tuple(t for t in self.live.io if t.is_input)

    def _resolve(self, io: tuple[TensorInfo, ...]) -> dict[str, tuple[int, ...]]:
        ins = tuple(t for t in io if t.is_input)
        default = {**dict(self.engine.run_shapes), **user_shapes(self._user_inputs, self.engine.where)}
        self._shape_tensors = {t.name for t in ins if t.shape_tensor}
        return resolve_shapes(ins, self._requested, default, self.engine.where, self.engine.profile)

    def _set_ipi(self) -> None:
        """Inferences per iteration: the batch (first dim of the first input
        that is not a shape tensor) unless given."""
        if self._ipi is None:
            first = next((s for n, s in self.shapes.items() if n not in self._shape_tensors), ())
            self.inferences_per_iteration = int(first[0]) if first else 1

    def _inputs_digest(self) -> str:
        """Random inputs are identified by their seed, user data by its bytes."""
        user = self._user_inputs
        if user is None:
            return f"random:{self.seed}"
        h = hashlib.sha256()
        items = [("", user)] if isinstance(user, (str, bytes)) else sorted(user.items(), key=lambda kv: kv[0])
        for name, value in items:
            h.update(name.encode())
            if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
                with open(value, "rb") as f:
                    h.update(f.read())
            else:
                h.update(np.ascontiguousarray(np.asarray(value)).tobytes())
        return "data:" + h.hexdigest()[:16]

    def _create_context(self) -> trt.IExecutionContext:
        """An execution context; on TensorRT-RTX with dynamic shapes, one that
        compiles shape-specialized kernels eagerly, so the first (warm-up)
        enqueue builds them and no fallback kernel is timed or captured."""
        assert self.live is not None
        engine = self.live.engine
        trt = self.engine.backend.module
        strategies = getattr(trt, "DynamicShapesKernelSpecializationStrategy", None)
        dynamic = any(t.dynamic for t in self.live.io if t.is_input)
        if self.engine.backend.is_rtx and strategies is not None and dynamic:
            config = engine.create_runtime_config()
            cast("RtxRuntimeConfig", config).dynamic_shapes_kernel_specialization_strategy = strategies.EAGER
            context = engine.create_execution_context(config)
            self._eager_kernels = True
        else:
            context = engine.create_execution_context()
        if context is None:
            raise UsageError(f"{self.engine.where}: could not create an execution context for {self.engine.source} "
                             f"(out of GPU memory?) {last_line(self.live.logger.errors())}".rstrip())
        return context

    def _make_slot(self) -> _Slot:
        """An execution context on its own stream, in named steps: the selected
        optimization profile, input shapes, input buffers (filled), output buffers."""
        context = self._create_context()
        slot = _Slot(stream=cuda.Stream(non_blocking=True), context=context)
        context.nvtx_verbosity = self._timed_nvtx
        self._select_profile(slot)
        self._set_input_shapes(slot)
        self._bind_inputs(slot)
        self._bind_outputs(slot)
        slot.stream.synchronize()
        return slot

    def _select_profile(self, slot: _Slot) -> None:
        """The spec's optimization profile on ``slot``'s context (nothing to do
        for profile 0 of a one-profile engine)."""
        assert self.live is not None
        index = self.engine.profile
        if index == 0 and int(self.live.engine.num_optimization_profiles) <= 1:
            return
        log = self.live.logger
        mark = log.mark()
        try:
            ok = bool(slot.context.set_optimization_profile_async(index, slot.stream.handle))
        except RuntimeError:  # TensorRT 10's binding raises instead of returning False
            ok = False
        slot.stream.synchronize()
        if not ok:
            raise UsageError(f"{self.engine.where}: TensorRT refused optimization profile {index} of "
                             f"{self.engine.source} ({last_line(log.errors(since=mark)) or 'no reason given'})")

    def _set_input_shapes(self, slot: _Slot) -> None:
        """The run shapes of the execution inputs (shape tensors get their values in :meth:`_bind_inputs`)."""
        assert self.live is not None
        context = slot.context
        index = self.engine.profile
        info = {t.name: t for t in self.live.io}
        for name, shape in self.shapes.items():
            if info[name].shape_tensor:
                continue  # its values go in host memory below
            if not context.set_input_shape(name, shape):
                t = info[name]
                lo, _, hi = t.profiles[index] if index < len(t.profiles) else (t.shape, t.shape, t.shape)
                raise UsageError(
                    f"{self.engine.where}: input {name!r} shape {shape} rejected by TensorRT; "
                    f"allowed min {lo} .. max {hi}"
                )

    def _bind_inputs(self, slot: _Slot) -> None:
        """A device buffer per input, filled from pinned host memory on the slot's
        stream; a shape tensor's values in pinned host memory."""
        assert self.live is not None
        info = {t.name: t for t in self.live.io}
        for name, arr in self._host.items():
            if info[name].shape_tensor:
                host = cuda.PinnedBuffer(max(arr.nbytes, 1))
                host.array()[: arr.nbytes] = np.frombuffer(arr.tobytes(), dtype=np.uint8)
                slot.host_values[name] = host
                self._set_address(slot.context, name, host.ptr)
                continue
            buf = cuda.DeviceBuffer(max(arr.nbytes, 1))
            slot.buffers[name] = buf
            pinned = cuda.PinnedBuffer(max(arr.nbytes, 1))
            pinned.array()[: arr.nbytes] = np.frombuffer(arr.tobytes(), dtype=np.uint8)
            slot.pinned[name] = pinned
            cuda.memcpy_h2d_async(buf.ptr, pinned.ptr, arr.nbytes, slot.stream)
            self._set_address(slot.context, name, buf.ptr)

    def _bind_outputs(self, slot: _Slot) -> None:
        """A device buffer (and a pinned copy) per output of the shape the inputs
        give; host memory for a shape-tensor output; an output allocator for a
        data-dependent one."""
        assert self.live is not None
        trt = self.engine.backend.module
        context = slot.context
        for t in self.live.io:
            if t.is_input:
                continue
            shape = dims(context.get_tensor_shape(t.name))
            if any(d < 0 for d in shape):  # data-dependent: TensorRT asks for memory
                self._allocate_on_demand(slot, t.name)
                continue
            nbytes = int(np.prod(shape)) * numpy_dtype(t.dtype).itemsize
            if self.live.engine.get_tensor_location(t.name) == trt.TensorLocation.HOST:
                host = cuda.PinnedBuffer(max(nbytes, 1))  # a shape-tensor output lives on the host
                slot.host_values[t.name] = host
                self._set_address(context, t.name, host.ptr)
                continue
            buf = cuda.DeviceBuffer(max(nbytes, 1))
            slot.buffers[t.name] = buf
            slot.pinned[t.name] = cuda.PinnedBuffer(max(nbytes, 1))
            self._set_address(context, t.name, buf.ptr)

    def _allocate_on_demand(self, slot: _Slot, name: str) -> None:
        """An output allocator for the data-dependent output ``name`` (one per
        slot), noted, so the engine is not captured into a CUDA graph."""
        assert self.live is not None
        if slot.allocator is None:
            slot.allocator = _make_output_allocator(self.engine.backend.module)
        if not slot.context.set_output_allocator(name, slot.allocator):
            raise UsageError(f"{self.engine.where}: TensorRT refused an output allocator for {name!r} "
                             f"({last_line(self.live.logger.errors()) or 'no reason given'})")
        if name not in self._data_dependent:
            self._data_dependent.append(name)
        self._add_note(f"output {name!r} has a data-dependent shape; using an output allocator")

    def _set_address(self, context: trt.IExecutionContext, name: str, ptr: int) -> None:
        """``set_tensor_address``, whose False (unknown name, null or misaligned
        pointer) would otherwise surface later as a failed enqueue."""
        assert self.live is not None
        mark = self.live.logger.mark()
        if not context.set_tensor_address(name, ptr):
            raise UsageError(f"{self.engine.where}: TensorRT refused the address of tensor {name!r} of "
                             f"{self.engine.source} ({last_line(self.live.logger.errors(since=mark)) or 'no reason given'})")

    def _capture_refusal(self) -> str | None:
        """Why the engine must not be captured into a CUDA graph, or None."""
        if self._data_dependent:
            return (f"output(s) {', '.join(self._data_dependent)} have data-dependent shapes, allocated during "
                    "enqueue (not stream-capturable)")
        if self.engine.capturable is False:
            return "the TensorRT-RTX engine was built without REQUIRE_USER_ALLOCATION (see the build note)"
        for stream, slot in self._slots.items():
            check = getattr(slot.context, "is_stream_capturable", None)
            if check is not None and not cast("RtxExecutionContext", slot.context).is_stream_capturable(stream):
                return f"{self.engine.backend.label} says the execution context is not stream-capturable"
        return None

    def _enqueue(self, stream: int) -> None:
        slot = self._slots.get(stream)
        if slot is None:
            raise EnqueueFailed(f"{self.engine.where}: no execution context for stream 0x{stream:x}")
        if not slot.context.execute_async_v3(stream):
            errors = self.live.logger.errors() if self.live is not None else []
            raise EnqueueFailed(
                f"{self.engine.where}: TensorRT execute_async_v3 failed for {self.engine.source}"
                + (f": {errors[-1]}" if errors else "")
            )

    def _copies(self, stream: int, inputs: bool) -> list[tuple[int, int, int]]:
        slot = self._slots[stream]
        out = []
        for name, pinned in slot.pinned.items():  # device tensors only (shape-tensor values stay on the host)
            is_input = name in self._host
            if is_input != inputs or name not in slot.buffers:
                continue
            out.append((slot.buffers[name].ptr, pinned.ptr, slot.buffers[name].nbytes))
        return out

    def _h2d(self, stream: int) -> None:
        for dev, host, n in self._copies(stream, inputs=True):
            cuda.memcpy_h2d_async(dev, host, n, stream)

    def _d2h(self, stream: int) -> None:
        for dev, host, n in self._copies(stream, inputs=False):
            cuda.memcpy_d2h_async(host, dev, n, stream)

    def output(self, name: str) -> np.ndarray:
        """Copy one output of the first context back to the host (for checks)."""
        assert self.live is not None, "output() needs setup()"
        slot = next(iter(self._slots.values()))
        t = next(t for t in self.live.io if t.name == name)
        shape = dims(slot.context.get_tensor_shape(name))
        if slot.allocator is not None and name in slot.allocator.shapes:
            shape = slot.allocator.shapes[name]
        dtype = numpy_dtype(t.dtype)
        n = int(np.prod(shape)) * dtype.itemsize
        if name in slot.host_values:  # shape-tensor output: TensorRT wrote host memory
            slot.stream.synchronize()
            return slot.host_values[name].array()[:n].view(dtype).reshape(shape).copy()
        if name in slot.buffers:
            ptr = slot.buffers[name].ptr
        else:
            assert slot.allocator is not None, f"no memory for output {name!r}"
            ptr = slot.allocator.buffers[name].ptr
        host = cuda.PinnedBuffer(max(n, 1))
        try:
            cuda.memcpy_d2h_async(host.ptr, ptr, n, slot.stream)
            slot.stream.synchronize()
            return host.array()[:n].view(dtype).reshape(shape).copy()
        finally:
            host.close()

    def _profile_pass(self) -> None:
        """Per-layer times on the first context, plain enqueues, after
        measuring, with the engine's own (detailed) NVTX verbosity restored."""
        assert self.live is not None
        slot = next(iter(self._slots.values()))
        profiler = make_profiler(self.engine.backend.module)
        context = slot.context
        try:
            context.nvtx_verbosity = self.live.profiling_verbosity
            context.profiler = profiler
            for _ in range(self.profile_iterations):
                self._enqueue(slot.stream.handle)
                slot.stream.synchronize()
                if not context.enqueue_emits_profile:
                    context.report_to_profiler()
            self._layers = summarize(profiler.order, profiler.times, self._layer_info or self.live.layer_info())
            self._profile_export = trtexec_profile(profiler.order, profiler.times)
        except Exception as exc:  # noqa: BLE001 - a profile is extra; the measurement stands
            self._add_note(f"per-layer profiling failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                # The stubs type ``profiler`` as IProfiler, but the binding
                # takes None to detach it (documented stub defect).
                context.profiler = None  # pyright: ignore[reportAttributeAccessIssue]  # None detaches; the stubs type it IProfiler
                context.nvtx_verbosity = self._timed_nvtx
            except Exception:  # noqa: BLE001
                pass

    def _add_note(self, note: str) -> None:
        if note not in self._notes:
            self._notes.append(note)

    def __repr__(self) -> str:
        return f"TensorRTWorkload({self.engine.source!r}, shapes={self.shapes}, mode={self.mode!r})"


def make_workload(
    engine: EngineHandle,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    inputs: Mapping[str, Any] | str | None = None,
    *,
    options: Any = None,
    seed: int | None = None,
    profile_layers: bool = False,
    keep_layer_info: bool = False,
    **cuda_opts: Any,
) -> Any:
    """A Workload running ``engine`` at ``shapes`` (default: the spec's run shapes)
    with ``inputs`` (default: the spec's ``inputs=``, else seeded random data).

    ``options`` is the lead's ``MeasureOptions`` (mode, streams, cuda_graph,
    blocking_sync, include_transfers are read from it); ``cuda_opts`` go
    unchanged to the GPU core's ``CudaWorkload`` and win over ``options``.
    ``profile_layers`` (``--trt-profile-layers``) adds a per-layer pass after
    measuring, read with ``workload.layers()``. ``keep_layer_info``
    (``--trt-export-dir``) keeps the engine inspector's JSON for
    ``workload.layer_info()``.
    """
    kw: dict[str, Any] = {}
    if options is not None:
        for ours, theirs in (("mode", "mode"), ("streams", "streams"), ("cuda_graph", "cuda_graph"),
                             ("blocking_sync", "blocking_sync"), ("transfers", "include_transfers")):
            if hasattr(options, theirs):
                kw[ours] = getattr(options, theirs)
    kw.update(cuda_opts)
    return TensorRTWorkload(
        engine,
        shapes=shapes,
        inputs=inputs if inputs is not None else engine.run_inputs,
        seed=engine.seed if seed is None else seed,
        profile_layers=profile_layers,
        keep_layer_info=keep_layer_info,
        **kw,
    )
