"""A temporary ``git worktree`` of a revision (``--trt-ab=REV``).

The reference process runs the project's code as it was at REV. Git makes
that cheap and safe with a detached worktree: a second checkout of the same
repository in a scratch directory (under the system's temp directory, never
inside the user's tree), sharing the object store, with no branch created and
the user's checkout untouched. Each session (each xdist worker) makes its
own, under a fresh ``mkdtemp`` name, so two sessions never collide.

It is removed when the session ends, fails, is interrupted or terminated;
a worker killed outright leaves its reference process to remove it (the
process sees its socket close), and the next session on the repository
removes any left behind by a process that no longer runs (``prune_stale``).
Every way this fails in CI becomes one line saying what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_trtperf.core.files import process_alive
from pytest_trtperf.relative.gitfiles import GIT_TIMEOUT_S, Unavailable, run_git

#: Scratch directories made here start with this (``prune_stale`` looks for it).
PREFIX = "trtperf-ab-"
#: The file in the scratch directory naming the process that owns it.
OWNER = "owner.json"
#: Lines of a failed setup command's output shown in its one-line reason.
TAIL_LINES = 5


def _git(cwd: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """:func:`run_git` with its output decoded (git's messages are shown to users)."""
    done = run_git(cwd, *args, timeout=timeout)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def repository_top(path: Path) -> Path:
    """The top of the git work tree holding ``path``."""
    top = _git(path, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise Unavailable(f"{path} is not in a git work tree, so there is no revision to check out")
    return Path(top.stdout.strip()).resolve()


def resolve(top: Path, rev: str) -> str:
    """The full commit id of ``rev``; a missing one says whether the clone is
    shallow and how to fetch it."""
    got = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    if got.returncode == 0 and got.stdout.strip():
        return got.stdout.strip()
    shallow = _git(top, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    if shallow:
        raise Unavailable(f"{rev} is not in this shallow clone; fetch the history (git fetch --unshallow, or "
                          f"actions/checkout with fetch-depth: 0)")
    raise Unavailable(f"{rev} is not a revision of this repository; fetch it (git fetch origin) or name a branch, "
                      f"tag or commit that exists")


def check_commit(path: Path, commit: str) -> Path:
    """The top of the work tree holding ``path`` when ``commit`` (a commit id
    read from a baseline entry) is in its object store: the cheap check
    (``git cat-file -e``, no worktree, no process) before a reference process
    is started for it. :class:`Unavailable` says why not in one line."""
    if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise Unavailable(f"the baseline entry's git_commit {commit[:80]!r} is not a commit id")
    top = repository_top(path)
    if _git(top, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0:
        return top
    short = commit[:12]
    if _git(top, "rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        raise Unavailable(f"the baseline's commit {short} is not in this shallow clone; fetch the history (git "
                          f"fetch --unshallow, or actions/checkout with fetch-depth: 0)")
    raise Unavailable(f"the baseline's commit {short} is not in this repository (not fetched: git fetch origin; "
                      f"or history rewritten: refresh the baseline with --trt-baseline=update)")


def prune_stale(top: Path) -> list[str]:
    """Remove this repository's worktrees left by sessions whose process is
    gone (a killed worker, a power cut); the paths removed."""
    listed = _git(top, "worktree", "list", "--porcelain")
    removed = []
    for line in listed.stdout.splitlines():
        if not line.startswith("worktree "):
            continue
        tree = Path(line[len("worktree "):])
        scratch = tree.parent
        if not scratch.name.startswith(PREFIX):
            continue
        try:
            owner = json.loads((scratch / OWNER).read_text())
            pid = int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if process_alive(pid):
            continue
        _git(top, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)
        removed.append(str(tree))
    return removed


@dataclass
class Worktree:
    """A detached checkout of ``commit`` at ``path`` (inside ``scratch``)."""

    top: Path
    commit: str
    scratch: Path
    path: Path

    @classmethod
    def create(cls, top: Path, commit: str) -> Worktree:
        scratch = Path(tempfile.mkdtemp(prefix=PREFIX))
        try:
            (scratch / OWNER).write_text(json.dumps({"pid": os.getpid(), "repository": str(top)}))
            path = scratch / "tree"
            added = _git(top, "worktree", "add", "--detach", "--quiet", str(path), commit, timeout=600)
            if added.returncode != 0:
                raise Unavailable(f"git worktree add of {commit[:12]} failed: {_last_line(added.stderr)}")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return cls(top=top, commit=commit, scratch=scratch, path=path)

    def remove(self) -> None:
        """Remove the checkout and its git bookkeeping; never raises."""
        try:
            _git(self.top, "worktree", "remove", "--force", str(self.path))
        except Unavailable:
            pass
        shutil.rmtree(self.scratch, ignore_errors=True)


def run_setup(command: str, cwd: Path, *, timeout_s: float, what: str) -> None:
    """``--trt-ab-setup``: run once in the reference's tree before its
    process starts; a failure is one line with the command's last lines."""
    try:
        done = subprocess.run(command, shell=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"--trt-ab-setup {command!r} took longer than {timeout_s:g} s in {what} "
                          f"(--trt-ab-timeout)") from None
    if done.returncode != 0:
        tail = " | ".join(ln.strip() for ln in done.stdout.strip().splitlines()[-TAIL_LINES:] if ln.strip())
        raise Unavailable(f"--trt-ab-setup {command!r} failed with exit code {done.returncode} in {what}: "
                          f"{tail or 'no output'}; fix the command, or try it by hand in a checkout of that "
                          f"revision")
