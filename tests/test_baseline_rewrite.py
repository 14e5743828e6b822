"""What ``update`` writes, the next run can read (issue 25 item 5), and a
broken baseline is named for what it is (item 6). Real files, real sessions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import QUICK, spin_test, make_result
from pytest_trtperf.baselines import store as baseline
from pytest_trtperf.core.errors import BaselineFileError
from test_baseline_validation import RID, written


def _one_line(path: Path) -> str:
    with pytest.raises(BaselineFileError) as e:
        baseline.read_file(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"baseline file {path}"), msg
    return msg


def test_a_huge_integer_is_one_line_not_internalerror(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    text = path.read_text()
    path.write_text(text.replace('"schema_version": 2', '"schema_version": 2, "x": ' + "9" * 5000))
    r = pytester.runpytest_subprocess(*QUICK, timeout=60)
    assert r.ret == 4 and "INTERNALERROR" not in r.stdout.str() + r.stderr.str(), r.stderr.str()
    r.stderr.fnmatch_lines([f"ERROR: baseline file {path} has a number with more than 4300 digits*"])


def test_lock_clocks_with_a_superscript_digit_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    r = pytester.runpytest_subprocess(*QUICK, "--trt-lock-clocks=\u00b2", timeout=60)
    assert r.ret == 4 and "INTERNALERROR" not in r.stdout.str() + r.stderr.str(), r.stderr.str()
    r.stderr.fnmatch_lines(["ERROR: --trt-lock-clocks='\u00b2' is not valid*"])


def test_duplicate_keys_are_refused_naming_the_key(tmp_path: Path) -> None:
    """A "keep both" merge left two entries under one id: the last silently won."""
    path = written(tmp_path)
    doc = json.loads(path.read_text())
    entry = json.dumps(doc["results"][RID])
    text = path.read_text().replace('"results": {', f'"results": {{"{RID}": {entry},', 1)
    path.write_text(text)
    msg = _one_line(path)
    assert f"has the key {RID!r} twice" in msg, msg


def test_a_bom_and_merge_conflict_markers_are_named(tmp_path: Path) -> None:
    path = written(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + raw)
    assert "starts with a UTF-8 byte-order mark" in _one_line(path)
    lines = raw.decode().splitlines(keepends=True)
    path.write_text("".join(lines[:5] + ["<<<<<<< HEAD\n"] + lines[5:8] + ["=======\n"] + lines[5:8]
                            + [">>>>>>> branch\n"] + lines[8:]))
    msg = _one_line(path)
    assert "unresolved merge-conflict markers (line 6)" in msg, msg


def test_update_keeps_fields_it_does_not_know(tmp_path: Path) -> None:
    """A newer plugin of the same schema wrote fields this one does not know:
    a rewrite keeps them (other entries' and the file's own)."""
    store = baseline.BaselineStore(tmp_path)
    (path,) = store.write([make_result(seed=0)], timestamp="T1", git_commit=None)
    doc = json.loads(path.read_text())
    doc["future"] = {"kept": True}
    doc["results"][RID]["future_field"] = [1, 2]
    path.write_text(json.dumps(doc))
    other = make_result(seed=1)
    other = type(other)(**{**other.__dict__, "id": "t.py::test_b"})
    baseline.BaselineStore(tmp_path).write([other], timestamp="T2", git_commit=None)
    after = json.loads(path.read_text())
    assert after["future"] == {"kept": True}
    assert after["results"][RID]["future_field"] == [1, 2]
    assert "t.py::test_b" in after["results"]


def test_update_refuses_a_file_the_next_run_could_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """33.4 MB in, 44.8 MB out, over the read limit: every later run exited 4.
    The limit is lowered here (a real 32 MiB file is slow to make); the
    writer checks what it wrote against the same limit the reader uses."""
    path = written(tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(baseline, "MAX_FILE_BYTES", len(before) + 100)
    many = [type(r)(**{**r.__dict__, "id": f"t.py::test_{i}"}) for i, r in enumerate([make_result(seed=0)] * 3)]
    with pytest.raises(BaselineFileError) as e:
        baseline.BaselineStore(tmp_path).write(many, timestamp="T2", git_commit=None)
    msg = str(e.value)
    assert "\n" not in msg and f"{path} NOT written" in msg and "over the" in msg and "--trt-baseline-dir" in msg, msg
    assert path.read_bytes() == before


def test_a_newer_schema_for_another_device_class_is_a_note(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    d = pytester.path / ".trtperf"
    d.mkdir()
    other = {"schema_version": 99, "device_class": "NVIDIA H100 sm90 trt10.13", "results": {},
             "tool": {"name": "pytest-trtperf", "version": "9.0"}}
    (d / "nvidia-h100-sm90-trt10.13.json").write_text(json.dumps(other))
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", timeout=60)
    assert r.ret == 0, r.stdout.str() + r.stderr.str()
    r.stdout.fnmatch_lines(["*nvidia-h100-sm90-trt10.13.json*schema 99*"])
    assert json.loads((d / "nvidia-h100-sm90-trt10.13.json").read_text()) == other
    assert len(list(d.glob("*.json"))) == 2


FILE_SIZE_LIMIT = '''
import resource
import signal

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    # A real write failure from the kernel (EFBIG, as a full disk gives ENOSPC):
    # files may not grow past 2000 bytes from here on.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
'''


def test_a_failed_baseline_write_names_the_path_and_counts_nothing_as_updated(pytester: pytest.Pytester) -> None:
    """Audit: "NOT written: [Errno 28] No space left on device" named no
    file, and the summary still said "1 updated"."""
    pytester.makepyfile(test_perf=spin_test())
    pytester.makeconftest(FILE_SIZE_LIMIT)
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", timeout=120)
    out = r.stdout.str()
    assert r.ret == 4, out + r.stderr.str()
    line = next(ln for ln in r.stdout.lines if "baseline NOT written" in ln)
    assert str(pytester.path / ".trtperf") in line and "File too large" in line, line
    assert "1 updated" not in out and "1 not written" in out, out
    assert not list((pytester.path / ".trtperf").glob("*.json"))


def test_an_unwritable_baseline_location_is_found_before_measuring(pytester: pytest.Pytester) -> None:
    """Audit: reported only after the whole suite measured. A path under a
    regular file cannot be created whoever runs (root included)."""
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / "afile").write_text("not a directory")
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", "--trt-baseline-dir=afile/baselines",
                                      timeout=120)
    assert r.ret == 4, r.stdout.str()
    r.stderr.fnmatch_lines(["ERROR: baseline directory *afile/baselines cannot be written: *afile is not a "
                            "directory*"])
    assert "test_perf.py" not in r.stdout.str()  # nothing measured


def test_a_newer_schema_for_this_device_class_still_stops_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)
    (path,) = (pytester.path / ".trtperf").glob("*.json")
    doc = json.loads(path.read_text())
    doc["schema_version"] = 99
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    for mode in ("compare", "update"):
        r = pytester.runpytest_subprocess(*QUICK, f"--trt-baseline={mode}", timeout=120)
        out = r.stdout.str() + r.stderr.str()
        assert r.ret != 0 and "schema 99" in out and "upgrade with pip install -U pytest-trtperf" in out, out
        assert "Traceback" not in out and "INTERNALERROR" not in out, out
        assert path.read_bytes() == before


def test_a_baseline_directory_linked_out_of_the_repository_is_not_written(pytester: pytest.Pytester,
                                                                          tmp_path_factory: pytest.TempPathFactory
                                                                          ) -> None:
    """A pull request can commit ``.trtperf`` as a symlink to anywhere; an
    update must not follow it out of the repository (a comment said it did not)."""
    outside = tmp_path_factory.mktemp("outside")
    pytester.makepyfile(test_perf=spin_test())
    (pytester.path / ".trtperf").symlink_to(outside, target_is_directory=True)
    r = pytester.runpytest_subprocess(*QUICK, "--trt-baseline=update", timeout=120)
    assert r.ret == 4, r.stdout.str()
    r.stderr.fnmatch_lines([f"ERROR: baseline directory {pytester.path / '.trtperf'} is a symbolic link to "
                            f"{outside}, outside the project*"])
    assert list(outside.iterdir()) == []
    inside = pytester.path / "real"
    inside.mkdir()
    (pytester.path / ".trtperf").unlink()
    (pytester.path / ".trtperf").symlink_to(inside, target_is_directory=True)
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)  # a link inside is fine
    assert list(inside.glob("*.json"))
