"""User text never becomes a workflow command or a raw control character in
a CI log, the HTML report or the job summary (issue 16 item 5). A real
session under GITHUB_ACTIONS=true with a hostile ``name=``, and the
neutraliser itself."""

from __future__ import annotations

import re

import pytest

from helpers import QUICK, spin_test
from pytest_trtperf.core.formatting import log_safe, message_safe, no_controls

#: Everything a log must never show raw: C0 but tab/newline, DEL, C1, line
#: separators, bidi overrides and isolates, BOM.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
HOSTILE = ["x\n::stop-commands::tok", "::error::forged", "  ::warning file=a::b", "\t::debug::x",
           "a\r::set-output name=x::y", "nul\x00byte", "esc\x1b[2J\x1b]0;title\x07", "del\x7f c1\x85 nel",
           "ls\u2028::add-mask::x", "bidi\u202eevil\u2066", "bom\ufeff", "##[error]legacy", "a ##[set-env]b",
           "\u3000::error::ideographic space", "%0A::error::", "plain text: ok"]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("multiline", [False, True])
def test_log_safe_neutralises(text: str, multiline: bool) -> None:
    out = log_safe(text, multiline=multiline)
    assert not RAW.search(out)
    assert all(not line.lstrip().startswith("::") for line in out.split("\n"))
    assert "##[" not in out
    assert log_safe(out, multiline=multiline) == out  # idempotent: safe parts can pass again
    if not multiline:
        assert "\n" not in out and "\t" not in out


def test_log_safe_keeps_ordinary_text_and_shows_what_it_changed() -> None:
    for text in ("test_perf.py::test_spin::bs16", "median latency regressed +35.4% (1 ms -> 2 ms)", "名前-🚀"):
        assert log_safe(text) == text
    assert log_safe("a\nb") == "a\\nb" and log_safe("a\nb", multiline=True) == "a\nb"
    assert log_safe("x\x1by") == "x\\x1by" and log_safe("::x") == "\\x3a:x" and log_safe("  ::x") == "  \\x3a:x"
    assert no_controls("a\u202eb\x00") == "a\\u202eb\\x00"
    assert message_safe("t.py::x\n::y: slower\n  detail", "t.py::x\n::y") == "t.py::x\\n::y: slower\n  detail"


NAME = "x\\n::stop-commands::tok\\x00\\x1b[2J\\r::error::forged\\u2028::warning::ls"
TEST = spin_test() + f'''

def test_named(trt_bench):
    trt_bench.measure(spin, name="{NAME}")
'''


def test_hostile_name_under_github_actions(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adversarial run of issue 16: a name with newlines printed 8 lines
    starting with ``::``, ``::stop-commands::`` among them, and NUL bytes."""
    pytester.makepyfile(test_perf=TEST)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "1")
    # QUICK windows: a 4x slowdown is found in the shortest window (the test is about the outputs)
    assert pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update").ret == 0
    monkeypatch.setenv("TRTPERF_TEST_SCALE", "4")  # both results regress: every output path carries the name
    r = pytester.runpytest_subprocess(*QUICK, "--trt-report=r.html", "--color=no", "-rA")
    assert r.ret == 1
    raw_out = r.stdout.str() + "\n" + r.stderr.str()
    assert "stop-commands" in raw_out and "REGRESSION" in raw_out  # the name did reach the log, neutralised
    ours = re.compile(r"^::(error|warning) file=test_perf\.py,line=\d+,title=trtperf regression%3A [^\n]*$")
    command_lines = [line for line in raw_out.splitlines() if line.lstrip().startswith("::")]
    assert len(command_lines) == 2 and all(ours.match(line) for line in command_lines), command_lines
    assert "##[" not in raw_out
    assert not RAW.search(raw_out.replace("\r\n", "\n")), RAW.findall(raw_out)
    # What is in the files: nothing raw, nothing a log parser could run.
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    md = summary.read_text(encoding="utf-8")
    for text in (html, md):
        assert not RAW.search(text), RAW.findall(text)
        assert "stop-commands" in text
    assert all(not line.lstrip().startswith("::") for line in md.splitlines())


def test_nothing_is_printed_raw_without_github(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makepyfile(test_perf=TEST)
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=off", "--color=no")
    assert r.ret == 0
    out = r.stdout.str()
    # the table shortens a long id in the middle (issue 26): its ends show, escaped
    assert "test_named::x\\n::st" in out and not RAW.search(out)
    assert all(not line.lstrip().startswith("::") for line in out.splitlines())
