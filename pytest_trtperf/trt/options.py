"""TensorRT command-line options and ini keys, frozen into :class:`TrtOptions`.

The only module in ``trt/`` that knows about pytest: ``plugin.py`` calls
:func:`add_options` from ``pytest_addoption`` and
:meth:`TrtOptions.from_pytest_config` once at configure time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .backend import BACKEND_CHOICES

#: (option, ini key, help, kind). ``kind``: "choice", "path", "bool".
_OPTIONS = (
    ("--trt-backend", "trt_backend", "auto|tensorrt|tensorrt_rtx: which library builds and runs engines (default auto: TensorRT, then TensorRT-RTX)", "choice"),
    ("--trt-engine-cache", "trt_engine_cache", "directory for built engines keyed by model, build config, TensorRT version and GPU; 'off' rebuilds every time (default: engines/ inside the baseline directory, git-ignored)", "path"),
    ("--trt-timing-cache", "trt_timing_cache", "timing cache file loaded before and saved after each build, like trtexec --timingCacheFile (default: <engine cache>/timing.cache; 'off' disables)", "path"),
    ("--trt-allow-engine-host-code", "trt_allow_engine_host_code", "allow loading engines that contain host code (version-compatible lean runtime, plugins); off by default for safety", "bool"),
    ("--trt-profile-layers", "trt_profile_layers", "after measuring, run once more with TensorRT's profiler and attach per-layer times to each result (trtexec --dumpProfile)", "bool"),
)

OFF = ("off", "none", "no", "false", "0")


@dataclass(frozen=True)
class TrtOptions:
    """Session-wide TensorRT settings. ``None`` paths mean "disabled"."""

    backend: str = "auto"
    engine_cache: Path | None = None
    timing_cache: Path | None = None
    allow_engine_host_code: bool = False
    profile_layers: bool = False

    @classmethod
    def from_values(
        cls,
        backend: str | None = None,
        engine_cache: str | os.PathLike[str] | None = None,
        timing_cache: str | os.PathLike[str] | None = None,
        allow_engine_host_code: bool | str | None = None,
        profile_layers: bool | str | None = None,
        default_cache_dir: Path | None = None,
        rootdir: Path | None = None,
    ) -> "TrtOptions":
        """Resolve raw option/ini values. Relative paths are taken from ``rootdir``."""
        backend = (backend or "auto").strip()
        if backend not in BACKEND_CHOICES:
            raise UsageError(f"--trt-backend={backend!r}: choose one of {', '.join(BACKEND_CHOICES)}")
        root = rootdir or Path.cwd()

        def path(value: Any, default: Path | None) -> Path | None:
            if value is None or str(value).strip() == "":
                return default
            if str(value).strip().lower() in OFF:
                return None
            p = Path(str(value)).expanduser()
            return p if p.is_absolute() else root / p

        cache = path(engine_cache, default_cache_dir)
        timing = path(timing_cache, cache / "timing.cache" if cache is not None else None)
        return cls(
            backend=backend,
            engine_cache=cache,
            timing_cache=timing,
            allow_engine_host_code=_bool(allow_engine_host_code, "--trt-allow-engine-host-code"),
            profile_layers=_bool(profile_layers, "--trt-profile-layers"),
        )

    @classmethod
    def from_pytest_config(cls, config: Any) -> "TrtOptions":
        """Command line first, then ini; the default engine cache is ``engines/``
        inside the baseline directory (``.trtperf/`` by default), git-ignored."""
        values: dict[str, Any] = {}
        for opt, ini, _help, _kind in _OPTIONS:
            dest = opt[2:].replace("-", "_")
            value = config.getoption(dest, default=None)
            if value is None or value is False:
                ini_value = config.getini(ini)
                value = ini_value if ini_value not in ("", None, []) else value
            values[dest[4:]] = value
        rootdir = Path(str(config.rootpath))
        default_cache = _baseline_dir(config, rootdir) / "engines"
        return cls.from_values(**values, default_cache_dir=default_cache, rootdir=rootdir)


def _baseline_dir(config: Any, rootdir: Path) -> Path:
    """The core's baseline directory (the engine cache lives inside it)."""
    try:
        from ..plugin import STATE_KEY

        state = config.stash.get(STATE_KEY, None)
    except ImportError:  # pragma: no cover
        state = None
    if state is not None:
        return Path(state.settings.baseline_dir)
    try:
        bdir = config.getoption("trt_baseline_dir", default=None) or config.getini("trt_baseline_dir")
    except ValueError:  # the core's options are not registered (used piecemeal)
        bdir = None
    base = Path(str(bdir)) if bdir else Path(".trtperf")
    return base if base.is_absolute() else rootdir / base


_session: TrtOptions | None = None


def configure(config: Any) -> TrtOptions:
    """Read the options once per session (``pytest_configure``) for :func:`session_options`."""
    global _session
    _session = TrtOptions.from_pytest_config(config)
    return _session


def session_options() -> TrtOptions:
    """The session's options; outside pytest, defaults with a cache in ``.trtperf/engines``."""
    if _session is not None:
        return _session
    return TrtOptions.from_values(default_cache_dir=Path.cwd() / ".trtperf" / "engines")


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r}: use true or false")


def add_options(parser: Any) -> None:
    """Register the TensorRT options in the ``trtperf`` group and as ini keys."""
    group = parser.getgroup("trtperf", "TensorRT performance tests")
    for opt, ini, help_text, kind in _OPTIONS:
        dest = opt[2:].replace("-", "_")
        if kind == "bool":
            group.addoption(opt, action="store_true", default=None, dest=dest, help=help_text)
            parser.addini(ini, help_text, type="bool", default=False)
        elif kind == "choice":
            group.addoption(opt, choices=BACKEND_CHOICES, default=None, dest=dest, help=help_text)
            parser.addini(ini, help_text, default="auto")
        else:
            group.addoption(opt, default=None, dest=dest, metavar="PATH", help=help_text)
            parser.addini(ini, help_text, default="")
