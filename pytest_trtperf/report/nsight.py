"""From a red test to a profile: the commands that profile one result.

A failed or incomparable GPU result's message ends with the Nsight Systems
command that profiles just that test (:func:`with_profile_command`); the
README's "Profiling a regression" section explains each part. The command
runs pytest on the test's node id with the session options that change what
is measured, ``--trt-baseline=off`` (a run under a profiler is not a run to
judge), and the options that make the measured window visible to the
profiler: ``--trt-profiler-api`` (nsys records only between
``cudaProfilerStart``/``Stop``) and ``--trt-nvtx`` (a range per window). A
TensorRT result also gets ``--trt-profile-layers --trt-export-dir=...``: the
per-layer profile and the engine inspector JSON land next to the report.

Pytest-free: the fixture passes the node id, paths and settings in.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from pytest_trtperf.core.identity import file_stem, plain_nodeid
from pytest_trtperf.core.results import Result
from pytest_trtperf.core.workload import clock_of

#: Verdicts whose message gets the command (a GPU result only).
PROFILED_STATUSES = ("regression", "incomparable")
#: What precedes the command in a verdict message (the message ends with the command).
PREFIX = "\n  profile this test under Nsight Systems: "
#: Where ``--trt-export-dir`` points in the command for TensorRT results.
EXPORT_DIR = "trtperf-export"
#: Characters with a meaning in ncu's push/pop range filter syntax; escaped with a backslash.
_NCU_SPECIAL = "\\/[]+*@"


@dataclass(frozen=True)
class CommandContext:
    """What the command needs from the session, as plain values."""

    #: ``python -m pytest`` as argv (the interpreter that ran this session).
    pytest: tuple[str, ...]
    rootdir: Path
    #: Where pytest was started: node ids are made relative to it.
    invocation_dir: Path
    #: Session options that change what is measured (:func:`session_args`).
    args: tuple[str, ...] = ()
    #: pytest-xdist is loaded: ``-n 0`` keeps the profiled run in one process.
    xdist: bool = False


def pytest_argv(python: str | None = None) -> tuple[str, ...]:
    """``python -m pytest`` when ``python`` on PATH is this interpreter,
    else this interpreter's full path: the command must run the same
    environment (a different venv has a different plugin set)."""
    exe = python or sys.executable
    on_path = shutil.which("python")
    if on_path and os.path.abspath(on_path) == os.path.abspath(exe):
        exe = "python"
    return (exe, "-m", "pytest")


def _shown(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it, else absolute."""
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix() or "."
    except (ValueError, OSError):
        return Path(path).as_posix()


def session_args(settings: Any, invocation_dir: Path) -> tuple[str, ...]:
    """The command-line options of ``settings`` that change what a result
    measures or which engine it loads, where they differ from the defaults
    (ini values are read again by the profiled run anyway; markers are in the
    test)."""
    m, trt = settings.measure, settings.trt
    out: list[str] = []
    if m.mode != "latency":
        out.append(f"--trt-mode={m.mode}")
    if m.streams != 1:
        out.append(f"--trt-streams={m.streams}")
    if not m.cuda_graph:
        out.append("--trt-no-cuda-graph")
    if m.blocking_sync:
        out.append("--trt-blocking-sync")
    if m.include_transfers:
        out.append("--trt-include-transfers")
    if trt.backend != "auto":
        out.append(f"--trt-backend={trt.backend}")
    default_cache = Path(settings.rootdir) / ".trtperf" / "engines"
    if trt.engine_cache is None:
        out.append("--trt-engine-cache=off")
    elif Path(trt.engine_cache).resolve() != default_cache.resolve():
        out.append(f"--trt-engine-cache={_shown(trt.engine_cache, invocation_dir)}")
    if trt.allow_engine_host_code:
        out.append("--trt-allow-engine-host-code")
    return tuple(out)


def context_for(settings: Any, invocation_dir: Path, *, xdist: bool, python: str | None = None) -> CommandContext:
    return CommandContext(pytest=pytest_argv(python), rootdir=Path(settings.rootdir),
                          invocation_dir=Path(invocation_dir), args=session_args(settings, Path(invocation_dir)),
                          xdist=xdist)


def pytest_target(nodeid: str, rootdir: Path, invocation_dir: Path) -> str:
    """The node id as a command-line argument from ``invocation_dir`` (node
    ids are relative to the rootdir)."""
    nodeid = plain_nodeid(nodeid)
    path, sep, rest = nodeid.partition("::")
    try:
        rel = Path(os.path.relpath(Path(rootdir) / path, Path(invocation_dir))).as_posix()
    except ValueError:  # another drive on Windows
        rel = (Path(rootdir) / path).as_posix()
    return rel + sep + rest


def _measured(result: Result) -> list[tuple[str, Any]]:
    """(kind, identity) of what the result timed: both sides of a relative
    gate (``trt_bench.compare``), else the result itself."""
    rel = result.relative
    if result.is_relative_gate and rel is not None:
        return [(rel.a.kind, rel.a.identity), (rel.b.kind, rel.b.identity)]
    return [(result.kind, result.identity)]


def graphs_on(result: Result) -> bool:
    """Did the timed work replay CUDA graphs (asked for, and not timed
    eagerly)? For a relative gate: on either side."""
    return any(bool(ident.get("cuda_graph")) and ident.get("timed_as") != "eager" for _, ident in _measured(result))


def timed_tensorrt(result: Result) -> bool:
    """A TensorRT engine was timed (for a relative gate: on either side)."""
    return any(kind == "tensorrt" for kind, _ in _measured(result))


def profiled_pytest_args(result: Result, ctx: CommandContext) -> list[str]:
    """``python -m pytest <node> ...``: the run a profiler wraps."""
    args = [*ctx.pytest, pytest_target(result.nodeid, ctx.rootdir, ctx.invocation_dir)]
    if ctx.xdist:
        args += ["-n", "0"]
    args += ["--trt-baseline=off", "--trt-profiler-api", "--trt-nvtx", *ctx.args]
    if timed_tensorrt(result):
        args += ["--trt-profile-layers", f"--trt-export-dir={EXPORT_DIR}"]
    return args


def nsys_argv(result: Result, ctx: CommandContext) -> list[str]:
    """Nsight Systems, recording only the measured windows of this test."""
    argv = ["nsys", "profile", "--trace=cuda,nvtx,osrt", "--capture-range=cudaProfilerApi",
            "--capture-range-end=repeat"]
    if graphs_on(result):
        argv.append("--cuda-graph-trace=node")
    argv.append(f"--output=trtperf-{file_stem(result.id)}")
    return argv + profiled_pytest_args(result, ctx)


def ncu_filter(result_id: str, side: str | None = None) -> str:
    """``ncu --nvtx-include`` value selecting the kernels launched inside the
    push/pop range of ``result_id`` in the trtperf domain (the trailing ``/``
    marks a push/pop range; ``/ [ ] + * @ \\`` in the id are escaped). For a
    relative gate the id's range holds both sides; ``side="a"`` or ``"b"``
    selects one side's blocks (``<id> [a]``, ``gpu/window.py``)."""
    from pytest_trtperf.gpu.nvtx import DOMAIN
    from pytest_trtperf.gpu.window import side_range_name

    name = result_id if side is None else side_range_name(result_id, side)
    escaped = "".join("\\" + c if c in _NCU_SPECIAL else c for c in name)
    return f"{DOMAIN}@{escaped}/"


def ncu_argv(result: Result, ctx: CommandContext, *, metrics: Sequence[str] = ()) -> list[str]:
    """Nsight Compute on the kernels of this result's measured windows only."""
    argv = ["ncu", "--nvtx", "--nvtx-include", ncu_filter(result.id), "--clock-control", "none"]
    if metrics:
        argv += ["--metrics", ",".join(metrics)]
    argv.append(f"--export=trtperf-{file_stem(result.id)}")
    pytest_args = [a for a in profiled_pytest_args(result, ctx) if a != "--trt-profiler-api"]
    return argv + pytest_args


def command_line(argv: Sequence[str]) -> str:
    """One shell line (POSIX quoting): copy, paste, run."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def wants_command(result: Result) -> bool:
    return clock_of(result) != "host" and result.verdict is not None and result.verdict.status in PROFILED_STATUSES


def with_profile_command(result: Result, ctx: CommandContext) -> Result:
    """``result`` whose verdict message ends with the nsys command, when it
    is a failed or incomparable GPU result; otherwise unchanged."""
    if not wants_command(result):
        return result
    assert result.verdict is not None
    message = result.verdict.message + PREFIX + command_line(nsys_argv(result, ctx))
    return dataclasses.replace(result, verdict=dataclasses.replace(result.verdict, message=message))
