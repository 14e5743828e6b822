"""TensorRTWorkload on the CPU: what it checks before touching a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.trt.api import get_engine
from pytest_trtperf.workloads.tensorrt import make_workload
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.core.workload import Workload

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
    from pytest_trtperf.gpu import cuda

    if cuda.unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    w = make_workload(cnn)
    with pytest.raises(BackendUnavailable):
        w.setup()
    w.teardown()  # safe after a failed setup


def test_fixture_entry_points_marker_kwargs_and_progress_text(rtx, models: Path, options) -> None:
    from types import SimpleNamespace

    from pytest_trtperf.trt.api import engine_from_kwargs, engine_from_marker
    from pytest_trtperf.trt.spec import validate_marker

    lines: list[str] = []
    mark = SimpleNamespace(args=("mlp.onnx",), kwargs={"shapes": {"input": (4, 64)}, "optimization_level": 0, "seed": 7})
    validate_marker(mark, WHERE)
    h = engine_from_marker(mark, WHERE, lines.append, base_dir=models, options=options)
    assert h.__trtperf_engine__ and h.seed == 7 and h.run_shapes == {"input": (4, 64)}
    assert lines[0].startswith("building mlp.onnx: ") and "built with TensorRT-RTX" in lines[-1]
    lines.clear()
    h2 = engine_from_kwargs("mlp.onnx", where=WHERE, progress=lines.append, rootdir=models, options=options,
                            shapes={"input": (4, 64)}, optimization_level=0)
    assert h2.cache_hit and lines == [f"mlp.onnx: engine from cache {h2.plan_path}"]
    with pytest.raises(UsageError, match="unknown trt_engine argument 'optimisation_level'"):
        validate_marker(SimpleNamespace(args=(), kwargs={"onnx": "m.onnx", "optimisation_level": 1}), WHERE)


def test_measure_options_map_to_cuda_workload_options(cnn) -> None:
    from types import SimpleNamespace

    opts = SimpleNamespace(mode="throughput", streams=3, cuda_graph=False, blocking_sync=True, include_transfers=True)
    w = make_workload(cnn, options=opts, profile_layers=False)
    ident = w.identity()
    assert (ident["mode"], ident["streams"], ident["cuda_graph"], ident["sync"], ident["transfers"]) == (
        "throughput", 3, False, "blocking", True)
    assert make_workload(cnn, options=opts, streams=1, mode="latency").identity()["streams"] == 1  # explicit wins


def test_shapes_are_checked_against_the_selected_profile(rtx, models: Path, options) -> None:
    spec = EngineSpec.create(
        WHERE, models, onnx="mlp.onnx", optimization_level=0, profile=1,
        min_shapes=[{"input": (1, 64)}, {"input": (32, 64)}],
        opt_shapes=[{"input": (4, 64)}, {"input": (64, 64)}],
        max_shapes=[{"input": (8, 64)}, {"input": (128, 64)}],
    )
    engine = get_engine(spec, options)
    w = make_workload(engine)
    assert w.shapes == {"input": (64, 64)} and w.identity()["profile"] == 1
    assert make_workload(engine, shapes={"input": (100, 64)}).inferences_per_iteration == 100  # fits profile 1
    with pytest.raises(UsageError, match=r"shape \(4, 64\) is outside the engine's profile 1: min \(32, 64\) .. max \(128, 64\)"):
        make_workload(engine, shapes={"input": (4, 64)})  # fits profile 0 only


def test_shape_tensor_values_are_validated_and_not_random(rtx, models: Path, options) -> None:
    spec = EngineSpec.create(
        WHERE, models, onnx="shape_tensor.onnx", optimization_level=0,
        min_shapes={"data": (1, 16), "shape": (1, 8)},
        opt_shapes={"data": (4, 16), "shape": (4, 16)},
        max_shapes={"data": (8, 16), "shape": (16, 32)},
    )
    engine = get_engine(spec, options)
    w = make_workload(engine, shapes={"data": (2, 16), "shape": (4, 8)})
    assert w.shapes == {"data": (2, 16), "shape": (4, 8)}
    assert w.inferences_per_iteration == 2  # the batch of data, not of the shape tensor
    with pytest.raises(UsageError, match=r"shape tensor 'shape' values \(32, 1\) are outside profile 0: min \(1, 8\) .. max \(16, 32\)"):
        make_workload(engine, shapes={"data": (2, 16), "shape": (32, 1)})
    with pytest.raises(UsageError, match=r"is a shape tensor of 2 value\(s\); got 3"):
        make_workload(engine, shapes={"data": (2, 16), "shape": (2, 4, 4)})
    from pytest_trtperf.trt.inputs import load_inputs

    data = load_inputs(engine.inputs, w.shapes, None, 0, WHERE)
    assert data["shape"].tolist() == [4, 8] and str(data["shape"].dtype) == "int64"


def test_identity_records_context_settings_only_once_they_are_set(cnn) -> None:
    """NVTX verbosity and RTX kernel specialization are what the execution
    contexts were set to at setup (tests/trt/test_gpu_workload.py, on a GPU);
    before setup nothing is set, so nothing is recorded."""
    ident = make_workload(cnn).identity()
    assert "nvtx_verbosity" not in ident and "rtx_kernel_specialization" not in ident
    assert ident["profile"] == 0
