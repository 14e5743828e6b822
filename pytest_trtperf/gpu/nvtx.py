"""NVTX ranges in the ``trtperf`` domain, through NVIDIA's ``nvtx`` package.

Why a domain: Nsight Systems shows one row per domain, and Nsight Compute
filters kernels by ``domain@range`` (``ncu --nvtx --nvtx-include
"trtperf@<result id>/"``), so our ranges never mix with TensorRT's per-layer
ranges or the user's own.

The package is optional (extra ``gpu``). Importing this module never needs
it; :func:`push` and :func:`pop` are no-ops without it. With the package
installed but no tool attached, ``nvtx.get_domain`` hands back a dummy domain
whose calls do nothing, so an annotated run costs one Python call per range.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

DOMAIN = "trtperf"
INSTALL_HINT = "pip install 'pytest-trtperf[gpu]' (NVIDIA's nvtx package)"

_state: dict[str, Any] = {}


def _import() -> Any:
    """The ``nvtx`` module, or None; looked up once per process."""
    if "module" not in _state:
        try:
            import nvtx
        except ImportError as exc:
            _state["module"], _state["why"] = None, f"the nvtx package is not installed ({exc}): {INSTALL_HINT}"
        else:
            if not callable(getattr(nvtx, "get_domain", None)):
                _state["module"], _state["why"] = None, (f"the installed 'nvtx' module is not NVIDIA's NVTX "
                                                         f"binding (no get_domain): {INSTALL_HINT}")
            else:
                _state["module"], _state["why"] = nvtx, None
    return _state["module"]


def unavailable_reason() -> str | None:
    """One line saying why no NVTX range can be emitted, or None."""
    _import()
    return _state.get("why")


def version() -> str | None:
    """The nvtx package's version, or None without it."""
    if _import() is None:
        return None
    try:
        from importlib.metadata import version as dist_version

        return dist_version("nvtx")
    except Exception:  # noqa: BLE001 - informative only
        return "unknown"


def domain() -> Any:
    """The ``trtperf`` domain (a dummy one when no tool is attached), or None
    without the package."""
    nvtx = _import()
    return None if nvtx is None else nvtx.get_domain(DOMAIN)


def tool_attached() -> bool:
    """True when a profiler (Nsight Systems, Nsight Compute) receives our
    ranges; False without the package or when nothing listens."""
    d = domain()
    return d is not None and type(d).__name__ != "DummyDomain"


def push(name: str) -> bool:
    """Open range ``name`` on this thread; False when nothing was pushed."""
    d = domain()
    if d is None:
        return False
    # Attributes object first: the form every nvtx release takes (keyword
    # arguments to push_range came later); a dummy domain returns None for it.
    d.push_range(d.get_event_attributes(message=name))
    return True


def pop() -> None:
    """Close the innermost range :func:`push` opened on this thread."""
    d = domain()
    if d is not None:
        d.pop_range()


@contextlib.contextmanager
def nvtx_range(name: str) -> Iterator[bool]:
    """``with nvtx_range(result_id):`` a push/pop range around the block;
    yields whether the range was pushed."""
    pushed = push(name)
    try:
        yield pushed
    finally:
        if pushed:
            pop()
