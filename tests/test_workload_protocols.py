"""The optional members the fixture and the exports read are declared on the
Workload protocol family (issue 13 item 3): ``ValueKeepingWorkload`` for the
callable's last return value, ``ExportingWorkload`` for the layer files of
``--trt-export-dir``; the readers check them with ``isinstance`` only."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from pytest_trtperf.report import exports
from pytest_trtperf.core.workload import Batch, ExportingWorkload, ProfiledWorkload, ValueKeepingWorkload, Workload
from pytest_trtperf.workloads.cuda import CudaWorkload
from pytest_trtperf.workloads.host import HostWorkload
from pytest_trtperf.workloads.select import LastCall, for_callable, last_value
from pytest_trtperf.workloads.tensorrt import TensorRTWorkload
from pytest_trtperf.workloads.torch import TorchWorkload


class Plain:
    """A user's own Workload: none of the optional members."""

    kind = "host"
    inferences_per_iteration = 1

    def setup(self) -> None: ...
    def run(self, iterations: int) -> Batch: return Batch(latency_s=np.full(iterations, 1e-6), wall_s=1e-6)
    def teardown(self) -> None: ...
    def identity(self) -> dict[str, Any]: return {}
    def notes(self) -> tuple[str, ...]: return ()


class Exporting(Plain):
    def layer_info(self) -> Any: return {"Layers": [{"Name": "conv"}]}
    def layer_profile(self) -> list[dict[str, Any]]: return [{"name": "conv", "averageMs": 0.5}]


class WithValue:
    """A callable of the user's that happens to have a ``value`` attribute."""

    value = "not a return value"

    def __call__(self, stream: int) -> str:
        return "returned"


def test_each_workload_kind_declares_what_it_offers() -> None:
    host = HostWorkload(lambda: 1)
    cuda = CudaWorkload(LastCall(lambda s: None))
    torch = TorchWorkload(LastCall(lambda: None))
    for w in (host, cuda, torch, Plain()):
        assert isinstance(w, Workload)
    assert all(isinstance(w, ValueKeepingWorkload) for w in (host, cuda, torch))
    assert not isinstance(Plain(), ValueKeepingWorkload)
    assert not any(isinstance(w, ExportingWorkload) for w in (host, cuda, torch, Plain()))
    assert isinstance(Exporting(), ExportingWorkload) and not isinstance(Exporting(), ProfiledWorkload)
    for member in ("layer_info", "layer_profile", "layers", "device_memory_bytes"):
        assert hasattr(TensorRTWorkload, member), member  # so a TensorRT workload is both


def test_last_value_comes_only_from_what_keeps_it() -> None:
    host = HostWorkload(lambda: "host value")
    host.run(2)
    assert last_value(host) == "host value"
    gpu = for_callable(lambda stream: "gpu value", timer="cuda")
    assert last_value(gpu) is None
    assert isinstance(gpu, CudaWorkload) and gpu.enqueue(0) == "gpu value" and last_value(gpu) == "gpu value"
    torch = TorchWorkload(LastCall(lambda: 42))
    assert isinstance(torch.fn, LastCall) and torch.fn() == 42 and last_value(torch) == 42
    # a bare callable with its own ``value`` is not mistaken for a kept return value
    assert last_value(CudaWorkload(WithValue())) is None
    assert last_value(Plain()) is None


def _result(rid: str) -> Any:
    return SimpleNamespace(id=rid)


def test_exports_write_layer_files_for_exporting_workloads_only(tmp_path: Path) -> None:
    written = exports.export_result(tmp_path / "a", _result("t.py::a"), None, Exporting())
    names = exports.file_names("t.py::a")
    assert sorted(p.name for p in written) == sorted([names["layer_info"], names["profile"]])
    assert json.loads((tmp_path / "a" / names["profile"]).read_text()) == [{"name": "conv", "averageMs": 0.5}]
    # a workload with a look-alike attribute that is not a method of the protocol family writes nothing
    odd = Plain()
    odd.layer_info = "not callable"  # type: ignore[attr-defined]  # deliberately malformed
    assert exports.export_result(tmp_path / "b", _result("t.py::b"), None, odd) == []
    assert exports.export_result(tmp_path / "c", _result("t.py::c"), None, HostWorkload(lambda: 1)) == []
