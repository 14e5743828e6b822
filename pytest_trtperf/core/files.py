"""Files, safely: the one atomic writer, the one reader of files that others
may have planted, a lock file for read-merge-write, and the one "ignore me in
git" helper.

Baselines, JSON documents, reports, engine plans and the timing cache are
read by other processes (xdist workers, the next CI job) while we write them:
a reader must see the old file or the new one, never half of one, even when
the writer is killed midway.

Baseline files and result documents arrive through pull requests: a
``*.json`` there may be a symlink to ``/dev/zero``, a FIFO or a loop, so
:func:`read_regular_file` reads only regular files, never blocks, and stops
at a size limit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Temporary files of :func:`atomic_write` are named ``.<name>.<random>.tmp``.
TEMP_SUFFIX = ".tmp"
#: Test hook (never set it in real runs): seconds :func:`atomic_write` sleeps
#: with the temporary file complete, before ``os.replace``, after printing
#: one line to stderr; lets tests signal a process inside the write window.
PAUSE_ENV = "TRTPERF_TEST_WRITE_PAUSE"


class UnreadableFile(Exception):
    """Why a path cannot be read safely, as the end of a sentence that starts
    with the path ("is a FIFO, not a regular file")."""


#: Suffixes of Python sources: an output path ending so is a typo for a test file.
_SOURCE_SUFFIXES = (".py", ".pyi", ".pyc")


def not_replaceable(path: Path) -> str | None:
    """Why ``path`` must not be replaced by a file we write, as the end of a
    sentence that starts with the path, or None (it does not exist, or it is
    a regular file, through symlinks). A device node, a FIFO, a socket or a
    directory is never replaced: run as root, ``--trt-json=/dev/null``
    replaced the container's /dev/null with a regular file. Writing into them
    instead (``/dev/stdout``) is not offered either: the writers are atomic
    replaces, and a FIFO without a reader would block the session."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "is a symbolic link to nothing" if os.path.islink(path) else None
    except OSError as e:
        return "is a symbolic link loop" if e.errno == errno.ELOOP else None
    if stat.S_ISREG(st.st_mode):
        return None
    return (f"is {_kind(st.st_mode)}, not a regular file: pytest-trtperf writes its outputs as regular files and "
            f"never replaces anything else")


def output_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an output a user named (``--trt-json``,
    ``--trt-report``, ``--trt-csv``, the CLI's ``-o``): :func:`not_replaceable`,
    or a Python source (``--trt-report=test_x.py`` overwrote a test file)."""
    if Path(path).suffix in _SOURCE_SUFFIXES:
        return "is a Python source file name; outputs never replace sources (give a .json, .html or .csv file)"
    return not_replaceable(path)


def distinct_outputs(outputs: Iterable[tuple[str, Path]]) -> None:
    """Each output a file we may replace (:func:`output_problem`) and no two the
    same file (the last writer would silently win). ``outputs`` pairs how the
    user named it (``--trt-json=r.json``, ``-o r.json``) with the path; the
    error names it that way, before anything runs."""
    from pytest_trtperf.core.errors import UsageError

    seen: dict[str, str] = {}
    for label, path in outputs:
        why = output_problem(path)
        if why is not None:
            raise UsageError(f"{label}: {why}")
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{seen[real]} and {label} are the same file; give each output its own file")
        seen[real] = label


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` through a temporary file in
    the same directory, fsync and ``os.replace``. An existing file keeps its
    permissions; a new one gets ``0666 & ~umask`` like ``open()``. Anything
    at ``path`` that is not a regular file (:func:`not_replaceable`) is left
    alone: ``OSError(EEXIST)`` whose ``strerror`` says what it is."""
    path = Path(path)
    why = not_replaceable(path)
    if why is not None:
        raise OSError(errno.EEXIST, why, str(path))
    blob = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        _pause_for_tests(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _pause_for_tests(path: Path) -> None:
    seconds = os.environ.get(PAUSE_ENV)
    if seconds:
        sys.stderr.write(f"trtperf-test: in the write window of {path}\n")
        sys.stderr.flush()
        time.sleep(float(seconds))


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def ignore_in_git(directory: Path) -> None:
    """Make ``directory`` ignore itself in git (a ``.gitignore`` of ``*``):
    engine caches and clock-lock state sit inside the committed baseline
    directory but must never land in a commit. Best effort; call it only for
    a directory the plugin created (:func:`make_ignored_dir`)."""
    ignore = Path(directory) / ".gitignore"
    if not os.path.lexists(ignore):
        with contextlib.suppress(OSError):
            atomic_write(ignore, "*\n")


def make_ignored_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) and make it ignore itself in git,
    but only when this call created it: ``--trt-engine-cache=<existing dir>``
    wrote a ``.gitignore`` of ``*`` into the user's own directory and new
    models in it became invisible to git."""
    directory = Path(directory)
    if os.path.lexists(directory):
        return
    directory.mkdir(parents=True, exist_ok=True)
    ignore_in_git(directory)


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``: ``<name>.lock`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file (:func:`lock_path`) across
    processes, as Polygraphy does around its timing cache. The lock file stays
    (removing it would race with a waiting process); it is empty."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]  # Windows-only API; pyright checks for Linux
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # Windows-only API; pyright checks for Linux
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _check(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile(f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise UnreadableFile(f"is {_size(st.st_size)}, over the limit of {_size(limit)}")


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of ``path`` when it is (or links to) a regular file of at
    most ``limit`` bytes; :class:`UnreadableFile` otherwise.

    Never blocks and never reads without bound: the path is checked with
    ``stat`` before it is opened (a FIFO or a device is refused unopened, a
    symlink loop fails with ELOOP), opened non-blocking (a FIFO swapped in
    between cannot block), checked again on the open descriptor, and read up
    to ``limit + 1`` bytes (a file that grows meanwhile is refused)."""
    try:
        _check(os.stat(path), limit)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnreadableFile("is a symbolic link loop") from None
        if e.errno == errno.ENOENT:
            raise UnreadableFile("does not exist" if not os.path.islink(path)
                                 else "is a symbolic link to nothing") from None
        raise UnreadableFile(f"cannot be read ({e.strerror or e})") from None
    try:
        _check(os.fstat(fd), limit)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise UnreadableFile(f"cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise UnreadableFile(f"grew over the limit of {_size(limit)} while being read")
    return data


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs here: owner files (a clock lock, a
    side-by-side worktree) name their process, and a file whose owner died is
    stale. A process of another user counts as alive (we may not signal it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
