"""bench/ab_gate.py's GPU script must work in one call on the GPU machine, where
nobody can debug it: its CPU dry run goes through every phase for real (a
fresh baseline process, the soak, a neighbour process started and stopped,
A/B and baseline-file verdicts, the summary) with host workloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO


#: Seconds the dry run may take (``--budget``): the fresh baseline process, the
#: soak and the neighbour's start leave room for the one trial it always runs.
BUDGET = 6


def test_gpu_script_dry_run_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "ab_gate_gpu.json"
    # --max-time 1: each A/B and baseline-file measurement at most 1 s (the GPU run keeps the plugin's default)
    r = subprocess.run([sys.executable, str(REPO / "bench" / "ab_gate.py"), "gpu", "--cpu-dry-run", "--budget",
                        str(BUDGET), "--soak", "0.5", "--windows", "1", "--trial-s", "5", "--max-time", "1",
                        "--out", str(out)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    assert r.returncode == 0, r.stdout + r.stderr
    log = json.loads(out.read_text())
    assert list(log["phases"]) == ["baseline (fresh process, cool card)", "heat soak", "neighbour started",
                                   "neighbour stopped"]
    assert log["phases"]["neighbour stopped"]["returncode"] == 0
    assert "neighbour ran" in log["phases"]["neighbour stopped"]["output"]
    kinds = [t["kind"] for t in log["trials"]]
    assert kinds[:2] == ["ab", "file"] and len(kinds) % 2 == 0
    first = log["trials"][0]
    assert first["level"] == 0.0 and first["pairs"] >= 3 and first["ci"][0] <= first["ratio"] <= first["ci"][1]
    assert "| A/B interleaved |" in log["summary"] and "| A/B interleaved |" in r.stdout
    assert log["seconds"] < BUDGET + 30  # the budget holds (one trial may run over; a loaded 2-core machine)
