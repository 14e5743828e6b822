"""The verdict for one result against its baseline entry (real samples)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pytest_trtperf.core import stats
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.fingerprint import gpu_fingerprint
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.core.results import DeviceState, Result, Verdict


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


# -- issue 11: between-run noise, build vs method changes, cause first -------

from pytest_trtperf.core.fingerprint import host_fingerprint  # noqa: E402
from pytest_trtperf.core.identity import config_hash as hash_of  # noqa: E402
from pytest_trtperf.core.results import Distribution  # noqa: E402


def host_result(scale: float = 1.0, *, seed: int = 0, identity: dict | None = None, kind: str = "host") -> Result:
    x = np.random.default_rng(seed).normal(1.0, 0.01, 3000) * scale * 5e-4
    fp = host_fingerprint() if kind == "host" else gpu_fingerprint(
        kind=kind, gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", trt_version="10.13.0", clocks="off",
        info={})
    ident = identity if identity is not None else {"kind": kind, "timer": "perf_counter"}
    return Result(id="t.py::test_h", nodeid="t.py::test_h", name=None, kind=kind, mode="latency",
                  latency=stats.summarize(x), throughput=1 / x.mean(), distribution=stats.compress(x),
                  stop_reason="converged", warmup_iterations=5, warmup_s=0.2, measured_s=1.0,
                  config_hash=hash_of(ident), identity=ident, fingerprint=fp.to_dict(),
                  device_class=fp.device_class, device_state=DeviceState(kind=kind))


def host_verdict(base: Result, cur: Result, history: tuple = (), **kw: object) -> Verdict:
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None, history=history)
    args = dict(baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99, baseline_path="b.json")
    args.update(kw)
    return judge(cur, entry, **args)  # type: ignore[arg-type]


def test_host_change_within_the_between_run_noise_passes_and_says_so() -> None:
    v = host_verdict(host_result(), host_result(1.08, seed=1))
    assert v.status == "pass" and v.decided_by == "run_noise"
    assert v.message.startswith("median latency +8.")
    assert "within between-run noise (tolerance 5.0%, between-run noise 13.6% (sd 3.5%, host prior, 1 run))" \
        in v.message
    assert v.run_noise == {"sd": 0.035, "source": "prior", "runs": 1, "family": "host",
                           "allowance": pytest.approx(0.136, abs=0.001)}
    # The same change without the term (--trt-run-noise=0): the old rule fails it.
    old = host_verdict(host_result(), host_result(1.08, seed=1), run_noise=0.0)
    assert old.status == "regression" and old.decided_by == "tolerance"


def test_a_large_host_slowdown_still_fails_with_the_cause_first() -> None:
    v = host_verdict(host_result(), host_result(1.3, seed=1))
    assert v.status == "regression" and v.failed
    assert v.message.startswith("median latency regressed +30.")
    assert "between-run noise decided" in v.message and "t.py::test_h" not in v.message
    assert v.ci[0] > 0.05 and v.ci[1] - v.ci[0] > 0.2  # widened by the between-run term


def test_the_centre_is_the_mean_of_the_history_and_a_quiet_history_tightens_the_bar() -> None:
    base = host_result()
    runs = tuple({"timestamp": f"T{i}", "git_commit": None, "machine": "m", "n": 3000, "throughput": 2000.0,
                  "flags": [], "median": 0.5 * f, "mean": 0.5 * f, "p90": 0.5 * f, "p95": 0.5 * f, "p99": 0.5 * f}
                 for i, f in enumerate((1.002, 0.998, 1.001, 0.999, 1.0, 1.001, 0.999, 1.0, 1.0)))
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None, history=runs)
    assert len(entry.runs()) == 10
    v = judge(host_result(1.08, seed=1), entry, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    # Ten runs that agree: the between-run bar falls below the tolerance, so +8% fails.
    assert v.status == "regression" and v.decided_by == "tolerance"
    assert v.run_noise["source"] == "history" and v.run_noise["runs"] == 10
    assert v.baseline_value == pytest.approx(0.5 * np.exp(np.mean(np.log([r["median"] / 0.5 for r in runs]
                                                                          + [base.latency.median / 0.5]))))


def test_a_busy_run_in_the_history_is_left_out_of_the_centre() -> None:
    base = host_result()
    spike = {"timestamp": "T0", "git_commit": None, "machine": "m", "n": 3000, "throughput": 1000.0,
             "flags": ["host_busy"], "median": 0.8, "mean": 0.8, "p90": 0.8, "p95": 0.8, "p99": 0.8}
    entry = BaselineEntry.from_result(base, timestamp="T", git_commit=None, history=(spike,))
    assert entry.run_values("median") == [pytest.approx(base.latency.median)]


def test_a_busy_update_joins_the_history_instead_of_restarting_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A run 50% slower restarts the history when quiet (a new level), never
    when busy: it joins it, and the centre stays the quiet run."""
    from pytest_trtperf.baselines.store import BaselineStore

    quiet, slow = host_result(), host_result(1.5, seed=1)
    busy = dataclasses.replace(slow, device_state=DeviceState(kind="host", flags=("host_busy",), cpu_delayed=0.6))
    for i, (later, rows) in enumerate(((busy, 2), (slow, 1))):
        store = BaselineStore(tmp_path / str(i))
        store.write([quiet], timestamp="T0", git_commit=None)
        notes: list[str] = []
        store.write([later], timestamp="T1", git_commit=None, notes=notes)
        entry = store.lookup(quiet.device_class, quiet.id)
        assert entry is not None and len(entry.runs()) == rows, notes
        if later is busy:
            assert entry.run_values("median") == [pytest.approx(quiet.latency.median)]
            assert notes == ["t.py::test_h: measured while the host was busy (the measuring thread waited for a CPU "
                             "60% of the window; flags host_busy); the entry records it and the gate's centre "
                             "leaves the run out once quiet runs exist"]
        else:
            assert "its history restarts with this run" in notes[0]


def trt_identity(**build: object) -> dict:
    config = {"precision": ["fp16"], "optimization_level": 3, "builder_flags": [], "profile": {"x": [[1, 8]] * 3}}
    config.update(build)
    return {"kind": "tensorrt", "mode": "latency", "shapes": {"x": [1, 8]}, "cuda_graph": True,
            "engine": {"backend": "tensorrt", "version": "10.13.0", "build": hash_of({"b": config}),
                       "build_config": config, "onnx_sha256": "aa", "gpu": "H100", "source": "m.onnx"}}


def test_a_build_configuration_change_is_compared_and_named() -> None:
    base = host_result(identity=trt_identity(), kind="tensorrt")
    cur = host_result(1.3, seed=1, identity=trt_identity(precision=["fp32"]), kind="tensorrt")
    assert base.config_hash != cur.config_hash
    v = host_verdict(base, cur)
    assert v.status == "regression"
    assert v.config_changes == ('precision ["fp16"] -> ["fp32"]',)
    assert 'build configuration changed: precision ["fp16"] -> ["fp32"]' in v.message


def test_a_measurement_method_change_is_incomparable_and_named() -> None:
    base = host_result(identity=trt_identity(), kind="tensorrt")
    cur_ident = {**trt_identity(), "shapes": {"x": [4, 8]}}
    v = host_verdict(base, host_result(seed=1, identity=cur_ident, kind="tensorrt"))
    assert v.status == "incomparable"
    assert v.message.startswith("baseline not comparable: measurement method changed: shapes")


def test_a_schema_1_entry_without_its_configuration_falls_back_to_the_hash() -> None:
    base = host_result(identity=trt_identity(), kind="tensorrt")
    entry = dataclasses.replace(BaselineEntry.from_result(base, timestamp="T", git_commit=None), config=None)
    cur = host_result(seed=1, identity=trt_identity(precision=["fp32"]), kind="tensorrt")
    v = judge(cur, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
              baseline_path="b.json")
    assert v.status == "incomparable" and "predates recorded configurations" in v.message


@pytest.mark.parametrize("bad", [
    dict(distribution=Distribution(n=3000, quantiles_ms=(float("nan"),) * 101)),
    dict(distribution=Distribution(n=3000, quantiles_ms=(0.0,) * 101)),
    dict(distribution=Distribution(n=3000, quantiles_ms=(-1.0,) * 101)),
])
def test_non_finite_or_zero_baselines_are_never_a_pass(bad: dict) -> None:
    """Defence in depth behind the loader (issue 16): a 4.6x slower run must
    not pass because the baseline's numbers were NaN or zero."""
    entry = dataclasses.replace(BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None), **bad)
    v = judge(host_result(4.6, seed=1), entry, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status == "unreliable" and v.decided_by == "invalid_data" and v.failed
    assert v.message.startswith("median latency: cannot be judged")


def test_a_nan_history_value_is_never_a_pass() -> None:
    row = {"timestamp": "T0", "git_commit": None, "machine": "m", "n": 3000, "throughput": 1000.0, "flags": [],
           "median": float("nan"), "mean": 0.5, "p90": 0.5, "p95": 0.5, "p99": 0.5}
    entry = BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None, history=(row,))
    v = judge(host_result(4.6, seed=1), entry, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status == "unreliable" and v.failed


def test_an_entry_whose_latest_run_disagrees_with_its_history_is_never_a_pass() -> None:
    """Defence in depth behind the loader's agreement check (issue 16): only
    ``latency_ms.median`` set to 1/1000 scaled the change by latest/centre, and
    a 3x slower run "improved" by 99.7%. Built in memory, past the loader."""
    entry = BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None)
    edited = dataclasses.replace(entry, latency=dataclasses.replace(entry.latency, median=entry.latency.median / 1000))
    v = judge(host_result(3.0, seed=1), edited, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status == "unreliable" and v.decided_by == "invalid_data" and v.failed
    assert "latest run" in v.message and "centre of its runs" in v.message
    # Older runs inflated to hide a slowdown: the same.
    row = dict(entry.runs()[0], median=entry.latency.median * 1000)
    inflated = BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None, history=(row,) * 9)
    v = judge(host_result(3.0, seed=1), inflated, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status == "unreliable" and v.failed
    # A history within the tolerance is judged as before.
    near = BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None,
                                     history=(dict(entry.runs()[0], median=entry.latency.median * 1.03),))
    v = judge(host_result(3.0, seed=1), near, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status == "regression"


@pytest.mark.parametrize("q", [1e300, 1e-300])
def test_extreme_finite_quantiles_never_raise_and_never_pass(q: float) -> None:
    """Quantiles of 1e300 (finite, > 0) ended in ``math domain error`` from
    ``noise.widen``; now they are one verdict that fails."""
    entry = BaselineEntry.from_result(host_result(), timestamp="T", git_commit=None)
    edited = dataclasses.replace(entry, distribution=Distribution(n=3000, quantiles_ms=(q,) * 101))
    v = judge(host_result(3.0, seed=1), edited, baseline_mode="compare", metric="median", tolerance=0.05,
              confidence=0.99, baseline_path="b.json")
    assert v.status in ("unreliable", "regression") and v.failed, v
    assert v.status != "pass"
