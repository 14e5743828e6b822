"""What must hold on a machine without a GPU or without cuda-python (CPU CI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_trtperf.gpu import cuda
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.workloads.cuda import CudaWorkload, TransferSpec
from pytest_trtperf.workloads.torch import TorchWorkload

ROOT = Path(__file__).resolve().parents[1]

BLOCK_CUDA = textwrap.dedent("""
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "cuda" or name.startswith("cuda."):
                raise ImportError(f"blocked {name}")
            return None
    sys.meta_path.insert(0, _Block())
""")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_import_without_cuda_python_and_one_line_error() -> None:
    code = BLOCK_CUDA + textwrap.dedent("""
        import pytest_trtperf.gpu.cuda as c
        import pytest_trtperf.workloads.cuda as wc
        import pytest_trtperf.workloads.torch as wt
        from pytest_trtperf.core.errors import BackendUnavailable
        assert not c.is_installed()
        for call in (c.device_count, c.Stream, c.Event, lambda: c.malloc(8),
                     lambda: wc.CudaWorkload(lambda s: None).setup()):
            try:
                call()
            except BackendUnavailable as e:
                print("ERR", str(e))
            else:
                print("NO ERROR")
        print("REASON", c.unavailable_reason())
    """)
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    errs = [ln for ln in lines if ln.startswith(("ERR", "NO ERROR"))]
    assert len(errs) == 5 and all(ln.startswith("ERR ") for ln in errs), proc.stdout
    assert all("pip install 'pytest-trtperf[gpu]'" in ln for ln in errs)
    assert any(ln.startswith("REASON ") and "pytest-trtperf[gpu]" in ln for ln in lines)


def test_old_12x_layout_is_used_as_fallback() -> None:
    code = textwrap.dedent("""
        import sys, types
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name == "cuda.bindings" or name.startswith("cuda.bindings."):
                    raise ImportError(f"blocked {name}")
                return None
        sys.meta_path.insert(0, _Block())
        fake = types.ModuleType("cuda.cudart")
        fake.MARK = "old-layout"
        sys.modules["cuda.cudart"] = fake
        import cuda
        cuda.cudart = fake
        import pytest_trtperf.gpu.cuda as c
        print(getattr(c.runtime(), "MARK", "new-layout"))
    """)
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "old-layout"


@pytest.mark.parametrize("kwargs, needle", [
    ({"mode": "fast"}, "mode="),
    ({"streams": 0}, "streams="),
    ({"streams": 2}, "throughput"),
    ({"capture_mode": "loose"}, "capture_mode="),
    ({"transfers": "yes"}, "transfers"),
    ({"inferences_per_iteration": 0}, "inferences_per_iteration"),
    ({"queue_depth": 0}, "queue_depth"),
    ({"stream": [1, 2], "mode": "throughput"}, "stream="),
])
def test_bad_options_are_one_line_usage_errors(kwargs, needle) -> None:
    with pytest.raises(UsageError) as info:
        CudaWorkload(lambda s: None, **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_torch_workload_validates_without_torch_or_gpu() -> None:
    with pytest.raises(UsageError):
        TorchWorkload(lambda: None, mode="nope")


def test_identity_records_the_options() -> None:
    w = CudaWorkload(lambda s: None, mode="throughput", streams=3, cuda_graph=False,
                     blocking_sync=True, transfers=TransferSpec(), identity={"model": "vit"})
    assert w.identity() == {
        "kind": "cuda", "mode": "throughput", "streams": 3, "cuda_graph": False,
        "sync": "blocking", "transfers": True, "inferences_per_iteration": 1, "model": "vit",
    }


def test_stream_callables_take_the_baselines_capture_choice_and_engines_do_not() -> None:
    """The runner hands the baseline's ``timed_as`` to ChoosingWorkloads: a
    stream callable is one (the harness captures and checks it); a TensorRT
    engine is not (its CudaWorkload runs with check_capture=False)."""
    from pytest_trtperf.core.workload import ChoosingWorkload
    from pytest_trtperf.workloads.select import for_callable
    from pytest_trtperf.workloads.tensorrt import TensorRTWorkload

    w = for_callable(lambda stream: None, timer="cuda")
    assert isinstance(w, CudaWorkload) and isinstance(w, ChoosingWorkload) and w.check_capture
    for given, kept in (("graph", "graph"), ("eager", "eager"), (None, None), ("bogus", None)):
        w.use_baseline_choice(given)
        assert w._prior == kept
    assert "timed_as" not in w.identity()  # nothing chosen before setup
    assert not hasattr(TensorRTWorkload, "use_baseline_choice")


def test_time_calls_needs_at_least_one_call() -> None:
    with pytest.raises(ValueError):
        cuda.time_calls(0, lambda: None, 0)


def test_run_before_setup_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="setup"):
        CudaWorkload(lambda s: None).run(3)


needs_no_gpu = pytest.mark.skipif(
    not cuda.is_installed() or cuda.unavailable_reason() is None,
    reason="checks the no-GPU path; this machine has cuda-python and a GPU")


@needs_no_gpu
def test_cuda_call_without_driver_names_the_call() -> None:
    with pytest.raises(cuda.CudaError) as info:
        cuda.Stream()
    msg = str(info.value)
    assert "cudaStreamCreateWithFlags" in msg and "\n" not in msg
    assert cuda.device_count() == 0


@needs_no_gpu
def test_gpu_tests_skip_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.gpu\ndef test_needs_gpu():\n    assert False\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:trtperf",
         str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "1 skipped" in proc.stdout, proc.stdout + proc.stderr
    skip_lines = [ln for ln in proc.stdout.splitlines() if "GPU tests skipped" in ln]
    assert len(skip_lines) == 1 and "no CUDA GPU visible" in skip_lines[0]
