"""A clock that does not advance cannot hang the run (issue 25 item 3).

freezegun's ``@freeze_time`` (and any conftest that patches
``time.perf_counter``) hung the warm-up loop forever: the plugin's timers are
bound when the plugin loads, as pytest binds its own (``_pytest.timing``), and
warm-up and measurement are also bounded by iterations. Real sessions, real
freezegun.
"""

from __future__ import annotations

import json

import pytest

from helpers import FAST

freezegun = pytest.importorskip("freezegun")

WORK = "lambda: sum(range(2000))"

FROZEN = f'''
from freezegun import freeze_time


@freeze_time("2026-01-01 12:00:00")
def test_frozen(trt_bench):
    trt_bench.measure({WORK}, name="frozen")


def test_free(trt_bench):
    trt_bench.measure({WORK}, name="free")


@freeze_time("2026-01-01 12:00:00", tick=True)
def test_ticking(trt_bench):
    trt_bench.measure({WORK}, name="ticking")
'''

STOPPED_CLOCK = """
import time

import pytest


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch):
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 10**12)
    monkeypatch.setattr(time, "monotonic", lambda: 1000.0)
"""


def _medians(pytester: pytest.Pytester, out: str) -> dict[str, float]:
    doc = json.loads((pytester.path / out).read_text())
    return {r["name"]: r["latency_ms"]["median"] for r in doc["results"]}


def test_freeze_time_measures_normally(pytester: pytest.Pytester) -> None:
    """Frozen, ticking and free clocks time the same work alike: within a
    factor derived from this run's own free measurement's spread (generous:
    three processes' worth of load on a shared 2-core machine)."""
    pytester.makepyfile(test_frozen=FROZEN)
    r = pytester.runpytest_subprocess(*FAST, "--trt-baseline=off", "--trt-json=out.json", timeout=120)
    assert r.ret == 0, r.stdout.str()
    r.assert_outcomes(passed=3)
    m = _medians(pytester, "out.json")
    assert all(v > 0 for v in m.values()), m
    assert 0.2 < m["frozen"] / m["free"] < 5 and 0.2 < m["ticking"] / m["free"] < 5, m


def test_a_conftest_that_stops_time_does_not_hang(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STOPPED_CLOCK)
    pytester.makepyfile(test_patched="def test_patched(trt_bench):\n"
                                     f"    trt_bench.measure({WORK}, name='patched')\n")
    r = pytester.runpytest_subprocess(*FAST, "--trt-baseline=off", "--trt-json=out.json", timeout=120)
    assert r.ret == 0, r.stdout.str()
    assert _medians(pytester, "out.json")["patched"] > 0


def test_warm_up_is_bounded_by_iterations_too() -> None:
    """A warm-up of an hour still ends after a measurement's worth of
    iterations (``max_iterations``): its count does not depend on a clock."""
    from pytest_trtperf.core.config import MeasureSettings
    from pytest_trtperf.core.measure import warm_up
    from pytest_trtperf.core.timers import REAL
    from pytest_trtperf.workloads.host import HostWorkload

    calls = []
    s = MeasureSettings(warmup_s=3600.0, min_warmup_iterations=5, max_iterations=200)
    t0 = REAL.perf_counter()
    done, _, _ = warm_up(HostWorkload(lambda: calls.append(1)), s)
    assert 200 <= done == len(calls) < 400 and REAL.perf_counter() - t0 < 60


def test_the_timers_are_the_real_ones_under_freeze_time() -> None:
    import time

    from pytest_trtperf.core.timers import REAL

    with freezegun.freeze_time("2026-01-01"):
        assert time.perf_counter() == time.perf_counter()
        a = REAL.perf_counter()
        REAL.sleep(0.01)
        assert REAL.perf_counter() > a


@pytest.mark.mostly_waits  # a sleeping service
def test_serve_and_pedantic_keep_time_under_a_stopped_clock(pytester: pytest.Pytester) -> None:
    """The load driver, its rate search deadline and pedantic's rounds use the
    plugin's bound clocks too: with every clock of ``time`` stopped, a serve
    run still spaces its arrivals and ends, and its latencies are real."""
    pytester.makeconftest(STOPPED_CLOCK)
    pytester.makepyfile(test_patched="""
import time as t


def test_serve(trt_bench):
    r = trt_bench.serve(lambda: t.sleep(0.002), rate=50, duration=0.5, slo="p50<1s", search_time=1, name="served")


def test_pedantic(trt_bench):
    assert trt_bench.pedantic(lambda: sum(range(2000)), rounds=7) == sum(range(2000))
""")
    r = pytester.runpytest_subprocess(*FAST, "--trt-baseline=off", "--trt-json=out.json", timeout=120)
    r.assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "out.json").read_text())
    served = [x for x in doc["results"] if x["name"] == "served"]
    assert len(served) == 1, doc["results"]
    # A request of a 2 ms sleep takes at least 2 ms from its scheduled arrival.
    assert served[0]["latency_ms"]["median"] >= 1.9
    # The search's 1 s budget ended it: each run lasts 0.6 s or more, so at most 2 runs start within the budget
    # after the one at the stated rate (and one more late start); on a stopped clock it would run on to its
    # bracket, 8 runs or more (p50 < 1 s is met far beyond this service's 500/s).
    assert served[0]["serve"]["search"]["steps"] <= 4, served[0]["serve"]["search"]
