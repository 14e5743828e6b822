"""The host, shared between pytest-xdist workers of one session.

Under ``-n 2`` a test that loads every core (the ``load`` fixture: busy loops,
two more than the CPUs) ran beside timed tests on the other worker and moved
them beyond what they allow: an M/D/1 mean at utilisation 0.8 read 30 ms
against a closed form of 18.5-19.6 ms. So a test that needs a quiet neighbour
holds the host shared, and the busy loops start only once the host is theirs
alone. Real ``flock`` locks on files in the session's temporary directory:
the workers are separate processes.

``gate`` is a turnstile: taking the host alone waits at it, so a worker's
next shared hold cannot slip in ahead again and again. A holder waiting at
the gate holds nothing else, so two workers cannot wait on each other.
"""

from __future__ import annotations

import fcntl
from pathlib import Path


class HostShare:
    def __init__(self, directory: Path) -> None:
        self._gate = (directory / "trtperf-host.gate").open("a+")
        self._lock = (directory / "trtperf-host.lock").open("a+")

    def share(self) -> None:
        """Hold the host with other sharers; wait while one holds it alone."""
        self._through_gate(fcntl.LOCK_SH)

    def take(self) -> None:
        """Hold the host alone: waits until every sharer has let go."""
        fcntl.flock(self._lock, fcntl.LOCK_UN)  # a shared hold of this process first (a no-op without one)
        self._through_gate(fcntl.LOCK_EX)

    def _through_gate(self, mode: int) -> None:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, mode)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)

    def close(self) -> None:
        self._gate.close()
        self._lock.close()
