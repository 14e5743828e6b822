"""``trt_bench()`` and ``trt_bench.engine()`` through the real plugin with real
TensorRT-RTX builds (no GPU here: the build runs, the run skips with one line)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TEST = '''
import pytest

@pytest.mark.trt_engine(onnx="mlp.onnx", shapes={"input": (4, 64)}, optimization_level=0)
def test_marker(trt_bench):
    trt_bench()

def test_sweep_shape_outside_profile(trt_bench):
    engine = trt_bench.engine("mlp.onnx", min_shapes={"input": (1, 64)}, opt_shapes={"input": (8, 64)},
                              max_shapes={"input": (16, 64)}, optimization_level=0)
    trt_bench.measure(engine, shapes={"input": (32, 64)}, name="bs32")

@pytest.mark.trt_engine(onnx="mlp.onnx", shapes={"input": (4, 64)}, optimisation_level=0)
def test_typo(trt_bench):
    trt_bench()
'''


@pytest.fixture
def project(pytester: pytest.Pytester, rtx, models: Path) -> pytest.Pytester:
    shutil.copy(models / "mlp.onnx", pytester.path / "mlp.onnx")
    pytester.makepyfile(test_engines=TEST)
    return pytester


def test_build_once_then_cache_and_one_line_errors(project: pytest.Pytester) -> None:
    first = project.runpytest("-p", "no:cacheprovider", "-rs", "--trt-baseline=off")
    first.assert_outcomes(skipped=1, failed=2)
    out = first.stdout.str()
    # Progress of the build is shown while the test runs (not only on failure).
    assert "[trtperf] building mlp.onnx" in out and "built with TensorRT-RTX" in out
    first.stdout.fnmatch_lines([
        "*_ test_sweep_shape_outside_profile _*",
        "input 'input' shape (32, 64) is outside the engine's profile: min (1, 64) .. max (16, 64)",
        "unknown trt_engine argument 'optimisation_level'; expected one of *",
        "SKIPPED [[]1[]] test_engines.py:*GPU*",
    ])
    assert "Traceback" not in out
    # Plans are cached inside the baseline directory and never committed.
    cache = project.path / ".trtperf" / "engines"
    assert list(cache.glob("*.plan")) and (cache / ".gitignore").read_text() == "*\n"

    second = project.runpytest("-p", "no:cacheprovider", "--trt-baseline=off", "-k", "marker")
    assert "engine from cache" in second.stdout.str()
    assert "building mlp.onnx" not in second.stdout.str()
