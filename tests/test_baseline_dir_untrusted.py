"""The baseline directory arrives through pull requests (issue 16 item 4):
only regular files up to the size limit are read, never a FIFO, a device or
a link loop; files that are not ours are skipped with a note; the directory
must be a directory. Real files, FIFOs and links; pytest runs under pytester."""

from __future__ import annotations

import functools
import json
import os
import threading
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from helpers import QUICK, spin_test, make_result, run_inner
from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.errors import BaselineFileError
from pytest_trtperf.core.fingerprint import host_fingerprint

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and links")


def finishes(fn: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) when it
    does not return in ``seconds``. Exceptions come back to the caller."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn} did not return within {seconds} s (hung on a FIFO or a device?)"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def hostile_directory(d: Path) -> dict[str, str]:
    """Every kind of non-file under a ``*.json`` name; returns name -> expected reason."""
    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / "fifo.json")
    (d / "zero.json").symlink_to("/dev/zero")
    (d / "loop.json").symlink_to("loop.json")
    (d / "dangling.json").symlink_to("nowhere.json")
    (d / "dir.json").mkdir()
    with open(d / "huge.json", "wb") as f:  # sparse: no disk, but over the limit
        f.truncate(baseline.MAX_FILE_BYTES + 1)
    return {"fifo.json": "a FIFO", "zero.json": "a character device", "loop.json": "symbolic link loop",
            "dangling.json": "symbolic link to nothing", "dir.json": "a directory", "huge.json": "over the limit"}


def test_non_files_are_skipped_with_notes_and_never_opened(tmp_path: Path) -> None:
    d = tmp_path / "b"
    expected = hostile_directory(d)
    store = baseline.BaselineStore(d)
    store.write([make_result("t.py::a")], timestamp="T", git_commit=None)
    finishes(store.validate_all)
    for name, why in expected.items():
        (note,) = [n for n in store.notes if n.startswith(f"ignored {name} ")]
        assert why in note and "\n" not in note
    assert store.lookup(host_fingerprint().device_class, "t.py::a") is not None


@pytest.mark.parametrize("kind", ["fifo", "zero", "loop", "dangling", "huge"])
def test_our_own_file_as_a_non_file_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    store = baseline.BaselineStore(tmp_path)
    path = store.path_for(host_fingerprint().device_class)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("gone.json")
    else:
        with open(path, "wb") as f:
            f.truncate(baseline.MAX_FILE_BYTES + 1)
    with pytest.raises(BaselineFileError) as e:
        finishes(lambda: store.lookup(host_fingerprint().device_class, "t.py::a"))
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    # ... and an update refuses to replace it (a loop is never written through).
    with pytest.raises(BaselineFileError):
        finishes(lambda: store.write([make_result("t.py::a")], timestamp="T", git_commit=None))
    assert os.path.lexists(path)


def test_a_regular_file_within_the_limit_is_read_and_one_over_it_is_not(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result("t.py::a")], timestamp="T", git_commit=None)
    assert baseline.read_file(path).entries
    body = path.read_bytes().rstrip()
    # Trailing spaces keep the JSON valid; one byte over the limit is refused unread.
    path.write_bytes(body + b" " * (baseline.MAX_FILE_BYTES - len(body)) + b"\n")
    assert path.stat().st_size == baseline.MAX_FILE_BYTES + 1
    with pytest.raises(BaselineFileError, match="over the limit of 32.0 MiB"):
        baseline.read_file(path)
    path.write_bytes(body + b" " * (baseline.MAX_FILE_BYTES - len(body) - 1) + b"\n")
    assert path.stat().st_size == baseline.MAX_FILE_BYTES
    assert baseline.read_file(path).entries


def test_foreign_json_is_skipped_and_ours_is_not(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    (ours,) = store.write([make_result("t.py::a")], timestamp="T", git_commit=None)
    (tmp_path / "package.json").write_text(json.dumps({"name": "web", "version": "1.0.0"}))
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "other.json").write_text(json.dumps({"schema_version": 3, "tool": {"name": "renovate"}}))
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 1, "session": {}, "results": [],
                                                       "tool": {"name": "pytest-trtperf"}}))
    assert baseline.foreign_reason(ours) is None
    store.validate_all()
    reasons = {n.split()[1]: n for n in store.notes}
    assert set(reasons) == {"package.json", "list.json", "other.json", "results.json"}
    assert "not a pytest-trtperf baseline" in reasons["package.json"]
    assert "'renovate'" in reasons["other.json"] and "--trt-json" in reasons["results.json"]
    # A broken file is ours (a baseline cut short or left with conflict markers): it stops the session.
    (tmp_path / "conflict.json").write_text('<<<<<<< HEAD\n{"schema_version": 1}\n=======\n')
    with pytest.raises(BaselineFileError, match="conflict.json has unresolved merge-conflict markers"):
        baseline.BaselineStore(tmp_path).validate_all()


@pytest.mark.parametrize("device_class", [
    host_fingerprint().device_class,
    "host Intel(R) Xeon(R) Platinum 8480+ CPython",
    "NVIDIA H100 80GB HBM3 sm90",
    "NVIDIA H100 80GB HBM3 sm90 trt10.13",
    "NVIDIA GeForce RTX 5090 sm120 trtrtx1.7",
    "NVIDIA A100-SXM4-80GB (MIG 1g.10gb) sm80 trt10.8",
    "NVIDIA " + "Very Long Product Name " * 6 + "sm90 trt10.13",
])
def test_every_file_the_store_writes_is_ours_by_name(tmp_path: Path, device_class: str) -> None:
    """Ownership by name must cover every device class the package makes, so
    this device class's file is never skipped as someone else's."""
    path = baseline.BaselineStore(tmp_path).path_for(device_class)
    assert baseline.owned_name(path), path.name
    os.mkfifo(path)
    assert baseline.foreign_reason(path) is None  # ours, so read_file refuses it (exit 4), never skipped
    with pytest.raises(BaselineFileError, match="is a FIFO"):
        finishes(baseline.BaselineStore(tmp_path).validate_all)


def test_invalid_json_is_ours_only_by_name_or_header(tmp_path: Path) -> None:
    """With --trt-baseline-dir=. a JSONC tsconfig.json is not valid JSON: it is
    someone else's (skipped with a note), while a file named as ours or
    carrying our header that does not parse is a broken baseline."""
    (tmp_path / "tsconfig.json").write_text('{\n  // comments are JSONC\n  "compilerOptions": {"strict": true},\n}\n')
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    store = baseline.BaselineStore(tmp_path)
    store.validate_all()
    assert sorted(n.split()[1] for n in store.notes) == ["binary.json", "tsconfig.json"]
    assert all("not valid JSON" in n and "delete" not in n for n in store.notes), store.notes
    ours = store.path_for(host_fingerprint().device_class)
    ours.write_text('{"device_class": "host x", "results": {')  # cut short
    with pytest.raises(BaselineFileError, match="is truncated"):
        baseline.BaselineStore(tmp_path).validate_all()
    ours.unlink()
    (tmp_path / "renamed.json").write_text('<<<<<<< HEAD\n{"device_class": "host x"}\n=======\n')
    with pytest.raises(BaselineFileError, match="renamed.json has unresolved merge-conflict markers"):
        baseline.BaselineStore(tmp_path).validate_all()


def test_a_file_cut_in_half_is_truncated_and_garbage_is_corrupt(tmp_path: Path) -> None:
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result("t.py::a"), make_result("t.py::b")], timestamp="T", git_commit=None)
    full = path.read_bytes()
    cut_points = [len(full) // 2, len(full) // 3, len(full) - 5, 40]
    # A cut inside a string, a number, a key and between entries: all read as truncated.
    for cut in cut_points + [full.index(b'"quantiles_ms"') + 5, full.index(b"[", full.index(b'"quantiles_ms"')) + 4]:
        path.write_bytes(full[:cut])
        with pytest.raises(BaselineFileError, match="is truncated") as e:
            baseline.read_file(path)
        assert "\n" not in str(e.value)
    # Garbage that JSON rejects well before the end of the text: corrupt, not cut short (a cut
    # at half the file could fall inside a string, where appended brackets still read as a cut).
    opened = full.index(b"[", full.index(b'"quantiles_ms"')) + 1
    for garbage in (b"\x00\x01garbage", full[:opened] + b"}" + full[opened:]):
        path.write_bytes(garbage)
        with pytest.raises(BaselineFileError, match="is corrupt"):
            baseline.read_file(path)
    path.write_bytes(b"<<<<<<< HEAD\n" + full)  # named for what it is (issue 25)
    with pytest.raises(BaselineFileError, match="has unresolved merge-conflict markers"):
        baseline.read_file(path)


# -- end to end -----------------------------------------------------------------

#: None of these runs judges timing (a pass at 80% tolerance at most): the short windows. In this
#: process (pytester restores modules and the working directory): the claims are about files and messages.
run = functools.partial(run_inner, opts=QUICK)


def test_session_with_hostile_files_passes_with_notes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    hostile_directory(pytester.path / ".trtperf")
    r = run(pytester, "--trt-baseline=update")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["baseline written: *.json", "trtperf: note: ignored dangling.json *",
                            "trtperf: note: ignored fifo.json in the baseline directory: it is a FIFO*"])
    r = run(pytester, "--trt-tolerance=80%")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin*pass*", "trtperf: note: ignored zero.json *character device*"])


def test_baseline_dir_dot_with_package_json(pytester: pytest.Pytester) -> None:
    """--trt-baseline-dir=. in a JavaScript monorepo: package.json and a JSONC
    tsconfig.json (comments: not valid JSON) are not ours."""
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / "package.json").write_text('{"name": "web", "private": true}\n')
    (pytester.path / "tsconfig.json").write_text('{\n  // strict mode\n  "compilerOptions": {"strict": true}\n}\n')
    r = run(pytester, "--trt-baseline=update", "--trt-baseline-dir=.")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r = run(pytester, "--trt-baseline-dir=.", "--trt-tolerance=80%")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin*pass*"])
    assert "delete it" not in r.stdout.str() + r.stderr.str()
    notes = [line for line in r.stdout.lines if line.startswith("trtperf: note: ignored")]
    assert [n.split()[3] for n in notes] == ["package.json", "tsconfig.json"]


def test_trt_json_inside_the_baseline_directory_is_not_a_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    run(pytester, "--trt-baseline=update", "--trt-json=.trtperf/results.json").assert_outcomes(passed=1)
    assert (pytester.path / ".trtperf" / "results.json").is_file()
    r = run(pytester, "--trt-tolerance=80%", "--trt-json=.trtperf/results.json")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin*pass*",
                            "trtperf: note: ignored results.json in the baseline directory: it is a --trt-json*"])


@pytest.mark.parametrize("mode", ["compare", "update"])
@pytest.mark.parametrize("what", ["fifo", "zero", "list", "results-list"])
def test_this_device_class_file_unusable_is_exit_4_with_one_line(pytester: pytest.Pytester, mode: str,
                                                                 what: str) -> None:
    """This device class's own file as a FIFO, a device, ``[]`` or a
    ``--trt-json``-like document used to fail every test (exit 1) beside a note
    saying it was ignored; it is one unusable baseline: exit 4, one line."""
    pytester.makepyfile(test_perf=spin_test())
    path = baseline.BaselineStore(pytester.path / ".trtperf").path_for(host_fingerprint().device_class)
    path.parent.mkdir()
    if what == "fifo":
        os.mkfifo(path)
    elif what == "zero":
        path.symlink_to("/dev/zero")
    elif what == "list":
        path.write_text("[]\n")
    else:
        path.write_text('{"schema_version": 2, "device_class": "x", "results": []}\n')
    r = run(pytester, f"--trt-baseline={mode}")
    assert r.ret == 4, r.stdout.str()
    errors = [line for line in r.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and f"baseline file {path}" in errors[0], r.stderr.lines
    assert "ignored" not in r.stdout.str() + r.stderr.str() and "Traceback" not in r.stdout.str()
    assert os.path.islink(path) or not path.is_file() or path.read_text().startswith(("[]", '{"schema'))


@pytest.mark.parametrize("flag", ["--trt-json", "--trt-csv", "--trt-report"])
def test_an_output_on_the_baseline_file_is_a_usage_error(pytester: pytest.Pytester, flag: str) -> None:
    """``--trt-json`` pointing at the baseline file silently replaced the
    baseline just written."""
    pytester.makepyfile(test_perf=spin_test())
    run(pytester, "--trt-baseline=update", opts=QUICK).assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    before = path.read_bytes()
    for mode in ("update", "compare"):
        r = run(pytester, f"--trt-baseline={mode}", f"{flag}=.trtperf/{path.name}")
        assert r.ret == 4, r.stdout.str()
        errors = [line for line in r.stderr.lines if line.startswith("ERROR:")]
        assert len(errors) == 1 and f"{flag}=" in errors[0] and "would overwrite the baseline file" in errors[0]
        assert path.read_bytes() == before
    # The same through a link, and a baseline file of ours under another name.
    (pytester.path / "out.json").symlink_to(path)
    r = run(pytester, f"{flag}=out.json")
    assert r.ret == 4 and "would overwrite the baseline file" in r.stderr.str()
    (pytester.path / ".trtperf" / "copy.json").write_bytes(before)
    r = run(pytester, f"{flag}=.trtperf/copy.json")
    assert r.ret == 4 and "would overwrite the baseline file copy.json" in r.stderr.str()
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", ["compare", "update"])
@pytest.mark.parametrize("what", ["file", "loop", "dangling", "link-to-file"])
def test_baseline_dir_that_is_not_a_directory(pytester: pytest.Pytester, mode: str, what: str) -> None:
    """A dangling link used to pass compare with "no baseline", and update
    created the link's target outside the repository and wrote there."""
    pytester.makepyfile(test_perf=spin_test())
    target = pytester.path / "perfdata"
    outside = pytester.path / "outside" / "x"
    if what == "file":
        target.write_text("not a directory")
    elif what == "loop":
        target.symlink_to("perfdata")
    elif what == "dangling":
        target.symlink_to(outside)
    else:
        (pytester.path / "afile").write_text("not a directory")
        target.symlink_to("afile")
    r = run(pytester, f"--trt-baseline={mode}", "--trt-baseline-dir=perfdata")
    assert r.ret == 4, r.stdout.str()
    errors = [line for line in r.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "perfdata" in errors[0] and "--trt-baseline-dir" in errors[0], r.stderr.lines
    assert "Traceback" not in r.stdout.str() + r.stderr.str()
    assert os.path.islink(target) or target.read_text() == "not a directory"
    assert not (pytester.path / "outside").exists()


def test_baseline_dir_link_to_a_directory_and_relative_paths_still_work(pytester: pytest.Pytester) -> None:
    """A link to a real directory is followed; a relative path is resolved
    against the invocation directory, a parent that is a link included."""
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / "real" / "perf").mkdir(parents=True)
    (pytester.path / "perflink").symlink_to("real/perf")
    (pytester.path / "alias").symlink_to("real")
    run(pytester, "--trt-baseline=update", "--trt-baseline-dir=perflink").assert_outcomes(passed=1)
    assert len(list((pytester.path / "real" / "perf").glob("*.json"))) == 1
    r = run(pytester, "--trt-baseline-dir=alias/perf", "--trt-tolerance=80%")
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r.stdout.fnmatch_lines(["*test_perf.py::test_spin*pass*"])
