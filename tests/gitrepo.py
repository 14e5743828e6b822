"""Real git repositories for tests (no mocks): init, commit, clone."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=trtperf tests", "-c", "user.email=tests@trtperf.invalid",
                          "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                         cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    return path


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")
