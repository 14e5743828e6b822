"""State shared by one pytest session: settings, the baseline store, and the
results the controller collected. Plain code, no hooks."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_trtperf.core.config import Settings

if TYPE_CHECKING:
    from pytest_trtperf.baselines.store import BaselineStore
    from pytest_trtperf.relative.reference_process import ReferencePool
    from pytest_trtperf.core.results import Result
    from pytest_trtperf.pipeline.runner import GpuSide


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

    #: Test files (rootdir-relative) of the perf tests collected here: what
    #: a reference process (``--trt-ab``) collects.
    perf_files: tuple[str, ...] = ()
    #: In a reference process: the socket it serves its measurements on.
    server: Any = None

    _store: BaselineStore | None = field(default=None, repr=False)
    _references: ReferencePool | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings, *, is_controller: bool) -> SessionState:
        return cls(settings=settings, is_controller=is_controller)

    @property
    def store(self) -> BaselineStore:
        """The baseline store, opened on first use (a session that measures
        nothing never loads the baseline code)."""
        if self._store is None:
            if self.settings.compare_rev is not None:
                from pytest_trtperf.baselines.revision import RevisionStore

                self._store = RevisionStore.open(self.settings.baseline_dir, self.settings.compare_rev)
            else:
                from pytest_trtperf.baselines.store import BaselineStore

                self._store = BaselineStore(self.settings.baseline_dir, lock_timeout_s=self.settings.lock_timeout_s,
                                            root=self.settings.rootdir)
        return self._store

    def references(self) -> ReferencePool:
        """The reference processes of ``--trt-ab``, started on first need."""
        if self._references is None:
            from pytest_trtperf.relative.side_by_side import make_pool

            from pytest_trtperf.gpu.session import GpuSessionPlugin

            gpu = self.gpu  # its NVML monitor counts the reference as this session's, not another process
            self._references = make_pool(self.settings.ab, self.settings.rootdir, lambda: self.perf_files,
                                         on_start=gpu.partner_pids.add if isinstance(gpu, GpuSessionPlugin)
                                         else None)
        return self._references

    def end_reference_test(self) -> None:
        """The test is over here: let the reference's copy of it end too."""
        if self._references is not None:
            self._references.end_test()

    def close(self) -> None:
        """Release what the store holds (``--trt-compare``'s extracted files)
        and stop the reference processes (removing their worktrees)."""
        close = getattr(self._store, "close", None)
        if close is not None:
            close()
        if self._references is not None:
            self._references.close()

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
