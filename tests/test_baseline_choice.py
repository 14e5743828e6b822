"""A workload that chooses at setup how to time (TorchWorkload: graph replay
or eager) gets its baseline's choice back before setup, through the real
plugin, baseline file and gate. The workload here is a host workload that
implements the same hook as TorchWorkload (``use_baseline_choice``), so the
plumbing runs without a GPU; the GPU side is tests/gpu/test_torch_workload.py.
"""

from __future__ import annotations

import json

import pytest

from helpers import FAST, load_baseline, run_inner

TEST = '''
import hashlib, os, random, time

import numpy as np

from pytest_trtperf.core.workload import Batch

DATA = b"\\x5a" * 200_000


class Choosy:
    """Chooses "graph"/"eager" at setup like TorchWorkload: the baseline's
    choice when it got one (unless IGNORE_PRIOR), else $FIRST."""
    kind = "host"
    inferences_per_iteration = 1

    def __init__(self):
        self.prior = "never asked"
        self.timed_as = None

    def use_baseline_choice(self, timed_as):
        self.prior = timed_as

    def setup(self):
        keep = self.prior in ("graph", "eager") and not os.environ.get("IGNORE_PRIOR")
        self.timed_as = self.prior if keep else os.environ["FIRST"]

    def run(self, n):
        lat = np.empty(n)
        t0 = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            hashlib.sha256(DATA).digest()
            lat[i] = time.perf_counter() - s
        return Batch(latency_s=lat, wall_s=time.perf_counter() - t0)

    def teardown(self):
        pass

    def identity(self):
        ident = {"kind": "host"}
        if self.timed_as:
            ident["timed_as"] = self.timed_as
            ident["capture_check"] = {"eager_ms": random.random()}  # measured: never hashed
        return ident

    def notes(self):
        return (f"prior={self.prior}",)


def test_choice(trt_bench):
    trt_bench.measure(Choosy(), name="choosy", tolerance="50%")
'''


def run(pytester: pytest.Pytester, *args: str, first: str, ignore: bool = False) -> dict:
    env = {"FIRST": first, **({"IGNORE_PRIOR": "1"} if ignore else {})}
    r = run_inner(pytester, "--trt-json=out.json", *args, env=env, opts=FAST)
    assert r.ret == 0, r.stdout.str()
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    return res


def test_the_baselines_choice_comes_back_and_keeps_results_comparable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_choice=TEST)
    first = run(pytester, "--trt-baseline=update", first="eager")
    assert first["notes"] == ["prior=None"]  # no baseline yet: asked, with nothing
    (entry,) = load_baseline(pytester)["results"].values()
    assert entry["timed_as"] == "eager"

    again = run(pytester, first="graph")  # left alone it would now choose "graph"
    assert again["notes"] == ["prior=eager"] and again["identity"]["timed_as"] == "eager"
    assert again["verdict"]["status"] == "pass", again["verdict"]["message"]

    off = run(pytester, "--trt-baseline=off", first="graph")
    assert off["notes"] == ["prior=never asked"] and off["identity"]["timed_as"] == "graph"


def test_a_changed_choice_is_incomparable_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_choice=TEST)
    run(pytester, "--trt-baseline=update", first="eager")
    flipped = run(pytester, first="graph", ignore=True)
    v = flipped["verdict"]
    assert v["status"] == "incomparable"
    assert "timed as 'eager' in the baseline, 'graph' now" in v["message"]


def test_entries_of_workloads_that_do_not_choose_have_no_timed_as(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_p(trt_bench):\n    trt_bench.measure(lambda: sum(range(1000)))\n")
    r = pytester.runpytest(*FAST, "--trt-baseline=update")
    assert r.ret == 0
    (entry,) = load_baseline(pytester)["results"].values()
    assert "timed_as" not in entry
