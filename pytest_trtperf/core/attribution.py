"""Which layers a regression came from.

A failing gate says "median +12%"; the first thing an engineer then asks is
where the time went. When both the baseline and the current run carry a
TensorRT per-layer profile (lists of ``{"name": str, "ms": float, ...}``),
the layers that added the most time answer that without re-running anything.
Pure functions, no I/O: the gate, the terminal and the HTML report share them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: How many layers a failure message lists.
TOP_N = 5


@dataclass(frozen=True)
class LayerDelta:
    """One layer's time in both runs. ``None`` means the layer is absent on
    that side (fused differently, renamed, new)."""

    name: str
    baseline_ms: float | None
    current_ms: float | None

    @property
    def delta_ms(self) -> float:
        return (self.current_ms or 0.0) - (self.baseline_ms or 0.0)

    @property
    def change(self) -> float | None:
        """Relative change, or None when the layer is new or gone."""
        if not self.baseline_ms or self.current_ms is None:
            return None
        return self.current_ms / self.baseline_ms - 1.0


def layer_times(layers: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``name -> ms``; repeated names are summed (a layer can appear once per
    stream or shape), malformed or non-finite entries are skipped rather than
    breaking a failure message."""
    out: dict[str, float] = {}
    for layer in layers:
        try:
            name = str(layer["name"])
            ms = float(layer["ms"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(ms):
            out[name] = out.get(name, 0.0) + ms
    return out


def compare_layers(baseline: Iterable[Mapping[str, Any]],
                   current: Iterable[Mapping[str, Any]]) -> list[LayerDelta]:
    """Every layer of either run, most added time first (ties by name, so the
    order is stable)."""
    base, cur = layer_times(baseline), layer_times(current)
    deltas = [LayerDelta(n, base.get(n), cur.get(n)) for n in set(base) | set(cur)]
    return sorted(deltas, key=lambda d: (-d.delta_ms, d.name))


def top_added(baseline: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]],
              n: int = TOP_N) -> list[LayerDelta]:
    """The ``n`` layers that added the most time (only those that got slower).
    Empty when either side has no profile: nothing can be said then."""
    if not baseline or not current:
        return []
    return [d for d in compare_layers(baseline, current) if d.delta_ms > 0][:n]


def most_changed(baseline: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]],
                 n: int = 10) -> list[LayerDelta]:
    """The ``n`` layers whose time changed most either way (for reports)."""
    if not baseline or not current:
        return []
    return sorted(compare_layers(baseline, current), key=lambda d: (-abs(d.delta_ms), d.name))[:n]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} ms"


def describe(d: LayerDelta, *, max_name: int = 80) -> str:
    """``name: 1.200 ms -> 1.800 ms (+0.600 ms, +50.0%)``."""
    name = d.name if len(d.name) <= max_name else d.name[: max_name - 3] + "..."
    name = name.replace("\n", " ").replace("\r", " ")
    rel = "new" if d.baseline_ms is None else ("gone" if d.current_ms is None else
                                                 (f"{d.change * 100:+.1f}%" if d.change is not None else "-"))
    return f"{name}: {_ms(d.baseline_ms)} -> {_ms(d.current_ms)} ({d.delta_ms:+.3f} ms, {rel})"


def attribution_text(baseline: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]],
                     n: int = TOP_N) -> str:
    """Lines appended to a regression message, or ``""`` when there is nothing
    to attribute."""
    top = top_added(baseline, current, n)
    if not top:
        return ""
    return "\n  layers that added the most time:" + "".join(f"\n    {describe(d)}" for d in top)
