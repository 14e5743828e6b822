"""workloads.select: the one rule that picks a workload for a callable."""

from __future__ import annotations

import pytest

from pytest_trtperf.core.config import MeasureOptions
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.workloads.cuda import CudaWorkload
from pytest_trtperf.workloads.host import HostWorkload
from pytest_trtperf.workloads.select import for_callable


def test_auto_is_the_host_clock_and_cuda_is_said() -> None:
    assert isinstance(for_callable(lambda: None), HostWorkload)
    assert isinstance(for_callable(lambda stream=0: None), HostWorkload)  # nothing required: called as fn()
    assert isinstance(for_callable(lambda stream: None, timer="cuda"), CudaWorkload)
    assert for_callable(lambda: None, timer="torch").kind == "torch"


def test_gpu_options_come_from_the_measure_options() -> None:
    w = for_callable(lambda s: None, timer="cuda", opts=MeasureOptions(mode="throughput", streams=3, cuda_graph=False),
                     inferences_per_iteration=8)
    ident = w.identity()
    assert (ident["mode"], ident["streams"], ident["cuda_graph"]) == ("throughput", 3, False)
    assert w.inferences_per_iteration == 8


def test_auto_never_guesses_cuda_from_a_signature() -> None:
    """Issue 26 point 3: a one-parameter host function measured without its
    argument is one line saying to pass it or say timer="cuda"; never a
    stream handle, never a skip for want of cuda-python."""
    def scale(values):
        return [v * 2 for v in values]

    for fn in (scale, lambda stream: None):
        with pytest.raises(UsageError) as e:
            for_callable(fn, where="trt_bench.measure() in test_x")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("trt_bench.measure() in test_x: ")
        assert "cannot be called with no arguments" in msg
        assert 'pass the argument after it, trt_bench.measure(fn, x), or say timer="cuda"' in msg
    assert isinstance(for_callable(scale, args=([1, 2],)), HostWorkload)  # given its argument: the host clock


@pytest.mark.parametrize("fn, timer, needle", [
    (lambda: None, "opencl", "timer='opencl' is not one of auto, host, cuda, torch"),
    (42, "auto", "needs a callable, a Workload or an engine, got int"),
])
def test_bad_targets_are_one_line_errors(fn: object, timer: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        for_callable(fn, timer=timer, where="t.py::test")
    assert str(e.value) == f"t.py::test: {needle}"
