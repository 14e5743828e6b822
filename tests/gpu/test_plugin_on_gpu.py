"""The whole loop on real CUDA: a fixed-duration kernel measured through the
plugin (CUDA events, graphs, NVML state), baselined, then gated after the
kernel got 30% longer."""

from __future__ import annotations

import functools
import json

import pytest
from helpers import LOAD_KERNELS, load_plugin_args, run_inner

pytestmark = pytest.mark.gpu


TEST = f'''
import importlib.util, os
import pytest

{LOAD_KERNELS}
NS = int(float(os.environ.get("SPIN_SCALE", "1")) * 200_000)


def test_spin(trt_bench):
    r = trt_bench.measure(lambda stream: K.spin(stream, NS), timer="cuda", name="spin200us")
    assert r.kind == "cuda" and r.gpu_compute is not None
    assert r.device_state.samples > 0 and r.device_state.sm_clock_mhz_median
'''



ARGS = [*load_plugin_args(), "-p", "no:cacheprovider", "--trt-max-time=2", "--trt-json=out.json"]


run = functools.partial(run_inner, opts=ARGS, subprocess=True)


def test_update_compare_and_a_thirty_percent_slower_kernel(pytester: pytest.Pytester, floor) -> None:
    pytester.makepyfile(test_gpu=TEST)
    run(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    entry = json.loads(path.read_text())["results"]["test_gpu.py::test_spin::spin200us"]
    assert entry["kind"] == "cuda" and entry["fingerprint"]["critical"]["kind"] == "cuda"
    lo, hi = floor.latency(200)  # 200 us kernel, plus at most this GPU's event-pair cost
    assert lo <= entry["latency_ms"]["median"] / 1e3 <= hi, (entry["latency_ms"], floor)

    ok = run(pytester)
    ok.assert_outcomes(passed=1)
    doc = json.loads((pytester.path / "out.json").read_text())
    (res,) = doc["results"]
    assert res["verdict"]["status"] == "pass", res["verdict"]
    assert res["identity"]["cuda_graph"] is True

    slow = run(pytester, env={"SPIN_SCALE": 1.3})
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*spin200us: median latency regressed +*%*"])
    res = json.loads((pytester.path / "out.json").read_text())["results"][0]
    assert 0.25 < res["verdict"]["change"] < 0.35


def test_xdist_single_worker_is_pinned_to_the_gpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST + '''

def test_env():
    from pathlib import Path
    Path("visible.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
''')
    r = pytester.runpytest_subprocess(*ARGS, "-n", "1", "--trt-baseline=update")
    r.assert_outcomes(passed=2)
    assert (pytester.path / "visible.txt").read_text().startswith("GPU-")  # pinned by UUID


def test_auto_timer_with_torch_is_end_to_end_and_explicit_torch_uses_events(pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytester.makepyfile(test_torch='''
        import numpy as np
        import torch

        A = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
        IMG = np.random.default_rng(0).random((512, 512)).astype(np.float32)

        def test_modes(trt_bench):
            events = trt_bench.measure(lambda: A @ A, timer="torch", name="events")
            auto = trt_bench.measure(lambda: A @ A, name="auto")
            host = trt_bench.measure(lambda: np.sort(IMG, axis=1), name="numpy")
            assert events.kind == "torch" and auto.kind == "host" and auto.identity["sync"]
            # End to end is never shorter than the GPU time alone.
            assert auto.latency.median >= 0.95 * events.latency.median
            assert "timer='torch'" in auto.notes[0]
            # Host work after torch initialised CUDA is plain host timing: no sync, no note.
            assert host.kind == "host" and "sync" not in host.identity and not host.notes
            assert host.latency.median > 0.1
    ''')
    r = pytester.runpytest_subprocess(*ARGS, "--trt-baseline=off")
    r.assert_outcomes(passed=1)


CHANGES_UNDER_CAPTURE = '''
import torch

A = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)


def fn():
    y = A @ A
    if torch.cuda.is_current_stream_capturing():  # the captured graph is 5x the work
        for _ in range(4):
            y = A @ A
    return y


def test_changed(trt_bench):
    r = trt_bench.measure(fn, timer="torch", name="changed")
    assert r.identity["timed_as"] == "eager" and r.identity["capture_check"]["ratio"] > 3
'''


def test_a_capture_that_changes_the_program_is_timed_eagerly_in_update_and_compare(
        pytester: pytest.Pytester) -> None:
    pytest.importorskip("torch")
    pytester.makepyfile(test_changed=CHANGES_UNDER_CAPTURE)
    run(pytester, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    entry = json.loads(path.read_text())["results"]["test_changed.py::test_changed::changed"]
    assert entry["timed_as"] == "eager"
    r = run(pytester)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*changed: note: timed eagerly: the CUDA graph replay*x the eager call*"])
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    assert res["verdict"]["status"] == "pass", res["verdict"]
