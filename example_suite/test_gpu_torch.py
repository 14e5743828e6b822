"""GPU workloads timed with CUDA events: any torch callable on the current
stream (Torch-TensorRT modules included). Skips without torch or a GPU."""

import pytest

try:
    import torch
except ImportError:
    torch = None
# Skipped tests (not a module-level pytest.skip) are collected, so the trtperf
# summary can say why each one skipped, without -rs.
REASON = "needs torch" if torch is None else (None if torch.cuda.is_available() else "needs a CUDA GPU")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_gemm_fp16(trt_bench):
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    result = trt_bench.measure(lambda: a @ b, timer="torch", name="gemm4096")
    assert result.gpu_compute is not None


def test_mlp_block(trt_bench):
    model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024))
    model = model.cuda().half().eval()
    x = torch.randn(64, 1024, device="cuda", dtype=torch.float16)
    with torch.inference_mode():
        trt_bench.measure(lambda: model(x), timer="torch", inferences_per_iteration=64)


def test_fp16_gemm_beats_fp32(trt_bench):
    """A relative gate: FP16 against FP32 on the same GPU, interleaved; holds
    with or without TF32 (FP16 tensor cores do twice TF32's work per clock)."""
    a32 = torch.randn(4096, 4096, device="cuda")
    a16 = a32.half()
    trt_bench.compare(lambda: a32 @ a32, lambda: a16 @ a16, timer="torch", min_speedup=1.5, name="fp16_vs_fp32")
