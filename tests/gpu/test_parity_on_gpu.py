"""Issue 15 on a real GPU: arguments and return values through the CUDA and
torch timers (the callable is wrapped to keep its return value: the timing
must stay that of the kernel), and --trt-disable running GPU workloads once."""

from __future__ import annotations

import json

import pytest
from helpers import LOAD_KERNELS, load_plugin_args

pytestmark = pytest.mark.gpu


CUDA_TEST = f'''
import importlib.util
import pytest

{LOAD_KERNELS}
CALLS = []


def launch(stream, ns, tag="spin"):
    CALLS.append(tag)
    K.spin(stream, ns)
    return (tag, ns)


def test_spin_with_arguments(trt_bench):
    r = trt_bench.measure(launch, 200_000, kwargs={{"tag": "t"}}, timer="cuda", name="spin200us")
    assert r.return_value == ("t", 200_000) and set(CALLS) == {{"t"}}
    print(f"N={{r.latency.n}} MEDIAN_S={{r.latency.median / 1e3}} GRAPH={{r.identity['cuda_graph']}} "
          f"VERDICT={{r.verdict.status}}")
'''

TORCH_TEST = '''
import torch


def test_matmul_with_arguments(trt_bench):
    a = torch.randn(512, 512, device="cuda")
    b = torch.randn(512, 512, device="cuda")
    r = trt_bench.measure(torch.matmul, a, b, timer="torch", name="mm")
    torch.cuda.synchronize()
    assert torch.allclose(r.return_value, a @ b, rtol=1e-3, atol=1e-3)
    print(f"N={r.latency.n} VERDICT={r.verdict.status} TIMED_AS={r.identity.get('timed_as')}")
'''




ARGS = [*load_plugin_args(), "-p", "no:cacheprovider", "-s", "--trt-max-time=2", "--trt-json=out.json"]


def _values(r: pytest.RunResult) -> dict[str, str]:
    line = next(line for line in r.stdout.lines if "N=" in line)
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def test_cuda_callable_with_arguments_times_the_kernel(pytester: pytest.Pytester, floor) -> None:
    pytester.makepyfile(test_gpu=CUDA_TEST)
    r = pytester.runpytest_subprocess(*ARGS, "--trt-baseline=off")
    r.assert_outcomes(passed=1)
    got = _values(r)
    assert got["GRAPH"] == "True"
    lo, hi = floor.latency(200)  # the wrapper that keeps the return value adds no GPU time
    assert lo <= float(got["MEDIAN_S"]) <= hi, (got, floor)


def test_cuda_callable_under_trt_disable_runs_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=CUDA_TEST)
    r = pytester.runpytest_subprocess(*ARGS, "--trt-disable")
    r.assert_outcomes(passed=1)
    got = _values(r)
    assert got["N"] == "1" and got["VERDICT"] == "disabled"
    assert json.loads((pytester.path / "out.json").read_text())["results"] == []


@pytest.mark.parametrize("extra", [[], ["--trt-disable"]])
def test_torch_callable_with_arguments_returns_its_tensor(pytester: pytest.Pytester, extra: list[str]) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU")
    pytester.makepyfile(test_torch=TORCH_TEST)
    r = pytester.runpytest_subprocess(*ARGS, "--trt-baseline=off", *extra)
    r.assert_outcomes(passed=1)
    got = _values(r)
    if extra:  # --trt-disable: one iteration
        assert got["N"] == "1"
    else:  # a real measurement: at least --trt-min-iterations (10)
        assert int(got["N"]) >= 10
    assert got["VERDICT"] == ("disabled" if extra else "off")
