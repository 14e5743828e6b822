"""Entries recorded by earlier versions stay comparable where nothing measured
changed. A stream-callable baseline recorded before stream callables got the capture
check (no ``timed_as``) stays comparable with a result timed as the graph, as
the harness then always timed the graph; an eager result is not."""

from __future__ import annotations

from test_gate import host_result, host_verdict

OLD = {"kind": "cuda", "mode": "latency", "cuda_graph": True, "streams": 1, "sync": "spin"}


def test_an_old_stream_baseline_is_compared_with_a_graph_timed_result() -> None:
    v = host_verdict(host_result(identity=dict(OLD), kind="cuda"),
                     host_result(1.3, seed=1, identity={**OLD, "timed_as": "graph"}, kind="cuda"))
    assert v.status == "regression", v.message


def test_an_old_stream_baseline_is_not_compared_with_an_eager_result() -> None:
    v = host_verdict(host_result(identity=dict(OLD), kind="cuda"),
                     host_result(seed=1, identity={**OLD, "timed_as": "eager"}, kind="cuda"))
    assert v.status == "incomparable" and 'timed_as null -> "eager"' in v.message


def test_other_kinds_and_graphs_off_get_no_such_allowance() -> None:
    torch_old = {**OLD, "kind": "torch"}
    v = host_verdict(host_result(identity=torch_old, kind="torch"),
                     host_result(seed=1, identity={**torch_old, "timed_as": "graph"}, kind="torch"))
    assert v.status == "incomparable"
    off = {**OLD, "cuda_graph": False}
    v = host_verdict(host_result(identity=off, kind="cuda"),
                     host_result(seed=1, identity={**off, "timed_as": "graph"}, kind="cuda"))
    assert v.status == "incomparable"


def test_derived_fields_written_differently_keep_an_entry_comparable() -> None:
    """An RTX static-shape entry recorded with ``rtx_kernel_specialization`` and
    ``nvtx_verbosity`` as older versions wrote them is still compared."""
    trt = {"kind": "tensorrt", "mode": "latency", "cuda_graph": True, "shapes": {"x": [1, 8]}}
    old = {**trt, "nvtx_verbosity": "layer_names_only", "rtx_kernel_specialization": "eager"}
    new = {**trt, "nvtx_verbosity": "none"}
    v = host_verdict(host_result(identity=old, kind="tensorrt"), host_result(1.3, seed=1, identity=new, kind="tensorrt"))
    assert v.status == "regression", v.message
    changed = {**new, "shapes": {"x": [2, 8]}}
    v = host_verdict(host_result(identity=old, kind="tensorrt"), host_result(seed=1, identity=changed, kind="tensorrt"))
    assert v.status == "incomparable" and "shapes" in v.message
