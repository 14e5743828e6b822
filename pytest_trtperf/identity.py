"""Stable identities: the id a result is stored under, and the hash of how it
was configured (a baseline with another hash is not compared)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

_XDIST_SUFFIX = re.compile(r"@[^\]:]*$")


def result_id(nodeid: str, name: str | None) -> str:
    """Stable id: the test's node id (relative to the rootdir, identical under
    xdist, with any ``@group`` suffix of --dist loadgroup removed), plus the
    measurement's name."""
    nodeid = _XDIST_SUFFIX.sub("", nodeid)
    return f"{nodeid}::{name}" if name else nodeid


#: Engine identity fields that are not configuration: the model under test
#: (a new model version is what the gate must judge, not refuse to compare),
#: the library's patch version and the GPU (both in the fingerprint), the file name.
_NOT_CONFIG = frozenset({"onnx_sha256", "plan_sha256", "version", "gpu", "source"})
#: Identity fields that are measurements, not configuration: the capture
#: check's timings (its choice, ``timed_as``, is configuration).
_MEASURED = frozenset({"capture_check"})


def config_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in identity.items() if k not in _MEASURED}
    engine = out.get("engine")
    if isinstance(engine, Mapping):
        out["engine"] = {k: v for k, v in engine.items() if k not in _NOT_CONFIG}
    return out


def config_hash(identity: Mapping[str, Any]) -> str:
    """Hash of what was configured (shapes, precision, mode, graphs, ...); a
    baseline with another hash is incomparable."""
    blob = json.dumps(config_identity(identity), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
