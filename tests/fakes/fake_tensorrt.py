"""FakeTensorRT: the execution side of the ``tensorrt`` module, for tests.

Used only where nothing real is reachable: *executing* an engine on a GPU
(TensorRT-RTX refuses the H100 in our GPU machine, full TensorRT is not
installable here). Building stays real (TensorRT-RTX in the venv).

Follows the real API: same class/method names (``Runtime.deserialize_cuda_engine``,
``ICudaEngine.get_tensor_*``, ``IExecutionContext.set_input_shape`` /
``set_tensor_address`` / ``execute_async_v3`` / ``set_output_allocator``,
``IProfiler.report_layer_time``, ``EngineInspector``), same conventions
(``set_input_shape`` returns False for an out-of-profile shape,
``execute_async_v3`` returns False when a shape or address is missing, errors go
to the logger, ``deserialize_cuda_engine`` returns None on a foreign plan).

A fake plan is ``b"ftrt"`` + JSON made by :func:`make_plan`. On a GPU,
``execute_async_v3`` launches one real kernel per layer on the given stream
(compiled with NVRTC through cuda.bindings, or cupy as a fallback); each kernel
copies input bytes to the first output and spins for the layer's duration on
the GPU's global timer, so graph capture, events and throughput are real CUDA.

Documented deviation: deserialization works without a GPU (real TensorRT needs
one), so CPU tests can cover introspection and version errors.
"""

from __future__ import annotations

import enum
import json
import threading
from typing import Any, Sequence

__version__ = "10.9.0"

MAGIC = b"ftrt"


# --------------------------------------------------------------------- enums
class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


_ITEMSIZE = {"FLOAT": 4, "HALF": 2, "INT8": 1, "INT32": 4, "BOOL": 1, "UINT8": 1, "FP8": 1, "BF16": 2, "INT64": 8}


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class LayerInformationFormat(enum.IntEnum):
    ONELINE = 0
    JSON = 1


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    BF16 = 1
    INT8 = 2
    TF32 = 3
    VERSION_COMPATIBLE = 4
    WEIGHT_STREAMING = 5


class Dims(tuple):
    """``trt.Dims``: iterable, indexable, ``len``."""


# ----------------------------------------------------------------- interfaces
class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self) -> None:
        self.min_severity = ILogger.Severity.WARNING

    def log(self, severity: "ILogger.Severity", msg: str) -> None:  # pragma: no cover - overridden
        pass


class Logger(ILogger):
    def __init__(self, min_severity: "ILogger.Severity" = ILogger.Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity


class IProfiler:
    def __init__(self) -> None:
        pass

    def report_layer_time(self, layer_name: str, ms: float) -> None:  # pragma: no cover - overridden
        pass


class IOutputAllocator:
    def __init__(self) -> None:
        pass


class IProgressMonitor:
    def __init__(self) -> None:
        pass


def _log(logger: Any, msg: str, severity: ILogger.Severity = ILogger.Severity.ERROR) -> None:
    if logger is not None:
        logger.log(severity, msg)


# ---------------------------------------------------------------------- plans
def make_plan(
    io: Sequence[dict[str, Any]],
    layers: Sequence[tuple[str, float]] = (("fake_layer_0", 50.0),),
    version: str | None = None,
    compute_capability: tuple[int, int] | None = None,
    device_memory: int = 1 << 20,
) -> bytes:
    """A fake serialized engine.

    ``io``: dicts with ``name``, ``mode`` ("input"/"output"), ``dtype`` (DataType
    member name), ``shape`` (-1 = dynamic), ``profiles`` (inputs: list of
    [min, opt, max]) and, for outputs, ``data_dependent`` (shape known only after
    execution). ``layers``: (name, microseconds per inference at batch 1).
    """
    body = {
        "version": version or __version__,
        "cc": list(compute_capability) if compute_capability else None,
        "io": list(io),
        "layers": [list(layer) for layer in layers],
        "device_memory": device_memory,
    }
    return MAGIC + json.dumps(body).encode()


class Runtime:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> "ICudaEngine | None":
        data = bytes(serialized_engine)
        if data[:4] != MAGIC:
            _log(self.logger, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                 "magicTagRead == kMAGIC_TAG failed.Magic tag does not match)")
            return None
        try:
            body = json.loads(data[4:])
        except ValueError:
            _log(self.logger, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization (Serialization assertion "
                 "size == expectedSize failed.)")
            return None
        if body["version"] != __version__:
            _log(self.logger, "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file is not "
                 f"compatible with this version of TensorRT, expecting library version {__version__} got "
                 f"{body['version']}, please rebuild.)")
            return None
        if body.get("cc"):
            here = _device_cc()
            if here is not None and tuple(body["cc"]) != here:
                _log(self.logger, "IRuntime::deserializeCudaEngine: Error Code 6: API Usage Error (The engine plan file "
                     f"is generated on an incompatible device, expecting compute {here[0]}.{here[1]} got compute "
                     f"{body['cc'][0]}.{body['cc'][1]}, please rebuild.)")
                return None
        return ICudaEngine(body, self.logger)


# --------------------------------------------------------------------- engine
class ICudaEngine:
    def __init__(self, body: dict[str, Any], logger: Any) -> None:
        self._body = body
        self._io = {t["name"]: t for t in body["io"]}
        self._names = [t["name"] for t in body["io"]]
        self.logger = logger
        self.name = "fake_engine"
        inputs = [t for t in body["io"] if t["mode"] == "input"]
        self.num_optimization_profiles = max([len(t.get("profiles", ())) for t in inputs] + [1])
        self.num_layers = len(body["layers"])

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    @property
    def device_memory_size_v2(self) -> int:
        return int(self._body["device_memory"])

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        t = self._io.get(name)
        if t is None:
            return TensorIOMode.NONE
        return TensorIOMode.INPUT if t["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self._io[name]["dtype"]]

    def get_tensor_shape(self, name: str) -> Dims:
        return Dims(self._io[name]["shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        t = self._io[name]
        profiles = t.get("profiles") or [[t["shape"]] * 3]
        return [Dims(s) for s in profiles[profile_index]]

    def create_execution_context(self) -> "IExecutionContext":
        return IExecutionContext(self)

    def create_engine_inspector(self) -> "EngineInspector":
        return EngineInspector(self)


class EngineInspector:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.execution_context = None

    def get_engine_information(self, format: LayerInformationFormat) -> str:  # noqa: A002 - real name
        layers = [
            {"Name": name, "LayerType": "FakeKernel", "TacticName": "fake_spin", "Duration_us": us}
            for name, us in self.engine._body["layers"]
        ]
        if format == LayerInformationFormat.JSON:
            return json.dumps({"Layers": layers, "Bindings": self.engine._names})
        return "\n".join(f"{layer['Name']}" for layer in layers)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}
        self._allocators: dict[str, Any] = {}
        self.profiler: Any = None
        self.enqueue_emits_profile = True
        self.debug_sync = False
        self.name = "fake_context"

    # shapes
    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        t = self.engine._io.get(name)
        shape = tuple(int(d) for d in shape)
        if t is None or t["mode"] != "input":
            _log(self.engine.logger, f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, condition: engineDims.nbDims >= 0. Tensor {name} is not an input.)")
            return False
        lo, _opt, hi = (t.get("profiles") or [[t["shape"]] * 3])[0]
        if len(shape) != len(t["shape"]) or any(s < a or s > b for s, a, b in zip(shape, lo, hi) if a >= 0):
            _log(self.engine.logger, f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Parameter check failed, condition: satisfyProfile. Set dimension {list(shape)} for tensor {name} does not satisfy any optimization profiles.)")
            return False
        if any(d >= 0 and s != d for s, d in zip(shape, t["shape"])):
            _log(self.engine.logger, f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Static dimension mismatch for tensor {name}.)")
            return False
        self._shapes[name] = shape
        return True

    def _inputs(self) -> list[dict[str, Any]]:
        return [t for t in self.engine._body["io"] if t["mode"] == "input"]

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(t["name"] in self._shapes or min(t["shape"]) >= 0 for t in self._inputs())

    def _batch(self) -> int:
        first = self._inputs()[0]
        return self._shapes.get(first["name"], tuple(first["shape"]))[0]

    def get_tensor_shape(self, name: str) -> Dims:
        t = self.engine._io[name]
        if t["mode"] == "input":
            return Dims(self._shapes.get(name, t["shape"]))
        if not self.all_binding_shapes_specified or t.get("data_dependent"):
            return Dims(t["shape"])
        return Dims(self._batch() if d < 0 else d for d in t["shape"])

    def infer_shapes(self) -> list[str]:
        return [t["name"] for t in self._inputs() if t["name"] not in self._shapes and min(t["shape"]) < 0]

    # memory
    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name not in self.engine._io:
            _log(self.engine.logger, f"IExecutionContext::setTensorAddress: Error Code 3: API Usage Error (Given invalid tensor name: {name})")
            return False
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def set_output_allocator(self, name: str, output_allocator: Any) -> bool:
        self._allocators[name] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> Any:
        return self._allocators.get(name)

    def report_to_profiler(self) -> bool:
        return self.profiler is not None

    # execution
    def execute_async_v3(self, stream_handle: int) -> bool:
        logger = self.engine.logger
        if not self.all_binding_shapes_specified:
            _log(logger, "IExecutionContext::enqueueV3: Error Code 3: API Usage Error (Parameter check failed, condition: mContext.profileObliviousBindings.at(profileObliviousIndex) || getPtrOrNull(mOutputAllocators, profileObliviousIndex). Neither address or allocator is set for input tensor.)")
            return False
        for t in self.engine._body["io"]:
            if self._addresses.get(t["name"]):
                continue
            if t["mode"] == "output" and t["name"] in self._allocators:
                continue
            _log(logger, f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (Parameter check failed, condition: mContext.profileObliviousBindings.at(profileObliviousIndex) || getPtrOrNull(mOutputAllocators, profileObliviousIndex). Neither address or allocator is set for output tensor {t['name']}. Call setOutputTensorAddress, setTensorAddress or setOutputAllocator before enqueue/execute.)")
            return False
        inputs = self._inputs()
        src = self._addresses[inputs[0]["name"]]
        n_in = self._nbytes(inputs[0], self.get_tensor_shape(inputs[0]["name"]))
        outputs = [t for t in self.engine._body["io"] if t["mode"] == "output"]
        dst, n_out = 0, 0
        if outputs:
            out = outputs[0]
            shape = tuple(self._batch() if d < 0 else d for d in out["shape"])
            n_out = self._nbytes(out, shape)
            if out["name"] in self._allocators and not self._addresses.get(out["name"]):
                alloc = self._allocators[out["name"]]
                dst = int(alloc.reallocate_output_async(out["name"], 0, n_out, 256, stream_handle))
                alloc.notify_shape(out["name"], Dims(shape))
                if not dst:
                    _log(logger, f"IExecutionContext::enqueueV3: Error Code 2: OutOfMemory (output allocator returned null for {out['name']})")
                    return False
            else:
                dst = self._addresses[out["name"]]
        batch = max(1, self._batch())
        launcher = _launcher()
        events = []
        for name, us in self.engine._body["layers"]:
            ns = int(us * 1000 * (1 + 0.1 * (batch - 1)))
            if self.profiler is not None:
                events.append((name, launcher.event_pair(stream_handle, lambda ns=ns: launcher.launch(stream_handle, src, dst, n_in, n_out, ns))))
            else:
                launcher.launch(stream_handle, src, dst, n_in, n_out, ns)
        if self.profiler is not None and self.enqueue_emits_profile:
            launcher.synchronize(stream_handle)
            for name, ms in ((n, launcher.elapsed_ms(p)) for n, p in events):
                self.profiler.report_layer_time(name, ms)
        return True

    @staticmethod
    def _nbytes(t: dict[str, Any], shape: Sequence[int]) -> int:
        n = _ITEMSIZE[t["dtype"]]
        for d in shape:
            n *= max(int(d), 0)
        return n


# ----------------------------------------------------------- GPU kernel launch
_KERNEL = r"""
extern "C" __global__ void fake_layer(const unsigned char* src, unsigned char* dst,
                                      unsigned long long n_in, unsigned long long n_out,
                                      unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n_out;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        dst[i] = n_in ? (unsigned char)(src[i % n_in] ^ 0x5a) : (unsigned char)1;
    }
    if (threadIdx.x == 0) {
        do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
    }
}
"""

_launcher_lock = threading.Lock()
_launcher_obj: Any = None


def _device_cc() -> tuple[int, int] | None:
    try:
        from cuda.bindings import runtime as rt

        err, dev = rt.cudaGetDevice()
        if int(err):
            return None
        err, props = rt.cudaGetDeviceProperties(dev)
        return None if int(err) else (int(props.major), int(props.minor))
    except Exception:  # noqa: BLE001
        return None


def _launcher() -> Any:
    global _launcher_obj
    with _launcher_lock:
        if _launcher_obj is None:
            errors = []
            for cls in (_DriverLauncher, _TorchLauncher, _CupyLauncher):
                try:
                    _launcher_obj = cls()
                    break
                except Exception as exc:  # noqa: BLE001 - e.g. no NVRTC: try the next way
                    errors.append(f"{cls.__name__}: {type(exc).__name__}: {exc}")
            else:
                raise RuntimeError("FakeTensorRT cannot launch kernels: " + "; ".join(errors))
        return _launcher_obj


def _ok(result: Any, what: str) -> Any:
    err = result[0]
    if int(err):
        raise RuntimeError(f"{what} failed: {err}")
    return result[1] if len(result) == 2 else result[1:]


class _DriverLauncher:
    """NVRTC -> PTX -> cuModuleLoadData -> cuLaunchKernel on the caller's stream."""

    def __init__(self) -> None:
        from cuda.bindings import driver, nvrtc
        from cuda.bindings import runtime as rt

        _ok(rt.cudaFree(0), "cudaFree(0)")  # primary context current on this thread
        cc = _device_cc() or (8, 0)
        prog = _ok(nvrtc.nvrtcCreateProgram(_KERNEL.encode(), b"fake_layer.cu", 0, [], []), "nvrtcCreateProgram")
        opts = [f"--gpu-architecture=compute_{cc[0]}{cc[1]}".encode()]
        err = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
        if int(err):
            size = _ok(nvrtc.nvrtcGetProgramLogSize(prog), "log size")
            buf = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, buf)
            raise RuntimeError(f"NVRTC: {buf.decode(errors='replace')}")
        size = _ok(nvrtc.nvrtcGetPTXSize(prog), "nvrtcGetPTXSize")
        ptx = b" " * size
        _ok(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
        self._driver = driver
        self._rt = rt
        self._module = _ok(driver.cuModuleLoadData(ptx), "cuModuleLoadData")
        self._fn = _ok(driver.cuModuleGetFunction(self._module, b"fake_layer"), "cuModuleGetFunction")

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        import ctypes

        d = self._driver
        args = ((src, dst, n_in, n_out, ns), (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_ulonglong, ctypes.c_ulonglong))
        blocks = max(1, min(64, (n_out + 255) // 256))
        _ok((d.cuLaunchKernel(self._fn, blocks, 1, 1, 256, 1, 1, 0, d.CUstream(stream), args, 0)[0],), "cuLaunchKernel")

    def event_pair(self, stream: int, launch: Any) -> tuple[Any, Any]:
        rt = self._rt
        a = _ok(rt.cudaEventCreate(), "cudaEventCreate")
        b = _ok(rt.cudaEventCreate(), "cudaEventCreate")
        rt.cudaEventRecord(a, stream)
        launch()
        rt.cudaEventRecord(b, stream)
        return a, b

    def elapsed_ms(self, pair: tuple[Any, Any]) -> float:
        ms = _ok(self._rt.cudaEventElapsedTime(pair[0], pair[1]), "cudaEventElapsedTime")
        for e in pair:
            self._rt.cudaEventDestroy(e)
        return float(ms)

    def synchronize(self, stream: int) -> None:
        _ok((self._rt.cudaStreamSynchronize(stream)[0],), "cudaStreamSynchronize")


class _CupyLauncher(_DriverLauncher):
    """Same kernel through cupy's RawKernel, on an external stream."""

    def __init__(self) -> None:
        import cupy
        from cuda.bindings import runtime as rt

        self._cupy = cupy
        self._rt = rt
        self._kernel = cupy.RawKernel(_KERNEL, "fake_layer")

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        import numpy as np

        cp = self._cupy
        blocks = max(1, min(64, (n_out + 255) // 256))
        with cp.cuda.ExternalStream(stream):
            self._kernel((blocks,), (256,), (np.uint64(src), np.uint64(dst), np.uint64(n_in), np.uint64(n_out), np.uint64(ns)))


class _TorchLauncher(_DriverLauncher):
    """No NVRTC: ``torch.cuda._sleep`` (a real spin kernel) on the caller's stream,
    plus a device-to-device copy so the output holds input bytes."""

    def __init__(self) -> None:
        import torch
        from cuda.bindings import runtime as rt

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no GPU")
        torch.cuda.init()
        self._torch = torch
        self._rt = rt
        _ok(rt.cudaFree(0), "cudaFree(0)")
        err, dev = rt.cudaGetDevice()
        khz = _ok(rt.cudaDeviceGetAttribute(rt.cudaDeviceAttr.cudaDevAttrClockRate, dev), "clock rate")
        self._cycles_per_ns = max(int(khz), 1) / 1e6

    def launch(self, stream: int, src: int, dst: int, n_in: int, n_out: int, ns: int) -> None:
        torch = self._torch
        n = min(n_in, n_out)
        if n and src and dst:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
            _ok((self._rt.cudaMemcpyAsync(dst, src, n, kind, stream)[0],), "cudaMemcpyAsync")
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            torch.cuda._sleep(int(ns * self._cycles_per_ns))
