"""The verdict for one result against its baseline.

Fails only when the chosen metric is slower than the baseline by more than the
tolerance AND the slowdown is significant given both samples' noise
(``stats.compare``). Faster is reported, never failed. A baseline from another
device class, clock state, workload kind, mode or configuration is never
compared: it is ``incomparable``.
"""

from __future__ import annotations

from typing import Iterable

from .attribution import attribution_text
from .baseline import BaselineEntry
from .fingerprint import Fingerprint, incomparable_reason, info_changes
from .report.format import fmt_change, fmt_value
from .results import DeviceState, Result, Verdict
from .stats import compare, decide

#: The SM clock must differ from the baseline's by more than this to be shown
#: (flag and verdict message). Fresh processes of an unchanged GEMM on an H100
#: at its power cap read 1395-1425 MHz (+-1.1%); after 30 s of load the card
#: held 1350-1410 MHz and the GEMM ran 4% slower (bench/RESULTS.md, "Gate quality").
CLOCK_FLAG_THRESHOLD = 0.03
#: Shown whenever present: the window (or the baseline's) shared the GPU.
ALWAYS_SHOWN = ("busy",)
#: Verdicts that compared numbers with a baseline.
_COMPARED = ("pass", "regression", "improved")

_METRIC_WORDS = {
    "median": "median latency",
    "mean": "mean latency",
    "p90": "p90 latency",
    "p95": "p95 latency",
    "p99": "p99 latency",
    "throughput": "throughput",
}


def clock_change(baseline_mhz: float | None, current_mhz: float | None,
                 threshold: float = CLOCK_FLAG_THRESHOLD) -> str:
    """'SM clock 1245 MHz vs 1545 MHz in the baseline (-19.4%)' when the median
    SM clock moved by more than ``threshold``: a slowdown that comes with a
    clock drop is the card (power cap, heat), not the code."""
    if not baseline_mhz or not current_mhz:
        return ""
    change = current_mhz / baseline_mhz - 1.0
    if abs(change) <= threshold:
        return ""
    return f"SM clock {current_mhz:.0f} MHz vs {baseline_mhz:.0f} MHz in the baseline ({change * 100:+.1f}%)"


def verdict_flags(state: DeviceState, baseline_flags: Iterable[str] | None = None,
                  baseline_sm_mhz: float | None = None, *, compared: bool = True,
                  threshold: float = CLOCK_FLAG_THRESHOLD) -> tuple[str, ...]:
    """The GPU-state flags that bear on a verdict, for the reports' flag
    column: the SM clock when it moved by more than ``threshold`` from the
    baseline's, a throttle flag present in only one of the two windows
    (``"power_throttle (new)"`` / ``"... (baseline only)"``), and ``busy``
    whenever either window shared the GPU. A flag both windows carry (a
    compute-bound kernel at its power cap, run after run) is not shown: it
    does not explain a difference. ``compared=False`` (no baseline numbers
    behind the verdict): only ``busy``. Raw flags stay in ``device_state``."""
    now = set(state.flags)
    if not compared:
        return tuple(f for f in ALWAYS_SHOWN if f in now)
    before = set(baseline_flags or ())
    out = []
    if baseline_sm_mhz and state.sm_clock_mhz_median:
        change = state.sm_clock_mhz_median / baseline_sm_mhz - 1.0
        if abs(change) > threshold:
            out.append(f"SM clock {change * 100:+.1f}%")
    for flag in sorted(now | before):
        if flag in now and (flag not in before or flag in ALWAYS_SHOWN):
            out.append(flag if flag in ALWAYS_SHOWN else f"{flag} (new)")
        elif flag in before and flag not in now:
            out.append(f"{flag} (baseline only)")
    return tuple(out)


def judge(result: Result, entry: BaselineEntry | None, *, baseline_mode: str, metric: str, tolerance: float,
          confidence: float, baseline_path: str) -> Verdict:
    """Decide one result. Never raises for data reasons: everything becomes a
    status with a message."""
    base = dict(metric=metric, tolerance=tolerance, confidence=confidence,
                flags=verdict_flags(result.device_state, compared=False))
    current_value = result.metric_value(metric)
    if baseline_mode == "off":
        return Verdict(status="off", current_value=current_value, **base)
    if baseline_mode == "update":
        return Verdict(status="updated", current_value=current_value,
                       message=f"{result.id}: baseline will be written to {baseline_path}", **base)
    if entry is None:
        fix = "run pytest --trt-baseline=update to record one"
        return Verdict(status="missing", current_value=current_value,
                       message=f"{result.id}: no baseline in {baseline_path}; {fix}", **base)
    reason = incomparable_reason(entry.fingerprint, Fingerprint.from_dict(result.fingerprint))
    if reason is None and entry.kind != result.kind:
        reason = f"workload kind {entry.kind!r} != {result.kind!r}"
    if reason is None and entry.mode != result.mode:
        reason = f"mode {entry.mode!r} != {result.mode!r}"
    now_timed = result.identity.get("timed_as")
    if reason is None and entry.timed_as and now_timed and now_timed != entry.timed_as:
        reason = (f"timed as {entry.timed_as!r} in the baseline, {now_timed!r} now (the CUDA graph capture "
                  f"check changed its choice; the result's notes say why)")
    if reason is None and entry.config_hash != result.config_hash:
        reason = f"configuration changed (config hash {entry.config_hash} != {result.config_hash})"
    if reason is not None:
        return Verdict(status="incomparable", current_value=current_value,
                       baseline_value=entry.metric_value(metric),
                       message=f"{result.id}: baseline not comparable: {reason}; refresh it with "
                               f"pytest --trt-baseline=update", **base)

    cmp = compare(entry.distribution, result.distribution, metric=metric, confidence=confidence, seed=result.id)
    status = decide(cmp, tolerance)
    words = _METRIC_WORDS.get(metric, metric)
    baseline_value = entry.metric_value(metric)
    ci_text = f"{confidence:.0%} CI {fmt_change(cmp.ci[0])}..{fmt_change(cmp.ci[1])}"
    values = f"{fmt_value(metric, baseline_value)} -> {fmt_value(metric, current_value)}"
    if status == "regression":
        msg = (f"{result.id}: {words} regressed {fmt_change(cmp.change)} ({values}, {ci_text}, "
               f"tolerance {tolerance:.1%})")
    elif status == "improved":
        msg = f"{result.id}: {words} improved {fmt_change(cmp.change)} ({values}, {ci_text})"
    else:
        msg = f"{result.id}: {words} {fmt_change(cmp.change)} ({values}, {ci_text}) within tolerance {tolerance:.1%}"
    changes = info_changes(entry.fingerprint, Fingerprint.from_dict(result.fingerprint))
    if changes:
        msg += f"; environment changed: {', '.join(changes)}"
    clock = clock_change(entry.sm_clock_mhz, result.device_state.sm_clock_mhz_median)
    if clock:
        msg += f"; {clock}"
    base["flags"] = verdict_flags(result.device_state, entry.flags, entry.sm_clock_mhz)
    state_flags = [f for f in base["flags"] if not f.startswith("SM clock")]
    if state_flags:
        msg += f"; GPU state vs the baseline: {', '.join(state_flags)}"
    if status == "regression":
        msg += attribution_text(entry.layers, result.layers)  # where the time went, when both have profiles
    return Verdict(status=status, baseline_value=baseline_value, current_value=current_value, change=cmp.change,
                   ci=cmp.ci, message=msg, **base)
