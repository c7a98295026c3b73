"""CPU array drivers: the loops of `scalar` compiled with prange over all cores."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numba

from . import dot_scalar
from .jit import cpu_device, cpu_parallel
from .scalar import CPU_LOOPS, make_kernels, retarget


@functools.cache
def cpu_drivers() -> SimpleNamespace:
    """The drivers compiled for the CPU (built on first use; compiled code is cached on disk)."""
    namespace = make_kernels(cpu_device, prange=numba.prange)
    loops = retarget(CPU_LOOPS, cpu_parallel, namespace)
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in loops.items()})


@functools.cache
def cpu_dot_drivers() -> SimpleNamespace:
    """The dot-product drivers compiled for the CPU."""
    namespace = dot_scalar.make_dot_kernels(cpu_device, prange=numba.prange)
    loops = retarget(dot_scalar.CPU_LOOPS, cpu_parallel, namespace)
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in loops.items()})
