"""``--trt-export-dir`` for a TensorRT result on a real GPU, FakeTensorRT at the
execution boundary: the engine inspector JSON and the per-layer profile in
trtexec's layouts, for an ordinary result and for both sides of a relative
gate. Run on the GPU machine (``-m gpu``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.report import exports
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings
from pytest_trtperf.core.measure import measure
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.trt.api import engine_from_plan
from pytest_trtperf.workloads.tensorrt import make_workload

pytestmark = pytest.mark.gpu

IO = [
    {"name": "images", "mode": "input", "dtype": "FLOAT", "shape": [-1, 3, 16, 16],
     "profiles": [[[1, 3, 16, 16], [4, 3, 16, 16], [8, 3, 16, 16]]]},
    {"name": "logits", "mode": "output", "dtype": "FLOAT", "shape": [-1, 10]},
]
LAYERS = [("conv", 100.0), ("fc", 50.0)]  # microseconds at batch 1


def test_tensorrt_result_exports_inspector_profile_and_samples(fake_backend, fake_trt, tmp_path: Path) -> None:
    from tests.helpers import make_result

    handle = engine_from_plan(fake_backend, fake_trt.make_plan(IO, LAYERS), "test_exports_gpu.py", "fake.plan")
    w = make_workload(handle, shapes={"images": (1, 3, 16, 16)}, profile_layers=True, keep_layer_info=True)
    w.setup()
    try:
        m = measure(w, MeasureSettings(warmup_s=0.02, min_time_s=0.05, max_time_s=0.2))
    finally:
        w.teardown()  # the per-layer pass runs here, after measuring
    r = make_result("test_exports_gpu.py::test_trt", "regression", 0.3, kind="tensorrt")
    written = exports.export_result(tmp_path, r, m, w)
    names = exports.file_names(r.id)
    own = {kind: name for kind, name in names.items() if not kind.startswith(("a.", "b."))}  # no sides here
    assert sorted(p.name for p in written) == sorted(own.values())
    info = json.loads((tmp_path / names["layer_info"]).read_text())
    assert [x["Name"] for x in info["Layers"]] == ["conv", "fc"] and "Bindings" in info
    profile = json.loads((tmp_path / names["profile"]).read_text())
    assert profile[0] == {"count": w.profile_iterations}
    conv, fc = profile[1:]
    assert (conv["name"], fc["name"]) == ("conv", "fc")
    assert conv["medianMs"] > fc["medianMs"] > 0.03  # 100 us and 50 us layers
    assert abs(conv["percentage"] + fc["percentage"] - 100.0) < 1e-6
    samples = json.loads((tmp_path / names["samples"]).read_text())
    assert samples["iterations"] == m.iterations and samples["kind"] == "tensorrt"


def test_both_sides_of_a_tensorrt_relative_gate_are_exported(fake_backend, fake_trt, tmp_path: Path) -> None:
    """What ``trt_bench.compare(engine_a, engine_b)`` exports: per side the
    inspector JSON, the per-layer profile and every measured iteration."""
    slow = engine_from_plan(fake_backend, fake_trt.make_plan(IO, LAYERS), "test_exports_gpu.py", "slow.plan")
    fast = engine_from_plan(fake_backend, fake_trt.make_plan(IO, [("conv", 50.0), ("fc", 25.0)]),
                            "test_exports_gpu.py", "fast.plan")
    wa, wb = (make_workload(h, shapes={"images": (1, 3, 16, 16)}, profile_layers=True, keep_layer_info=True)
              for h in (slow, fast))
    s = Settings(baseline_mode="off", baseline_dir=tmp_path / "b", rootdir=tmp_path, require_gpu=True,
                 json_path=None, report_path=None)
    runner = Runner(s, BaselineStore(s.baseline_dir))
    r = run_relative(runner, wa, wb, Target(id="t.py::test_ab[x/y]", nodeid="t.py::test_ab[x/y]", name=None),
                     MeasureOptions(warmup_s=0.02, min_time_s=0.1, max_time_s=0.5),
                     Expectation.from_config("min_speedup", 1.5), labels=("slow.plan", "fast.plan"))
    assert r.relative is not None and runner.last_interleaved is not None
    (tmp_path / "out").mkdir()
    written = exports.export_interleaved(tmp_path / "out", r, runner.last_interleaved, (wa, wb))
    names = exports.file_names(r.id)
    assert sorted(p.name for p in written) == sorted(names[f"{side}.{kind}"] for side in "ab"
                                                     for kind in ("samples", "layer_info", "profile"))
    for side, w, first_layer_us in (("a", wa, 100.0), ("b", wb, 50.0)):
        info = json.loads((tmp_path / "out" / names[f"{side}.layer_info"]).read_text())
        assert [x["Name"] for x in info["Layers"]] == ["conv", "fc"]
        profile = json.loads((tmp_path / "out" / names[f"{side}.profile"]).read_text())
        assert profile[0] == {"count": w.profile_iterations}
        assert profile[1]["medianMs"] > 0.8 * first_layer_us / 1000
        samples = json.loads((tmp_path / "out" / names[f"{side}.samples"]).read_text())
        side_stats = getattr(r.relative, side)
        assert samples["kind"] == "tensorrt" and samples["label"] == side_stats.label
        assert samples["iterations"] == sum(samples["blocks"]) == side_stats.latency.n
        assert set(samples["series"]) >= {"latency", "gpu_compute"}
    index = exports.index(tmp_path / "out", [r.id])["results"]
    assert sorted(index[r.id]) == ["a.layer_info", "a.profile", "a.samples", "b.layer_info", "b.profile",
                                   "b.samples"]
