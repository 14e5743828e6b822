"""The between-run noise term on its own: priors, pooling with a history,
the widened interval, and when an update starts a new history."""

from __future__ import annotations

import math

import pytest

from pytest_trtperf.core import noise


def test_one_run_uses_the_prior_of_its_family() -> None:
    host = noise.estimate("host", [1.0])
    gpu = noise.estimate("tensorrt", [1.0])
    assert (host.source, host.sd, host.runs) == ("prior", noise.PRIOR_SD["host"], 1)
    assert (gpu.family, gpu.sd) == ("gpu", noise.PRIOR_SD["gpu"])
    # Host code does not inherit the GPU's spread: its allowance is far larger.
    assert host.allowance(0.99) > 4 * gpu.allowance(0.99)
    # z * sd * sqrt(2) at one run.
    assert host.allowance(0.99) == pytest.approx(noise.z_value(0.99) * noise.PRIOR_SD["host"] * math.sqrt(2))


def test_a_quiet_history_pulls_the_sd_below_the_prior_and_a_noisy_one_above() -> None:
    quiet = noise.estimate("host", [1.000, 1.002, 0.999, 1.001, 1.000, 0.998, 1.001, 1.000, 1.002, 0.999])
    noisy = noise.estimate("host", [1.0, 1.12, 0.9, 1.08, 0.95])
    assert quiet.source == noisy.source == "history"
    assert quiet.sd < noise.PRIOR_SD["host"] * 0.6 and noisy.sd > noise.PRIOR_SD["host"]
    # More runs: the centre is known better, so the allowance shrinks further.
    assert quiet.allowance(0.99) < noise.estimate("host", [1.000, 1.002, 0.999]).allowance(0.99)


def test_the_option_overrides_and_zero_turns_the_term_off() -> None:
    assert noise.estimate("host", [1.0, 2.0], override=0.0).allowance(0.99) == 0.0
    assert noise.estimate("host", [1.0], override=0.02).source == "option"


@pytest.mark.parametrize("kind, change, ci, tolerance, decided, slower", [
    ("host", 0.08, (0.07, 0.09), 0.05, "run_noise", False),  # host prior: +8% is within 13.6%
    ("host", 0.30, (0.29, 0.31), 0.05, "run_noise", True),
    ("cuda", 0.08, (0.07, 0.09), 0.05, "tolerance", True),  # GPU prior: 2.6% < the tolerance
    ("cuda", 0.02, (0.01, 0.03), 0.05, "tolerance", False),
    ("host", 0.30, (-0.10, 0.70), 0.05, "sample_noise", False),  # this run's own interval is the widest bar
])
def test_widen_names_the_deciding_term(kind: str, change: float, ci: tuple[float, float], tolerance: float,
                                       decided: str, slower: bool) -> None:
    a = noise.estimate(kind, [1.0]).allowance(0.99)
    j = noise.widen(change, ci, a, tolerance)
    assert j.decided_by == decided and j.significant_slower is slower
    assert j.ci[0] <= ci[0] and j.ci[1] >= ci[1]  # never narrower than the run's own interval
    assert noise.status(j, tolerance) == ("regression" if slower and change > tolerance else "pass")


def test_without_the_term_the_rule_is_the_old_one() -> None:
    j = noise.widen(0.08, (0.07, 0.09), 0.0, 0.05)
    assert noise.status(j, 0.05) == "regression" and j.ci == pytest.approx((0.07, 0.09))


def test_moved_detects_a_new_level_not_noise() -> None:
    history = [1.00, 1.01, 0.99, 1.00]
    assert noise.moved(1.02, history, clock="host", tolerance=0.05, confidence=0.99) is None
    step = noise.moved(1.30, history, clock="host", tolerance=0.05, confidence=0.99)
    assert step is not None and step == pytest.approx(0.30, abs=0.01)
    assert noise.moved(1.3, [], clock="host", tolerance=0.05, confidence=0.99) is None


@pytest.mark.parametrize("change, ci", [
    (-1.0, (-1.0, -1.0)),
    (-1.0 + 1e-300, (-1.0, 0.5)),
    (float("nan"), (0.0, 0.1)),
    (0.1, (float("-inf"), float("inf"))),
    (1e306, (1e306, 1e306)),  # log1p is finite, expm1 of it plus the noise overflows
    (-0.5, (-2.0, 0.0)),
])
def test_widen_never_raises_and_an_unjudgeable_change_is_unreliable(change: float, ci: tuple[float, float]) -> None:
    """``log1p(-1)`` raised ``math domain error`` from a hostile baseline
    (issue 16); ``expm1`` of a huge change overflows. Neither may raise, and
    neither is a pass."""
    j = noise.widen(change, ci, noise.estimate("host", [1.0]).allowance(0.99), 0.05)
    assert noise.status(j, 0.05) == "unreliable"
    assert j.decided_by == "invalid" and not j.significant_slower and not j.significant_faster


def test_the_between_run_allowance_is_bounded() -> None:
    """History rows alternating 0.3x / 4x claimed an allowance of 1932.7%:
    the sd is held at MAX_SD, and the history is named too wide."""
    values = [0.3, 4.0] * 4 + [0.3, 1.0]
    n = noise.estimate("host", values)
    assert n.sd > noise.MAX_SD and n.capped
    held = noise.RunNoise(sd=noise.MAX_SD, source="history", runs=n.runs, family="host")
    assert n.allowance(0.99) == pytest.approx(held.allowance(0.99))
    assert math.expm1(n.allowance(0.99)) < 1.0
    assert "beyond the 20%" in (noise.too_wide(n, 0.0, (-0.01, 0.01), 0.99) or "")
    quiet = noise.estimate("host", [1.0, 1.01, 0.99, 1.0])
    assert not quiet.capped and noise.too_wide(quiet, 0.0, (-0.01, 0.01), 0.99) is None
    # --trt-run-noise is the user's own figure: never held.
    assert not noise.estimate("host", values, 0.5).capped


def test_an_interval_too_wide_to_decide() -> None:
    """Within-run interval so wide that not even a 2x slowdown would be caught."""
    quiet = noise.estimate("host", [1.0, 1.01, 0.99, 1.0])
    why = noise.too_wide(quiet, 0.1, (-0.9, 30.0), 0.99)
    assert why is not None and "smallest slowdown it could catch" in why
    assert noise.too_wide(quiet, 0.1, (0.05, 0.15), 0.99) is None
