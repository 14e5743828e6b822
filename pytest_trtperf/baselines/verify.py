"""``pytest-trtperf verify``: a baseline file checked against its own git history.

The gate trusts nothing it reads (``baseline_check``), but an edit that keeps
every figure of an entry consistent (a whole entry made 2x slower) can only be
told apart from a real ``update`` by where it came from. Git knows: this walks
every committed version of each baseline file (first-parent history, so a
merged branch counts as its merge commit), then the working tree, and names
each entry whose contents changed in a way ``update`` never writes.

How an ``update`` is recognised: ``update`` rewrites an entry whole, so the
entry's ``timestamp`` changes, its ``history`` ends with a row carrying that
same timestamp (this run), and the rows before it are the previous version's
rows unchanged (oldest dropped past ``noise.HISTORY_RUNS``), or the history
restarts with this one row (entries of schema 1, before histories, have
none); several updates between two commits append a run each, and two
within one second keep the timestamp and are told by the run they append.
Any other change of an entry (numbers changed
under an unchanged timestamp, rewritten or added history rows, a new entry
arriving with a history) is reported with the commit that made it. Every
version is also read with the session's own checks (``baseline.read_file``)
and each entry's identity fields checked against each other.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

from pytest_trtperf.core.errors import UsageError

#: Seconds one git command may take.
GIT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Version:
    """One version of a baseline file: ``label`` names the commit (``abc123def456
    2026-12-01 subject``) or ``working tree``."""

    label: str
    data: Mapping[str, Any] | None
    problem: str | None = None


def _git(cwd: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise UsageError("verify needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {args[0]} took longer than {GIT_TIMEOUT_S:.0f} s in {cwd}") from None
    if proc.returncode != 0:
        last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"git {args[0]} failed in {cwd}: {last}")
    return proc.stdout.decode("utf-8", "replace")


def _parse(raw: bytes) -> tuple[Mapping[str, Any] | None, str | None]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, "is not valid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        return None, "is not a pytest-trtperf baseline (no results object)"
    return data, None


def versions(path: Path) -> list[Version]:
    """Every committed version of ``path`` (oldest first), then the working
    tree's when it differs from the last commit."""
    path = path.resolve()
    top = Path(_git(path.parent, "rev-parse", "--show-toplevel").strip()).resolve()
    rel = path.relative_to(top).as_posix()
    log = _git(top, "log", "--first-parent", "--reverse", "--format=%H%x09%cs%x09%s", "--", rel)
    out: list[Version] = []
    for line in log.splitlines():
        sha, _, rest = line.partition("\t")
        day, _, subject = rest.partition("\t")
        try:
            raw = subprocess.run(["git", "show", f"{sha}:{rel}"], cwd=top, capture_output=True,
                                 timeout=GIT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise UsageError(f"git show took longer than {GIT_TIMEOUT_S:.0f} s in {top}") from None
        label = f"commit {sha[:12]} ({day}, {subject[:60]!r})"
        if raw.returncode != 0:  # deleted in this commit
            out.append(Version(label, None, "deleted"))
            continue
        data, problem = _parse(raw.stdout)
        out.append(Version(label, data, problem))
    if path.exists():
        from pytest_trtperf.core.files import UnreadableFile, read_regular_file
        from pytest_trtperf.baselines.store import MAX_FILE_BYTES

        try:
            raw_now = read_regular_file(path, limit=MAX_FILE_BYTES)
        except UnreadableFile as e:
            out.append(Version("working tree", None, str(e)))
            return out
        data, problem = _parse(raw_now)
        if not out or data != out[-1].data or problem != out[-1].problem:
            out.append(Version("working tree", data, problem))
    return out


def _rows(entry: Mapping[str, Any]) -> list[Any]:
    rows = entry.get("history")
    return list(rows) if isinstance(rows, list) else []


def entry_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    """Why the change from ``old`` to ``new`` is not what ``update`` writes, or None."""
    rows = _rows(new)
    stamp = new.get("timestamp")
    last_ok = bool(rows) and isinstance(rows[-1], Mapping) and rows[-1].get("timestamp") == stamp
    if old is None:  # schema 1 entries (before histories) have none
        if rows and not (last_ok and _in_time_order(rows)):
            return (f"arrived with {len(rows)} history row(s) that are not runs in time order ending with its own; "
                    f"update starts a new entry with its run and appends one row a run")
        return None
    if old == new:
        return None
    before = _rows(old)
    added = _runs_added(before, rows, old.get("timestamp")) if last_ok else None
    if added is not None or (not rows and stamp != old.get("timestamp")):
        return None
    if stamp == old.get("timestamp"):
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return f"{', '.join(changed)} changed under an unchanged timestamp ({stamp})"
    if not last_ok:
        return "its history does not end with its own run (the last row's timestamp is not the entry's)"
    return "its earlier history rows were rewritten (update keeps them unchanged or restarts the history)"


def _stamp(row: Any) -> str:
    return str(row.get("timestamp", "")) if isinstance(row, Mapping) else ""


def _in_time_order(rows: list[Any]) -> bool:
    stamps = [_stamp(r) for r in rows]
    return all(stamps) and stamps == sorted(stamps)


def _runs_added(before: list[Any], rows: list[Any], old_stamp: Any) -> int | None:
    """How many runs ``update`` appended between two versions (one or more:
    several updates between two commits are how a history is built), or None
    when ``rows`` is not the old rows' tail followed by new runs in time
    order, none earlier than the old version. Timestamps have whole seconds:
    a run in the same second as the old version's counts only when that
    version's own run is kept (a rewritten one-row history is not a new run)."""
    for k in range(1, len(rows) + 1):
        kept, new_rows = rows[:len(rows) - k], rows[len(rows) - k:]
        if kept != before[len(before) - len(kept):] or any(r in before for r in new_rows):
            continue
        first = _stamp(new_rows[0])
        if not _in_time_order(new_rows) or first < str(old_stamp or ""):
            return None
        if first == str(old_stamp) and not (kept and before and kept[-1] == before[-1]):
            return None
        return k
    return None


def _check_now(path: Path) -> list[str]:
    """The session's own reading of the current file, and each entry's identity."""
    from pytest_trtperf.baselines import checks as check
    from pytest_trtperf.baselines.store import read_file
    from pytest_trtperf.core.errors import BaselineFileError

    try:
        f = read_file(path)
    except BaselineFileError as e:
        return [str(e)]
    out = []
    for rid, e in sorted(f.entries.items()):
        why = check.identity_disagreement(e.kind, e.mode, e.config_hash, e.fingerprint.critical, e.config)
        if why:
            out.append(f"{path}: entry {rid!r}: its identity fields disagree ({why}): edited")
    return out


def verify_file(path: Path) -> tuple[list[str], int]:
    """(findings, number of versions read) for one baseline file."""
    found: list[str] = []
    vs = versions(path)
    previous: Mapping[str, Any] = {}
    for v in vs:
        if v.data is None:
            if v.problem != "deleted":
                found.append(f"{path}: {v.label}: the file {v.problem}")
            previous = {}
            continue
        results = v.data["results"]
        for rid, entry in sorted(results.items()):
            if not isinstance(entry, Mapping):
                found.append(f"{path}: {v.label}: entry {rid!r} is not an object")
                continue
            old = previous.get(rid)
            why = entry_change(old if isinstance(old, Mapping) else None, entry)
            if why:
                found.append(f"{path}: {v.label}: entry {rid!r} changed outside an update: {why}")
        previous = results
    if vs and vs[-1].data is not None and path.exists():
        found += _check_now(path)
    return found, len(vs)


def verify(paths: Sequence[Path]) -> tuple[list[str], str]:
    """(findings, one-line summary) for baseline files or directories of them."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.glob("*.json") if not q.name.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such baseline file or directory")
    if not files:
        raise UsageError(f"no baseline files (*.json) in {', '.join(map(str, paths))}")
    found: list[str] = []
    count = 0
    for f in files:
        lines, n = verify_file(f)
        found += lines
        count += n
    what = f"{len(files)} baseline file(s), {count} version(s)"
    if found:
        return found, f"verify: {len(found)} finding(s) in {what}: entries changed outside pytest --trt-baseline=update"
    return found, f"verify: {what}: every change came from pytest --trt-baseline=update"
