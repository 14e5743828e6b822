"""How values and changes are written, shared by every report and the verdict messages."""

from __future__ import annotations


def fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "throughput":
        return f"{value:,.1f}/s"
    if value >= 100:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.3f} ms"
    return f"{value * 1000:.2f} us"


def fmt_change(change: float | None, ci: tuple[float, float] | None = None) -> str:
    if change is None:
        return "-"
    text = f"{change * 100:+.1f}%"
    if ci is not None:
        text += f" [{ci[0] * 100:+.1f}%, {ci[1] * 100:+.1f}%]"
    return text


def fmt_bytes(n: int | float | None) -> str:
    """``512 B``, ``64.0 KiB``, ``12.3 MiB``, ``1.25 GiB`` (binary units, as
    CUDA and TensorRT report memory)."""
    if n is None:
        return "-"
    n = float(n)
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.2f} {unit}" if unit == "GiB" else f"{n:.1f} {unit}"
    return f"{n:.2f} GiB"  # pragma: no cover - loop always returns
