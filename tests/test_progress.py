"""Progress output: a rewritten status line on a TTY, one line per phase in
logs, nothing under -q; and the adapter for TensorRT build events."""

from __future__ import annotations

import io
import threading

import pytest

from pytest_trtperf.report.progress import NullSink, Progress, StreamSink


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_log_output_is_one_line_per_phase() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(StreamSink(out, interactive=False), "vit.onnx", clock=clock)
    p.phase("parsing")
    for i in range(100):
        p.update(i / 100)
    p.phase("tactic selection")
    p.update(0.5)
    clock.t += 12.34
    p.done()
    p.done()  # idempotent
    p.phase("late")  # ignored after done
    assert out.getvalue().splitlines() == ["[trtperf] vit.onnx: parsing", "[trtperf] vit.onnx: tactic selection",
                                           "[trtperf] vit.onnx: done in 12.3s"]
    assert "\r" not in out.getvalue()


def test_tty_rewrites_one_line_throttled() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(StreamSink(out, interactive=True, width=60), "build", clock=clock, min_interval_s=0.2)
    p.phase("tactics")
    p.update(0.1)  # too soon after the phase line: dropped
    clock.t += 0.25
    p.update(0.5)
    p.update(0.6)  # throttled
    clock.t += 0.25
    p.update(1.5)  # clamped
    p.done()
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert len(frames) == 4 and text.count("\n") == 1 and text.endswith("\n")
    assert frames[0].startswith("[trtperf] build: tactics")
    assert frames[1].startswith("[trtperf] build: tactics [##########          ]  50%")
    assert "100%" in frames[2] and frames[3].startswith("[trtperf] build: done in 0.5s")
    assert all(len(f.rstrip("\n")) == 59 for f in frames)


def test_null_sink_and_context_manager() -> None:
    with Progress(NullSink(), "x") as p:
        p.phase("a")
        p.update(0.5)
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(StreamSink(out, interactive=False), "x", clock=Clock()) as p:
            p.phase("a")
            raise RuntimeError
    assert out.getvalue().splitlines()[-1] == "[trtperf] x: stopped in 0.0s"


def test_threads_do_not_interleave_lines() -> None:
    out = io.StringIO()
    p = Progress(StreamSink(out, interactive=False), "t")
    threads = [threading.Thread(target=lambda i=i: [p.phase(f"phase {i}-{k}") for k in range(200)])
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800 and all(line.startswith("[trtperf] t: phase ") for line in lines)


PROGRESS_TEST = """
from pytest_trtperf.report.progress import for_config

def test_long(request):
    with for_config(request.config, "big.onnx") as p:
        p.phase("building")
        p.update(0.5)
        p.phase("measuring")
"""


def test_under_pytest_ci_log_and_quiet(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p=PROGRESS_TEST)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # stdout is a pipe: log mode
    r.assert_outcomes(passed=1)
    lines = [line for line in r.stdout.lines if "[trtperf]" in line]
    assert lines == ["[trtperf] big.onnx: building", "[trtperf] big.onnx: measuring",
                     lines[2]] and lines[2].startswith("[trtperf] big.onnx: done in ")
    q = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    q.assert_outcomes(passed=1)
    assert "[trtperf]" not in q.stdout.str()
