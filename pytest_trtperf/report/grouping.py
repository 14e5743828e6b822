"""``--trt-group-by``: which results share a block of a report table.

The keys follow pytest-benchmark's ``--benchmark-group-by``: ``group`` (the
``group=`` of the ``trt_perf`` marker or ``measure()``; the default), ``file``
(the test file), ``func`` (the test without its parameters), ``test`` (the
test with its parameters: all measurements of one test), ``name`` (the
measurement's ``name=``), ``param`` (the parameter id, ``[...]`` of the node
id) and ``param:NAME`` (one ``parametrize`` argument). Several keys, joined
by commas, make one label of their parts.
"""

from __future__ import annotations

from typing import TypeVar
from collections.abc import Sequence

from pytest_trtperf.core.identity import plain_nodeid

T = TypeVar("T")


def _split(nodeid: str) -> tuple[str, str]:
    """(node id without the parameter id, parameter id)."""
    plain = plain_nodeid(nodeid)
    start = plain.find("[", plain.rfind("::") + 2 if "::" in plain else 0)
    if plain.endswith("]") and start > 0:
        return plain[:start], plain[start + 1:-1]
    return plain, ""


def label(result: object, group_by: Sequence[str]) -> str:
    """The group label of ``result`` (empty: no group)."""
    nodeid = str(getattr(result, "nodeid", ""))
    func, param = _split(nodeid)
    parts = []
    for key in group_by:
        if key == "group":
            parts.append(getattr(result, "group", None) or "")
        elif key == "file":
            parts.append(plain_nodeid(nodeid).split("::", 1)[0])
        elif key == "func":
            parts.append(func)
        elif key == "test":
            parts.append(plain_nodeid(nodeid))
        elif key == "name":
            parts.append(getattr(result, "name", None) or "")
        elif key == "param":
            parts.append(param)
        elif key.startswith("param:"):
            name = key[len("param:"):]
            params = getattr(result, "params", None) or {}
            parts.append(f"{name}={params[name]}" if name in params else "")
    return " ".join(p for p in parts if p)


def grouped(results: Sequence[T], group_by: Sequence[str]) -> list[tuple[str, list[T]]]:
    """Results in blocks by label, keeping their order inside a block; blocks
    in the order of their first result, so with results sorted regressions
    first (``terminal.sort_results``) the block with a regression leads."""
    blocks: dict[str, list[T]] = {}
    for r in results:
        blocks.setdefault(label(r, group_by), []).append(r)
    return list(blocks.items())


def show_labels(blocks: Sequence[tuple[str, Sequence[object]]]) -> bool:
    """Whether a table prints its group labels: only when some result has one
    (an ungrouped session's table looks as it always did)."""
    return any(lbl for lbl, _ in blocks)


NO_GROUP = "no group"
