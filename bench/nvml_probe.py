"""Read-only NVML probe for a GPU machine: what clocks could be locked, what
the card is doing now, and whether this process may change clocks.

It never calls an NVML ``Set*``/``Reset*`` function: whether locking would be
allowed is inferred from the user id, the capabilities and NVML's API
restriction flags. Prints a compact table and exits 0 (also without NVML).

    PYTHONPATH=$PWD python bench/nvml_probe.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


from pytest_trtperf.gpu import nvml  # noqa: E402
from pytest_trtperf.core.errors import BackendUnavailable  # noqa: E402


def attempt(fn, *args):  # type: ignore[no-untyped-def]
    """Value of ``fn(*args)``, or the NVML error as short text."""
    try:
        return fn(*args)
    except Exception as exc:  # NVML errors and friends, reported not raised
        return f"n/a ({nvml.error_kind(exc) if nvml.is_nvml_error(exc) else type(exc).__name__})"


def clock_range(clocks: object) -> str:
    if not isinstance(clocks, list) or not clocks:
        return str(clocks)
    return f"{min(clocks)}..{max(clocks)} MHz ({len(clocks)} steps)"


def cap_sys_admin() -> str:
    """Whether CAP_SYS_ADMIN is in this process's effective set (containers)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return "yes" if int(line.split()[1], 16) & (1 << 21) else "no"
    except (OSError, ValueError):
        pass
    return "unknown"


def rows_for(index: int, d: nvml.Device) -> list[tuple[str, object]]:
    mem_clocks = attempt(d.supported_memory_clocks)
    top_mem = mem_clocks[0] if isinstance(mem_clocks, list) and mem_clocks else None
    sm_clocks = attempt(d.supported_graphics_clocks, top_mem) if top_mem else "n/a"
    reasons = attempt(d.event_reasons)
    pids = attempt(d.compute_pids)
    return [
        ("name", attempt(d.name)),
        ("uuid", attempt(d.uuid)),
        ("pci bus id", attempt(d.pci_bus_id)),
        ("supported memory clocks", clock_range(mem_clocks)),
        (f"supported SM clocks @ mem {top_mem}", clock_range(sm_clocks)),
        ("default applications clock SM / mem", f"{attempt(d.default_applications_clock, 'graphics')} / {attempt(d.default_applications_clock, 'mem')}"),
        ("applications clock SM / mem", f"{attempt(d.applications_clock, 'graphics')} / {attempt(d.applications_clock, 'mem')}"),
        ("max clock SM / mem", f"{attempt(d.max_clock, 'sm')} / {attempt(d.max_clock, 'mem')}"),
        ("current clock SM / mem", f"{attempt(d.clock, 'sm')} / {attempt(d.clock, 'mem')}"),
        ("power now / enforced limit (W)", f"{attempt(d.power_w)} / {attempt(d.power_limit_w)}"),
        ("temperature (C)", attempt(d.temperature_c)),
        ("clock-event reasons", ", ".join(nvml.decode_reasons(reasons)) or "none" if isinstance(reasons, int) else reasons),
        ("compute processes (pids)", ", ".join(map(str, pids)) or "none" if isinstance(pids, tuple) else pids),
        ("API restricted: set app clocks", attempt(d.api_restricted, "application_clocks")),
        ("API restricted: auto boost", attempt(d.api_restricted, "auto_boosted_clocks")),
    ]


def main() -> int:
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    print("trtperf NVML probe (read-only: no clock is changed)")
    print(f"  euid                      {euid} ({'root' if euid == 0 else 'not root'})")
    print(f"  CAP_SYS_ADMIN effective   {cap_sys_admin()}")
    print(f"  CUDA_VISIBLE_DEVICES      {os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
    try:
        nv = nvml.init()
    except BackendUnavailable as exc:
        print(f"  NVML                      {exc}")
        return 0
    try:
        print(f"  NVML module               {getattr(nv, '__file__', nv.__name__)}")
        print(f"  driver                    {attempt(nvml.driver_version)}")
        count = nvml.device_count()
        print(f"  GPUs                      {count}")
        for i in range(count):
            print(f"GPU {i} (NVML index)")
            for key, value in rows_for(i, nvml.by_index(i)):
                print(f"  {key:<38} {value}")
        print(
            "locking needs: root (euid 0) and, in a container, CAP_SYS_ADMIN; "
            "'API restricted' flags concern application clocks (nvidia-smi -acp), not locked clocks"
        )
        likely = euid == 0 and cap_sys_admin() != "no"
        print(f"lock clocks likely allowed: {'yes' if likely else 'no'} (inferred, nothing was tried)")
    finally:
        nvml.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
