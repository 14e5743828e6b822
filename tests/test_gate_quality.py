"""CI-sized gate-quality study (bench/gate_quality.py is the full one).

Real measurements of a host workload in three SEPARATE processes (as baseline
and candidate are in CI), judged by the real ``stats.compare`` + ``stats.decide``
with the default confidence level. Three properties, each with a wide margin so
a loaded 2-core runner cannot flip them, and each broken by a plausible bad
change to the rule (``test_a_broken_rule_is_caught`` proves it):

* false-alarm control where it is hardest: a noisy workload (each call hashes a
  random 50..150% of the nominal size) measured with 15 iterations, so two
  no-change medians often differ by more than the tolerance. A rule without a
  significance test fails about a third of these pairs; ours must stay <= 6%.
* a real slowdown well inside the tolerance (+8% at 25%) must pass: a rule with
  zero tolerance fails it.
* a large slowdown (+50% at 25%) must be caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from pytest_trtperf.core import stats
from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.results import Distribution

Rule = Callable[[Distribution, Distribution, float], str]

PROCESSES = 3
NOISY_RUNS = 12
NOISY_ITERATIONS = 15

CHILD = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from pytest_trtperf.core import stats
    from pytest_trtperf.core.measure import MeasureSettings, measure
    from pytest_trtperf.workloads.host import HostWorkload

    proc, runs, iters = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data = memoryview(b"\\x5a" * 400_000)
    N = 100_000

    def timed(fn, **kw):
        s = dict(warmup_s=0.05, min_time_s=0.2, max_time_s=1.0)
        s.update(kw)
        m = measure(HostWorkload(fn), MeasureSettings(**s))
        return stats.compress(m.latency_s).to_dict()

    def hash_of(n):
        view = data[:n]
        return lambda: hashlib.sha256(view).digest()

    out = {"noisy": []}
    for r in range(runs):
        rng = np.random.default_rng([proc, r])
        sizes = iter(rng.integers(N // 2, 3 * N // 2, size=10_000).tolist())
        out["noisy"].append(timed(lambda: hashlib.sha256(data[:next(sizes)]).digest(),
                                  warmup_s=0.0, min_warmup_iterations=2, iterations=iters))
    for name, scale in (("base", 1.0), ("plus8", 1.08), ("plus50", 1.5)):
        out[name] = timed(hash_of(int(N * scale)))
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def runs() -> list[dict[str, object]]:
    """One dict of compressed distributions per process (processes run one
    after another so they do not compete for the runner's cores)."""
    out = []
    for p in range(PROCESSES):
        r = subprocess.run([sys.executable, "-c", CHILD, str(p), str(NOISY_RUNS), str(NOISY_ITERATIONS)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


def our_rule(base: Distribution, cur: Distribution, tolerance: float) -> str:
    """The gate as ``gate.judge`` calls it, with the default confidence."""
    cmp = stats.compare(base, cur, metric="median", confidence=MeasureOptions().confidence, seed="ci")
    return stats.decide(cmp, tolerance)


def _dist(d: object) -> Distribution:
    return Distribution.from_dict(d)  # type: ignore[arg-type]


def problems(rule: Rule, runs: list[dict[str, object]]) -> list[str]:
    """What is wrong with ``rule`` on this data (empty: the rule is fine)."""
    found = []
    cross = [(i, j) for i in range(len(runs)) for j in range(len(runs)) if i != j]
    noisy = [rule(_dist(b), _dist(c), 0.05) for i, j in cross
             for b in runs[i]["noisy"] for c in runs[j]["noisy"]]  # type: ignore[attr-defined]
    fa = noisy.count("regression") / len(noisy)
    if fa > 0.06:
        found.append(f"false alarms on noisy no-change pairs: {fa:.1%} of {len(noisy)} (limit 6%)")
    within = [rule(_dist(runs[i]["base"]), _dist(runs[j]["plus8"]), 0.25) for i, j in cross]
    if within.count("regression") > 1:
        found.append(f"+8% at tolerance 25% failed {within.count('regression')} of {len(within)} pairs")
    large = [rule(_dist(runs[i]["base"]), _dist(runs[j]["plus50"]), 0.25) for i, j in cross]
    if large.count("regression") < len(large) - 1:
        found.append(f"+50% at tolerance 25% caught in only {large.count('regression')} of {len(large)} pairs")
    return found


def test_our_rule_controls_false_alarms_and_detects_large_slowdowns(runs: list[dict[str, object]]) -> None:
    assert problems(our_rule, runs) == []


def _no_significance(b: Distribution, c: Distribution, tol: float) -> str:
    cmp = stats.compare(b, c, confidence=MeasureOptions().confidence, seed="ci")
    return "regression" if cmp.change > tol else "pass"


def _zero_tolerance(b: Distribution, c: Distribution, tol: float) -> str:
    return our_rule(b, c, 0.0)


def _low_confidence(b: Distribution, c: Distribution, tol: float) -> str:
    return stats.decide(stats.compare(b, c, confidence=0.5, seed="ci"), tol)


def _never_fails(b: Distribution, c: Distribution, tol: float) -> str:
    return "pass"


@pytest.mark.parametrize("broken", [_no_significance, _zero_tolerance, _low_confidence, _never_fails],
                         ids=["no-significance-test", "zero-tolerance", "confidence-0.5", "never-fails"])
def test_a_broken_rule_is_caught(runs: list[dict[str, object]], broken: Rule) -> None:
    assert problems(broken, runs), f"{broken.__name__} slipped through: the study cannot fail"
