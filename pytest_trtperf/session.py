"""State shared by one pytest session: settings, the baseline store, and the
results the controller collected. Plain code, no hooks."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    from .baseline import BaselineStore
    from .results import Result
    from .runner import GpuSide


@dataclass
class SessionState:
    settings: Settings
    is_controller: bool = True
    #: Results the controller received from test reports (serial or xdist).
    collected: list[Result] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    write_error: str | None = None
    started: str = field(default_factory=lambda: now_iso())
    #: The GPU part of the session (clock state, per-GPU lock, NVML monitor).
    gpu: GpuSide | None = None
    #: xdist workers of the session (0 without xdist); the same in every worker.
    xdist_workers: int = 0
    #: Result ids whose test failed or errored: an update does not write them.
    not_written: dict[str, str] = field(default_factory=dict)
    #: Lines from writing baselines (restarted histories, busy runs, ...).
    write_notes: list[str] = field(default_factory=list)
    #: (node id, reason) of every skipped test that uses trt_bench: the
    #: summary says why without -rs.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    _store: BaselineStore | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings, *, is_controller: bool) -> "SessionState":
        return cls(settings=settings, is_controller=is_controller)

    @property
    def store(self) -> BaselineStore:
        """The baseline store, opened on first use (a session that measures
        nothing never loads the baseline code)."""
        if self._store is None:
            if self.settings.compare_rev is not None:
                from .revision import RevisionStore

                self._store = RevisionStore.open(self.settings.baseline_dir, self.settings.compare_rev)
            else:
                from .baseline import BaselineStore

                self._store = BaselineStore(self.settings.baseline_dir, lock_timeout_s=self.settings.lock_timeout_s,
                                            root=self.settings.rootdir)
        return self._store

    def close(self) -> None:
        """Release what the store holds (``--trt-compare``'s extracted files)."""
        close = getattr(self._store, "close", None)
        if close is not None:
            close()

    def withhold(self, result_id: str, why: str) -> None:
        """An ``update`` does not write ``result_id`` (its test failed or
        errored): remember why (the first reason stays) and make its collected
        result say ``not_written``."""
        self.not_written.setdefault(result_id, why)
        self.collected = [r.withheld(self.not_written[result_id]) if r.id == result_id else r
                          for r in self.collected]

    def store_notes(self) -> list[str]:
        """The baseline store's notes (files skipped, leftovers removed),
        without opening the store when the session never did."""
        return list(self._store.notes) if self._store is not None else []


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
