"""A file as it was at a commit (``git show REV:path``), without a checkout.

Used by ``--trt-ab-confirm`` to rebuild the model a baseline was measured
with. Every way this can fail in CI (no git, a shallow clone, a file moved
since, a Git LFS pointer) becomes one line that says what to do.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

#: Seconds a git command may take (``git show`` of a large model included).
GIT_TIMEOUT_S = 120.0
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


class Unavailable(Exception):
    """The file cannot be had as it was; the message is one line for the user."""


def run_git(cwd: Path, *args: str, stdin: bytes | None = None, timeout: float = GIT_TIMEOUT_S) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` in ``cwd``, output as bytes; a missing git or one that
    hangs past ``timeout`` is :class:`Unavailable` with one line (the one
    runner of git for relative/: file reads here, worktrees in worktree.py)."""
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=timeout, check=False,
                              input=stdin)
    except FileNotFoundError:
        raise Unavailable("git is not installed here") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"git {args[0]} took longer than {timeout:.0f} s") from None


def file_at_commit(path: Path, commit: str) -> bytes:
    """The bytes of ``path`` (a file in a git work tree) at ``commit``."""
    path = Path(path).resolve()
    short = commit[:12]
    if not re.fullmatch(r"[0-9a-fA-F]{4,64}", commit or ""):
        raise Unavailable(f"{commit!r} is not a commit id")
    top = run_git(path.parent, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise Unavailable(f"{path.name} is not in a git work tree")
    root = Path(top.stdout.decode().strip()).resolve()
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        raise Unavailable(f"{path} is outside the git work tree {root}") from None
    if run_git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        shallow = run_git(root, "rev-parse", "--is-shallow-repository").stdout.decode().strip() == "true"
        if shallow:
            raise Unavailable(f"commit {short} is not in this shallow clone; fetch the history "
                              f"(git fetch --unshallow, or actions/checkout with fetch-depth: 0)")
        raise Unavailable(f"commit {short} is not in this repository; fetch it (git fetch origin {short})")
    shown = run_git(root, "show", f"{commit}:{rel}")
    if shown.returncode != 0:
        raise Unavailable(f"{rel} did not exist at commit {short} (moved or renamed since?)")
    if shown.stdout.startswith(_LFS_POINTER):
        # git show gives LFS's pointer; git lfs smudge turns it into the file when git-lfs can get it.
        smudged = run_git(root, "lfs", "smudge", "--", rel, stdin=shown.stdout)
        if smudged.returncode != 0 or not smudged.stdout or smudged.stdout.startswith(_LFS_POINTER):
            raise Unavailable(f"{rel} at commit {short} is a Git LFS pointer and git lfs could not fetch the file "
                              f"(install git-lfs; git lfs fetch)")
        return smudged.stdout
    return shown.stdout
