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
import platform
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator, Mapping

from pytest_trtperf.core.version import __version__
from pytest_trtperf.core import metrics
from pytest_trtperf.baselines import checks as check
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.core.files import TEMP_SUFFIX, UnreadableFile, atomic_write, read_regular_file
from pytest_trtperf.core.fingerprint import Fingerprint, is_slug_form, slug
from pytest_trtperf.core.identity import config_identity
from pytest_trtperf.core.serve_summary import Serve
from pytest_trtperf.core.noise import HISTORY_RUNS, MAX_SD, centre, estimate, moved
from pytest_trtperf.core.results import Distribution, Result, SeriesStats, figures_from_json
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import clock_of

#: 2: entries keep ``history`` (the last runs' summaries, for the between-run
#: noise term) and ``config`` (the configuration itself, so a verdict can name
#: what changed). Files of schema 1 are read (one run of history, no config)
#: and written back as 2.
SCHEMA_VERSION = 2
OLDEST_SCHEMA = 1
#: Largest baseline file read (README "Baselines"). A file of 101-point
#: quantiles and per-layer profiles for a few hundred results is well under 1 MiB.
MAX_FILE_BYTES = 32 * 2**20
#: Default seconds to wait for the baseline directory's lock (``--trt-lock-timeout``).
LOCK_TIMEOUT_S = 60.0
#: After this many seconds of waiting, say who holds the lock.
LOCK_NOTICE_S = 3.0
#: Who holds the lock: pid, host, start time, written while holding it.
LOCK_OWNER_FILE = ".trtperf.lock.owner"
#: The ``.gitignore`` of a baseline directory the store creates: temporary
#: files of a killed write, the lock owner, the session-start probe and the
#: ``.state`` directory (GPU/CPU locks, clock state) are never committed.
LEFTOVERS_IGNORE = ("# written by pytest-trtperf: leftovers and state, never the baselines\n"
                    ".*.tmp\n.trtperf.lock.owner\n.trtperf-probe-*\n.state/\n")
_FIX = "restore it from version control (git checkout -- FILE) or delete it and run pytest --trt-baseline=update"


def _metric_values(source: Any) -> dict[str, float]:
    """The value of every time-gate metric (``metrics.TIMING``): what a
    history row keeps, so the gate's centre can average any of them."""
    return {m.name: float(m.read(source)) for m in metrics.TIMING}


def history_row(r: Result, *, timestamp: str, git_commit: str | None) -> dict[str, Any]:
    """What the history keeps of one ``update`` run: when, where, its metric
    values and the flags of its window."""
    row: dict[str, Any] = {"timestamp": timestamp, "git_commit": git_commit, "machine": platform.node() or None,
                           "n": r.latency.n, "throughput": r.throughput, "flags": list(r.device_state.flags)}
    row.update(_metric_values(r))
    return row


def row_value(row: Mapping[str, Any], metric: str) -> float:
    return metrics.timing(metric).read_row(row)


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
    #: "graph" or "eager" for torch and stream callables); handed back to it next run.
    timed_as: str | None = None
    #: The last ``update`` runs (oldest first, this one last): ``history_row``.
    #: Empty only for entries built in memory; files always have one row.
    history: tuple[Mapping[str, Any], ...] = ()
    #: The configuration identity (``identity.config_identity``); None in
    #: schema-1 entries, which only have its hash.
    config: Mapping[str, Any] | None = None
    #: Memory figures in bytes (``results.FIGURES``); empty in files written before
    #: memory was recorded, which still load (memory is then "missing", never failed).
    memory: Mapping[str, int] = field(default_factory=dict)
    #: The result's ``extra_info`` (the user's context, never judged).
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    #: Latency under load (``Result.serve``): the rates run and the search, for
    #: reports (the knee against the baseline's); the gate reads the figures above.
    serve: Serve | None = None

    def metric_value(self, metric: str) -> float:
        return metrics.timing(metric).read(self)

    def runs(self) -> tuple[Mapping[str, Any], ...]:
        """The history, or this entry as its only run."""
        if self.history:
            return self.history
        row: dict[str, Any] = {"timestamp": self.timestamp, "git_commit": self.git_commit, "machine": None,
                               "n": self.latency.n, "throughput": self.throughput, "flags": list(self.flags)}
        row.update(_metric_values(self))
        return (row,)

    def run_values(self, metric: str) -> list[float]:
        """The metric of each run the gate's centre averages: runs measured on
        a busy device are left out when quiet ones exist."""
        rows = self.runs()
        quiet = [r for r in rows if not _busy(r.get("flags", ()))]
        return [row_value(r, metric) for r in (quiet or rows)]

    @classmethod
    def from_result(cls, r: Result, *, timestamp: str, git_commit: str | None,
                    history: tuple[Mapping[str, Any], ...] = ()) -> BaselineEntry:
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
            memory=dict(r.memory),
            extra_info=dict(r.extra_info),
            serve=r.serve,
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
        if self.memory:  # only entries with memory figures write them
            d["memory"] = dict(self.memory)
        if self.extra_info:
            d["extra_info"] = dict(self.extra_info)
        if self.serve is not None:
            d["serve"] = self.serve.to_dict()
        return d

    @classmethod
    def from_dict(cls, result_id: str, d: Any) -> BaselineEntry:
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
        throughput = check.number(check.get(d, "throughput", ""), "throughput", positive=True)
        history = check.history(d["history"]) if "history" in d else ()
        check.agreement(lat, n, quantiles, throughput, history)
        config = d.get("config")
        timed_as = d.get("timed_as")
        entry = cls(
            result_id=result_id,
            kind=str(check.text(check.get(d, "kind", ""), "kind")),
            mode=str(check.text(check.get(d, "mode", ""), "mode")),
            config_hash=check.config_hash(check.get(d, "config_hash", "")),
            fingerprint=fingerprint,
            latency=SeriesStats(**lat),
            throughput=throughput,
            distribution=Distribution(n=n, quantiles_ms=quantiles),
            timestamp=str(check.text(check.get(d, "timestamp", ""), "timestamp")),
            git_commit=check.text(d.get("git_commit"), "git_commit", optional=True),
            flags=check.texts(d.get("flags", []), "flags"),
            layers=check.layers(d.get("layers", [])),
            sm_clock_mhz=check.optional_number(d.get("sm_clock_mhz"), "sm_clock_mhz", positive=True),
            timed_as=check.text(timed_as, "timed_as", optional=True),
            history=history,
            config=(check.json_value(check.obj(config, "config"), "config") if config is not None else None),
            memory=_memory(d.get("memory")),
            extra_info=(check.json_value(check.obj(d["extra_info"], "extra_info"), "extra_info")
                        if d.get("extra_info") is not None else {}),
            serve=_serve(d.get("serve")),
        )
        return entry


def _serve(value: Any) -> Serve | None:
    """The entry's serve summary (reports only), or None; a malformed one is a
    field error like any other."""
    if value is None:
        return None
    try:
        return Serve.from_dict(check.json_value(check.obj(value, "serve"), "serve"))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, check.FieldError):
            raise
        raise check.FieldError("serve", f"is not a serve summary ({type(e).__name__}: {e})") from None


def _memory(value: Any) -> dict[str, int]:
    try:
        return figures_from_json(value)
    except ValueError as e:
        raise check.FieldError("memory", str(e)) from None


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
    #: The document as read: fields this version does not know (written by a
    #: newer plugin of the same schema) are kept when the file is rewritten.
    raw: Mapping[str, Any] = field(default_factory=dict)


def _fix(path: Path) -> str:
    return _FIX.replace("FILE", str(path))


def _entry_id(rid: str) -> str:
    return rid if len(rid) <= 120 else rid[:117] + "..."


def read_file(path: Path) -> BaselineFile:
    """Parse and validate one baseline file; any problem is a one-line error
    naming the file (and the entry and field when one is bad)."""
    try:
        raw = read_regular_file(path, limit=MAX_FILE_BYTES)
    except UnreadableFile as e:
        raise BaselineFileError(f"baseline file {path} {e}; a baseline is a regular JSON file written by "
                                f"pytest --trt-baseline=update: {_FIX.replace('FILE', str(path))}") from None
    data = _parse(path, raw)
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BaselineFileError(f"baseline file {path} is not a pytest-trtperf baseline (no schema_version); "
                                f"{_fix(path)}")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < OLDEST_SCHEMA:
        raise BaselineFileError(f"baseline file {path} has a malformed schema_version {version!r} (a whole number "
                                f"from {OLDEST_SCHEMA}); {_fix(path)}")
    if version > SCHEMA_VERSION:
        tool = data.get("tool", {}).get("version") if isinstance(data.get("tool"), dict) else None
        writer = f"pytest-trtperf {tool[:40]}" if isinstance(tool, str) and tool.strip() else "a newer pytest-trtperf"
        raise NewerSchema(
            f"baseline file {path} has schema {version}, written by {writer}; this is "
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
    return BaselineFile(path=path, device_class=device_class, entries=entries, raw=data)


class NewerSchema(BaselineFileError):
    """A baseline file of a newer schema: an error for the device class that
    needs it, a note for the others (``BaselineStore.validate_all``)."""


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a key twice in one object (a "keep both" merge
    left two entries under one id) is refused, not silently the last."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


_BOM = b"\xef\xbb\xbf"
_CONFLICT = b"<<<<<<< "


def _conflict_line(raw: bytes) -> int | None:
    """The line (1-based) of the first merge-conflict marker, or None."""
    for i, line in enumerate(raw.split(b"\n"), 1):
        if line.startswith(_CONFLICT) or line.rstrip(b"\r") == b"<<<<<<<":
            return i
    return None


def _parse(path: Path, raw: bytes) -> Any:
    """The JSON of a baseline file, or a one-line error that names what is
    wrong: a byte-order mark, merge-conflict markers, duplicate keys, a number
    longer than Python reads (4300 digits), truncation, other corruption."""
    if raw.startswith(_BOM):
        raise BaselineFileError(f"baseline file {path} starts with a UTF-8 byte-order mark (an editor saved it so); "
                                f"save it as UTF-8 without a BOM, or {_fix(path)}")
    line = _conflict_line(raw)
    if line is not None:
        raise BaselineFileError(f"baseline file {path} has unresolved merge-conflict markers (line {line}); resolve "
                                f"the conflict keeping one side (git checkout --theirs or --ours -- {path}) and run "
                                f"pytest --trt-baseline=update for the tests whose entries you dropped")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique)
    except UnicodeDecodeError:
        raise BaselineFileError(f"baseline file {path} is not UTF-8 text (corrupt); {_fix(path)}") from None
    except _DuplicateKey as e:
        raise BaselineFileError(f"baseline file {path} has the key {_entry_id(e.key)!r} twice in one object (a "
                                f"merge that kept both sides?); keep one of them, or {_fix(path)}") from None
    except json.JSONDecodeError as e:
        what = "truncated" if _cut_short(raw, e) else "corrupt"
        raise BaselineFileError(
            f"baseline file {path} is {what} (invalid JSON at line {e.lineno} column {e.colno}); "
            f"{_fix(path)}") from None
    except RecursionError:
        raise BaselineFileError(f"baseline file {path} is nested too deeply (corrupt); {_fix(path)}") from None
    except ValueError as e:  # int() of a number longer than sys.get_int_max_str_digits()
        what = "a number with more than 4300 digits" if "digits" in str(e) else "a value Python cannot read"
        raise BaselineFileError(f"baseline file {path} has {what} (corrupt); {_fix(path)}") from None


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
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # msvcrt exists on Windows only
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
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # msvcrt exists on Windows only
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
        start = REAL.monotonic()
        noticed = False
        pause = 0.02
        while not _try_lock(fd):
            waited = REAL.monotonic() - start
            if waited >= timeout_s:
                raise LockTimeout(
                    f"gave up after waiting {timeout_s:g} s for the lock on the baseline directory {directory}, "
                    f"held by {_lock_owner(directory)}; if that process is stuck or gone, stop it and run again "
                    f"(or wait longer with --trt-lock-timeout)")
            if not noticed and waited >= LOCK_NOTICE_S and on_wait is not None:
                on_wait(f"trtperf: waiting for the lock on the baseline directory {directory}, held by "
                        f"{_lock_owner(directory)}; giving up after {timeout_s:g} s")
                noticed = True
            REAL.sleep(min(pause, max(timeout_s - waited, 0.0)))
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


#: Text that only our baseline files (and the --trt-json documents, told apart
#: below) carry: a file that is not valid JSON but holds one of these is a
#: baseline cut short or left with merge-conflict markers.
_OUR_HEADER = (b'"schema_version"', b'"device_class"', b"pytest-trtperf")


def owned_name(path: Path) -> bool:
    """Whether ``path`` is named as the store names baseline files
    (``<slug of a device class>.json``, ``fingerprint.is_slug_form``)."""
    return path.name.endswith(".json") and is_slug_form(path.name[: -len(".json")])


def foreign_reason(path: Path) -> str | None:
    """Why ``path`` is not a baseline file of ours (to skip it with a note),
    or None when it is or may be one (then :func:`read_file` decides, and
    refuses a broken one with exit status 4).

    Ours: a file named as the store names baseline files, whatever it is (a
    FIFO, ``[]`` or a --trt-json document where this device class's baseline
    should be is an unusable baseline, not someone else's file); a JSON
    object with our ``schema_version``/``device_class`` and no other tool's
    name; text that is not valid JSON but carries our header (a baseline cut
    short or left with merge-conflict markers). Anything else (``package.json``,
    a JSONC ``tsconfig.json`` when the directory is ``.``, a FIFO under another
    name) is someone else's."""
    if owned_name(path):
        return None
    try:
        raw = read_regular_file(path, limit=MAX_FILE_BYTES)
    except UnreadableFile as e:
        return str(e)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        if any(mark in raw for mark in _OUR_HEADER):
            return None
        return "is not valid JSON and neither its name nor its text is a pytest-trtperf baseline's"
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

    def __init__(self, directory: Path, *, lock_timeout_s: float = LOCK_TIMEOUT_S, root: Path | None = None) -> None:
        self.directory = directory
        #: The project (pytest's rootdir): a baseline directory that is a
        #: symbolic link out of it is never written through.
        self.root = root
        self.lock_timeout_s = lock_timeout_s
        self._cache: dict[str, BaselineFile | None] = {}
        #: Files of a newer schema, found by validate_all: raised when their device class is looked up.
        self._newer: dict[str, NewerSchema] = {}
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

    def _not_linked_out(self) -> None:
        """Refuse to write through a baseline directory that is a symbolic
        link out of the project: a pull request can commit ``.trtperf`` as a
        link to anywhere on the CI machine. A link inside the project, or a
        path given as it is, is used."""
        if self.root is None or not os.path.islink(self.directory):
            return
        target = Path(os.path.realpath(self.directory))
        root = Path(os.path.realpath(self.root))
        if target != root and root not in target.parents:
            raise BaselineFileError(
                f"baseline directory {self.directory} is a symbolic link to {target}, outside the project {root}; "
                f"nothing is written through it: replace the link with a directory, or give "
                f"--trt-baseline-dir={target} if that is meant")

    def _create_directory(self) -> None:
        """Create the baseline directory when it does not exist, with a
        ``.gitignore`` for what a killed write or a lock holder leaves in it
        (``LEFTOVERS_IGNORE``); the baseline files stay visible. An existing
        directory is the user's: left as it is (the leftovers are removed by
        the next session that holds the lock)."""
        if os.path.lexists(self.directory):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            atomic_write(self.directory / ".gitignore", LEFTOVERS_IGNORE)

    def check_writable(self) -> None:
        """At session start of an ``update``: the baseline directory can be
        created and written, or one line now instead of after the whole suite
        measured. Probes the directory (or its nearest existing ancestor) with
        a temporary file removed at once."""
        self._not_linked_out()
        fix = "point --trt-baseline-dir at a writable directory; nothing was measured"
        probe = self.directory
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise BaselineFileError(f"baseline directory {self.directory} cannot be written: {probe} is not a "
                                    f"directory; {fix}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=".trtperf-probe-", suffix=TEMP_SUFFIX, dir=probe)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise BaselineFileError(f"baseline directory {self.directory} cannot be written ({probe}: "
                                    f"{e.strerror or e}); {fix}") from None

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
            try:
                self._cache[p.name] = read_file(p)
            except NewerSchema as e:  # an error only for the device class that needs the file (load)
                self._newer[p.name] = e
                self._note(f"ignored {p.name} in the baseline directory: {str(e).partition(' has ')[2]}; results of "
                           f"its device class cannot be compared or updated by this version")
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
        if p.name in self._newer:
            raise self._newer[p.name]
        if p.name not in self._cache:
            self._cache[p.name] = read_file(p) if _present(p) else None
        return self._cache[p.name]

    def lookup(self, device_class: str, result_id: str) -> BaselineEntry | None:
        f = self.load(device_class)
        return f.entries.get(result_id) if f else None

    def write(self, results: list[Result], *, timestamp: str, git_commit: str | None,
              on_wait: Callable[[str], None] | None = None, written: list[Path] | None = None,
              notes: list[str] | None = None, refused: dict[str, str] | None = None) -> list[Path]:
        """Merge ``results`` into their files (other entries are kept).
        ``written``, when given, receives each path as soon as it is
        replaced, so a caller interrupted midway knows what was written.

        Each entry's history continues when the old entry measured the same
        thing the same way and the new run is within the noise of the old
        runs; otherwise it restarts with this run. ``notes`` collects one line
        per restarted history, run measured on a busy device, or result that
        could not be stored."""
        notes = notes if notes is not None else []
        self._not_linked_out()
        self._create_directory()
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
                    entries = {rid: _with_unknown(e.to_dict(), existing.raw["results"].get(rid))
                               for rid, e in existing.entries.items()}
                for r in rs:
                    old = existing.entries.get(r.id) if existing is not None else None
                    entry = BaselineEntry.from_result(r, timestamp=timestamp, git_commit=git_commit,
                                                      history=_kept_history(old, r, notes))
                    d = _finite(entry.to_dict())
                    try:
                        BaselineEntry.from_dict(r.id, d)  # never write what the next run cannot read
                    except check.FieldError as err:
                        notes.append(f"{r.id}: not written: field {err.field} {err.problem}")
                        if refused is not None:
                            refused[r.id] = f"field {err.field} {err.problem}"
                        continue
                    if _busy(r.device_state.flags):
                        notes.append(f"{r.id}: {_busy_text(r)}; the entry records it and the gate's centre leaves "
                                     f"the run out once quiet runs exist")
                    entries[r.id] = d
                doc = _with_unknown({
                    "schema_version": SCHEMA_VERSION,
                    "tool": {"name": "pytest-trtperf", "version": __version__},
                    "device_class": device_class,
                    "results": entries,
                }, existing.raw if existing is not None else None)
                try:
                    atomic_write(path, _readable(path, dumps(doc)))
                except OSError as e:
                    raise BaselineFileError(f"{path}: {e.strerror or e} (the file is left as it was)") from None
            self._cache.pop(path.name, None)
            done.append(path)
        return list(done)


def _with_unknown(ours: dict[str, Any], read: Any) -> dict[str, Any]:
    """``ours`` plus the keys of ``read`` (the same object as the file had it)
    that this version does not write: fields of a newer plugin of the same
    schema survive a rewrite instead of being dropped."""
    if not isinstance(read, Mapping):
        return ours
    return {**{k: v for k, v in read.items() if k not in ours}, **ours}


def _readable(path: Path, text: str) -> str:
    """``text`` when the next run can read it back: within ``MAX_FILE_BYTES``
    (33.4 MB in, 44.8 MB out made every later run exit 4) and parsed by the
    same reader (depth, digits, duplicates). Otherwise nothing is written and
    the line says how to split."""
    size = len(text.encode("utf-8"))
    if size > MAX_FILE_BYTES:
        raise BaselineFileError(
            f"baseline file {path} NOT written: it would be {size / 2**20:.1f} MiB, over the {MAX_FILE_BYTES / 2**20:g} "
            f"MiB a run reads; split the suite's baselines (one --trt-baseline-dir per test directory, e.g. "
            f"pytest tests/vision --trt-baseline-dir=tests/vision/.trtperf) or record fewer results per file")
    _parse(path, text.encode("utf-8"))
    return text


def _same_measurement(old: BaselineEntry, r: Result) -> bool:
    fp = Fingerprint.from_dict(r.fingerprint)
    return (old.config_hash == r.config_hash and old.kind == r.kind and old.mode == r.mode
            and old.fingerprint.device_class == fp.device_class and dict(old.fingerprint.critical) == dict(fp.critical))


def _busy_text(r: Result) -> str:
    """``measured while the host was busy (the measuring thread waited ...;
    flags host_busy)``: the load the window saw, for the update's note."""
    if clock_of(r) == "host":
        from pytest_trtperf.core.host_state import describe_load

        seen = describe_load(r.device_state)
    else:
        others = r.device_state.other_processes
        seen = f"other processes: {', '.join(others)}" if others else "another process used it"
    return (f"measured while the {'host' if clock_of(r) == 'host' else 'GPU'} was busy ({seen}; flags "
            f"{', '.join(r.device_state.flags)})")


def _kept_history(old: BaselineEntry | None, r: Result, notes: list[str]) -> tuple[Mapping[str, Any], ...]:
    """The old entry's runs to keep under the new one: none when it measured
    something else, or when this run moved beyond the tolerance and the
    between-run noise of those runs (an accepted change: a new level). A run
    measured on a busy device never starts a new level: it joins the
    history, which leaves it out of the centre while quiet runs exist."""
    if old is None or not _same_measurement(old, r):
        return ()
    if _busy(r.device_state.flags):
        return old.runs()
    v = r.verdict
    metric = v.metric if v is not None else "median"
    tolerance = v.tolerance if v is not None else 0.05
    confidence = v.confidence if v is not None and v.confidence is not None else 0.99
    new = r.metric_value(metric)
    values = old.run_values(metric)
    if not (new > 0 and math.isfinite(new)):
        return ()
    noise = estimate(clock_of(r), values)
    if noise.capped:
        notes.append(f"{r.id}: the {metric} of its {len(values)} earlier runs spread with sd {noise.sd:.1%}, too wide "
                     f"for a real history (beyond {MAX_SD:.0%}; edited?); its history restarts with this run")
        return ()
    step = moved(new, values, clock=clock_of(r), tolerance=tolerance, confidence=confidence)
    if step is not None:
        change = step if metrics.timing(metric).lower_is_better else -step / (1 + step)  # positive = slower
        notes.append(f"{r.id}: {metric} moved {change:+.1%} from the centre of {len(values)} earlier run(s) "
                     f"({centre(values):.6g}); its history restarts with this run")
        return ()
    return old.runs()
