"""The verdict for one result against its baseline entry (real samples)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pytest_trtperf import stats
from pytest_trtperf.baseline import BaselineEntry
from pytest_trtperf.fingerprint import gpu_fingerprint
from pytest_trtperf.gate import judge
from pytest_trtperf.results import DeviceState, Result


def result(scale: float = 1.0, *, clocks: str = "off", sm: float | None = 1545.0, driver: str = "580.159",
           config: str = "cfg", seed: int = 0) -> Result:
    x = np.random.default_rng(seed).normal(1.0, 0.01, 3000) * scale * 1e-3
    fp = gpu_fingerprint(kind="cuda", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                         trt_version=None, clocks=clocks, info={"driver": driver})
    return Result(id="t.py::test_x", nodeid="t.py::test_x", name=None, kind="cuda", mode="latency",
                  latency=stats.summarize(x), throughput=1 / x.mean(), distribution=stats.compress(x),
                  stop_reason="converged", warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash=config,
                  identity={}, fingerprint=fp.to_dict(), device_class=fp.device_class,
                  device_state=DeviceState(kind="cuda", sm_clock_mhz_median=sm))


def verdict(base: Result, cur: Result, **kw: object):  # type: ignore[no-untyped-def]
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None)
    args = dict(baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                baseline_path="b.json")
    args.update(kw)
    return judge(cur, entry, **args)  # type: ignore[arg-type]


def test_regression_message_names_values_ci_and_a_clock_drop() -> None:
    v = verdict(result(), result(1.2, sm=1245.0, seed=1))
    assert v.status == "regression" and v.ci[0] > 0.15
    assert "median latency regressed +20." in v.message and "tolerance 5.0%" in v.message
    assert "SM clock 1245 MHz vs 1545 MHz in the baseline (-19.4%)" in v.message


def test_same_clock_says_nothing_about_clocks() -> None:
    assert "SM clock" not in verdict(result(), result(1.2, seed=1)).message


@pytest.mark.parametrize("change,why", [
    (dict(clocks="sm=1980"), "clocks 'off' != 'sm=1980'"),
    (dict(config="other"), "configuration changed"),
])
def test_incomparable_baselines_are_never_compared(change: dict, why: str) -> None:
    v = verdict(result(), result(1.5, seed=1, **change))
    assert v.status == "incomparable" and why in v.message and v.change is None


def test_other_mode_or_kind_is_incomparable() -> None:
    assert verdict(result(), dataclasses.replace(result(seed=1), mode="throughput")).status == "incomparable"


def test_driver_change_is_compared_and_reported() -> None:
    v = verdict(result(), result(1.01, seed=1, driver="590.1"))
    assert v.status == "pass" and "environment changed: driver 580.159 -> 590.1" in v.message


def test_throughput_metric_reports_throughputs() -> None:
    v = verdict(result(), result(1.2, seed=1), metric="throughput")
    assert v.status == "regression" and v.baseline_value > v.current_value
