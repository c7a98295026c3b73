"""Every JIT option of lowbit lives here.

fastmath is never enabled: it licenses reassociation and flush-to-zero, which break the
bit-exact rounding the kernels exist for. numba.cuda is imported (through lowbit.lazy) only when a CUDA target is built.
"""

from __future__ import annotations

from collections.abc import Callable

import numba

from ...lazy import numba_cuda

CPU_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
CPU_PARALLEL_OPTIONS = {**CPU_OPTIONS, "parallel": True}
CUDA_DEVICE_OPTIONS = {"device": True, "fastmath": False}
CUDA_KERNEL_OPTIONS = {"fastmath": False}


def cpu_device(fn: Callable) -> Callable:
    """Compile a scalar function for the CPU (inlined into the array drivers)."""
    return numba.njit(inline="always", **CPU_OPTIONS)(fn)


def cpu_parallel(fn: Callable) -> Callable:
    """Compile an array driver for the CPU with a prange loop over all cores."""
    return numba.njit(**CPU_PARALLEL_OPTIONS)(fn)


def cuda_device(fn: Callable) -> Callable:
    """Compile a scalar function as a CUDA device function."""
    return numba_cuda().jit(**CUDA_DEVICE_OPTIONS)(fn)


def cuda_kernel(fn: Callable) -> Callable:
    """Compile a grid-stride CUDA kernel."""
    return numba_cuda().jit(**CUDA_KERNEL_OPTIONS)(fn)
