"""The JSON baseline store.

One file per device class under the baseline directory, keyed by stable
result ids. Reading validates the whole file and refuses anything it does not
fully understand (corrupt, truncated, newer schema) with a one-line error; such
a file is never written to. Writing merges with what is on disk under a file
lock and replaces the file atomically (temporary file + fsync + ``os.replace``),
so a killed run leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import __version__
from .errors import BaselineFileError
from .files import atomic_write
from .fingerprint import Fingerprint, slug
from .memory import figures_from_json
from .results import Distribution, Result, SeriesStats

SCHEMA_VERSION = 1
_FIX = "restore it from version control (git checkout -- FILE) or delete it and run pytest --trt-baseline=update"


@dataclass(frozen=True)
class BaselineEntry:
    """What a baseline keeps of one result: enough to compare and to explain."""

    result_id: str
    kind: str
    mode: str
    config_hash: str
    fingerprint: Fingerprint
    latency: SeriesStats
    throughput: float
    distribution: Distribution
    timestamp: str
    git_commit: str | None
    flags: tuple[str, ...] = ()
    layers: tuple[Mapping[str, Any], ...] = ()
    #: Median SM clock during the baseline's measured window (GPU workloads):
    #: lets a verdict say when a change came with a clock change.
    sm_clock_mhz: float | None = None
    #: How a workload that chooses at setup was timed (``identity["timed_as"]``:
    #: "graph" or "eager" for torch callables); handed back to it next run.
    timed_as: str | None = None
    #: Memory figures in bytes (``memory.FIGURES``); empty in files written before
    #: memory was recorded, which still load (memory is then "missing", never failed).
    memory: Mapping[str, int] = field(default_factory=dict)

    def metric_value(self, metric: str) -> float:
        return self.throughput if metric == "throughput" else float(getattr(self.latency, metric))

    @classmethod
    def from_result(cls, r: Result, *, timestamp: str, git_commit: str | None) -> "BaselineEntry":
        return cls(
            result_id=r.id,
            kind=r.kind,
            mode=r.mode,
            config_hash=r.config_hash,
            fingerprint=Fingerprint.from_dict(r.fingerprint),
            latency=r.latency,
            throughput=r.throughput,
            distribution=r.distribution,
            timestamp=timestamp,
            git_commit=git_commit,
            flags=tuple(r.device_state.flags),
            layers=tuple(r.layers),
            sm_clock_mhz=r.device_state.sm_clock_mhz_median,
            timed_as=_timed_as(r.identity),
            memory=dict(r.memory),
        )

    def to_dict(self) -> dict[str, Any]:
        d = {
            "kind": self.kind,
            "mode": self.mode,
            "config_hash": self.config_hash,
            "fingerprint": self.fingerprint.to_dict(),
            "latency_ms": self.latency.to_dict(),
            "throughput": self.throughput,
            "distribution": self.distribution.to_dict(),
            "timestamp": self.timestamp,
            "git_commit": self.git_commit,
            "flags": list(self.flags),
            "layers": [dict(x) for x in self.layers],
            "sm_clock_mhz": self.sm_clock_mhz,
        }
        if self.timed_as is not None:  # only workloads that choose write it
            d["timed_as"] = self.timed_as
        if self.memory:  # only entries with memory figures write them
            d["memory"] = dict(self.memory)
        return d

    @classmethod
    def from_dict(cls, result_id: str, d: Mapping[str, Any]) -> "BaselineEntry":
        dist = Distribution.from_dict(d["distribution"])
        if dist.n < 1 or len(dist.quantiles_ms) < 2:
            raise ValueError("distribution is empty")
        return cls(
            result_id=result_id,
            kind=str(d["kind"]),
            mode=str(d["mode"]),
            config_hash=str(d["config_hash"]),
            fingerprint=Fingerprint.from_dict(d["fingerprint"]),
            latency=SeriesStats.from_dict(d["latency_ms"]),
            throughput=float(d["throughput"]),
            distribution=dist,
            timestamp=str(d["timestamp"]),
            git_commit=d.get("git_commit"),
            flags=tuple(d.get("flags", ())),
            layers=tuple(d.get("layers", ())),
            sm_clock_mhz=d.get("sm_clock_mhz"),
            timed_as=_timed_as(d),
            memory=figures_from_json(d.get("memory")),
        )


def _timed_as(d: Mapping[str, Any]) -> str | None:
    value = d.get("timed_as")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BaselineFile:
    path: Path
    device_class: str
    entries: Mapping[str, BaselineEntry]


def read_file(path: Path) -> BaselineFile:
    """Parse and validate one baseline file; any problem is a one-line error."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BaselineFileError(f"baseline file {path}: cannot read it ({e.strerror}); check permissions") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BaselineFileError(f"baseline file {path} is not UTF-8 text (corrupt); {_FIX.replace('FILE', str(path))}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if e.pos >= len(raw.rstrip()) else "corrupt"
        raise BaselineFileError(
            f"baseline file {path} is {what} (invalid JSON at line {e.lineno} column {e.colno}); "
            f"{_FIX.replace('FILE', str(path))}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BaselineFileError(f"baseline file {path} is not a pytest-trtperf baseline (no schema_version); "
                                f"{_FIX.replace('FILE', str(path))}")
    version = data["schema_version"]
    if not isinstance(version, int):
        raise BaselineFileError(f"baseline file {path} has a malformed schema_version {version!r}; "
                                f"{_FIX.replace('FILE', str(path))}")
    if version > SCHEMA_VERSION:
        tool = data.get("tool", {}).get("version", "a newer version") if isinstance(data.get("tool"), dict) else "a newer version"
        raise BaselineFileError(
            f"baseline file {path} has schema {version}, written by pytest-trtperf {tool}; this is "
            f"{__version__} (schema {SCHEMA_VERSION}): upgrade with pip install -U pytest-trtperf")
    try:
        results = data["results"]
        if not isinstance(results, dict):
            raise TypeError("results is not an object")
        entries = {rid: BaselineEntry.from_dict(rid, e) for rid, e in results.items()}
        device_class = str(data["device_class"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BaselineFileError(f"baseline file {path} is malformed ({type(e).__name__}: {e}); "
                                f"{_FIX.replace('FILE', str(path))}") from None
    return BaselineFile(path=path, device_class=device_class, entries=entries)


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Infinity: store them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _dump(obj: Any, pad: str) -> str:
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        inner = pad + "  "
        items = (f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_dump(obj[k], inner)}" for k in sorted(obj))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(x, (dict, list)) for x in obj):
            # Lists of numbers stay on one line: short, reviewable diffs.
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False, allow_nan=False) for x in obj) + "]"
        inner = pad + "  "
        return "[\n" + ",\n".join(inner + _dump(x, inner) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def dumps(data: Mapping[str, Any]) -> str:
    """Stable, diff-friendly JSON: sorted keys, two-space indent, number
    lists on one line, no NaN/Infinity."""
    return _dump(_finite(data), "") + "\n"


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Exclusive advisory lock on a directory. Locking the directory itself
    (POSIX flock on its descriptor) leaves no lock file behind to commit."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: a lock file inside the directory
        import msvcrt

        with open(directory / ".trtperf.lock", "a+b") as f:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class BaselineStore:
    """All baseline files under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, BaselineFile | None] = {}

    def path_for(self, device_class: str) -> Path:
        return self.directory / f"{slug(device_class)}.json"

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.json") if not p.name.startswith("."))

    def validate_all(self) -> None:
        """Read every baseline file now, so a bad one stops the session before
        anything is measured (and before anything could be written)."""
        for p in self.files():
            self._cache[p.name] = read_file(p)

    def load(self, device_class: str) -> BaselineFile | None:
        p = self.path_for(device_class)
        if p.name not in self._cache:
            self._cache[p.name] = read_file(p) if p.exists() else None
        return self._cache[p.name]

    def lookup(self, device_class: str, result_id: str) -> BaselineEntry | None:
        f = self.load(device_class)
        return f.entries.get(result_id) if f else None

    def write(self, results: list[Result], *, timestamp: str, git_commit: str | None) -> list[Path]:
        """Merge ``results`` into their files (other entries are kept)."""
        by_class: dict[str, list[Result]] = {}
        for r in results:
            by_class.setdefault(r.device_class, []).append(r)
        written = []
        for device_class, rs in sorted(by_class.items()):
            path = self.path_for(device_class)
            with directory_lock(self.directory):
                existing = read_file(path) if path.exists() else None
                entries: dict[str, Any] = {}
                if existing is not None:
                    entries = {rid: e.to_dict() for rid, e in existing.entries.items()}
                for r in rs:
                    entries[r.id] = BaselineEntry.from_result(r, timestamp=timestamp, git_commit=git_commit).to_dict()
                doc = {
                    "schema_version": SCHEMA_VERSION,
                    "tool": {"name": "pytest-trtperf", "version": __version__},
                    "device_class": device_class,
                    "results": entries,
                }
                atomic_write(path, dumps(doc))
            self._cache.pop(path.name, None)
            written.append(path)
        return written
