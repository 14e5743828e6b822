"""Loading plans: one-line errors for foreign, truncated and wrong-version files;
I/O introspection of a deserialized engine (FakeTensorRT at the execution boundary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.trt.api import engine_from_plan, get_engine
from pytest_trtperf.trt.engine import deserialize, read_engine_file, resolve_budget, timed_nvtx_verbosity
from pytest_trtperf.trt.spec import EngineSpec
from pytest_trtperf.gpu.cuda import unavailable_reason as gpu_missing_reason

WHERE = "test_x.py::test_load"

FAKE_IO = [
    {"name": "images", "mode": "input", "dtype": "HALF", "shape": [-1, 3, 8, 8],
     "profiles": [[[1, 3, 8, 8], [4, 3, 8, 8], [16, 3, 8, 8]]]},
    {"name": "ids", "mode": "input", "dtype": "INT64", "shape": [-1, 5],
     "profiles": [[[1, 5], [4, 5], [16, 5]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]


def test_missing_and_tiny_engine_files(rtx, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"engine file not found: .*none\.plan"):
        read_engine_file(rtx, tmp_path / "none.plan", WHERE, "no-gpu", False)
    tiny = tmp_path / "tiny.plan"
    tiny.write_bytes(b"vtrt")
    with pytest.raises(UsageError, match=r"tiny\.plan is not a TensorRT engine \(4 bytes\)"):
        read_engine_file(rtx, tiny, WHERE, "no-gpu", False)


def test_plan_from_the_other_library_is_named(rtx, tmp_path: Path) -> None:
    other = tmp_path / "trt10.plan"
    other.write_bytes(b"ftrt" + b"\x00" * 4096)
    with pytest.raises(UsageError) as exc:
        read_engine_file(rtx, other, WHERE, "no-gpu", False)
    msg = str(exc.value)
    assert "built by TensorRT, not TensorRT-RTX" in msg and "rebuild it with TensorRT-RTX" in msg and WHERE in msg


def test_malformed_file_is_detected_by_the_library(rtx, tmp_path: Path) -> None:
    junk = tmp_path / "junk.plan"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(UsageError, match="not a valid or complete engine"):
        read_engine_file(rtx, junk, WHERE, "no-gpu", False)


def test_real_plan_loads_as_handle_and_needs_a_gpu_to_deserialize(rtx, models: Path, options, tmp_path: Path) -> None:
    built = get_engine(EngineSpec.create(WHERE, models, onnx="mlp.onnx", shapes={"input": (2, 64)}, optimization_level=0), options)
    plan = tmp_path / "mlp.plan"
    plan.write_bytes(built.plan)
    spec = EngineSpec.create(WHERE, tmp_path, engine="mlp.plan", shapes={"input": (2, 64)})
    handle = get_engine(spec, options)
    assert handle.plan == built.plan and handle.plan_path == plan and handle.io == ()
    assert handle.run_shapes == {"input": (2, 64)}
    if gpu_missing_reason() is None:
        pytest.skip("this machine has a GPU; the no-GPU path is what is tested here")
    with pytest.raises(BackendUnavailable, match="no usable GPU"):
        deserialize(handle)


def test_the_double_needs_a_gpu_to_deserialize_like_the_real_runtime(fake_backend, fake_trt) -> None:
    """Real TensorRT returns None with cudaError 35 without a GPU; so does the
    double, and the plugin says so in one line."""
    if gpu_missing_reason() is None:
        pytest.skip("this machine has a GPU; the no-GPU path is what is tested here")
    handle = engine_from_plan(fake_backend, fake_trt.make_plan(FAKE_IO), WHERE, "fake.plan")
    with pytest.raises(BackendUnavailable, match=r"TensorRT 10\.13\.0\.35 cannot load engines here: no usable GPU .*cudaError 35"):
        deserialize(handle)


def test_wrong_version_plan_says_so_in_one_line(fake_backend, fake_trt) -> None:
    handle = engine_from_plan(fake_backend, fake_trt.make_plan(FAKE_IO, version="10.3.0"), WHERE, "old.plan")
    with pytest.raises(UsageError) as exc:
        deserialize(handle)
    msg = str(exc.value)
    assert "\n" not in msg and "old.plan" in msg and "built by another TensorRT version" in msg
    assert "Version tag does not match" in msg  # TensorRT 10's own words follow
    assert "rebuild it with TensorRT 10.13.0.35" in msg


def test_rtx_plan_given_to_full_tensorrt(fake_backend, rtx, models: Path, options) -> None:
    built = get_engine(EngineSpec.create(WHERE, models, onnx="mlp.onnx", shapes={"input": (1, 64)}, optimization_level=0), options)
    handle = engine_from_plan(fake_backend, built.plan, WHERE, "rtx.plan")
    with pytest.raises(UsageError, match="built by TensorRT-RTX, not TensorRT 10.13.0.35"):
        deserialize(handle)


def test_real_runtime_host_code_default_is_off(rtx) -> None:
    runtime = rtx.module.Runtime(rtx.logger())
    assert runtime.engine_host_code_allowed is False  # we rely on this default


def test_version_compatible_builds_allow_their_own_host_code(fake_backend, rtx, models: Path, options, tmp_path: Path) -> None:
    """trtexec and Polygraphy let a runtime load the host code of the
    version-compatible plans they built; a plan file from elsewhere still needs
    --trt-allow-engine-host-code. On TensorRT-RTX version_compatible is refused."""
    spec = EngineSpec.create(WHERE, models, onnx="mlp.onnx", shapes={"input": (1, 64)}, optimization_level=0,
                             version_compatible=True)
    with pytest.raises(UsageError, match="version_compatible=True is not possible: .*no lean runtime"):
        get_engine(spec, options)
    from pytest_trtperf.trt.api import host_code_policy
    from pytest_trtperf.core.config import TrtOptions

    off = TrtOptions.from_values(engine_cache="off")
    assert host_code_policy(spec, off) == (True, "built here (version_compatible)")
    plain = EngineSpec.create(WHERE, models, onnx="mlp.onnx", shapes={"input": (1, 64)})
    assert host_code_policy(plain, off) == (False, None)
    assert host_code_policy(plain, TrtOptions.from_values(engine_cache="off", allow_engine_host_code=True)) == (True, None)
    plan = tmp_path / "vc.plan"
    plan.write_bytes(b"ftrt" + b"{}" * 64)
    loaded = read_engine_file(fake_backend, plan, WHERE, "no-gpu", allow_host_code=False)
    assert loaded.allow_host_code is False and "host_code_allowed" not in loaded.identity


def test_weight_streaming_budget_resolution() -> None:
    mib = 1 << 20
    assert resolve_budget("off", 100 * mib, lambda: 1) == 100 * mib
    assert resolve_budget("auto", 100 * mib, lambda: 42) == 42
    assert resolve_budget("25%", 100 * mib, lambda: 1) == 25 * mib
    assert resolve_budget("1048576", 100 * mib, lambda: 1) == mib


def test_timed_contexts_use_layer_names_only_nvtx(rtx, fake_trt) -> None:
    for module in (rtx.module, fake_trt):
        levels = module.ProfilingVerbosity
        assert timed_nvtx_verbosity(module, levels.DETAILED) == levels.LAYER_NAMES_ONLY
        assert timed_nvtx_verbosity(module, levels.LAYER_NAMES_ONLY) == levels.LAYER_NAMES_ONLY
        assert timed_nvtx_verbosity(module, levels.NONE) == levels.NONE  # cannot be raised above the build
