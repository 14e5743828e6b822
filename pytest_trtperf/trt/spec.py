"""What to build or load, from the ``trt_engine`` marker or ``trt_bench.engine()``.

Validation happens here, once, so a typo in a marker is a one-line
:class:`UsageError` naming the argument and the test instead of a TensorRT
error deep in a build.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.trt.backend import PRECISIONS

Shape = tuple[int, ...]
Shapes = Mapping[str, Shape]
#: One optimization profile: input name -> (min, opt, max).
ProfileShapes = Mapping[str, tuple[Shape, Shape, Shape]]

#: ``profiling_verbosity`` values (trtexec ``--profilingVerbosity``).
VERBOSITIES = ("layer_names_only", "detailed", "none")
#: ``memory_pools`` keys (trtexec ``--memPoolSize``), in MiB.
MEMORY_POOLS = ("workspace", "tactic_shared_memory", "tactic_dram")
#: Largest dimension (and shape-tensor value): TensorRT 10 and TensorRT-RTX
#: take ``Dims`` of int64; a larger int is a TypeError inside the bindings.
MAX_DIM = 2**63 - 1
#: ``seed=``: what ``numpy.random.default_rng`` takes (a non-negative int), kept within 64 bits.
MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class EngineSpec:
    """An engine to build from ONNX or to load from a plan file.

    ``shapes`` are the shapes to run with; for an ONNX build with no
    min/opt/max they are also the (static) profile. ``min_shapes`` etc. are
    one dict per optimization profile (a single dict is one profile); for a
    shape-tensor input they hold its *values*, as in trtexec. Paths are
    absolute once :meth:`create` has resolved them against the test's directory.
    """

    where: str
    onnx: Path | None = None
    engine: Path | None = None
    shapes: Mapping[str, Shape] = field(default_factory=dict)
    min_shapes: tuple[Mapping[str, Shape], ...] = ()
    opt_shapes: tuple[Mapping[str, Shape], ...] = ()
    max_shapes: tuple[Mapping[str, Shape], ...] = ()
    #: Optimization profile the run uses (trtexec ``--profile``).
    profile: int = 0
    precision: tuple[str, ...] = ("auto",)
    strongly_typed: bool | None = None
    optimization_level: int | None = None
    workspace_mb: int | None = None
    memory_pools: Mapping[str, int] = field(default_factory=dict)
    profiling_verbosity: str = "detailed"
    version_compatible: bool = False
    weight_streaming: bool = False
    #: "auto" | "off" | "<n>%" | "<bytes>" (trtexec ``--weightStreamingBudget``);
    #: applied to the deserialized engine, so not part of the build.
    weight_streaming_budget: str | None = None
    builder_flags: tuple[str, ...] = ()
    inputs: Mapping[str, Any] | str | None = field(default=None, compare=False)
    seed: int = 0

    # -- construction -----------------------------------------------------
    @classmethod
    def create(cls, where: str, base_dir: Path | str | None = None, **kwargs: Any) -> EngineSpec:
        """Validate keyword arguments (marker or ``trt_bench.engine``) into a spec.

        ``base_dir`` resolves relative paths (the test file's directory). Each
        argument has its check in :data:`_CHECKS`; they run in that table's
        order, so a marker with two mistakes always names the same one first.
        """
        known = {f.name for f in fields(cls)} - {"where"}
        for key in kwargs:
            if key not in known:
                raise UsageError(
                    f"{where}: unknown trt_engine argument {key!r}; expected one of {', '.join(sorted(known))}"
                )
        given = _Given(where, Path(base_dir) if base_dir is not None else Path.cwd(), dict(kwargs))
        if (given.kw.get("onnx") is None) == (given.kw.get("engine") is None):
            given.fail("trt_engine needs exactly one of onnx='model.onnx' or engine='model.plan'")
        for key, check in _CHECKS.items():
            check(given, key)
        return cls(where=where, **given.kw)

    @classmethod
    def from_marker(cls, marker: Any, where: str, base_dir: Path | str | None = None) -> EngineSpec:
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
        """The model file: ``create`` requires exactly one of onnx= and engine=."""
        if self.onnx is not None:
            return self.onnx
        assert self.engine is not None, "EngineSpec.create requires onnx= or engine="
        return self.engine

    @property
    def has_profile(self) -> bool:
        return bool(self.min_shapes)

    def profiles(self) -> tuple[dict[str, tuple[Shape, Shape, Shape]], ...]:
        """The optimization profiles to build: min/opt/max, else ``shapes`` as one static profile."""
        if self.has_profile:
            return tuple(
                {n: (lo[n], opt[n], hi[n]) for n in lo}
                for lo, opt, hi in zip(self.min_shapes, self.opt_shapes, self.max_shapes, strict=False)
            )
        return ({n: (s, s, s) for n, s in self.shapes.items()},) if self.shapes else ()

    def run_shapes(self) -> dict[str, Shape]:
        """Shapes to run with when the caller gives none: ``shapes``, else opt
        of the selected profile."""
        if self.shapes:
            return dict(self.shapes)
        if self.profile < len(self.opt_shapes):
            return dict(self.opt_shapes[self.profile])
        return {}

    def build_config(self) -> dict[str, Any]:
        """Everything that changes the built plan, JSON-able; hashed into the cache key."""
        ranges = [{n: [list(s) for s in r] for n, r in sorted(p.items())} for p in self.profiles()]
        profile: Any = ranges[0] if len(ranges) == 1 else (ranges or {})
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


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (an int or a numpy
    integer, not a bool, not a float or a string), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _show(value: Any) -> str:
    """A user's value for a one-line message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(path: Any, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p)


def _profiles(kw: Mapping[str, Any], where: str) -> list[dict[str, tuple[Shape, Shape, Shape]]]:
    """min/opt/max (each a dict, or a list of dicts for several profiles) as
    one ``{input: (min, opt, max)}`` per profile, checked."""
    given = [k for k in ("min_shapes", "opt_shapes", "max_shapes") if kw.get(k)]
    if not given:
        return []
    if len(given) != 3:
        raise UsageError(f"{where}: give min_shapes, opt_shapes and max_shapes together (got {', '.join(given)})")
    lists = []
    for key in ("min_shapes", "opt_shapes", "max_shapes"):
        value = kw[key]
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        lists.append([_shapes(v, key, where) for v in items])
    if not len(lists[0]) == len(lists[1]) == len(lists[2]):
        raise UsageError(f"{where}: min_shapes, opt_shapes and max_shapes need one dict per profile each "
                         f"(got {len(lists[0])}, {len(lists[1])}, {len(lists[2])})")
    out = []
    for lo, opt, hi in zip(*lists, strict=True):
        if set(lo) != set(hi) or set(opt) != set(hi):
            raise UsageError(f"{where}: min_shapes, opt_shapes and max_shapes must name the same inputs")
        for name in lo:
            a, b, c = lo[name], opt[name], hi[name]
            if not (len(a) == len(b) == len(c)) or any(x > y or y > z for x, y, z in zip(a, b, c, strict=True)):
                raise UsageError(f"{where}: input {name!r}: need min <= opt <= max, got {a}, {b}, {c}")
        out.append({n: (lo[n], opt[n], hi[n]) for n in lo})
    return out


_SUFFIX = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_budget(value: Any, where: str) -> str:
    """``weight_streaming_budget=`` as trtexec's ``--weightStreamingBudget``:
    bytes (an int, or text with a base-2 suffix K/M/G/T), a percentage of the
    streamable weights ("50%"), "auto" (TensorRT picks) or "off" (all weights
    resident). Returns the canonical text recorded in the identity."""
    fix = (f"{where}: weight_streaming_budget={value!r}: bytes (an int or '512M'), a percentage "
           "of the streamable weights ('50%'), 'auto' or 'off' (trtexec --weightStreamingBudget)")
    if isinstance(value, bool):
        raise UsageError(fix)
    if isinstance(value, int):
        if value < 0:
            raise UsageError(fix)
        return str(value)
    if not isinstance(value, str):
        raise UsageError(fix)
    text = value.strip().lower()
    if text in ("auto", "off"):
        return text
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise UsageError(fix) from None
        if not 0 <= pct <= 100:
            raise UsageError(fix)
        return f"{pct:g}%"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text)
    if m is None:
        raise UsageError(fix)
    return str(int(float(m.group(1)) * _SUFFIX[m.group(2)]))


def _shapes(value: Any, key: str, where: str) -> dict[str, Shape]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: {key}= takes a dict of input name -> shape tuple, got {type(value).__name__}")
    out: dict[str, Shape] = {}
    for name, shape in value.items():
        fix = f"{where}: {key}[{_show(name)}]={_show(shape)}: a tuple of positive integers"
        if isinstance(shape, (str, bytes, Mapping)) or not isinstance(shape, Iterable):
            raise UsageError(fix)
        # Whole numbers only (numpy ints too): int(2.5) would silently be 2, int("8") a string.
        whole = [_whole(d) for d in shape]
        dims = tuple(d for d in whole if d is not None)
        if len(dims) != len(whole):
            raise UsageError(fix)
        if any(d <= 0 for d in dims):
            raise UsageError(f"{where}: {key}[{_show(name)}]={_show(shape)}: dimensions must be positive integers")
        if any(d > MAX_DIM for d in dims):
            raise UsageError(f"{where}: {key}[{_show(name)}]={_show(shape)}: a dimension is larger than TensorRT "
                             f"takes (at most 2**63-1)")
        out[str(name)] = dims
    return out


class _Given:
    """The keyword arguments of one :meth:`EngineSpec.create` call while they
    are checked: each check replaces its argument's value by the normalised
    one (or leaves an absent argument absent, so the dataclass default holds)."""

    def __init__(self, where: str, base: Path, kw: dict[str, Any]) -> None:
        self.where = where
        self.base = base
        self.kw = kw

    def fail(self, text: str) -> NoReturn:
        """One line naming the test: ``<where>: <text>``."""
        raise UsageError(f"{self.where}: {text}")


def _check_path(given: _Given, key: str) -> None:
    """``onnx=`` / ``engine=``: a path, resolved against the test's directory."""
    value = given.kw.get(key)
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)):
        given.fail(f"{key}={_show(value)}: a path (str or pathlib.Path) of the "
                   f"{'ONNX model' if key == 'onnx' else 'plan file'}")
    given.kw[key] = _resolve(value, given.base)


def _check_seed(given: _Given, key: str) -> None:
    """``seed=``: a whole number numpy's generator takes, kept within 64 bits."""
    if key not in given.kw:
        return
    seed = _whole(given.kw[key])
    if seed is None or not 0 <= seed <= MAX_SEED:
        given.fail(f"{key}={_show(given.kw[key])}: a whole number from 0 to 2**64-1 (the seed "
                   f"of the random inputs)")
    given.kw[key] = seed


def _check_bool(given: _Given, key: str) -> None:
    """A True/False argument (a truthy string would silently switch it on)."""
    if key in given.kw and not isinstance(given.kw[key], bool):
        given.fail(f"{key}={_show(given.kw[key])}: True or False")


def _check_bool_or_none(given: _Given, key: str) -> None:
    """``strongly_typed=``: True/False, or None to let the model decide."""
    value = given.kw.get(key)
    if value is not None and not isinstance(value, bool):
        given.fail(f"{key}={_show(value)}: True or False (or None: the model decides)")


def _check_shapes(given: _Given, key: str) -> None:
    """``shapes=``: input name -> shape to run with."""
    given.kw[key] = _shapes(given.kw.get(key) or {}, key, given.where)


def _check_ranges(given: _Given, key: str) -> None:
    """``min_shapes=``, ``opt_shapes=``, ``max_shapes=`` together (the table
    lists this check under ``min_shapes``): one dict per optimization profile
    each, for onnx= builds only."""
    profiles = _profiles(given.kw, given.where)
    for name, i in (("min_shapes", 0), ("opt_shapes", 1), ("max_shapes", 2)):
        given.kw[name] = tuple({n: r[i] for n, r in p.items()} for p in profiles)
    if given.kw.get("engine") is not None and profiles:
        given.fail("min/opt/max shapes apply to onnx= builds; an engine file has its profiles")


def _checked_with_min_shapes(given: _Given, key: str) -> None:
    """``opt_shapes=`` / ``max_shapes=``: checked with ``min_shapes`` by :func:`_check_ranges`."""


def _check_profile(given: _Given, key: str) -> None:
    """``profile=``: the index of a profile the build has (after :func:`_check_ranges`)."""
    profile = given.kw.get(key, 0)
    if isinstance(profile, bool) or not isinstance(profile, int) or profile < 0:
        given.fail(f"{key}={profile!r}: the index of an optimization profile (0, 1, ...; trtexec --profile)")
    count = max(len(given.kw["min_shapes"]), 1)
    if given.kw.get("onnx") is not None and profile >= count:
        given.fail(f"{key}={profile} but the build has {count} optimization profile(s); "
                   "give one min_shapes/opt_shapes/max_shapes dict per profile in a list")


def _check_budget(given: _Given, key: str) -> None:
    """``weight_streaming_budget=``: needs weight streaming on an onnx= build;
    "auto" when weight streaming is on and no budget is given."""
    budget = given.kw.get(key)
    if budget is None:
        if given.kw.get("weight_streaming"):
            given.kw[key] = "auto"
        return
    if given.kw.get("onnx") is not None and not given.kw.get("weight_streaming"):
        given.fail(f"{key}= needs weight_streaming=True (as trtexec's "
                   "--weightStreamingBudget needs --allowWeightStreaming)")
    given.kw[key] = parse_budget(budget, given.where)


def _check_precision(given: _Given, key: str) -> None:
    """``precision=``: a name or a list of names, kept sorted and unique."""
    precision = given.kw.get(key, "auto")
    if not isinstance(precision, (str, list, tuple)):
        given.fail(f"{key}={_show(precision)}: a name or a list of names from "
                   f"{', '.join(PRECISIONS)}")
    names = (precision,) if isinstance(precision, str) else tuple(precision)
    for p in names:
        if p not in PRECISIONS:
            given.fail(f"{key}={p!r}: choose from {', '.join(PRECISIONS)}")
    given.kw[key] = tuple(sorted(set(names)))


def _check_optimization_level(given: _Given, key: str) -> None:
    """``optimization_level=``: None (TensorRT's default) or 0..5."""
    level = given.kw.get(key)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 5):
        given.fail(f"{key}={level!r}: an integer 0..5 (trtexec --builderOptimizationLevel)")


def _check_verbosity(given: _Given, key: str) -> None:
    """``profiling_verbosity=``: one of :data:`VERBOSITIES`."""
    verbosity = given.kw.get(key, "detailed")
    if verbosity not in VERBOSITIES:
        given.fail(f"{key}={verbosity!r}: choose from {', '.join(VERBOSITIES)}")


def _check_memory_pools(given: _Given, key: str) -> None:
    """``memory_pools=``: pool name -> MiB, pools from :data:`MEMORY_POOLS`."""
    pools = given.kw.get(key) or {}
    if not isinstance(pools, Mapping):
        given.fail(f"{key}={_show(pools)}: a dict of pool -> MiB "
                   f"({', '.join(MEMORY_POOLS)})")
    pools = dict(pools)
    for pool, mib in pools.items():
        if pool not in MEMORY_POOLS or isinstance(mib, bool) or not isinstance(mib, int) or mib < 0:
            given.fail(f"{key}[{pool!r}]={mib!r}: pools {', '.join(MEMORY_POOLS)} in MiB")
    given.kw[key] = pools


def _check_workspace(given: _Given, key: str) -> None:
    """``workspace_mb=``: None or a size in MiB."""
    ws = given.kw.get(key)
    if ws is not None and (isinstance(ws, bool) or not isinstance(ws, int) or ws < 0):
        given.fail(f"{key}={ws!r}: a size in MiB")


def _check_builder_flags(given: _Given, key: str) -> None:
    """``builder_flags=``: a flag name or a list of them, kept upper-case, sorted and unique."""
    flags = given.kw.get(key) or ()
    names = [flags] if isinstance(flags, str) else flags
    if not isinstance(flags, (str, list, tuple)) or any(not isinstance(f, str) for f in names):
        given.fail(f"{key}={_show(flags)}: a flag name or a list of them "
                   f"(trt.BuilderFlag names)")
    given.kw[key] = tuple(sorted({str(f).upper() for f in names}))


def _check_inputs(given: _Given, key: str) -> None:
    """``inputs=``: a .npz path, or a dict of name -> array or .npy/.bin path
    (paths resolved against the test's directory)."""
    inputs = given.kw.get(key)
    if isinstance(inputs, (str, Path)):
        given.kw[key] = str(_resolve(inputs, given.base))
    elif isinstance(inputs, Mapping):
        given.kw[key] = {
            k: str(_resolve(v, given.base)) if isinstance(v, (str, Path)) else v for k, v in inputs.items()
        }
    elif inputs is not None:
        given.fail(f"{key}= takes a dict of name -> array/.npy/.bin path, or a .npz path")


#: Every ``trt_engine`` argument and its check, in the order they run (the
#: order in which a marker's mistakes are reported; ``profile`` and
#: ``weight_streaming_budget`` read arguments checked before them).
_CHECKS: dict[str, Callable[[_Given, str], None]] = {
    "onnx": _check_path,
    "engine": _check_path,
    "seed": _check_seed,
    "strongly_typed": _check_bool_or_none,
    "version_compatible": _check_bool,
    "weight_streaming": _check_bool,
    "shapes": _check_shapes,
    "min_shapes": _check_ranges,
    "opt_shapes": _checked_with_min_shapes,
    "max_shapes": _checked_with_min_shapes,
    "profile": _check_profile,
    "weight_streaming_budget": _check_budget,
    "precision": _check_precision,
    "optimization_level": _check_optimization_level,
    "profiling_verbosity": _check_verbosity,
    "memory_pools": _check_memory_pools,
    "workspace_mb": _check_workspace,
    "builder_flags": _check_builder_flags,
    "inputs": _check_inputs,
}


def validate_marker(marker: Any, where: str) -> None:
    """Check a ``trt_engine`` marker's arguments at collection/run time (no I/O)."""
    EngineSpec.from_marker(marker, where, None)
