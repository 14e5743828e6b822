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
