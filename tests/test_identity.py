"""What makes two measurements comparable: result ids and configuration hashes."""

from __future__ import annotations

from pytest_trtperf.core.identity import config_hash, result_id


def engine_identity(**engine: object) -> dict:
    base = {"backend": "tensorrt", "version": "10.13.0", "gpu": "H100 sm90", "onnx_sha256": "aaaa",
            "build": "b1", "source": "vit.onnx"}
    return {"kind": "tensorrt", "mode": "latency", "shapes": {"input": [128, 3, 224, 224]},
            "engine": {**base, **engine}}


def test_a_new_model_version_is_compared_not_refused() -> None:
    assert config_hash(engine_identity(onnx_sha256="bbbb")) == config_hash(engine_identity())
    assert config_hash(engine_identity(version="10.13.3")) == config_hash(engine_identity())


def test_build_configuration_and_shapes_change_the_hash() -> None:
    assert config_hash(engine_identity(build="b2")) != config_hash(engine_identity())
    other_shape = {**engine_identity(), "shapes": {"input": [64, 3, 224, 224]}}
    assert config_hash(other_shape) != config_hash(engine_identity())
    assert config_hash({**engine_identity(), "mode": "throughput"}) != config_hash(engine_identity())


def test_result_ids_ignore_xdist_groups_and_keep_names() -> None:
    assert result_id("t.py::test_a@gpu", None) == "t.py::test_a"
    assert result_id("t.py::test_a[x@y]", "bs1") == "t.py::test_a[x@y]::bs1"
