"""One slot per CPU, shared between the pytest-xdist workers of one session.

The README's command runs one more worker than this 2-core machine has CPUs.
A test that computes holds a slot while it runs (set-up and tear-down too), so
no more tests compute at once than there are CPUs, as under ``-n 2``: the
measured windows of the inner sessions keep a core each. A ``mostly_waits``
test (open-loop services that sleep, lock timeouts) holds none: it runs on the
extra worker beside two computing ones, on the core time they leave, which
under ``-n 2`` was one idle core for every second such a test waited.

Real ``flock`` locks on files in the session's temporary directory: the
workers are separate processes. A worker holds at most one slot. A test that
needs the host lock of ``host_share.py`` too gives its slot back while it
waits for the host (``released``) and takes one again once it holds the
host: the host is always taken first, so no two workers wait on each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO

import pytest

from pytest_trtperf.core.host_state import cpu_cores

#: How long a worker that found every slot taken sleeps before it looks again.
POLL_S = 0.005


class CpuSlots:
    def __init__(self, directory: Path, count: int) -> None:
        self._files = [(directory / f"trtperf-cpu-slot-{i}.lock").open("a+") for i in range(max(1, count))]
        self._held: list[IO[str]] = []

    def take(self) -> None:
        """Hold a free slot; wait (polling) while every one is held."""
        assert not self._held, "this worker holds a slot already"
        while True:
            for f in self._files:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                self._held = [f]
                return
            time.sleep(POLL_S)

    def take_all(self) -> None:
        """Hold every slot: wait for each in turn, in one order for every
        worker, so two workers taking all cannot each hold part."""
        assert not self._held, "this worker holds a slot already"
        for f in self._files:
            fcntl.flock(f, fcntl.LOCK_EX)
            self._held.append(f)

    def holds(self) -> int:
        """How many slots this worker holds."""
        return len(self._held)

    def give_back(self) -> None:
        for f in self._held:
            fcntl.flock(f, fcntl.LOCK_UN)
        self._held = []

    def close(self) -> None:
        self.give_back()
        for f in self._files:
            f.close()


class SlotPerTest:
    """The pytest side: a test holds a slot from its set-up to its tear-down,
    every slot if it is marked ``whole_cpu``, none if ``mostly_waits``."""

    def __init__(self, slots: CpuSlots) -> None:
        self._slots = slots

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
        if waits(item):
            return (yield)
        self._take(all_of_them=item.get_closest_marker("whole_cpu") is not None)
        try:
            return (yield)
        finally:
            self._slots.give_back()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._slots.close()

    def _take(self, all_of_them: bool) -> None:
        if all_of_them:
            self._slots.take_all()
        else:
            self._slots.take()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        held = self._slots.holds()
        self._slots.give_back()
        try:
            yield
        finally:
            if held:
                self._take(all_of_them=held > 1)


#: The name the worker's SlotPerTest is registered under.
PLUGIN = "trtperf-cpu-slots"


def released(config: pytest.Config) -> contextlib.AbstractContextManager[None]:
    """No slot held inside (taken again after): for waiting on the host lock
    of ``host_share.py``. Whoever needs both takes the host first, so no slot
    holder ever waits for the host, and a test that waits for busy loops to
    end leaves its core to another test meanwhile."""
    plugin = config.pluginmanager.get_plugin(PLUGIN)
    return plugin.released() if isinstance(plugin, SlotPerTest) else contextlib.nullcontext()


def schedule(items: list[pytest.Item], workers: int) -> None:
    """Order the collection, in place, for pytest-xdist's worksteal with
    ``workers`` workers (stable within each group).

    Worksteal hands each worker a contiguous share of the collection (the
    first ``len // workers`` items to one worker, the next to another ...)
    and later moves the tail of the longest queue to an idle worker; a head
    stays where it is. So:

    * the first worker's share starts with the tests that start the ``load``
      fixture's busy loops, then the ``mostly_waits`` tests: the loaded
      windows run first, one after another, and the waiting tests (most need
      a quiet host) after them. Anywhere else a loaded test waited for a
      quiet waiting test to end, or a quiet test for the loops, with a core
      idle each time; waiting tests spread through the run ran two or three
      at once or last;
    * the second worker's share starts with the ``long`` tests, which run
      while the first worker is on the loaded and the waiting tests, not
      after them."""
    loaded = [item for item in items if loads(item)]
    waiting = [item for item in items if waits(item) and not loads(item)]
    long = [item for item in items if item.get_closest_marker("long") is not None
            and not loads(item) and not waits(item)]
    placed = {id(item) for item in (*loaded, *waiting, *long)}
    rest = [item for item in items if id(item) not in placed]
    first = max(len(items) // max(workers, 1) - len(loaded) - len(waiting), 0)
    items[:] = loaded + waiting + rest[:first] + long + rest[first:]


def loads(item: pytest.Item) -> bool:
    """Starts the ``load`` fixture: requests it, or is marked ``under_load``
    (a test that starts it part-way, ``request.getfixturevalue("load")``)."""
    return "load" in getattr(item, "fixturenames", ()) or item.get_closest_marker("under_load") is not None


def waits(item: pytest.Item) -> bool:
    """Marked ``mostly_waits``: holds no slot."""
    return item.get_closest_marker("mostly_waits") is not None


def install(config: pytest.Config, count: int | None = None) -> None:
    """Under xdist, give this worker the session's slots (``count``, or one
    per CPU this process may run on, the plugin's own count): xdist makes each worker's basetemp ``<session's basetemp>/gwN``,
    so their parent is the one directory all workers share."""
    basetemp = getattr(config.option, "basetemp", None)
    if os.environ.get("PYTEST_XDIST_WORKER") and basetemp:
        slots = CpuSlots(Path(basetemp).parent, cpu_cores() if count is None else count)
        config.pluginmanager.register(SlotPerTest(slots), PLUGIN)
