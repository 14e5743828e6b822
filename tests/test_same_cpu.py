"""Both measuring threads of a host side-by-side run share one CPU, for the
run only (``relative.same_cpu``), checked on a real second process's
affinity as Linux reports it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from pytest_trtperf.relative.same_cpu import current_cpu, one_cpu

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def test_this_thread_and_the_reference_share_one_cpu_then_get_their_masks_back(
        child: subprocess.Popen[bytes]) -> None:
    mine, theirs = os.sched_getaffinity(0), os.sched_getaffinity(child.pid)
    with one_cpu(child.pid) as cpu:
        assert cpu is not None and cpu in mine & theirs
        assert os.sched_getaffinity(0) == {cpu} and os.sched_getaffinity(child.pid) == {cpu}
        assert current_cpu() == cpu  # the pin holds for this thread at once
    assert os.sched_getaffinity(0) == mine and os.sched_getaffinity(child.pid) == theirs


def test_the_masks_come_back_when_the_run_fails(child: subprocess.Popen[bytes]) -> None:
    mine = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), one_cpu(child.pid):
        raise RuntimeError("the measurement failed")
    assert os.sched_getaffinity(0) == mine


def test_other_threads_are_not_pinned(child: subprocess.Popen[bytes]) -> None:
    """Only the measuring thread: a thread started before the run keeps its mask."""
    seen: list[set[int]] = []
    go, done = threading.Event(), threading.Event()

    def other() -> None:
        go.wait(30)
        seen.append(os.sched_getaffinity(0))
        done.set()

    t = threading.Thread(target=other)
    mask = os.sched_getaffinity(0)
    t.start()
    with one_cpu(child.pid):
        go.set()
        done.wait(30)
    t.join(30)
    assert seen == [mask]


def test_a_reference_that_is_gone_leaves_the_run_unpinned() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    mine = os.sched_getaffinity(0)
    with one_cpu(proc.pid) as cpu:
        assert cpu is None and os.sched_getaffinity(0) == mine
