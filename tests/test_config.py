"""Settings from real pytest option parsing."""

from __future__ import annotations

import pytest

from pytest_trtperf.core.config import MeasureOptions, parse_fraction
from pytest_trtperf.core.errors import UsageError


def test_command_line_defaults_match_the_measurement_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_defaults='''
        from pytest_trtperf.core.config import MeasureOptions
        from pytest_trtperf.plugin.hooks import STATE_KEY

        def test_defaults(request):
            assert request.config.stash[STATE_KEY].settings.measure == MeasureOptions()
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("text,value", [("5%", 0.05), ("0.05", 0.05), (0.1, 0.1), (" 2.5% ", 0.025)])
def test_fractions(text: object, value: float) -> None:
    assert parse_fraction(text, what="x") == pytest.approx(value)


@pytest.mark.parametrize("text", ["five", "-1%", "nan", ""])
def test_bad_fractions_are_one_line_errors(text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_fraction(text, what="--trt-tolerance")
    assert "--trt-tolerance" in str(e.value) and "\n" not in str(e.value)


def test_marker_overrides_are_validated() -> None:
    opts = MeasureOptions().with_overrides({"tolerance": "3%", "warmup_ms": 50, "mode": "throughput"}, where="t")
    assert (opts.tolerance, opts.warmup_s, opts.mode) == (0.03, 0.05, "throughput")
    with pytest.raises(UsageError, match="t: unknown trt_perf argument 'tolerence'"):
        MeasureOptions().with_overrides({"tolerence": "3%"}, where="t")
    with pytest.raises(UsageError, match="mode"):
        MeasureOptions().with_overrides({"mode": "fast"}, where="t")


def test_marker_values_are_checked_before_the_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf='''
        import pytest

        @pytest.mark.trt_perf(tolerance="lots")
        def test_bad_value(trt_bench):
            raise AssertionError("the test body must not run")
    ''')
    r = pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["tolerance: 'lots' is not a fraction; write it as 5% or 0.05",
                            "FAILED test_perf.py::test_bad_value - Failed: tolerance: 'lots' is not a frac*"])
    assert "the test body must not run" not in r.stdout.str()


# ---- one settings owner: regressions of the three-readers era ------------------------
SETTINGS_PROBE = '''
import json
from pytest_trtperf.plugin.hooks import session_settings

def test_probe(request):
    s = session_settings(request.config)
    print("SETTINGS=" + json.dumps({"baseline_dir": str(s.baseline_dir), "state_dir": str(s.gpu.state_dir),
                                    "engine_cache": str(s.trt.engine_cache), "mode": s.baseline_mode}))
'''


def _probe(pytester: pytest.Pytester, *args: str) -> dict:
    import json

    r = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    line = next(x for x in r.outlines if "SETTINGS=" in x)
    return json.loads(line.split("SETTINGS=", 1)[1])


def test_baseline_dir_is_resolved_once_for_core_gpu_and_tensorrt(pytester: pytest.Pytester) -> None:
    """``cd sub && pytest --trt-baseline-dir=bl``: the clock-lock state and the
    engine cache live in the same ``sub/bl`` the baselines use (the GPU part
    used to put its state under the rootdir's ``bl``)."""
    pytester.makeini("[pytest]\n")
    sub = pytester.path / "sub"
    sub.mkdir()
    (sub / "test_probe.py").write_text(SETTINGS_PROBE)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        got = _probe(pytester, "--trt-baseline-dir=bl", "--trt-baseline=OFF", "test_probe.py")
    assert got["baseline_dir"] == str(sub / "bl")
    assert got["state_dir"] == str(sub / "bl" / ".state")
    assert got["engine_cache"] == str(sub / "bl" / "engines")
    assert got["mode"] == "off"


def test_upper_case_off_with_more_workers_than_gpus_is_no_usage_error(pytester: pytest.Pytester,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``--trt-baseline=OFF -n 2`` on one GPU: measuring only, so sharing the GPU
    is allowed; the worker-count check used to compare ``"off"`` case-sensitively."""
    import os

    from helpers import FAKE_NVML, REPO

    state = pytester.path / "nvml-state.json"
    monkeypatch.setenv("TRTPERF_NVML_MODULE", str(FAKE_NVML))
    monkeypatch.setenv("TRTPERF_FAKE_NVML_STATE", str(state))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    from fakes import fake_nvml
    fake_nvml.write_state(state, [fake_nvml.make_gpu(0)])
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--trt-baseline=OFF")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r2 = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--trt-baseline=COMPARE")
    assert r2.ret == pytest.ExitCode.USAGE_ERROR
    r2.stderr.fnmatch_lines(["*pytest -n 2 with 1 visible GPU(s)*"])


# ---- every numeric option, ini value and marker argument is validated in one place ---
@pytest.mark.parametrize("arg", [
    "--trt-duration=nan", "--trt-duration=inf", "--trt-duration=0", "--trt-duration=100000",
    "--trt-warmup-ms=nan", "--trt-warmup-ms=inf", "--trt-warmup-ms=-1",
    "--trt-min-time=nan", "--trt-max-time=nan", "--trt-max-time=inf",
    "--trt-iterations=100000000000", "--trt-iterations=2.5", "--trt-iterations=0",
    "--trt-streams=0", "--trt-target-ci=0", "--trt-target-ci=nan", "--trt-confidence=1",
    "--trt-nvml-interval-ms=nan", "--trt-tolerance=5", "--trt-tolerance=inf",
])
def test_bad_numbers_on_the_command_line_are_one_line_usage_errors(pytester: pytest.Pytester, arg: str) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    r = pytester.runpytest("-p", "no:cacheprovider", arg)  # in-process: the claim is the message
    assert r.ret == pytest.ExitCode.USAGE_ERROR, r.stdout.str()
    flag = arg.split("=")[0]
    errors = [line for line in r.errlines if flag in line]
    assert len(errors) == 1 and "Traceback" not in r.stderr.str(), r.stderr.str()


def test_tolerance_bare_number_above_one_suggests_percent() -> None:
    with pytest.raises(UsageError) as e:
        parse_fraction("5", what="--trt-tolerance", bare_max=1.0)
    assert "'5' would mean 500%; write 5% or 0.05" in str(e.value)
    assert parse_fraction("1", what="t", bare_max=1.0) == 1.0  # a bare number <= 1 is a fraction
    assert parse_fraction("150%", what="t", bare_max=1.0) == 1.5  # explicit percent is taken as written


@pytest.mark.parametrize("ini", ["trt_tolerance = 10", "trt_require_gpu = maybe", "trt_duration = nan"])
def test_bad_ini_values_name_the_key(pytester: pytest.Pytester, ini: str) -> None:
    key = ini.split(" = ")[0]
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    r = pytester.runpytest("-p", "no:cacheprovider")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines([f"*{key} (ini)*"])


def test_iterations_and_duration_together_are_refused_but_the_command_line_beats_the_ini(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-iterations=10", "--trt-duration=1")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*--trt-iterations and --trt-duration both given*"])
    pytester.makeini("[pytest]\ntrt_duration = 1\n")
    pytester.makepyfile(test_probe='''
from pytest_trtperf.plugin.hooks import session_settings

def test_probe(request):
    m = session_settings(request.config).measure
    assert (m.iterations, m.duration_s) == (10, None)
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-iterations=10").assert_outcomes(passed=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"warmup_ms": float("nan")}, "warmup_ms: nan must be a finite number"),
    ({"min_time": 5, "max_time": 0.1}, "max_time (0.1 s) is shorter than min_time (5 s)"),
    ({"duration": float("inf")}, "duration: inf must be a finite number"),
    ({"iterations": 2.5}, "iterations: 2.5 is not a whole number"),
    ({"iterations": 10, "duration": 1}, "iterations= and duration= both given"),
    ({"tolerance": 5}, "tolerance: 5 would mean 500%"),
    ({"min_iterations": 50, "max_iterations": 10}, "max_iterations (10) is below min_iterations (50)"),
])
def test_marker_obeys_the_command_line_rules(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        MeasureOptions().with_overrides(kwargs, where="t.py::test")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_usage_errors_in_a_test_lead_with_the_cause(pytester: pytest.Pytester) -> None:
    """Issue 11.5: an 80-column short summary shows the cause, not the node
    id again; the argument and the fix are still named."""
    pytester.makepyfile(test_h="""
import pytest

@pytest.mark.trt_perf(tolerance=5)
def test_tol_marker(trt_bench):
    trt_bench.measure(lambda: None)

@pytest.mark.trt_engine(onnx="m.onnx", precison="fp16")
def test_engine_marker(trt_bench):
    trt_bench()
""")
    r = pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off")
    r.assert_outcomes(failed=2)
    r.stdout.fnmatch_lines(["FAILED test_h.py::test_tol_marker - Failed: tolerance: 5 would mean 500%*",
                            "FAILED test_h.py::test_engine_marker - Failed: unknown trt_engine argument *"])
    r.stdout.fnmatch_lines(["tolerance: 5 would mean 500%; write 5% or 0.05 *"])
    assert "Failed: test_h.py::" not in r.stdout.str()


@pytest.mark.parametrize("message, expected", [
    ("t.py::test_x: tolerance: 5 would mean 500%", "tolerance: 5 would mean 500%"),
    ("t.py::test_x: trt_bench.measure(): kwargs=list must be a dict", "kwargs=list must be a dict (in trt_bench.measure())"),
    ("t.py::test_x (model at 3f2c9a1b7d0e): input 'x' is unknown", "input 'x' is unknown (model at 3f2c9a1b7d0e)"),
    ("t.py::test_x: a\nt.py::test_x: trt_bench(): b\n  layer detail", "a\nb (in trt_bench())\n  layer detail"),
    ("median latency regressed +30.4% (t.py::test_x: quoted)", "median latency regressed +30.4% (t.py::test_x: quoted)"),
    ("t.py::test_xy: another test", "t.py::test_xy: another test"),
])
def test_cause_first(message: str, expected: str) -> None:
    from pytest_trtperf.core.errors import cause_first

    assert cause_first(message, "t.py::test_x") == expected


def test_a_marker_fixed_stop_replaces_the_command_lines_other_one() -> None:
    base = MeasureOptions(duration_s=2.0)
    assert base.with_overrides({"iterations": 50}, where="t").duration_s is None
    assert MeasureOptions(iterations=5).with_overrides({"duration": 1}, where="t").iterations is None


@pytest.mark.parametrize("call, message", [
    ("trt_bench.measure(lambda: None, inferences_per_iteration=0)", "inferences_per_iteration: 0 must be >= 1"),
    ("trt_bench.measure(lambda: None, inferences_per_iteration=-5)", "inferences_per_iteration: -5 must be >= 1"),
    ("trt_bench.measure(lambda: None, inferences_per_iteration='abc')", "inferences_per_iteration: 'abc' is not a number"),
    ("trt_bench.measure(lambda: None, name=object())", "name=<object object at"),
    ("trt_bench.measure(lambda: None, name=3)", "name=3 must be a non-empty string"),
])
def test_measure_arguments_take_only_what_makes_sense(pytester: pytest.Pytester, call: str, message: str) -> None:
    pytester.makepyfile(test_args=f"def test_args(trt_bench):\n    {call}\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off")
    r.assert_outcomes(failed=1)
    failure = [line for line in r.outlines if message in line]
    assert failure, r.stdout.str()
    assert "Traceback" not in r.stdout.str() and "pytest_trtperf/" not in r.stdout.str()


def test_min_and_max_iterations_are_options_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe='''
from pytest_trtperf.plugin.hooks import session_settings

def test_probe(request):
    m = session_settings(request.config).measure
    assert (m.min_iterations, m.max_iterations) == (50, 5000)
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-min-iterations=50",
                                  "--trt-max-iterations=5000").assert_outcomes(passed=1)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-min-iterations=50",
                                      "--trt-max-iterations=10")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*max_iterations (10) is below min_iterations (50)*"])


def test_two_unnamed_measurements_say_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_two="def test_two(trt_bench):\n    trt_bench.measure(lambda: None)\n"
                                 "    trt_bench.measure(lambda: None)\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off", "--trt-iterations=20")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*two measurements without a name in one test; give each*"])
def test_ab_confirm_from_command_line_ini_and_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ab='''
        import pytest
        from pytest_trtperf.plugin.hooks import session_settings

        def test_session(request):
            print("AB=" + str(session_settings(request.config).measure.ab_confirm))

        @pytest.mark.trt_perf(ab_confirm="yes")
        def test_bad_marker(trt_bench):
            raise AssertionError("the test body must not run")
    ''')
    r = pytester.runpytest("-s", "-p", "no:cacheprovider")
    r.stdout.fnmatch_lines(["*AB=False*", "ab_confirm: 'yes' must be True or False"])
    assert "AB=True" in pytester.runpytest("-s", "-p", "no:cacheprovider", "--trt-ab-confirm").stdout.str()
    pytester.makeini("[pytest]\ntrt_ab_confirm = true\n")
    assert "AB=True" in pytester.runpytest("-s", "-p", "no:cacheprovider").stdout.str()
    pytester.makeini("[pytest]\ntrt_ab_confirm = maybe\n")
    r = pytester.runpytest("-p", "no:cacheprovider")
    assert r.ret == 4 and "trt_ab_confirm (ini): 'maybe' is not a boolean; use true or false" in r.stderr.str()
    assert MeasureOptions().with_overrides({"ab_confirm": True}, where="t").ab_confirm is True
