"""Small papercuts from issue 15, one test each (the others live next to
their feature: iterations=2.5 and two unnamed measurements in test_config /
test_pipeline, the two-argument lambda in test_context)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.gpu import nvml
from pytest_trtperf.gpu.clocks import ClockController
from pytest_trtperf.core.config import LockSpec


@pytest.mark.parametrize("tool, writer", [
    ({"name": "pytest-trtperf", "version": "9.0.0"}, "written by pytest-trtperf 9.0.0;"),
    ({"name": "pytest-trtperf"}, "written by a newer pytest-trtperf;"),
    (None, "written by a newer pytest-trtperf;"),
])
def test_newer_schema_names_its_writer_in_plain_words(tmp_path: Path, tool: dict | None, writer: str) -> None:
    doc: dict = {"schema_version": baseline.SCHEMA_VERSION + 1, "device_class": "x", "results": {}}
    if tool is not None:
        doc["tool"] = tool
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BaselineFileError) as e:
        baseline.read_file(path)
    assert writer in str(e.value) and "pytest-trtperf a newer" not in str(e.value)


def test_lock_warning_says_install_nvidia_ml_py_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(nvml.ENV_MODULE, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    nvml.reset_module()
    try:
        outcome = ClockController(tmp_path, LockSpec("base")).lock([])
    finally:
        nvml.reset_module()
    assert outcome.state == "failed:no-nvml"
    assert outcome.warning.count("nvidia-ml-py") == 1, outcome.warning
    assert "pip install nvidia-ml-py" in outcome.warning and "driver" not in outcome.warning


def test_readme_history_command_works_in_a_clone(tmp_path: Path) -> None:
    """README: ``pytest-trtperf history --baseline-dir example_suite/.trtperf``
    needs committed baselines there; a fresh clone has them."""
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    committed = subprocess.run(["git", "ls-files", "example_suite/.trtperf"], cwd=REPO, capture_output=True,
                               text=True).stdout.split()
    assert [p for p in committed if p.endswith(".json")], "no baseline committed under example_suite/.trtperf"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, capture_output=True)
    readme = (REPO / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("pytest-trtperf history --baseline-dir example_suite"))
    args = line.split()[1:]
    proc = subprocess.run([sys.executable, "-m", "pytest_trtperf.cli", *args], cwd=clone, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "history: " in proc.stdout and "result(s), written to" in proc.stdout
    assert "example_suite/test_preprocess.py::test_preprocess_latency" in proc.stdout
