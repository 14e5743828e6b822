"""Regression attribution: the layers that added time, in the function and in
the gate's failure message."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pytest_trtperf.core import stats
from pytest_trtperf.core.attribution import (LayerDelta, attribution_text, compare_layers, describe, layer_times,
                                        most_changed, top_added)
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.fingerprint import host_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.core.results import Result

BASE = [{"name": "conv1", "ms": 1.0}, {"name": "gemm", "ms": 4.0}, {"name": "softmax", "ms": 0.5},
        {"name": "old_fused", "ms": 0.3}]
CUR = [{"name": "conv1", "ms": 1.05}, {"name": "gemm", "ms": 6.0}, {"name": "softmax", "ms": 0.4},
       {"name": "new_split", "ms": 0.9, "type": "Reformat"}]


def test_top_added_orders_by_added_time_and_keeps_only_slower() -> None:
    top = top_added(BASE, CUR)
    assert [d.name for d in top] == ["gemm", "new_split", "conv1"]
    gemm = top[0]
    assert (gemm.baseline_ms, gemm.current_ms) == (4.0, 6.0)
    assert math.isclose(gemm.delta_ms, 2.0) and math.isclose(gemm.change or 0, 0.5)
    assert top[1].baseline_ms is None and top[1].change is None


def test_top_n_limit_and_empty_sides() -> None:
    many_b = [{"name": f"l{i}", "ms": 1.0} for i in range(10)]
    many_c = [{"name": f"l{i}", "ms": 1.0 + i / 10} for i in range(10)]
    assert [d.name for d in top_added(many_b, many_c)] == ["l9", "l8", "l7", "l6", "l5"]
    assert top_added([], CUR) == [] and top_added(BASE, []) == []
    assert attribution_text([], CUR) == ""


def test_repeated_names_are_summed_and_bad_entries_skipped() -> None:
    times = layer_times([{"name": "a", "ms": 1}, {"name": "a", "ms": 2}, {"name": "b"}, {"ms": 3},
                         {"name": "c", "ms": "nan"}, {"name": "d", "ms": "x"}, {"name": "e", "ms": 0.5}])
    assert times == {"a": 3.0, "e": 0.5}


def test_compare_layers_includes_gone_layers_and_most_changed_either_way() -> None:
    all_ = compare_layers(BASE, CUR)
    assert {d.name for d in all_} == {"conv1", "gemm", "softmax", "old_fused", "new_split"}
    gone = next(d for d in all_ if d.name == "old_fused")
    assert gone.current_ms is None and math.isclose(gone.delta_ms, -0.3)
    assert [d.name for d in most_changed(BASE, CUR, 2)] == ["gemm", "new_split"]


def test_describe_and_text() -> None:
    assert describe(LayerDelta("gemm", 4.0, 6.0)) == "gemm: 4.000 ms -> 6.000 ms (+2.000 ms, +50.0%)"
    assert describe(LayerDelta("x", None, 1.0)).endswith("(+1.000 ms, new)")
    assert len(describe(LayerDelta("n" * 500 + "\n", 1.0, 2.0)).split(":")[0]) == 80
    text = attribution_text(BASE, CUR)
    lines = text.splitlines()
    assert lines[1].strip() == "layers that added the most time:"
    assert lines[2].strip().startswith("gemm: 4.000 ms -> 6.000 ms")
    assert len(lines) == 5


def _result(samples_ms: np.ndarray, layers: list[dict]) -> Result:
    fp = host_fingerprint()
    return Result(id="t.py::test_x", nodeid="t.py::test_x", name=None, kind="host", mode="latency",
                  latency=stats.summarize(samples_ms / 1000.0, 0.99), throughput=1000.0 / float(np.median(samples_ms)),
                  distribution=stats.compress(samples_ms / 1000.0), stop_reason="test", warmup_iterations=1,
                  warmup_s=0.1, measured_s=1.0, config_hash="h", identity={"kind": "host"}, fingerprint=fp.to_dict(),
                  device_class=fp.device_class, layers=tuple(layers))


def _judge(base: Result, cur: Result):
    entry = BaselineEntry.from_result(base, timestamp="2024-01-01T00:00:00+00:00", git_commit=None)
    return judge(cur, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                 baseline_path="b.json")


def test_gate_regression_message_lists_layers() -> None:
    rng = np.random.default_rng(0)
    base = _result(rng.normal(10.0, 0.1, 2000), BASE)
    cur = _result(rng.normal(12.0, 0.1, 2000), CUR)
    v = _judge(base, cur)
    assert v.status == "regression"
    assert "layers that added the most time:" in v.message
    assert "gemm: 4.000 ms -> 6.000 ms (+2.000 ms, +50.0%)" in v.message
    # No profile on one side: the message stays as it was.
    v2 = _judge(base, dataclasses.replace(cur, layers=()))
    assert v2.status == "regression" and "layers" not in v2.message
    # Passing results get no attribution even with profiles.
    v3 = _judge(base, _result(rng.normal(10.0, 0.1, 2000), CUR))
    assert v3.status == "pass" and "layers" not in v3.message
