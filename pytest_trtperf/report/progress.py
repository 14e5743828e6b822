"""Progress of long operations (engine builds, long measurements) in the terminal.

A ViT build takes minutes and a CI log with no output for minutes looks hung;
an interactive terminal, though, should not scroll a line per percent. So:
on a TTY one status line is rewritten in place (throttled); anywhere else
(CI logs, pipes) one line per phase and one when done; with ``-q`` nothing.
Thread-safe: TensorRT reports build progress from its own threads.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Protocol, TextIO
from collections.abc import Callable

from pytest_trtperf.core.formatting import log_safe
from pytest_trtperf.core.timers import REAL


class Sink(Protocol):
    """Where progress goes. ``interactive`` sinks can replace a status line."""

    interactive: bool

    def line(self, text: str) -> None: ...

    def status(self, text: str) -> None: ...

    def end_status(self) -> None: ...


class NullSink:
    """``-q``, or no terminal at all."""

    interactive = False

    def line(self, text: str) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def end_status(self) -> None:
        pass


class StreamSink:
    """A text stream; interactive when it is a TTY (or when told)."""

    def __init__(self, stream: TextIO, *, interactive: bool | None = None, width: int = 100) -> None:
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.width = width

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self.width - 1)[: self.width - 1])
        self.stream.flush()

    def end_status(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class ReporterSink:
    """pytest's terminal reporter. During a test, output capture has the
    terminal's file descriptor, so each write suspends capture (otherwise the
    lines only show up in the report of a failed test)."""

    def __init__(self, reporter: Any, capman: Any = None) -> None:
        self.reporter = reporter
        self.capman = capman
        isatty = getattr(reporter, "isatty", False)
        self.interactive = bool(isatty() if callable(isatty) else isatty)
        self._fresh = True

    def _uncaptured(self) -> Any:
        if self.capman is None:
            return contextlib.nullcontext()
        return self.capman.global_and_fixture_disabled()

    def line(self, text: str) -> None:
        with self._uncaptured():
            self.reporter.write_line(text)
            self.reporter.flush()  # a CI log shows the phase now, not at exit

    def status(self, text: str) -> None:
        with self._uncaptured():
            if self._fresh:  # start below pytest's "test_file.py ..." line
                self.reporter.ensure_newline()
                self._fresh = False
            self.reporter.rewrite(text, erase=True)

    def end_status(self) -> None:
        with self._uncaptured():
            self.reporter.write("\n", flush=True)
        self._fresh = True


class Progress:
    """Progress of one operation: ``phase(text)`` when a stage starts,
    ``update(fraction)`` within it (0..1), ``done()`` at the end. Also a
    context manager (``done`` on exit)."""

    def __init__(self, sink: Sink, label: str, *, min_interval_s: float = 0.2,
                 clock: Callable[[], float] = REAL.monotonic) -> None:
        self.sink = sink
        self.label = log_safe(label)  # a test id: printed at the start of a log line
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._t0 = clock()
        self._phase: str | None = None
        self._last_status = -float("inf")
        self._finished = False

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._t0

    def _prefix(self) -> str:
        return f"[trtperf] {self.label}: " if self.label else "[trtperf] "

    def phase(self, text: str) -> None:
        with self._lock:
            if self._finished:
                return
            self._phase = text = log_safe(text)
            if self.sink.interactive:
                self.sink.status(self._prefix() + text)
                self._last_status = self._clock()
            else:
                self.sink.line(self._prefix() + text)

    def update(self, fraction: float) -> None:
        """Interactive only, at most every ``min_interval_s``; logs get nothing."""
        if not self.sink.interactive:
            return
        with self._lock:
            now = self._clock()
            if self._finished or now - self._last_status < self.min_interval_s:
                return
            self._last_status = now
            f = min(max(float(fraction), 0.0), 1.0)
            bar = "#" * int(f * 20)
            self.sink.status(f"{self._prefix()}{self._phase or ''} [{bar:<20}] {f * 100:3.0f}%")

    def done(self, text: str = "done") -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            final = f"{self._prefix()}{text} in {self.elapsed_s:.1f}s"
            if self.sink.interactive:
                self.sink.status(final)
                self.sink.end_status()
            else:
                self.sink.line(final)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done("done" if exc[0] is None else "stopped")


def for_config(config: Any, label: str, **kwargs: Any) -> Progress:
    """Progress on pytest's terminal, silent under ``-q`` or without a
    terminal reporter (xdist workers report nothing themselves)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    sink: Sink = NullSink() if reporter is None or config.get_verbosity() < 0 else ReporterSink(reporter, capman)
    return Progress(sink, label, **kwargs)
