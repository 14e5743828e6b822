"""``--trt-compare=REV``: gate against the baselines as committed at a git
revision, without checking it out.

The files come out of git (``git ls-tree`` + ``git cat-file``, i.e. ``git
show REV:path``) into a private temporary directory and are then read by the
ordinary :class:`~pytest_trtperf.baselines.store.BaselineStore` code, so a file from
an old commit gets the same checks as one in the working tree (size limit,
schema version, malformed entries). Messages name the file as ``REV:path``.
Nothing is ever written: the working tree's baselines are untouched.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pytest_trtperf.baselines.store import MAX_FILE_BYTES, BaselineFile, BaselineStore, foreign_reason, read_file
from pytest_trtperf.core.errors import BaselineFileError, UsageError
from pytest_trtperf.core.fingerprint import slug

#: Seconds one git command may take (a huge repository on a slow disk).
GIT_TIMEOUT_S = 60.0
#: Regular files in git: plain and executable (a symbolic link is 120000).
_FILE_MODES = ("100644", "100755")


def _git(cwd: Path, *args: str, what: str, binary: bool = False) -> Any:
    """stdout of ``git args`` in ``cwd``; one line naming ``what`` on failure."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise UsageError(f"{what}: needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{what}: git {args[0]} took longer than {GIT_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"{what}: git {args[0]} failed in {cwd}: {err[-1] if err else 'no message'}")
    return proc.stdout if binary else proc.stdout.decode("utf-8", "replace")


def _existing_parent(path: Path) -> Path:
    p = path
    while not p.is_dir() and p != p.parent:
        p = p.parent
    return p


class RevisionStore(BaselineStore):
    """The baseline files of one directory as committed at ``rev``; read-only."""

    def __init__(self, extracted: Path, *, rev: str, rel: str, tmp: tempfile.TemporaryDirectory[str] | None,
                 notes: list[str] | None = None) -> None:
        super().__init__(extracted)
        self.rev = rev
        self.rel = rel
        self._tmp = tmp
        self.notes.extend(notes or [])

    @classmethod
    def open(cls, baseline_dir: Path, rev: str) -> RevisionStore:
        """Extract ``baseline_dir``'s ``*.json`` files at ``rev``. A revision
        that does not exist, a directory outside a git work tree, or a
        revision without baseline files there is one line."""
        what = f"--trt-compare={rev}"
        start = _existing_parent(Path(baseline_dir))
        top = Path(_git(start, "rev-parse", "--show-toplevel", what=what).strip())
        try:
            rel = Path(baseline_dir).resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise UsageError(f"{what}: the baseline directory {baseline_dir} is outside the git work tree "
                             f"{top}") from None
        try:
            sha = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", what=what).strip()
        except UsageError:
            raise UsageError(f"{what}: no commit named {rev!r} in {top}; give a branch, tag or commit "
                             f"(git log shows them; a shallow clone may lack it: fetch-depth 0)") from None
        prefix = "" if rel in ("", ".") else rel + "/"
        listing = _git(top, "ls-tree", "-z", sha, "--", prefix or ".", what=what)
        tmp = tempfile.TemporaryDirectory(prefix="trtperf-compare-")
        notes: list[str] = []
        found = 0
        try:
            for record in listing.split("\0"):
                meta, _, path = record.partition("\t")
                parts = meta.split()
                if len(parts) != 3 or parts[1] != "blob":
                    continue
                mode, _, obj = parts
                name = path[len(prefix):]
                if not name.endswith(".json") or name.startswith(".") or "/" in name:
                    continue
                if mode not in _FILE_MODES:
                    notes.append(f"ignored {rev}:{path}: not a regular file in git (mode {mode})")
                    continue
                size = int(_git(top, "cat-file", "-s", obj, what=what).strip() or 0)
                if size > MAX_FILE_BYTES:
                    notes.append(f"ignored {rev}:{path}: {size} bytes, more than {MAX_FILE_BYTES} bytes")
                    continue
                (Path(tmp.name) / name).write_bytes(_git(top, "cat-file", "blob", obj, what=what, binary=True))
                found += 1
        except BaseException:
            tmp.cleanup()
            raise
        if not found:
            tmp.cleanup()
            raise UsageError(f"{what}: no baseline files in {prefix or './'} at {rev} ({sha[:12]}); pick a "
                             f"revision that has them (git log -- {prefix or '.'})")
        return cls(Path(tmp.name), rev=rev, rel=rel, tmp=tmp, notes=notes)

    def label(self, name: str) -> str:
        """``REV:dir/file.json``, as the user would ``git show`` it."""
        return f"{self.rev}:{'' if self.rel in ('', '.') else self.rel + '/'}{name}"

    def path_for(self, device_class: str) -> Path:
        """Where the device class's baseline is, as messages should name it."""
        return Path(self.label(f"{slug(device_class)}.json"))

    def _read(self, path: Path) -> BaselineFile:
        try:
            return read_file(path)
        except BaselineFileError as e:
            raise BaselineFileError(str(e).replace(str(path), self.label(path.name))) from None

    def load(self, device_class: str) -> BaselineFile | None:
        name = f"{slug(device_class)}.json"
        if name not in self._cache:
            path = self.directory / name
            self._cache[name] = self._read(path) if path.is_file() else None
        return self._cache[name]

    def validate_all(self) -> None:
        for p in self.files():
            reason = foreign_reason(p)
            if reason is not None:
                self._note(f"ignored {self.label(p.name)}: it {reason}")
                continue
            self._cache[p.name] = self._read(p)

    def write(self, *args: Any, **kwargs: Any) -> list[Path]:
        raise BaselineFileError(f"baselines at {self.rev} are read-only (--trt-compare); run without it to update")

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
