"""The option table (issue 24, point 5): defaults come from the settings
dataclasses, and the command line, the ini file and the ``trt_perf`` marker
read a shared setting through one parser."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_trtperf.core.config import PERF_ARGS, MeasureOptions
from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.plugin.options import OPTIONS, settings_from_config

#: Every setting the session holds, printed by a test so two runs can be compared.
PROBE = '''
from pytest_trtperf.plugin.hooks import session_settings

def test_probe(request):
    s = session_settings(request.config)
    print("SETTINGS=" + repr((s.measure, s.gpu, s.trt, s.baseline_mode, s.baseline_loaded, s.group_by,
                              s.lock_timeout_s, s.ab)))
'''


def _settings_line(r: pytest.RunResult) -> str:
    return next(line for line in r.outlines if "SETTINGS=" in line)


def _valued() -> list[Any]:
    """Options that take a value and have a default."""
    return [o for o in OPTIONS if o.kind != "bool" and o.default is not None]


def test_every_knob_default_reads_back_as_the_dataclass_default() -> None:
    for key, knob in PERF_ARGS.items():
        default, shown = getattr(MeasureOptions(), knob.field), knob.default()
        if shown is None:  # unset: no fixed stop, no group
            assert default is None, key
            continue
        if knob.boolean:  # a marker takes True/False, the command line the word
            assert knob.parse_text(shown, key) == default, (key, shown)
        else:
            assert MeasureOptions().with_overrides({key: shown}, where="t") == MeasureOptions(), (key, shown)


def test_options_that_set_a_marker_field_show_its_dataclass_default() -> None:
    for opt in OPTIONS:
        if opt.knob is not None and opt.kind != "bool":
            assert opt.default == PERF_ARGS[opt.knob].default(), opt.flag


def test_help_shows_each_default_and_giving_it_changes_nothing(pytester: pytest.Pytester) -> None:
    """Each default ``--help`` shows is the one the session uses: writing every
    shown default on the command line gives the same settings as writing none."""
    help_text = " ".join(pytester.runpytest("--help").stdout.str().split())
    for opt in _valued():
        assert f"Default: {opt.default}." in help_text, opt.flag
    pytester.makepyfile(test_probe=PROBE)
    plain = pytester.runpytest("-s", "-p", "no:cacheprovider")
    explicit = pytester.runpytest("-s", "-p", "no:cacheprovider", *(f"{o.flag}={o.default}" for o in _valued()))
    plain.assert_outcomes(passed=1)
    explicit.assert_outcomes(passed=1)
    assert _settings_line(plain) == _settings_line(explicit)


def test_every_option_with_a_fixed_set_of_words_lists_them() -> None:
    for opt in OPTIONS:
        if opt.choices is not None:
            assert opt.default is None or opt.default in opt.choices, opt.flag
            assert opt.metavar is not None and all(c in opt.help or c in opt.metavar for c in opt.choices), opt.flag


def _config(tmp_path: Path, cli: dict[str, Any], ini: dict[str, Any] | None = None) -> Any:
    """Just enough of pytest's config for ``settings_from_config``."""
    ini = ini or {}
    return SimpleNamespace(rootpath=tmp_path, invocation_params=SimpleNamespace(dir=tmp_path), inipath=None,
                           getoption=lambda dest, default=None: cli.get(dest, default),
                           getini=lambda dest: ini.get(dest, ""))


def _cause(message: str, label: str) -> str:
    assert label in message, (label, message)
    return message.split(label, 1)[1]


#: Options that set a marker field that is not a boolean. Booleans are the one
#: difference by design: a marker takes True/False, the command line and the
#: ini file take words (on/off, true/false), so a marker's ``"yes"`` is refused.
VALUED_KNOBS = [o for o in OPTIONS if o.knob is not None and not PERF_ARGS[o.knob].boolean]
#: A value every parser of a valued setting refuses.
BAD = "lots"


@pytest.mark.parametrize("opt", VALUED_KNOBS, ids=lambda o: o.flag)
def test_marker_command_line_and_ini_refuse_a_bad_value_in_the_same_words(tmp_path: Path, opt: Any) -> None:
    with pytest.raises(UsageError) as from_marker:
        MeasureOptions().with_overrides({opt.knob: BAD}, where="t.py::test")
    with pytest.raises(UsageError) as from_cli:
        settings_from_config(_config(tmp_path, {opt.dest: BAD}))
    with pytest.raises(UsageError) as from_ini:
        settings_from_config(_config(tmp_path, {}, {opt.dest: BAD}))
    cause = _cause(str(from_marker.value), f"t.py::test: {opt.knob}")
    assert _cause(str(from_cli.value), opt.flag) == cause
    assert _cause(str(from_ini.value), f"{opt.dest} (ini)") == cause


@pytest.mark.parametrize("opt", VALUED_KNOBS, ids=lambda o: o.flag)
def test_marker_and_command_line_read_a_good_value_alike(tmp_path: Path, opt: Any) -> None:
    knob = PERF_ARGS[opt.knob]
    good = {"metric": "p99", "missing_baseline": "fail", "incomparable": "fail", "unreliable": "fail",
            "mode": "throughput", "run_noise": "2%", "memory_tolerance": "off", "max_iterations": "500"}.get(opt.knob, "3")
    if knob.field in ("tolerance", "target_rel_ci", "confidence"):
        good = "0.95" if knob.field == "confidence" else "3%"
    marked = MeasureOptions().with_overrides({opt.knob: good}, where="t")
    read = settings_from_config(_config(tmp_path, {opt.dest: good})).measure
    assert getattr(read, knob.field) == getattr(marked, knob.field) != getattr(MeasureOptions(), knob.field)


def test_a_bad_value_reads_the_same_from_a_marker_and_the_command_line(pytester: pytest.Pytester) -> None:
    """End to end, through pytest: the cause after the label is one text."""
    pytester.makepyfile(test_m='''
        import pytest

        @pytest.mark.trt_perf(target_ci="0%")
        def test_bad(trt_bench):
            pass
    ''')
    marker = pytester.runpytest("-p", "no:cacheprovider", "--trt-baseline=off")
    marker.assert_outcomes(failed=1)
    cli = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--trt-target-ci=0%")
    assert cli.ret == pytest.ExitCode.USAGE_ERROR
    cause = "'0%' must be above 0 and at most 100% (e.g. 1%)"
    assert any(re.search(r"target_ci: " + re.escape(cause), line) for line in marker.outlines), marker.stdout.str()
    cli.stderr.fnmatch_lines([f"*--trt-target-ci: {cause}*"])


# -- positive spellings beside the old negative flags ----------------------------------------
NEGATIVES = [o for o in OPTIONS if o.negative is not None]


def _field(settings: Any, opt: Any) -> Any:
    return getattr(settings.measure, PERF_ARGS[opt.knob].field) if opt.knob else settings.watch_host


def test_each_old_negative_flag_has_a_positive_spelling() -> None:
    assert {o.negative for o in NEGATIVES} == {"--trt-no-cuda-graph", "--trt-no-remeasure", "--trt-ignore-host-load"}
    assert {o.flag for o in NEGATIVES} == {"--trt-cuda-graph", "--trt-remeasure", "--trt-watch-host-load"}


@pytest.mark.parametrize("opt", NEGATIVES, ids=lambda o: o.flag)
def test_positive_and_negative_spellings_say_the_same(tmp_path: Path, opt: Any) -> None:
    default = _field(settings_from_config(_config(tmp_path, {})), opt)
    assert default is True and opt.default == "on"
    assert _field(settings_from_config(_config(tmp_path, {opt.dest: "off"})), opt) is False
    assert _field(settings_from_config(_config(tmp_path, {opt.dest: "on"})), opt) is True
    assert _field(settings_from_config(_config(tmp_path, {}, {opt.dest: "off"})), opt) is False
    # the old ini key, and the new one winning over it
    assert _field(settings_from_config(_config(tmp_path, {}, {opt.negative_dest: "true"})), opt) is False
    assert _field(settings_from_config(_config(tmp_path, {}, {opt.negative_dest: "false"})), opt) is True
    assert _field(settings_from_config(_config(tmp_path, {}, {opt.negative_dest: "true", opt.dest: "on"})),
                  opt) is True
    with pytest.raises(UsageError, match=rf"^{opt.negative_dest} \(ini\): 'maybe' is not a boolean"):
        settings_from_config(_config(tmp_path, {}, {opt.negative_dest: "maybe"}))
    if opt.knob is not None:  # the marker says it with the same word
        assert getattr(MeasureOptions().with_overrides({opt.knob: False}, where="t"), opt.knob) is False


def test_old_and_new_flags_give_the_same_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    plain = _settings_line(pytester.runpytest("-s", "-p", "no:cacheprovider"))
    old = _settings_line(pytester.runpytest("-s", "-p", "no:cacheprovider", *(o.negative or "" for o in NEGATIVES)))
    new = _settings_line(pytester.runpytest("-s", "-p", "no:cacheprovider", *(f"{o.flag}=off" for o in NEGATIVES)))
    assert old == new != plain
    bad = pytester.runpytest("-p", "no:cacheprovider", "--trt-cuda-graph=sometimes")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--trt-cuda-graph: 'sometimes' is not a boolean; use true or false" in bad.stderr.str()


def test_a_reference_process_gets_the_old_spelling(tmp_path: Path) -> None:
    """``--trt-ab`` forwards how workloads are made; a reference of an older
    revision knows ``--trt-no-cuda-graph`` only."""
    s = settings_from_config(_config(tmp_path, {"trt_ab": "main", "trt_cuda_graph": "off", "trt_mode": "throughput"}))
    assert "--trt-no-cuda-graph" in s.ab.forwarded and "--trt-mode=throughput" in s.ab.forwarded
    assert not any(a.startswith("--trt-cuda-graph") for a in s.ab.forwarded)
    on = settings_from_config(_config(tmp_path, {"trt_ab": "main", "trt_cuda_graph": "on"}))
    assert not any("cuda-graph" in a for a in on.ab.forwarded)


# -- one option for strict CI ------------------------------------------------------------------
OLD_STRICT = {"trt_missing_baseline": "fail", "trt_incomparable": "fail", "trt_unreliable": "fail",
              "trt_lock_clocks_strict": True}


def _strictness(s: Any) -> tuple[str, str, str, bool]:
    return s.measure.missing_baseline, s.measure.incomparable, s.measure.unreliable, s.gpu.strict


def test_strict_says_what_the_four_old_options_say(tmp_path: Path) -> None:
    assert _strictness(settings_from_config(_config(tmp_path, {}))) == ("pass", "pass", "pass", False)
    old = settings_from_config(_config(tmp_path, OLD_STRICT))
    assert _strictness(old) == ("fail", "fail", "fail", True)
    assert settings_from_config(_config(tmp_path, {"trt_strict": "all"})) == old
    assert settings_from_config(_config(tmp_path, {"trt_strict": "clocks,unreliable,missing,incomparable"})) == old
    assert _strictness(settings_from_config(_config(tmp_path, {"trt_strict": "unreliable"}))) == \
        ("pass", "pass", "fail", False)
    assert _strictness(settings_from_config(_config(tmp_path, {}, {"trt_strict": "missing, clocks"}))) == \
        ("fail", "pass", "pass", True)
    # said twice alike is fine
    assert settings_from_config(_config(tmp_path, {"trt_strict": "all", **OLD_STRICT})) == old


@pytest.mark.parametrize("cli, ini, message", [
    ({"trt_strict": "all", "trt_unreliable": "pass"}, {},
     "--trt-strict makes unreliable fail, and --trt-unreliable says pass; keep one"),
    ({"trt_strict": "missing"}, {"trt_missing_baseline": "pass"},
     "--trt-strict makes missing fail, and trt_missing_baseline (ini) says pass; keep one"),
    ({"trt_strict": "unreliabel"}, {},
     "--trt-strict: 'unreliabel' is not one of missing, incomparable, unreliable, clocks, all or none"),
])
def test_strict_refuses_contradictions_and_typos_in_one_line(tmp_path: Path, cli: dict, ini: dict,
                                                            message: str) -> None:
    with pytest.raises(UsageError) as e:
        settings_from_config(_config(tmp_path, cli, ini))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_strict_on_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    old = _settings_line(pytester.runpytest("-s", "-p", "no:cacheprovider", "--trt-missing-baseline=fail",
                                            "--trt-incomparable=fail", "--trt-unreliable=fail",
                                            "--trt-lock-clocks-strict"))
    new = _settings_line(pytester.runpytest("-s", "-p", "no:cacheprovider", "--trt-strict=all"))
    assert old == new
    r = pytester.runpytest("-p", "no:cacheprovider", "--trt-strict=all", "--trt-incomparable=pass")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "--trt-strict makes incomparable fail, and --trt-incomparable says pass; keep one" in r.stderr.str()


# -- one option for the stop rule ----------------------------------------------------------------
@pytest.mark.parametrize("stop, old", [("500", {"trt_iterations": "500"}), ("2s", {"trt_duration": "2"}),
                                       ("0.5s", {"trt_duration": "0.5"}), ("auto", {})])
def test_stop_says_what_iterations_and_duration_say(tmp_path: Path, stop: str, old: dict) -> None:
    new = settings_from_config(_config(tmp_path, {"trt_stop": stop}))
    assert new == settings_from_config(_config(tmp_path, old))
    assert new.measure.stop == stop
    marker = {"500": {"iterations": 500}, "2s": {"duration": 2}, "0.5s": {"duration": 0.5}, "auto": {}}[stop]
    assert MeasureOptions().with_overrides({"stop": stop}, where="t") == \
        (MeasureOptions().with_overrides(marker, where="t") if marker else MeasureOptions())


def test_a_marker_stop_replaces_the_command_lines_fixed_stop() -> None:
    assert MeasureOptions(duration_s=2.0).with_overrides({"stop": "auto"}, where="t").stop == "auto"
    assert MeasureOptions(duration_s=2.0).with_overrides({"stop": 50}, where="t").stop == "50"
    assert MeasureOptions(iterations=5).with_overrides({"stop": "1s"}, where="t").stop == "1s"


def test_the_command_line_stop_beats_the_ini_files(tmp_path: Path) -> None:
    s = settings_from_config(_config(tmp_path, {"trt_stop": "2s"}, {"trt_iterations": "10"}))
    assert (s.measure.iterations, s.measure.duration_s) == (None, 2.0)
    s = settings_from_config(_config(tmp_path, {"trt_iterations": "10"}, {"trt_stop": "2s"}))
    assert (s.measure.iterations, s.measure.duration_s) == (10, None)


@pytest.mark.parametrize("cli, ini, message", [
    ({"trt_stop": "2s", "trt_iterations": "5"}, {},
     "--trt-iterations and --trt-stop both given; a measurement stops on one of them: keep one"),
    ({}, {"trt_stop": "auto", "trt_duration": "1"},
     "--trt-duration and --trt-stop both given; a measurement stops on one of them: keep one"),
    ({"trt_stop": "2 minutes"}, {}, "--trt-stop: '2 minutes' is not a stop rule; write auto, a number of "
                                    "iterations such as 500, or seconds such as 2s"),
    ({"trt_stop": "0"}, {}, "--trt-stop: '0' must be >= 1"),
    ({"trt_stop": "99999s"}, {}, "--trt-stop: '99999' must be > 0 and <= 3600"),
])
def test_stop_refuses_two_rules_and_typos_in_one_line(tmp_path: Path, cli: dict, ini: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        settings_from_config(_config(tmp_path, cli, ini))
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"stop": "2s", "iterations": 5}, "t: iterations= and stop= both given"),
    ({"stop": True}, "t: stop: True is not a stop rule"),
    ({"stop": 2.5}, "t: stop: 2.5 is not a stop rule"),
])
def test_the_marker_stop_refuses_the_same(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as e:
        MeasureOptions().with_overrides(kwargs, where="t")
    assert message in str(e.value)
