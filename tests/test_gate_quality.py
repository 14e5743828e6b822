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

import numpy as np
import pytest

from pytest_trtperf.core import stats
from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.results import Distribution

#: Timed against closed forms or tight bounds: no busy loops on another xdist worker meanwhile (tests/host_share.py),
#: and no other computing test: its false-alarm rate read 12.7% (limit 6%) beside an inner xdist session
#: (tests/cpu_slots.py).
pytestmark = [pytest.mark.needs_quiet_host, pytest.mark.whole_cpu]

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

    out = {"noisy": [], "base_before": timed(hash_of(N))}
    for r in range(runs):
        rng = np.random.default_rng([proc, r])
        sizes = iter(rng.integers(N // 2, 3 * N // 2, size=10_000).tolist())
        out["noisy"].append(timed(lambda: hashlib.sha256(data[:next(sizes)]).digest(),
                                  warmup_s=0.0, min_warmup_iterations=2, iterations=iters))
    for name, scale in (("base", 1.0), ("plus8", 1.08), ("plus50", 1.5)):
        out[name] = timed(hash_of(int(N * scale)))
    print(json.dumps(out))
""")


#: Processes whose steady workload ("base") reads within this of the others'
#: measure at one machine speed. This project's 2-core VM moves a vCPU between
#: two speeds (about 1.7x for the same code; bench/RESULTS.md): two processes
#: that land on different speeds differ by more than any rule's tolerance, and
#: no rule can tell that from a slowdown. The study judges the rule under
#: measurement noise, so it first makes sure its processes share a speed.
SAME_SPEED = 0.03
#: A process's own steady workloads (before and after its noisy runs, true
#: ratios taken out) spread less than this when its speed held: a few percent
#: is this machine's window-to-window jitter of a 0.2-1 s measurement (up to ~9% here).
STEADY = 0.10
#: At most this many processes are started to find PROCESSES at one speed.
MAX_PROCESSES = 8


def _median(d: dict[str, object]) -> float:
    q = d["quantiles_ms"]  # type: ignore[index]
    return float(np.median(q))  # type: ignore[arg-type]


#: The steady workloads' true ratios to ``base`` (by construction: bytes hashed).
SCALES = {"base_before": 1.0, "base": 1.0, "plus8": 1.08, "plus50": 1.5}


def steady(run: dict[str, object]) -> float | None:
    """The process's speed (its base median), or None when its own steady
    workloads, measured before and after the noisy runs, spread more than
    STEADY once their true ratios are taken out: the speed moved inside the
    process."""
    base = _median(run["base"])  # type: ignore[arg-type]
    reads = [_median(run[k]) / scale / base for k, scale in SCALES.items()]  # type: ignore[arg-type]
    return base if max(reads) - min(reads) <= STEADY else None


def one_speed(out: list[dict[str, object]]) -> list[dict[str, object]] | None:
    """PROCESSES of ``out`` (in order), each steady, whose base medians lie
    within SAME_SPEED of one of theirs, or None."""
    speeds = [(r, steady(r)) for r in out]
    kept = [(r, v) for r, v in speeds if v is not None]
    for _, ref in kept:
        close = [r for r, v in kept if abs(v / ref - 1) <= SAME_SPEED]
        if len(close) >= PROCESSES:
            return close[:PROCESSES]
    return None


@pytest.fixture(scope="module")
def runs() -> list[dict[str, object]]:
    """One dict of compressed distributions per process (processes run one
    after another so they do not compete for the runner's cores), from
    processes that measured at one machine speed (SAME_SPEED)."""
    out: list[dict[str, object]] = []
    for p in range(MAX_PROCESSES):
        r = subprocess.run([sys.executable, "-c", CHILD, str(p), str(NOISY_RUNS), str(NOISY_ITERATIONS)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
        chosen = one_speed(out)
        if chosen is not None:
            return chosen
    bases = [round(_median(r["base"]) * 1e3, 1) for r in out]  # type: ignore[arg-type]
    pytest.skip(f"this machine's speed moved within or between processes: no {PROCESSES} of {MAX_PROCESSES} "
                f"measured at one speed (base medians {bases} us); no rule can be judged across them")


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
