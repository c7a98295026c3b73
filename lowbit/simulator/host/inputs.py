"""Checks of what a user passes, on the host, before any kernel runs: arrays become float32 or
float64 NumPy arrays holding exactly the same values, and axis, seed and target are validated."""

from __future__ import annotations

import secrets

import numpy as np

from ...formats import parse_enum
from ..kernels.dispatch import Target
from ..kernels.rounding import Rounding

MAX_SEED = (1 << 63) - 1
_EXACT_INT_LIMIT = 1 << 53


def is_device_array(x) -> bool:
    """Whether x lives on a CUDA device (a Numba device array, also in the CUDA simulator, or
    anything with the CUDA array interface)."""
    if isinstance(x, np.ndarray):
        return False
    return hasattr(x, "__cuda_array_interface__") or hasattr(x, "__cuda_ndarray__")


def host_float_array(x) -> np.ndarray:
    """x as a float32 or float64 ndarray holding exactly the same values."""
    if isinstance(x, (list, tuple)) or np.isscalar(x) or hasattr(x, "__array__"):
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise TypeError(f"x: cannot convert to a numeric array ({err})") from None
    else:
        raise TypeError(f"x must be an array or array-like of real numbers, got {type(x).__name__}")
    kind = arr.dtype.kind
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    if kind in "iu":
        if arr.dtype.itemsize >= 8 and arr.size and np.abs(arr).max() > _EXACT_INT_LIMIT:
            raise ValueError("x: 64-bit integers above 2^53 are not exact in float64; convert them yourself")
        return arr.astype(np.float64)
    if arr.dtype.type.__module__ == "ml_dtypes" and arr.dtype.itemsize <= 2:
        # ml_dtypes' narrow types (bfloat16, float8_*, int4, ...) are exact in float32.
        return arr.astype(np.float32)
    raise TypeError(
        f"x: dtype {arr.dtype} is not supported; pass float16, float32, float64 or integer data "
        "(object, bool, complex and string arrays are refused)"
    )


def float32_host(x) -> np.ndarray:
    """Block formats compute in float32 (the reference recipes do); float64 is rounded first."""
    if is_device_array(x):
        x = x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x)
    return np.asarray(host_float_array(x), dtype=np.float32)


def check_axis(axis, ndim: int) -> None:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if ndim and not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} dimensions")


def check_seed(seed, rounding: Rounding) -> int:
    """The seed as an int; a fresh random one for stochastic rounding without a seed."""
    if seed is None:
        return secrets.randbits(63) if rounding is Rounding.STOCHASTIC else 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2^63 - 1], got {seed}")
    return int(seed)


def parse_target(target: Target | str | None) -> Target:
    """A Target from 'auto', 'cpu', 'cuda' or None (auto)."""
    return Target.AUTO if target is None else parse_enum(Target, target, "target")


def resolve_target(x, target) -> Target:
    """CPU or CUDA for input x: AUTO picks CUDA for device arrays."""
    t = parse_target(target)
    if t is Target.AUTO:
        return Target.CUDA if is_device_array(x) else Target.CPU
    if t is Target.CPU and is_device_array(x):
        raise ValueError("target='cpu' was given a CUDA device array; copy it to the host first")
    return t


def host_target(target) -> Target:
    """Where a kernel on host input runs: CUDA when asked for, else the CPU (AUTO included)."""
    return Target.CUDA if parse_target(target) is Target.CUDA else Target.CPU
