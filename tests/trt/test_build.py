"""Real TensorRT-RTX builds from generated ONNX models (no GPU needed to build)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.trt.build import build_plan
from pytest_trtperf.trt.progress import ProgressEvent, line_printer
from pytest_trtperf.trt.spec import EngineSpec

WHERE = "test_x.py::test_build"
FAST = {"optimization_level": 0}


def spec(models: Path, name: str, **kw) -> EngineSpec:
    return EngineSpec.create(WHERE, models, onnx=name, **{**FAST, **kw})


def test_static_shapes_build_a_plan_with_io(rtx, models: Path) -> None:
    result = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (4, 64)}))
    assert result.plan[:4] == b"vtrt"  # a TensorRT-RTX plan
    ins = [t for t in result.io if t.is_input]
    outs = [t for t in result.io if not t.is_input]
    assert [(t.name, t.dtype, t.shape) for t in ins] == [("input", "float32", (-1, 64))]
    assert ins[0].profiles == (((4, 64), (4, 64), (4, 64)),)
    assert [(t.name, t.shape) for t in outs] == [("output", (-1, 10))]


def test_min_opt_max_profile_several_inputs(rtx, models: Path) -> None:
    s = spec(
        models,
        "two_inputs.onnx",
        min_shapes={"a": (1, 16), "b": (1, 16)},
        opt_shapes={"a": (8, 16), "b": (8, 16)},
        max_shapes={"a": (32, 16), "b": (32, 16)},
    )
    result = build_plan(rtx, s)
    profiles = {t.name: t.profiles for t in result.io if t.is_input}
    assert profiles == {"a": (((1, 16), (8, 16), (32, 16)),), "b": (((1, 16), (8, 16), (32, 16)),)}


@pytest.mark.parametrize("model, shape", [("cnn.onnx", (2, 3, 32, 32)), ("encoder.onnx", (2, 16, 32))])
def test_cnn_and_transformer_block_build(rtx, models: Path, model: str, shape: tuple) -> None:
    result = build_plan(rtx, spec(models, model, shapes={"input": shape}, profiling_verbosity="detailed"))
    assert len(result.plan) > 10_000


def test_parser_errors_are_one_readable_line(rtx, models: Path) -> None:
    with pytest.raises(UsageError) as exc:
        build_plan(rtx, spec(models, "broken.onnx", shapes={"input": (1, 4)}))
    msg = str(exc.value)
    assert "\n" not in msg
    assert WHERE in msg and str(models / "broken.onnx") in msg
    assert "NoSuchOperatorXyz" in msg  # the failing node's operator, from the parser's error list


def test_garbage_file_and_missing_file(rtx, models: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf" * 10)
    with pytest.raises(UsageError, match=r"could not parse .*junk\.onnx: .*ONNX model"):
        build_plan(rtx, EngineSpec.create(WHERE, onnx=junk, shapes={"input": (1, 4)}))
    with pytest.raises(UsageError, match=r"ONNX model not found: .*nope\.onnx"):
        build_plan(rtx, EngineSpec.create(WHERE, onnx=tmp_path / "nope.onnx"))


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({}, "input 'input' of mlp.onnx has dynamic shape (?, 64)"),
        ({"shapes": {"inptu": (1, 64)}}, "mlp.onnx has no input 'inptu'; its inputs are input"),
        ({"shapes": {"input": (4, 65)}}, "input 'input' of mlp.onnx has shape (?, 64); (4, 65) does not fit it"),
        ({"shapes": {"input": (4, 64, 1)}}, "(4, 64, 1) does not fit it"),
    ],
)
def test_shape_errors_name_the_input(rtx, models: Path, kw: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        build_plan(rtx, spec(models, "mlp.onnx", **kw))
    assert fragment in str(exc.value) and WHERE in str(exc.value)


def test_precision_flags_are_explained_on_strongly_typed_backends(rtx, models: Path) -> None:
    with pytest.raises(UsageError) as exc:
        build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, precision="fp16"))
    assert "precision='fp16'" in str(exc.value) and "TensorRT-RTX" in str(exc.value) and "export" in str(exc.value)
    with pytest.raises(UsageError, match="strongly_typed=False is not possible"):
        build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, strongly_typed=False))


def test_unknown_builder_flag(rtx, models: Path) -> None:
    with pytest.raises(UsageError, match="builder flag 'NO_SUCH_FLAG' does not exist in TensorRT-RTX"):
        build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, builder_flags=["no_such_flag"]))


def test_build_options_pass_through(rtx, models: Path) -> None:
    """Workspace, pools, verbosity and passthrough flags are accepted by the real builder."""
    s = spec(
        models,
        "mlp.onnx",
        shapes={"input": (2, 64)},
        workspace_mb=64,
        memory_pools={"tactic_shared_memory": 1},
        profiling_verbosity="layer_names_only",
        builder_flags=["STRICT_NANS"],
    )
    result = build_plan(rtx, s)
    assert result.plan[:4] == b"vtrt" and "STRICT_NANS" in result.flags


def test_rtx_builds_require_user_allocation_for_graph_capture(rtx, models: Path) -> None:
    """NVIDIA: stream capture of a TensorRT-RTX engine needs REQUIRE_USER_ALLOCATION."""
    result = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (2, 64)}))
    assert "REQUIRE_USER_ALLOCATION" in result.flags and result.capturable is True


def test_weight_streaming_builds_strongly_typed_without_user_allocation(rtx, models: Path) -> None:
    """RTX refuses REQUIRE_USER_ALLOCATION with WEIGHT_STREAMING (streaming
    allocates at run time): the build drops it and says the engine cannot be
    captured; the default budget is "auto"."""
    s = spec(models, "mlp.onnx", shapes={"input": (2, 64)}, weight_streaming=True)
    assert s.weight_streaming_budget == "auto"
    result = build_plan(rtx, s)
    assert "WEIGHT_STREAMING" in result.flags and "REQUIRE_USER_ALLOCATION" not in result.flags
    assert result.capturable is False and any("weight streaming needs runtime allocation" in n for n in result.notes)


def test_weight_streaming_needs_strong_typing_on_tensorrt10(fake_backend, models: Path) -> None:
    from pytest_trtperf.trt.build import network_typing

    assert network_typing(fake_backend, spec(models, "mlp.onnx", weight_streaming=True)) is True
    assert network_typing(fake_backend, spec(models, "mlp.onnx", precision="fp32")) is False  # --noTF32, weakly typed
    with pytest.raises(UsageError, match="precision=fp16 needs a weakly typed network, but weight streaming needs"):
        network_typing(fake_backend, spec(models, "mlp.onnx", weight_streaming=True, precision="fp16"))
    with pytest.raises(UsageError, match="weight_streaming=True needs a strongly typed network"):
        network_typing(fake_backend, spec(models, "mlp.onnx", weight_streaming=True, strongly_typed=False))


@pytest.mark.parametrize("precision, tf32", [("auto", True), ("tf32", True), ("fp32", False)])
def test_fp32_clears_tf32_in_the_real_builder_config(rtx, models: Path, precision: str, tf32: bool) -> None:
    """TF32 is on by default (trtexec too); precision="fp32" is trtexec's --noTF32."""
    result = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, precision=precision))
    assert ("TF32" in result.flags) is tf32


def test_several_profiles_and_the_profile_argument(rtx, models: Path) -> None:
    s = spec(
        models,
        "mlp.onnx",
        min_shapes=[{"input": (1, 64)}, {"input": (32, 64)}],
        opt_shapes=[{"input": (4, 64)}, {"input": (64, 64)}],
        max_shapes=[{"input": (8, 64)}, {"input": (128, 64)}],
        profile=1,
    )
    assert s.run_shapes() == {"input": (64, 64)}  # opt of the selected profile
    result = build_plan(rtx, s)
    (inp,) = [t for t in result.io if t.is_input]
    assert inp.profiles == (((1, 64), (4, 64), (8, 64)), ((32, 64), (64, 64), (128, 64)))
    with pytest.raises(UsageError, match="profile=2 but the build has 2 optimization profile"):
        spec(models, "mlp.onnx", min_shapes=[{"input": (1, 64)}] * 2, opt_shapes=[{"input": (1, 64)}] * 2,
             max_shapes=[{"input": (1, 64)}] * 2, profile=2)


def test_shape_tensor_input_is_built_with_value_ranges(rtx, models: Path) -> None:
    s = spec(
        models,
        "shape_tensor.onnx",
        min_shapes={"data": (1, 16), "shape": (1, 8)},
        opt_shapes={"data": (4, 16), "shape": (4, 16)},
        max_shapes={"data": (8, 16), "shape": (16, 32)},
    )
    result = build_plan(rtx, s)
    info = {t.name: t for t in result.io}
    assert info["shape"].shape_tensor and not info["data"].shape_tensor
    assert info["shape"].profiles == (((1, 8), (4, 16), (16, 32)),)  # values, not dims
    with pytest.raises(UsageError, match="input 'shape' of shape_tensor.onnx is a shape tensor .*give its values"):
        build_plan(rtx, spec(models, "shape_tensor.onnx", shapes={"data": (4, 16)}))
    with pytest.raises(UsageError, match="is a shape tensor of 2 value"):
        build_plan(rtx, spec(models, "shape_tensor.onnx", shapes={"data": (4, 16), "shape": (4, 4, 4)}))


def test_progress_monitor_reports_nested_phases(rtx, models: Path) -> None:
    events: list[ProgressEvent] = []
    build_plan(rtx, spec(models, "cnn.onnx", shapes={"input": (1, 3, 32, 32)}), progress=events.append)
    starts = [e for e in events if e.kind == "start"]
    finishes = [e for e in events if e.kind == "finish"]
    assert starts[0].depth == 0 and starts[0].phase == finishes[-1].phase  # the whole build wraps the rest
    assert len(starts) == len(finishes) >= 3
    assert any(e.depth >= 2 for e in starts)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(events, events[1:], strict=False))
    lines: list[str] = []
    printer = line_printer(lines.append, "cnn.onnx", max_depth=0)
    for e in events:
        printer(e)
    assert len(lines) == 2 and lines[0].startswith("building cnn.onnx:") and lines[1].endswith("s)")


def test_broken_progress_callback_does_not_break_the_build(rtx, models: Path) -> None:
    def boom(event: ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    assert build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}), progress=boom).plan


def test_timing_cache_is_saved_and_reloaded(rtx, models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "tc" / "timing.cache"
    first = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}), timing_cache=cache)
    assert cache.is_file() and cache.stat().st_size > 0
    saved = cache.read_bytes()
    second = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}), timing_cache=cache)
    assert second.plan[:4] == b"vtrt"
    assert cache.read_bytes()[:16] == saved[:16]  # reloaded and written back, same format
    assert "ignores timing caches" in " ".join(first.notes)  # TensorRT-RTX says it is a no-op


def test_corrupt_timing_cache_is_replaced_with_a_note(rtx, models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"\x00garbage" * 8)
    result = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}), timing_cache=cache)
    assert result.plan[:4] == b"vtrt"
    assert cache.read_bytes() != b"\x00garbage" * 8


def test_version_compatible_is_one_usage_line_on_rtx(rtx, models: Path) -> None:
    """TensorRT-RTX wheels ship no lean runtime: its own build fails with
    libnvinfer_lean.so.1 missing; we say why before building."""
    with pytest.raises(UsageError) as exc:
        build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, version_compatible=True))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{WHERE}: version_compatible=True is not possible")
    assert "no lean runtime (libnvinfer_lean)" in msg


def test_builder_failures_surface_the_library_error_in_one_line(rtx, models: Path) -> None:
    """A flag the real builder rejects: its own error is the message."""
    with pytest.raises(UsageError) as exc:
        build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}, weight_streaming=True,
                             builder_flags=["REQUIRE_USER_ALLOCATION"]))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{WHERE}: TensorRT-RTX") and "failed to build" in msg
    assert "Error Code" in msg and "REQUIRE_USER_ALLOCATION" in msg  # the builder's own words


def test_gc_is_restored_after_builds_and_errors(rtx, models: Path) -> None:
    import gc

    assert gc.isenabled()
    build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}))
    assert gc.isenabled()
    with pytest.raises(UsageError):
        build_plan(rtx, spec(models, "broken.onnx", shapes={"input": (1, 4)}))
    assert gc.isenabled()


def test_a_timing_cache_that_is_not_a_regular_file_is_neither_read_nor_replaced(rtx, models: Path,
                                                                                 tmp_path: Path) -> None:
    """Issue 25: the timing cache goes through the hardened reader; a FIFO
    there (or a link to a device) is named, never read and never replaced."""
    import os
    import stat as stat_mod

    cache = tmp_path / "timing.cache"
    os.mkfifo(cache)
    result = build_plan(rtx, spec(models, "mlp.onnx", shapes={"input": (1, 64)}), timing_cache=cache)
    assert result.plan[:4] == b"vtrt"
    assert stat_mod.S_ISFIFO(os.lstat(cache).st_mode)
    notes = " ".join(result.notes)
    assert f"timing cache {cache} is a FIFO, not a regular file; building with a fresh one" in notes, notes
