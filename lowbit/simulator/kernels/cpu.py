"""CPU array drivers: the loops of `scalar` compiled with prange over all cores."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numba

from . import dot_scalar, engine_scalar
from .jit import cpu_device, cpu_function, cpu_parallel
from .modules import KERNEL_MODULES, module_namespace
from .scalar import CPU_LOOPS, make_kernels, retarget


@functools.cache
def cpu_drivers() -> SimpleNamespace:
    """The drivers compiled for the CPU (built on first use; compiled code is cached on disk)."""
    namespace = make_kernels(cpu_device, prange=numba.prange)
    loops = retarget(CPU_LOOPS, cpu_parallel, namespace)
    for module in KERNEL_MODULES:
        ns = module_namespace(module, namespace, prange=numba.prange)
        retarget(module.SCALAR_FUNCTIONS, cpu_device, ns)
        loops.update(retarget(module.CPU_LOOPS, cpu_parallel, ns))
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in loops.items()})


@functools.cache
def cpu_dot_drivers() -> SimpleNamespace:
    """The dot-product drivers compiled for the CPU."""
    namespace = dot_scalar.make_dot_kernels(cpu_device, prange=numba.prange)
    loops = retarget(dot_scalar.CPU_LOOPS, cpu_parallel, namespace)
    return SimpleNamespace(**{name.removesuffix("_loop"): fn for name, fn in loops.items()})


@functools.cache
def cpu_engine_drivers() -> SimpleNamespace:
    """The matrix-engine GEMM drivers compiled for the CPU (`engine_scalar`'s three tiers; the row
    functions with the CPU options but neither inlined nor parallel; `fdpa` and `fdpa_small` built
    from one source with the lanes of `engine_scalar.CPU_BUILDS`)."""
    drivers = {}
    for suffix, names in engine_scalar.CPU_BUILDS.items():
        namespace = engine_scalar.make_engine_kernels(cpu_device, prange=numba.prange)
        retarget(engine_scalar.CPU_STRIP_LOOPS, cpu_device, namespace)
        namespace.update({key: namespace[v] if isinstance(v, str) else v for key, v in names.items()})
        retarget(engine_scalar.CPU_ROWS, cpu_function, namespace)
        loops = retarget(engine_scalar.CPU_LOOPS, cpu_parallel, namespace)
        drivers.update({name.removesuffix("_loop") + suffix: fn for name, fn in loops.items()})
    return SimpleNamespace(**drivers)
