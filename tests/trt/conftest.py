"""Fixtures for the TensorRT tests: the real TensorRT-RTX backend, tiny ONNX
models, and the FakeTensorRT backend for execution-side tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.core.errors import BackendUnavailable
from pytest_trtperf.trt import backend as backend_mod
from pytest_trtperf.core.config import TrtOptions


@pytest.fixture(scope="session")
def rtx() -> backend_mod.Backend:
    """The real TensorRT-RTX backend; the test skips with one line without it."""
    try:
        return backend_mod.load_backend("tensorrt_rtx")
    except BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with mlp.onnx, cnn.onnx, encoder.onnx, two_inputs.onnx,
    broken.onnx and shape_tensor.onnx."""
    pytest.importorskip("onnx", reason="needs onnx to generate test models (pip install onnx)")
    from tests import onnx_models
    from tests.trt import onnx_extra

    d = tmp_path_factory.mktemp("models")
    onnx_models.mlp(d / "mlp.onnx")
    onnx_models.cnn(d / "cnn.onnx")
    onnx_models.encoder_block(d / "encoder.onnx")
    onnx_models.two_inputs(d / "two_inputs.onnx")
    onnx_models.broken(d / "broken.onnx")
    onnx_extra.reshape_by_shape_tensor(d / "shape_tensor.onnx")
    return d


@pytest.fixture
def options(tmp_path: Path) -> TrtOptions:
    """Options with a fresh engine cache and timing cache under ``tmp_path``."""
    return TrtOptions.from_values(backend="tensorrt_rtx", engine_cache=str(tmp_path / "engines"))


@pytest.fixture(scope="session")
def fake_trt():
    from tests.fakes import fake_tensorrt

    return fake_tensorrt


@pytest.fixture(scope="session")
def fake_backend(fake_trt) -> backend_mod.Backend:
    """FakeTensorRT as a TensorRT 10.13 backend (executes only on a GPU)."""
    return backend_mod.from_module(fake_trt, "tensorrt")


@pytest.fixture(scope="session")
def fake_rtx():
    from tests.fakes import fake_tensorrt_rtx

    return fake_tensorrt_rtx


@pytest.fixture(scope="session")
def fake_rtx_backend(fake_rtx) -> backend_mod.Backend:
    """FakeTensorRT-RTX as a TensorRT-RTX backend (executes only on a GPU)."""
    return backend_mod.from_module(fake_rtx, "tensorrt_rtx")
