"""The wire between a session and its reference process (``--trt-ab``).

One message is one line of JSON on a local stream socket (a ``socketpair``
whose far end the reference process inherits: nothing listens, nothing can
be reached from outside, and two sessions never share one). Arrays of
timings travel as base64 of their float64 bytes, so a 50 ms block of a
microsecond-long call (tens of thousands of samples) costs a few
milliseconds between blocks, never inside one.

The exchange, always one side at a time (the candidate asks, the reference
answers, so the two processes never measure at the same time)::

    reference -> hello {version, items, errors, python, ...}
    candidate -> test {nodeid}                 run that test's body
    reference -> ready {rid, kind, clock, identity}   a measurement, set up, waiting
    candidate -> run {n}                        one block of n iterations
    reference -> batch {latency, wall_s, extra}
    candidate -> done | skip                    tear it down / not this one
    reference -> test_done {outcome, message}   the body returned
    candidate -> quit
"""

from __future__ import annotations

import base64
import json
import select
import socket
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from pytest_trtperf.core.timers import REAL

if TYPE_CHECKING:
    from pytest_trtperf.core.workload import Batch

#: Bumped whenever a message changes meaning; both ends must agree.
VERSION = 1
#: The reference process reads its end of the socket from this variable.
FD_ENV = "TRTPERF_AB_SERVE_FD"
#: Longest message accepted (a block of 2^20 samples is ~11 MB of base64).
MAX_LINE = 64 << 20


class ChannelClosed(Exception):
    """The other process went away (crashed, killed, or closed its end)."""


class ChannelTimeout(Exception):
    """No message within the bound."""


class Channel:
    """JSON lines over a connected stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def send(self, message: Mapping[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ChannelClosed(f"the other process closed the connection ({e.strerror or e})") from None

    def recv(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next message; ``timeout_s`` None waits for ever (the reference
        waits for its next order: the candidate's death closes the socket)."""
        deadline = None if timeout_s is None else REAL.monotonic() + timeout_s
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                try:
                    msg = json.loads(line)
                except ValueError:
                    raise ChannelClosed("the other process sent something that is not a message") from None
                if not isinstance(msg, dict):
                    raise ChannelClosed("the other process sent something that is not a message")
                return msg
            if len(self._buf) > MAX_LINE:
                raise ChannelClosed("the other process sent a message over the size limit")
            wait = None if deadline is None else max(deadline - REAL.monotonic(), 0.0)
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                raise ChannelTimeout()
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError as e:
                raise ChannelClosed(f"the connection broke ({e.strerror or e})") from None
            if not chunk:
                raise ChannelClosed("the other process closed the connection")
            self._buf += chunk

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def pack_array(values: Any) -> str:
    import numpy as np

    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def unpack_array(text: Any) -> Any:
    import numpy as np

    if not isinstance(text, str):
        raise ValueError("an array must be base64 text")
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def pack_batch(batch: Batch) -> dict[str, Any]:
    return {"op": "batch", "latency": pack_array(batch.latency_s), "wall_s": float(batch.wall_s),
            "extra": {k: pack_array(v) for k, v in batch.extra.items()}}


def unpack_batch(msg: Mapping[str, Any]) -> Batch:
    from pytest_trtperf.core.workload import Batch

    extra = msg.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError("extra series must be a mapping")
    return Batch(latency_s=unpack_array(msg.get("latency")), wall_s=float(msg.get("wall_s", 0.0)),
                 extra={str(k): unpack_array(v) for k, v in extra.items()})
