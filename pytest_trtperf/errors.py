"""Errors the plugin reports to users as one line, never as a traceback."""

from __future__ import annotations


class TrtPerfError(Exception):
    """Base class: the message is complete and fit for a user."""


class UsageError(TrtPerfError):
    """Bad input from the user (marker, option, file). Aborts the session with
    exit code 4 when raised at configure time; fails only the test when raised
    inside a test."""


class BaselineFileError(UsageError):
    """A baseline file that cannot be read safely (corrupt, truncated, newer
    schema). The file is never touched after this is raised."""


class BackendUnavailable(TrtPerfError):
    """An optional dependency (TensorRT, cuda-python, NVML, a GPU) is missing;
    tests that need it are skipped with this message."""
