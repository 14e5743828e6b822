"""TrtOptions from real pytest option parsing and ini files (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.config import TrtOptions

TEST = """
import json
from pytest_trtperf.plugin.hooks import session_settings

def test_opts(request):
    o = session_settings(request.config).trt
    print("OPTS=" + json.dumps({k: (str(v) if v is not None else None) for k, v in vars(o).items()}))
"""


def _opts(pytester: pytest.Pytester, *args: str) -> dict:
    pytester.makepyfile(test_opts=TEST)
    result = pytester.runpytest_subprocess("-s", *args)
    line = next(x for x in result.outlines if x.startswith("OPTS=") or "OPTS=" in x)
    import json

    return json.loads(line.split("OPTS=", 1)[1])


def test_defaults_and_command_line(pytester: pytest.Pytester) -> None:
    opts = _opts(pytester, "--trt-engine-cache=eng", "--trt-profile-layers", "--trt-backend=tensorrt_rtx")
    assert opts["backend"] == "tensorrt_rtx"
    assert opts["engine_cache"] == str(pytester.path / "eng")
    assert opts["timing_cache"] == str(pytester.path / "eng" / "timing.cache")
    assert opts["profile_layers"] == "True" and opts["allow_engine_host_code"] == "False"


def test_default_engine_cache_is_inside_the_baseline_dir(pytester: pytest.Pytester) -> None:
    opts = _opts(pytester)
    assert opts["engine_cache"] == str(pytester.path / ".trtperf" / "engines")
    assert opts["backend"] == "auto" and opts["profile_layers"] == "False"


def test_engine_cache_follows_the_baseline_dir(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_opts=TEST)
    result = pytester.runpytest_subprocess("-s", "--trt-baseline-dir=perf/base")
    line = next(x for x in result.outlines if "OPTS=" in x)
    import json

    assert json.loads(line.split("OPTS=", 1)[1])["engine_cache"] == str(pytester.path / "perf" / "base" / "engines")


def test_ini_keys_and_off(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrt_engine_cache = off\ntrt_allow_engine_host_code = true\ntrt_backend = tensorrt\n")
    opts = _opts(pytester)
    assert opts["engine_cache"] is None and opts["timing_cache"] is None
    assert opts["allow_engine_host_code"] == "True" and opts["backend"] == "tensorrt"


def test_bad_backend_choice_is_rejected(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--trt-backend=onnxruntime")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--trt-backend: 'onnxruntime' is not one of auto, tensorrt, tensorrt_rtx*"])


def test_from_values_validation(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--trt-backend='x'"):
        TrtOptions.from_values(backend="x")
    with pytest.raises(UsageError, match="--trt-profile-layers"):
        TrtOptions.from_values(profile_layers="maybe")
    o = TrtOptions.from_values(engine_cache=None, timing_cache="tc.bin", rootdir=tmp_path)
    assert o.engine_cache is None and o.timing_cache == tmp_path / "tc.bin"
