"""``--trt-export-dir`` for a TensorRT result on a real GPU, FakeTensorRT at the
execution boundary: the engine inspector JSON and the per-layer profile in
trtexec's layouts. Run on the GPU machine (``-m gpu``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_trtperf.report import exports
from pytest_trtperf.config import MeasureSettings
from pytest_trtperf.measure import measure
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
    r = make_result("test_exports_gpu.py::test_trt", kind="tensorrt")
    written = exports.export_result(tmp_path, r, m, w)
    names = exports.file_names(r.id)
    assert sorted(p.name for p in written) == sorted(names.values())
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
