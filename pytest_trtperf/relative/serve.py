"""The reference process's side of ``--trt-ab`` (see ``reference_process.py``).

The process is an ordinary pytest session at the reference revision (or in
the reference environment) whose test loop is driven by the judging
session: it runs the test it is told to run, fixtures and body for real; each
measurement there is set up, announced (``ready``) and then run one block at
a time on request, instead of being measured and judged here. Between two
measurements the body waits for ``go``, so nothing runs here while the
judging session measures. Nothing is read from or written to baselines.

If the judging session dies (a killed xdist worker), the socket closes: this
process removes its worktree and ends.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import socket
import subprocess
import sys
from typing import Any
from collections.abc import Callable, Sequence

from pytest_trtperf.core.workload import clock_of
from pytest_trtperf.relative.protocol import FD_ENV, VERSION, Channel, ChannelClosed, pack_batch
from pytest_trtperf.relative.cpu_slices import time_slices

#: Packages whose versions the reference reports (its environment, in the result).
PACKAGES = ("pytest", "numpy", "torch", "tensorrt", "tensorrt_rtx", "cuda-python")


def plugin_args() -> list[str]:
    """``-p pytest_trtperf.plugin.hooks`` for a pytest process in an environment
    where this package is importable but not installed (no ``pytest11`` entry
    point: a reference interpreter, a lent machine with only ``PYTHONPATH``),
    where pytest would otherwise refuse every ``--trt-*`` option; nothing
    where the entry point loads it already (a second registration is an error)."""
    import importlib.metadata

    if any(ep.value.startswith("pytest_trtperf") for ep in importlib.metadata.entry_points(group="pytest11")):
        return []
    return ["-p", "pytest_trtperf.plugin.hooks"]


def main(args: Sequence[str]) -> int:
    """Entry of the reference process (``reference_process._BOOT``): pytest
    with this plugin loaded (by its entry point, or explicitly when the
    environment does not have it installed) and never with xdist workers."""
    import importlib.util

    import pytest

    extra = plugin_args()
    if importlib.util.find_spec("xdist") is not None:
        extra += ["-n", "0"]
    return int(pytest.main([*extra, *args]))


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def remove_own_worktree() -> None:
    """The judging session is gone: remove the worktree it made for us."""
    import shutil

    from pytest_trtperf.relative.reference_process import REPOSITORY_ENV, SCRATCH_ENV, WORKTREE_ENV

    scratch = os.environ.get(SCRATCH_ENV)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)

    tree, repo = os.environ.get(WORKTREE_ENV), os.environ.get(REPOSITORY_ENV)
    if not tree or not repo:
        return
    try:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=repo, capture_output=True, timeout=60,
                       check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass
    shutil.rmtree(os.path.dirname(tree), ignore_errors=True)


class Server:
    """This end of the socket."""

    def __init__(self, fd: int) -> None:
        os.environ.pop(FD_ENV, None)  # processes the tests start are not references
        self.channel = Channel(socket.socket(fileno=fd))

    def _recv(self) -> dict[str, Any]:
        try:
            return self.channel.recv(None)
        except ChannelClosed:
            self._gone()
        raise AssertionError("unreachable")

    def _gone(self) -> None:
        """The judging session died, or quit in the middle of a test: end now."""
        remove_own_worktree()
        os._exit(0)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except ChannelClosed:
            self._gone()

    def session(self, items: Sequence[str], errors: Sequence[str], run_test: Callable[[str], tuple[str, str]]) -> None:
        """Say hello, then run the tests asked for until ``quit``."""
        self._send({"op": "hello", "version": VERSION, "items": list(items), "errors": list(errors),
                    "python": sys.executable, "python_version": platform.python_version(),
                    "packages": _versions()})
        while True:
            try:
                msg = self.channel.recv(None)
            except ChannelClosed:
                remove_own_worktree()
                return
            op = msg.get("op")
            if op == "quit":
                return
            if op == "test":
                outcome, message = run_test(str(msg.get("nodeid")))
                self._send({"op": "test_done", "outcome": outcome, "message": message[:500]})

    def serve(self, rid: str, workload: Any) -> list[Any]:
        """Announce the set-up ``workload`` and run blocks until ``done`` or
        ``skip`` (then one iteration, so the test still gets a result)."""
        self._send({"op": "ready", "rid": rid, "kind": workload.kind, "clock": clock_of(workload),
                    "inferences_per_iteration": int(getattr(workload, "inferences_per_iteration", 1)),
                    "identity": _jsonable(dict(workload.identity())), "notes": list(workload.notes())})
        chunks: list[Any] = []
        while True:
            msg = self._recv()
            op = msg.get("op")
            if op == "run":
                before = time_slices()
                try:
                    batch = workload.run(max(int(msg.get("n", 1)), 1))
                except Exception as e:
                    self._send({"op": "error", "message": f"{type(e).__name__}: {e}"[:300]})
                    raise
                after = time_slices()
                chunks.append(batch)
                self._send({**pack_batch(batch), "time_slices": after - before if before is not None and
                            after is not None else None})
            elif op == "memory":
                self._send({"op": "figures", "figures": _figures(workload)})
            elif op == "done":
                return chunks
            elif op == "skip":
                return chunks or [workload.run(1)]
            elif op == "quit":
                self._gone()

    def released(self) -> None:
        """Torn down: say so, then wait until the judging session lets the body go on."""
        self._send({"op": "released"})
        while True:
            op = self._recv().get("op")
            if op == "go":
                return
            if op == "quit":
                self._gone()


def _figures(workload: Any) -> dict[str, int]:
    from pytest_trtperf.core.memory import MemoryWorkload

    if not isinstance(workload, MemoryWorkload):
        return {}
    try:
        return {str(k): int(v) for k, v in workload.memory_figures().items()}
    except Exception:  # a figure the reference cannot read is left out; the timing still counts
        return {}


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


class Serving:
    """The runner's stand-in in a reference process (``pipeline.runner.StandIn``):
    every measurement is served to the judging session, not judged here."""

    reported = False

    def __init__(self, server: Server) -> None:
        self.server = server

    def measure(self, runner: Any, workload: Any, target: Any, opts: Any, side: str) -> Any:
        return served_result(self.server, workload, rid=target.id, nodeid=target.nodeid, name=target.name,
                             location=target.location, fingerprint=runner.fingerprint(workload),
                             metric=opts.metric, tolerance=opts.tolerance, mode=opts.mode)


def served_result(server: Server, workload: Any, *, rid: str, nodeid: str, name: str | None,
                  location: tuple[str, int] | None, fingerprint: Any, metric: str, tolerance: float,
                  mode: str) -> Any:
    """A measurement of a test body run as the reference: set up, served,
    torn down; its result (the reference's own blocks, verdict ``off``) is
    what the body there gets back."""
    import numpy as np

    from pytest_trtperf.core import stats
    from pytest_trtperf.core.identity import config_hash
    from pytest_trtperf.core.results import DeviceState, Result, Verdict

    workload.setup()
    try:
        mode = mode if clock_of(workload) != "host" else "latency"
        identity = {"kind": workload.kind, "mode": mode, **dict(workload.identity())}
        chunks = server.serve(rid, workload)
        notes = tuple(workload.notes())
    finally:
        try:
            workload.teardown()
        finally:
            server.released()
    latency = np.concatenate([np.asarray(c.latency_s, dtype=np.float64) for c in chunks])
    wall = float(sum(c.wall_s for c in chunks))
    inferences = len(latency) * max(int(getattr(workload, "inferences_per_iteration", 1)), 1)
    result = Result(
        id=rid, nodeid=nodeid, name=name, kind=workload.kind, clock=clock_of(workload), mode=mode,
        latency=stats.summarize(latency),
        throughput=inferences / wall if wall > 0 else 0.0, distribution=stats.compress(latency),
        stop_reason="served", warmup_iterations=0, warmup_s=0.0, measured_s=wall, config_hash=config_hash(identity),
        identity=identity, fingerprint=fingerprint.to_dict(), device_class=fingerprint.device_class,
        device_state=DeviceState(kind=workload.kind), notes=notes, location=location)
    verdict = Verdict(status="off", metric=metric, tolerance=tolerance, current_value=result.metric_value(metric),
                      message=f"{rid}: served as the reference of a side-by-side run")
    return dataclasses.replace(result, verdict=verdict)
