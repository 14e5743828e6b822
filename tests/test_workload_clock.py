"""Workloads say which clock times them (issue 24, point 2).

Host and GPU work are treated apart in many places (the noise prior, the host
watch and its busy-host wait, the fingerprint, the gate's and the baseline
notes' wording, the profiler commands, the HTML report). They all ask
``core.workload.clock_of``; only ``core/workload.py`` maps a kind's name to a
clock. A second host-timed kind (``HostRounds`` below) is host work
everywhere, where a ``kind == "host"`` test would have made it GPU work.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import REPO
from pytest_trtperf.baselines.store import BaselineStore
from pytest_trtperf.core.config import MeasureOptions, Settings
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.noise import PRIOR_SD
from pytest_trtperf.core.results import Result, Verdict
from pytest_trtperf.core.workload import Batch, ClockedWorkload, Workload, clock_of, kind_clock
from pytest_trtperf.gate.timing import judge
from pytest_trtperf.pipeline.runner import Runner, Target, unreliable_verdict
from pytest_trtperf.relative.policy import timed_alike
from pytest_trtperf.report import nsight
from pytest_trtperf.report.html import render
from pytest_trtperf.workloads.host import HostWorkload

PKG = REPO / "pytest_trtperf"
#: The one module that may read a clock from a kind's name.
MAPPING = PKG / "core" / "workload.py"
#: Short windows; a loaded host (other sessions on this machine) is waited out briefly.
OPTS = MeasureOptions(warmup_s=0.02, min_time_s=0.2, max_time_s=1.0, busy_wait_s=0.5)
DATA = b"\x5a" * 200_000


class HostRounds:
    """A second host-timed workload kind, as a user (or a new module of
    ``workloads/``) would write one: its own kind, the host's clock."""

    kind = "host-rounds"
    clock = "host"
    inferences_per_iteration = 1

    def setup(self) -> None: ...

    def run(self, iterations: int) -> Batch:
        lat = np.empty(iterations)
        start = time.perf_counter()
        for i in range(iterations):
            t = time.perf_counter()
            hashlib.sha256(DATA).digest()
            lat[i] = time.perf_counter() - t
        return Batch(latency_s=lat, wall_s=time.perf_counter() - start)

    def teardown(self) -> None: ...
    def identity(self) -> dict[str, Any]: return {"bytes": len(DATA)}
    def notes(self) -> tuple[str, ...]: return ()


class Legacy(HostRounds):
    """A user's Workload written before clocks were declared: no ``clock``."""

    clock = None  # type: ignore[assignment]  # as if absent: clock_of reads None as "not declared"


def kind_compares(tree: ast.AST) -> list[int]:
    """Lines comparing something named like a kind with the string "host"."""

    def kindish(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return "kind" in node.id.lower()
        if isinstance(node, ast.Attribute):
            return "kind" in node.attr.lower()
        if isinstance(node, ast.Subscript):
            return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
        if isinstance(node, ast.Call):  # d.get("kind"), getattr(x, "kind")
            return any(isinstance(a, ast.Constant) and a.value == "kind" for a in node.args)
        return False

    def hosts(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Constant) and n.value == "host" for n in ast.walk(node))

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(kindish(o) for o in operands) and any(hosts(o) for o in operands if not kindish(o)):
                lines.append(node.lineno)
    return lines


def test_no_kind_is_compared_with_host_outside_the_mapping() -> None:
    found = [f"{path.relative_to(REPO)}:{line}" for path in sorted(PKG.rglob("*.py")) if path != MAPPING
             for line in sorted(set(kind_compares(ast.parse(path.read_text(encoding="utf-8")))))]
    assert found == [], f"ask core.workload.clock_of(...) instead of comparing a kind with 'host': {found}"


def test_the_check_sees_the_spellings_it_forbids() -> None:
    for source in ('r.kind == "host"', 'x if w.kind != "host" else y', 'f"{1 if kind == \'host\' else 2}"',
                   'd.get("kind") == "host"', 'd["kind"] in ("host", "cuda")'):
        assert kind_compares(ast.parse(source)), source
    for source in ('clock_of(r) == "host"', 'timer == "host"', 'r.kind == b.kind'):
        assert not kind_compares(ast.parse(source)), source


def test_one_mapping_for_workloads_that_do_not_say() -> None:
    assert isinstance(HostRounds(), ClockedWorkload) and isinstance(Legacy(), Workload)
    assert clock_of(HostRounds()) == "host" and clock_of(HostWorkload(lambda: 1)) == "host"
    assert clock_of(Legacy()) == kind_clock("host-rounds") == "device"  # as before: not "host", so GPU-timed
    assert [kind_clock(k) for k in ("host", "cuda", "torch", "tensorrt")] == ["host", "device", "device", "device"]
    bad = dataclasses.make_dataclass("Bad", [("kind", str, "host"), ("clock", str, "gpu")])()
    with pytest.raises(UsageError, match=r"^Bad\.clock is 'gpu'; set it to \"host\" .* or leave it out$"):
        clock_of(bad)


def measured(tmp_path: Path, mode: str) -> Result:
    s = Settings(baseline_mode=mode, baseline_dir=tmp_path, rootdir=tmp_path, require_gpu=False, json_path=None,
                 report_path=None)
    return Runner(s, BaselineStore(tmp_path)).run(HostRounds(), Target("t.py::t", "t.py::t", None), OPTS)


def test_a_second_host_kind_is_measured_and_judged_as_host_work(tmp_path: Path) -> None:
    first = measured(tmp_path, "update")
    assert first.kind == "host-rounds" and first.clock == "host"
    # Host fingerprint (no GPU asked for), its critical kind the workload's own.
    assert first.device_class.startswith("host ") and first.fingerprint["critical"] == {"kind": "host-rounds"}
    # The host watch sampled the window (NVML would have said kind "gpu" or nothing).
    assert first.device_state.kind == "host" and first.device_state.cpu_delayed is not None
    # The clock crosses the xdist wire and --trt-json; built-in kinds write no new key.
    assert first.to_dict()["clock"] == "host" and Result.from_dict(first.to_dict()).clock == "host"
    assert "clock" not in dataclasses.replace(first, kind="host", clock=None).to_dict()
    BaselineStore(tmp_path).write([first], timestamp="2026-01-01T00:00:00Z", git_commit=None)

    second = measured(tmp_path, "compare")
    assert second.verdict is not None and second.verdict.run_noise is not None
    noise = second.verdict.run_noise
    assert (noise["family"], noise["source"], noise["sd"]) == ("host", "prior", PRIOR_SD["host"])
    if second.verdict.status != "unreliable":  # a loaded host: the message names the load instead
        assert f"(sd {PRIOR_SD['host']:.1%}, host prior, 1 run)" in second.verdict.message


def busy(r: Result) -> Result:
    return dataclasses.replace(r, device_state=dataclasses.replace(r.device_state, flags=("host_busy",)))


def test_busy_host_wording_and_gpu_only_aids(tmp_path: Path) -> None:
    quiet = measured(tmp_path, "update")
    BaselineStore(tmp_path).write([quiet], timestamp="2026-01-01T00:00:00Z", git_commit=None)
    loaded = busy(measured(tmp_path, "compare"))
    assert loaded.verdict is not None
    # The busy-host verdict after the wait names the host.
    v = unreliable_verdict(loaded, loaded.verdict, ("spin (pid 1)",), 1.0)
    assert v.decided_by == "host_busy" and v.message.startswith("unreliable: host busy (")
    # The gate says which state differed from the baseline's.
    entry = BaselineStore(tmp_path).lookup(quiet.device_class, quiet.id)
    text = judge(loaded, entry, baseline_mode="compare", metric="median", tolerance=0.05, confidence=0.99,
                 baseline_path="b.json").message
    assert "; host state vs the baseline: host_busy" in text and "GPU state" not in text
    # An update measured under load says so in its note.
    notes: list[str] = []
    BaselineStore(tmp_path).write([busy(quiet)], timestamp="2026-01-02T00:00:00Z", git_commit=None, notes=notes)
    assert any("measured while the host was busy (" in n for n in notes), notes
    # No Nsight command and no GPU state section for host work.
    failed = dataclasses.replace(loaded, verdict=Verdict(status="regression", metric="median", tolerance=0.05,
                                                         message="t.py::t: median latency regressed +30%"))
    assert not nsight.wants_command(failed)
    page = render([failed], {}, generated="now", plots=False)
    assert "GPU state during the run" not in page
    assert nsight.wants_command(dataclasses.replace(failed, kind="tensorrt", clock=None))
    # A relative gate of a host-rounds side and a plain host side compares like with like.
    timed_alike(HostRounds(), HostWorkload(lambda: 1), where="t.py::t")
