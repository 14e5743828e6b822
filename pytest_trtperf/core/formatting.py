"""How values and changes are written, shared by every report and the verdict
messages; and how user text is made safe to print.

User text (test ids, ``name=``, notes, messages that quote them, file names)
reaches CI logs, where a line starting with ``::`` is a workflow command to
GitHub's runner (``::stop-commands::`` switches every later annotation off)
and raw control characters (NUL, ESC, CR) rewrite or hide what the log shows.
:func:`log_safe` is the one neutraliser every writer applies; the HTML and
Markdown writers apply :func:`no_controls` before their own escaping.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_trtperf.core import metrics
from pytest_trtperf.core.metrics import fmt_bytes

#: Control characters (C0 but tab and newline, DEL, C1), Unicode line and
#: paragraph separators, bidirectional overrides and isolates ("Trojan
#: source"), and the byte-order mark. Tab and newline are handled by callers.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
#: The legacy workflow-command prefix, which GitHub's runner finds anywhere in a line.
_LEGACY_COMMAND = "##["


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def no_controls(text: Any, *, multiline: bool = True) -> str:
    """``text`` with every control character written as a visible escape
    (``\\x1b``, ``\\u202e``); newlines and tabs are kept when ``multiline``,
    else written as ``\\n`` and ``\\t``."""
    s = str(text)
    if not multiline:
        s = s.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROLS.sub(_escaped, s)


def log_safe(text: Any, *, multiline: bool = False) -> str:
    """User text fit for a CI log: no raw control characters, no line that a
    log parser reads as a workflow command (a leading ``::`` after
    whitespace becomes ``\\x3a:``, ``##[`` becomes ``##\\[``). Idempotent, so
    a line built from already safe parts can pass through it again. With
    ``multiline`` the text keeps its newlines and each line is made safe."""
    s = no_controls(text, multiline=multiline).replace(_LEGACY_COMMAND, "##\\[")
    return "\n".join(_no_command(line) for line in s.split("\n")) if multiline else _no_command(s)


def message_safe(message: str, result_id: str) -> str:
    """A verdict message made safe for a CI log, with the result id it quotes
    kept on one line (an id with a newline shows as ``x\\n::y``, not as two
    lines)."""
    return log_safe(message.replace(result_id, log_safe(result_id)) if result_id else message, multiline=True)


def _no_command(line: str) -> str:
    body = line.lstrip()
    if not body.startswith("::"):
        return line
    return line[: len(line) - len(body)] + "\\x3a" + body[1:]


def fmt_value(metric: str, value: float | None, unit: Any = None) -> str:
    """A metric's value as its definition writes it (``metrics.Metric.fmt``):
    throughput as ``/s``; a time (ms) in ``unit`` (a table's
    ``units.TimeUnit``), else in the unit a table of this one value would
    choose (``units.choose``), so a message says ``90.00 ns`` where the table
    says ``90.00 ns``, not ``0.09 us``."""
    return metrics.fmt_value(metric, value, unit)


def fmt_change(change: float | None, ci: tuple[float, float] | None = None) -> str:
    if change is None or not isinstance(change, (int, float)):
        return "-"
    text = _signed_pct(change)
    if ci is not None and all(isinstance(x, (int, float)) for x in ci):
        text += f" [{_signed_pct(ci[0])}, {_signed_pct(ci[1])}]"
    return text


def _signed_pct(fraction: float) -> str:
    """``+1.2%``; a change that rounds to zero reads ``+0.0%`` whatever its
    sign (adding 0.0 turns the -0.0 of a tiny negative change into 0.0), so a
    run compared with itself never reads ``-0.0%``."""
    return f"{round(fraction * 100, 1) + 0.0:+.1f}%"


def metric_of(result: Any, metric: str) -> float | None:
    """``result.metric_value(metric)``, or None when the result (read from a
    file) has no usable value for it: reports show ``-`` instead of failing."""
    try:
        value = result.metric_value(metric)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if isinstance(value, (int, float)) else None


__all__ = ["fmt_bytes", "fmt_change", "fmt_value", "log_safe", "message_safe", "metric_of", "no_controls"]
