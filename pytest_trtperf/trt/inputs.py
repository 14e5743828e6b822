"""Input shapes and input data for a run.

Random by default: seeded, realistic per dtype and never all zeros, because
zeros draw less power and can take faster paths than real data. User data as
numpy arrays, ``.npy`` files, one ``.npz`` for all inputs, or raw ``.bin``
files per input (trtexec ``--loadInputs``). Shapes are checked against the
engine's profile before TensorRT sees them, with a one-line error. A shape
tensor input takes *values* where other inputs take a shape (trtexec's
``--shapes``); its data are those values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.trt.tensors import Shape, TensorInfo, numpy_dtype


def resolve_shapes(
    inputs: tuple[TensorInfo, ...],
    requested: Mapping[str, Shape] | None,
    default: Mapping[str, Shape] | None,
    where: str,
    profile: int = 0,
) -> dict[str, Shape]:
    """One concrete shape per input: requested, else default, else the static shape."""
    requested = {k: tuple(int(d) for d in v) for k, v in (requested or {}).items()}
    default = dict(default or {})
    names = [t.name for t in inputs]
    for name in requested:
        if name not in names:
            raise UsageError(f"{where}: the engine has no input {name!r}; its inputs are {', '.join(names)}")
    shapes: dict[str, Shape] = {}
    for t in inputs:
        shape = requested.get(t.name) or default.get(t.name)
        if t.shape_tensor:
            if shape is None:
                raise UsageError(f"{where}: input {t.name!r} is a shape tensor; pass its values in shapes={{{t.name!r}: (...)}}")
            values = tuple(int(v) for v in shape)
            check_shape(t, values, where, profile)
            shapes[t.name] = values
            continue
        if shape is None:
            if t.dynamic:
                raise UsageError(
                    f"{where}: input {t.name!r} has dynamic shape {_fmt(t.shape)}; pass shapes={{{t.name!r}: (...)}}"
                )
            shape = t.shape
        shape = tuple(int(d) for d in shape)
        check_shape(t, shape, where, profile)
        shapes[t.name] = shape
    return shapes


def check_shape(t: TensorInfo, shape: Shape, where: str, profile: int = 0) -> None:
    """Raise a one-line error when ``shape`` (a shape tensor's values) is
    outside the range of the engine's optimization profile ``profile``."""
    if t.shape_tensor:
        _check_values(t, shape, where, profile)
        return
    if len(shape) != len(t.shape) or any(d >= 0 and s != d for s, d in zip(shape, t.shape, strict=True)):
        raise UsageError(f"{where}: input {t.name!r} shape {shape} does not match the engine's {_fmt(t.shape)}")
    bounds = _profile_bounds(t, where, profile)
    if bounds is None:
        return
    lo, hi = bounds
    if any(s < a or s > b for s, a, b in zip(shape, lo, hi, strict=False)):
        raise UsageError(
            f"{where}: input {t.name!r} shape {shape} is outside the engine's profile{f' {profile}' if profile else ''}: "
            f"min {tuple(lo)} .. max {tuple(hi)}"
        )


def _profile_bounds(t: TensorInfo, where: str, profile: int) -> tuple[Shape, Shape] | None:
    """(min, max) of ``t`` under optimization profile ``profile``; None when
    the engine records no profile for it; one line for a profile it lacks."""
    if not t.profiles:
        return None
    if profile >= len(t.profiles):
        raise UsageError(f"{where}: the engine has {len(t.profiles)} optimization profile(s), not profile {profile}")
    lo, _opt, hi = t.profiles[profile]
    return lo, hi


def _check_values(t: TensorInfo, values: Shape, where: str, profile: int) -> None:
    if len(values) != t.volume:
        raise UsageError(f"{where}: input {t.name!r} is a shape tensor of {t.volume} value(s); got {len(values)}: {values}")
    bounds = _profile_bounds(t, where, profile)
    if bounds is None:
        return
    lo, hi = bounds
    if any(v < a or v > b for v, a, b in zip(values, lo, hi, strict=False)):
        raise UsageError(
            f"{where}: shape tensor {t.name!r} values {values} are outside profile {profile}: "
            f"min {tuple(lo)} .. max {tuple(hi)}"
        )


def random_array(t: TensorInfo, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Realistic random data for ``t``: N(0, 1) floats, small positive integers, mixed bools."""
    dtype = numpy_dtype(t.dtype)
    if t.dtype in ("float32", "float16", "float64", "bfloat16", "float8_e4m3fn"):
        data = rng.standard_normal(shape, dtype=np.float32)
        data[data == 0] = 0.5  # never zero
        try:
            return data.astype(dtype)
        except (TypeError, ValueError):
            return data.view(np.uint32).astype(dtype)
    if t.dtype == "bool":
        data = rng.random(shape) < 0.5
        data.flat[0] = True
        return data
    if t.dtype in ("int8", "int32", "int64", "uint8"):
        # Small positive values: valid as token ids and indices, never all zero.
        return rng.integers(1, 64, size=shape).astype(dtype)
    return rng.integers(1, 127, size=shape).astype(dtype)


def load_inputs(
    inputs: tuple[TensorInfo, ...],
    shapes: Mapping[str, Shape],
    user: Mapping[str, Any] | str | Path | None,
    seed: int,
    where: str,
) -> dict[str, np.ndarray]:
    """Host arrays for every input: the user's where given, random otherwise."""
    rng = np.random.default_rng(seed)
    provided = _read_user(user, where)
    names = {t.name for t in inputs}
    for name in provided:
        if name not in names:
            raise UsageError(f"{where}: inputs= names {name!r}, which the engine does not have ({', '.join(sorted(names))})")
    out: dict[str, np.ndarray] = {}
    for t in inputs:
        shape = tuple(shapes[t.name])
        dtype = numpy_dtype(t.dtype)
        value = provided.get(t.name)
        if t.shape_tensor:
            if value is not None:
                raise UsageError(f"{where}: input {t.name!r} is a shape tensor: give its values in shapes=, not inputs=")
            out[t.name] = np.ascontiguousarray(np.asarray(shape, dtype=dtype))
            continue
        if value is None:
            out[t.name] = np.ascontiguousarray(random_array(t, shape, rng))
            continue
        if isinstance(value, Path) and value.suffix != ".npy":
            out[t.name] = _read_bin(value, t, shape, dtype, where)
            continue
        arr = np.load(value) if isinstance(value, Path) else np.asarray(value)
        if tuple(arr.shape) != shape:
            raise UsageError(f"{where}: input {t.name!r}: data has shape {tuple(arr.shape)}, the run uses {shape}")
        if arr.dtype != dtype:
            if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
                raise UsageError(f"{where}: input {t.name!r}: data is {arr.dtype}, the engine wants {t.dtype}")
            arr = arr.astype(dtype)
        out[t.name] = np.ascontiguousarray(arr)
    return out


def user_shapes(user: Mapping[str, Any] | str | Path | None, where: str) -> dict[str, Shape]:
    """Shapes implied by user arrays / ``.npy`` files (raw ``.bin`` has none)."""
    shapes = {}
    for name, value in _read_user(user, where).items():
        if isinstance(value, Path):
            if value.suffix == ".npy":
                shapes[name] = tuple(np.load(value, mmap_mode="r").shape)
        else:
            shapes[name] = tuple(np.asarray(value).shape)
    return shapes


def _read_user(user: Mapping[str, Any] | str | Path | None, where: str) -> dict[str, Any]:
    if user is None:
        return {}
    if isinstance(user, (str, Path)):
        path = Path(user)
        if path.suffix != ".npz":
            raise UsageError(f"{where}: inputs={str(path)!r}: a single file must be .npz; use a dict for .npy/.bin per input")
        if not path.is_file():
            raise UsageError(f"{where}: input data file not found: {path}")
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}
    out: dict[str, Any] = {}
    for name, value in user.items():
        if isinstance(value, (str, Path)):
            path = Path(value)
            if not path.is_file():
                raise UsageError(f"{where}: input {name!r}: data file not found: {path}")
            out[name] = path
        else:
            out[name] = value
    return out


def _read_bin(path: Path, t: TensorInfo, shape: Shape, dtype: np.dtype, where: str) -> np.ndarray:
    data = path.read_bytes()
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise UsageError(
            f"{where}: input {t.name!r}: {path} has {len(data)} bytes, shape {shape} of {t.dtype} needs {expected}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _fmt(dims: Shape) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in dims) + ")"
