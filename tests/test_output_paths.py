"""Outputs never replace anything but a regular file (issue 25 item 2).

Run as root (the usual case in CI containers), ``--trt-json=/dev/null``
replaced /dev/null with a regular file for the rest of the container's life.
These tests never touch the real /dev: the device node, FIFO and socket are
made in a temporary directory (a device node only where we may: as root).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import tempfile
from pathlib import Path
from collections.abc import Callable, Iterator

import pytest

from helpers import QUICK, spin_test
from pytest_trtperf.core.files import atomic_write


def _fifo(d: Path) -> Path:
    p = d / "fifo"
    os.mkfifo(p)
    return p


def _device(d: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    p = d / "null"
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is, in a temporary directory
    return p


def _directory(d: Path) -> Path:
    p = d / "adir"
    p.mkdir()
    return p


@contextlib.contextmanager
def _socket(d: Path) -> Iterator[Path]:
    del d  # a socket's path must be short (108 bytes): pytester's directories are longer
    short = Path(tempfile.mkdtemp(prefix="trtperf-sock-", dir="/tmp"))
    p = short / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    try:
        yield p
    finally:
        s.close()
        p.unlink()
        short.rmdir()


KINDS: dict[str, Callable[[Path], Path]] = {"fifo": _fifo, "device": _device, "directory": _directory}
WORDS = {"fifo": "is a FIFO", "device": "is a character device", "directory": "is a directory", "socket": "is a socket"}


def _made(kind: str, d: Path) -> contextlib.AbstractContextManager[Path]:
    if kind == "socket":
        return _socket(d)
    return contextlib.nullcontext(KINDS[kind](d))


def _unchanged(p: Path, kind: str) -> None:
    mode = os.lstat(p).st_mode
    assert {"fifo": stat.S_ISFIFO, "device": stat.S_ISCHR, "directory": stat.S_ISDIR,
            "socket": stat.S_ISSOCK}[kind](mode), f"{p} was replaced"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "socket"])
def test_atomic_write_never_replaces_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    with _made(kind, tmp_path) as p:
        with pytest.raises(OSError) as e:
            atomic_write(p, "{}")
        assert WORDS[kind] in str(e.value.strerror), e.value
        _unchanged(p, kind)
        assert not [q for q in tmp_path.iterdir() if q.name.endswith(".tmp")]


@pytest.mark.parametrize("option", ["--trt-json", "--trt-report", "--trt-csv"])
@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_an_output_that_is_not_a_regular_file_is_a_usage_error_before_measuring(
        pytester: pytest.Pytester, option: str, kind: str) -> None:
    pytester.makepyfile(test_perf=spin_test())
    with _made(kind, pytester.path) as p:
        r = pytester.runpytest_subprocess(*QUICK, f"{option}={p}", timeout=60)
        assert r.ret == 4, r.stdout.str()
        errors = [ln for ln in r.stderr.lines if ln.startswith("ERROR:")]
        assert len(errors) == 1 and errors[0].startswith(f"ERROR: {option}={p}: {WORDS[kind]}"), r.stderr.lines
        assert "test_perf.py" not in r.stdout.str()  # nothing ran
        _unchanged(p, kind)


def test_an_output_onto_a_test_source_or_another_output_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    before = (pytester.path / "test_perf.py").read_bytes()
    r = pytester.runpytest_subprocess(*QUICK, "--trt-report=test_perf.py", timeout=60)
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-report=*test_perf.py: is a Python source file*"])
    assert (pytester.path / "test_perf.py").read_bytes() == before
    r = pytester.runpytest_subprocess(*QUICK, "--trt-json=out.json", "--trt-csv=./out.json", timeout=60)
    assert r.ret == 4
    r.stderr.fnmatch_lines(["ERROR: --trt-json=*out.json and --trt-csv=*out.json are the same file*"])
    assert not (pytester.path / "out.json").exists()


def test_the_cli_output_refuses_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_trtperf.cli import main

    p = _fifo(tmp_path)
    doc = tmp_path / "a.json"
    doc.write_text("{}")
    assert main(["report", str(doc), "-o", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"-o {p}: is a FIFO" in err, err
    _unchanged(p, "fifo")
