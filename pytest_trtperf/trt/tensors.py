"""Plain descriptions of an engine's I/O tensors.

Kept apart from live TensorRT objects so the engine cache can store them next
to a plan and shape checks work on machines that cannot deserialize engines
(no GPU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]
#: (min, opt, max) of one input under one optimization profile.
ProfileRange = tuple[Shape, Shape, Shape]

#: TensorRT ``DataType`` member name -> our dtype name.
DTYPE_NAMES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
    "FP8": "float8_e4m3fn",
    "INT4": "int4",
    "FP4": "float4_e2m1fn",
    "E8M0": "float8_e8m0fnu",
}

#: Bytes per element for types numpy lacks (sub-byte types round up).
_ITEMSIZE = {"bfloat16": 2, "float8_e4m3fn": 1, "int4": 1, "float4_e2m1fn": 1, "float8_e8m0fnu": 1}


def dims(value: Any) -> Shape:
    """A ``trt.Dims`` (or any sequence) as a tuple of ints. Dims iterate by
    ``__getitem__`` at run time; the stubs give them no ``__iter__``, so index."""
    return tuple(int(value[i]) for i in range(len(value)))


def dtype_name(trt_dtype: Any) -> str:
    """Our name for a TensorRT ``DataType`` (enum member or its name)."""
    name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1]
    return DTYPE_NAMES.get(name, name.lower())


def numpy_dtype(name: str) -> np.dtype:
    """A numpy dtype for ``name``; ``ml_dtypes`` for bfloat16/fp8 when installed,
    else an unsigned integer of the same size (the bytes are what matters)."""
    import numpy as np  # here, not at the top: loading the plugin must not load numpy

    try:
        return np.dtype(name)
    except TypeError:
        pass
    try:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    except (ImportError, AttributeError, TypeError):
        return np.dtype(f"uint{8 * _ITEMSIZE.get(name, 1)}")


@dataclass(frozen=True)
class TensorInfo:
    """One I/O tensor: ``shape`` has -1 for dynamic dimensions.

    A *shape tensor* input (``ICudaEngine.is_shape_inference_io``: its values
    are a shape, read by TensorRT on the host) is given values, not a shape:
    its ``profiles`` hold (min, opt, max) *values* per profile, and its data
    lives in host memory (trtexec ``--shapes=name:2x8`` sets the values).
    """

    name: str
    mode: str  # "input" | "output"
    dtype: str
    shape: Shape
    #: One (min, opt, max) per optimization profile; inputs only.
    profiles: tuple[ProfileRange, ...] = ()
    shape_tensor: bool = False

    @property
    def is_input(self) -> bool:
        return self.mode == "input"

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)

    @property
    def volume(self) -> int:
        """Element count of a static shape (shape tensors: how many values)."""
        n = 1
        for d in self.shape:
            n *= max(int(d), 0)
        return n

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "profiles": [[list(s) for s in p] for p in self.profiles],
            "shape_tensor": self.shape_tensor,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorInfo:
        return cls(
            name=d["name"],
            mode=d["mode"],
            dtype=d["dtype"],
            shape=tuple(d["shape"]),
            # Written by to_dict: [min, opt, max] per profile.
            profiles=cast("tuple[ProfileRange, ...]", tuple(tuple(tuple(s) for s in p) for p in d.get("profiles", ()))),
            shape_tensor=bool(d.get("shape_tensor", False)),
        )
