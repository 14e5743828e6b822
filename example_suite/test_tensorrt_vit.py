"""A ViT-style classifier at batch 128 in FP16, built from ONNX with TensorRT.

The model comes from ``models/make_models.py`` (generated, no download). On a
machine without TensorRT or a GPU its tests skip, and the summary says why.
"""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("example_models", Path(__file__).parent / "models" / "make_models.py")
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)
# Skipped tests (not a module-level pytest.skip) are collected, so the trtperf
# summary can say why each one skipped, without -rs.
REASON = models.tensorrt_unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
MODELS = models.ensure() if REASON is None else models.HERE


@pytest.mark.trt_engine(onnx=str(MODELS / "vit.onnx"), shapes={"input": (128, 3, 224, 224)})
@pytest.mark.trt_perf(metric="median", tolerance="5%")
def test_vit_latency(trt_bench):
    result = trt_bench()  # build once (engine cache), warm up, measure, compare with the baseline
    assert result.latency.median_ms < 100  # an absolute budget on top of the baseline gate
