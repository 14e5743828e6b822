"""Tiny ONNX models for the TensorRT tests, generated with the ``onnx`` helper API.

Every model has a dynamic batch dimension named ``batch`` so tests can build
min/opt/max profiles. Sizes are small on purpose: builds stay in the seconds on
a shared 2-core machine. Weights are seeded so the same call writes the same
bytes (the engine cache keys on ONNX bytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _init(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> onnx.TensorProto:
    scale = 1.0 / np.sqrt(max(1, int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]))
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(dtype), name)


def _finish(graph: onnx.GraphProto, path: Path | None) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
    return model


def mlp(path: Path | None = None, features: int = 64, hidden: int = 128, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """``input[batch, features] -> MatMul+Add -> Relu -> MatMul+Add -> output[batch, classes]``."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
        [
            _init("w1", (features, hidden), rng),
            _init("b1", (hidden,), rng),
            _init("w2", (hidden, classes), rng),
            _init("b2", (classes,), rng),
        ],
    )
    return _finish(graph, path)


def cnn(path: Path | None = None, size: int = 32, channels: int = 8, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """``input[batch, 3, size, size] -> Conv -> Relu -> Conv -> Relu -> GAP -> Flatten -> Gemm``."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["input", "c1w", "c1b"], ["a1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Conv", ["r1", "c2w", "c2b"], ["a2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fcw", "fcb"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
        [
            _init("c1w", (channels, 3, 3, 3), rng),
            _init("c1b", (channels,), rng),
            _init("c2w", (channels * 2, channels, 3, 3), rng),
            _init("c2b", (channels * 2,), rng),
            _init("fcw", (classes, channels * 2), rng),
            _init("fcb", (classes,), rng),
        ],
    )
    return _finish(graph, path)


def encoder_block(
    path: Path | None = None, seq: int = 16, dim: int = 32, ffn: int = 64, seed: int = 0
) -> onnx.ModelProto:
    """One pre-norm transformer encoder block (single head) on ``input[batch, seq, dim]``."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(np.ones(dim, np.float32), "ln1_g"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "ln1_b"),
        numpy_helper.from_array(np.ones(dim, np.float32), "ln2_g"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "ln2_b"),
        numpy_helper.from_array(np.array(1.0 / np.sqrt(dim), np.float32), "scale"),
        _init("wq", (dim, dim), rng),
        _init("wk", (dim, dim), rng),
        _init("wv", (dim, dim), rng),
        _init("wo", (dim, dim), rng),
        _init("f1", (dim, ffn), rng),
        _init("f2", (ffn, dim), rng),
    ]
    nodes = [
        helper.make_node("LayerNormalization", ["input", "ln1_g", "ln1_b"], ["n1"], axis=-1),
        helper.make_node("MatMul", ["n1", "wq"], ["q"]),
        helper.make_node("MatMul", ["n1", "wk"], ["k"]),
        helper.make_node("MatMul", ["n1", "wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"]),
        helper.make_node("Mul", ["s0", "scale"], ["s1"]),
        helper.make_node("Softmax", ["s1"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "wo"], ["o"]),
        helper.make_node("Add", ["input", "o"], ["x1"]),
        helper.make_node("LayerNormalization", ["x1", "ln2_g", "ln2_b"], ["n2"], axis=-1),
        helper.make_node("MatMul", ["n2", "f1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "f2"], ["h2"]),
        helper.make_node("Add", ["x1", "h2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "encoder_block",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", seq, dim])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", seq, dim])],
        inits,
    )
    return _finish(graph, path)


def two_inputs(path: Path | None = None, features: int = 16, seed: int = 0) -> onnx.ModelProto:
    """``a[batch, features] + b[batch, features] -> MatMul -> output``: several inputs, one profile each."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("MatMul", ["s", "w"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", features]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", features]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", features])],
        [_init("w", (features, features), rng)],
    )
    return _finish(graph, path)


def broken(path: Path) -> Path:
    """A model the ONNX parser rejects: an operator that does not exist."""
    node = helper.make_node("NoSuchOperatorXyz", ["input"], ["output"])
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return Path(path)
