"""On real CUDA, through the plugin: an eager stream callable of many tiny
kernels is launch-bound and its result says so; one long kernel is not."""

from __future__ import annotations

import json

import pytest
from helpers import LOAD_KERNELS, load_plugin_args

pytestmark = pytest.mark.gpu


TEST = f'''
import importlib.util
import pytest

{LOAD_KERNELS}

def many_tiny(stream):
    for _ in range(300):
        K.spin(stream, 500)


@pytest.mark.trt_perf(cuda_graph=False)
def test_eager(trt_bench):
    trt_bench.measure(many_tiny, timer="cuda", name="tiny")
    trt_bench.measure(lambda stream: K.spin(stream, 500_000), timer="cuda", name="long")
'''


def test_a_launch_bound_eager_timing_is_named_and_a_gpu_bound_one_is_not(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gpu=TEST)
    r = pytester.runpytest_subprocess(*load_plugin_args(), "-p", "no:cacheprovider", "--trt-max-time=2",
                                      "--trt-json=out.json")
    r.assert_outcomes(passed=1)
    by_name = {res["name"]: res for res in json.loads((pytester.path / "out.json").read_text())["results"]}
    tiny, long = by_name["tiny"], by_name["long"]
    assert tiny["identity"]["cuda_graph"] is False
    assert any(n.startswith("launch-bound: enqueueing one call takes") for n in tiny["notes"]), tiny["notes"]
    assert not any("launch-bound" in n for n in long["notes"]), long["notes"]
