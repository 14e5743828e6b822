"""The timing cache is merged under a lock next to it, never overwritten blindly.

Real processes, because the claim is about processes: two xdist workers that
build at once must not lose each other's entries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_trtperf.core.files import lock_path

ROOT = Path(__file__).resolve().parents[2]


def _spawn(code: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_file_lock_excludes_another_process(tmp_path: Path) -> None:
    """Two processes each hold the lock for 0.4 s; their intervals never overlap."""
    target = tmp_path / "timing.cache"
    code = f"""
        import json, sys, time
        from pytest_trtperf.core.files import file_lock
        with file_lock({str(target)!r}):
            t0 = time.time(); time.sleep(0.4); t1 = time.time()
        print(json.dumps([t0, t1]))
    """
    procs = [_spawn(code) for _ in range(2)]
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        spans.append(json.loads(out.strip().splitlines()[-1]))
    (a0, a1), (b0, b1) = sorted(spans)
    assert b0 >= a1 - 0.01, spans  # the second waited for the first
    assert lock_path(target).is_file() and lock_path(target).name == "timing.cache.lock"


def test_two_processes_building_at_once_both_save_through_the_lock(rtx, models: Path, tmp_path: Path) -> None:
    """Two real TensorRT-RTX builds of different models share one timing cache:
    both finish, the file is one complete cache (never half of one), no temp
    file is left. (TensorRT-RTX's caches hold no entries to merge; on TensorRT
    10/11 the merge keeps both builds' entries, see the next test.)"""
    cache = tmp_path / "shared" / "timing.cache"
    code = """
        import json, sys
        from pytest_trtperf.trt.backend import load_backend
        from pytest_trtperf.trt.build import build_plan
        from pytest_trtperf.trt.spec import EngineSpec
        b = load_backend("tensorrt_rtx")
        spec = EngineSpec.create("t", onnx=sys.argv[1], shapes={sys.argv[2]: tuple(json.loads(sys.argv[3]))},
                                 optimization_level=0)
        r = build_plan(b, spec, timing_cache=__import__("pathlib").Path(sys.argv[4]))
        print(json.dumps({"plan": len(r.plan), "notes": list(r.notes)}))
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    jobs = [
        (str(models / "mlp.onnx"), "input", "[4, 64]"),
        (str(models / "cnn.onnx"), "input", "[2, 3, 32, 32]"),
    ]
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), onnx, name, shape, str(cache)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for onnx, name, shape in jobs]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["plan"] > 0
    data = cache.read_bytes()
    alone = tmp_path / "alone.cache"
    from pytest_trtperf.trt.build import build_plan
    from pytest_trtperf.trt.spec import EngineSpec

    build_plan(rtx, EngineSpec.create("t", onnx=models / "mlp.onnx", shapes={"input": (4, 64)}, optimization_level=0),
               timing_cache=alone)
    assert data[:5] == alone.read_bytes()[:5] == b"ptrtd" and len(data) == len(alone.read_bytes())
    assert lock_path(cache).is_file()
    assert not [p for p in cache.parent.iterdir() if p.name.endswith(".tmp")]


def test_merge_keeps_entries_of_both_builds_on_full_tensorrt(tmp_path: Path) -> None:
    """Needs full TensorRT and a GPU (its timing caches hold entries)."""
    trt = pytest.importorskip("tensorrt", reason="needs full TensorRT")
    if not hasattr(trt, "Builder"):
        pytest.skip("'tensorrt' here is a stubs package, not TensorRT")
    from pytest_trtperf.gpu.cuda import unavailable_reason

    if unavailable_reason() is not None:
        pytest.skip(unavailable_reason())
    from pytest_trtperf.trt.backend import from_module
    from pytest_trtperf.trt.build import build_plan
    from pytest_trtperf.trt.spec import EngineSpec
    from tests import onnx_models

    backend = from_module(trt, "tensorrt")
    cache = tmp_path / "timing.cache"
    onnx_models.mlp(tmp_path / "mlp.onnx")
    onnx_models.cnn(tmp_path / "cnn.onnx")
    build_plan(backend, EngineSpec.create("t", onnx=tmp_path / "mlp.onnx", shapes={"input": (8, 64)}), timing_cache=cache)
    first = cache.read_bytes()
    build_plan(backend, EngineSpec.create("t", onnx=tmp_path / "cnn.onnx", shapes={"input": (8, 3, 32, 32)}),
               timing_cache=tmp_path / "other.cache")
    # The race: another worker saves its cache while the cnn build runs (after
    # this build loaded the then-empty file); the save must merge, not overwrite.
    race = tmp_path / "race.cache"
    written: list[bool] = []

    def other_worker_saves(event: object) -> None:
        if not written:
            race.write_bytes(first)
            written.append(True)

    build_plan(backend, EngineSpec.create("t", onnx=tmp_path / "cnn.onnx", shapes={"input": (8, 3, 32, 32)}),
               timing_cache=race, progress=other_worker_saves)
    assert written
    config = trt.Builder(backend.logger()).create_builder_config()
    keys = lambda path: {str(k) for k in config.create_timing_cache(path.read_bytes()).queryKeys()}  # noqa: E731
    assert keys(cache) and keys(cache) <= keys(tmp_path / "race.cache")
    assert keys(tmp_path / "other.cache") <= keys(tmp_path / "race.cache")


# -- the merge itself, on CPU: FakeTensorRT's timing cache ---------------------
# TensorRT-RTX's timing cache is a no-op (its queryKeys() is always empty and it
# warns that the API is deprecated), so the entries that must survive a merge
# can only be seen with full TensorRT on a GPU (above) or with the TensorRT 10
# double, whose ITimingCache follows the real rules (tests/trt/test_fake_surface.py).

BUILDER = """
    import json, sys, time
    from pathlib import Path
    from tests.fakes import fake_tensorrt as fake
    from pytest_trtperf.trt.backend import from_module
    from pytest_trtperf.trt.build import _load_timing_cache, _save_timing_cache

    name, cache, gate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    backend = from_module(fake, "tensorrt")
    config = fake.IBuilderConfig()
    notes = _load_timing_cache(backend, config, cache)  # what build_plan does before building ...
    fake.record_timings(config, [f"{name}-layer{i}" for i in range(3)] + ["shared-layer"])  # ... the build ...
    (gate / f"{name}.built").touch()
    while len(list(gate.glob("*.built"))) < 2:  # both loaded the same file and built before either saves
        time.sleep(0.01)
    notes += _save_timing_cache(backend, config, cache)  # ... and after
    print(json.dumps(notes))
"""


def _keys(data: bytes) -> list[str]:
    from tests.fakes import fake_tensorrt as fake

    cache = fake.IBuilderConfig().create_timing_cache(data)
    assert cache is not None
    return cache.queryKeys()


def test_two_builder_processes_merge_into_one_cache_under_the_lock(tmp_path: Path) -> None:
    """Two real processes load the same cache file, each builds (new entries),
    and both save while this process holds the file's lock: neither writes
    until the lock is free, and the file then has the earlier entries and
    both builds' (an overwrite would keep one build's only)."""
    from tests.fakes import fake_tensorrt as fake

    from pytest_trtperf.core.files import file_lock

    cache, gate = tmp_path / "timing.cache", tmp_path / "gate"
    gate.mkdir()
    earlier = fake.IBuilderConfig()
    earlier.set_timing_cache(earlier.create_timing_cache(b""), False)
    fake.record_timings(earlier, ["earlier-layer"])
    cache.write_bytes(bytes(earlier.get_timing_cache().serialize()))  # type: ignore[union-attr]
    with file_lock(cache):
        procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(BUILDER), name, str(cache), str(gate)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                      [str(ROOT), os.environ.get("PYTHONPATH", "")])))
                 for name in ("a", "b")]
        deadline = time.monotonic() + 120
        while len(list(gate.glob("*.built"))) < 2 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.02)
        time.sleep(0.3)  # both are in _save_timing_cache now, waiting for the lock
        assert all(p.poll() is None for p in procs)
        assert _keys(cache.read_bytes()) == ["earlier-layer"]  # nobody wrote under our lock
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == []  # merged: no note
    assert _keys(cache.read_bytes()) == sorted(["earlier-layer", "shared-layer", *(f"{n}-layer{i}" for n in "ab"
                                                                                   for i in range(3))])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_cache_of_another_version_or_garbage_is_replaced_with_a_note(tmp_path: Path) -> None:
    from tests.fakes import fake_tensorrt as fake

    from pytest_trtperf.trt.backend import from_module
    from pytest_trtperf.trt.build import _load_timing_cache, _save_timing_cache

    backend = from_module(fake, "tensorrt")
    other = fake.ITimingCache("10.12.0.36", None, {"old-layer": 1.0})
    for name, data in (("other_version", bytes(other.serialize())), ("garbage", b"not a timing cache")):
        path = tmp_path / f"{name}.cache"
        path.write_bytes(data)
        config = fake.IBuilderConfig()
        assert _load_timing_cache(backend, config, path) == [f"timing cache {path} is unreadable; building with a "
                                                             f"fresh one"]
        fake.record_timings(config, ["new-layer"])
        assert _save_timing_cache(backend, config, path) == [
            f"timing cache {path}: the timing cache on disk came from another TensorRT version or GPU; replaced it"]
        assert _keys(path.read_bytes()) == ["new-layer"]


def test_the_double_combines_as_the_real_cache_does() -> None:
    """Conflicting keys keep the local value; another version never combines;
    another device only with ignore_mismatch."""
    from tests.fakes import fake_tensorrt as fake

    ours = fake.ITimingCache(fake.__version__, [9, 0], {"k": 1.0})
    assert ours.combine(fake.ITimingCache(fake.__version__, [9, 0], {"k": 2.0, "j": 3.0}), False)
    assert ours._entries == {"k": 1.0, "j": 3.0}
    assert not ours.combine(fake.ITimingCache("10.12.0.36", [9, 0], {"x": 1.0}), True)
    gpu = fake.ITimingCache(fake.__version__, [8, 9], {"y": 1.0})
    assert not ours.combine(gpu, False) and ours.combine(gpu, True) and "y" in ours.queryKeys()
    config = fake.IBuilderConfig()
    assert config.get_timing_cache() is None and config.create_timing_cache(b"\x00junk") is None
    here = config.create_timing_cache(b"")
    elsewhere = fake.ITimingCache(fake.__version__, [1, 0])  # no such GPU
    assert config.set_timing_cache(here, False) and config.get_timing_cache() is here  # shared, not copied
    assert not config.set_timing_cache(elsewhere, False) and config.set_timing_cache(elsewhere, True)
    with pytest.raises(TypeError):
        ours.combine(b"not a cache", False)  # type: ignore[arg-type]
