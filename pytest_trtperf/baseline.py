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
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import __version__
from . import baseline_check as check
from .errors import BaselineFileError
from .files import atomic_write
from .fingerprint import Fingerprint, slug
from .identity import config_identity
from .noise import HISTORY_RUNS, centre, moved
from .results import Distribution, Result, SeriesStats

#: 2: entries keep ``history`` (the last runs' summaries, for the between-run
#: noise term) and ``config`` (the configuration itself, so a verdict can name
#: what changed). Files of schema 1 are read (one run of history, no config)
#: and written back as 2.
SCHEMA_VERSION = 2
OLDEST_SCHEMA = 1
_FIX = "restore it from version control (git checkout -- FILE) or delete it and run pytest --trt-baseline=update"
#: Metrics a history row keeps.
_ROW_METRICS = ("median", "mean", "p90", "p95", "p99")


def history_row(r: Result, *, timestamp: str, git_commit: str | None) -> dict[str, Any]:
    """What the history keeps of one ``update`` run: when, where, its metric
    values and the flags of its window."""
    row: dict[str, Any] = {"timestamp": timestamp, "git_commit": git_commit, "machine": platform.node() or None,
                           "n": r.latency.n, "throughput": r.throughput, "flags": list(r.device_state.flags)}
    row.update({k: float(getattr(r.latency, k)) for k in _ROW_METRICS})
    return row


def row_value(row: Mapping[str, Any], metric: str) -> float:
    return float(row[metric])


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
    #: The last ``update`` runs (oldest first, this one last): ``history_row``.
    #: Empty only for entries built in memory; files always have one row.
    history: tuple[Mapping[str, Any], ...] = ()
    #: The configuration identity (``identity.config_identity``); None in
    #: schema-1 entries, which only have its hash.
    config: Mapping[str, Any] | None = None

    def metric_value(self, metric: str) -> float:
        return self.throughput if metric == "throughput" else float(getattr(self.latency, metric))

    def runs(self) -> tuple[Mapping[str, Any], ...]:
        """The history, or this entry as its only run."""
        if self.history:
            return self.history
        row: dict[str, Any] = {"timestamp": self.timestamp, "git_commit": self.git_commit, "machine": None,
                               "n": self.latency.n, "throughput": self.throughput, "flags": list(self.flags)}
        row.update({k: float(getattr(self.latency, k)) for k in _ROW_METRICS})
        return (row,)

    def run_values(self, metric: str) -> list[float]:
        """The metric of each run the gate's centre averages: runs measured on
        a busy device are left out when quiet ones exist."""
        rows = self.runs()
        quiet = [r for r in rows if not _busy(r.get("flags", ()))]
        return [row_value(r, metric) for r in (quiet or rows)]

    @classmethod
    def from_result(cls, r: Result, *, timestamp: str, git_commit: str | None,
                    history: tuple[Mapping[str, Any], ...] = ()) -> "BaselineEntry":
        """``history``: the earlier runs to keep (this run is appended)."""
        rows = (*history, history_row(r, timestamp=timestamp, git_commit=git_commit))[-HISTORY_RUNS:]
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
            history=rows,
            config=config_identity(r.identity),
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
            "history": [dict(x) for x in self.runs()],
        }
        if self.config is not None:
            d["config"] = dict(self.config)
        if self.timed_as is not None:  # only workloads that choose write it
            d["timed_as"] = self.timed_as
        return d

    @classmethod
    def from_dict(cls, result_id: str, d: Any) -> "BaselineEntry":
        """Validate every field (``baseline_check``) and build the entry;
        raises ``check.FieldError`` naming the first bad field."""
        d = check.obj(d, "entry")
        fp = check.obj(check.get(d, "fingerprint", ""), "fingerprint")
        fingerprint = Fingerprint(
            device_class=str(check.text(fp.get("device_class", ""), "fingerprint.device_class")),
            critical=check.json_value(check.obj(fp.get("critical", {}), "fingerprint.critical"), "fingerprint.critical"),
            info=check.json_value(check.obj(fp.get("info", {}), "fingerprint.info"), "fingerprint.info"),
        )
        lat = check.series(check.get(d, "latency_ms", ""), "latency_ms")
        n, quantiles = check.distribution(check.get(d, "distribution", ""))
        config = d.get("config")
        timed_as = d.get("timed_as")
        entry = cls(
            result_id=result_id,
            kind=str(check.text(check.get(d, "kind", ""), "kind")),
            mode=str(check.text(check.get(d, "mode", ""), "mode")),
            config_hash=str(check.text(check.get(d, "config_hash", ""), "config_hash")),
            fingerprint=fingerprint,
            latency=SeriesStats(**lat),
            throughput=check.number(check.get(d, "throughput", ""), "throughput", positive=True),
            distribution=Distribution(n=n, quantiles_ms=quantiles),
            timestamp=str(check.text(check.get(d, "timestamp", ""), "timestamp")),
            git_commit=check.text(d.get("git_commit"), "git_commit", optional=True),
            flags=check.texts(d.get("flags", []), "flags"),
            layers=check.layers(d.get("layers", [])),
            sm_clock_mhz=check.optional_number(d.get("sm_clock_mhz"), "sm_clock_mhz", positive=True),
            timed_as=check.text(timed_as, "timed_as", optional=True),
            history=check.history(d["history"]) if "history" in d else (),
            config=(check.json_value(check.obj(config, "config"), "config") if config is not None else None),
        )
        return entry


def _busy(flags: Any) -> bool:
    return any(f in ("busy", "host_busy") for f in flags)


def _timed_as(d: Mapping[str, Any]) -> str | None:
    value = d.get("timed_as")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BaselineFile:
    path: Path
    device_class: str
    entries: Mapping[str, BaselineEntry]


def _fix(path: Path) -> str:
    return _FIX.replace("FILE", str(path))


def _entry_id(rid: str) -> str:
    return rid if len(rid) <= 120 else rid[:117] + "..."


def read_file(path: Path) -> BaselineFile:
    """Parse and validate one baseline file; any problem is a one-line error
    naming the file (and the entry and field when one is bad)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BaselineFileError(f"baseline file {path}: cannot read it ({e.strerror}); check permissions") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BaselineFileError(f"baseline file {path} is not UTF-8 text (corrupt); {_fix(path)}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if e.pos >= len(raw.rstrip()) else "corrupt"
        raise BaselineFileError(
            f"baseline file {path} is {what} (invalid JSON at line {e.lineno} column {e.colno}); "
            f"{_fix(path)}") from None
    except RecursionError:
        raise BaselineFileError(f"baseline file {path} is nested too deeply (corrupt); {_fix(path)}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BaselineFileError(f"baseline file {path} is not a pytest-trtperf baseline (no schema_version); "
                                f"{_fix(path)}")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < OLDEST_SCHEMA:
        raise BaselineFileError(f"baseline file {path} has a malformed schema_version {version!r} (a whole number "
                                f"from {OLDEST_SCHEMA}); {_fix(path)}")
    if version > SCHEMA_VERSION:
        tool = data.get("tool", {}).get("version", "a newer version") if isinstance(data.get("tool"), dict) else "a newer version"
        raise BaselineFileError(
            f"baseline file {path} has schema {version}, written by pytest-trtperf {tool}; this is "
            f"{__version__} (schema {SCHEMA_VERSION}): upgrade with pip install -U pytest-trtperf")
    results = data.get("results")
    device_class = data.get("device_class")
    if not isinstance(results, dict) or not isinstance(device_class, str):
        missing = "results" if not isinstance(results, dict) else "device_class"
        raise BaselineFileError(f"baseline file {path} is malformed ({missing} is missing or of the wrong type); "
                                f"{_fix(path)}")
    entries = {}
    for rid, e in results.items():
        try:
            entries[rid] = BaselineEntry.from_dict(rid, e)
        except check.FieldError as err:
            raise BaselineFileError(f"baseline file {path}, entry {_entry_id(rid)!r}: field {err.field} "
                                    f"{err.problem}; {_fix(path)}") from None
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

    def write(self, results: list[Result], *, timestamp: str, git_commit: str | None,
              notes: list[str] | None = None) -> list[Path]:
        """Merge ``results`` into their files (other entries are kept). Each
        entry's history continues when the old entry measured the same thing
        the same way and the new run is within the noise of the old runs;
        otherwise it restarts with this run. ``notes`` collects one line per
        restarted history, run measured on a busy device, or result that
        could not be stored."""
        notes = notes if notes is not None else []
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
                    old = existing.entries.get(r.id) if existing is not None else None
                    entry = BaselineEntry.from_result(r, timestamp=timestamp, git_commit=git_commit,
                                                      history=_kept_history(old, r, notes))
                    d = _finite(entry.to_dict())
                    try:
                        BaselineEntry.from_dict(r.id, d)  # never write what the next run cannot read
                    except check.FieldError as err:
                        notes.append(f"{r.id}: not written: field {err.field} {err.problem}")
                        continue
                    if _busy(r.device_state.flags):
                        notes.append(f"{r.id}: measured while the {'host' if r.kind == 'host' else 'GPU'} was busy "
                                     f"({', '.join(r.device_state.flags)}); the entry records it and the gate's "
                                     f"centre leaves the run out once quiet runs exist")
                    entries[r.id] = d
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


def _same_measurement(old: BaselineEntry, r: Result) -> bool:
    fp = Fingerprint.from_dict(r.fingerprint)
    return (old.config_hash == r.config_hash and old.kind == r.kind and old.mode == r.mode
            and old.fingerprint.device_class == fp.device_class and dict(old.fingerprint.critical) == dict(fp.critical))


def _kept_history(old: BaselineEntry | None, r: Result, notes: list[str]) -> tuple[Mapping[str, Any], ...]:
    """The old entry's runs to keep under the new one: none when it measured
    something else, or when this run moved beyond the tolerance and the
    between-run noise of those runs (an accepted change: a new level)."""
    if old is None or not _same_measurement(old, r):
        return ()
    v = r.verdict
    metric = v.metric if v is not None else "median"
    tolerance = v.tolerance if v is not None else 0.05
    confidence = v.confidence if v is not None and v.confidence is not None else 0.99
    new = r.metric_value(metric)
    values = old.run_values(metric)
    if not (new > 0 and math.isfinite(new)):
        return ()
    step = moved(new, values, kind=r.kind, tolerance=tolerance, confidence=confidence)
    if step is not None:
        change = -step / (1 + step) if metric == "throughput" else step  # positive = slower
        notes.append(f"{r.id}: {metric} moved {change:+.1%} from the centre of {len(values)} earlier run(s) "
                     f"({centre(values):.6g}); its history restarts with this run")
        return ()
    return old.runs()
