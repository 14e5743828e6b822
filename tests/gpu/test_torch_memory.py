"""Device memory of torch callables on a real GPU: what one call needs, and
the memory gate failing a callable whose temporary doubled. Under a minute:

    python -m pytest tests/gpu/test_torch_memory.py -m gpu -q -rs
"""

from __future__ import annotations

import functools
import json

import pytest

from pytest_trtperf.workloads.torch import TorchWorkload
from helpers import load_plugin_args, run_inner

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch", reason="torch is not installed")

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _need_torch_cuda():
    if not torch.cuda.is_available():
        pytest.skip("GPU tests skipped: torch sees no CUDA GPU")


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_device_peak_is_what_one_call_needs(cuda_graph: bool) -> None:
    x = torch.randn(MIB, device="cuda")  # 4 MiB held before every call: not the call's
    w = TorchWorkload(lambda: (x * 2).sum(), cuda_graph=cuda_graph)
    w.setup()
    try:
        w.run(20)
        f = dict(w.memory_figures())
    finally:
        w.teardown()
    # The 4 MiB temporary x * 2 (plus the sum's few bytes), measured eagerly even when a graph was timed.
    assert 4 * MIB <= f["device_peak_bytes"] < 5 * MIB, f
    assert f["torch_peak_allocated_bytes"] >= f["device_peak_bytes"] + 4 * MIB, f
    assert f["torch_peak_reserved_bytes"] >= f["torch_peak_allocated_bytes"], f


TEST = '''
import os
import torch

N = int(float(os.environ.get("TORCH_MIB", "4")) * (1 << 20)) // 4
x = torch.randn(N, device="cuda")


def test_torch(trt_bench):
    trt_bench.measure(lambda: (x * 2).sum(), timer="torch", name="double")
'''




# Time is not under test: the data size changes the time too.
run = functools.partial(run_inner, opts=(*load_plugin_args(), "-p", "no:cacheprovider", "--trt-max-time=1",
                                        "--trt-min-time=0.3", "--trt-tolerance=500%", "--trt-json=out.json"),
                        subprocess=True)


def test_a_doubled_temporary_fails_the_memory_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_torch=TEST)
    run(pytester, "--trt-baseline=update", mib=4).assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    entry = json.loads(path.read_text())["results"]["test_torch.py::test_torch::double"]
    assert 4 * MIB <= entry["memory"]["device_peak_bytes"] < 5 * MIB, entry["memory"]
    run(pytester, mib=4).assert_outcomes(passed=1)
    doubled = run(pytester, mib=8)
    doubled.assert_outcomes(failed=1)
    doubled.stdout.fnmatch_lines(["*test_torch.py::test_torch::double: device memory peak grew +*"])
    (res,) = json.loads((pytester.path / "out.json").read_text())["results"]
    assert res["memory_verdict"]["status"] == "regression"
    assert 0.9 < res["memory_verdict"]["changes"][0]["change"] < 1.1
