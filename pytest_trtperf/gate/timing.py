"""The verdict for one result against its baseline.

Fails only when the chosen metric is slower than the baseline by more than the
tolerance AND the slowdown is significant given all the noise between the two
runs: the noise inside each window (``stats.compare``) and the offset between
processes and times (``noise``). Faster is reported, never failed. A baseline
from another device class, clock state, workload kind, mode or measurement
method is never compared: it is ``incomparable``. A change of the build
configuration (precision, flags, ...) is compared and named. Data the gate
cannot compute with (non-finite, zero) is ``unreliable`` and fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping

from pytest_trtperf.core import metrics
from pytest_trtperf.core.attribution import attribution_text
from pytest_trtperf.core.catch import projection
from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.baselines.checks import identity_disagreement
from pytest_trtperf.core.fingerprint import Fingerprint, incomparable_reason, info_changes
from pytest_trtperf.load.metrics import serve_words
from pytest_trtperf.core.identity import config_changes, config_hash, config_identity, split_config, without_derived
from pytest_trtperf.core.noise import Judged, RunNoise, centre, estimate, too_wide, widen
from pytest_trtperf.core.noise import status as noise_status
from pytest_trtperf.core.formatting import fmt_change, fmt_value
from pytest_trtperf.core.results import DeviceState, Distribution, Result, Verdict
from pytest_trtperf.core.stats import compare
from pytest_trtperf.core.workload import clock_of

#: The SM clock must differ from the baseline's by more than this to be shown
#: (flag and verdict message). Fresh processes of an unchanged GEMM on an H100
#: at its power cap read 1395-1425 MHz (+-1.1%); after 30 s of load the card
#: held 1350-1410 MHz and the GEMM ran 4% slower (bench/RESULTS.md, "Gate quality").
CLOCK_FLAG_THRESHOLD = 0.03
#: Shown whenever present: the window (or the baseline's) shared the GPU or
#: ran on a loaded host.
ALWAYS_SHOWN = ("busy", "host_busy")
#: Largest factor between the baseline entry's latest run and the centre of
#: its runs that the gate accepts (or ``1 + tolerance`` when that is larger).
#: An update keeps the old runs only when the new one is within the tolerance
#: and the between-run noise of their centre (``noise.moved``), so with the
#: default 5% tolerance a real history stays within a few percent; a factor
#: beyond 2 comes from an edited file (older runs inflated to hide a slowdown),
#: and the verdict is then ``unreliable``, never a pass.
MAX_SHIFT = 2.0
#: A fresh run faster than its baseline by more than this factor (change below
#: ``1 / IMPROVED_SUSPECT - 1``, -33%) is ``improved`` with ``decided_by=
#: "suspect_baseline"``: a loud warning (annotation, summary line), a failure
#: under ``--trt-incomparable=fail``. Real improvements that large are rare
#: and should be recorded with ``update``; an entry edited to be uniformly 2x
#: slower read "improved -50%" silently and would hide a 2x slowdown.
IMPROVED_SUSPECT = 1.5
#: Verdicts that compared numbers with a baseline.
_COMPARED = ("pass", "regression", "improved")

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


def _positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _bad_distribution(d: Distribution) -> bool:
    q = d.quantiles_ms
    return (d.n < 1 or len(q) < 2 or not all(math.isfinite(x) and x >= 0 for x in q)
            or q[len(q) // 2] <= 0)


def _invalid(words: str, why: str, base: dict[str, Any], current_value: float | None,
             baseline_value: float | None = None) -> Verdict:
    """Data the gate cannot compute with: never a pass (``Verdict.failed``)."""
    return Verdict(status="unreliable", decided_by="invalid_data", current_value=current_value,
                   baseline_value=baseline_value,
                   message=f"{words}: cannot be judged: {why}; refresh the baseline with pytest --trt-baseline=update",
                   **base)


def _graph_before_the_check(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """A stream-callable (``cuda``) baseline recorded before stream callables
    got the capture check has no ``timed_as``; with CUDA graphs on, the
    harness then always timed the graph replay. A result timed as the graph
    now measures the same thing: compare it. A result now timed eagerly does
    not (the check found the capture changed the program): incomparable."""
    return (current.get("kind") == "cuda" and current.get("timed_as") == "graph" and "timed_as" not in baseline
            and baseline.get("cuda_graph") is True and current.get("cuda_graph") is True)


def _hashes_differ_by_derived_fields(entry: BaselineEntry, result: Result, current: Mapping[str, Any]) -> bool:
    """A hash mismatch is forgiven only where both stored hashes are those of
    their configurations and the configurations agree but for derived fields
    (``identity.DERIVED``) or the graph-before-the-check allowance
    (``current`` is the result's configuration after it)."""
    assert entry.config is not None
    return (entry.config_hash == config_hash(entry.config)
            and result.config_hash == config_hash(result.identity)
            and config_hash(without_derived(entry.config)) == config_hash(without_derived(current)))


def _update_verdict(result: Result, entry: BaselineEntry | None, metric: str, current_value: float,
                    baseline_path: str, base: dict[str, Any]) -> Verdict:
    """An update, shown against the entry it replaces: the previous value
    (the centre of its runs, what the gate compared with), the new one and
    the change, so the diff is seen before it is committed. An entry that
    measured something else, or holds no usable number, shows no change."""
    message = f"baseline will be written to {baseline_path}"
    if entry is None:
        return Verdict(status="updated", current_value=current_value, message=message + " (new entry)", **base)
    values = entry.run_values(metric)
    same = (entry.kind == result.kind and entry.mode == result.mode and entry.config_hash == result.config_hash
            and incomparable_reason(entry.fingerprint, Fingerprint.from_dict(result.fingerprint)) is None)
    if not same or not values or not all(_positive(v) for v in (*values, current_value)):
        return Verdict(status="updated", current_value=current_value,
                       message=message + " (replaces an entry measured another way)", **base)
    previous = centre(values)
    change = metrics.timing(metric).change(current_value, previous)
    runs = f"{len(values)} run{'s' if len(values) != 1 else ''}"
    return Verdict(status="updated", baseline_value=previous, current_value=current_value, change=change,
                   message=f"{message}: {fmt_value(metric, previous)} ({runs}) -> {fmt_value(metric, current_value)} "
                           f"({fmt_change(change)})", **base)


def suspect_improvement(change: float) -> bool:
    """Faster than the baseline by more than :data:`IMPROVED_SUSPECT`."""
    return change < 1.0 / IMPROVED_SUSPECT - 1.0


def judge(result: Result, entry: BaselineEntry | None, *, baseline_mode: str, metric: str, tolerance: float,
          confidence: float, baseline_path: str, run_noise: float | None = None) -> Verdict:
    """Decide one result. Never raises for data reasons: everything becomes a
    status with a message, and the message starts with the verdict (pytest's
    short summary shows the first 80 columns).

    Three named steps: is the baseline comparable (:func:`comparable`), the
    noise band of the change (:func:`_noise_band`), the decision
    (:func:`_decide`). The change is measured from the centre of the
    baseline's runs (its history) and must exceed both the tolerance and what
    the noise explains: the within-run interval of ``stats.compare`` widened
    by the between-run term of ``noise.estimate`` (``run_noise`` overrides
    its sd). A serve result's figures have their own words
    (``load.metrics.serve_words``: "p99 latency at 200/s", "sustainable rate
    (p99<20ms)")."""
    base: dict[str, Any] = dict(metric=metric, tolerance=tolerance, confidence=confidence,
                                flags=verdict_flags(result.device_state, compared=False))
    current_value = result.metric_value(metric)
    if baseline_mode == "off":
        return Verdict(status="off", current_value=current_value, **base)
    if baseline_mode == "update":
        return _update_verdict(result, entry, metric, current_value, baseline_path, base)
    if entry is None:
        return Verdict(status="missing", current_value=current_value,
                       message=f"no baseline in {baseline_path}; run pytest --trt-baseline=update to record one",
                       **base)
    reason, build_changes = comparable(result, entry)
    if reason is not None:
        return _incomparable(entry, reason, metric, current_value, base)
    words = serve_words(result.serve, metric) or metrics.words(metric)
    band = _noise_band(result, entry, metric=metric, tolerance=tolerance, confidence=confidence,
                       run_noise=run_noise)
    if isinstance(band, _Unusable):
        return _invalid(words, band.why, base, current_value, band.centre_value)
    return _decide(result, entry, band, words=words, build_changes=build_changes, base=base, run_noise=run_noise)


def comparable(result: Result, entry: BaselineEntry) -> tuple[str | None, list[str]]:
    """Step 1: why ``entry`` is not comparable with ``result`` (None when it
    is), and the build configuration changes to name when it is: another
    device class, clock state, kind, mode, timing choice or measurement
    method is not comparable; a changed build configuration is."""
    reason = incomparable_reason(entry.fingerprint, Fingerprint.from_dict(result.fingerprint))
    if reason is None and entry.kind != result.kind:
        reason = f"workload kind {entry.kind!r} != {result.kind!r}"
    if reason is None and entry.mode != result.mode:
        reason = f"mode {entry.mode!r} != {result.mode!r}"
    now_timed = result.identity.get("timed_as")
    if reason is None and entry.timed_as and now_timed and now_timed != entry.timed_as:
        reason = (f"timed as {entry.timed_as!r} in the baseline, {now_timed!r} now (the CUDA graph capture "
                  f"check changed its choice; the result's notes say why)")
    if reason is not None:
        return reason, []
    if entry.config is None:
        if entry.config_hash != result.config_hash:
            return (f"configuration changed (config hash {entry.config_hash} != {result.config_hash}; the baseline "
                    f"predates recorded configurations)"), []
        return None, []
    return _config_comparable(result, entry)


def _config_comparable(result: Result, entry: BaselineEntry) -> tuple[str | None, list[str]]:
    """Step 1 for an entry with a recorded configuration: a changed
    measurement method is not comparable, a changed build configuration is
    (and is named), a hash that differs for no recorded reason is not."""
    assert entry.config is not None
    current = config_identity(result.identity)
    if _graph_before_the_check(entry.config, current):
        current = {k: v for k, v in current.items() if k != "timed_as"}
    old_method, old_build = split_config(entry.config)
    new_method, new_build = split_config(current)
    method_changes = config_changes(old_method, new_method)
    build_changes = config_changes(old_build, new_build)
    if method_changes:
        return f"measurement method changed: {'; '.join(method_changes)}", build_changes
    if (not build_changes and entry.config_hash != result.config_hash
            and not _hashes_differ_by_derived_fields(entry, result, current)):
        return f"configuration changed (config hash {entry.config_hash} != {result.config_hash})", build_changes
    return None, build_changes


def _incomparable(entry: BaselineEntry, reason: str, metric: str, current_value: float,
                  base: dict[str, Any]) -> Verdict:
    """An entry that measured something else: never compared, and named as
    edited when its identity fields disagree with each other."""
    edited = identity_disagreement(entry.kind, entry.mode, entry.config_hash, entry.fingerprint.critical,
                                   entry.config)
    why = (f"; the entry disagrees with itself ({edited}): it was edited, not written by --trt-baseline=update; "
           f"check it with pytest-trtperf verify and restore it from git" if edited else "")
    return Verdict(status="incomparable", current_value=current_value,
                   baseline_value=entry.metric_value(metric), decided_by="suspect_baseline" if edited else None,
                   message=f"baseline not comparable: {reason}{why}; refresh it with pytest --trt-baseline=update",
                   **base)


@dataclass(frozen=True)
class _Unusable:
    """Step 2 could not compute: why, and the centre of the baseline's runs
    when it got that far."""

    why: str
    centre_value: float | None = None


@dataclass(frozen=True)
class _Band:
    """Step 2's answer: the change from the centre of the baseline's runs
    with its interval widened by the between-run noise, and its status."""

    #: The metric of each baseline run the centre averages (``run_values``).
    values: list[float]
    centre_value: float
    current_value: float
    #: The change and interval before widening (``noise.too_wide`` reads them).
    change: float
    ci: tuple[float, float]
    judged: Judged
    noise: RunNoise
    status: str


def _noise_band(result: Result, entry: BaselineEntry, *, metric: str, tolerance: float, confidence: float,
                run_noise: float | None) -> _Band | _Unusable:
    """Step 2: the noise band of the change, or why the data cannot give one
    (the verdict is then ``unreliable``, never a pass)."""
    values = entry.run_values(metric)
    latest = entry.metric_value(metric)
    current_value = result.metric_value(metric)
    if not all(_positive(v) for v in (*values, latest)) or _bad_distribution(entry.distribution):
        return _Unusable("the baseline entry holds a value that is not a finite number > 0")
    if not _positive(current_value) or _bad_distribution(result.distribution):
        return _Unusable("this run's timings are not finite numbers > 0")
    centre_value = centre(values)
    cmp = compare(entry.distribution, result.distribution, metric=metric, confidence=confidence, seed=result.id)
    if not all(math.isfinite(x) for x in (cmp.change, *cmp.ci)):
        return _Unusable(f"the comparison gave a non-finite change ({cmp.change}, CI {cmp.ci})", centre_value)
    # From the latest run to the centre of all runs (positive = the latest was slower).
    shift = metrics.timing(metric).slowdown(latest, centre_value)
    limit = max(MAX_SHIFT, 1.0 + tolerance)
    if not (math.isfinite(shift) and 1.0 / limit <= shift <= limit):
        return _Unusable(f"the baseline entry's latest run ({fmt_value(metric, latest)}) is {shift:.3g}x the "
                         f"centre of its runs ({fmt_value(metric, centre_value)}), more than {limit:g}x apart "
                         f"(an edited history?)", centre_value)
    change = (1.0 + cmp.change) * shift - 1.0
    ci = ((1.0 + cmp.ci[0]) * shift - 1.0, (1.0 + cmp.ci[1]) * shift - 1.0)
    if not all(math.isfinite(x) and x > -1.0 for x in (change, *ci)):
        return _Unusable(f"the change from the baseline is not a finite number above -100% ({change}, CI "
                         f"{ci[0]}..{ci[1]})", centre_value)
    noise = estimate(clock_of(result), values, run_noise)
    j = widen(change, ci, noise.allowance(confidence), tolerance)
    status = noise_status(j, tolerance)
    if status == "unreliable":  # widen could not judge it (an interval that overflows): never a pass
        return _Unusable(f"the interval of the change is not finite ({fmt_change(j.change)}, CI "
                         f"{j.ci[0]}..{j.ci[1]})", centre_value)
    return _Band(values, centre_value, current_value, change, ci, j, noise, status)


def _decide(result: Result, entry: BaselineEntry, band: _Band, *, words: str, build_changes: list[str],
            base: dict[str, Any], run_noise: float | None) -> Verdict:
    """Step 3: the verdict from the noise band, its message (the cause first,
    then what changed around it) and the flags that bear on it."""
    metric, tolerance, confidence = base["metric"], base["tolerance"], base["confidence"]
    j, noise, status = band.judged, band.noise, band.status
    later = projection(clock_of(result), band.values, within=j.within, tolerance=tolerance, confidence=confidence,
                       fails_above=j.fails_above, override=run_noise)
    ci_text = f"{confidence:.0%} CI {fmt_change(j.ci[0])}..{fmt_change(j.ci[1])}"
    vals = f"{fmt_value(metric, band.centre_value)} -> {fmt_value(metric, band.current_value)}"
    wide = too_wide(noise, band.change, band.ci, confidence) if status == "pass" else None
    if wide:
        return Verdict(status="unreliable", decided_by="too_wide", baseline_value=band.centre_value,
                       current_value=band.current_value, change=j.change, ci=j.ci,
                       run_noise=noise.to_dict(confidence),
                       message=f"unreliable: {words} {fmt_change(j.change)} ({vals}, {ci_text}) is too wide to decide: "
                               f"{wide}; refresh the baseline with pytest --trt-baseline=update", **base)
    msg = _decision_text(j, status, words=words, vals=vals, ci_text=ci_text,
                         bars=f"tolerance {tolerance:.1%}, {noise.describe(confidence)}")
    base["flags"] = verdict_flags(result.device_state, entry.flags, entry.sm_clock_mhz)
    msg += _context(result, entry, build_changes, base["flags"])
    if status == "regression":
        msg += attribution_text(entry.layers, result.layers)  # where the time went, when both have profiles
    decided_by = "suspect_baseline" if status == "improved" and suspect_improvement(j.change) else j.decided_by
    return Verdict(status=status, baseline_value=band.centre_value, current_value=band.current_value,
                   change=j.change, ci=j.ci, message=msg, decided_by=decided_by, run_noise=noise.to_dict(confidence),
                   config_changes=tuple(build_changes), fails_above=j.fails_above,
                   fails_above_later=later.to_dict() if later is not None else None, **base)


def _decision_text(j: Judged, status: str, *, words: str, vals: str, ci_text: str, bars: str) -> str:
    """The message's first sentence: the verdict, the change and what decided it."""
    decided = {"tolerance": "the tolerance", "run_noise": "between-run noise",
               "sample_noise": "this run's own noise"}[j.decided_by]
    if status == "regression":
        return f"{words} regressed {fmt_change(j.change)} ({vals}, {ci_text}; {bars}; {decided} decided)"
    if status == "improved":
        msg = f"{words} improved {fmt_change(j.change)} ({vals}, {ci_text}; {bars})"
        if suspect_improvement(j.change):
            msg += (f"; more than {IMPROVED_SUSPECT:g}x faster than its baseline: the entry does not describe this "
                    f"code (edited by hand, or an improvement to record with pytest --trt-baseline=update)")
        return msg
    return (f"{words} {fmt_change(j.change)} ({vals}, {ci_text}): within {decided} ({bars}); fails above "
            f"{fmt_change(j.fails_above)}")


def _context(result: Result, entry: BaselineEntry, build_changes: list[str], flags: tuple[str, ...]) -> str:
    """What changed around a compared verdict: the build configuration, the
    environment, the SM clock and the device (or host) state."""
    msg = ""
    if build_changes:
        msg += f"; build configuration changed: {'; '.join(build_changes)}"
    changes = info_changes(entry.fingerprint, Fingerprint.from_dict(result.fingerprint))
    if changes:
        msg += f"; environment changed: {', '.join(changes)}"
    clock = clock_change(entry.sm_clock_mhz, result.device_state.sm_clock_mhz_median)
    if clock:
        msg += f"; {clock}"
    state_flags = [f for f in flags if not f.startswith("SM clock")]
    if state_flags:
        msg += f"; {'host' if clock_of(result) == 'host' else 'GPU'} state vs the baseline: {', '.join(state_flags)}"
    return msg
