"""What a finished result takes with it beyond its verdict: the files of
``--trt-export-dir`` (written by the measuring process: raw samples never
travel to the xdist controller) and, for a failed or incomparable GPU gate,
the Nsight Systems command that profiles just that test at the end of its
message. Pytest-free: the fixture gives the invocation directory and whether
xdist is loaded."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_trtperf.core.config import Settings
from pytest_trtperf.core.results import Result
from pytest_trtperf.core.workload import Workload


class ResultAids:
    """The aids of one session's results (``pipeline.runner.Aids``)."""

    def __init__(self, settings: Settings, invocation_dir: Path, *, xdist: bool) -> None:
        self.settings = settings
        self.invocation_dir = invocation_dir
        self.xdist = xdist

    def export(self, result: Result, measurement: Any, workload: Workload) -> None:
        """``--trt-export-dir``: this process writes the result's files (raw
        samples never travel to the xdist controller)."""
        self._write_exports(result, lambda exports, directory: exports.export_result(
            directory, result, measurement, workload))

    def export_sides(self, result: Result, interleaved: Any, workloads: tuple[Workload | None, Workload]) -> None:
        """``--trt-export-dir`` for the interleaved run of ``compare()``: both
        sides' samples, and the TensorRT files of the sides whose workload is
        given."""
        il = interleaved
        if il is None:
            return
        self._write_exports(result, lambda exports, directory: exports.export_interleaved(
            directory, result, il, workloads))

    def export_serve(self, result: Result, run: Any, warmup_s: float) -> None:
        """``--trt-export-dir`` for a serve measurement: its requests' samples."""
        self._write_exports(result, lambda exports, directory: exports.export_serve(
            directory, result, run, warmup_s))

    def _write_exports(self, result: Result, write: Callable[[Any, Path], Any]) -> None:
        directory = self.settings.export_dir
        if directory is None:
            return
        from pytest_trtperf.report import exports

        try:
            write(exports, Path(directory))
        except OSError as e:
            warnings.warn(exports.ExportWarning(f"{result.id}: --trt-export-dir: could not write into {directory} "
                                                f"({e.strerror or e})"), stacklevel=3)

    def with_profile_command(self, result: Result) -> Result:
        """A failed or incomparable GPU result's message ends with the nsys
        command that profiles just this test."""
        from pytest_trtperf.report import nsight

        if not nsight.wants_command(result):
            return result
        ctx = nsight.context_for(self.settings, self.invocation_dir, xdist=self.xdist)
        return nsight.with_profile_command(result, ctx)
