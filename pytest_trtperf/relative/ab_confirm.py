"""``--trt-ab-confirm``: a suspected regression of a TensorRT engine, measured
again interleaved with the engine of the baseline's own model.

A baseline-file verdict compares numbers from two processes, times and maybe
machines; an offset that belongs to the run looks exactly like a regression.
When the test's engine is built from an ONNX file under git and the committed
baseline names the commit it was measured at, this step takes the model as it
was at that commit (``git show``, no checkout), builds it with the same
configuration through the engine cache, and measures the old and the current
engine in alternating blocks in this process. The verdict then rests on the
paired ratio (``relative.py``) against the same tolerance, and says so. When
the old model cannot be had, the baseline-file verdict stands and its message
says why in one line.

Called by ``runner.Runner.run`` through its ``regression_check`` hook, only
for a verdict that is still a regression after the runner's own re-measure.
Free of pytest; TensorRT is imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from pytest_trtperf.baselines.store import BaselineEntry
from pytest_trtperf.core.config import MeasureOptions, TrtOptions
from pytest_trtperf.core.errors import BackendUnavailable, UsageError
from pytest_trtperf.relative.gitfiles import Unavailable, file_at_commit
from pytest_trtperf.relative.policy import describe, judge_pair, measure_pair, metric_words, numbers, relative_verdict
from pytest_trtperf.core.formatting import fmt_change
from pytest_trtperf.core.results import DeviceState, Result, Verdict
from pytest_trtperf.pipeline.runner import Runner, Target
from pytest_trtperf.core.workload import Workload

__all__ = ["AbConfirm", "Unavailable", "baseline_model", "confirm_against"]


def _library(info: Any) -> str | None:
    """``tensorrt_rtx 1.7.1.116`` from a fingerprint's ``info``."""
    if not isinstance(info, dict) or not info.get("trt"):
        return None
    return f"{info.get('trt_backend', 'tensorrt')} {info['trt']}"


def baseline_model(onnx: Path | None, entry: BaselineEntry | None, current_fingerprint: Any,
                   baseline_path: str = "the baseline file") -> tuple[bytes, str]:
    """The model's bytes at the baseline's commit, and the commit; raises
    :class:`Unavailable` with the reason."""
    if onnx is None:
        raise Unavailable("this test loads a plan file (engine=); A/B confirm needs the ONNX model under git")
    if entry is None:
        raise Unavailable(f"no baseline entry in {baseline_path}")
    if not entry.git_commit:
        raise Unavailable(f"the baseline in {baseline_path} names no commit (it was written outside a git checkout)")
    then = _library(entry.fingerprint.info)
    now = _library(current_fingerprint.get("info", {}) if isinstance(current_fingerprint, dict) else {})
    if then != now:
        raise Unavailable(f"the baseline was measured with {then or 'an unknown TensorRT'} and this run uses "
                          f"{now or 'an unknown TensorRT'}: its engine cannot be rebuilt as it was")
    return file_at_commit(onnx, entry.git_commit), entry.git_commit


def confirm_against(runner: Runner, old: Workload, current: Workload, result: Result, verdict: Verdict,
                    opts: MeasureOptions, *, commit: str, unchanged: bool, label: str) -> tuple[Result, Verdict]:
    """Measure the old (set up here) and the current (already set up)
    workload interleaved; the paired ratio against ``opts.tolerance``
    becomes the verdict."""
    target = Target(id=result.id, nodeid=result.nodeid, name=result.name, location=result.location)
    old.setup()
    try:
        il = measure_pair(runner, old, current, target, opts)
    finally:
        old.teardown()
    short = commit[:12]
    rel, status = judge_pair(il, old, current, labels=(f"{label} at {short}", label), opts=opts,
                             bound=1.0 + opts.tolerance, seed=result.id, origin="ab_confirm", commit=commit,
                             expectation=f"at most {opts.tolerance:.1%} slower than the model at {short}")
    change = rel.ratio - 1.0
    same = " (the model file is unchanged since then)" if unchanged else ""
    earlier = f"the baseline file said {fmt_change(verdict.change)}"
    # The cause first, as every verdict message (pytest's short summary shows the start).
    against = f"in A/B against the model at commit {short}{same}, measured interleaved"
    if status == "regression":
        message = (f"{metric_words(rel.metric)} regressed {fmt_change(change)} {against} "
                   f"({numbers(rel, opts.confidence)}), tolerance {opts.tolerance:.1%}; {earlier}")
    else:
        message = (f"not a regression beyond {opts.tolerance:.1%} {against}: {describe(rel.ratio)} "
                   f"({numbers(rel, opts.confidence)}); {earlier}, which the paired measurement does not confirm")
    state = il.device_state if isinstance(il.device_state, DeviceState) else result.device_state
    new = relative_verdict(rel, status, opts=opts, state=state, message=message)
    return dataclasses.replace(result, relative=rel), new


@dataclass
class AbConfirm:
    """The ``regression_check`` hook for one TensorRT measurement.

    ``spec`` is the current engine's :class:`~pytest_trtperf.trt.spec.EngineSpec`;
    ``make_workload`` turns an engine into a workload exactly as the current
    one was made (shapes, inputs, options); ``get_engine`` builds through the
    engine cache (``trt.api.get_engine``).
    """

    runner: Runner
    spec: Any
    trt_options: TrtOptions
    make_workload: Callable[[Any], Workload]
    get_engine: Callable[..., Any] | None = None
    progress: Callable[[str], None] | None = None

    def __call__(self, workload: Workload, result: Result, verdict: Verdict,
                 opts: MeasureOptions) -> tuple[Result, Verdict] | None:
        if not opts.ab_confirm or verdict.status != "regression":
            return None
        store = self.runner.store
        entry = store.lookup(result.device_class, result.id)
        try:
            data, commit = baseline_model(self.spec.onnx, entry, dict(result.fingerprint),
                                          str(store.path_for(result.device_class)))
            handle = self._build(data, commit)
        except Unavailable as e:
            return result, dataclasses.replace(verdict, message=f"{verdict.message}; A/B confirm not possible: {e}")
        current = Path(self.spec.onnx).read_bytes()
        unchanged = hashlib.sha256(current).digest() == hashlib.sha256(data).digest()
        return confirm_against(self.runner, self.make_workload(handle), workload, result, verdict, opts,
                               commit=commit, unchanged=unchanged, label=Path(self.spec.onnx).name)

    def _build(self, data: bytes, commit: str) -> Any:
        """The old model, written under its own name in a scratch directory
        and built with the current configuration (through the engine cache,
        which keys on the ONNX bytes)."""
        get_engine = self.get_engine
        if get_engine is None:
            from pytest_trtperf.trt.api import get_engine
        scratch = Path(tempfile.mkdtemp(prefix="trtperf-ab-"))
        try:
            path = scratch / Path(self.spec.onnx).name
            path.write_bytes(data)
            spec = dataclasses.replace(self.spec, onnx=path, where=f"{self.spec.where} (model at {commit[:12]})")
            if self.progress is not None:
                self.progress(f"{path.name}: building the model of commit {commit[:12]} for A/B confirm")
            try:
                return get_engine(spec, self.trt_options, None)
            except (UsageError, BackendUnavailable) as e:
                raise Unavailable(f"the model at commit {commit[:12]} does not build here: {e}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
