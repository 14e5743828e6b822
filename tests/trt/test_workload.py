"""TensorRTWorkload on the CPU: what it checks before touching a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.errors import BackendUnavailable, UsageError
from pytest_trtperf.trt.api import get_engine, make_workload
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.workload import Workload

WHERE = "test_x.py::test_sweep"


@pytest.fixture
def cnn(rtx, models: Path, options):
    spec = EngineSpec.create(
        WHERE, models, onnx="cnn.onnx", optimization_level=0,
        min_shapes={"input": (1, 3, 32, 32)}, opt_shapes={"input": (8, 3, 32, 32)}, max_shapes={"input": (16, 3, 32, 32)},
    )
    return get_engine(spec, options)


def test_is_a_workload_with_batch_as_inferences(cnn) -> None:
    w = make_workload(cnn)
    assert isinstance(w, Workload) and w.kind == "tensorrt"
    assert w.shapes == {"input": (8, 3, 32, 32)}  # opt shapes by default
    assert w.inferences_per_iteration == 8
    w16 = make_workload(cnn, shapes={"input": (16, 3, 32, 32)}, mode="throughput", streams=2)
    assert w16.inferences_per_iteration == 16


def test_out_of_profile_shape_fails_before_any_gpu_work(cnn) -> None:
    with pytest.raises(UsageError) as exc:
        make_workload(cnn, shapes={"input": (32, 3, 32, 32)})
    assert str(exc.value) == (
        f"{WHERE}: input 'input' shape (32, 3, 32, 32) is outside the engine's profile: "
        "min (1, 3, 32, 32) .. max (16, 3, 32, 32)"
    )


def test_identity_tracks_shapes_inputs_and_timing_options(cnn) -> None:
    a = make_workload(cnn, shapes={"input": (4, 3, 32, 32)}).identity()
    assert a == make_workload(cnn, shapes={"input": (4, 3, 32, 32)}).identity()
    assert a["engine"] == dict(cnn.identity) and a["kind"] == "tensorrt"
    assert a != make_workload(cnn, shapes={"input": (2, 3, 32, 32)}).identity()
    assert a != make_workload(cnn, shapes={"input": (4, 3, 32, 32)}, seed=1).identity()
    assert a != make_workload(cnn, shapes={"input": (4, 3, 32, 32)}, cuda_graph=False).identity()
    import numpy as np

    data = np.ones((4, 3, 32, 32), np.float32)
    b = make_workload(cnn, inputs={"input": data}).identity()
    assert b["shapes"] == {"input": [4, 3, 32, 32]}  # shape taken from the data
    assert b["inputs"].startswith("data:") and b != make_workload(cnn, inputs={"input": data * 2}).identity()


def test_setup_without_gpu_is_backend_unavailable(cnn) -> None:
    from pytest_trtperf import cuda

    if cuda.unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    w = make_workload(cnn)
    with pytest.raises(BackendUnavailable):
        w.setup()
    w.teardown()  # safe after a failed setup
