"""Every file the plugin reads goes through the hardened reader, and the
git-ignore helper never ignores a directory it did not create (issue 25 item 6).

Real files: a FIFO as an engine cache's ``<key>.json`` hung the session; a
``<key>.plan`` symlink to /dev/zero read until 5.5 GB of memory; the clock
state files read the same way. Each read here runs in a thread with a
deadline, so a regression fails instead of hanging the suite; a symlink to a
FIFO stands for the symlink to /dev/zero (a regression reading /dev/zero
would eat this shared machine's memory before the deadline).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from pytest_trtperf.trt.engine_cache import EngineCache


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        # Unblock a reader stuck on the FIFO so the daemon thread can end.
        pytest.fail(f"did not return within {seconds} s (a blocking or unbounded read)")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def _unblock(fifo: Path) -> None:
    """Open the FIFO's write end so a reader blocked on it returns."""
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)


@pytest.mark.parametrize("plant", ["fifo-meta", "linked-plan", "fifo-plan"])
def test_an_engine_cache_entry_that_is_not_a_regular_file_is_rebuilt(tmp_path: Path, plant: str) -> None:
    cache = EngineCache(tmp_path / "engines")
    entry = cache.put("k" * 32, b"plan bytes", {"inputs": []})
    plan, meta = cache.paths(entry.key)
    target = meta if plant == "fifo-meta" else plan
    target.unlink()
    if plant == "linked-plan":
        os.mkfifo(tmp_path / "elsewhere")
        target.symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(target)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = _within(10, lambda: cache.get(entry.key))
    finally:
        try:
            _unblock(tmp_path / "elsewhere" if plant == "linked-plan" else target)
        except OSError:
            pass
    assert got is None
    assert any("not a regular file" in str(w.message) for w in seen), [str(w.message) for w in seen]


def test_the_gitignore_helper_never_ignores_a_directory_it_did_not_create(tmp_path: Path) -> None:
    """``--trt-engine-cache=<existing dir>`` wrote a .gitignore of ``*`` there:
    new models in it became invisible to git."""
    existing = tmp_path / "models"
    existing.mkdir()
    (existing / "vit.onnx").write_bytes(b"onnx")
    EngineCache(existing).put("k" * 32, b"plan", {})
    assert not (existing / ".gitignore").exists()
    fresh = tmp_path / "fresh" / "engines"
    EngineCache(fresh).put("k" * 32, b"plan", {})
    assert (fresh / ".gitignore").read_text() == "*\n"


def test_clock_state_files_are_read_through_the_hardened_reader(tmp_path: Path) -> None:
    from pytest_trtperf.gpu import clocks

    good = tmp_path / f"{clocks.STATE_PREFIX}good.json"
    good.write_text(json.dumps({"pid": 1, "gpus": []}))
    fifo = tmp_path / f"{clocks.STATE_PREFIX}fifo.json"
    os.mkfifo(fifo)
    (tmp_path / f"{clocks.STATE_PREFIX}linked.json").symlink_to(fifo)
    try:
        found = _within(10, lambda: clocks._state_files(tmp_path))
    finally:
        for _ in range(2):
            try:
                _unblock(fifo)
            except OSError:
                pass
    assert [p.name for p, _ in found] == [good.name]


def test_state_and_leftover_files_are_ignored_by_git(pytester: pytest.Pytester) -> None:
    """``.trtperf/.state/cpu.lock`` and what a killed write leaves behind were
    not git-ignored; the baseline files themselves must stay visible."""
    from gitrepo import init

    from helpers import QUICK, spin_test
    from pytest_trtperf.gpu.pinning import GpuLock

    init(pytester.path)
    pytester.makepyfile(test_perf=spin_test())
    pytester.runpytest(*QUICK, "--trt-baseline=update").assert_outcomes(passed=1)
    d = pytester.path / ".trtperf"
    (baseline_file,) = d.glob("*.json")
    with GpuLock.for_cpu(d / ".state").hold():
        pass
    leftovers = [d / f".{baseline_file.name}.k3j2.tmp", d / ".trtperf.lock.owner", d / ".state" / "cpu.lock"]
    for p in leftovers[:2]:
        p.write_text("x")
    import subprocess

    def ignored(p: Path) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", str(p)], cwd=pytester.path).returncode == 0

    assert all(ignored(p) for p in leftovers), [(p.name, ignored(p)) for p in leftovers]
    assert not ignored(baseline_file)
