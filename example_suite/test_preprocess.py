"""Host workload: the image preprocessing that runs before the engine.

Runs on any machine. Pre/post-processing often costs as much as the engine
itself at small batch sizes, so it deserves its own gate.
"""

import numpy as np
import pytest

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """Center-crop 224, scale to [0, 1], normalise, HWC -> CHW."""
    top = (image.shape[0] - 224) // 2
    left = (image.shape[1] - 224) // 2
    crop = image[top:top + 224, left:left + 224].astype(np.float32) / 255.0
    return np.ascontiguousarray(((crop - MEAN) / STD).transpose(2, 0, 1))


@pytest.mark.trt_perf(tolerance="10%")
def test_preprocess_latency(trt_bench):
    result = trt_bench.measure(lambda: preprocess(IMAGE))
    assert result.latency.median_ms < 50  # an absolute budget on top of the baseline gate


def test_postprocess_topk(trt_bench):
    logits = RNG.standard_normal((64, 1000)).astype(np.float32)
    # 64 images per call: throughput counts inferences, not calls.
    result = trt_bench.measure(lambda: np.argpartition(logits, -5, axis=1)[:, -5:], name="top5",
                               inferences_per_iteration=64)
    assert result.throughput > 0
