"""The reference process, seen from the session that judges (``--trt-ab``).

One pytest process per session (per xdist worker) and per revision, started
when the first test needs it, in a temporary worktree of the revision (or in
this checkout, for ``--trt-ab-python`` alone) and with the reference's
interpreter. It collects the session's perf test files as they are there and
then runs, on request, the test this session is running: its fixtures and
body run for real, and each measurement in it is set up and then served
block by block (:class:`RemoteWorkload`), so this session can interleave it
with its own measurement through the ordinary interleaved loop.

What runs there is the code at the revision: the worktree's root (and
``src/``) come first on ``sys.path`` and ``PYTHONPATH``, before the
environment's site-packages (so an editable install of the project resolves
to the worktree); only the plugin itself is this session's (one ``pytest_trtperf``
link before everything), so both ends speak the same protocol and measure
the same way.

Everything that can go wrong (no git, a shallow clone, a failed setup
command, a process that crashes, hangs or collects other tests) ends as
:class:`~pytest_trtperf.relative.gitfiles.Unavailable` with one line; after
a crash or a hang the process is killed and the reason is kept, so the rest
of the session does not wait again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping, Sequence

from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import CLOCKS
from pytest_trtperf.relative.gitfiles import Unavailable
from pytest_trtperf.relative.protocol import FD_ENV, VERSION, Channel, ChannelClosed, ChannelTimeout, unpack_batch
from pytest_trtperf.relative.worktree import Worktree, prune_stale, repository_top, resolve, run_setup

#: The reference process learns its worktree from these (to remove it if its session dies).
WORKTREE_ENV = "TRTPERF_AB_WORKTREE"
REPOSITORY_ENV = "TRTPERF_AB_REPOSITORY"
SCRATCH_ENV = "TRTPERF_AB_SCRATCH"
#: What the reference process runs: this session's plugin first on sys.path, then the serve loop.
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from pytest_trtperf.relative.serve import main; sys.exit(main(sys.argv[2:]))")
#: Lines of the reference's output shown when it dies.
TAIL_LINES = 5
#: Seconds a reference process gets to end after ``quit`` before it is killed.
QUIT_WAIT_S = 10.0


class NotThere(Exception):
    """The measurement does not exist at the reference (a ``new`` test); the
    message is one line."""


@dataclass(frozen=True)
class ReferenceSpec:
    """What to start: ``rev`` as the user wrote it (None: this checkout),
    ``python`` (None: this interpreter), ``setup`` (``--trt-ab-setup``)."""

    rev: str | None
    python: Path | None
    setup: str | None
    timeout_s: float
    rootdir: Path
    #: Test files (rootdir-relative) of the session's perf tests.
    files: tuple[str, ...]
    forwarded: tuple[str, ...] = ()


def _own_process_group() -> dict[str, Any]:
    """A process group of its own (a terminal's Ctrl-C reaches this session,
    which stops the reference; ``killpg`` ends whatever it started) but the
    same session: a new session is a new scheduling group under Linux's
    autogroup, which would give the reference a fair share of the CPU of its
    own while this process shares one with the machine's other load (a loaded
    host then read the same code as 17 times slower here)."""
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    return {"preexec_fn": os.setpgrp}  # pragma: no cover - Python 3.10


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no output"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-TAIL_LINES:]) or "no output"


def _mapped(entries: Sequence[str], top: Path | None, tree: Path | None) -> list[str]:
    """``PYTHONPATH`` entries inside the user's repository point into the
    worktree instead (the same relative place); others stay."""
    out = []
    for e in entries:
        if not e:
            continue
        if top is not None and tree is not None:
            try:
                rel = Path(e).resolve().relative_to(top)
            except ValueError:
                pass
            else:
                e = str(tree / rel)
        out.append(e)
    return out


@dataclass
class RemoteWorkload:
    """A measurement set up in the reference process, as a
    :class:`~pytest_trtperf.core.workload.Workload`: ``run(n)`` asks for one
    block there and waits for its timings (the two processes take turns)."""

    process: ReferenceProcess
    kind: str
    inferences_per_iteration: int
    _identity: Mapping[str, Any]
    _notes: tuple[str, ...]
    released: bool = False
    #: Time slices each block ran in there (``cpu_slices.py``), one per ``run``.
    delays: list[int | None] = field(default_factory=list)
    #: The clock that times it there (``core.workload.clock_of``); None: its kind's.
    clock: str | None = None

    def setup(self) -> None:
        """Set up there before it said ``ready``."""

    def run(self, iterations: int) -> Any:
        batch, delay = self.process.block(int(iterations))
        self.delays.append(delay)
        return batch

    def teardown(self) -> None:
        if not self.released:
            self.released = True
            self.process.release()

    def identity(self) -> Mapping[str, Any]:
        return self._identity

    def notes(self) -> tuple[str, ...]:
        return self._notes

    def memory_figures(self) -> Mapping[str, int]:
        return self.process.memory()


@dataclass
class ReferenceProcess:
    spec: ReferenceSpec
    proc: subprocess.Popen[Any]
    channel: Channel
    log: Path
    scratch: Path
    worktree: Worktree | None
    commit: str | None
    items: frozenset[str] = frozenset()
    errors: tuple[str, ...] = ()
    #: The session's test files that do not exist there.
    absent_files: frozenset[str] = frozenset()
    environment: Mapping[str, Any] = field(default_factory=dict)
    broken: str | None = None
    #: The test running there, whether its body has returned, whether it waits for ``go``.
    test: str | None = None
    test_done: bool = True
    paused: bool = False

    # -- starting ---------------------------------------------------------------
    @classmethod
    def start(cls, spec: ReferenceSpec) -> ReferenceProcess:
        """Worktree, setup command, process, hello; :class:`Unavailable` with the cause."""
        top = tree = None
        worktree = None
        commit = None
        cwd = spec.rootdir
        if spec.rev is not None:
            top = repository_top(spec.rootdir)
            commit = resolve(top, spec.rev)
            prune_stale(top)
            worktree = Worktree.create(top, commit)
            tree = worktree.path
            cwd = tree / spec.rootdir.resolve().relative_to(top)
        try:
            what = f"the worktree of {spec.rev} ({commit[:12]})" if commit else "this checkout"
            if spec.setup is not None:
                run_setup(spec.setup, tree or cwd, timeout_s=spec.timeout_s, what=what)
            if not cwd.is_dir():
                raise Unavailable(f"the test directory {cwd.name} does not exist at {spec.rev}")
            return cls._spawn(spec, cwd=cwd, top=top, worktree=worktree, commit=commit)
        except BaseException:
            if worktree is not None:
                worktree.remove()
            raise

    @classmethod
    def _spawn(cls, spec: ReferenceSpec, *, cwd: Path, top: Path | None, worktree: Worktree | None,
               commit: str | None) -> ReferenceProcess:
        import pytest_trtperf

        scratch = Path(tempfile.mkdtemp(prefix="trtperf-ref-"))
        shim = scratch / "shim"
        shim.mkdir()
        (shim / "pytest_trtperf").symlink_to(Path(pytest_trtperf.__file__).resolve().parent,
                                             target_is_directory=True)
        tree = worktree.path if worktree is not None else None
        first = [str(tree), str(tree / "src")] if tree is not None else []
        env = dict(os.environ)
        env.pop(FD_ENV, None)
        env["PYTHONPATH"] = os.pathsep.join([str(shim), *first, *_mapped(
            env.get("PYTHONPATH", "").split(os.pathsep), top, tree)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if worktree is not None:
            env[WORKTREE_ENV], env[REPOSITORY_ENV] = str(worktree.path), str(worktree.top)
        env[SCRATCH_ENV] = str(scratch)
        ours, theirs = socket.socketpair()
        env[FD_ENV] = str(theirs.fileno())
        log = scratch / "reference.log"
        files = [f for f in spec.files if (cwd / f).exists()]
        if not files:  # nothing of the session's exists there: collect an empty directory, every test is new
            (scratch / "empty").mkdir()
            files = [str(scratch / "empty")]
        args = ["-p", "no:cacheprovider", "--continue-on-collection-errors", "-q", "--trt-baseline=off",
                *spec.forwarded, *files]
        python = str(spec.python) if spec.python is not None else sys.executable
        try:
            with open(log, "wb") as out:
                proc = subprocess.Popen([python, "-c", _BOOT, str(shim), *args], cwd=cwd, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        pass_fds=(theirs.fileno(),), **_own_process_group())
        except OSError as e:
            ours.close()
            raise Unavailable(f"the reference process could not start ({python}: {e.strerror or e})") from None
        finally:
            theirs.close()
        ref = cls(spec=spec, proc=proc, channel=Channel(ours), log=log, scratch=scratch, worktree=worktree,
                  commit=commit, absent_files=frozenset(f for f in spec.files if not (cwd / f).exists()))
        try:
            ref._hello(files)
        except BaseException:
            ref.close()
            raise
        return ref

    def _hello(self, files: list[str]) -> None:
        msg = self._recv("start and collect the tests")
        if msg.get("op") != "hello" or msg.get("version") != VERSION:
            self._fail(f"the reference process speaks another protocol ({msg.get('op')} v{msg.get('version')}); "
                       f"its pytest-trtperf must be this session's")
        self.items = frozenset(str(i) for i in msg.get("items", ()))
        self.errors = tuple(str(e) for e in msg.get("errors", ()))
        self.environment = {
            "python": str(msg.get("python", "")), "python_version": str(msg.get("python_version", "")),
            "packages": dict(msg.get("packages", {})) if isinstance(msg.get("packages"), dict) else {},
            "revision": self.spec.rev, "commit": self.commit, "setup": self.spec.setup}

    # -- talking ------------------------------------------------------------------
    @property
    def where(self) -> str:
        if self.commit is None:
            return f"this checkout in {self.environment.get('python') or self.spec.python}"
        if self.spec.rev == self.commit:  # a baseline entry's commit: its id once
            return f"commit {self.commit[:12]}"
        return f"{self.spec.rev} ({self.commit[:12]})"

    def _fail(self, reason: str) -> None:
        self.broken = reason
        self.close()
        raise Unavailable(reason)

    def _recv(self, doing: str) -> dict[str, Any]:
        if self.broken is not None:
            raise Unavailable(self.broken)
        try:
            return self.channel.recv(self.spec.timeout_s)
        except ChannelTimeout:
            self._fail(f"the reference process did not {doing} within {self.spec.timeout_s:g} s and was stopped "
                       f"(raise --trt-ab-timeout if it needs longer)")
        except ChannelClosed:
            code = self._exit_code()
            self._fail(f"the reference process died while it should {doing} (exit code {code}); its last lines: "
                       f"{_tail(self.log)}")
        raise AssertionError("unreachable")

    def _send(self, message: Mapping[str, Any]) -> None:
        if self.broken is not None:
            raise Unavailable(self.broken)
        try:
            self.channel.send(message)
        except ChannelClosed:
            self._fail(f"the reference process died (exit code {self._exit_code()}); its last lines: "
                       f"{_tail(self.log)}")

    def _exit_code(self) -> Any:
        try:
            return self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return "none yet"

    def measurement(self, nodeid: str, rid: str, name: str | None) -> RemoteWorkload:
        """The reference's measurement ``rid`` of test ``nodeid``, set up and
        waiting; :class:`NotThere` when the test or measurement does not exist
        at the reference."""
        if self.broken is not None:
            raise Unavailable(self.broken)
        if self.test != nodeid:
            self.end_test()
            if nodeid not in self.items:
                raise NotThere(self._absent(nodeid))
            self._send({"op": "test", "nodeid": nodeid})
            self.test, self.test_done, self.paused = nodeid, False, False
        if self.test_done:
            raise NotThere(f"the test at {self.where} has no measurement {self._named(name)}")
        if self.paused:
            self._send({"op": "go"})
            self.paused = False
        while True:
            msg = self._recv(f"reach the measurement {self._named(name)} of {nodeid}")
            op = msg.get("op")
            if op == "ready" and msg.get("rid") == rid:
                return RemoteWorkload(self, kind=str(msg.get("kind")), inferences_per_iteration=max(
                    int(msg.get("inferences_per_iteration", 1)), 1), _identity=dict(msg.get("identity", {})),
                    _notes=tuple(str(n) for n in msg.get("notes", ())),
                    clock=msg.get("clock") if msg.get("clock") in CLOCKS else None)
            if op == "ready":
                self._send({"op": "skip"})
                self._await_released()
                self._send({"op": "go"})
            elif op == "test_done":
                self.test_done = True
                outcome = str(msg.get("outcome", ""))
                if outcome not in ("passed", ""):  # it exists there but could not serve: not a new test
                    raise Unavailable(f"the test {outcome} at {self.where} before its measurement "
                                      f"{self._named(name)}: {str(msg.get('message', ''))[:200]}")
                raise NotThere(f"the test at {self.where} has no measurement {self._named(name)}")
            else:
                self._fail(f"the reference process answered {op!r} where a measurement was expected")

    @staticmethod
    def _named(name: str | None) -> str:
        return f"named {name!r}" if name else "without a name"

    def _absent(self, nodeid: str) -> str:
        """Why ``nodeid`` is not among the reference's tests: a new file, a new
        test, or another parametrisation."""
        path, _, func = nodeid.partition("::")
        base = func.split("[", 1)[0]
        siblings = sorted(i for i in self.items if i.startswith(f"{path}::{base}[") or i == f"{path}::{base}")
        errors = [e for e in self.errors if e.startswith(path)]
        if path in self.absent_files:
            return f"{path} does not exist at {self.where}"
        if errors:
            return f"{path} does not collect at {self.where}: {errors[0]}"
        if siblings:
            shown = ", ".join(s.partition("::")[2] for s in siblings[:5]) + (" ..." if len(siblings) > 5 else "")
            return f"{func} is not among that test's parametrisations at {self.where} ({shown})"
        return f"{func or path} does not exist at {self.where}"

    def block(self, n: int) -> tuple[Any, int | None]:
        """One block of ``n`` iterations there; its timings and the time
        slices it ran in there."""
        self._send({"op": "run", "n": n})
        msg = self._recv(f"run a block of {n} iterations")
        if msg.get("op") != "batch":
            self._fail(f"the reference process answered {msg.get('op')!r} to a block "
                       f"({str(msg.get('message', ''))[:200]})")
        try:
            slices = msg.get("time_slices")
            return unpack_batch(msg), int(slices) if isinstance(slices, int) else None
        except (ValueError, TypeError):
            self._fail("the reference process sent timings that cannot be read")
        raise AssertionError("unreachable")

    def memory(self) -> Mapping[str, int]:
        self._send({"op": "memory"})
        msg = self._recv("measure its memory figures")
        figures = msg.get("figures", {})
        return {str(k): int(v) for k, v in figures.items()} if isinstance(figures, dict) else {}

    def release(self) -> None:
        """The measurement is over: it is torn down there, and the test body
        there waits (``go``) so it never runs while this session measures."""
        if self.broken is not None:
            return
        self._send({"op": "done"})
        self._await_released()
        self.paused = True

    def _await_released(self) -> None:
        msg = self._recv("tear a measurement down")
        if msg.get("op") != "released":
            self._fail(f"the reference process answered {msg.get('op')!r} where a teardown was expected")

    def end_test(self) -> None:
        """Let the reference's test body run to its end (skipping its other
        measurements) while this session waits."""
        if self.test is None or self.broken is not None:
            self.test = None
            return
        try:
            if self.paused:
                self._send({"op": "go"})
                self.paused = False
            while not self.test_done:
                msg = self._recv(f"finish {self.test}")
                if msg.get("op") == "ready":
                    self._send({"op": "skip"})
                    self._await_released()
                    self._send({"op": "go"})
                elif msg.get("op") == "test_done":
                    self.test_done = True
        finally:
            self.test = None

    # -- ending -------------------------------------------------------------------
    def close(self) -> None:
        """Quit (bounded), kill what is left, remove the worktree; never
        raises. A test still running there is not finished first (this may
        run in a signal handler): the process ends where it is."""
        if self.proc.poll() is None and self.broken is None:
            try:
                self.channel.send({"op": "quit"})
                self.proc.wait(timeout=QUIT_WAIT_S)
            except (ChannelClosed, subprocess.TimeoutExpired, OSError):
                pass
        self.channel.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=QUIT_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
        if self.worktree is not None:
            self.worktree.remove()
            self.worktree = None
        import shutil

        shutil.rmtree(self.scratch, ignore_errors=True)


class ReferencePool:
    """The session's reference processes, one per revision (``--trt-ab=baseline``
    may meet entries of several commits), each started on first need; a
    revision that could not be had is remembered with its reason."""

    def __init__(self, make_spec: Any, on_start: Callable[[int], None] | None = None) -> None:
        #: rev -> ReferenceSpec (``make_spec(rev)``).
        self._make_spec = make_spec
        #: Told each reference process's pid (the GPU monitor counts it as this session's own).
        self._on_start = on_start
        self._running: dict[str | None, ReferenceProcess] = {}
        self._failed: dict[str | None, str] = {}
        self._guard: Any = None
        self.started_s: dict[str | None, float] = {}
        #: Baseline commits checked before starting anything for them
        #: (``worktree.check_commit``): None when reachable, else why not.
        self.checked: dict[str, str | None] = {}

    def get(self, rev: str | None) -> ReferenceProcess:
        if rev in self._failed:
            raise Unavailable(self._failed[rev])
        ref = self._running.get(rev)
        if ref is not None and ref.broken is None:
            return ref
        if ref is not None:
            self._failed[rev] = ref.broken or "the reference process stopped"
            raise Unavailable(self._failed[rev])
        self._install_guard()
        t0 = REAL.perf_counter()
        try:
            ref = ReferenceProcess.start(self._make_spec(rev))
        except Unavailable as e:
            self._failed[rev] = str(e)
            raise
        self.started_s[rev] = REAL.perf_counter() - t0
        self._running[rev] = ref
        if self._on_start is not None:
            self._on_start(ref.proc.pid)
        return ref

    def end_test(self) -> None:
        for ref in self._running.values():
            if ref.broken is None:
                try:
                    ref.end_test()
                except Unavailable:
                    pass

    def _install_guard(self) -> None:
        if self._guard is None:
            from pytest_trtperf.gpu.clocks import RestoreGuard

            self._guard = RestoreGuard(self.close)
            self._guard.install()

    def close(self) -> None:
        running, self._running = self._running, {}
        for ref in running.values():
            ref.close()
        if self._guard is not None:
            self._guard.uninstall()
            self._guard = None
