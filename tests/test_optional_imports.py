"""The plugin loads and times host workloads with none of the optional
dependencies importable (TensorRT, TensorRT-RTX, cuda-python, NVML, onnx,
matplotlib), and GPU tests then skip with one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCKER = textwrap.dedent('''
    import sys
    BLOCKED = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings", "cuda", "pynvml", "onnx", "matplotlib",
               "torch", "cupy")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} blocked for this test")
            return None

    sys.meta_path.insert(0, Block())
    import pytest
    sys.exit(pytest.main(sys.argv[1:]))
''')


def test_host_workloads_work_without_optional_dependencies(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf='''
        import hashlib
        import pytest

        DATA = b"x" * 100_000

        def test_host(trt_bench):
            r = trt_bench.measure(lambda: hashlib.sha256(DATA).digest())
            assert r.kind == "host" and r.latency.median > 0

        def test_cuda(trt_bench):
            trt_bench.measure(lambda stream: None, timer="cuda")

        @pytest.mark.trt_engine(onnx="missing.onnx", shapes={"x": (1, 4)})
        def test_engine(trt_bench):
            trt_bench()
    ''')
    (pytester.path / "run.py").write_text(BLOCKER)
    proc = subprocess.run([sys.executable, "run.py", "-p", "no:cacheprovider", "-rs", "--trt-max-time=1",
                           "--trt-baseline=update"], cwd=pytester.path, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed, 2 skipped" in out, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 2 and all("Traceback" not in s for s in skips), skips
    assert any("pytest-trtperf[gpu]" in s for s in skips), skips
    assert all(" test_perf.py:" in s for s in skips), skips  # reported at the test, not in the plugin
    assert "Traceback" not in out and "During handling" not in out


def test_gpu_tests_fail_instead_of_skipping_with_require_gpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf='''
        def test_cuda(trt_bench):
            trt_bench.measure(lambda stream: None, timer="cuda")
    ''')
    (pytester.path / "run.py").write_text(BLOCKER)
    proc = subprocess.run([sys.executable, "run.py", "-p", "no:cacheprovider", "--trt-require-gpu"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout
    assert "(--trt-require-gpu)" in proc.stdout and "1 failed" in proc.stdout

