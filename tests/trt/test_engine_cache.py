"""get_engine through the on-disk engine cache, with real TensorRT-RTX builds."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from pytest_trtperf.trt.api import get_engine
from pytest_trtperf.trt.engine_cache import EngineCacheWarning, cache_key
from pytest_trtperf.core.config import TrtOptions
from pytest_trtperf.trt.spec import EngineSpec

WHERE = "test_x.py::test_cache"


def cnn_spec(models: Path, **kw) -> EngineSpec:
    return EngineSpec.create(
        WHERE,
        models,
        onnx="cnn.onnx",
        min_shapes={"input": (1, 3, 32, 32)},
        opt_shapes={"input": (8, 3, 32, 32)},
        max_shapes={"input": (16, 3, 32, 32)},
        **{"optimization_level": 1, **kw},
    )


def test_second_get_is_a_cache_hit_and_much_faster(rtx, models: Path, options: TrtOptions) -> None:
    t0 = time.perf_counter()
    first = get_engine(cnn_spec(models), options)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = get_engine(cnn_spec(models), options)
    hit_s = time.perf_counter() - t0
    assert not first.cache_hit and second.cache_hit
    assert second.plan == first.plan
    assert second.io == first.io  # I/O survives the cache without deserializing
    assert second.identity == first.identity
    assert hit_s < build_s / 5, (hit_s, build_s)
    assert first.plan_path is not None and first.plan_path.parent == options.engine_cache
    assert options.timing_cache is not None and options.timing_cache.is_file()
    # Plans never end up in a commit, even inside the committed baseline dir.
    assert (options.engine_cache / ".gitignore").read_text() == "*\n"


def test_identity_is_stable_and_tracks_build_config(rtx, models: Path, options: TrtOptions) -> None:
    a = get_engine(cnn_spec(models), options)
    b = get_engine(cnn_spec(models, optimization_level=0), options)
    assert not b.cache_hit
    assert a.identity["build"] != b.identity["build"]
    assert a.identity["onnx_sha256"] == b.identity["onnx_sha256"]
    assert a.identity["backend"] == "tensorrt_rtx" and a.identity["version"] == rtx.version
    assert a.identity["gpu"] == rtx.gpu_identity()


def test_changed_onnx_bytes_rebuild(rtx, tmp_path: Path, options: TrtOptions) -> None:
    from tests import onnx_models

    model = tmp_path / "m.onnx"
    onnx_models.mlp(model, seed=1)
    spec = EngineSpec.create(WHERE, onnx=model, shapes={"input": (1, 64)}, optimization_level=0)
    assert not get_engine(spec, options).cache_hit
    assert get_engine(spec, options).cache_hit
    onnx_models.mlp(model, seed=2)  # same graph, other weights
    assert not get_engine(spec, options).cache_hit


def test_truncated_plan_is_rebuilt_with_a_warning(rtx, models: Path, options: TrtOptions) -> None:
    first = get_engine(cnn_spec(models), options)
    assert first.plan_path is not None
    first.plan_path.write_bytes(first.plan[: len(first.plan) // 2])
    with pytest.warns(EngineCacheWarning, match="truncated or foreign"):
        again = get_engine(cnn_spec(models), options)
    assert not again.cache_hit
    assert first.plan_path.read_bytes()[:4] == b"vtrt" and len(first.plan_path.read_bytes()) == len(again.plan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_engine(cnn_spec(models), options).cache_hit


def test_foreign_plan_with_matching_checksum_is_rebuilt(rtx, models: Path, options: TrtOptions) -> None:
    """A plan the library itself rejects (here: a full-TensorRT magic) is discarded, not loaded."""
    import hashlib
    import json

    first = get_engine(cnn_spec(models), options)
    foreign = b"ftrt" + first.plan[4:]
    meta_path = first.plan_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta.update(size=len(foreign), sha256=hashlib.sha256(foreign).hexdigest())
    first.plan_path.write_bytes(foreign)
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(EngineCacheWarning, match="built by TensorRT, not TensorRT-RTX"):
        again = get_engine(cnn_spec(models), options)
    assert not again.cache_hit and again.plan[:4] == b"vtrt"


def test_corrupt_metadata_is_rebuilt(rtx, models: Path, options: TrtOptions) -> None:
    first = get_engine(cnn_spec(models), options)
    first.plan_path.with_suffix(".json").write_text("{not json")
    with pytest.warns(EngineCacheWarning, match="unreadable"):
        assert not get_engine(cnn_spec(models), options).cache_hit


def test_cache_off_always_builds(rtx, models: Path, tmp_path: Path) -> None:
    opts = TrtOptions.from_values(backend="tensorrt_rtx", engine_cache="off")
    assert not get_engine(cnn_spec(models), opts).cache_hit
    h = get_engine(cnn_spec(models), opts)
    assert not h.cache_hit and h.plan_path is None


def test_key_covers_library_and_gpu() -> None:
    base = cache_key("abc", {"x": 1}, {"backend": "tensorrt_rtx", "version": "1.7"}, "no-gpu")
    assert base != cache_key("abc", {"x": 1}, {"backend": "tensorrt_rtx", "version": "1.8"}, "no-gpu")
    assert base != cache_key("abc", {"x": 1}, {"backend": "tensorrt_rtx", "version": "1.7"}, "NVIDIA H100 sm90")
    assert base != cache_key("abd", {"x": 1}, {"backend": "tensorrt_rtx", "version": "1.7"}, "no-gpu")
    assert base != cache_key("abc", {"x": 2}, {"backend": "tensorrt_rtx", "version": "1.7"}, "no-gpu")


def test_no_temp_files_left_behind(rtx, models: Path, options: TrtOptions) -> None:
    get_engine(cnn_spec(models), options)
    assert not [p for p in options.engine_cache.iterdir() if p.name.endswith(".tmp")]
