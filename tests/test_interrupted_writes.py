"""Interrupted writes and stuck lock holders, with real processes (issue 16
item 6): SIGINT inside the write window exits 2 with the old file intact and
no traceback; SIGKILL there leaves a temporary file that the next session
removes with a note; a session waiting for a stopped lock holder names it
and gives up after --trt-lock-timeout with one line.

The write window is widened with ``TRTPERF_TEST_WRITE_PAUSE`` (files.PAUSE_ENV):
the writer prints one line to stderr and sleeps just before ``os.replace``.
The slow loops (random kill moments, races) are in bench/interrupts.py."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import FAST, spin_test
from pytest_trtperf.core.files import PAUSE_ENV

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

WINDOW = "trtperf-test: in the write window of "


class Session:
    """A pytest session in a real process, its output read line by line."""

    def __init__(self, cwd: Path, *args: str, pause: float | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in (PAUSE_ENV, "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
        if pause is not None:
            env[PAUSE_ENV] = str(pause)
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest", *FAST, "--color=no", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never came; output:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        rc = self.proc.wait(timeout)
        while (line := self._q.get(timeout=10)) is not None:
            self.lines.append(line)
        return rc, "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_perf=spin_test(17))
    r = pytester.runpytest_subprocess(*FAST, "--trt-baseline=update")
    assert r.ret == 0
    return pytester.path


def baseline_file(root: Path) -> Path:
    (path,) = [p for p in (root / ".trtperf").iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    return path


def leftovers(root: Path) -> list[str]:
    # .gitignore: the store writes it into a baseline directory it creates (issue 25).
    return sorted(p.name for p in (root / ".trtperf").iterdir() if p.name.startswith(".") and p.name != ".gitignore")


def test_sigint_in_the_write_window_exits_2_with_the_old_file(suite: Path) -> None:
    path = baseline_file(suite)
    before = path.read_bytes()
    s = Session(suite, "--trt-baseline=update", "--trt-json=r.json", pause=60)
    try:
        assert s.wait_for(WINDOW).endswith(path.name)
        s.proc.send_signal(signal.SIGINT)
        rc, out = s.finish()
    finally:
        s.kill()
    assert rc == 2, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert "baseline NOT written: interrupted (Ctrl-C) while writing" in out
    assert "interrupted (Ctrl-C) while writing outputs: --trt-json NOT written" in out
    assert path.read_bytes() == before
    assert leftovers(suite) == [] and not (suite / "r.json").exists()


def test_sigkill_leftover_is_removed_by_the_next_session(suite: Path) -> None:
    path = baseline_file(suite)
    before = path.read_bytes()
    s = Session(suite, "--trt-baseline=update", pause=60)
    try:
        s.wait_for(WINDOW)
        s.proc.kill()
        s.proc.wait(30)
    finally:
        s.kill()
    left = leftovers(suite)
    tmp = [n for n in left if n.endswith(".tmp")]
    assert len(tmp) == 1 and tmp[0].startswith(f".{path.name}."), left
    assert path.read_bytes() == before
    # A compare session finds it with nobody holding the lock, and removes it.
    r = subprocess.run([sys.executable, "-m", "pytest", *FAST, "--trt-tolerance=80%"], cwd=suite,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    assert f"temporary file(s) left by an interrupted write in {suite / '.trtperf'}: {tmp[0]}" in r.stdout
    assert [n for n in leftovers(suite) if n.endswith(".tmp")] == []


def test_update_removes_leftovers_under_the_lock(suite: Path) -> None:
    path = baseline_file(suite)
    stale = path.parent / f".{path.name}.k1ll3d.tmp"
    stale.write_text('{"half": ')
    r = subprocess.run([sys.executable, "-m", "pytest", *FAST, "--trt-baseline=update"], cwd=suite,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    assert f"removed 1 temporary file(s) left by an interrupted write in {path.parent}: {stale.name}" in r.stdout
    assert leftovers(suite) == []


def test_stopped_lock_holder_is_named_and_given_up_on(suite: Path) -> None:
    # How long an uncontended update takes here: the bound for the waiting one.
    t0 = time.monotonic()
    free = subprocess.run([sys.executable, "-m", "pytest", *FAST, "--trt-baseline=update"], cwd=suite,
                          capture_output=True, text=True, timeout=120)
    t_free = time.monotonic() - t0
    assert free.returncode == 0
    path = baseline_file(suite)
    holder = Session(suite, "--trt-baseline=update", pause=600)
    try:
        holder.wait_for(WINDOW)
        holder.proc.send_signal(signal.SIGSTOP)
        timeout = 4
        t0 = time.monotonic()
        waiter = subprocess.run([sys.executable, "-m", "pytest", *FAST, "--trt-baseline=update", "--color=no",
                                 f"--trt-lock-timeout={timeout}"], cwd=suite, capture_output=True, text=True,
                                timeout=120 + timeout)
        waited = time.monotonic() - t0
        before = path.read_bytes()
    finally:
        holder.kill()
    out = waiter.stdout
    assert waiter.returncode == 4, out
    assert "Traceback" not in out + waiter.stderr
    who = f"held by pid {holder.proc.pid} on host "
    notice = [line for line in out.splitlines() if line.startswith("trtperf: waiting for the lock")]
    assert len(notice) == 1 and who in notice[0] and f"giving up after {timeout} s" in notice[0]
    (error,) = [line for line in out.splitlines() if line.startswith("baseline NOT written:")]
    assert f"gave up after waiting {timeout} s for the lock" in error and who in error
    assert timeout <= waited < timeout + 3 * t_free + 2, (waited, t_free)
    # The killed holder's file was never replaced; its leftovers go with the next update.
    assert path.read_bytes() == before
    r = subprocess.run([sys.executable, "-m", "pytest", *FAST, "--trt-baseline=update"], cwd=suite,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and leftovers(suite) == [], r.stdout
