"""TensorRT workloads on a small MLP: a dynamic-shape batch sweep over one
engine, a throughput test on two streams, loading a saved engine file, a
relative gate (an FP16 engine against the FP32 engine of the same network),
and latency under load (two execution contexts serving Poisson arrivals).

Models come from ``models/make_models.py`` (generated, no download). On a
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
MLP = str(MODELS / "mlp.onnx")
PLAN = MODELS / "mlp_b1-256.plan"
WIDE_FP32, WIDE_FP16 = str(MODELS / "wide_fp32.onnx"), str(MODELS / "wide_fp16.onnx")


def test_batch_sweep(trt_bench):
    """One engine with a min/opt/max profile, measured at several batch sizes."""
    engine = trt_bench.engine(
        MLP,
        min_shapes={"input": (1, 256)},
        opt_shapes={"input": (64, 256)},
        max_shapes={"input": (256, 256)},
    )
    for bs in (1, 16, 64, 256):
        trt_bench.measure(engine, shapes={"input": (bs, 256)}, name=f"bs{bs}")


@pytest.mark.trt_engine(onnx=MLP, shapes={"input": (256, 256)})
@pytest.mark.trt_perf(metric="throughput", mode="throughput", streams=2, tolerance="5%")
def test_mlp_throughput(trt_bench):
    result = trt_bench()
    assert result.throughput > 0  # inferences per second (256 per iteration)


@pytest.mark.trt_engine(onnx=MLP, shapes={"input": (1, 256)})
@pytest.mark.trt_serve(rate=2000, concurrency=2, duration=2, slo="p99<5ms", search_time=20)
def test_mlp_serves_2000_per_second(trt_bench):
    """Open-loop arrivals at 2000/s on two execution contexts (one stream
    each): p99 at that rate and the highest rate within 5 ms are gated."""
    result = trt_bench.serve()
    assert result.serve.at_rate.requests > 0


@pytest.fixture(scope="module")
def saved_engine(pytestconfig):
    """Build the engine once and save it, like ``trtexec --saveEngine``."""
    from pytest_trtperf.plugin.hooks import session_settings
    from pytest_trtperf.trt import EngineSpec, get_engine

    spec = EngineSpec.create(
        "example_suite: save engine",
        onnx=MLP,
        min_shapes={"input": (1, 256)},
        opt_shapes={"input": (32, 256)},
        max_shapes={"input": (256, 256)},
    )
    PLAN.write_bytes(get_engine(spec, session_settings(pytestconfig).trt).plan)
    return PLAN


@pytest.mark.trt_engine(engine=str(PLAN), shapes={"input": (32, 256)})
def test_load_engine_file(trt_bench, saved_engine):
    result = trt_bench()  # deserializes the plan; I/O, dtypes and profile come from the engine
    assert result.latency.median_ms > 0


def test_fp16_engine_is_faster(trt_bench):
    """Measured interleaved, judged on the paired ratio; no baseline file. The
    precision comes from the ONNX models (TensorRT 11 and RTX are strongly typed)."""
    fp32 = trt_bench.engine(WIDE_FP32, shapes={"input": (512, 1024)})
    fp16 = trt_bench.engine(WIDE_FP16, shapes={"input": (512, 1024)})
    trt_bench.compare(fp32, fp16, min_speedup=1.2)
