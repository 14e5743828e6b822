"""EngineSpec: marker arguments validated once, one-line errors naming the test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_trtperf.errors import UsageError
from pytest_trtperf.trt.spec import EngineSpec

WHERE = "test_models.py::test_vit"


def test_unknown_argument_names_argument_and_test() -> None:
    with pytest.raises(UsageError) as exc:
        EngineSpec.create(WHERE, onnx="m.onnx", shape={"input": (1, 3)})
    msg = str(exc.value)
    assert "\n" not in msg
    assert WHERE in msg and "'shape'" in msg and "shapes" in msg


def test_needs_exactly_one_source() -> None:
    with pytest.raises(UsageError, match="exactly one of onnx="):
        EngineSpec.create(WHERE)
    with pytest.raises(UsageError, match="exactly one of onnx="):
        EngineSpec.create(WHERE, onnx="a.onnx", engine="a.plan")


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    spec = EngineSpec.create(WHERE, tmp_path, onnx="models/m.onnx", inputs={"x": "x.npy"})
    assert spec.onnx == tmp_path / "models" / "m.onnx"
    assert spec.inputs == {"x": str(tmp_path / "x.npy")}


def test_profile_must_be_complete_and_ordered() -> None:
    with pytest.raises(UsageError, match="together"):
        EngineSpec.create(WHERE, onnx="m.onnx", min_shapes={"x": (1, 4)}, max_shapes={"x": (8, 4)})
    with pytest.raises(UsageError, match=r"min <= opt <= max"):
        EngineSpec.create(
            WHERE, onnx="m.onnx", min_shapes={"x": (4, 4)}, opt_shapes={"x": (2, 4)}, max_shapes={"x": (8, 4)}
        )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"precision": "fp12"}, "precision='fp12'"),
        ({"optimization_level": 9}, "optimization_level=9"),
        ({"profiling_verbosity": "loud"}, "profiling_verbosity='loud'"),
        ({"memory_pools": {"l2": 4}}, "memory_pools['l2']"),
        ({"shapes": {"x": (0, 4)}}, "positive"),
        ({"shapes": {"x": "big"}}, "tuple of positive integers"),
    ],
)
def test_bad_values_are_one_line_usage_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        EngineSpec.create(WHERE, onnx="m.onnx", **kwargs)
    assert fragment in str(exc.value) and WHERE in str(exc.value) and "\n" not in str(exc.value)


def test_from_marker_positional_path_picks_onnx_or_engine() -> None:
    mark = SimpleNamespace(args=("vit.onnx",), kwargs={"shapes": {"input": (128, 3, 224, 224)}})
    spec = EngineSpec.from_marker(mark, WHERE, "/models")
    assert spec.onnx == Path("/models/vit.onnx") and spec.engine is None
    assert spec.run_shapes() == {"input": (128, 3, 224, 224)}
    mark = SimpleNamespace(args=("vit.plan",), kwargs={})
    assert EngineSpec.from_marker(mark, WHERE, "/m").engine == Path("/m/vit.plan")


def test_build_hash_changes_with_build_config_only() -> None:
    base = EngineSpec.create(WHERE, onnx="m.onnx", shapes={"x": (1, 4)})
    same = EngineSpec.create("other::test", onnx="m.onnx", shapes={"x": (1, 4)}, seed=3)
    other = EngineSpec.create(WHERE, onnx="m.onnx", shapes={"x": (1, 4)}, optimization_level=1)
    assert base.build_hash() == same.build_hash()
    assert base.build_hash() != other.build_hash()


@pytest.mark.parametrize(
    "value, canonical",
    [("auto", "auto"), ("OFF", "off"), ("50%", "50%"), ("12.5%", "12.5%"), (1 << 20, "1048576"), ("512M", str(512 << 20)),
     ("2GiB", str(2 << 30)), ("100", "100")],
)
def test_weight_streaming_budget_as_trtexec_takes_it(value, canonical) -> None:
    spec = EngineSpec.create(WHERE, onnx="m.onnx", weight_streaming=True, weight_streaming_budget=value)
    assert spec.weight_streaming_budget == canonical
    assert "weight_streaming_budget" not in spec.build_config()  # applied at run time: same plan


@pytest.mark.parametrize("value", ["lots", "101%", -1, True, 1.5, "-5%"])
def test_bad_weight_streaming_budget_is_one_line(value) -> None:
    with pytest.raises(UsageError, match=r"weight_streaming_budget=.*bytes .*'50%'.*'auto' or 'off'"):
        EngineSpec.create(WHERE, onnx="m.onnx", weight_streaming=True, weight_streaming_budget=value)


def test_budget_needs_weight_streaming_for_a_build_but_not_for_a_plan_file() -> None:
    with pytest.raises(UsageError, match="needs weight_streaming=True"):
        EngineSpec.create(WHERE, onnx="m.onnx", weight_streaming_budget="auto")
    assert EngineSpec.create(WHERE, engine="m.plan", weight_streaming_budget="25%").weight_streaming_budget == "25%"
    assert EngineSpec.create(WHERE, onnx="m.onnx").weight_streaming_budget is None


def test_profile_argument_and_profile_lists() -> None:
    with pytest.raises(UsageError, match="profile=-1: the index of an optimization profile"):
        EngineSpec.create(WHERE, engine="m.plan", profile=-1)
    assert EngineSpec.create(WHERE, engine="m.plan", profile=3).profile == 3  # checked against the engine at run time
    with pytest.raises(UsageError, match="one dict per profile each \\(got 2, 1, 2\\)"):
        EngineSpec.create(WHERE, onnx="m.onnx", min_shapes=[{"x": (1, 4)}, {"x": (2, 4)}], opt_shapes={"x": (2, 4)},
                          max_shapes=[{"x": (4, 4)}, {"x": (8, 4)}])
    one = EngineSpec.create(WHERE, onnx="m.onnx", min_shapes={"x": (1, 4)}, opt_shapes={"x": (2, 4)}, max_shapes={"x": (4, 4)})
    same = EngineSpec.create(WHERE, onnx="m.onnx", min_shapes=[{"x": (1, 4)}], opt_shapes=[{"x": (2, 4)}], max_shapes=[{"x": (4, 4)}])
    assert one.build_hash() == same.build_hash() and one.run_shapes() == {"x": (2, 4)}
