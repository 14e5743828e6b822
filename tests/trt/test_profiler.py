"""Per-layer profile rows from IProfiler reports and the inspector's JSON."""

from __future__ import annotations

from pytest_trtperf.trt.profiler import layer_details, make_profiler, summarize


def test_profiler_collects_in_execution_order(fake_trt) -> None:
    prof = make_profiler(fake_trt)
    assert isinstance(prof, fake_trt.IProfiler)
    for _ in range(3):
        for name, ms in (("conv1", 0.2), ("relu1", 0.05), ("fc", 0.1)):
            prof.report_layer_time(name, ms)
    prof.report_layer_time("conv1", 0.8)  # one outlier: the median ignores it
    rows = summarize(prof.order, prof.times)
    assert [r["name"] for r in rows] == ["conv1", "relu1", "fc"]
    assert rows[0]["calls"] == 4 and abs(rows[0]["ms"] - 0.2) < 1e-9
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-9


def test_inspector_details_join_by_name() -> None:
    inspector = {"Layers": [{"Name": "conv1", "LayerType": "CaskConvolution", "TacticName": "sm90_xmma"}, "bogus"]}
    rows = summarize(["conv1", "fc"], {"conv1": [0.3], "fc": [0.1]}, inspector)
    assert rows[0]["type"] == "CaskConvolution" and rows[0]["tactic"] == "sm90_xmma"
    assert "type" not in rows[1]
    assert layer_details({"Layers": ["conv1", "fc"]}) == {}  # layer_names_only verbosity
    assert layer_details(None) == {}


def test_real_profiler_base_accepts_our_subclass(rtx) -> None:
    prof = make_profiler(rtx.module)
    assert isinstance(prof, rtx.module.IProfiler)
    prof.report_layer_time("x", 1.5)
    assert prof.times["x"] == [1.5]
