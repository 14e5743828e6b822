"""The command a failed or incomparable GPU result's message ends with.

GPU results cannot be measured here, so the results are built as plain data
(what a GPU run produces); the part that can go wrong on any machine -- the
node id and the options on a shell line -- is checked by running the command
for real, minus the ``nsys profile ...`` prefix, and looking at which test ran.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_trtperf.report import nsight
from pytest_trtperf.core.config import MeasureOptions, Settings, TrtOptions
from pytest_trtperf.report.html import render
from helpers import make_result

#: A judged GPU result, 30% slower than its baseline (the default of what nsight is about).
gpu_result = functools.partial(make_result, status="regression", change=0.3, kind="cuda")


def settings(rootdir: Path, **measure: object) -> Settings:
    return Settings(baseline_mode="compare", baseline_dir=rootdir / ".trtperf", rootdir=rootdir, require_gpu=False,
                    json_path=None, report_path=None, measure=MeasureOptions(**measure),  # type: ignore[arg-type]
                    trt=TrtOptions(engine_cache=rootdir / ".trtperf" / "engines"))


def ctx_for(rootdir: Path, invocation: Path | None = None, *, xdist: bool = False, **measure: object):
    return nsight.context_for(settings(rootdir, **measure), invocation or rootdir, xdist=xdist)


def test_message_ends_with_the_nsys_command_for_failed_and_incomparable_gpu_results(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    for status in ("regression", "incomparable"):
        r = nsight.with_profile_command(gpu_result("tests/test_m.py::test_a", status=status), ctx)
        assert r.verdict is not None
        head, _, command = r.verdict.message.partition(nsight.PREFIX)
        assert head.endswith("(1.000 ms -> 1.300 ms)") and "\n" not in command
        argv = shlex.split(command)
        assert argv[:2] == ["nsys", "profile"]
        assert "--capture-range=cudaProfilerApi" in argv and "--capture-range-end=repeat" in argv
        assert "--cuda-graph-trace=node" in argv  # the result replayed graphs
        py = argv.index("-m") - 1
        assert argv[py + 1:py + 4] == ["-m", "pytest", "tests/test_m.py::test_a"]
        assert {"--trt-baseline=off", "--trt-profiler-api", "--trt-nvtx"} <= set(argv[py:])
        assert "--trt-profile-layers" not in argv  # a CUDA result has no layers


def test_no_command_for_passing_host_or_missing_results(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    for r in (gpu_result("t.py::a", status="pass"), gpu_result("t.py::a", kind="host"),
              gpu_result("t.py::a", status="missing"), gpu_result("t.py::a", status="improved")):
        assert nsight.with_profile_command(r, ctx) == r


def test_tensorrt_adds_layer_profiling_and_exports_and_eager_drops_graph_trace(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    trt = nsight.nsys_argv(gpu_result("t.py::test_vit", kind="tensorrt",
                                       identity={"cuda_graph": True}), ctx)
    assert "--trt-profile-layers" in trt and f"--trt-export-dir={nsight.EXPORT_DIR}" in trt
    eager = nsight.nsys_argv(gpu_result("t.py::test_torch", kind="torch",
                                         identity={"cuda_graph": True, "timed_as": "eager"}), ctx)
    assert "--cuda-graph-trace=node" not in eager
    off = nsight.nsys_argv(gpu_result("t.py::test_k", identity={"cuda_graph": False}), ctx)
    assert "--cuda-graph-trace=node" not in off


def relative_result(nodeid: str, a: tuple[str, dict[str, object]], b: tuple[str, dict[str, object]], *,
                    status: str = "regression", origin: str = "compare") -> Any:
    """A judged relative gate as plain data, as a GPU ``trt_bench.compare`` produces it."""
    from pytest_trtperf.relative.policy import relative_message
    from pytest_trtperf.core.results import Relative, Side

    base = gpu_result(nodeid, kind=b[0], status=status, identity={"relative": {"a": a[1], "b": b[1]}})

    def side(label: str, kind_identity: tuple[str, dict[str, object]], ms: float) -> Side:
        return Side(label=label, kind=kind_identity[0], latency=dataclasses.replace(base.latency, median=ms),
                    throughput=1000 / ms, distribution=base.distribution, config_hash="h",
                    identity={"kind": kind_identity[0], **kind_identity[1]})

    rel = Relative(a=side("fp32", a, 1.0), b=side("fp16", b, 1.1), metric="median", ratio=1.1, ci=(1.08, 1.12),
                   pairs=12, bound=1.03, expectation="b at most 3.0% slower than a", origin=origin)
    verdict = dataclasses.replace(base.verdict, message=relative_message(rel, status, 0.99, "max_slowdown 3%"))
    return dataclasses.replace(base, relative=rel, verdict=verdict)


def test_a_failed_relative_gate_on_the_gpu_ends_with_the_command_for_its_sides(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    # Side a replayed CUDA graphs, side b ran eagerly: the trace must expand graphs.
    r = nsight.with_profile_command(relative_result("t.py::test_ab", ("torch", {"cuda_graph": True}),
                                                    ("torch", {"cuda_graph": True, "timed_as": "eager"})), ctx)
    assert r.verdict is not None
    head, sep, command = r.verdict.message.partition(nsight.PREFIX)
    assert sep and head.startswith("b/a 1.100 exceeds max_slowdown 3%; median latency: ") and "\n" not in command
    argv = shlex.split(command)
    assert argv[:2] == ["nsys", "profile"] and "--cuda-graph-trace=node" in argv
    assert "t.py::test_ab" in argv and {"--trt-profiler-api", "--trt-nvtx"} <= set(argv)
    assert "--trt-profile-layers" not in argv
    # An engine on either side: the layer profile and the exports come with it.
    trt = nsight.nsys_argv(relative_result("t.py::test_ab", ("tensorrt", {"cuda_graph": False}),
                                           ("torch", {"cuda_graph": False})), ctx)
    assert "--trt-profile-layers" in trt and "--cuda-graph-trace=node" not in trt
    # A passing gate, and a host one, get nothing.
    for quiet in (relative_result("t.py::test_ab", ("cuda", {}), ("cuda", {}), status="pass"),
                  relative_result("t.py::test_ab", ("host", {}), ("host", {}))):
        assert nsight.with_profile_command(quiet, ctx) == quiet


def test_session_options_that_change_the_measurement_are_carried(tmp_path: Path) -> None:
    s = settings(tmp_path, mode="throughput", streams=2, cuda_graph=False, blocking_sync=True,
                 include_transfers=True)
    s = dataclasses.replace(s, trt=TrtOptions(backend="tensorrt_rtx", engine_cache=tmp_path / "cache",
                                              allow_engine_host_code=True))
    args = nsight.session_args(s, tmp_path)
    assert args == ("--trt-mode=throughput", "--trt-streams=2", "--trt-no-cuda-graph", "--trt-blocking-sync",
                    "--trt-include-transfers", "--trt-backend=tensorrt_rtx", "--trt-engine-cache=cache",
                    "--trt-allow-engine-host-code")
    assert nsight.session_args(settings(tmp_path), tmp_path) == ()  # defaults add nothing
    off = dataclasses.replace(settings(tmp_path), trt=TrtOptions(engine_cache=None))
    assert nsight.session_args(off, tmp_path) == ("--trt-engine-cache=off",)


def test_ncu_filter_escapes_what_ncu_reads_as_syntax() -> None:
    assert nsight.ncu_filter("tests/a.py::test_x[b/c]::bs16") == r"trtperf@tests\/a.py::test_x\[b\/c\]::bs16/"
    assert nsight.ncu_filter("t.py::test[a+b*c@d\\e]") == r"trtperf@t.py::test\[a\+b\*c\@d\\e\]/"
    # One side of a relative gate: its blocks' range, "<id> [a]".
    assert nsight.ncu_filter("t.py::test_ab[x]", "a") == r"trtperf@t.py::test_ab\[x\] \[a\]/"


ODD_TESTS = '''
import hashlib
import pytest

@pytest.mark.parametrize("p", ["a/b", "a b", "it's", "[x]", "$HOME;rm", "a/b/"])
def test_odd(trt_bench, p):
    trt_bench.measure(lambda: hashlib.sha256(b"x" * 1000).digest(), name="sha")

def test_plain(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"x" * 1000).digest())
'''


def _collect(p: pytest.Pytester, path: str) -> list[str]:
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", path],
                       cwd=p.path, capture_output=True, text=True, timeout=120)
    return [line for line in r.stdout.splitlines() if "::" in line]


def _collect_with(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command after ``nsys profile ...``, collecting only: the options
    are parsed and validated as in a real run, and pytest lists what it selected."""
    start = argv.index("-m") - 1
    cmd = [sys.executable if argv[start] == "python" else argv[start], *argv[start + 1:],
           "--collect-only", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("from_subdir", [False, True])
def test_the_command_selects_exactly_that_test(pytester: pytest.Pytester, from_subdir: bool) -> None:
    sub = pytester.path / "perf tests"
    sub.mkdir()
    (sub / "test_odd.py").write_text(ODD_TESTS)
    pytester.makeini("[pytest]\n")  # the rootdir
    nodeids = _collect(pytester, "perf tests")
    assert len(nodeids) == 7, nodeids
    invocation = sub if from_subdir else pytester.path
    ctx = ctx_for(pytester.path, invocation, xdist=True, mode="throughput", cuda_graph=False)
    for nodeid in nodeids:
        line = nsight.command_line(nsight.nsys_argv(gpu_result(nodeid), ctx))
        proc = _collect_with(shlex.split(line), invocation)
        assert proc.returncode == 0, (line, proc.stdout, proc.stderr)
        selected = [x for x in proc.stdout.splitlines() if "::" in x]
        assert selected == [nodeid], line  # that test, and only that test (listed relative to the rootdir)


def test_the_command_runs_the_measurement(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=ODD_TESTS)
    nodeid = "test_one.py::test_odd[a/b]"
    r = gpu_result(nodeid, name="sha")
    argv = shlex.split(nsight.command_line(nsight.nsys_argv(r, ctx_for(pytester.path))))
    start = argv.index("-m") - 1
    cmd = [sys.executable if argv[start] == "python" else argv[start], *argv[start + 1:],
           "--trt-max-time=0.3", "--trt-min-time=0.05", "--trt-warmup-ms=10", "-p", "no:cacheprovider",
           "--trt-json=out.json"]
    proc = subprocess.run(cmd, cwd=pytester.path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = json.loads((pytester.path / "out.json").read_text())["results"]
    assert [(x["id"], x["verdict"]["status"]) for x in ran] == [(r.id, "off")]


def test_html_report_shows_the_command(tmp_path: Path) -> None:
    r = nsight.with_profile_command(gpu_result("tests/t.py::test_a[x<y]"), ctx_for(tmp_path))
    page = render([r], {}, generated="now", plots=False)
    assert "profile this test under Nsight Systems: nsys profile" in page
    assert "test_a[x&lt;y]" in page and "test_a[x<y]" not in page  # escaped, still copyable as text
