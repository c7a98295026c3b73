"""Every JIT option of lowbit lives here.

fastmath is never enabled: it licenses reassociation and flush-to-zero, which break the
bit-exact rounding the kernels exist for. numba.cuda is imported (through lowbit.lazy) only when a CUDA target is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numba

from ...lazy import numba_cuda

CPU_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
CPU_PARALLEL_OPTIONS = {**CPU_OPTIONS, "parallel": True}
CUDA_DEVICE_OPTIONS = {"device": True, "fastmath": False}
CUDA_KERNEL_OPTIONS = {"fastmath": False}

# Below this many elements a CPU driver runs on the calling thread alone: waking the worker pool costs
# more than the work, and 50 times more when another pool spins on the same cores (PyTorch's OpenMP
# threads between the layers of a model: 8 ms instead of 0.17 ms for a 256 x 64 MXFP4 weight).
SERIAL_BELOW = 1 << 16


@contextlib.contextmanager
def threads_for(n: int) -> Iterator[None]:
    """Numba's thread count for the CPU drivers of a call over n elements: one thread below
    SERIAL_BELOW, the configured count otherwise (numba's setting is per calling thread)."""
    if n >= SERIAL_BELOW:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def cpu_device(fn: Callable) -> Callable:
    """Compile a scalar function for the CPU (inlined into the array drivers)."""
    return numba.njit(inline="always", **CPU_OPTIONS)(fn)


def cpu_function(fn: Callable) -> Callable:
    """Compile a function for the CPU that drivers call, neither inlined nor parallel (inlining the
    engine kernels' row functions into their parallel loops makes compilation take minutes)."""
    return numba.njit(**CPU_OPTIONS)(fn)


def cpu_parallel(fn: Callable) -> Callable:
    """Compile an array driver for the CPU with a prange loop over all cores."""
    return numba.njit(**CPU_PARALLEL_OPTIONS)(fn)


def cuda_device(fn: Callable) -> Callable:
    """Compile a scalar function as a CUDA device function."""
    return numba_cuda().jit(**CUDA_DEVICE_OPTIONS)(fn)


def cuda_kernel(fn: Callable) -> Callable:
    """Compile a grid-stride CUDA kernel."""
    return numba_cuda().jit(**CUDA_KERNEL_OPTIONS)(fn)
