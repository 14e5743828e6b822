"""A measurement's trip is a straight line (issue 24, point 3): the fixture
hands a target to the pipeline once and gets a finished result back once.
Disabled runs, a reference process's served runs, labels, exports and the
profile command are decided in ``pipeline/`` (and ``relative/`` for relative
gates), never in ``plugin/fixture.py``."""

from __future__ import annotations

import ast

import pytest

from helpers import REPO

FIXTURE = REPO / "pytest_trtperf" / "plugin" / "fixture.py"
#: Names whose use in the fixture would mean a trip returned to it: the
#: disabled and served runs, the exports and the profile command, the runner's
#: raw measurement.
PIPELINE_ONLY = {"run_once", "run_pair_once", "serve_once", "served_result", "SideBySide", "run_relative",
                 "serve_pair", "export", "export_sides", "export_serve", "with_profile_command", "last_measurement",
                 "last_interleaved"}


def test_the_fixture_hands_each_measurement_over_once() -> None:
    tree = ast.parse(FIXTURE.read_text(encoding="utf-8"))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert used & PIPELINE_ONLY == set()
    # --trt-disable is read once, to pick the session's stand-in (side by side only when not disabled).
    disabled = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "disabled"]
    stand_in = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_stand_in")
    assert len(disabled) == 1 and stand_in.lineno <= disabled[0] <= (stand_in.end_lineno or 0)


def test_a_disabled_served_relative_gate_runs_each_slot_once_and_is_not_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_off='''
calls = []
def test_off(trt_bench):
    r = trt_bench.compare(lambda: calls.append("a"), lambda: calls.append("b"), max_slowdown="3%",
                          serve={"rate": 1000, "concurrency": 2, "duration": 30}, group="g")
    assert calls == ["a", "a", "b", "b"], calls
    assert r.verdict.status == "disabled" and r.group is None and r.stop_reason == "disabled"
''')
    r = pytester.runpytest("--trt-disable", "--trt-json=out.json", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=1)
    assert "test_off" not in (pytester.path / "out.json").read_text(encoding="utf-8")
