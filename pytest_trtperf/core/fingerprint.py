"""Environment fingerprint and device class.

The device class picks the baseline file (one per GPU model + TensorRT version
line; for host workloads, CPU model + Python implementation). Inside a class,
the fingerprint's ``critical`` part must match for a comparison to be made at
all (clock lock state, workload kind); its ``info`` part (driver, CUDA, Python
patch version, ...) is reported when it changed but does not block comparing.
"""

from __future__ import annotations

import functools
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fingerprint:
    device_class: str
    critical: Mapping[str, Any]
    info: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"device_class": self.device_class, "critical": dict(self.critical), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fingerprint:
        return cls(device_class=d.get("device_class", ""), critical=dict(d.get("critical", {})),
                   info=dict(d.get("info", {})))


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name, as stable as the platform allows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5, check=False).stdout.strip()
            if out:
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def host_fingerprint(kind: str = "host") -> Fingerprint:
    """Fingerprint of a host-timed workload of ``kind`` (its ``critical.kind``:
    a baseline entry's kind must agree with it)."""
    impl = platform.python_implementation()
    return Fingerprint(
        device_class=f"host {cpu_model()} {impl}",
        critical={"kind": kind},
        info={
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
        },
    )


def gpu_fingerprint(*, kind: str, gpu_name: str, compute_capability: str, trt_version: str | None,
                    clocks: str, info: Mapping[str, Any]) -> Fingerprint:
    """Fingerprint of a GPU workload. ``trt_version`` adds the TensorRT line
    (major.minor) to the device class, so each version line gets its own file."""
    line = ""
    if trt_version:
        parts = trt_version.split(".")
        line = f" trt{'.'.join(parts[:2])}"
    return Fingerprint(
        device_class=f"{gpu_name} sm{compute_capability.replace('.', '')}{line}",
        critical={"kind": kind, "clocks": clocks},
        info={"trt": trt_version, **dict(info)},
    )


def incomparable_reason(baseline: Fingerprint, current: Fingerprint) -> str | None:
    """Why two fingerprints must not be compared, or None."""
    if baseline.device_class != current.device_class:
        return f"device class {baseline.device_class!r} != {current.device_class!r}"
    for key in sorted(set(baseline.critical) | set(current.critical)):
        b, c = baseline.critical.get(key), current.critical.get(key)
        if b != c:
            return f"{key} {b!r} != {c!r}"
    return None


def info_changes(baseline: Fingerprint, current: Fingerprint) -> list[str]:
    """Human-readable list of non-critical environment changes."""
    out = []
    for key in sorted(set(baseline.info) | set(current.info)):
        b, c = baseline.info.get(key), current.info.get(key)
        if b != c:
            out.append(f"{key} {b} -> {c}")
    return out


_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")
#: What :func:`slug` makes of the device classes this package writes: ``host-...``
#: (``host_fingerprint``), ``...-sm90`` with an optional ``-trt10.13`` /
#: ``-trtrtx1.7`` (``gpu_fingerprint``), or anything with the short hash that a
#: lossy or cut name gets.
_SLUG_FORMS = re.compile(r"host-[a-z0-9._-]+|[a-z0-9._-]+-sm\d+(?:-trt[a-z]*\d+(?:\.\d+)*)?|[a-z0-9._-]+-[0-9a-f]{8}")


def slug(device_class: str) -> str:
    """File-name-safe form of a device class: lowercase ``[a-z0-9._-]``, never
    starting with a dot, at most about 90 characters. When anything but white
    space had to be replaced, or the name was cut, a short hash of the full
    name keeps distinct classes in distinct files."""
    import hashlib

    spaced = "-".join(device_class.lower().split())
    s = _SLUG_BAD.sub("-", spaced).strip("-.")
    lossy = s != spaced or not s
    s = s or "device"
    if len(s) > 80:
        s, lossy = s[:80].rstrip("-."), True
    if lossy:
        s += "-" + hashlib.sha256(device_class.encode()).hexdigest()[:8]
    return s


def git_commit(cwd: str) -> str | None:
    """HEAD of the repository the tests live in, if any: read at each call (once
    per written file), never cached, since HEAD moves between two sessions of
    one process and side by side measures the commit an entry names."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def is_slug_form(stem: str) -> bool:
    """Whether ``stem`` has the form :func:`slug` gives this package's device
    classes (a baseline file name without ``.json``): the baseline store treats
    such a file as its own even when it cannot read it."""
    return _SLUG_FORMS.fullmatch(stem) is not None and not stem.startswith(".")
