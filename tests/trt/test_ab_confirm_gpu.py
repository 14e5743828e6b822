"""--trt-ab-confirm on a real GPU: the runner's policy, the baseline file, git
and the interleaved measurement of two engines are real; the engines run
through FakeTensorRT (real CUDA kernels of a set length per layer), since
TensorRT-RTX does not run on the Hopper cards of our GPU machine. A "model"
file here holds its layer time in microseconds and the build step makes the
matching fake plan: the fake cannot parse ONNX. Run on the GPU machine:

    python -m pytest tests/trt/test_ab_confirm_gpu.py -p no:trtperf -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.relative.ab_confirm import AbConfirm
from pytest_trtperf.baselines.store import BaselineStore, dumps
from pytest_trtperf.core.config import MeasureOptions, Settings, TrtOptions
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.trt.api import engine_from_plan
from pytest_trtperf.workloads.tensorrt import make_workload
from pytest_trtperf.trt.spec import EngineSpec
from tests.gitrepo import commit_all, init

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(shutil.which("git") is None, reason="needs git")]

IO = [{"name": "input", "mode": "input", "dtype": "FLOAT", "shape": [-1, 64],
       "profiles": [[[1, 64], [4, 64], [8, 64]]]},
      {"name": "output", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]}]
SHAPES = {"input": (4, 64)}
TARGET = Target(id="test_m.py::test_model", nodeid="test_m.py::test_model", name=None)
OPTS = MeasureOptions(warmup_s=0.1, min_time_s=0.5, max_time_s=3.0, tolerance=0.05, ab_confirm=True)


def fake_builder(fake_backend: Any, fake_trt: Any) -> Any:
    def get_engine(spec: EngineSpec, options: Any, progress: Any = None) -> Any:
        us = float(Path(spec.onnx).read_text())
        return engine_from_plan(fake_backend, fake_trt.make_plan(IO, [("layer", us)]), spec.where, str(spec.onnx))
    return get_engine


def runner(tmp_path: Path, mode: str) -> Runner:
    s = Settings(baseline_mode=mode, baseline_dir=tmp_path / ".trtperf", rootdir=tmp_path, require_gpu=False,
                 json_path=None, report_path=None)
    return Runner(s, BaselineStore(s.baseline_dir))


def run(tmp_path: Path, spec: EngineSpec, get_engine: Any, mode: str, **kw: Any) -> Any:
    r = runner(tmp_path, mode)
    workload = make_workload(get_engine(spec, None), shapes=SHAPES)
    step = AbConfirm(runner=r, spec=spec, trt_options=TrtOptions(), get_engine=get_engine,
                     make_workload=lambda h: make_workload(h, shapes=SHAPES))
    return r, r.run(workload, TARGET, OPTS, regression_check=step if mode == "compare" else None)


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, Any]:
    r = init(tmp_path / "repo")
    (r / "models").mkdir()
    (r / "models" / "m.onnx").write_text("100")
    c1 = commit_all(r, "model v1: 100 us")
    return dict(root=r, c1=c1, spec=EngineSpec.create(TARGET.nodeid, r, onnx="models/m.onnx", shapes=SHAPES))


def write_baseline(tmp_path: Path, repo: dict[str, Any], get_engine: Any, scale: float = 1.0) -> None:
    r, result = run(tmp_path, repo["spec"], get_engine, "update")
    (path,) = r.store.write([result], timestamp="2026-11-29T00:00:00+00:00", git_commit=repo["c1"])
    if scale != 1.0:  # a baseline taken on a faster day
        doc = json.loads(path.read_text())
        entry = doc["results"][TARGET.id]
        entry["distribution"]["quantiles_ms"] = [q * scale for q in entry["distribution"]["quantiles_ms"]]
        for k in ("median", "mean", "min", "max", "p90", "p95", "p99", "stdev"):
            entry["latency_ms"][k] *= scale
        entry["latency_ms"]["median_ci"] = [x * scale for x in entry["latency_ms"]["median_ci"]]
        entry["throughput"] /= scale  # every figure of the run, or the loader refuses the edited entry
        for row in entry["history"]:  # the gate compares with the centre of the recorded runs
            for k in ("median", "mean", "p90", "p95", "p99"):
                row[k] *= scale
            row["throughput"] /= scale
        path.write_text(dumps(doc))


def test_a_slower_model_is_confirmed_against_the_baselines_engine(tmp_path: Path, repo: dict[str, Any],
                                                                   fake_backend: Any, fake_trt: Any) -> None:
    get_engine = fake_builder(fake_backend, fake_trt)
    write_baseline(tmp_path, repo, get_engine)
    (repo["root"] / "models" / "m.onnx").write_text("130")
    commit_all(repo["root"], "model v2: 130 us")
    _, result = run(tmp_path, repo["spec"], get_engine, "compare")
    v, rel = result.verdict, result.relative
    assert v.status == "regression" and rel is not None and rel.origin == "ab_confirm", v.message
    assert rel.commit == repo["c1"] and 1.2 < rel.ratio < 1.4 and rel.ci[0] > 1.05, rel
    assert "A/B against the model at commit" in v.message and "regressed +" in v.message
    assert rel.a.kind == rel.b.kind == "tensorrt" and rel.pairs >= 10


def test_a_baseline_from_a_faster_day_is_not_confirmed(tmp_path: Path, repo: dict[str, Any],
                                                       fake_backend: Any, fake_trt: Any) -> None:
    get_engine = fake_builder(fake_backend, fake_trt)
    write_baseline(tmp_path, repo, get_engine, scale=0.7)
    _, result = run(tmp_path, repo["spec"], get_engine, "compare")  # the same model as the baseline's
    v, rel = result.verdict, result.relative
    assert v.status == "pass" and rel is not None and abs(rel.ratio - 1.0) < 0.03, v.message
    assert "(the model file is unchanged since then)" in v.message
    assert "which the paired measurement does not confirm" in v.message
