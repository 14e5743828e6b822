"""A file as it was at a commit, from real git repositories: the bytes, and
one line for every way CI makes it unavailable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitrepo import commit_all, git, init
from pytest_trtperf.relative.gitfiles import Unavailable, file_at_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """models/m.onnx at two commits: b"v1..." then b"v2..."."""
    r = init(tmp_path / "repo")
    (r / "models").mkdir()
    (r / "models" / "m.onnx").write_bytes(b"v1\x00\xff" * 1000)
    c1 = commit_all(r, "v1")
    (r / "models" / "m.onnx").write_bytes(b"v2\x00\xff" * 1000)
    c2 = commit_all(r, "v2")
    return r, c1, c2


def test_the_bytes_at_each_commit(repo: tuple[Path, str, str]) -> None:
    r, c1, c2 = repo
    model = r / "models" / "m.onnx"
    assert file_at_commit(model, c1) == b"v1\x00\xff" * 1000  # binary-safe
    assert file_at_commit(model, c2) == model.read_bytes()
    assert file_at_commit(model, c1[:10]) == b"v1\x00\xff" * 1000  # short ids work
    # a relative path from elsewhere, and the working tree left alone (no checkout)
    assert git(r, "status", "--porcelain") == ""


def test_shallow_clone_says_how_to_fetch(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    r, c1, _ = repo
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{r}", str(clone))
    with pytest.raises(Unavailable, match=rf"commit {c1[:12]} is not in this shallow clone; fetch the history "
                                          r"\(git fetch --unshallow, or actions/checkout with fetch-depth: 0\)"):
        file_at_commit(clone / "models" / "m.onnx", c1)


def test_a_moved_file(repo: tuple[Path, str, str]) -> None:
    r, c1, _ = repo
    git(r, "mv", "models/m.onnx", "models/renamed.onnx")
    commit_all(r, "rename")
    with pytest.raises(Unavailable, match=rf"^models/renamed.onnx did not exist at commit {c1[:12]} "
                                          r"\(moved or renamed since\?\)$"):
        file_at_commit(r / "models" / "renamed.onnx", c1)


def test_unknown_commit_outside_git_and_bad_ids(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    r, _, _ = repo
    with pytest.raises(Unavailable, match="commit 0123456789ab is not in this repository; fetch it"):
        file_at_commit(r / "models" / "m.onnx", "0123456789abcdef0123456789abcdef01234567")
    lone = tmp_path / "elsewhere" / "m.onnx"
    lone.parent.mkdir()
    lone.write_bytes(b"x")
    with pytest.raises(Unavailable, match="^m.onnx is not in a git work tree$"):
        file_at_commit(lone, "0123456789abcdef")
    with pytest.raises(Unavailable, match="is not a commit id"):
        file_at_commit(r / "models" / "m.onnx", "HEAD; rm -rf /")


def test_lfs_pointer_is_not_the_model(tmp_path: Path) -> None:
    r = init(tmp_path / "lfs")
    (r / "m.onnx").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 12\n")
    c = commit_all(r, "pointer")
    if shutil.which("git-lfs") is not None:
        pytest.skip("git-lfs installed: the pointer would be smudged")
    with pytest.raises(Unavailable, match=r"^m.onnx at commit \w{12} is a Git LFS pointer and git lfs could not "
                                          r"fetch the file"):
        file_at_commit(r / "m.onnx", c)
