"""The one dispatch: run a named driver on the CPU or on CUDA.

Callers name a driver of `cpu.cpu_drivers()` / `cuda.cuda_drivers()` (or of the dot-product sets)
and pass its arguments; `Out` marks the host arrays the driver writes. On CUDA, host arrays are
copied to the device, the kernel runs in a grid-stride launch, and the `Out` arrays are copied back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ...lazy import numba_cuda
from .cpu import RowDriver, cpu_dot_drivers, cpu_drivers, cpu_engine_drivers
from .cuda import cuda_dot_drivers, cuda_drivers, cuda_engine_drivers, launch


class Target(enum.Enum):
    """Where a kernel runs. AUTO: CUDA for device arrays, the CPU otherwise."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Suite(enum.Enum):
    """Which set of drivers a kernel name belongs to."""

    ELEMENTS = "elements"  # quantize, encode, decode, block kernels, transforms
    DOT = "dot"  # dot-product / GEMM emulation
    ENGINE = "engine"  # GEMMs on a matrix engine's fused sums


@dataclass(frozen=True)
class Out:
    """A host array the driver writes (copied back from the device on CUDA)."""

    array: np.ndarray


def drivers(target: Target, suite: Suite = Suite.ELEMENTS) -> SimpleNamespace:
    """The compiled drivers of `suite` for `target` (CPU or CUDA), built on first use."""
    if suite is Suite.ENGINE:
        return cuda_engine_drivers() if target is Target.CUDA else cpu_engine_drivers()
    if target is Target.CUDA:
        return cuda_dot_drivers() if suite is Suite.DOT else cuda_drivers()
    return cpu_dot_drivers() if suite is Suite.DOT else cpu_drivers()


def run(kernel: str, target: Target, n: int, *args, suite: Suite = Suite.ELEMENTS) -> None:
    """Run driver `kernel` over `n` work items (elements, rows or outputs) with `args`, in order.

    On the CPU the arguments go straight to the driver (`Out` unwrapped). On CUDA, NumPy arrays
    are copied to the device, device arrays pass as they are, and `Out` arrays are copied back.
    """
    fn = getattr(drivers(target, suite), kernel)
    if target is not Target.CUDA:
        host = (a.array if isinstance(a, Out) else a for a in args)
        if isinstance(fn, RowDriver):  # a function over ranges of the n rows
            fn(n, *host)
        else:
            fn(*host)
        return
    cuda = numba_cuda()
    device = [_to_device(cuda, a) for a in args]
    launch(fn, n)(*device)
    for a, d in zip(args, device, strict=True):
        if isinstance(a, Out):
            a.array[...] = d.copy_to_host()


def _to_device(cuda, a):
    if isinstance(a, Out):
        return cuda.to_device(np.ascontiguousarray(a.array))
    if isinstance(a, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(a))
    return a


def launch_on_device(kernel: str, n: int, *args, stream=0) -> None:
    """Run the CUDA driver `kernel` over n items on arguments that are already on the device,
    on `stream` (a Numba stream; 0 is the default stream)."""
    launch(getattr(cuda_drivers(), kernel), n, stream)(*args)


def device_array(shape, dtype, stream=0):
    """An uninitialised CUDA device array (allocated in `stream`'s order)."""
    return numba_cuda().device_array(shape, dtype=dtype, stream=stream)


def as_device_array(x):
    """x (a Numba device array or anything with the CUDA array interface) as a Numba device array."""
    return x if hasattr(x, "__cuda_ndarray__") else numba_cuda().as_cuda_array(x)


def to_device(a: np.ndarray, stream=0):
    """A device copy of a host array (copied in `stream`'s order)."""
    return numba_cuda().to_device(np.ascontiguousarray(a), stream=stream)
