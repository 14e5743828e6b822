"""The host clocks the plugin times with, bound when the plugin loads.

Tests patch time. freezegun's ``@freeze_time`` replaces ``time.perf_counter``,
``time.monotonic`` and their ``_ns`` forms, and also every attribute of every
loaded module that *is* one of those functions (``from time import
perf_counter`` included); a conftest may monkeypatch ``time.perf_counter``.
Either froze the warm-up loop's clock and hung the session. pytest protects
its own durations the same way (``_pytest.timing`` grabs ``perf_counter`` at
import); the real functions here are held inside a frozen object, which
freezegun's module scan does not look into, and ``plugin.py`` imports this
module when pytest loads the plugin, before any conftest or test can patch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Callable


@dataclass(frozen=True)
class Timers:
    """The real clocks: ``perf_counter`` (s), ``perf_counter_ns``, ``monotonic`` (s) and ``sleep``."""

    perf_counter: Callable[[], float]
    perf_counter_ns: Callable[[], int]
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]


#: Bound once, at import (the plugin's load).
REAL = Timers(perf_counter=time.perf_counter, perf_counter_ns=time.perf_counter_ns, monotonic=time.monotonic,
              sleep=time.sleep)
