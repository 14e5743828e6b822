"""Input shapes checked against the profile; random and user input data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_trtperf.core.errors import UsageError
from pytest_trtperf.trt.inputs import check_shape, load_inputs, random_array, resolve_shapes, user_shapes
from pytest_trtperf.trt.tensors import TensorInfo

WHERE = "test_x.py::test_inputs"
IMG = TensorInfo("images", "input", "float16", (-1, 3, 8, 8), (((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8)),))
IDS = TensorInfo("ids", "input", "int64", (-1, 5), (((1, 5), (4, 5), (16, 5)),))
MASK = TensorInfo("mask", "input", "bool", (2, 5))


def test_out_of_profile_shape_is_one_line_with_range() -> None:
    with pytest.raises(UsageError) as exc:
        resolve_shapes((IMG,), {"images": (32, 3, 8, 8)}, None, WHERE)
    assert str(exc.value) == (
        f"{WHERE}: input 'images' shape (32, 3, 8, 8) is outside the engine's profile: "
        "min (1, 3, 8, 8) .. max (16, 3, 8, 8)"
    )


def test_static_dims_rank_unknown_and_missing_inputs() -> None:
    with pytest.raises(UsageError, match=r"shape \(4, 3, 9, 8\) does not match the engine's \(\?, 3, 8, 8\)"):
        check_shape(IMG, (4, 3, 9, 8), WHERE)
    with pytest.raises(UsageError, match="no input 'image'; its inputs are images, ids"):
        resolve_shapes((IMG, IDS), {"image": (1, 3, 8, 8)}, None, WHERE)
    with pytest.raises(UsageError, match=r"input 'ids' has dynamic shape \(\?, 5\); pass shapes="):
        resolve_shapes((IMG, IDS), {"images": (1, 3, 8, 8)}, None, WHERE)


def test_requested_over_default_over_static() -> None:
    shapes = resolve_shapes((IMG, IDS, MASK), {"images": (2, 3, 8, 8)}, {"images": (4, 3, 8, 8), "ids": (3, 5)}, WHERE)
    assert shapes == {"images": (2, 3, 8, 8), "ids": (3, 5), "mask": (2, 5)}


@pytest.mark.parametrize("t", [IMG, IDS, MASK, TensorInfo("u8", "input", "uint8", (64,)),
                               TensorInfo("f32", "input", "float32", (64,)), TensorInfo("bf", "input", "bfloat16", (64,))])
def test_random_inputs_are_realistic_and_never_all_zero(t: TensorInfo) -> None:
    shape = tuple(4 if d < 0 else d for d in t.shape)
    a = random_array(t, shape, np.random.default_rng(0))
    b = random_array(t, shape, np.random.default_rng(0))
    assert a.shape == shape and np.array_equal(a, b)  # seeded
    if t.dtype == "bool":
        assert 0 < np.count_nonzero(a) < a.size  # mixed
    else:
        assert np.count_nonzero(a) > a.size // 2
    if t.dtype.startswith("float"):
        f = a.astype(np.float32)
        assert f.min() < 0 < f.max() and abs(float(f.mean())) < 1.0 and 0.3 < float(f.std()) < 3
    if t.dtype in ("int64", "uint8"):
        assert a.min() >= 1  # valid as ids / indices


def test_seed_changes_data() -> None:
    a = load_inputs((IMG,), {"images": (2, 3, 8, 8)}, None, 0, WHERE)["images"]
    b = load_inputs((IMG,), {"images": (2, 3, 8, 8)}, None, 1, WHERE)["images"]
    assert a.dtype == np.float16 and not np.array_equal(a, b)


def test_user_arrays_npy_npz_and_bin(tmp_path: Path) -> None:
    ids = np.arange(10, dtype=np.int64).reshape(2, 5)
    np.save(tmp_path / "ids.npy", ids)
    img = np.ones((2, 3, 8, 8), np.float16)
    img.tofile(tmp_path / "images.bin")
    shapes = {"images": (2, 3, 8, 8), "ids": (2, 5)}
    got = load_inputs((IMG, IDS), shapes, {"images": str(tmp_path / "images.bin"), "ids": str(tmp_path / "ids.npy")}, 0, WHERE)
    assert np.array_equal(got["ids"], ids) and np.array_equal(got["images"], img)
    np.savez(tmp_path / "all.npz", images=img, ids=ids)
    got = load_inputs((IMG, IDS), shapes, str(tmp_path / "all.npz"), 0, WHERE)
    assert np.array_equal(got["ids"], ids)
    got = load_inputs((IMG, IDS), shapes, {"ids": ids.astype(np.int32)}, 0, WHERE)  # safe cast
    assert got["ids"].dtype == np.int64 and np.count_nonzero(got["images"]) > 0  # the rest random
    assert user_shapes({"ids": str(tmp_path / "ids.npy"), "images": str(tmp_path / "images.bin")}, WHERE) == {"ids": (2, 5)}


def test_user_data_errors_name_input_and_file(tmp_path: Path) -> None:
    shapes = {"images": (2, 3, 8, 8)}
    (tmp_path / "short.bin").write_bytes(b"\x01" * 10)
    with pytest.raises(UsageError, match=r"input 'images': .*short\.bin has 10 bytes, shape \(2, 3, 8, 8\) of float16 needs 768"):
        load_inputs((IMG,), shapes, {"images": str(tmp_path / "short.bin")}, 0, WHERE)
    with pytest.raises(UsageError, match=r"input 'images': data has shape \(1, 3, 8, 8\), the run uses \(2, 3, 8, 8\)"):
        load_inputs((IMG,), shapes, {"images": np.ones((1, 3, 8, 8), np.float16)}, 0, WHERE)
    with pytest.raises(UsageError, match="input 'images': data file not found"):
        load_inputs((IMG,), shapes, {"images": str(tmp_path / "nope.npy")}, 0, WHERE)
    with pytest.raises(UsageError, match="names 'imgs', which the engine does not have"):
        load_inputs((IMG,), shapes, {"imgs": np.ones(3)}, 0, WHERE)
    with pytest.raises(UsageError, match="data is float64, the engine wants int64"):
        load_inputs((IDS,), {"ids": (2, 5)}, {"ids": np.ones((2, 5))}, 0, WHERE)
