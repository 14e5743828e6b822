"""workloads.select: the one rule that picks a workload for a callable."""

from __future__ import annotations

import pytest

from pytest_trtperf.config import MeasureOptions
from pytest_trtperf.errors import UsageError
from pytest_trtperf.workloads.cuda import CudaWorkload
from pytest_trtperf.workloads.host import HostWorkload
from pytest_trtperf.workloads.select import for_callable, takes_stream


def test_auto_picks_cuda_for_one_argument_and_the_host_clock_otherwise() -> None:
    assert isinstance(for_callable(lambda stream: None), CudaWorkload)
    assert isinstance(for_callable(lambda: None), HostWorkload)
    assert isinstance(for_callable(lambda stream=0: None), HostWorkload)  # nothing required: called as fn()
    assert isinstance(for_callable(lambda stream: None, timer="cuda"), CudaWorkload)
    assert for_callable(lambda: None, timer="torch").kind == "torch"


def test_gpu_options_come_from_the_measure_options() -> None:
    w = for_callable(lambda s: None, opts=MeasureOptions(mode="throughput", streams=3, cuda_graph=False),
                     inferences_per_iteration=8)
    ident = w.identity()
    assert (ident["mode"], ident["streams"], ident["cuda_graph"]) == ("throughput", 3, False)
    assert w.inferences_per_iteration == 8


def test_takes_stream_counts_required_positionals() -> None:
    assert takes_stream(lambda s: None)
    assert not takes_stream(lambda: None)
    assert not takes_stream(lambda a, b: None)
    assert not takes_stream(lambda *a: None)


@pytest.mark.parametrize("fn, timer, needle", [
    (lambda: None, "opencl", "timer='opencl' is not one of auto, host, cuda, torch"),
    (42, "auto", "needs a callable, a Workload or an engine, got int"),
])
def test_bad_targets_are_one_line_errors(fn: object, timer: str, needle: str) -> None:
    with pytest.raises(UsageError) as e:
        for_callable(fn, timer=timer, where="t.py::test")
    assert str(e.value) == f"t.py::test: {needle}"
