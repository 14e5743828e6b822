"""The verdict for one result against its baseline entry (real samples)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pytest_trtperf import stats
from pytest_trtperf.baseline import BaselineEntry
from pytest_trtperf.fingerprint import gpu_fingerprint
from pytest_trtperf.gate import judge
from pytest_trtperf.results import DeviceState, Result, Verdict


def result(scale: float = 1.0, *, clocks: str = "off", sm: float | None = 1545.0, driver: str = "580.159",
           config: str = "cfg", seed: int = 0, flags: tuple[str, ...] = ()) -> Result:
    x = np.random.default_rng(seed).normal(1.0, 0.01, 3000) * scale * 1e-3
    fp = gpu_fingerprint(kind="cuda", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                         trt_version=None, clocks=clocks, info={"driver": driver})
    return Result(id="t.py::test_x", nodeid="t.py::test_x", name=None, kind="cuda", mode="latency",
                  latency=stats.summarize(x), throughput=1 / x.mean(), distribution=stats.compress(x),
                  stop_reason="converged", warmup_iterations=5, warmup_s=0.2, measured_s=1.0, config_hash=config,
                  identity={}, fingerprint=fp.to_dict(), device_class=fp.device_class,
                  device_state=DeviceState(kind="cuda", sm_clock_mhz_median=sm, flags=flags))


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


# -- flags that bear on the verdict (device states as data) ------------------

def test_a_flag_both_windows_carry_is_not_shown_but_stays_raw() -> None:
    """The H100 case of issue 10: every compute-bound window, baseline and
    compare alike, at its power cap."""
    base = result(sm=1410.0, flags=("power_throttle",))
    cur = result(1.01, sm=1400.0, seed=1, flags=("power_throttle",))
    v = verdict(base, cur)
    assert v.status == "pass" and v.flags == ()
    assert "power_throttle" not in v.message and "SM clock" not in v.message
    assert cur.device_state.flags == ("power_throttle",)


def test_a_new_throttle_flag_and_a_clock_drop_are_shown_and_explained() -> None:
    base = result(sm=1545.0)
    cur = result(1.2, sm=1245.0, seed=1, flags=("thermal_throttle", "power_throttle"))
    v = verdict(base, cur)
    assert v.status == "regression"
    assert v.flags == ("SM clock -19.4%", "power_throttle (new)", "thermal_throttle (new)")
    assert "GPU state vs the baseline: power_throttle (new), thermal_throttle (new)" in v.message


def test_a_flag_only_the_baseline_had_is_shown() -> None:
    v = verdict(result(flags=("power_throttle",)), result(0.9, seed=1))
    assert v.status == "improved" and v.flags == ("power_throttle (baseline only)",)


@pytest.mark.parametrize("sm, shown", [(1500.0, False), (1590.0, False), (1495.0, True), (1595.0, True)])
def test_the_clock_flag_needs_more_than_three_percent(sm: float, shown: bool) -> None:
    v = verdict(result(sm=1545.0), result(seed=1, sm=sm))
    assert any(f.startswith("SM clock") for f in v.flags) is shown
    assert ("SM clock" in v.message) is shown


def test_busy_is_always_shown_and_nothing_else_without_baseline_numbers() -> None:
    assert verdict(result(flags=("busy",)), result(seed=1, flags=("busy",))).flags == ("busy",)
    assert verdict(result(flags=("busy",)), result(seed=1)).flags == ("busy (baseline only)",)
    cur = result(seed=1, flags=("busy", "power_throttle"), sm=1000.0)
    missing = judge(cur, None, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                    baseline_path="b.json")
    assert missing.status == "missing" and missing.flags == ("busy",)
    other = verdict(result(), result(seed=1, config="other", flags=("power_throttle",), sm=1000.0))
    assert other.status == "incomparable" and other.flags == ()
    assert verdict(result(), cur, baseline_mode="update").flags == ("busy",)


def test_verdict_flags_survive_json() -> None:
    v = verdict(result(), result(1.2, sm=1245.0, seed=1, flags=("power_throttle",)))
    back = Verdict.from_dict(json.loads(json.dumps(v.to_dict())))
    assert back == v and isinstance(back.flags, tuple)
