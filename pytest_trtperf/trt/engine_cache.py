"""Built plans on disk, so a suite builds each engine once per machine type.

The key covers everything that changes the plan: the ONNX bytes, the build
configuration, the library and version, and the GPU (name + compute
capability, or ``no-gpu``). Each entry is ``<key>.plan`` plus ``<key>.json``
(checksum, size, I/O tensors); a plan whose checksum does not match (truncated
write, foreign file) is rebuilt with a warning, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_trtperf.core.files import UnreadableFile, atomic_write, make_ignored_dir, read_regular_file

SCHEMA = 1
#: Largest metadata file read (a few hundred bytes are written).
MAX_META_BYTES = 1 << 20
#: Largest plan read: far above any engine (a few GB), far below what a
#: symlink to /dev/zero would reach (the metadata's own size is checked too).
MAX_PLAN_BYTES = 64 << 30


class EngineCacheWarning(UserWarning):
    """A cache entry was unusable and will be rebuilt."""


@dataclass(frozen=True)
class CacheEntry:
    key: str
    plan: bytes
    meta: Mapping[str, Any]
    path: Path


def file_digest(path: Path) -> str:
    """SHA-256 of a file, streamed (ONNX models can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(onnx_digest: str, build_config: Mapping[str, Any], library: Mapping[str, str], gpu: str) -> str:
    blob = json.dumps(
        {"schema": SCHEMA, "onnx": onnx_digest, "build": build_config, "library": dict(library), "gpu": gpu},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class EngineCache:
    """A directory of plans. Safe for concurrent xdist workers: writes are atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def ensure_directory(self) -> None:
        """Create the cache directory, ignored by git: plans are large, binary
        and specific to one machine, so they must never land in a commit even
        when the cache sits inside the committed baseline directory."""
        make_ignored_dir(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.plan", self.directory / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``; None when absent or unusable (with a warning)."""
        plan_path, meta_path = self.paths(key)
        if not plan_path.exists() and not meta_path.exists():
            return None
        try:
            meta = json.loads(read_regular_file(meta_path, limit=MAX_META_BYTES))
            size = meta.get("size") if isinstance(meta, dict) else None
            limit = size if isinstance(size, int) and 0 <= size <= MAX_PLAN_BYTES else MAX_PLAN_BYTES
            plan = read_regular_file(plan_path, limit=limit)
        except UnreadableFile as exc:
            self._discard(key, f"unusable (a file of it {exc})")
            return None
        except (ValueError, RecursionError) as exc:
            self._discard(key, f"unreadable ({type(exc).__name__})")
            return None
        if not isinstance(meta, dict):
            self._discard(key, "unreadable (metadata is not a JSON object)")
            return None
        if meta.get("schema") != SCHEMA:
            self._discard(key, f"written by another cache schema ({meta.get('schema')!r})")
            return None
        if len(plan) != meta.get("size") or hashlib.sha256(plan).hexdigest() != meta.get("sha256"):
            self._discard(key, f"truncated or foreign ({len(plan)} bytes, expected {meta.get('size')})")
            return None
        return CacheEntry(key=key, plan=plan, meta=meta, path=plan_path)

    def put(self, key: str, plan: bytes, meta: Mapping[str, Any]) -> CacheEntry:
        """Store ``plan`` (plan first, metadata last: metadata marks it complete)."""
        plan_path, meta_path = self.paths(key)
        full = dict(meta)
        full.update(schema=SCHEMA, size=len(plan), sha256=hashlib.sha256(plan).hexdigest(), created=time.time())
        self.ensure_directory()
        atomic_write(plan_path, plan)
        atomic_write(meta_path, json.dumps(full, sort_keys=True, indent=1).encode())
        return CacheEntry(key=key, plan=plan, meta=full, path=plan_path)

    def discard(self, key: str, reason: str) -> None:
        """Drop an entry found bad after loading (e.g. the library rejects it)."""
        self._discard(key, reason)

    def _discard(self, key: str, reason: str) -> None:
        plan_path, meta_path = self.paths(key)
        warnings.warn(
            EngineCacheWarning(f"engine cache entry {plan_path} is {reason}; rebuilding it"), stacklevel=3
        )
        for p in (plan_path, meta_path):
            try:
                p.unlink()
            except OSError:
                pass
