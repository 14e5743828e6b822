"""Errors the plugin reports to users as one line, never as a traceback."""

from __future__ import annotations


class TrtPerfError(Exception):
    """Base class: the message is complete and fit for a user."""


class UsageError(TrtPerfError):
    """Bad input from the user (marker, option, file). Aborts the session with
    exit code 4 when raised at configure time; fails only the test when raised
    inside a test."""


class BaselineFileError(UsageError):
    """A baseline file that cannot be read safely (corrupt, truncated, newer
    schema). The file is never touched after this is raised."""


class BackendUnavailable(TrtPerfError):
    """An optional dependency (TensorRT, cuda-python, NVML, a GPU) is missing;
    tests that need it are skipped with this message."""


def cause_first(message: str, nodeid: str) -> str:
    """A test's failure text with the cause first. Messages name where they
    come from (``test_a.py::test_a: trt_bench.measure(): kwargs=list must
    be ...``), which suits a log line or a session error; a failed test's
    line already names the test, and an 80-column short summary
    (``FAILED test_a.py::test_a - Failed: ...``) shows only the start. So
    each line that starts with ``nodeid`` loses it, and the call (or the
    parenthesised context) that followed it moves to the end:
    ``kwargs=list must be ... (in trt_bench.measure())``."""
    if not nodeid:
        return message
    import re

    lead = re.compile(rf"{re.escape(nodeid)}(?: \((?P<context>[^()]*)\))?: "
                      rf"(?:(?P<call>trt_bench(?:\.\w+)?\(\)): )?(?P<cause>.+)")
    out = []
    for line in message.split("\n"):
        m = lead.fullmatch(line)
        if m is not None:
            line = m.group("cause")
            if m.group("call"):
                line += f" (in {m.group('call')})"
            if m.group("context"):
                line += f" ({m.group('context')})"
        out.append(line)
    return "\n".join(out)
