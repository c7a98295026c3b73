"""The kernel files beyond `scalar` whose drivers join the element suite.

Each such module defines, as `scalar` does:
- SCALAR_FUNCTIONS: functions compiled for every target (inlined on the CPU, device functions on
  CUDA). They may call any function of `scalar.SCALAR_FUNCTIONS`, imported by name: the builders
  bind those names to their compiled versions for the target.
- CPU_LOOPS: array drivers named `<driver>_loop`, with `prange` over rows or chunks (bound to
  numba.prange on the CPU).
- CUDA_LOOPS: grid-stride kernels named `<driver>_grid`, written with the global `cuda` (bound to
  numba.cuda by the CUDA build).
The drivers are called through `dispatch.run("<driver>", ...)`, on either target. Every kernel
file stamps every cached kernel (`cache`), so a module may inline another's functions safely.
"""

from __future__ import annotations

from types import ModuleType

from . import element_scalar, given_scalar, micro_scalar, scalar, search_scalar, tile_scalar

KERNEL_MODULES: tuple[ModuleType, ...] = (tile_scalar, element_scalar, micro_scalar, given_scalar, search_scalar)


def module_namespace(module: ModuleType, base: dict, **extra_globals) -> dict:
    """Globals for compiling `module`'s functions: its own, with `scalar`'s function names bound to
    their compiled versions in `base` (what `scalar.make_kernels` returned), plus `extra_globals`."""
    compiled = {fn.__name__: base[fn.__name__] for fn in scalar.SCALAR_FUNCTIONS}
    return {**vars(module), **compiled, **extra_globals}
