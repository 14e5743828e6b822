"""Queueing theory for the load tests: closed forms, a host service with known
service times, a closed-loop driver (the thing that hides queueing), and the
checks of a measured response-time series against a closed form.

Tolerances come from the data, never from numbers tuned on one machine:

* sampling error: consecutive responses in a queue are correlated (a long
  service delays everyone behind it), so the iid standard error would be too
  narrow. A request that arrives to an empty system starts a new busy cycle,
  independent of the ones before (a regeneration point), so the mean
  response is a ratio of sums over i.i.d. cycles and its standard error comes
  from the cycles (the regenerative method, delta-method variance); the
  allowance is ``Z`` of them at ``CONFIDENCE`` two-sided. A percentile's
  bounds are binomial order statistics at the effective sample size
  ``n / inflation`` (the regenerative variance of the mean over the iid one),
  one-sided at ``QUANTILE_CONFIDENCE`` each;
* the service times the host actually gave: on a loaded machine a 2 ms
  service takes 2.1-2.8 ms (timer wake-ups, preemptions), so the closed form
  is evaluated at the first two moments of the service times the service
  measured itself, inside the call (the low end of the band: P-K, which is
  M/M/1's ``1/(mu - lambda)`` and M/D/1's formula at their nominal moments),
  and at those the driver measured from start to done plus its mean lag
  (the high end: overheads only slow requests down). The nominal-parameter
  values are printed by bench/load_queueing.py beside them.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np

from pytest_trtperf.load.driver import Run, drive, wait_until
from pytest_trtperf.load.percentiles import lower_rank, upper_rank

#: Two-sided confidence of a mean check: a correct driver on an M/G/c system
#: fails one in 10000. A loaded host is not quite M/G/c (other processes slow
#: consecutive requests together, which queues more than independent service
#: times of the same moments would): at 99.9% one check in about 50 missed by
#: under 1% on a 2-core machine at load 5-13 (bench/RESULTS.md).
CONFIDENCE = 0.9999
#: The normal quantile at 1 - (1 - CONFIDENCE) / 2 (hundreds of cycles per run).
Z = 3.8906
#: One-sided confidence of each bound of a percentile check.
QUANTILE_CONFIDENCE = 0.995


# -- closed forms ----------------------------------------------------------
def mm1_mean(lam: float, mu: float) -> float:
    """M/M/1 mean response time: the response is Exp(mu - lambda)."""
    return 1.0 / (mu - lam)


def mm1_quantile(lam: float, mu: float, q: float) -> float:
    """M/M/1 response-time quantile: -ln(1 - q) / (mu - lambda) (p99: ln(100)/(mu - lambda))."""
    return -math.log1p(-q) / (mu - lam)


def md1_mean(lam: float, d: float) -> float:
    """M/D/1 mean response: D plus the mean wait rho*D / (2(1 - rho))."""
    rho = lam * d
    return d + rho * d / (2.0 * (1.0 - rho))


def mg1_mean(lam: float, es: float, es2: float) -> float:
    """Pollaczek-Khinchine M/G/1 mean response: E[S] + lambda E[S^2] / (2(1 - rho));
    infinite at or beyond saturation."""
    if lam * es >= 1.0:
        return math.inf
    return es + lam * es2 / (2.0 * (1.0 - lam * es))


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu."""
    rho = a / c
    top = a**c / math.factorial(c) / (1.0 - rho)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_mean(lam: float, mu: float, c: int) -> float:
    """M/M/c mean response: Erlang C / (c mu - lambda) + 1/mu."""
    return erlang_c(c, lam / mu) / (c * mu - lam) + 1.0 / mu


def mgc_mean(lam: float, es: float, es2: float, c: int) -> float:
    """M/G/c mean response, Allen-Cunneen: the M/M/c wait times (1 + Cs^2)/2
    (exact for exponential service and for c = 1, where it is P-K); infinite
    at or beyond saturation."""
    if lam * es >= c:
        return math.inf
    cs2 = es2 / (es * es) - 1.0
    mu = 1.0 / es
    return erlang_c(c, lam / mu) / (c * mu - lam) * (1.0 + cs2) / 2.0 + es


# -- a service with known times --------------------------------------------
class Service:
    """Each call takes the next drawn service time (seeded): waits until
    call start + that time (sleep, then a short spin), so the service time is
    what was drawn plus a small overshoot, which it records."""

    def __init__(self, times_s: np.ndarray) -> None:
        self._times = iter(times_s.tolist())
        self._lock = threading.Lock()
        self.drawn: list[float] = []
        self.taken: list[float] = []

    def __call__(self) -> None:
        t0 = time.perf_counter()
        with self._lock:
            s = next(self._times)
        wait_until(t0 + s)
        took = time.perf_counter() - t0
        with self._lock:
            self.drawn.append(s)
            self.taken.append(took)

    @property
    def overshoot_s(self) -> float:
        return float(np.mean(self.taken) - np.mean(self.drawn)) if self.drawn else 0.0


def exponential(mean_s: float, seed: int, n: int = 200_000) -> np.ndarray:
    """Exponential service times from their own stream (``seed`` is mixed with
    a tag: a service stream equal to the arrivals' would tie each service time
    to an inter-arrival gap and break the model)."""
    return np.random.default_rng([seed, 0x5E5]).exponential(mean_s, n)


def fixed(d_s: float, n: int = 200_000) -> np.ndarray:
    return np.full(n, d_s)


@dataclass(frozen=True)
class Observed:
    """Measured responses (s, in arrival order), the first two moments of the
    service times as measured (s, s^2) and the driver's mean lag (s)."""

    latency_s: np.ndarray
    es: float
    es2: float
    lag_s: float
    #: Requests that arrived to an empty system (each starts an independent cycle).
    empty: np.ndarray
    #: The driver's lag of each request (s), for quantile checks.
    lags: np.ndarray = field(default_factory=lambda: np.zeros(1))
    #: (E[S], E[S^2]) of the service times as the service measured them
    #: inside each call (None: use the nominal moments).
    own: tuple[float, float] | None = None


def moments(service_s: np.ndarray) -> tuple[float, float]:
    s = service_s[np.isfinite(service_s)]
    return float(s.mean()), float((s * s).mean())


def open_loop(service: Service, slots: int, arrivals_s: np.ndarray, warmup_s: float) -> Observed:
    """The product's driver: latency from scheduled arrival to completion."""
    span = float(arrivals_s[-1]) + 1e-3
    run: Run = drive([service] * slots, arrivals_s, window_s=span, drain_s=5.0)
    m = run.scheduled_s >= warmup_s
    done_before = np.concatenate([[-np.inf], np.maximum.accumulate(np.nan_to_num(run.done_s, nan=np.inf))[:-1]])
    empty = run.scheduled_s >= done_before  # everyone before it had finished when it arrived
    lags = run.lag_s[m & np.isfinite(run.lag_s)]
    return Observed(run.latency_s[m], *moments(run.service_s), float(lags.mean()), empty[m], lags,
                    moments(np.asarray(service.taken)))


def closed_loop(service: Service, slots: int, requests: int) -> Observed:
    """A closed-loop benchmark: each slot calls back to back and times each
    call from its start. It never sees a queue."""
    out: list[float] = []
    lock = threading.Lock()
    left = [requests]

    def worker() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            t0 = time.perf_counter()
            service()
            took = time.perf_counter() - t0
            with lock:
                out.append(took)

    threads = [threading.Thread(target=worker) for _ in range(slots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = np.asarray(out)
    return Observed(lat, *moments(lat), 0.0, np.ones(lat.size, dtype=bool),  # no queue: every request alone
                    own=moments(np.asarray(service.taken)))


# -- checks --------------------------------------------------------------------
def regenerative_se(x: np.ndarray, empty: np.ndarray) -> float:
    """Standard error of the mean of ``x`` over i.i.d. cycles that start where
    ``empty`` is set (ratio estimator, delta method)."""
    starts = np.flatnonzero(empty)
    if starts.size == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])  # the part before the first regeneration is a cycle too
    sums = np.add.reduceat(x, starts)
    counts = np.diff(np.concatenate([starts, [x.size]])).astype(np.float64)
    m = sums.size
    if m < 2:
        return math.inf
    r = sums.sum() / counts.sum()
    return float(math.sqrt(m / (m - 1) * np.sum((sums - r * counts) ** 2)) / counts.sum())


def inflation(obs: Observed) -> float:
    """Variance of the mean (regenerative) over the iid variance (>= 1)."""
    x = obs.latency_s
    iid = float(x.var(ddof=1)) / x.size
    return max(1.0, regenerative_se(x, obs.empty) ** 2 / iid) if iid > 0 else 1.0


@dataclass(frozen=True)
class Check:
    """A measured figure with its sampling interval [m_low, m_high] against
    the closed form's band [t_low, t_high] (without and with the measured
    overheads): it agrees when the two overlap."""

    what: str
    measured: float
    m_low: float
    m_high: float
    t_low: float
    t_high: float

    @property
    def ok(self) -> bool:
        return self.m_low <= self.t_high and self.m_high >= self.t_low

    def __str__(self) -> str:
        return (f"{self.what}: measured {self.measured * 1e3:.3f} ms ({self.m_low * 1e3:.3f}..{self.m_high * 1e3:.3f}),"
                f" theory {self.t_low * 1e3:.3f}..{self.t_high * 1e3:.3f} ms")


#: A closed form of the service time's first two moments (E[S], E[S^2]).
Theory = Callable[[float, float], float]


def _band(obs: Observed, theory: Theory, nominal: tuple[float, float]) -> tuple[float, float]:
    low = theory(*(obs.own or nominal))
    high = theory(obs.es, obs.es2) + obs.lag_s
    return low, max(low, high)


def check_mean(obs: Observed, theory: Theory, nominal: tuple[float, float]) -> Check:
    """Mean response against ``theory`` at the service's own measured moments
    (``nominal`` without them) and at the driver's, plus its lag."""
    lat = obs.latency_s
    mean, allow = float(lat.mean()), Z * regenerative_se(lat, obs.empty)
    return Check("mean response", mean, mean - allow, mean + allow, *_band(obs, theory, nominal))


def _quantile_ranks(obs: Observed, q: float) -> tuple[int, int | None, int | None]:
    """Ranks at the effective sample size: the larger of the inflations of the
    mean and of the indicator of exceeding the measured quantile (what a
    quantile estimate's error follows)."""
    x = obs.latency_s
    exceed = (x > np.quantile(x, q)).astype(np.float64)
    f = max(inflation(obs), inflation(Observed(exceed, obs.es, obs.es2, obs.lag_s, obs.empty)))
    n_eff = max(int(x.size / f), 1)
    return n_eff, lower_rank(n_eff, q, QUANTILE_CONFIDENCE), upper_rank(n_eff, q, QUANTILE_CONFIDENCE)


def check_quantile(obs: Observed, q: float, theory: Callable[[float], Theory], nominal: tuple[float, float]) -> Check:
    """The measured ``q`` quantile with order-statistic bounds at the
    effective sample size (inf / 0: the data cannot bound that side), against
    ``theory(q)`` at the service's own moments (low end) and, for the high end, the
    union bound P(A + B > a + b) <= P(A > a) + P(B > b): the closed form's
    (1 + q)/2 quantile at the measured moments plus the driver's lag at the
    same quantile (a quantile of a sum is not the sum of the quantiles)."""
    n_eff, lo, up = _quantile_ranks(obs, q)
    lat = obs.latency_s
    upper = float(np.quantile(lat, up / n_eff)) if up is not None else math.inf
    lower = float(np.quantile(lat, (lo - 1) / n_eff)) if lo is not None else 0.0
    half = (1.0 + q) / 2.0
    low = theory(q)(*(obs.own or nominal))
    high = theory(half)(obs.es, obs.es2) + float(np.quantile(obs.lags, half))
    return Check(f"p{q * 100:g} response", float(np.quantile(lat, q)), lower, upper, low, max(low, high))


def bounded_both_sides(obs: Observed, q: float) -> bool:
    """Whether the data bound the quantile from both sides (the check can fail either way)."""
    _, lo, up = _quantile_ranks(obs, q)
    return lo is not None and up is not None


def judgeable(check: Check) -> Check:
    """``check``, or a skip when the host could not give the service rate the
    utilisation needs (its measured service times put it at or beyond
    saturation: the closed form is infinite and nothing can be judged)."""
    import pytest

    if not math.isfinite(check.t_low):
        pytest.skip(f"host too loaded to judge {check.what}: its measured service times saturate the queue")
    return check
