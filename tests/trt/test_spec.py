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
