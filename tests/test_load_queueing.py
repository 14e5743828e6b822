"""The open-loop driver against queueing theory (README "Latency under load").

A host service whose service times are drawn from a seeded distribution makes
the system M/M/1, M/D/1 or M/M/c, whose response times have closed forms. The
driver's measured mean response and p99 must agree with them at utilisations
0.3..0.8 within tolerances derived from the run itself (``tests/queueing.py``
says how); a closed-loop driver, which never lets requests queue, must fail
the same checks. Service times of 2 ms keep each run of a mean check near 3 s
with 375-1000 measured requests (260-200 busy cycles: the allowances, derived
from the run, stay honest at that size); the M/M/1 mean and p99 are checked on
one run of the p99's size.
"""

from __future__ import annotations

import math

import pytest

from pytest_trtperf.load.arrivals import schedule

import queueing as q

#: Timed against closed forms or tight bounds: no busy loops on another xdist worker meanwhile (tests/host_share.py);
#: the services sleep, so these hold no CPU slot (tests/cpu_slots.py).
pytestmark = [pytest.mark.needs_quiet_host, pytest.mark.mostly_waits]

SERVICE_S = 2e-3
WARMUP_S = 0.5
SPAN_S = 3.0
UTILISATIONS = (0.3, 0.5, 0.8)
#: (E[S], E[S^2]) of the nominal exponential and fixed service times.
EXP = (SERVICE_S, 2 * SERVICE_S**2)
FIXED = (SERVICE_S, SERVICE_S**2)


#: The p99 needs more requests than the mean: the p99 tests use 1 ms services
#: and 7 s runs (2000-5000 measured requests).
P99_SERVICE_S = 1e-3
P99_SPAN_S = 7.0


def _mm1(rho: float, service_s: float = SERVICE_S, span_s: float = SPAN_S, seed: int = 11
         ) -> tuple[q.Observed, float]:
    lam = rho / service_s
    obs = q.open_loop(q.Service(q.exponential(service_s, seed)), 1, schedule("poisson", lam, span_s, seed),
                      WARMUP_S)
    return obs, lam


def _mean(lam: float) -> q.Theory:
    """M/G/1 mean response (P-K): 1/(mu - lambda) for exponential service, M/D/1 for fixed."""
    return lambda es, es2: q.mg1_mean(lam, es, es2)


def _quantile(lam: float) -> q.Callable[[float], q.Theory]:
    """M/M/1 response quantile -ln(1 - p)/(mu - lambda) = -ln(1 - p) x the mean
    response (p99: ln(100)/(mu - lambda))."""
    return lambda p: lambda es, es2: -math.log1p(-p) * q.mg1_mean(lam, es, es2)


@pytest.mark.parametrize("rho", UTILISATIONS)
def test_mm1_mean_and_p99_match_the_closed_forms(rho: float) -> None:
    """One run serves both checks (the p99 needs the larger sample; the
    mean's allowance comes from the same run's cycles)."""
    obs, lam = _mm1(rho, P99_SERVICE_S, P99_SPAN_S)
    nominal = (P99_SERVICE_S, 2 * P99_SERVICE_S**2)
    assert _mean(lam)(*nominal) == pytest.approx(q.mm1_mean(lam, 1.0 / P99_SERVICE_S))  # P-K at exponential service
    mean = q.judgeable(q.check_mean(obs, _mean(lam), nominal))
    assert mean.ok, str(mean)
    assert _quantile(lam)(0.99)(*nominal) == pytest.approx(q.mm1_quantile(lam, 1.0 / P99_SERVICE_S, 0.99))
    p99 = q.judgeable(q.check_quantile(obs, 0.99, _quantile(lam), nominal))
    assert p99.ok, str(p99)
    # Whether the data bound the p99 from above depends on how correlated the
    # responses were (a loaded host makes more of them wait together): at 0.3
    # usually, at 0.5-0.8 rarely within a 7 s run. That side is what a driver
    # hiding queueing misses; the closed-loop test below shows the check fails it.


@pytest.mark.parametrize("rho", UTILISATIONS)
def test_md1_mean_matches_the_closed_form(rho: float) -> None:
    lam = rho / SERVICE_S
    assert _mean(lam)(*FIXED) == pytest.approx(q.md1_mean(lam, SERVICE_S))  # P-K at fixed service
    obs = q.open_loop(q.Service(q.fixed(SERVICE_S)), 1, schedule("poisson", lam, SPAN_S, 5), WARMUP_S)
    check = q.judgeable(q.check_mean(obs, _mean(lam), FIXED))
    assert check.ok, str(check)


@pytest.mark.parametrize("rho", UTILISATIONS)
def test_mmc_mean_matches_erlang_c(rho: float) -> None:
    c = 2
    lam = rho * c / SERVICE_S
    assert q.mgc_mean(lam, *EXP, c) == pytest.approx(q.mmc_mean(lam, 1.0 / SERVICE_S, c))
    obs = q.open_loop(q.Service(q.exponential(SERVICE_S, 23)), c, schedule("poisson", lam, SPAN_S, 23), WARMUP_S)
    check = q.judgeable(q.check_mean(obs, lambda es, es2: q.mgc_mean(lam, es, es2, c), EXP))
    assert check.ok, str(check)


@pytest.mark.parametrize("rho", UTILISATIONS)
def test_a_closed_loop_driver_fails_the_same_checks(rho: float) -> None:
    """Same service, same number of requests, timed back to back: the mean
    misses the closed forms (M/M/1 and M/D/1 at every utilisation, M/M/2
    from 0.5), and the p99 at 0.5 (where the closed form is twice the
    closed loop's p99)."""
    lam = rho / SERVICE_S
    n = int(lam * (SPAN_S - WARMUP_S))
    obs = q.closed_loop(q.Service(q.exponential(SERVICE_S, 11)), 1, n)
    mean = q.check_mean(obs, _mean(lam), EXP)
    assert not mean.ok, f"a closed loop passed the M/M/1 check: {mean}"
    fixed = q.closed_loop(q.Service(q.fixed(SERVICE_S)), 1, n)
    md1 = q.check_mean(fixed, _mean(lam), FIXED)
    assert not md1.ok, f"a closed loop passed the M/D/1 check: {md1}"
    if rho >= 0.5:  # at 0.3 two servers rarely queue: M/M/2's mean is within 10% of the service time
        two = q.closed_loop(q.Service(q.exponential(SERVICE_S, 23)), 2, 2 * n)
        mmc = q.check_mean(two, lambda es, es2: q.mgc_mean(2 * lam, es, es2, 2), EXP)
        assert not mmc.ok, f"a closed loop passed the M/M/2 check: {mmc}"
    if rho == 0.5:  # the p99 is 2x the closed loop's here; at 0.3 (1.4x) a loaded machine's stalls blur it
        lam = rho / P99_SERVICE_S
        obs = q.closed_loop(q.Service(q.exponential(P99_SERVICE_S, 11)), 1, int(lam * (P99_SPAN_S - WARMUP_S)))
        assert q.bounded_both_sides(obs, 0.99)
        p99 = q.check_quantile(obs, 0.99, _quantile(lam), (P99_SERVICE_S, 2 * P99_SERVICE_S**2))
        assert not p99.ok, f"a closed loop passed the M/M/1 p99 check: {p99}"


def test_closed_forms_against_known_values() -> None:
    # Textbook values: M/M/1 at lambda 8, mu 10: mean 0.5 s; M/D/1 rho 0.5, D 1: wait 0.5;
    # M/M/2 at a = 1 (rho 0.5): Erlang C = 1/3.
    assert q.mm1_mean(8, 10) == pytest.approx(0.5)
    assert q.mm1_quantile(8, 10, 0.99) == pytest.approx(2.302585, rel=1e-6)
    assert q.md1_mean(0.5, 1.0) - 1.0 == pytest.approx(0.5)
    assert q.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert q.mmc_mean(5.0, 10.0, 1) == pytest.approx(q.mm1_mean(5.0, 10.0))  # M/M/1 is M/M/c at c = 1
