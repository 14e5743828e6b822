"""Issue 11: a change of how an engine is BUILT is compared and named in the
verdict; a change of how it is MEASURED makes the baseline incomparable. The
engine identities come from the plugin's own ``built_identity`` (what
``get_engine`` records), for every build field README lists as compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.config import TrtOptions
from pytest_trtperf.core.fingerprint import gpu_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.core.identity import config_hash
from pytest_trtperf.core.results import DeviceState, Result, Verdict
from pytest_trtperf.trt.api import built_identity, get_engine, host_code_policy
from pytest_trtperf.trt.spec import EngineSpec

WHERE = "test_m.py::test_engine"
LIBRARY = {"backend": "tensorrt", "version": "10.13.0"}
BASE = dict(onnx="mlp.onnx", shapes={"input": (4, 64)}, precision="fp16", strongly_typed=False)


def engine_identity(models: Path, **change: Any) -> dict[str, Any]:
    spec = EngineSpec.create(WHERE, models, **{**BASE, **change})
    _, note = host_code_policy(spec, TrtOptions.from_values(engine_cache="off"))
    return built_identity(spec, LIBRARY, "NVIDIA H100 80GB HBM3", "ab" * 32, note)


def result(engine: dict[str, Any], *, scale: float = 1.0, seed: int = 0, shapes: tuple[int, int] = (4, 64)) -> Result:
    """A TensorRT result whose identity has the keys the workload records."""
    identity = {"kind": "tensorrt", "engine": engine, "shapes": {"input": list(shapes)}, "inputs": "random:0",
                "mode": "latency", "streams": 1, "cuda_graph": True, "sync": "spin", "transfers": False,
                "profile": 0}
    x = np.random.default_rng(seed).normal(1.0, 0.01, 3000) * scale * 1e-3
    fp = gpu_fingerprint(kind="tensorrt", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                         trt_version="10.13.0", clocks="off", info={})
    return Result(id=WHERE, nodeid=WHERE, name=None, kind="tensorrt", mode="latency", latency=stats.summarize(x),
                  throughput=1 / x.mean(), distribution=stats.compress(x), stop_reason="converged",
                  warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash=config_hash(identity),
                  identity=identity, fingerprint=fp.to_dict(), device_class=fp.device_class,
                  device_state=DeviceState(kind="tensorrt"))


def verdict(base: Result, cur: Result) -> Verdict:
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None)
    return judge(cur, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                 baseline_path="b.json")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx", reason="needs onnx to generate test models (pip install onnx)")
    from tests import onnx_models

    d = tmp_path_factory.mktemp("models")
    onnx_models.mlp(d / "mlp.onnx")
    return d


@pytest.mark.parametrize("change, named", [
    (dict(precision="fp32"), 'precision ["fp16"] -> ["fp32"]'),
    (dict(optimization_level=5), "optimization_level"),
    (dict(builder_flags=["SPARSE_WEIGHTS"]), "builder_flags"),
    (dict(memory_pools={"workspace": 256 << 20}), "memory_pools"),
    (dict(strongly_typed=True, precision="auto"), "strongly_typed false -> true"),
    (dict(weight_streaming=True, strongly_typed=True, precision="auto"), "weight_streaming false -> true"),
    (dict(version_compatible=True), "version_compatible false -> true"),
])
def test_each_build_field_is_compared_and_named(models: Path, change: dict[str, Any], named: str) -> None:
    base = result(engine_identity(models))
    v = verdict(base, result(engine_identity(models, **change), scale=1.3, seed=1))
    assert v.status == "regression", v.message
    assert any(named in c for c in v.config_changes), v.config_changes
    assert "build configuration changed" in v.message
    assert not any(c.startswith(("shapes", "mode", "cuda_graph")) for c in v.config_changes)


def test_the_weight_streaming_budget_and_the_host_code_note_are_build_fields(models: Path) -> None:
    ws = dict(weight_streaming=True, strongly_typed=True, precision="auto")
    base = result(engine_identity(models, **ws))
    cur = result(engine_identity(models, **ws, weight_streaming_budget="50%"), seed=1)
    v = verdict(base, cur)
    assert v.status == "pass", v.message
    assert v.config_changes == ('engine.weight_streaming_budget "auto" -> "50%"',)
    on = engine_identity(models, version_compatible=True)
    assert on["host_code_allowed"] == "built here (version_compatible)"
    v = verdict(result(engine_identity(models)), result(on, seed=1))
    assert v.status == "pass" and any("host_code_allowed" in c for c in v.config_changes), v.message


def test_a_measurement_change_next_to_a_build_change_is_still_incomparable(models: Path) -> None:
    v = verdict(result(engine_identity(models)), result(engine_identity(models, precision="fp32"), shapes=(8, 64)))
    assert v.status == "incomparable"
    assert v.message.startswith("baseline not comparable: measurement method changed: shapes")


def test_a_real_tensorrt_rtx_weight_streaming_build_is_compared(rtx: Any, models: Path, tmp_path: Path) -> None:
    """The identity ``get_engine`` records for real TensorRT-RTX builds, with
    and without weight streaming, is a compared build change."""
    options = TrtOptions.from_values(backend="tensorrt_rtx", engine_cache=str(tmp_path / "engines"))
    kw = dict(onnx="mlp.onnx", shapes={"input": (2, 64)}, optimization_level=0)
    plain = get_engine(EngineSpec.create(WHERE, models, **kw), options, backend=rtx)
    streamed = get_engine(EngineSpec.create(WHERE, models, **kw, weight_streaming=True), options, backend=rtx)
    v = verdict(result(dict(plain.identity)), result(dict(streamed.identity), seed=1))
    assert v.status == "pass", v.message
    assert "weight_streaming false -> true" in v.config_changes
    assert 'engine.weight_streaming_budget null -> "auto"' in v.config_changes
