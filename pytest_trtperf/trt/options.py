"""Session-wide TensorRT settings, frozen into :class:`TrtOptions`.

Plain data: ``config.py`` resolves the command line and ini file into it once
per session and hands it down; scripts outside pytest use
:meth:`TrtOptions.from_values`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .backend import BACKEND_CHOICES

__all__ = ["BACKEND_CHOICES", "OFF", "TrtOptions"]

#: Values that switch a cache off.
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
        """Options for scripts and tests outside a pytest session. Relative
        paths are taken from ``rootdir`` (default: the current directory)."""
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


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r}: use true or false")
