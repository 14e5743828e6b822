"""``pytest-trtperf plan-info`` on real TensorRT-RTX plans built here on the CPU:
the header's version without a GPU, I/O and profiles from the engine cache's
record, one line for what needs a GPU, exit status 2 on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_trtperf.cli import main
from pytest_trtperf.core.config import TrtOptions
from pytest_trtperf.gpu import cuda
from pytest_trtperf.trt.api import get_engine
from pytest_trtperf.trt.plan_info import read_header
from pytest_trtperf.trt.spec import EngineSpec

NO_GPU = cuda.unavailable_reason() is not None
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cached_plan(rtx, models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-profile MLP plan in a fresh engine cache (``<key>.plan`` + ``<key>.json``)."""
    cache = tmp_path_factory.mktemp("engines")
    spec = EngineSpec.create("test_plan_info.py", models, onnx="mlp.onnx", optimization_level=0,
                             min_shapes=[{"input": (1, 64)}, {"input": (16, 64)}],
                             opt_shapes=[{"input": (4, 64)}, {"input": (32, 64)}],
                             max_shapes=[{"input": (8, 64)}, {"input": (64, 64)}])
    handle = get_engine(spec, TrtOptions.from_values(backend="tensorrt_rtx", engine_cache=str(cache)))
    assert handle.plan_path is not None and handle.plan_path.with_suffix(".json").is_file()
    return handle.plan_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["plan-info", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_header_names_the_library_and_version_that_built_the_plan(rtx, cached_plan: Path) -> None:
    header = read_header(cached_plan.read_bytes(), str(cached_plan))
    assert (header.backend, header.label, header.serialization) == ("tensorrt_rtx", "TensorRT-RTX", 0)
    # The library reports its own version; the plan's header must say the same.
    assert header.version == rtx.version


def test_cached_plan_shows_io_and_profiles_from_the_record(rtx, cached_plan: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, str(cached_plan))
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert f"Plan was created with TensorRT-RTX version {rtx.version}" in lines
    assert f"installed here: {rtx.label}" in lines
    assert "  input: input, float32, (?, 64)" in lines and "  output: output, float32, (?, 10)" in lines
    assert "    profile 0 shapes: min (1, 64) opt (4, 64) max (8, 64)" in lines
    assert "    profile 1 shapes: min (16, 64) opt (32, 64) max (64, 64)" in lines
    assert "optimization profiles: 2" in lines
    if NO_GPU:
        assert "I/O tensors (from the engine cache record):" in lines
        (why,) = [x for x in lines if x.startswith("engine not deserialized here: ")]
        assert "no usable GPU" in why


@pytest.mark.skipif(not NO_GPU, reason="a GPU deserializes the plan: the line is for machines without one")
def test_a_plan_from_elsewhere_gets_the_header_and_one_line_why(rtx, cached_plan: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "model.engine"
    shutil.copyfile(cached_plan, plan)  # no record next to it
    rc, out, _ = run(capsys, str(plan))
    assert rc == 0
    assert f"Plan was created with TensorRT-RTX version {rtx.version}" in out
    (line,) = [x for x in out.splitlines() if x.startswith("I/O tensors and profiles: unknown")]
    assert "no usable GPU" in line and not any(x.startswith("  input:") for x in out.splitlines())
    # A record that does not match the plan's bytes is not used.
    (tmp_path / "model.json").write_text(cached_plan.with_suffix(".json").read_text())
    plan.write_bytes(plan.read_bytes() + b"\0")
    rc, out, _ = run(capsys, str(plan))
    assert rc == 0 and "I/O tensors and profiles: unknown" in out


def test_json_output(rtx, cached_plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, str(cached_plan), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["library"] == "tensorrt_rtx" and doc["version"] == rtx.version
    assert doc["size"] == cached_plan.stat().st_size
    assert [t["name"] for t in doc["io"]] == ["input", "output"] and doc["profiles"] == 2


def test_another_version_and_the_other_library(rtx, cached_plan: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(cached_plan.read_bytes())
    data[24:28] = bytes([9, 8, 7, 6])
    older = tmp_path / "older.plan"
    older.write_bytes(bytes(data))
    rc, out, _ = run(capsys, str(older))
    assert rc == 0 and "Plan was created with TensorRT-RTX version 9.8.7.6" in out
    assert f"installed here: {rtx.label} (not the version that built the plan)" in out
    data[:4] = b"ftrt"
    full = tmp_path / "full.plan"
    full.write_bytes(bytes(data))
    rc, out, _ = run(capsys, str(full))
    assert rc == 0 and "Plan was created with TensorRT version 9.8.7.6" in out
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert "I/O tensors and profiles: unknown" in out and "TensorRT is not installed here" in out


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    (b"ftrt\0\0\0\0", "too short"),
    (b"\x08\x08:\x92" + bytes(60), "not a TensorRT or TensorRT-RTX plan"),
    (b"vtrt" + (7).to_bytes(4, "little") + bytes(60), "serialization version 7"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 content: bytes | None, fragment: str) -> None:
    path = tmp_path / "x.plan"
    if content is not None:
        path.write_bytes(content)
    rc, out, err = run(capsys, str(path))
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err and str(path) in err, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and /dev/zero")
@pytest.mark.parametrize("kind, fragment", [
    ("fifo", "is a FIFO, not a regular file"),
    ("zero", "is a character device, not a regular file"),
    ("dir", "is a directory, not a regular file"),
    ("loop", "is a symbolic link loop"),
    ("dangling", "is a symbolic link to nothing"),
])
def test_a_non_file_is_one_line_and_exit_status_2_never_a_hang(tmp_path: Path, kind: str, fragment: str) -> None:
    """``plan-info /dev/zero`` grew memory without bound and a FIFO hung it
    (issue 16). A real process with a timeout, so a regression cannot hang CI."""
    path = tmp_path / "x.plan"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "dir":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.name)
    else:
        path.symlink_to("gone.plan")
    code = "import sys; from pytest_trtperf.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "plan-info", str(path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and proc.stdout == "", proc
    (line,) = proc.stderr.strip().splitlines()
    assert fragment in line and str(path) in line and "Traceback" not in proc.stderr, line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_as_the_cache_record_is_not_read(rtx, cached_plan: Path, tmp_path: Path) -> None:
    """The record beside a plan (``<key>.json``) is read with the same care."""
    plan = tmp_path / "model.plan"
    shutil.copyfile(cached_plan, plan)
    os.mkfifo(tmp_path / "model.json")
    code = "import sys; from pytest_trtperf.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "plan-info", str(plan)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc
    assert f"Plan was created with TensorRT-RTX version {rtx.version}" in proc.stdout
