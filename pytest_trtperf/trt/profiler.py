"""Per-layer times: TensorRT's ``IProfiler`` plus the engine inspector's layer info.

Profiling perturbs timing (TensorRT synchronises per layer), so it runs in a
separate pass after the measurement, never inside it (trtexec does the same
with ``--dumpProfile --separateProfileRun``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np


def make_profiler(trt: Any) -> Any:
    """An ``IProfiler`` for module ``trt`` that collects every report."""

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self._lock = threading.Lock()
            self.times: dict[str, list[float]] = defaultdict(list)
            self.order: list[str] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            with self._lock:
                if layer_name not in self.times:
                    self.order.append(layer_name)
                self.times[layer_name].append(float(ms))

    return LayerTimes()


def summarize(
    order: list[str], times: Mapping[str, list[float]], inspector: Any = None
) -> tuple[dict[str, Any], ...]:
    """One row per layer in execution order: median ms, calls, share of total,
    and, when the inspector knows the layer, its type and tactic."""
    info = layer_details(inspector)
    medians = {name: float(np.median(times[name])) for name in order if times.get(name)}
    total = sum(medians.values()) or 1.0
    rows = []
    for name in order:
        if name not in medians:
            continue
        row: dict[str, Any] = {
            "name": name,
            "ms": medians[name],
            "calls": len(times[name]),
            "share": medians[name] / total,
        }
        row.update(info.get(name, {}))
        rows.append(row)
    return tuple(rows)


def layer_details(inspector: Any) -> dict[str, dict[str, Any]]:
    """``{layer name: {"type", "tactic"}}`` from the inspector's JSON.

    With ``profiling_verbosity="layer_names_only"`` the JSON is a list of names
    and there is nothing to add; both layouts are accepted.
    """
    if not isinstance(inspector, Mapping):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for layer in inspector.get("Layers", ()):
        if not isinstance(layer, Mapping) or "Name" not in layer:
            continue
        extra = {}
        if "LayerType" in layer:
            extra["type"] = layer["LayerType"]
        for key in ("TacticName", "TacticValue"):
            if key in layer:
                extra["tactic"] = layer[key]
                break
        out[str(layer["Name"])] = extra
    return out


def trtexec_profile(order: list[str], times: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    """The per-layer profile in ``trtexec --exportProfile``'s layout:
    ``[{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...]``
    in execution order; ``timeMs`` is the layer's total over the N profiled
    iterations, ``percentage`` its share of the total."""
    rows = [(name, times[name]) for name in order if times.get(name)]
    count = max((len(t) for _, t in rows), default=0)
    total = sum(sum(t) for _, t in rows) or 1.0
    out: list[dict[str, Any]] = [{"count": count}]
    for name, t in rows:
        out.append({
            "name": name,
            "timeMs": float(sum(t)),
            "averageMs": float(sum(t)) / len(t),
            "medianMs": float(np.median(t)),
            "percentage": float(sum(t)) / total * 100.0,
        })
    return out
