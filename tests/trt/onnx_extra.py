"""ONNX models the TensorRT tests need beyond ``tests/onnx_models.py``."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17


def reshape_by_shape_tensor(path: Path) -> Path:
    """``data[batch, 16]`` reshaped by the *values* of ``shape`` (int64[2]): TensorRT
    makes ``shape`` a shape-tensor input (``is_shape_inference_io``), whose values
    the optimization profile bounds and the runtime reads from host memory."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["data", "shape"], ["output"])],
        "reshape_by_shape_tensor",
        [
            helper.make_tensor_value_info("data", TensorProto.FLOAT, ["batch", 16]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["rows", "cols"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return Path(path)
