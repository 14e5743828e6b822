"""A real NVTX tool for tests: ``nvtx_recorder.c``, built with the machine's C
compiler and loaded the way Nsight tools are (``NVTX_INJECTION64_PATH``), logs
every push/pop range event of a process to a file. A test's workload appends
its own ``call`` lines to the same file, so the log shows which range each
measured call ran in -- on a machine without a GPU or Nsight.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("nvtx_recorder.c")
#: The file the tool appends to, from the environment of the process it is loaded into.
LOG_ENV = "TRTPERF_NVTX_LOG"

#: Lines a workload writes into the log (``os.write`` on an O_APPEND descriptor).
CALL_WRITER = '''
import os

_LOG = os.open(os.environ["TRTPERF_NVTX_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def logged(tag):
    """A callable that appends ``call<TAB>tag`` to the NVTX log on every call."""
    line = f"call\\t{tag}\\n".encode()
    return lambda: os.write(_LOG, line)
'''


def build(directory: Path) -> tuple[Path | None, str]:
    """Compile the tool into ``directory``; (library, "") or (None, why not)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None, "no C compiler (cc, gcc, clang) to build the NVTX recorder tool"
    out = Path(directory) / "libnvtx_recorder.so"
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(SOURCE)], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        return None, f"the NVTX recorder tool did not build: {proc.stderr.strip()[:300]}"
    return out, ""


def library_or_skip(directory: Path) -> Path:
    """The built tool, for a test that needs NVIDIA's nvtx package and the
    tool; the test skips with the one-line reason when either is missing."""
    import pytest

    from pytest_trtperf.gpu import nvtx as nvtx_layer

    why = nvtx_layer.unavailable_reason()
    if why is not None:
        pytest.skip(why)
    library, why = build(directory)
    if library is None:
        pytest.skip(why)
    return library


def environment(library: Path, log: Path) -> dict[str, str]:
    """What a process needs to load the tool and log into ``log``."""
    return {"NVTX_INJECTION64_PATH": str(library), LOG_ENV: str(log)}


@dataclass(frozen=True)
class Call:
    """One ``call`` line: its tag and the trtperf ranges open around it (outermost first)."""

    tag: str
    stack: tuple[str, ...]


@dataclass(frozen=True)
class Log:
    calls: tuple[Call, ...]
    #: Every range pushed in the trtperf domain, in order.
    pushed: tuple[str, ...]
    #: Ranges still open at the end (should be none).
    left_open: tuple[str, ...]


def read(log: Path, domain: str = "trtperf") -> Log:
    """Replay the log: the range stack of ``domain`` at every call."""
    stack: list[str] = []
    calls, pushed = [], []
    for line in Path(log).read_text().splitlines():
        parts = line.split("\t")
        if parts[0] == "push" and parts[1] == domain:
            stack.append(parts[2])
            pushed.append(parts[2])
        elif parts[0] == "pop" and parts[1] == domain:
            assert stack, f"pop without a push in {log}"
            stack.pop()
        elif parts[0] == "call":
            calls.append(Call(parts[1], tuple(stack)))
    return Log(calls=tuple(calls), pushed=tuple(pushed), left_open=tuple(stack))
