"""Both sides of a host side-by-side run on one CPU.

Interleaving cancels what changes slower than a block, but only what both
processes share. Two processes on a virtual machine's two CPUs do not share
everything: a vCPU whose time the hypervisor steals, or whose physical core
another tenant's thread shares, runs the same code slower, and the scheduler
keeps each process where it woke. The thread that measures in each process is
then timed on a CPU of its own, and the pair ratio reads the CPUs, not the
code: on this project's 2-core CI machine, whole side-by-side runs of the same
code read 0.64, 0.76 and 1.25 (tight intervals, for seconds at a time) while
most runs read 1.00.

The two processes never measure at the same time (the reference serves a
block while this process waits for it, and the other way round), so one CPU
for both measuring threads costs nothing and puts every per-CPU difference on
both sides alike. Only the measuring threads are pinned (the calling thread
here, the reference's main thread there), for the run only; serve runs, whose
slot threads would inherit the pin, are not pinned. Where affinity cannot be
set (not Linux, a process gone) the run goes on unpinned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def current_cpu() -> int | None:
    """The CPU this thread last ran on (``/proc/thread-self/stat`` field 39), None when unknown."""
    try:
        with open("/proc/thread-self/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
        return int(text[text.rindex(")") + 2:].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def _restore(masks: dict[int, set[int]]) -> None:
    for pid, mask in masks.items():
        with contextlib.suppress(OSError):  # a reference that has exited needs no mask back
            os.sched_setaffinity(pid, mask)


@contextlib.contextmanager
def one_cpu(*pids: int) -> Iterator[int | None]:
    """This thread and the main threads of ``pids`` on one CPU they all may
    use (the one this thread is on when it can), restored afterwards; yields
    the CPU, or None when they run unpinned."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    masks: dict[int, set[int]] = {}
    try:
        for pid in (0, *pids):
            masks[pid] = set(os.sched_getaffinity(pid))
    except OSError:
        yield None
        return
    common = set.intersection(*masks.values())
    here = current_cpu()
    cpu = here if here in common else (min(common) if common else None)
    if cpu is None:
        yield None
        return
    try:
        for pid in masks:
            os.sched_setaffinity(pid, {cpu})
    except OSError:
        _restore(masks)
        yield None
        return
    try:
        yield cpu
    finally:
        _restore(masks)
