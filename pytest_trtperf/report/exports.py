"""``--trt-export-dir``: per-result files to attach to a bug report.

For every result, ``<stem>.samples.json``: the raw per-iteration timings of
the deciding measurement (the baselines keep only a compressed quantile
function). For a TensorRT result also ``<stem>.layer_info.json``, the engine
inspector's JSON (what ``trtexec --exportLayerInfo`` writes), and, with
``--trt-profile-layers``, ``<stem>.profile.json`` in ``trtexec
--exportProfile``'s layout. ``<stem>`` is :func:`~pytest_trtperf.core.identity.file_stem`
of the result id: safe characters only, unique per id.

A relative result (``trt_bench.compare``) was measured as an interleaved run
of two sides: ``<stem>.a.samples.json`` and ``<stem>.b.samples.json`` hold
every measured iteration of each side (with the block sizes, so the pairs can
be rebuilt), and a TensorRT side gets ``<stem>.a.layer_info.json`` /
``<stem>.a.profile.json`` (and ``.b.``) as an ordinary result would. The
index lists them as ``a.samples``, ``b.layer_info``, ...

Who writes: the process that measured, right after the measurement (an
xdist worker writes its own results' files into the shared directory).
Sample arrays and inspector JSON can be tens of megabytes; sending them to
the controller inside the test report would bloat every report and keep all
of them in the controller's memory until the session ends. The controller
only writes ``index.json`` at the end (id -> file names), from the results it
collected and the files that exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.files import atomic_write
from pytest_trtperf.core.identity import file_stem
from pytest_trtperf.core.workload import ExportingWorkload

SAMPLES = ".samples.json"
LAYER_INFO = ".layer_info.json"
PROFILE = ".profile.json"
INDEX = "index.json"
#: Version of the samples and index documents.
SCHEMA = 1
_KINDS = {"samples": SAMPLES, "layer_info": LAYER_INFO, "profile": PROFILE}
#: The sides of an interleaved run, as file-name infixes and index-key prefixes.
SIDES = ("a", "b")


class ExportWarning(UserWarning):
    """A result's export files could not be written (the result stands)."""


def file_names(result_id: str) -> dict[str, str]:
    """``{"samples": ..., "layer_info": ..., "profile": ..., "a.samples": ...,
    "b.profile": ...}`` for one id (the ``a.``/``b.`` ones: the sides of an
    interleaved run)."""
    stem = file_stem(result_id)
    out = {kind: stem + suffix for kind, suffix in _KINDS.items()}
    for side in SIDES:
        out.update({f"{side}.{kind}": f"{stem}.{side}{suffix}" for kind, suffix in _KINDS.items()})
    return out


def prepare(directory: Path) -> None:
    """Create the directory at session start, so a bad path fails the
    session once, with one line, instead of every test."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--trt-export-dir={directory}: cannot create the directory ({e.strerror or e}); "
                         f"pass a writable directory") from None
    if not Path(directory).is_dir():
        raise UsageError(f"--trt-export-dir={directory}: not a directory; pass a directory path")


def samples_document(result: Any, measurement: Any) -> dict[str, Any]:
    """The samples file: every series the workload reported, in
    milliseconds, one value per measured iteration, in measuring order."""
    import numpy as np

    series = {"latency": measurement.latency_s, **dict(measurement.extra)}
    return {
        "schema": SCHEMA,
        "result": result.id,
        "nodeid": result.nodeid,
        "kind": result.kind,
        "mode": result.mode,
        "unit": "ms",
        "iterations": int(measurement.iterations),
        "inferences": int(measurement.inferences),
        "wall_s": float(measurement.wall_s),
        "warmup_iterations": int(measurement.warmup_iterations),
        "stop_reason": measurement.stop_reason,
        "series": {k: np.round(np.asarray(v, dtype=np.float64) * 1e3, 6).tolist() for k, v in series.items()},
    }


def serve_samples_document(result: Any, run: Any, warmup_s: float) -> dict[str, Any]:
    """The samples file of a serve result (``trt_bench.serve``): every request
    of the run at the stated rate, in arrival order, in milliseconds from the
    run's start: scheduled arrival, start, completion (null: never started or
    finished) and latency (scheduled to completion; null when unfinished);
    ``measured`` is false for the warm-up's requests."""
    import numpy as np

    def ms(x: Any) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v) * 1e3, 6) for v in np.asarray(x, dtype=np.float64)]

    return {
        "schema": SCHEMA, "result": result.id, "nodeid": result.nodeid, "kind": result.kind, "mode": result.mode,
        "unit": "ms", "requests": int(run.n), "slots": int(run.slots), "warmup_s": float(warmup_s),
        "series": {"scheduled": ms(run.scheduled_s), "start": ms(run.start_s), "done": ms(run.done_s),
                   "latency": ms(run.latency_s)},
        "measured": [bool(x) for x in (np.asarray(run.scheduled_s) >= warmup_s)],
    }


def export_serve(directory: Path, result: Any, run: Any, warmup_s: float) -> list[Path]:
    """Write a serve result's samples file; returns its path."""
    path = Path(directory) / file_names(result.id)["samples"]
    return [_dump(path, serve_samples_document(result, run, warmup_s), compact=True)]


def _dump(path: Path, doc: Any, *, compact: bool = False) -> Path:
    """Compact for sample arrays (size), indented for what people read."""
    text = json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=1, sort_keys=False)
    atomic_write(path, text + "\n")
    return path


def export_result(directory: Path, result: Any, measurement: Any, workload: Any) -> list[Path]:
    """Write the files of one result; returns their paths. A workload that
    knows its engine (:class:`~pytest_trtperf.core.workload.ExportingWorkload`)
    adds its inspector JSON and its trtexec-style layer profile."""
    directory = Path(directory)
    names = file_names(result.id)
    written = []
    if measurement is not None:
        written.append(_dump(directory / names["samples"], samples_document(result, measurement), compact=True))
    if isinstance(workload, ExportingWorkload):
        info = workload.layer_info()
        if info:
            written.append(_dump(directory / names["layer_info"], info))
        profile = workload.layer_profile()
        if profile:
            written.append(_dump(directory / names["profile"], [dict(p) for p in profile]))
    return written


def export_interleaved(directory: Path, result: Any, interleaved: Any, workloads: tuple[Any, Any]) -> list[Path]:
    """Write both sides of the interleaved run (``relative.interleave.Interleaved``)
    of a relative ``result``; a side whose workload is given also gets the
    TensorRT files it offers (as in :func:`export_result`). Returns the paths."""
    directory = Path(directory)
    names = file_names(result.id)
    rel = result.relative
    written = []
    sides = ((interleaved.a, interleaved.a_blocks, workloads[0], getattr(rel, "a", None)),
             (interleaved.b, interleaved.b_blocks, workloads[1], getattr(rel, "b", None)))
    for side, (measurement, blocks, workload, described) in zip(SIDES, sides, strict=False):
        doc = samples_document(result, measurement)
        doc.update({
            "side": side,
            "label": getattr(described, "label", side),
            "kind": getattr(described, "kind", result.kind),
            "origin": getattr(rel, "origin", None),
            # Iterations of each measured block, pair by pair; b_first[i]: B ran first in pair i.
            "blocks": [int(n) for n, _ in blocks],
            "b_first": [bool(x) for x in interleaved.b_first],
        })
        written.append(_dump(directory / names[f"{side}.samples"], doc, compact=True))
        if isinstance(workload, ExportingWorkload):
            info = workload.layer_info()
            if info:
                written.append(_dump(directory / names[f"{side}.layer_info"], info))
            profile = workload.layer_profile()
            if profile:
                written.append(_dump(directory / names[f"{side}.profile"], list(profile)))
    return written


def index(directory: Path, result_ids: Iterable[str]) -> dict[str, Any]:
    """``{"schema", "results": {id: {kind: file name}}}`` for the files that exist."""
    out: dict[str, Mapping[str, str]] = {}
    for rid in sorted(set(result_ids)):
        present = {kind: name for kind, name in file_names(rid).items() if (Path(directory) / name).is_file()}
        if present:
            out[rid] = present
    return {"schema": SCHEMA, "results": out}


def write_index(directory: Path, result_ids: Iterable[str]) -> tuple[Path, int]:
    """Write ``index.json`` (controller, session end); returns its path and
    how many results have files."""
    doc = index(directory, result_ids)
    return _dump(Path(directory) / INDEX, doc), len(doc["results"])
