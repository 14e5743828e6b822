"""EngineSpec: marker arguments validated once, one-line errors naming the test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_trtperf.core.errors import UsageError
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
        # Issue 16: these were tracebacks from numpy, pathlib or the TensorRT bindings.
        ({"seed": float("nan")}, "seed=nan: a whole number"),
        ({"seed": "abc"}, "seed='abc': a whole number"),
        ({"seed": -1}, "seed=-1: a whole number from 0"),
        ({"seed": True}, "seed=True"),
        ({"shapes": {"input": (10**30, 64)}}, "larger than TensorRT takes"),
        ({"shapes": {"input": (2.5, 64)}}, "shapes['input']=(2.5, 64): a tuple of positive integers"),
        ({"shapes": {"input": ("8", 64)}}, "a tuple of positive integers"),
        ({"shapes": {"input": (True, 64)}}, "a tuple of positive integers"),
        ({"shapes": {"input": 64}}, "shapes['input']=64: a tuple of positive integers"),
        ({"min_shapes": {"x": (1, 4)}, "opt_shapes": {"x": (2, 4)}, "max_shapes": {"x": (2**63, 4)}},
         "max_shapes['x']"),
        ({"precision": 5}, "precision=5"),
        ({"memory_pools": 5}, "memory_pools=5"),
        ({"builder_flags": 5}, "builder_flags=5"),
        ({"builder_flags": ["FP16", 3]}, "builder_flags=['FP16', 3]"),
        ({"weight_streaming": "yes"}, "weight_streaming='yes': True or False"),
        ({"strongly_typed": 1}, "strongly_typed=1: True or False (or None"),
        ({"optimization_level": True}, "optimization_level=True"),
    ],
)
def test_bad_values_are_one_line_usage_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        EngineSpec.create(WHERE, onnx="m.onnx", **kwargs)
    assert fragment in str(exc.value) and WHERE in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"onnx": 5}, "onnx=5: a path (str or pathlib.Path) of the ONNX model"),
    ({"engine": ["x"]}, "engine=['x']: a path (str or pathlib.Path) of the plan file"),
    ({"engine": None, "onnx": b"m.onnx"}, "onnx=b'm.onnx'"),
])
def test_model_paths_are_str_or_pathlike(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        EngineSpec.create(WHERE, **kwargs)
    assert fragment in str(exc.value) and WHERE in str(exc.value) and "\n" not in str(exc.value)


def test_valid_whole_numbers_of_other_types_are_taken() -> None:
    np = pytest.importorskip("numpy")
    spec = EngineSpec.create(WHERE, onnx=Path("m.onnx"), seed=np.int64(7), shapes={"x": (np.int32(2), 64)},
                             strongly_typed=None, weight_streaming=False)
    assert spec.seed == 7 and spec.shapes == {"x": (2, 64)} and type(spec.shapes["x"][0]) is int


MARKERS = '''
import pytest

@pytest.mark.trt_engine(onnx="m.onnx", seed=float("nan"))
def test_seed_nan(trt_bench):
    trt_bench()

@pytest.mark.trt_engine(onnx="m.onnx", seed="abc")
def test_seed_text(trt_bench):
    trt_bench()

@pytest.mark.trt_engine(onnx="m.onnx", shapes={"input": (10**30, 64)})
def test_huge_dim(trt_bench):
    trt_bench()

@pytest.mark.trt_engine(onnx=5)
def test_onnx_int(trt_bench):
    trt_bench()

@pytest.mark.trt_engine(engine=["x"])
def test_engine_list(trt_bench):
    trt_bench()
'''


def test_bad_marker_arguments_fail_their_test_with_one_line(pytester: pytest.Pytester) -> None:
    """Through the plugin: each test fails with one line naming it and the
    argument, before anything is built; no traceback."""
    pytester.makepyfile(test_markers=MARKERS)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-baseline=off", timeout=120)
    r.assert_outcomes(failed=5)
    # The cause comes first (pytest's own header and FAILED line name the test).
    r.stdout.fnmatch_lines([
        "*_ test_seed_nan _*", "seed=nan: a whole number*",
        "*_ test_seed_text _*", "seed='abc': a whole number*",
        "*_ test_huge_dim _*", "shapes*=(1000000000000000000000000000000, 64): a dimension is larger*",
        "*_ test_onnx_int _*", "onnx=5: a path*",
        "*_ test_engine_list _*", "engine=*'x'*: a path*",
        "FAILED test_markers.py::test_seed_nan - Failed: seed=nan*",
    ], consecutive=False)
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
    assert "TypeError" not in r.stdout.str() and "ValueError" not in r.stdout.str()


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


def test_every_argument_has_its_check_in_the_table() -> None:
    """``create`` runs one check per argument from a table: an argument added to
    the dataclass without a check would reach TensorRT unvalidated."""
    from dataclasses import fields

    from pytest_trtperf.trt import spec

    assert set(spec._CHECKS) == {f.name for f in fields(EngineSpec)} - {"where"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        # Each pair of mistakes is reported by the check that runs first, as before the table.
        ({"seed": -1, "precision": "fp7"}, "seed=-1"),
        ({"precision": "fp7", "seed": -1}, "seed=-1"),
        ({"builder_flags": 3, "strongly_typed": "yes"}, "strongly_typed='yes'"),
        ({"inputs": 3, "workspace_mb": -1}, "workspace_mb=-1"),
        ({"profile": -1, "shapes": {"x": (0,)}}, "dimensions must be positive"),
        ({"profiling_verbosity": "x", "memory_pools": {"bad": 1}, "optimization_level": 9}, "optimization_level=9"),
    ],
)
def test_two_mistakes_report_the_same_one_first(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        EngineSpec.create(WHERE, onnx="m.onnx", **kwargs)
    assert fragment in str(exc.value)
