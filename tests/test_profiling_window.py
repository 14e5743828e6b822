"""The measured window as profilers see it (``gpu/window.py``, ``measure(window=)``):
entered after warm-up, left after the last measured batch, and a no-op with a
warning when the CUDA or NVTX layer is missing -- as they really are on this
machine (no GPU) or with the package blocked from importing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from collections.abc import Iterator

import pytest

from pytest_trtperf.core.config import GpuSettings, MeasureSettings
from pytest_trtperf.gpu import cuda
from pytest_trtperf.gpu import nvtx as nvtx_layer
from pytest_trtperf.gpu.window import ProfilingWarning, block_ranges, header_line, measured_window, side_range_name
from pytest_trtperf.core.measure import measure
from pytest_trtperf.relative.interleave import measure_interleaved
from pytest_trtperf.workloads.host import HostWorkload
import nvtx_recorder

FAST = MeasureSettings(warmup_s=0.02, min_warmup_iterations=5, min_time_s=0.05, max_time_s=0.2)


@dataclass
class Recorder:
    calls: int = 0
    entered_at: int | None = None
    left_at: int | None = None

    def work(self) -> None:
        self.calls += 1
        sum(range(200))

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        self.entered_at = self.calls
        try:
            yield
        finally:
            self.left_at = self.calls


def test_window_holds_exactly_the_measured_iterations() -> None:
    rec = Recorder()
    w = HostWorkload(rec.work)
    w.setup()
    m = measure(w, FAST, window=rec.window())
    w.teardown()
    assert rec.entered_at == m.warmup_iterations  # every warm-up call happened before the window
    assert rec.left_at == rec.calls == m.warmup_iterations + m.iterations  # every measured call inside it


def test_window_is_left_when_the_workload_fails_inside_it() -> None:
    rec = Recorder()
    limit = {"n": 0}

    def flaky() -> None:
        rec.work()
        if rec.entered_at is not None:
            limit["n"] += 1
            if limit["n"] > 3:
                raise RuntimeError("boom")

    w = HostWorkload(flaky)
    w.setup()
    with pytest.raises(RuntimeError, match="boom"):
        measure(w, FAST, window=rec.window())
    assert rec.entered_at is not None and rec.left_at == rec.calls


class Brackets:
    """The interleaved run's seams: ``window`` around the measured blocks,
    ``block(side)`` around each; every call notes what was open around it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str | None]] = []
        self.open = False
        self.side: str | None = None
        self.windows = 0
        self.blocks: list[str] = []

    def work(self, tag: str) -> None:
        self.calls.append((tag, self.open, self.side))
        sum(range(200))

    @contextlib.contextmanager
    def window(self) -> Iterator[None]:
        self.open, self.windows = True, self.windows + 1
        try:
            yield
        finally:
            self.open = False

    @contextlib.contextmanager
    def block(self, side: str) -> Iterator[None]:
        assert self.open and self.side is None  # inside the window, never nested
        self.side = side
        self.blocks.append(side)
        try:
            yield
        finally:
            self.side = None


@pytest.mark.parametrize("fixed", [False, True])
def test_interleaved_window_holds_every_measured_block_and_no_warm_up(fixed: bool) -> None:
    rec = Brackets()
    a, b = HostWorkload(lambda: rec.work("a")), HostWorkload(lambda: rec.work("b"))
    a.setup()
    b.setup()
    settings = MeasureSettings(warmup_s=0.02, min_warmup_iterations=5, min_time_s=0.05, max_time_s=0.3,
                               iterations=300 if fixed else None)
    il = measure_interleaved(a, b, settings, window=rec.window(), block=rec.block, block_s=0.005, min_pairs=4)
    outside = [c for c in rec.calls if not c[1]]
    inside = [c for c in rec.calls if c[1]]
    # Warm-up of both sides and the unrecorded re-warm pair come first, outside the window.
    assert rec.calls[:len(outside)] == outside and rec.windows == 1
    assert len(outside) > il.a.warmup_iterations + il.b.warmup_iterations
    assert all(side is None for _, _, side in outside)
    # Every measured call ran inside its own side's block; the untimed lead-in
    # of a block runs in the window just before that block's range, never in a range.
    measured = [c for c in inside if c[2] is not None]
    assert all(tag == side for tag, _, side in measured)
    assert sum(tag == "a" for tag, _, _ in measured) == il.a.iterations
    assert sum(tag == "b" for tag, _, _ in measured) == il.b.iterations
    assert len(inside) - len(measured) == sum(il.lead_ins) and min(il.lead_ins) >= il.pairs  # one or more per block
    for before, after in zip(inside, inside[1:], strict=False):
        if before[2] is None:
            assert after[0] == before[0], (before, after)  # a lead-in leads into its own side
    if fixed:
        assert il.a.iterations == il.b.iterations == 300
    # One range per block (not per iteration), in the run's order: (a, b), (b, a), ...
    order = [s for first in il.b_first for s in (("b", "a") if first else ("a", "b"))]
    assert rec.blocks == order and len(rec.blocks) == 2 * il.pairs < len(inside)


def test_block_ranges_follow_trt_nvtx() -> None:
    assert block_ranges(GpuSettings(), "t.py::t") is None
    assert block_ranges(GpuSettings(profiler_api=True), "t.py::t") is None  # the profiler API brackets the run once
    assert block_ranges(GpuSettings(nvtx=True), "t.py::t") is not None
    assert side_range_name("t.py::test[x]::ab", "a") == "t.py::test[x]::ab [a]"


def test_nothing_to_do_when_both_options_are_off_and_no_profiler_call_for_host_work() -> None:
    assert measured_window(GpuSettings(), "t.py::test", "cuda") is None
    # A host workload must not create a CUDA context: the profiler API is for GPU kinds only.
    assert measured_window(GpuSettings(profiler_api=True), "t.py::test", "host") is None
    assert measured_window(GpuSettings(profiler_api=True), "t.py::test", "tensorrt") is not None
    assert measured_window(GpuSettings(nvtx=True), "t.py::test", "host") is not None


def test_profiler_api_without_a_gpu_warns_and_the_window_still_runs() -> None:
    reason = cuda.unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is visible: tests/gpu/test_profiling_on_gpu.py covers the real calls")
    window = measured_window(GpuSettings(profiler_api=True), "t.py::test_x", "cuda")
    assert window is not None
    ran = []
    with pytest.warns(ProfilingWarning) as record:
        with window:
            ran.append(True)
    assert ran == [True]
    (w,) = record
    text = str(w.message)
    assert "--trt-profiler-api: cudaProfilerStart failed" in text
    # The real layer's reason: no driver here (cudaError...) or no cuda-python.
    assert ("cudaError" in text) or ("cuda-python is not installed" in text), text
    assert "\n" not in text


def test_nvtx_layer_without_a_tool_attached_is_a_dummy_domain() -> None:
    why = nvtx_layer.unavailable_reason()
    if why is not None:
        pytest.skip(why)
    assert nvtx_layer.tool_attached() is False  # nothing listens on this machine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with measured_window(GpuSettings(nvtx=True), "t.py::test_x[a/b]", "host"):  # type: ignore[union-attr]
            pass
    assert "NVTX ranges in domain 'trtperf'" in (header_line(GpuSettings(nvtx=True)) or "")


BLOCKER = textwrap.dedent('''
    import sys
    BLOCKED = tuple(sys.argv[1].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} blocked for this test")
            return None

    sys.meta_path.insert(0, Block())
    import pytest
    sys.exit(pytest.main(sys.argv[2:]))
''')

HOST_TEST = '''
import hashlib

def test_host(trt_bench):
    trt_bench.measure(lambda: hashlib.sha256(b"x" * 50_000).digest(), name="sha")
'''


def run_blocked(p: pytest.Pytester, blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    (p.path / "run.py").write_text(BLOCKER)
    return subprocess.run([sys.executable, "run.py", blocked, "-p", "no:cacheprovider", "--trt-max-time=0.5",
                           "--trt-min-time=0.1", "--trt-warmup-ms=20", "--trt-baseline=off", *args],
                          cwd=p.path, capture_output=True, text=True, timeout=300)


def test_trt_nvtx_without_the_nvtx_package_says_so_and_measures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=HOST_TEST)
    proc = run_blocked(pytester, "nvtx", "--trt-nvtx", "-W", "always::UserWarning")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in out
    assert "trtperf measured windows: no NVTX ranges: the nvtx package is not installed" in out  # report header
    assert "ProfilingWarning: --trt-nvtx: measured windows carry no NVTX range: the nvtx package is not" in out
    assert "Traceback" not in out


def test_profiler_api_without_cuda_python_never_touches_host_work(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=HOST_TEST)
    proc = run_blocked(pytester, "cuda", "--trt-profiler-api", "-W", "error::UserWarning")
    out = proc.stdout + proc.stderr
    # A host workload gets no profiler call, so no warning even as an error.
    assert proc.returncode == 0, out
    assert "trtperf measured windows: cudaProfilerStart/Stop around GPU windows" in out


def test_header_names_the_nvtx_version_when_installed(pytester: pytest.Pytester) -> None:
    why = nvtx_layer.unavailable_reason()
    if why is not None:
        pytest.skip(why)
    pytester.makepyfile(test_perf=HOST_TEST)
    r = pytester.runpytest_subprocess("--trt-nvtx", "--trt-profiler-api", "--collect-only", "-p", "no:cacheprovider")
    r.stdout.fnmatch_lines([f"trtperf measured windows: cudaProfilerStart/Stop around GPU windows; NVTX ranges in "
                            f"domain 'trtperf' (nvtx {nvtx_layer.version()})"])


def test_options_are_off_by_default_and_read_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrt_nvtx = true\ntrt_profiler_api = yes\n")
    pytester.makepyfile(test_perf=HOST_TEST)
    r = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    r.stdout.fnmatch_lines(["trtperf measured windows: cudaProfilerStart/Stop around GPU windows; *"])
    pytester.makeini("[pytest]\n")
    r = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    assert "trtperf measured windows" not in r.stdout.str()
    pytester.makeini("[pytest]\ntrt_nvtx = maybe\n")
    r = pytester.runpytest_subprocess("--collect-only", "-p", "no:cacheprovider")
    assert r.ret == 4
    r.stderr.fnmatch_lines(["*trt_nvtx (ini): 'maybe' is not a boolean; use true or false*"])


NVTX_SUITE = nvtx_recorder.CALL_WRITER + '''

def test_ab(trt_bench):
    trt_bench.compare(logged("a"), logged("b"), max_slowdown="50%", name="ab", remeasure=False)


def test_plain(trt_bench):
    trt_bench.measure(logged("m"), name="m")
'''


def test_a_real_nvtx_tool_sees_one_range_per_block_of_each_side(pytester: pytest.Pytester,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """With NVIDIA's nvtx package and an NVTX tool attached (our recorder, loaded
    as Nsight loads its own), ``--trt-nvtx`` puts the interleaved run of
    ``trt_bench.compare`` in a range named after the result id, each measured
    block in ``<id> [a]`` or ``<id> [b]``, and leaves warm-up outside; an
    ordinary measurement gets its one range."""
    library = nvtx_recorder.library_or_skip(tmp_path_factory.mktemp("nvtx_tool"))
    log = pytester.path / "nvtx.log"
    pytester.makepyfile(test_nvtx=NVTX_SUITE)
    env = {**os.environ, **nvtx_recorder.environment(library, log)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--trt-baseline=off",
                           "--trt-iterations=400", "--trt-warmup-ms=20", "--trt-nvtx", "--trt-profiler-api",
                           "--trt-json=out.json"], cwd=pytester.path, env=env, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ProfilingWarning" not in out
    results = {r["id"]: r for r in json.loads((pytester.path / "out.json").read_text())["results"]}
    ab, m = results["test_nvtx.py::test_ab::ab"], results["test_nvtx.py::test_plain::m"]
    seen = nvtx_recorder.read(log)
    assert seen.left_open == ()
    a_range, b_range = side_range_name(ab["id"], "a"), side_range_name(ab["id"], "b")
    where: dict[tuple[str, tuple[str, ...]], int] = {}
    for call in seen.calls:
        where[(call.tag, call.stack)] = where.get((call.tag, call.stack), 0) + 1
    rel = ab["relative"]
    assert where.pop(("a", (ab["id"], a_range))) == rel["a"]["latency_ms"]["n"] == 400
    assert where.pop(("b", (ab["id"], b_range))) == rel["b"]["latency_ms"]["n"] == 400
    assert where.pop(("m", (m["id"],))) == m["latency_ms"]["n"] == 400
    # Each block's untimed lead-in runs in the run's range, outside the block's
    # range: at least one call per block (the run's pair count per side).
    assert where.pop(("a", (ab["id"],))) >= rel["pairs"] and where.pop(("b", (ab["id"],))) >= rel["pairs"]
    # What is left ran outside every range: warm-up (and the compare's re-warm pair).
    assert set(where) == {("a", ()), ("b", ()), ("m", ())}, where
    assert where[("m", ())] >= m["warmup_iterations"] and where[("b", ())] > ab["warmup_iterations"]
    # One outer range per interleaved run, one range per block, in the order measured.
    compare_ranges = [r for r in seen.pushed if r.startswith(ab["id"])]
    assert compare_ranges[0] == ab["id"] and compare_ranges.count(ab["id"]) == 1
    blocks = compare_ranges[1:]
    assert blocks.count(a_range) == blocks.count(b_range) == rel["pairs"]
    assert blocks[:4] == [a_range, b_range, b_range, a_range]
    assert seen.pushed.count(m["id"]) == 1
