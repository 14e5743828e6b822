"""GPU workloads timed with CUDA events: any torch callable on the current
stream (Torch-TensorRT modules included). Skips without torch or a GPU."""

import pytest

torch = pytest.importorskip("torch", reason="needs torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)


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
