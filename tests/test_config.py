"""Settings from real pytest option parsing."""

from __future__ import annotations

import pytest

from pytest_trtperf.config import MeasureOptions, parse_fraction
from pytest_trtperf.errors import UsageError


def test_command_line_defaults_match_the_measurement_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_defaults='''
        from pytest_trtperf.config import MeasureOptions
        from pytest_trtperf.plugin import STATE_KEY

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
    r.stdout.fnmatch_lines(["*test_bad_value: tolerance: 'lots' is not a fraction; write it as 5% or 0.05*"])
    assert "the test body must not run" not in r.stdout.str()
