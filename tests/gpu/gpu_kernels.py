"""Known-duration GPU kernels for tests and bench/fidelity.py.

``spin(ns)`` busy-waits on the ``%globaltimer`` register for ``ns`` nanoseconds
in one thread: its duration is known without trusting any timer we are
testing. Compiled at run time with NVRTC (cuda.bindings.nvrtc), loaded and
launched through the driver API on the runtime's primary context.
"""

from __future__ import annotations

import ctypes
from typing import Any

SOURCE = r"""
extern "C" __global__ void spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}

extern "C" __global__ void add_one(float* x, unsigned long long n) {
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}
"""


def _check(res: Any, what: str) -> Any:
    err = res[0]
    if int(err) != 0:
        raise RuntimeError(f"{what} failed: {err!r}")
    return res[1] if len(res) == 2 else res[1:]


class Kernels:
    """The compiled module; ``spin`` and ``add_one`` launchers take a stream int."""

    def __init__(self) -> None:
        from cuda.bindings import driver, nvrtc

        from pytest_trtperf.gpu import cuda

        cuda.runtime().cudaFree(0)  # make the primary context current
        major, minor = cuda.compute_capability()
        prog = _check(nvrtc.nvrtcCreateProgram(SOURCE.encode(), b"k.cu", 0, [], []), "nvrtcCreateProgram")
        opts = [f"--gpu-architecture=sm_{major}{minor}".encode()]
        err = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
        if int(err) != 0:
            size = _check(nvrtc.nvrtcGetProgramLogSize(prog), "log size")
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError(f"NVRTC compile failed: {log.decode(errors='replace')}")
        size = _check(nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
        cubin = b" " * size
        _check((nvrtc.nvrtcGetCUBIN(prog, cubin)[0], None), "nvrtcGetCUBIN")
        self._driver = driver
        self.module = _check(driver.cuModuleLoadData(cubin), "cuModuleLoadData")
        self._spin = _check(driver.cuModuleGetFunction(self.module, b"spin"), "get spin")
        self._add = _check(driver.cuModuleGetFunction(self.module, b"add_one"), "get add_one")
        self._u64 = ctypes.c_uint64

    def spin(self, stream: int, ns: int) -> None:
        """Launch one thread that spins ``ns`` nanoseconds on ``stream``."""
        err = self._driver.cuLaunchKernel(self._spin, 1, 1, 1, 1, 1, 1, 0, stream,
                                          ((int(ns),), (self._u64,)), 0)[0]
        if int(err) != 0:
            raise RuntimeError(f"cuLaunchKernel(spin) failed: {err!r}")

    def add_one(self, stream: int, ptr: int, n: int) -> None:
        """x[i] += 1 for n float32 values at device pointer ``ptr``."""
        blocks = (n + 255) // 256
        err = self._driver.cuLaunchKernel(self._add, blocks, 1, 1, 256, 1, 1, 0, stream,
                                          ((int(ptr), int(n)), (ctypes.c_void_p, self._u64)), 0)[0]
        if int(err) != 0:
            raise RuntimeError(f"cuLaunchKernel(add_one) failed: {err!r}")
