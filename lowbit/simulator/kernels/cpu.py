"""CPU array drivers: the loops of `scalar` compiled with prange over all cores, and its row
functions run over ranges of rows on a pool of worker threads."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import numba

from . import dot_scalar, engine_scalar
from .jit import cpu_device, cpu_function, cpu_parallel, cpu_rows
from .modules import KERNEL_MODULES, module_namespace
from .scalar import (
    ABSMAX_KIND_ROWS,
    CALLED_FUNCTIONS,
    CPU_LOOPS,
    ROW_FUNCTIONS,
    absmax_kind_rows,
    make_kernels,
    retarget,
    retarget_builds,
)

# Ranges per thread: several, so that a thread slowed by another process leaves its share to the
# others, and few, since each range is one call from Python (microseconds).
RANGES_PER_THREAD = 4


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """The worker threads of the row drivers, one fewer than Numba's largest thread count (the caller
    works too), started on first use. A forked child has none of its parent's threads, so it gets a
    pool of its own."""
    os.register_at_fork(after_in_child=_pool.cache_clear)
    return ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1), thread_name_prefix="lowbit-rows")


@dataclass(frozen=True)
class RowDriver:
    """A compiled row function fn(lo, hi, *args) (nogil), run over all rows in ranges, on as many
    threads as Numba's thread count for the calling thread (`jit.threads_for`), the caller among them.
    Each thread takes the next range until none is left."""

    fn: Callable

    def __call__(self, rows: int, *args) -> None:
        threads = max(1, min(numba.get_num_threads(), rows))
        pieces = max(1, min(rows, threads * RANGES_PER_THREAD))
        bounds = [rows * i // pieces for i in range(pieces + 1)]
        ranges = iter(list(zip(bounds[:-1], bounds[1:], strict=True)))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    r = next(ranges, None)
                if r is None:
                    return
                self.fn(r[0], r[1], *args)

        futures = [_pool().submit(work) for _ in range(threads - 1)]
        work()
        for f in futures:
            f.result()


@functools.cache
def cpu_drivers() -> SimpleNamespace:
    """The drivers compiled for the CPU (built on first use; compiled code is cached on disk). The
    row functions of `scalar.ROW_FUNCTIONS` and the builds `scalar.ABSMAX_KIND_ROWS` are `RowDriver`s
    named without their `_rows` suffix."""
    namespace = make_kernels(cpu_device, prange=numba.prange)
    retarget(CALLED_FUNCTIONS, cpu_rows, namespace)
    rows = retarget(ROW_FUNCTIONS, cpu_rows, namespace)
    rows.update(retarget_builds(absmax_kind_rows, ABSMAX_KIND_ROWS, cpu_rows, namespace))
    loops = retarget(CPU_LOOPS, cpu_parallel, namespace)
    for module in KERNEL_MODULES:
        ns = module_namespace(module, namespace, prange=numba.prange)
        retarget(module.SCALAR_FUNCTIONS, cpu_device, ns)
        loops.update(retarget(module.CPU_LOOPS, cpu_parallel, ns))
    drivers = {name.removesuffix("_loop"): fn for name, fn in loops.items()}
    drivers.update({name.removesuffix("_rows"): RowDriver(fn) for name, fn in rows.items()})
    return SimpleNamespace(**drivers)


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
