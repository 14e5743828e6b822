"""Stable identities: the id a result is stored under, and the hash of how it
was configured (a baseline with another hash is not compared)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

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
    """Hash of what was configured (shapes, precision, mode, graphs, ...).
    The engine's ``build_config`` is left out: its hash, ``build``, is in, so
    hashes stay what they were before the configuration itself was kept."""
    config = config_identity(identity)
    engine = config.get("engine")
    if isinstance(engine, Mapping):
        config["engine"] = {k: v for k, v in engine.items() if k != "build_config"}
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


#: Engine identity fields that say how the plan was BUILT (precision,
#: optimization level, builder flags, memory pools, profile, ...). A change
#: of these is what the gate judges: compared, and named in the verdict.
#: Everything else in the configuration says how it is MEASURED (shapes,
#: mode, streams, CUDA graphs, transfers, sync, inputs and seed): a change
#: there makes the numbers incomparable. The weight-streaming budget is set
#: on the engine at run time (trtexec ``--weightStreamingBudget``) but belongs
#: with ``weight_streaming`` itself, and ``host_code_allowed`` follows from
#: ``version_compatible``: both are compared like the build they go with.
_BUILD = frozenset({"build", "build_config", "host_code_allowed", "weight_streaming_budget"})


#: Identity fields that follow from others and are recorded for people: the
#: timed contexts' NVTX verbosity follows the build's ``profiling_verbosity``,
#: TensorRT-RTX's kernel specialization follows the shapes (set for dynamic
#: ones). Their causes are compared; they are not compared again, so an entry
#: recorded when they were written differently stays comparable.
DERIVED = frozenset({"nvtx_verbosity", "rtx_kernel_specialization"})


def without_derived(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the :data:`DERIVED` fields."""
    return {k: v for k, v in config.items() if k not in DERIVED}


def split_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(measurement method, build configuration) of a configuration identity
    (``config_identity``), each flattened to dotted keys; :data:`DERIVED`
    fields are in neither."""
    method: dict[str, Any] = {}
    build: dict[str, Any] = {}
    for key, value in without_derived(config).items():
        if key == "engine" and isinstance(value, Mapping):
            for k, v in value.items():
                if k == "build_config" and isinstance(v, Mapping):
                    build.update({str(kk): vv for kk, vv in v.items()})
                elif k in _BUILD:
                    build[f"engine.{k}"] = v
                else:
                    method[f"engine.{k}"] = v
        else:
            method[str(key)] = value
    if any(not k.startswith("engine.") for k in build):
        # The hash is redundant when the configuration itself is there.
        build.pop("engine.build", None)
    return method, build


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``["precision [\\"fp16\\"] -> [\\"fp32\\"]", ...]``: what differs between
    two flattened parts of ``split_config``."""
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b != a:
            out.append(f"{key} {_short(b)} -> {_short(a)}")
    return out
