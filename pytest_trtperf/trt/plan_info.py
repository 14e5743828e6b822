"""What a plan file says about itself (``pytest-trtperf plan-info FILE.plan``).

The header needs no library and no GPU: a serialized engine starts with a
four-byte tag (``ftrt`` TensorRT, ``vtrt`` TensorRT-RTX), a 32-bit
serialization version, and, for serialization version 0, the version of the
library that built it in bytes 24..27 (major, minor, patch, build) -- what
``trtexec --getPlanVersionOnly`` prints. I/O tensors and optimization
profiles need the engine deserialized, which both libraries only do on a
GPU; without one, a plan from our engine cache still has them in its record
(``<key>.json`` next to ``<key>.plan``, checked by SHA-256), and any other
plan gets one line saying why the rest needs a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_trtperf.core.errors import BackendUnavailable, TrtPerfError, UsageError
from pytest_trtperf.core.files import UnreadableFile, read_regular_file
from pytest_trtperf.trt.tensors import TensorInfo

HEADER_BYTES = 28
#: Largest plan read (README "plan-info"). Engines with their weights reach a
#: few GiB (a 7B-parameter model in FP16 is about 14 GiB); the whole plan is
#: read because deserializing and the cache record's SHA-256 need it. Devices
#: (a link to /dev/zero) and FIFOs are refused before any read; the limit bounds
#: what a regular file can make us allocate.
MAX_PLAN_BYTES = 32 * 2**30
#: Largest engine cache record (``<key>.json``) read beside a plan.
MAX_RECORD_BYTES = 16 * 2**20
#: Tag -> (backend name, label).
TAGS = {b"ftrt": ("tensorrt", "TensorRT"), b"vtrt": ("tensorrt_rtx", "TensorRT-RTX")}
#: Serialization versions whose header layout is known (trtexec's printPlanVersion).
KNOWN_SERIALIZATION = (0,)


@dataclass(frozen=True)
class PlanHeader:
    backend: str
    label: str
    serialization: int
    version: str

    @property
    def built_by(self) -> str:
        return f"{self.label} {self.version}"


@dataclass
class PlanInfo:
    path: Path
    size: int
    header: PlanHeader
    #: The library this process has for the plan (label and version), or None.
    installed: str | None = None
    io: tuple[TensorInfo, ...] | None = None
    #: Where ``io`` came from: "engine" (deserialized) or "engine cache record".
    io_source: str | None = None
    profiles: int | None = None
    device_memory_bytes: int | None = None
    layers: int | None = None
    #: One line: why the engine was not deserialized here.
    not_deserialized: str | None = None
    notes: list[str] = field(default_factory=list)


def read_header(data: bytes, source: str) -> PlanHeader:
    """Parse the header; one-line ``UsageError`` for anything that is not a
    plan this module can read."""
    if len(data) < HEADER_BYTES:
        raise UsageError(f"{source}: {len(data)} bytes is too short for a TensorRT plan (header is "
                         f"{HEADER_BYTES} bytes); pass a file written by trtexec --saveEngine or a builder")
    tag = bytes(data[:4])
    if tag not in TAGS:
        raise UsageError(f"{source}: not a TensorRT or TensorRT-RTX plan (starts with {tag!r}, expected "
                         f"b'ftrt' or b'vtrt'); pass a serialized engine")
    backend, label = TAGS[tag]
    serialization = int.from_bytes(data[4:8], "little")
    if serialization not in KNOWN_SERIALIZATION:
        raise UsageError(f"{source}: {label} plan with serialization version {serialization}, whose header "
                         f"layout is unknown here; trtexec --getPlanVersionOnly --loadEngine={source} can read it")
    version = ".".join(str(b) for b in data[24:28])
    return PlanHeader(backend=backend, label=label, serialization=serialization, version=version)


def cache_record(path: Path, plan: bytes) -> dict[str, Any] | None:
    """The engine cache's record of this plan (``<key>.json``), when it
    exists and matches the plan's bytes."""
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(read_regular_file(meta_path, limit=MAX_RECORD_BYTES).decode("utf-8"))
    except (UnreadableFile, ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(plan).hexdigest():
        return None
    return meta


def plan_info(path: Path, *, allow_host_code: bool = False) -> PlanInfo:
    """Everything this machine can say about the plan at ``path``."""
    path = Path(path)
    if not os.path.lexists(path):
        raise UsageError(f"{path}: no such file; pass the path of a .plan/.engine file")
    try:
        # Regular files only, never a FIFO (it would block) or a device (/dev/zero never ends).
        plan = read_regular_file(path, limit=MAX_PLAN_BYTES)
    except UnreadableFile as e:
        raise UsageError(f"{path} {e}; pass the path of a .plan/.engine file (a regular file of at most "
                         f"{MAX_PLAN_BYTES >> 30} GiB)") from None
    info = PlanInfo(path=path, size=len(plan), header=read_header(plan, str(path)))
    _deserialize(info, plan, allow_host_code)
    if info.io is None:
        record = cache_record(path, plan)
        if record is not None and isinstance(record.get("io"), list):
            info.io = tuple(TensorInfo.from_dict(t) for t in record["io"])
            info.io_source = "engine cache record"
            info.profiles = max((len(t.profiles) for t in info.io if t.is_input), default=None)
    return info


def _deserialize(info: PlanInfo, plan: bytes, allow_host_code: bool) -> None:
    from pytest_trtperf.trt.backend import load_backend

    h = info.header
    try:
        backend = load_backend(h.backend)
    except BackendUnavailable as exc:
        info.not_deserialized = f"{h.label} is not installed here ({exc})"
        return
    info.installed = backend.label
    from pytest_trtperf.trt.api import engine_from_plan
    from pytest_trtperf.trt.engine import deserialize, introspect

    handle = engine_from_plan(backend, plan, where=str(info.path), source=str(info.path),
                              allow_host_code=allow_host_code)
    try:
        live = deserialize(handle)
    except TrtPerfError as exc:  # BackendUnavailable (no GPU) or UsageError (the library refused the plan)
        info.not_deserialized = str(exc)
        return
    info.io = introspect(backend, live.engine)
    info.io_source = "engine"
    info.profiles = int(live.engine.num_optimization_profiles)
    info.device_memory_bytes = live.device_memory_bytes
    layers = getattr(live.engine, "num_layers", None)
    info.layers = int(layers) if layers is not None else None
    info.notes += list(live.notes)


def to_dict(info: PlanInfo) -> dict[str, Any]:
    h = info.header
    return {
        "path": str(info.path),
        "size": info.size,
        "library": h.backend,
        "built_by": h.built_by,
        "version": h.version,
        "serialization": h.serialization,
        "installed": info.installed,
        "io_source": info.io_source,
        "io": [t.to_dict() for t in info.io] if info.io is not None else None,
        "profiles": info.profiles,
        "device_memory_bytes": info.device_memory_bytes,
        "layers": info.layers,
        "not_deserialized": info.not_deserialized,
        "notes": list(info.notes),
    }


def _shape(s: tuple[int, ...]) -> str:
    return "(" + ", ".join("?" if d < 0 else str(d) for d in s) + ")"


def render(info: PlanInfo) -> list[str]:
    """Human lines, as ``trtexec --getPlanVersionOnly`` plus the I/O."""
    h = info.header
    out = [f"{info.path}: {h.label} plan, {info.size} bytes",
           f"Plan was created with {h.label} version {h.version}"]
    if info.installed is not None:
        same = info.installed == h.built_by
        out.append(f"installed here: {info.installed}" + ("" if same else " (not the version that built the plan)"))
    if info.io is None:
        out.append(f"I/O tensors and profiles: unknown; they need the engine deserialized, which failed here: "
                   f"{info.not_deserialized}")
    else:
        source = "" if info.io_source == "engine" else f" (from the {info.io_source})"
        out.append(f"I/O tensors{source}:")
        for t in info.io:
            kind = "shape tensor input" if t.shape_tensor else t.mode
            out.append(f"  {t.name}: {kind}, {t.dtype}, {_shape(t.shape)}")
            for k, (lo, opt, hi) in enumerate(t.profiles):
                what = "values" if t.shape_tensor else "shapes"
                out.append(f"    profile {k} {what}: min {_shape(tuple(lo))} opt {_shape(tuple(opt))} "
                           f"max {_shape(tuple(hi))}")
    if info.profiles is not None:
        out.append(f"optimization profiles: {info.profiles}")
    if info.device_memory_bytes is not None:
        out.append(f"device memory per execution context: {info.device_memory_bytes / (1 << 20):.1f} MiB")
    if info.layers is not None:
        out.append(f"layers: {info.layers}")
    out += [f"note: {n}" for n in info.notes]
    if info.io is not None and info.not_deserialized is not None:
        out.append(f"engine not deserialized here: {info.not_deserialized}")
    return out
