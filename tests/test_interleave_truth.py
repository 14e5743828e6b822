"""Interleaved ratios against ground truth on the host (issue 27, point 3):
spins of known length on ``time.perf_counter_ns`` (tests/host_spin.py) as
``a`` and ``b`` at true ratios 1.000, 1.010, 1.030 and 1.100 through the
relative gate's policy (``run_relative``, what ``trt_bench.compare`` runs).
Bounds (tests/truth_bounds.py) come from the overhead of a 0 ns spin and the
gate's own interval, measured here, never tuned on one machine. The GPU twin
is tests/gpu/test_interleave_truth_gpu.py; bench/interleave_truth.py runs the
full matrix (20 us to 2 ms, quiet and under busy processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import REPO
from host_spin import loop_step_ns, overhead_us, spinner
from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, MeasureSettings, Settings
from pytest_trtperf.core.measure import measure
from pytest_trtperf.relative.policy import Expectation, run_relative
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.core.stats import median_ci_rel_width
from pytest_trtperf.workloads.host import HostWorkload
from truth_bounds import RatioBound, absolute_holds, half_width, swap_holds

#: Timed against closed forms or tight bounds: no busy loops on another xdist worker meanwhile (tests/host_share.py).
pytestmark = pytest.mark.needs_quiet_host

T_US = 200.0
OPTS = MeasureOptions(remeasure=False, warmup_s=0.05, min_time_s=0.3, max_time_s=2.0)
NEVER_FAILS = Expectation.from_config("max_slowdown", 10.0)
#: Runs at most; the first that meets its bounds decides (a stall of the shared
#: machine is not the harness's error, which reads the same every time).
ATTEMPTS = 3


def spin(us: float) -> HostWorkload:
    return HostWorkload(spinner(int(round(us * 1000))))


def alone(us: float) -> tuple[float, float]:
    """(median in us, relative width of its interval) of the spin measured alone."""
    m = measure(spin(us), MeasureSettings.from_options(OPTS))
    return float(np.median(m.latency_s)) * 1e6, median_ci_rel_width(m.latency_s, OPTS.confidence)


@pytest.fixture(scope="module")
def e_max_us() -> float:
    """What the harness adds to a spin (host_spin.overhead_us), from spins
    measured alone: the interleaved readings are judged against it."""
    return overhead_us(lambda us: alone(us)[0], T_US * 1.1)


def compared(a_us: float, b_us: float, tmp_path: Path) -> Any:
    s = Settings(baseline_mode="off", baseline_dir=tmp_path / "b", rootdir=tmp_path, require_gpu=False,
                 json_path=None, report_path=None)
    r = run_relative(Runner(s, BaselineStore(s.baseline_dir)), spin(a_us), spin(b_us),
                     Target(id="t::truth", nodeid="t", name="truth"), OPTS, NEVER_FAILS)
    assert r.relative is not None
    return r.relative


def one_try(ratio: float, e_max: float, tmp_path: Path) -> tuple[bool, str]:
    """One interleaved run of ``a`` = 200 us and ``b`` = 200 us x ``ratio``,
    bracketed by both spins measured alone before and after it. What a spin
    reads above its length drifts by a few tenths of a microsecond from one
    second to the next on a shared machine (a busy hyperthread sibling slows
    each clock read), so ``e`` for this try is the largest excess any bracket
    read (and never below the module's ``e_max``): the truth checks then ask
    that interleaving adds nothing the same spins alone did not."""
    ta, tb = T_US, T_US * ratio
    before = {name: alone(t) for name, t in (("a", ta), ("b", tb))}
    ab, ba = compared(ta, tb, tmp_path), compared(tb, ta, tmp_path)
    after = {name: alone(t) for name, t in (("a", ta), ("b", tb))}
    step = loop_step_ns() / 1e3
    e_try = max([e_max] + [run[n][0] - t + step for run in (before, after) for n, t in (("a", ta), ("b", tb))])
    bound = RatioBound.of(ta, tb, e_max=e_try, quantum=0.001, ci=ab.ci, ratio=ab.ratio)
    checks = {"ratio in bound": bound.holds(ab.ratio),
              "swap is the reciprocal": swap_holds(ab.ratio, ba.ratio, ab.ci, ba.ci, 0.001 / ta)}
    width = half_width(ab.ci, ab.ratio)
    readings = {}
    for name, true_us, side in (("a", ta, ab.a), ("b", tb, ab.b)):
        il_us = side.latency.median * 1e3
        alones = [(run[name][0], run[name][1]) for run in (before, after)]
        readings[name] = (round(il_us, 3), [round(us, 3) for us, _ in alones])
        checks[f"{name} agrees with alone"] = any(
            absolute_holds(il_us, us, allowed=e_try + us * (w + width)) for us, w in alones)
        checks[f"{name} within its truth"] = true_us <= il_us <= true_us + e_try + true_us * width
    detail = (f"b/a {ab.ratio:.5f} CI {ab.ci}, bound {bound}, swapped {ba.ratio:.5f}, e_max {e_max:.3f} us, "
              f"this try's e {e_try:.3f} us, (interleaved, [alone before, after]) us {readings}: {checks}")
    return all(checks.values()), detail


@pytest.mark.parametrize("ratio", [1.000, 1.010, 1.030, 1.100])
def test_interleaved_ratio_of_host_spins_matches_the_truth(ratio: float, e_max_us: float, tmp_path: Path) -> None:
    tries: list[str] = []
    ok = False
    for _ in range(ATTEMPTS):
        ok, detail = one_try(ratio, e_max_us, tmp_path)
        tries.append(detail)
        if ok:
            break
    assert ok, "\n".join(tries)


def test_gpu_script_dry_run_on_the_cpu(tmp_path: Path) -> None:
    """bench/interleave_truth.py's GPU mode runs once on a lent GPU with nobody
    to debug it: its dry run goes through every section and output with host
    stand-ins (spins for kernels, hashing for the models, fresh processes)."""
    out = tmp_path / "truth.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "interleave_truth.py"), "gpu", "--cpu-dry-run",
                        "--quick", "--out", str(out)], capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(out.read_text())
    assert doc["dry_run"] and {"spin", "mlp", "launch"} <= set(doc)
    rows = doc["spin"]["rows"]
    assert [(row["cuda_graph"], row["true_ratio"]) for row in rows] == [
        (g, x) for g in (True, False) for x in (1.0, 1.01, 1.03, 1.1)]
    assert all(row["ab"]["pairs"] >= 2 and row["ab"]["pairs"] % 2 == 0 for row in rows)  # whole cycles
    for kind in ("mlp", "launch"):
        pair = doc[kind]
        assert {"graph a/b interleaved", "graph b/a swapped", "graph a/a' no change", "eager a alone",
                "graph a/b no lead-in", "graph a/b 250ms blocks", "graph a/a same model"} <= set(pair)
        assert all("us" in run for run in pair["graph separate processes"]), pair["graph separate processes"]
        assert pair["graph separate ratio"] > 0
        assert len(pair["diagnosis"]) == 10 and all(line.startswith(f"DIAG {kind}") for line in pair["diagnosis"])
        assert f"DIAG {kind} graph: no change a/a' " in r.stdout
    assert "SUMMARY gpu spin kernels: ratio in bound" in r.stdout
    assert (tmp_path / "truth.txt").read_text().startswith("SUMMARY gpu spin kernels")


def test_gpu_mode_without_a_gpu_says_so_in_one_line() -> None:
    from pytest_trtperf.core.errors import BackendUnavailable
    from pytest_trtperf.gpu import cuda

    try:
        cuda.require_gpu()
    except BackendUnavailable:
        pass
    else:
        pytest.skip("a GPU is visible: the GPU mode would run for real")
    r = subprocess.run([sys.executable, str(REPO / "bench" / "interleave_truth.py"), "gpu", "--sections", "spin"],
                       capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("interleave_truth gpu: ") and "--cpu-dry-run" in line
