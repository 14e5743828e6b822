"""What to build or load, from the ``trt_engine`` marker or ``trt_bench.engine()``.

Validation happens here, once, so a typo in a marker is a one-line
:class:`UsageError` naming the argument and the test instead of a TensorRT
error deep in a build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError
from .backend import PRECISIONS

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]

#: ``profiling_verbosity`` values (trtexec ``--profilingVerbosity``).
VERBOSITIES = ("layer_names_only", "detailed", "none")
#: ``memory_pools`` keys (trtexec ``--memPoolSize``), in MiB.
MEMORY_POOLS = ("workspace", "tactic_shared_memory", "tactic_dram")


@dataclass(frozen=True)
class EngineSpec:
    """An engine to build from ONNX or to load from a plan file.

    ``shapes`` are the shapes to run with; for an ONNX build with no
    min/opt/max they are also the (static) profile. Paths are absolute once
    :meth:`create` has resolved them against the test's directory.
    """

    where: str
    onnx: Path | None = None
    engine: Path | None = None
    shapes: Mapping[str, Shape] = field(default_factory=dict)
    min_shapes: Mapping[str, Shape] = field(default_factory=dict)
    opt_shapes: Mapping[str, Shape] = field(default_factory=dict)
    max_shapes: Mapping[str, Shape] = field(default_factory=dict)
    precision: tuple[str, ...] = ("auto",)
    strongly_typed: bool | None = None
    optimization_level: int | None = None
    workspace_mb: int | None = None
    memory_pools: Mapping[str, int] = field(default_factory=dict)
    profiling_verbosity: str = "detailed"
    version_compatible: bool = False
    weight_streaming: bool = False
    builder_flags: tuple[str, ...] = ()
    inputs: Mapping[str, Any] | str | None = field(default=None, compare=False)
    seed: int = 0

    # -- construction -----------------------------------------------------
    @classmethod
    def create(cls, where: str, base_dir: Path | str | None = None, **kwargs: Any) -> "EngineSpec":
        """Validate keyword arguments (marker or ``trt_bench.engine``) into a spec.

        ``base_dir`` resolves relative paths (the test file's directory).
        """
        known = {f.name for f in fields(cls)} - {"where"}
        for key in kwargs:
            if key not in known:
                raise UsageError(
                    f"{where}: unknown trt_engine argument {key!r}; expected one of {', '.join(sorted(known))}"
                )
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        kw: dict[str, Any] = dict(kwargs)
        if (kw.get("onnx") is None) == (kw.get("engine") is None):
            raise UsageError(f"{where}: trt_engine needs exactly one of onnx='model.onnx' or engine='model.plan'")
        for key in ("onnx", "engine"):
            if kw.get(key) is not None:
                kw[key] = _resolve(kw[key], base)
        for key in ("shapes", "min_shapes", "opt_shapes", "max_shapes"):
            kw[key] = _shapes(kw.get(key) or {}, key, where)
        prof = [k for k in ("min_shapes", "opt_shapes", "max_shapes") if kw[k]]
        if prof and len(prof) != 3:
            raise UsageError(f"{where}: give min_shapes, opt_shapes and max_shapes together (got {', '.join(prof)})")
        if prof and set(kw["min_shapes"]) != set(kw["max_shapes"]) or prof and set(kw["opt_shapes"]) != set(kw["max_shapes"]):
            raise UsageError(f"{where}: min_shapes, opt_shapes and max_shapes must name the same inputs")
        for name in kw["min_shapes"]:
            lo, opt, hi = kw["min_shapes"][name], kw["opt_shapes"][name], kw["max_shapes"][name]
            if not (len(lo) == len(opt) == len(hi)) or any(a > b or b > c for a, b, c in zip(lo, opt, hi)):
                raise UsageError(f"{where}: input {name!r}: need min <= opt <= max, got {lo}, {opt}, {hi}")
        if kw.get("engine") is not None and prof:
            raise UsageError(f"{where}: min/opt/max shapes apply to onnx= builds; an engine file has its profiles")
        precision = kw.get("precision", "auto")
        precision = (precision,) if isinstance(precision, str) else tuple(precision)
        for p in precision:
            if p not in PRECISIONS:
                raise UsageError(f"{where}: precision={p!r}: choose from {', '.join(PRECISIONS)}")
        kw["precision"] = tuple(sorted(set(precision)))
        level = kw.get("optimization_level")
        if level is not None and (not isinstance(level, int) or not 0 <= level <= 5):
            raise UsageError(f"{where}: optimization_level={level!r}: an integer 0..5 (trtexec --builderOptimizationLevel)")
        verbosity = kw.get("profiling_verbosity", "detailed")
        if verbosity not in VERBOSITIES:
            raise UsageError(f"{where}: profiling_verbosity={verbosity!r}: choose from {', '.join(VERBOSITIES)}")
        pools = dict(kw.get("memory_pools") or {})
        for pool, mib in pools.items():
            if pool not in MEMORY_POOLS or not isinstance(mib, int) or mib < 0:
                raise UsageError(f"{where}: memory_pools[{pool!r}]={mib!r}: pools {', '.join(MEMORY_POOLS)} in MiB")
        kw["memory_pools"] = pools
        ws = kw.get("workspace_mb")
        if ws is not None and (not isinstance(ws, int) or ws < 0):
            raise UsageError(f"{where}: workspace_mb={ws!r}: a size in MiB")
        flags = kw.get("builder_flags") or ()
        kw["builder_flags"] = tuple(sorted({str(f).upper() for f in ([flags] if isinstance(flags, str) else flags)}))
        inputs = kw.get("inputs")
        if isinstance(inputs, (str, Path)):
            kw["inputs"] = str(_resolve(inputs, base))
        elif isinstance(inputs, Mapping):
            kw["inputs"] = {
                k: str(_resolve(v, base)) if isinstance(v, (str, Path)) else v for k, v in inputs.items()
            }
        elif inputs is not None:
            raise UsageError(f"{where}: inputs= takes a dict of name -> array/.npy/.bin path, or a .npz path")
        return cls(where=where, **kw)

    @classmethod
    def from_marker(cls, marker: Any, where: str, base_dir: Path | str | None = None) -> "EngineSpec":
        """From a ``pytest.Mark``: ``trt_engine("m.onnx", ...)`` or keyword-only."""
        kwargs = dict(marker.kwargs)
        args = tuple(marker.args)
        if len(args) > 1:
            raise UsageError(f"{where}: trt_engine takes one positional argument (the model path), got {len(args)}")
        if args:
            key = "onnx" if str(args[0]).lower().endswith(".onnx") else "engine"
            if key in kwargs:
                raise UsageError(f"{where}: trt_engine got the model twice (positional and {key}=)")
            kwargs[key] = args[0]
        return cls.create(where, base_dir, **kwargs)

    # -- derived ----------------------------------------------------------
    @property
    def source(self) -> Path:
        return self.onnx if self.onnx is not None else self.engine  # type: ignore[return-value]

    @property
    def has_profile(self) -> bool:
        return bool(self.min_shapes)

    def run_shapes(self) -> dict[str, Shape]:
        """Shapes to run with when the caller gives none: ``shapes``, else opt."""
        return dict(self.shapes) if self.shapes else dict(self.opt_shapes)

    def build_config(self) -> dict[str, Any]:
        """Everything that changes the built plan, JSON-able; hashed into the cache key."""
        profile = (
            {n: [list(self.min_shapes[n]), list(self.opt_shapes[n]), list(self.max_shapes[n])] for n in sorted(self.min_shapes)}
            if self.has_profile
            else {n: [list(s)] * 3 for n, s in sorted(self.shapes.items())}
        )
        return {
            "profile": profile,
            "precision": list(self.precision),
            "strongly_typed": self.strongly_typed,
            "optimization_level": self.optimization_level,
            "workspace_mb": self.workspace_mb,
            "memory_pools": dict(sorted(self.memory_pools.items())),
            "profiling_verbosity": self.profiling_verbosity,
            "version_compatible": self.version_compatible,
            "weight_streaming": self.weight_streaming,
            "builder_flags": list(self.builder_flags),
        }

    def build_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.build_config(), sort_keys=True).encode()).hexdigest()[:16]


def _resolve(path: Any, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p)


def _shapes(value: Any, key: str, where: str) -> dict[str, Shape]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: {key}= takes a dict of input name -> shape tuple, got {type(value).__name__}")
    out: dict[str, Shape] = {}
    for name, shape in value.items():
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: {key}[{name!r}]={shape!r}: a tuple of positive integers") from None
        if any(d <= 0 for d in dims):
            raise UsageError(f"{where}: {key}[{name!r}]={dims}: dimensions must be positive")
        out[str(name)] = dims
    return out


def validate_marker(marker: Any, where: str) -> None:
    """Check a ``trt_engine`` marker's arguments at collection/run time (no I/O)."""
    EngineSpec.from_marker(marker, where, None)
