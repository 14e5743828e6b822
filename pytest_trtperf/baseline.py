"""The JSON baseline store.

One file per device class under the baseline directory, keyed by stable
result ids. Reading validates the whole file and refuses anything it does not
fully understand (corrupt, truncated, newer schema) with a one-line error; such
a file is never written to. Writing merges with what is on disk under a file
lock and replaces the file atomically (temporary file + fsync + ``os.replace``),
so a killed run leaves the previous file intact.

The directory arrives through pull requests, so reading it trusts nothing:
only regular files up to ``MAX_FILE_BYTES`` are read (never a FIFO, a device
or a symlink loop), files that are not ours (``package.json`` beside them, a
``--trt-json`` document) are skipped with a note, and the session that holds
the lock removes temporary files an interrupted write left behind. A lock
held by a stuck process is named after a few seconds and given up on after
the lock timeout, with one line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import math
import os
import socket
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import __version__
from .errors import BaselineFileError
from .files import TEMP_SUFFIX, UnreadableFile, atomic_write, read_regular_file
from .fingerprint import Fingerprint, slug
from .memory import figures_from_json
from .results import Distribution, Result, SeriesStats

SCHEMA_VERSION = 1
#: Largest baseline file read (README "Baselines"). A file of 101-point
#: quantiles and per-layer profiles for a few hundred results is well under 1 MiB.
MAX_FILE_BYTES = 32 * 2**20
#: Default seconds to wait for the baseline directory's lock (``--trt-lock-timeout``).
LOCK_TIMEOUT_S = 60.0
#: After this many seconds of waiting, say who holds the lock.
LOCK_NOTICE_S = 3.0
#: Who holds the lock: pid, host, start time, written while holding it.
LOCK_OWNER_FILE = ".trtperf.lock.owner"
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
    #: The result's ``extra_info`` (the user's context, never judged).
    extra_info: Mapping[str, Any] = field(default_factory=dict)

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
            extra_info=dict(r.extra_info),
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
        if self.extra_info:
            d["extra_info"] = dict(self.extra_info)
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
            extra_info=dict(d["extra_info"]) if isinstance(d.get("extra_info"), dict) else {},
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
        raw = read_regular_file(path, limit=MAX_FILE_BYTES)
    except UnreadableFile as e:
        raise BaselineFileError(f"baseline file {path} {e}; a baseline is a regular JSON file written by "
                                f"pytest --trt-baseline=update: {_FIX.replace('FILE', str(path))}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BaselineFileError(f"baseline file {path} is not UTF-8 text (corrupt); {_FIX.replace('FILE', str(path))}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if _cut_short(raw, e) else "corrupt"
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
        tool = data.get("tool", {}).get("version") if isinstance(data.get("tool"), dict) else None
        writer = f"pytest-trtperf {tool[:40]}" if isinstance(tool, str) and tool.strip() else "a newer pytest-trtperf"
        raise BaselineFileError(
            f"baseline file {path} has schema {version}, written by {writer}; this is "
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


def _cut_short(raw: bytes, e: json.JSONDecodeError) -> bool:
    """Whether invalid JSON reads like a valid document cut off (a killed
    copy, a full disk): the text ends inside a string, or the parser failed
    within the last token while brackets were still open. Anything else,
    garbage or a merge conflict, is corrupt."""
    if e.msg.startswith("Unterminated string"):
        return True
    text = raw.decode("utf-8", "replace").rstrip()
    if e.pos < len(text) - 24:
        return False
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                return False
    return depth > 0 or in_string


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


class LockTimeout(BaselineFileError):
    """The baseline directory's lock was held longer than the lock timeout."""


def _lock_owner(directory: Path) -> str:
    """Who holds the lock, from the owner file the holder wrote."""
    try:
        info = json.loads(read_regular_file(directory / LOCK_OWNER_FILE, limit=4096).decode("utf-8"))
        pid, host, since = int(info["pid"]), str(info["host"]), float(info["since"])
    except (UnreadableFile, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process (it left no owner information)"
    started = _dt.datetime.fromtimestamp(since, _dt.timezone.utc).strftime("%H:%M:%S UTC")
    return f"pid {pid} on host {host} (since {started}, {max(time.time() - since, 0.0):.0f} s ago)"


def _write_owner(directory: Path) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
            "command": " ".join(os.path.basename(a) for a in sys.argv[:2])[:200]}
    with contextlib.suppress(OSError):
        fd = os.open(directory / LOCK_OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0),
                     0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: fd is a lock file's descriptor
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def directory_lock(directory: Path, *, timeout_s: float = LOCK_TIMEOUT_S,
                   on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Exclusive advisory lock on a directory. Locking the directory itself
    (POSIX flock on its descriptor) leaves no lock file behind to commit; the
    holder writes its pid and host to ``LOCK_OWNER_FILE`` (removed on
    release) so that a waiter can say who it waits for. After
    ``LOCK_NOTICE_S`` of waiting ``on_wait`` gets one line; after
    ``timeout_s`` :class:`LockTimeout` is raised (0: try once)."""
    directory.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":  # pragma: no cover - a lock file inside the directory
        fd = os.open(directory / ".trtperf.lock", os.O_RDWR | os.O_CREAT)
    else:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        start = time.monotonic()
        noticed = False
        pause = 0.02
        while not _try_lock(fd):
            waited = time.monotonic() - start
            if waited >= timeout_s:
                raise LockTimeout(
                    f"gave up after waiting {timeout_s:g} s for the lock on the baseline directory {directory}, "
                    f"held by {_lock_owner(directory)}; if that process is stuck or gone, stop it and run again "
                    f"(or wait longer with --trt-lock-timeout)")
            if not noticed and waited >= LOCK_NOTICE_S and on_wait is not None:
                on_wait(f"trtperf: waiting for the lock on the baseline directory {directory}, held by "
                        f"{_lock_owner(directory)}; giving up after {timeout_s:g} s")
                noticed = True
            time.sleep(min(pause, max(timeout_s - waited, 0.0)))
            pause = min(pause * 2, 0.25)
        try:
            _write_owner(directory)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(directory / LOCK_OWNER_FILE)
            _unlock(fd)
    finally:
        os.close(fd)


def _present(path: Path) -> bool:
    """Something is at ``path`` (a dangling link or a loop included, so they
    are reported rather than taken for a missing baseline)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def foreign_reason(path: Path) -> str | None:
    """Why ``path`` is not a baseline file of ours (to skip it with a note),
    or None when it is or may be one (then :func:`read_file` decides, and
    refuses a broken one). A file that is not valid JSON counts as ours: in
    the baseline directory it is most likely a baseline cut short or left
    with merge-conflict markers, which must stop the session."""
    try:
        raw = read_regular_file(path, limit=MAX_FILE_BYTES)
    except UnreadableFile as e:
        return str(e)
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    if not isinstance(data, dict):
        return "is not a JSON object"
    tool = data.get("tool")
    name = tool.get("name") if isinstance(tool, dict) else None
    if name is not None and name != "pytest-trtperf":
        return f"was written by {name!r}"
    if "session" in data or isinstance(data.get("results"), list):
        return "is a --trt-json results document; write those outside the baseline directory"
    if "schema_version" not in data and "device_class" not in data:
        return "is not a pytest-trtperf baseline"
    return None


class BaselineStore:
    """All baseline files under one directory."""

    def __init__(self, directory: Path, *, lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.directory = directory
        self.lock_timeout_s = lock_timeout_s
        self._cache: dict[str, BaselineFile | None] = {}
        #: One-line notes for the terminal: files skipped, leftovers removed.
        self.notes: list[str] = []

    def path_for(self, device_class: str) -> Path:
        return self.directory / f"{slug(device_class)}.json"

    def check_directory(self) -> bool:
        """Whether the baseline directory exists; a one-line error when the
        path exists but is no directory (a file, a symlink loop)."""
        fix = "point --trt-baseline-dir at a directory (or at a path that does not exist yet)"
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            if _present(self.directory):
                raise BaselineFileError(f"baseline directory {self.directory} is a symbolic link to nothing; "
                                        f"{fix}") from None
            return False
        except OSError as e:
            what = {errno.ELOOP: "a symbolic link loop", errno.ENOTDIR: "under a path that is not a directory"}.get(
                e.errno or 0, f"unreadable ({e.strerror or e})")
            raise BaselineFileError(f"baseline directory {self.directory} is {what}; {fix}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise BaselineFileError(f"baseline directory {self.directory} is not a directory; {fix}")
        return True

    def files(self) -> list[Path]:
        """Candidate baseline files: ``*.json`` directly in the directory,
        dot files (temporary files, lock owner) aside."""
        if not self.check_directory():
            return []
        return sorted(p for p in self.directory.glob("*.json") if not p.name.startswith("."))

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def validate_all(self) -> None:
        """Read every baseline file now, so a bad one stops the session before
        anything is measured (and before anything could be written). Files
        that are not ours are skipped with a note; leftovers of an interrupted
        write are removed when no other session holds the lock."""
        for p in self.files():
            reason = foreign_reason(p)
            if reason is not None:
                self._note(f"ignored {p.name} in the baseline directory: it {reason}")
                continue
            self._cache[p.name] = read_file(p)
        if self.directory.is_dir() and any(self.directory.glob(f".*.json.*{TEMP_SUFFIX}")):
            with contextlib.suppress(LockTimeout, OSError):
                with directory_lock(self.directory, timeout_s=0):
                    self.remove_leftovers()

    def remove_leftovers(self) -> list[Path]:
        """Remove ``.<name>.json.*.tmp`` files: every baseline write happens
        under the lock, so while we hold it such a file is what a killed
        write left behind. Call with the lock held."""
        removed = []
        for tmp in sorted(self.directory.glob(f".*.json.*{TEMP_SUFFIX}")):
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(tmp).st_mode):
                    os.unlink(tmp)
                    removed.append(tmp)
        if removed:
            self._note(f"removed {len(removed)} temporary file(s) left by an interrupted write in "
                       f"{self.directory}: {', '.join(p.name for p in removed)}")
        return removed

    def load(self, device_class: str) -> BaselineFile | None:
        p = self.path_for(device_class)
        if p.name not in self._cache:
            self._cache[p.name] = read_file(p) if _present(p) else None
        return self._cache[p.name]

    def lookup(self, device_class: str, result_id: str) -> BaselineEntry | None:
        f = self.load(device_class)
        return f.entries.get(result_id) if f else None

    def write(self, results: list[Result], *, timestamp: str, git_commit: str | None,
              on_wait: Callable[[str], None] | None = None, written: list[Path] | None = None) -> list[Path]:
        """Merge ``results`` into their files (other entries are kept).
        ``written``, when given, receives each path as soon as it is
        replaced, so a caller interrupted midway knows what was written."""
        by_class: dict[str, list[Result]] = {}
        for r in results:
            by_class.setdefault(r.device_class, []).append(r)
        self.check_directory()
        done = written if written is not None else []
        for device_class, rs in sorted(by_class.items()):
            path = self.path_for(device_class)
            with directory_lock(self.directory, timeout_s=self.lock_timeout_s, on_wait=on_wait):
                self.remove_leftovers()
                existing = read_file(path) if _present(path) else None
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
            done.append(path)
        return list(done)
