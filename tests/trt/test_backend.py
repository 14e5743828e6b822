"""Backend: library detection, the one logger, precision flags, plan checks, plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.trt import backend as backend_mod

ROOT = Path(__file__).resolve().parents[2]
WHERE = "test_x.py::test_backend"


def _run(code: str, *, pythonpath: list[Path] = (), timeout: float = 120) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (import state and TensorRT's logger
    registration are per process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def _stubs_only(tmp_path: Path) -> Path:
    """A site directory laid out like ``pip install tensorrt-stubs``: a
    ``tensorrt/`` package holding only ``__init__.pyi``."""
    site = tmp_path / "site"
    (site / "tensorrt").mkdir(parents=True)
    (site / "tensorrt" / "__init__.pyi").write_text("from tensorrt_bindings.tensorrt import Builder as Builder\n")
    return site


# ------------------------------------------------------------------ detection
def test_stub_package_is_skipped_with_a_note_and_auto_falls_through_to_rtx(rtx, tmp_path: Path) -> None:
    site = _stubs_only(tmp_path)
    out = _run("""
        import json, tensorrt
        from pytest_trtperf.trt.backend import load_backend
        from pytest_trtperf.core.errors import BackendUnavailable
        b = load_backend("auto")
        try:
            load_backend("tensorrt")
            only = "loaded"
        except BackendUnavailable as e:
            only = str(e)
        print(json.dumps({"name": b.name, "notes": b.notes, "only": only, "stub_file": tensorrt.__file__}))
    """, pythonpath=[site])
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["stub_file"] is None  # the stubs really import, as an empty namespace package
    assert got["name"] == "tensorrt_rtx"
    assert len(got["notes"]) == 1 and "'tensorrt'" in got["notes"][0] and "namespace package" in got["notes"][0]
    assert str(site / "tensorrt") in got["notes"][0] and "no Builder, Runtime" in got["notes"][0]
    assert "\n" not in got["only"] and got["only"].startswith("TensorRT is not installed (tried tensorrt (not a library))")


def test_real_rtx_module_is_a_library_and_names_its_version(rtx) -> None:
    assert backend_mod.not_a_library(rtx.module, "tensorrt_rtx") is None
    assert rtx.is_rtx and rtx.label.startswith("TensorRT-RTX 1.") and rtx.notes == ()


def test_a_module_without_the_api_is_refused_on_explicit_choice() -> None:
    import types

    fake = types.ModuleType("tensorrt")
    with pytest.raises(BackendUnavailable) as exc:
        backend_mod.load_backend("tensorrt", importer=lambda name: fake)
    assert "'tensorrt' at" in str(exc.value) and "no Builder" in str(exc.value)


# --------------------------------------------------------------------- logger
def test_one_logger_per_library_filters_in_log(rtx) -> None:
    log = rtx.logger()
    assert log is rtx.logger() is backend_mod.from_module(rtx.module, "tensorrt_rtx").logger()
    assert not hasattr(rtx.module.ILogger, "min_severity")  # why filtering must happen in log()
    mark = log.mark()
    sev = rtx.module.ILogger.Severity
    log.log(sev.VERBOSE, "verbose chatter")
    log.log(sev.INFO, "info chatter")
    log.log(sev.WARNING, "a warning")
    log.log(sev.ERROR, "an error")
    assert log.warnings(since=mark) == ["a warning"] and log.errors(since=mark) == ["an error"]
    assert log.errors(since=log.mark()) == []


def test_no_logger_ignored_warning_while_an_engine_runtime_is_alive(rtx, models: Path) -> None:
    """A runtime stays alive while an engine runs; builds and plan checks made
    meanwhile must not give TensorRT-RTX a second logger (it warns that the new
    one is ignored). Each build reports the warnings logged while it ran."""
    out = _run(f"""
        import json
        from pytest_trtperf.trt.backend import load_backend
        from pytest_trtperf.trt.build import build_plan
        from pytest_trtperf.trt.spec import EngineSpec
        b = load_backend("tensorrt_rtx")
        alive = b.module.Runtime(b.logger())
        spec = EngineSpec.create("t", onnx={str(models / 'mlp.onnx')!r}, shapes={{"input": (2, 64)}}, optimization_level=0)
        r = build_plan(b, spec)
        b.check_plan(r.plan)
        other = b.module.Runtime(b.module.Logger())   # a second logger: the library complains to it
        print(json.dumps({{"build": list(r.warnings), "ours": b.logger().warnings()}}))
    """)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not [w for w in got["build"] + got["ours"] if "logger" in w.lower()], got
    assert "differs from one already registered" in out.stdout + out.stderr  # the check can see the warning


# ------------------------------------------------------------------ precision
def test_precision_maps_to_trtexec_flags_on_tensorrt10(fake_backend, fake_trt) -> None:
    """TensorRT 10 (BuilderFlag values of 10.13, held to tensorrt-stubs)."""
    flag = fake_trt.BuilderFlag
    f = fake_backend.precision_flags
    assert f(("auto",), WHERE) == backend_mod.PrecisionFlags()
    assert f(("fp32",), WHERE) == backend_mod.PrecisionFlags(clear=(flag.TF32,))  # --noTF32
    assert f(("tf32",), WHERE) == backend_mod.PrecisionFlags(set=(flag.TF32,))
    assert f(("fp16",), WHERE).set == (flag.FP16,)
    assert f(("bf16", "fp16", "int8"), WHERE).set == (flag.BF16, flag.FP16, flag.INT8)
    assert f(("fp8",), WHERE).set == (flag.FP8,) and f(("int4",), WHERE).set == (flag.INT4,)
    assert f(("fp16", "fp32"), WHERE) == backend_mod.PrecisionFlags(set=(flag.FP16,), clear=(flag.TF32,))
    with pytest.raises(UsageError, match="fp8 and int8 cannot be enabled together"):
        f(("fp8", "int8"), WHERE)
    with pytest.raises(UsageError, match="fp32 .* contradicts tf32"):
        f(("fp32", "tf32"), WHERE)


@pytest.mark.parametrize("p", ["fp16", "bf16", "int8", "fp8", "int4"])
def test_weak_typing_precisions_are_refused_on_rtx_in_one_line(rtx, p: str) -> None:
    with pytest.raises(UsageError) as exc:
        rtx.precision_flags((p,), WHERE)
    msg = str(exc.value)
    assert "\n" not in msg and f"precision={p!r}" in msg and "TensorRT-RTX" in msg and f"export the ONNX model in {p}" in msg


def test_fp32_clears_the_real_tf32_flag_on_rtx(rtx) -> None:
    assert rtx.precision_flags(("fp32",), WHERE).clear == (rtx.module.BuilderFlag.TF32,)


# ------------------------------------------------------------------ plan check
def test_plan_check_separates_bad_plans_from_a_machine_without_gpu(rtx, models: Path, tmp_path: Path) -> None:
    from pytest_trtperf.gpu.cuda import unavailable_reason
    from pytest_trtperf.trt.build import build_plan
    from pytest_trtperf.trt.spec import EngineSpec

    plan = build_plan(rtx, EngineSpec.create(WHERE, models, onnx="mlp.onnx", shapes={"input": (1, 64)},
                                             optimization_level=0)).plan
    assert rtx.check_plan(b"x" * 4096).problem == "not a valid or complete engine (truncated or foreign file)"
    assert rtx.check_plan(b"ftrt" + plan[4:]).problem == "built by TensorRT, not " + rtx.label
    good = rtx.check_plan(plan)
    assert good.problem is None
    if unavailable_reason() is not None:  # here: RTX rates every plan INVALID with no bit, and says why
        assert good.unavailable is not None and "cudaError 35" in good.unavailable


def test_plan_check_on_the_rtx_double(fake_rtx_backend, fake_rtx) -> None:
    io = [{"name": "x", "mode": "input", "dtype": "FLOAT", "shape": [1, 4]}]
    assert "another TensorRT version" in fake_rtx_backend.check_plan(fake_rtx.make_plan(io, version="1.6.0")).problem
    assert fake_rtx_backend.check_plan(fake_rtx.make_plan(io)).problem is None


# --------------------------------------------------------------------- plugins
def test_plugins_are_initialised_before_deserializing(fake_backend, fake_trt) -> None:
    from pytest_trtperf.trt.api import engine_from_plan
    from pytest_trtperf.trt.engine import deserialize

    fake_trt.reset_plugin_registry()
    handle = engine_from_plan(fake_backend, fake_trt.make_plan([], plugins=["FakeNMS_TRT"]), WHERE)
    try:
        deserialize(handle)
    except BackendUnavailable:
        pass  # no GPU here: the runtime refused after plugins were registered
    assert fake_trt.TRT10.plugins["initialized"] is True


def test_real_rtx_plugin_initialisation_succeeds(rtx) -> None:
    assert rtx.init_plugins() is None
    assert rtx.init_plugins() is None  # idempotent, as trtexec and Polygraphy call it every time
