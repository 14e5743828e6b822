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

import contextlib
import importlib
import os
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import pytest_trtperf
import cpu_slots
from host_share import HostShare

pytest_plugins = ["pytester"]

#: Modules of the package that pull in CUDA, TensorRT or torch when imported;
#: the rest is what an inner session imports to measure, gate and report.
GPU_SIDE = ("pytest_trtperf.trt", "pytest_trtperf.gpu.", "pytest_trtperf.workloads.cuda",
            "pytest_trtperf.workloads.torch", "pytest_trtperf.workloads.tensorrt",
            "pytest_trtperf.workloads.capture_check", "pytest_trtperf.load.slots")
#: Optional GPU-side packages: which of them an inner session finds must not change here.
OPTIONAL = ("cuda", "tensorrt", "tensorrt_rtx", "torch", "pynvml", "matplotlib")


def _preload_host_modules() -> None:
    """Import once, in this process, what an in-process inner session imports
    after the plugin loads (its measuring, gating and reporting modules, and
    numpy.ma). pytester drops the modules a session imported when it ends, so
    each of ~150 inner sessions imported ~35 of them again: about a third of a
    short session's CPU, compiled from source where PYTHONDONTWRITEBYTECODE is
    set (as on CI). The GPU side stays out: an inner session still finds CUDA,
    TensorRT and torch exactly as it would without this."""
    had = {name for name in OPTIONAL if name in sys.modules}
    importlib.import_module("numpy.ma")
    for info in pkgutil.walk_packages(pytest_trtperf.__path__, "pytest_trtperf."):
        if info.name.startswith(GPU_SIDE) and info.name != "pytest_trtperf.gpu.window":
            continue
        importlib.import_module(info.name)
        pulled = {name for name in OPTIONAL if name in sys.modules} - had
        assert not pulled, f"{info.name} imports {sorted(pulled)}: add it to GPU_SIDE in tests/conftest.py"


_preload_host_modules()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_quiet_host: timed against bounds that busy loops on another xdist "
                                       "worker would break; runs only while no ``load`` fixture is active")
    config.addinivalue_line("markers", "mostly_waits: sleeps for most of its time (open-loop services, lock "
                                       "timeouts); holds no CPU slot (tests/cpu_slots.py)")
    config.addinivalue_line("markers", "under_load: starts the ``load`` fixture part-way (request.getfixturevalue); "
                                       "scheduled first (tests/cpu_slots.py)")
    config.addinivalue_line("markers", "whole_cpu: a statistic of its own measurements that another computing "
                                       "test beside it moves; holds every CPU slot (tests/cpu_slots.py)")
    cpu_slots.install(config)


@pytest.hookimpl(trylast=True)  # after the root conftest put the long tests first
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the order its controller schedules from
        cpu_slots.schedule(items, int(workerinput["workercount"]))


#: Third-party plugins that change what an inner run writes, prints or orders.
INTERFERING = ("benchmark", "randomly", "cov", "sugar", "timeout", "rerunfailures", "instafail", "html")


@pytest.fixture(autouse=True)
def _isolate_inner_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts: set ours after
    blocks = " ".join(f"-p no:{name}" for name in INTERFERING)
    monkeypatch.setenv("PYTEST_ADDOPTS", blocks)


@pytest.fixture(scope="session")
def host_share(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostShare]:
    """The lock files of this session's workers (tests/host_share.py): in the
    directory all of them create their temporary directories in."""
    base = tmp_path_factory.getbasetemp()
    share = HostShare(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
    yield share
    share.close()


@pytest.fixture(autouse=True)
def _quiet_neighbour(request: pytest.FixtureRequest) -> Iterator[None]:
    """``needs_quiet_host`` tests hold the host shared: no busy loops beside them."""
    if request.node.get_closest_marker("needs_quiet_host") is None:
        yield
        return
    share: HostShare = request.getfixturevalue("host_share")
    with cpu_slots.released(request.config):  # the host first, then a slot (tests/cpu_slots.py)
        share.share()
    try:
        yield
    finally:
        share.release()


@pytest.fixture
def load(host_share: HostShare, pytestconfig: pytest.Config) -> Iterator[list[int]]:
    """Busy-looping processes, two more than the CPUs this test may use (tests
    of windows measured on a loaded host); their pids. They start once no
    ``needs_quiet_host`` test runs on another worker, and none starts there
    until they are gone.

    Where the platform allows it, this test's thread (and so every thread and
    process it starts) and the loops share one CPU for the test's duration:
    three loops leave the test's thread a quarter of it (unpinned, four loops
    and a neighbour left it a third of one of two), and the other workers'
    tests keep the other CPUs. Unpinned, the loops took two thirds of both
    cores of the 2-core machine for every second a loaded test ran."""
    from pytest_trtperf.core.host_state import cpu_cores

    with cpu_slots.released(pytestconfig):  # the host first, then a slot (tests/cpu_slots.py)
        host_share.take()
    try:
        with _one_cpu():
            procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpu_cores() + 2)]
            time.sleep(0.3)  # let them start spinning
            try:
                yield [p.pid for p in procs]
            finally:
                for p in procs:
                    p.kill()
                for p in procs:
                    p.wait(timeout=30)
    finally:
        host_share.release()


@contextlib.contextmanager
def _one_cpu() -> Iterator[None]:
    """This thread on the last CPU of its affinity mask (inherited by what it
    starts), then back to the whole mask; nothing where affinity is not settable."""
    try:
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {max(mask)})
    except (AttributeError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, mask)
