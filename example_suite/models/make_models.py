"""Generate the example suite's ONNX models (no downloads).

    python example_suite/models/make_models.py          # writes vit.onnx, mlp.onnx here
    python example_suite/models/make_models.py --plan   # and mlp_b1-256.plan (needs TensorRT or TensorRT-RTX)

* ``vit.onnx``: a ViT-style image classifier in FP16 (patch-16 convolution
  embedding, pre-norm multi-head attention blocks, mean pool, linear head),
  input ``input[batch, 3, 224, 224]`` with a dynamic batch. FP16 in the model
  itself, so it builds the same on TensorRT 10, 11 and TensorRT-RTX (strongly
  typed: the precision comes from the model, not a builder flag).
* ``mlp.onnx``: a small FP32 MLP ``input[batch, 256] -> output[batch, 10]``
  for the batch sweep, the throughput test and the engine-file test.
* ``wide_fp32.onnx`` and ``wide_fp16.onnx``: one wider MLP
  ``input[batch, 1024] -> 4096 -> output[batch, 1024]`` exported in FP32 and
  in FP16, for the relative gate "the FP16 engine is faster".

Weights are random with a fixed seed: the bytes (and so the engine cache key)
are the same on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:  # pragma: no cover - reported by the caller
        raise ImportError("generating the example models needs onnx (pip install onnx)") from None
    return onnx, TensorProto, helper, numpy_helper


def vit(path: Path, depth: int = 4, dim: int = 192, heads: int = 3, mlp: int = 768, classes: int = 1000,
        image: int = 224, patch: int = 16, seed: int = 0) -> Path:
    """A ViT-Tiny-like FP16 model (``depth`` encoder blocks)."""
    onnx, TP, helper, nh = _onnx()
    rng = np.random.default_rng(seed)
    f16 = np.float16
    tokens = (image // patch) ** 2
    hd = dim // heads
    inits: list = []
    nodes: list = []

    def w(name: str, shape: tuple[int, ...], scale: float | None = None) -> str:
        s = scale if scale is not None else 1.0 / np.sqrt(shape[0] if len(shape) == 2 else np.prod(shape[1:]))
        inits.append(nh.from_array((rng.standard_normal(shape) * s).astype(f16), name))
        return name

    def const(name: str, value: np.ndarray) -> str:
        inits.append(nh.from_array(value, name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def layernorm(x: str, name: str) -> str:
        g = const(f"{name}_g", np.ones(dim, f16))
        b = const(f"{name}_b", np.zeros(dim, f16))
        return node("LayerNormalization", [x, g, b], f"{name}_out", axis=-1)

    # Patch embedding: [B,3,224,224] -> [B,dim,14,14] -> [B,196,dim]
    x = node("Conv", ["input", w("patch_w", (dim, 3, patch, patch)), const("patch_b", np.zeros(dim, f16))],
             "patches", kernel_shape=[patch, patch], strides=[patch, patch])
    x = node("Reshape", [x, const("flat_shape", np.array([0, dim, tokens], np.int64))], "patches_flat")
    x = node("Transpose", [x], "tokens0", perm=[0, 2, 1])
    x = node("Add", [x, w("pos_embed", (1, tokens, dim), 0.02)], "tokens")
    heads_shape = const("heads_shape", np.array([0, tokens, heads, hd], np.int64))
    merge_shape = const("merge_shape", np.array([0, tokens, dim], np.int64))
    scale = const("attn_scale", np.array(1.0 / np.sqrt(hd), f16))
    for i in range(depth):
        p = f"blk{i}"
        h = layernorm(x, f"{p}_ln1")
        q, k, v = (node("MatMul", [h, w(f"{p}_w{n}", (dim, dim))], f"{p}_{n}") for n in "qkv")
        q = node("Transpose", [node("Reshape", [q, heads_shape], f"{p}_qh")], f"{p}_qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [k, heads_shape], f"{p}_kh")], f"{p}_kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [v, heads_shape], f"{p}_vh")], f"{p}_vt", perm=[0, 2, 1, 3])
        s = node("Mul", [node("MatMul", [q, k], f"{p}_s0"), scale], f"{p}_s")
        a = node("Softmax", [s], f"{p}_attn", axis=-1)
        c = node("Transpose", [node("MatMul", [a, v], f"{p}_ctx0")], f"{p}_ctx1", perm=[0, 2, 1, 3])
        c = node("Reshape", [c, merge_shape], f"{p}_ctx")
        x = node("Add", [x, node("MatMul", [c, w(f"{p}_wo", (dim, dim))], f"{p}_o")], f"{p}_x1")
        h = layernorm(x, f"{p}_ln2")
        h = node("MatMul", [h, w(f"{p}_f1", (dim, mlp))], f"{p}_h1")
        h = node("Relu", [node("Add", [h, const(f"{p}_b1", np.zeros(mlp, f16))], f"{p}_h1b")], f"{p}_h1r")
        h = node("MatMul", [h, w(f"{p}_f2", (mlp, dim))], f"{p}_h2")
        x = node("Add", [x, h], f"{p}_out")
    x = layernorm(x, "final_ln")
    x = node("ReduceMean", [x], "pooled", axes=[1], keepdims=0)
    node("Add", [node("MatMul", [x, w("head_w", (dim, classes))], "logits0"), const("head_b", np.zeros(classes, f16))],
         "logits")
    graph = helper.make_graph(
        nodes, "vit_tiny_fp16",
        [helper.make_tensor_value_info("input", TP.FLOAT16, ["batch", 3, image, image])],
        [helper.make_tensor_value_info("logits", TP.FLOAT16, ["batch", classes])],
        inits,
    )
    return _save(onnx, helper, graph, path)


def mlp(path: Path, features: int = 256, hidden: int = 1024, classes: int = 10, seed: int = 0) -> Path:
    """``input[batch, features] -> Gemm -> Relu -> Gemm -> output[batch, classes]`` in FP32."""
    onnx, TP, helper, nh = _onnx()
    rng = np.random.default_rng(seed)
    inits = [
        nh.from_array((rng.standard_normal((features, hidden)) / np.sqrt(features)).astype(np.float32), "w1"),
        nh.from_array(np.zeros(hidden, np.float32), "b1"),
        nh.from_array((rng.standard_normal((hidden, classes)) / np.sqrt(hidden)).astype(np.float32), "w2"),
        nh.from_array(np.zeros(classes, np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TP.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("output", TP.FLOAT, ["batch", classes])],
        inits,
    )
    return _save(onnx, helper, graph, path)


def wide(path: Path, dtype: type = np.float32, features: int = 1024, hidden: int = 4096, seed: int = 0) -> Path:
    """``input[batch, features] -> MatMul -> Relu -> MatMul -> output`` with weights and activations in
    ``dtype`` (the same weights, rounded, in both precisions)."""
    onnx, TP, helper, nh = _onnx()
    rng = np.random.default_rng(seed)
    kind = TP.FLOAT16 if dtype == np.float16 else TP.FLOAT
    w1 = rng.standard_normal((features, hidden)) / np.sqrt(features)
    w2 = rng.standard_normal((hidden, features)) / np.sqrt(hidden)
    inits = [nh.from_array(w1.astype(dtype), "w1"), nh.from_array(w2.astype(dtype), "w2")]
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "w2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, f"wide_{np.dtype(dtype).name}",
        [helper.make_tensor_value_info("input", kind, ["batch", features])],
        [helper.make_tensor_value_info("output", kind, ["batch", features])],
        inits,
    )
    return _save(onnx, helper, graph, path)


def _save(onnx, helper, graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)  # atomic: xdist workers may race to generate
    return path


def ensure(directory: Path = HERE) -> Path:
    """Generate the models that are missing; return ``directory``."""
    directory = Path(directory)
    if not (directory / "vit.onnx").exists():
        vit(directory / "vit.onnx")
    if not (directory / "mlp.onnx").exists():
        mlp(directory / "mlp.onnx")
    for name, dtype in (("wide_fp32.onnx", np.float32), ("wide_fp16.onnx", np.float16)):
        if not (directory / name).exists():
            wide(directory / name, dtype)
    return directory


#: The plan ``test_load_engine_file`` loads, and ``--plan`` writes.
PLAN_NAME = "mlp_b1-256.plan"


def save_plan(directory: Path = HERE) -> Path:
    """Build the MLP with a batch profile of 1..256 and save the plan, like
    ``trtexec --saveEngine``, with whichever TensorRT is installed
    (TensorRT-RTX builds without a GPU), so ``pytest-trtperf plan-info`` has a
    plan to read on any machine."""
    from pytest_trtperf.trt import EngineSpec, TrtOptions, get_engine

    directory = ensure(directory)
    spec = EngineSpec.create("make_models.py --plan", onnx=str(directory / "mlp.onnx"),
                             min_shapes={"input": (1, 256)}, opt_shapes={"input": (32, 256)},
                             max_shapes={"input": (256, 256)})
    plan = directory / PLAN_NAME
    plan.write_bytes(get_engine(spec, TrtOptions.from_values(engine_cache="off")).plan)
    return plan


def tensorrt_unavailable() -> str | None:
    """One line saying why the TensorRT examples cannot run here, or None."""
    import importlib.util

    # Whether onnx is installed, without importing it: the import (mostly ml_dtypes) costs ~1.3 s of CPU
    # in every session and xdist worker of the example suite, and only a build needs the module.
    if importlib.util.find_spec("onnx") is None:
        return "needs onnx to generate the example models (pip install onnx)"
    from pytest_trtperf.core.errors import BackendUnavailable
    from pytest_trtperf.trt.backend import load_backend

    try:
        from pytest_trtperf.gpu import cuda

        gpu = cuda.unavailable_reason()
    except ImportError:
        gpu = "needs cuda-python (pip install 'pytest-trtperf[gpu]')"
    if gpu is not None:
        return f"TensorRT examples need a GPU: {gpu}"
    try:
        backend = load_backend("auto")
    except BackendUnavailable as exc:
        return str(exc)
    if backend.is_rtx:
        major, _ = cuda.compute_capability()
        if major == 9:  # TensorRT-RTX targets Turing..Blackwell client/workstation GPUs, not Hopper
            return f"{backend.label} does not run on compute capability 9.x (Hopper); install tensorrt"
    return None


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--plan"]
    out = ensure(Path(args[0]) if args else HERE)
    print(f"models in {out}: " + ", ".join(sorted(p.name for p in out.glob("*.onnx"))))
    if "--plan" in sys.argv[1:]:
        print(f"plan written: {save_plan(out)}")
