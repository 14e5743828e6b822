"""Build progress: TensorRT's ``IProgressMonitor`` turned into plain events.

A ViT build at optimization level 3 takes minutes; without progress a CI log
looks hung. The monitor forwards phase start/step/finish to a callback, which
must be cheap and thread-safe (TensorRT calls it from its own threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """``kind`` is "start", "step" or "finish"; ``depth`` 0 is the whole build."""

    kind: str
    phase: str
    depth: int
    step: int = 0
    steps: int = 0
    elapsed_s: float = 0.0


ProgressCallback = Callable[[ProgressEvent], None]


def make_monitor(trt: Any, callback: ProgressCallback, cancel: threading.Event | None = None) -> Any:
    """An ``IProgressMonitor`` for module ``trt`` reporting to ``callback``.

    Setting ``cancel`` makes the next ``step_complete`` return False, which
    asks TensorRT to stop the build.
    """

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._depth: dict[str, int] = {}
            self._steps: dict[str, int] = {}
            self._t0 = time.perf_counter()

        def _emit(self, event: ProgressEvent) -> None:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken callback must not break the build
                pass

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
                self._depth[phase_name] = depth
                self._steps[phase_name] = int(num_steps)
            self._emit(ProgressEvent("start", phase_name, depth, 0, int(num_steps), time.perf_counter() - self._t0))

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                depth = self._depth.get(phase_name, 0)
                steps = self._steps.get(phase_name, 0)
            self._emit(ProgressEvent("step", phase_name, depth, int(step) + 1, steps, time.perf_counter() - self._t0))
            return not (cancel is not None and cancel.is_set())

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                depth = self._depth.get(phase_name, 0)
            self._emit(ProgressEvent("finish", phase_name, depth, 0, 0, time.perf_counter() - self._t0))

    return Monitor()


def line_printer(write: Callable[[str], None], label: str, max_depth: int = 1) -> ProgressCallback:
    """A callback writing one line per phase start/finish up to ``max_depth``.

    ``write`` is e.g. the terminal reporter's ``write_line``.
    """

    def callback(event: ProgressEvent) -> None:
        if event.depth > max_depth or event.kind == "step":
            return
        indent = "  " * event.depth
        if event.kind == "start":
            write(f"building {label}: {indent}{event.phase}...")
        else:
            write(f"building {label}: {indent}{event.phase} done ({event.elapsed_s:.1f}s)")

    return callback
