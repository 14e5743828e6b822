"""Rounds of a host callable with per-round setup and teardown:
pytest-benchmark's ``benchmark.pedantic`` as a workload.

One sample is one round: ``setup()`` (untimed; it may return ``(args,
kwargs)`` for the target), ``iterations`` calls of the target timed together
and divided by ``iterations``, then ``teardown(*args, **kwargs)`` (untimed).
The measurement core asks for a fixed number of rounds (``iterations=`` of
the options), so ``rounds=`` means what it means in pytest-benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.core.timers import REAL
from pytest_trtperf.core.workload import Batch, Clock

#: Fewer rounds than this give an interval too short to see this run's own
#: noise; the result says so.
FEW_ROUNDS = 5


class RoundsWorkload:
    """Times ``rounds`` of ``iterations`` calls with the host clock."""

    kind = "host"
    clock: Clock = "host"

    def __init__(self, target: Callable[..., Any], *, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 setup: Callable[[], Any] | None, teardown: Callable[..., Any] | None, iterations: int,
                 rounds: int, where: str, inferences_per_iteration: int = 1) -> None:
        self._target = target
        self._args, self._kwargs = tuple(args), dict(kwargs)
        self._setup, self._teardown = setup, teardown
        self._iterations = int(iterations)
        self._rounds = int(rounds)
        self._where = where
        self.inferences_per_iteration = int(inferences_per_iteration)
        #: What the target returned on its last timed call (``Result.return_value``).
        self.last_value: Any = None

    def _arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """pytest-benchmark's rule: a setup that returns something returns
        ``(args, kwargs)``, and then the call gives none of its own."""
        if self._setup is None:
            return self._args, self._kwargs
        made = self._setup()
        if not made:
            return self._args, self._kwargs
        if self._args or self._kwargs:
            raise UsageError(f"{self._where}: setup returned arguments and args=/kwargs= were given too; "
                             f"give them one way")
        try:
            args, kwargs = made
            return tuple(args), dict(kwargs)
        except (TypeError, ValueError):
            raise UsageError(f"{self._where}: setup must return (args, kwargs) or None, got "
                             f"{type(made).__name__}") from None

    def setup(self) -> None:
        """Per-round setup runs inside :meth:`run`, outside the timed calls."""

    def run(self, iterations: int) -> Batch:
        clock = REAL.perf_counter_ns
        times = np.empty(iterations, dtype=np.float64)
        target, calls = self._target, self._iterations
        t_start = clock()
        for i in range(iterations):
            args, kwargs = self._arguments()
            value = None
            t0 = clock()
            for _ in range(calls):
                value = target(*args, **kwargs)
            times[i] = (clock() - t0) / calls
            self.last_value = value
            if self._teardown is not None:
                self._teardown(*args, **kwargs)
        wall_ns = clock() - t_start
        return Batch(latency_s=times * 1e-9, wall_s=wall_ns * 1e-9)

    def teardown(self) -> None:
        """Per-round teardown runs inside :meth:`run`."""

    def identity(self) -> Mapping[str, Any]:
        return {"timer": "perf_counter", "inferences_per_iteration": self.inferences_per_iteration,
                "calls_per_round": self._iterations, "round_setup": self._setup is not None}

    def notes(self) -> tuple[str, ...]:
        if self._rounds < FEW_ROUNDS:
            return (f"{self._rounds} round{'s' if self._rounds != 1 else ''}: too few to see this run's own "
                    f"noise; give pedantic(rounds=) {FEW_ROUNDS} or more",)
        return ()
