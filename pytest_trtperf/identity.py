"""Stable identities: the id a result is stored under, and the hash of how it
was configured (a baseline with another hash is not compared)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

_XDIST_SUFFIX = re.compile(r"@[^\]:]*$")


def plain_nodeid(nodeid: str) -> str:
    """The node id without the ``@group`` suffix --dist loadgroup adds: what
    selects the test on a pytest command line."""
    return _XDIST_SUFFIX.sub("", nodeid)


def result_id(nodeid: str, name: str | None) -> str:
    """Stable id: the test's node id (relative to the rootdir, identical under
    xdist, with any ``@group`` suffix of --dist loadgroup removed), plus the
    measurement's name."""
    nodeid = plain_nodeid(nodeid)
    return f"{nodeid}::{name}" if name else nodeid


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Readable part of a file stem; the hash keeps stems unique and names short.
STEM_CHARS = 100


def file_stem(result_id: str) -> str:
    """A file-name stem for ``result_id``: letters, digits, ``._-`` only (no
    path separator, no leading dot, so never ``..`` or a hidden file), the
    id's readable part cut to :data:`STEM_CHARS`, and a hash of the whole id,
    so ``test[a/b]`` and ``test[a_b]`` never share a file."""
    readable = _UNSAFE.sub("_", result_id).strip("._-")[:STEM_CHARS].rstrip("._-") or "result"
    digest = hashlib.sha256(result_id.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


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
