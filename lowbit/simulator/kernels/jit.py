"""Every JIT option of lowbit lives here.

fastmath is never enabled: it licenses reassociation and flush-to-zero, which break the
bit-exact rounding the kernels exist for. numba.cuda is imported (through lowbit.lazy) only when a CUDA target is built.

Compiling a kernel takes seconds; each compile (not a load from Numba's on-disk cache) is announced as
an INFO record of the logger `lowbit.simulator.kernels.jit`, with a count. The library only logs:
Python shows no INFO record unless someone turns it on, so tests and quiet importers see nothing; the
`lowbit` command turns it on and prints the records on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable, Iterator

import numba
from numba.core import event
from numba.core.errors import NumbaPerformanceWarning

from ...lazy import numba_cuda
from .cache import stamp_kernel_caches

log = logging.getLogger(__name__)

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


# Row functions (`cpu_rows`) take Numba's parallel pipeline without a parallel loop, for which Numba
# warns on each compile; the warning names the function's file, which is how this matches only ours.
_ROWS_WARNING = r"\nThe keyword argument 'parallel=True'[\s\S]*lowbit[/\\]simulator[/\\]kernels[/\\]"


class _CompileNotices(event.Listener):
    """Logs each compile of a lowbit kernel that a caller started (not the functions it compiles on
    the way), numbered from 1 in this process, and silences the row functions' parallel-pipeline
    warning during it. Numba compiles under one lock, so the count and the filter need none."""

    def __init__(self) -> None:
        self.depth = 0
        self.count = 0
        self.quiet: warnings.catch_warnings | None = None

    def on_start(self, ev: event.Event) -> None:
        self.depth += 1
        fn = getattr(ev.data.get("dispatcher"), "py_func", None)  # any compile in the process comes here
        if self.depth > 1 or not (getattr(fn, "__module__", None) or "").startswith("lowbit."):
            return
        self.quiet = warnings.catch_warnings()
        self.quiet.__enter__()
        warnings.filterwarnings("ignore", _ROWS_WARNING, NumbaPerformanceWarning)
        self.count += 1
        name = fn.__name__.removesuffix("_loop").removesuffix("_rows")
        if self.count == 1:
            log.info("compiling kernels on first use (seconds each; Numba caches them on disk for later runs)")
        log.info("compiling kernel %d: %s...", self.count, name)

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0 and self.quiet is not None:
            self.quiet.__exit__(None, None, None)
            self.quiet = None


@functools.cache
def _announce_compiles() -> None:
    """Start logging kernel compiles, and stamp cached kernels by every kernel file (once per
    process; the drivers' builders call it)."""
    stamp_kernel_caches()
    event.register("numba:compile", _CompileNotices())


def cpu_device(fn: Callable) -> Callable:
    """Compile a scalar function for the CPU (inlined into the array drivers)."""
    stamp_kernel_caches()
    return numba.njit(inline="always", **CPU_OPTIONS)(fn)


def cpu_function(fn: Callable) -> Callable:
    """Compile a function for the CPU that drivers call, neither inlined nor parallel (inlining the
    engine kernels' row functions into their parallel loops makes compilation take minutes)."""
    _announce_compiles()
    return numba.njit(**CPU_OPTIONS)(fn)


def cpu_rows(fn: Callable) -> Callable:
    """Compile a function over a range of rows for the CPU (`scalar.ROW_FUNCTIONS`), run on worker
    threads by `cpu.RowDriver`: no prange inside, so no parallel lowering, but Numba's parallel
    pipeline all the same, whose loops run 2.5 times as fast as the plain pipeline's (measured on
    MXFP4 rows) and compile no slower."""
    _announce_compiles()
    return numba.njit(**CPU_PARALLEL_OPTIONS)(fn)


def cpu_parallel(fn: Callable) -> Callable:
    """Compile an array driver for the CPU with a prange loop over all cores."""
    _announce_compiles()
    return numba.njit(**CPU_PARALLEL_OPTIONS)(fn)


def cuda_device(fn: Callable) -> Callable:
    """Compile a scalar function as a CUDA device function."""
    return numba_cuda().jit(**CUDA_DEVICE_OPTIONS)(fn)


def cuda_kernel(fn: Callable) -> Callable:
    """Compile a grid-stride CUDA kernel."""
    _announce_compiles()
    return numba_cuda().jit(**CUDA_KERNEL_OPTIONS)(fn)
