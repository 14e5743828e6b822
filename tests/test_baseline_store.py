"""The JSON store with real files: validation, merge, atomicity, locking."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from helpers import make_result
from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.core.fingerprint import host_fingerprint


def test_round_trip_and_merge(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result("t.py::a")], timestamp="T1", git_commit=None)
    store.write([make_result("t.py::b")], timestamp="T2", git_commit="f" * 40)
    f = baseline.read_file(path)
    assert set(f.entries) == {"t.py::a", "t.py::b"}
    assert f.entries["t.py::a"].timestamp == "T1" and f.entries["t.py::b"].git_commit == "f" * 40
    assert f.entries["t.py::a"].distribution == make_result("t.py::a").distribution
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp or lock files left


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result("t.py::a")], timestamp="T1", git_commit=None)
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(BaselineFileError) as e:  # one line naming the file (issue 25)
        store.write([make_result("t.py::b")], timestamp="T2", git_commit=None)
    assert str(e.value).startswith(f"{path}: No space left on device"), e.value
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_permissions_are_kept(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result("t.py::a")], timestamp="T1", git_commit=None)
    path.chmod(0o640)
    store.write([make_result("t.py::b")], timestamp="T2", git_commit=None)
    assert path.stat().st_mode & 0o777 == 0o640


def test_corrupt_file_is_refused_and_not_overwritten(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    path = store.path_for(host_fingerprint().device_class)
    path.write_text('{"schema_version": 1, "results": {"x": ')
    with pytest.raises(BaselineFileError, match="truncated"):
        store.write([make_result("t.py::a")], timestamp="T", git_commit=None)
    assert path.read_text() == '{"schema_version": 1, "results": {"x": '


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    for content in (b"", b"[1, 2]", b'{"schema_version": "one"}', b'{"schema_version": 7}', b"\xff\xfe"):
        p.write_bytes(content)
        with pytest.raises(BaselineFileError) as e:
            baseline.read_file(p)
        assert "\n" not in str(e.value) and str(p) in str(e.value)


def _writer(directory: str, i: int) -> None:
    store = baseline.BaselineStore(Path(directory))
    for j in range(5):
        store.write([make_result(f"t.py::w{i}_{j}")], timestamp="T", git_commit=None)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    (path,) = baseline.BaselineStore(tmp_path).files()
    ids = set(json.loads(path.read_text())["results"])
    assert ids == {f"t.py::w{i}_{j}" for i in range(4) for j in range(5)}


def test_file_names_are_safe_slugs(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    for cls in ("../../etc/passwd", "/abs", "NVIDIA H100 80GB HBM3 sm90 trt10.13", "名前" * 100, ".."):
        p = store.path_for(cls)
        assert p.parent == tmp_path and not p.name.startswith(".") and len(p.name) < 100


def test_distinct_classes_get_distinct_files(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    names = ["名前", "名字", "GPU/A", "GPU:A", "a" * 200, "a" * 199]
    assert len({store.path_for(n) for n in names}) == len(names)
    assert store.path_for("NVIDIA H100 sm90 trt10.13").name == "nvidia-h100-sm90-trt10.13.json"


def test_the_commit_recorded_is_head_now_not_an_earlier_call(tmp_path: Path) -> None:
    """Side by side measures the commit an entry names, so each write must
    name HEAD as it is then; one process can write twice with a commit in
    between (pytest.main twice, an IDE's runner)."""
    from gitrepo import commit_all, init
    from pytest_trtperf.core.fingerprint import git_commit

    repo = init(tmp_path / "repo")
    (repo / "a.txt").write_text("1")
    first = commit_all(repo, "first")
    assert git_commit(str(repo)) == first
    (repo / "a.txt").write_text("2")
    second = commit_all(repo, "second")
    assert git_commit(str(repo)) == second != first
