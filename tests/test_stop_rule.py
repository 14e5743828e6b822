"""measure.stop_reason: the one stopping rule of measure() and the interleaved A/B loop."""

from __future__ import annotations

from pytest_trtperf.core.config import MeasureSettings
from pytest_trtperf.core.measure import progress_fraction, stop_reason

S = MeasureSettings(min_time_s=1.0, max_time_s=5.0, min_iterations=10, max_iterations=1000)


def never() -> bool:
    raise AssertionError("convergence must not be asked before the minimum time and iterations")


def test_adaptive_rule_asks_convergence_only_after_the_minimums() -> None:
    assert stop_reason(S, count=5, target=None, least=5, most=5, elapsed=2.0, converged=never) is None
    assert stop_reason(S, count=50, target=None, least=50, most=50, elapsed=0.5, converged=never) is None
    assert stop_reason(S, count=50, target=None, least=50, most=50, elapsed=1.5, converged=lambda: True) == "converged"
    assert stop_reason(S, count=50, target=None, least=50, most=50, elapsed=1.5, converged=lambda: False) is None


def test_caps() -> None:
    assert stop_reason(S, count=50, target=None, least=50, most=50, elapsed=5.0, converged=lambda: False) == "max_time"
    assert stop_reason(S, count=9, target=None, least=9, most=1000, elapsed=1.0, converged=never) == "max_iterations"


def test_fixed_amounts_end_only_there() -> None:
    fixed = MeasureSettings(iterations=100)
    assert stop_reason(fixed, count=99, target=100, least=99, most=99, elapsed=99.0, converged=never) is None
    assert stop_reason(fixed, count=100, target=100, least=100, most=100, elapsed=0.1, converged=never) == "iterations"
    timed = MeasureSettings(duration_s=2.0)
    assert stop_reason(timed, count=10**6, target=None, least=10**6, most=10**7, elapsed=1.9, converged=never) is None
    assert stop_reason(timed, count=1, target=None, least=1, most=1, elapsed=2.0, converged=never) == "duration"


def test_progress_fraction() -> None:
    assert progress_fraction(MeasureSettings(iterations=200), count=50, target=200, elapsed=9.0) == 0.25
    assert progress_fraction(MeasureSettings(duration_s=4.0), count=50, target=None, elapsed=1.0) == 0.25
    assert progress_fraction(S, count=50, target=None, elapsed=2.5) == 0.5
