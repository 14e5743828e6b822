"""The parts of latency under load: arrival schedules, percentile bounds, the
driver's accounting (no coordinated omission, nothing dropped) and the rate
search. The queueing-theory checks are in test_load_queueing.py."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.load.arrivals import check_trace, schedule, trace_rate
from pytest_trtperf.load.driver import drive
from pytest_trtperf.load.percentiles import lower_rank, percentile, upper_rank
from pytest_trtperf.load.point import rate_point
from pytest_trtperf.load.search import find_sustainable
from pytest_trtperf.core.serve_summary import RatePoint, Serve, Slo


# -- arrivals --------------------------------------------------------------------
def test_poisson_schedule_is_seeded_and_has_poisson_statistics() -> None:
    a, b = schedule("poisson", 500.0, 20.0, 3), schedule("poisson", 500.0, 20.0, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, schedule("poisson", 500.0, 20.0, 4))
    expected = 500.0 * 20.0
    assert abs(a.size - expected) < 4 * math.sqrt(expected)  # Poisson count: sd = sqrt(mean)
    gaps = np.diff(a)
    se = (1 / 500.0) / math.sqrt(gaps.size)
    assert abs(gaps.mean() - 1 / 500.0) < 4 * se
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05  # exponential: coefficient of variation 1
    assert a.min() >= 0 and a.max() < 20.0 and np.all(gaps >= 0)


def test_constant_and_trace_schedules() -> None:
    c = schedule("constant", 100.0, 1.0, 0)
    assert c.size == 100 and np.allclose(np.diff(c), 0.01)
    trace = check_trace([0.5, 0.6, 0.9, 1.0], "t")  # bursty: shape kept, time stretched
    assert trace_rate(trace) == pytest.approx(6.0)
    t = schedule(trace, 60.0, 2.0, 0)
    assert np.allclose(t[:4], [0.0, 0.01, 0.04, 0.05])
    assert t.size / 2.0 == pytest.approx(60.0, rel=0.2)


@pytest.mark.parametrize("bad", [[1.0], [0.2, 0.1], [0.0, float("nan")], [0.0, -1.0, 2.0], [1.0, 1.0], "abc"])
def test_bad_traces_are_one_line_errors(bad: object) -> None:
    with pytest.raises(UsageError) as e:
        check_trace(bad, "test_x.py::test_t")  # type: ignore[arg-type]  # bad input on purpose
    assert str(e.value).startswith("test_x.py::test_t: arrivals= trace") and "\n" not in str(e.value)


# -- percentile bounds -----------------------------------------------------------
def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


@pytest.mark.parametrize("n", [60, 300, 1000])
def test_ranks_are_the_binomial_order_statistics(n: int) -> None:
    q, conf = 0.99, 0.95
    up = upper_rank(n, q, conf)
    if up is None:
        assert 1 - q**n < conf
    else:
        assert _binom_cdf(up - 1, n, q) >= conf and (up == 1 or _binom_cdf(up - 2, n, q) < conf)
    lo = lower_rank(n, 0.5, conf)
    assert lo is not None
    assert 1 - _binom_cdf(lo - 1, n, 0.5) >= conf and 1 - _binom_cdf(lo, n, 0.5) < conf


def test_bounds_cover_the_true_percentile_at_their_confidence() -> None:
    rng = np.random.default_rng(0)
    true = math.log(100.0)  # p99 of Exp(1)
    reps, n = 1000, 800
    up = lo = 0
    for _ in range(reps):
        p = percentile(np.sort(rng.exponential(1.0, n)), "p99", 0.95)
        up += p.upper_ms >= true
        lo += p.lower_ms <= true
    sd = math.sqrt(0.95 * 0.05 / reps)
    assert up / reps > 0.95 - 3 * sd and lo / reps > 0.95 - 3 * sd


def test_too_few_requests_leave_the_upper_bound_open() -> None:
    p = percentile(np.sort(np.arange(100.0)), "p99", 0.99)
    assert p.upper_ms == math.inf and p.value_ms == 98.0


# -- the driver ------------------------------------------------------------------
def test_a_stalled_slot_delays_every_request_behind_it_and_the_wait_counts() -> None:
    """Coordinated omission check: one call stalls 200 ms; the requests that
    arrived meanwhile waited, and their latency (from their scheduled
    arrival) includes the wait; the driver never skips or reschedules them."""
    calls = [0]

    def service() -> None:
        calls[0] += 1
        time.sleep(0.2 if calls[0] == 5 else 0.001)

    arrivals = np.arange(40) * 0.01  # every 10 ms
    run = drive([service], arrivals, window_s=0.4, drain_s=2.0)
    assert run.n == 40 and run.finished.all() and calls[0] == 40
    stall_end = float(run.done_s[4])
    assert stall_end >= arrivals[4] + 0.2
    behind = (arrivals > arrivals[4]) & (arrivals < stall_end)
    assert behind.sum() >= 15
    # each waited at least until the stall ended: latency >= stall end - its arrival
    assert np.all(run.latency_s[behind] >= stall_end - arrivals[behind])
    # a start-to-done timer (coordinated omission) would have seen ~1 ms
    assert np.median(run.service_s[behind]) < 0.05 < np.median(run.latency_s[behind])
    assert run.queue_seen()[behind].max() >= 10


def test_requests_that_never_finish_count_as_infinitely_slow() -> None:
    arrivals = np.arange(20) * 0.005
    run = drive([lambda: time.sleep(0.3)], arrivals, window_s=0.1, drain_s=0.1)
    assert not run.finished.all() and np.isinf(run.latency_s[~run.finished]).all()
    point = rate_point(run, warmup_s=0.0, slo=Slo.parse("p99<20ms"), confidence=0.99)
    assert point.requests == 20 and point.unfinished >= 18
    assert point.value("p99") == math.inf and point.meets is False


def test_a_failing_request_stops_the_run_with_its_index() -> None:
    from pytest_trtperf.load.driver import RequestFailed

    calls = [0]

    def service() -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise ValueError("bad input")

    with pytest.raises(RequestFailed, match=r"request 2 raised ValueError: bad input"):
        drive([service], np.arange(10) * 0.001, window_s=0.01, drain_s=1.0)


# -- SLO and search --------------------------------------------------------------
def test_slo_text() -> None:
    assert Slo.parse("p99<20ms") == Slo("p99", 20.0)
    assert Slo.parse(" p95 <= 1.5 s ") == Slo("p95", 1500.0)
    assert Slo.parse("p50<250us").bound_ms == pytest.approx(0.25)
    for bad in ("p98<1ms", "p99>1ms", "p99<0ms", "p99<1", "99<1ms"):
        with pytest.raises(ValueError):
            Slo.parse(bad)


def _point(rate: float, meets: bool) -> RatePoint:
    return RatePoint(offered_rate=rate, achieved_rate=rate, requests=1000, unfinished=0, mean_ms=1.0,
                     percentiles={"p99": (1.0, 0.9, 1.1)}, confidence=0.99, queue_mean=0.0, queue_max=0,
                     lag_p99_ms=0.0, meets=meets)


@pytest.mark.parametrize("start", [10.0, 123.4, 1000.0])
def test_search_brackets_the_knee_within_its_precision(start: float) -> None:
    knee = 123.4
    tried: list[float] = []

    def try_rate(r: float) -> RatePoint:
        tried.append(r)
        return _point(r, r <= knee)

    search, points = find_sustainable(try_rate, start=start, precision=0.02, max_steps=30, lowest=0.01)
    lo, hi = search.bracket
    assert lo <= knee < hi and hi / lo - 1 <= 0.02
    assert search.steps == len(points) == len(tried) <= 30
    assert all((r <= knee) == p.meets for r, p in zip(tried, points, strict=False))


def test_search_is_bounded_and_says_why_it_stopped() -> None:
    s, _ = find_sustainable(lambda r: _point(r, r <= 123.4), start=1.0, precision=0.001, max_steps=5, lowest=0.01)
    assert s.steps == 5 and "every rate tried met the SLO (up to 16/s)" in s.stop_reason and s.failed_rate is None
    s, _ = find_sustainable(lambda r: _point(r, r <= 123.4), start=100.0, precision=0.001, max_steps=5, lowest=1)
    assert s.steps == 5 and "budget spent after 5 runs" in s.stop_reason and 100 <= s.sustainable_rate < 123.4
    clock = iter(range(100))
    s, _ = find_sustainable(lambda r: _point(r, r <= 123.4), start=1.0, precision=0.001, max_steps=50, lowest=0.01,
                            out_of_time=lambda: next(clock) >= 3)
    assert s.steps == 4  # the first run, then three more before time ran out
    s, _ = find_sustainable(lambda r: _point(r, False), start=8.0, precision=0.05, max_steps=40, lowest=1.0)
    assert s.sustainable_rate == 0.0 and "no rate tried met the SLO" in s.stop_reason


def test_serve_summary_round_trips_through_json() -> None:
    import json

    p = _point(50.0, True)
    inf = RatePoint(**{**p.__dict__, "percentiles": {"p99": (math.inf, 2.0, math.inf)}, "mean_ms": math.inf})
    s = Serve(rate=50.0, arrivals="poisson", concurrency=2, slo="p99<20ms", seed=1, duration_s=2.0, at_rate=inf,
              points=(p, inf))
    back = Serve.from_dict(json.loads(json.dumps(s.to_dict(), allow_nan=False)))
    assert back == s


def test_every_serve_setting_is_part_of_how_it_is_measured() -> None:
    """Changing rate, arrivals, concurrency, duration, warm-up, SLO, seed or the
    search changes the configuration hash and is a measurement-method change
    (the gate: incomparable), never a build change it would judge."""
    import dataclasses

    from pytest_trtperf.plugin.markers import serve_plan
    from pytest_trtperf.core.identity import config_changes, config_hash, split_config

    base = serve_plan({"rate": 100, "slo": "p99<20ms", "duration": 2}, where="t")
    variants = {"rate": {"rate": 120}, "arrivals": {"arrivals": "constant"}, "concurrency": {"concurrency": 2},
                "duration_s": {"duration": 3}, "warmup_s": {"warmup": 0.1}, "slo": {"slo": "p99<25ms"},
                "seed": {"seed": 1}, "search": {"search": False}, "precision": {"precision": 0.1}}
    ident = {"kind": "host", "mode": "serve", "serve": base.identity()}
    for field, change in variants.items():
        other = serve_plan({"rate": 100, "slo": "p99<20ms", "duration": 2, **change}, where="t")
        o_ident = {"kind": "host", "mode": "serve", "serve": other.identity()}
        assert config_hash(o_ident) != config_hash(ident), field
        (m1, b1), (m2, b2) = split_config(ident), split_config(o_ident)
        assert config_changes(m1, m2) and not config_changes(b1, b2), field
    trace = serve_plan({"rate": 100, "arrivals": [0.0, 0.1, 0.15]}, where="t")
    assert trace.identity()["arrivals"].startswith("trace:")
    assert dataclasses.replace(base).identity() == base.identity()
