"""The plugin's own tests run pytest inside pytest (pytester).

Those inner runs must see pytest-trtperf, pytest-xdist and pytest itself, not
whatever else is installed next to them: pytest-benchmark writes
``.benchmarks/`` into the test directory, pytest-randomly reorders and
reseeds, coverage and timeout plugins add output. Each inner run blocks the
third-party plugins known to interfere (blocking one that is not installed is
harmless); tests that need a clean environment clear ``PYTEST_ADDOPTS``
themselves.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]

#: Third-party plugins that change what an inner run writes, prints or orders.
INTERFERING = ("benchmark", "randomly", "cov", "sugar", "timeout", "rerunfailures", "instafail", "html")


@pytest.fixture(autouse=True)
def _isolate_inner_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts: set ours after
    blocks = " ".join(f"-p no:{name}" for name in INTERFERING)
    monkeypatch.setenv("PYTEST_ADDOPTS", blocks)


@pytest.fixture
def load() -> Iterator[list[int]]:
    """Busy-looping processes, two more than this machine's CPUs (tests of
    windows measured on a loaded host); their pids."""
    from pytest_trtperf.core.host_state import cpu_cores

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpu_cores() + 2)]
    time.sleep(0.3)  # let them start spinning
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)
