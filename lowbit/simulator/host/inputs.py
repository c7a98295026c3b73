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


MAX_SR_BITS = 62


def check_sr_bits(sr_bits, rounding: Rounding) -> int:
    """sr_bits as an int in [1, 62], or 0 for None (the 62-bit rule of stochastic rounding
    without sr_bits). sr_bits goes with rounding='stochastic' only."""
    if sr_bits is None:
        return 0
    if isinstance(sr_bits, bool) or not isinstance(sr_bits, (int, np.integer)):
        raise TypeError(f"sr_bits must be an integer in [1, {MAX_SR_BITS}] or None, got {sr_bits!r}")
    if not 1 <= sr_bits <= MAX_SR_BITS:
        raise ValueError(f"sr_bits must be in [1, {MAX_SR_BITS}], got {sr_bits}")
    if rounding is not Rounding.STOCHASTIC:
        raise ValueError(
            f"sr_bits is for rounding='stochastic' only; got sr_bits={sr_bits} with rounding={rounding.name.lower()!r}"
        )
    return int(sr_bits)


def check_random_bits(random_bits, shape: tuple[int, ...], sr_bits: int, seed, rounding: Rounding) -> np.ndarray | None:
    """The explicit random numbers of stochastic rounding as a C-ordered int64 array of x's
    `shape` (None when none are given). They need rounding='stochastic', sr_bits (r) and no seed,
    and every value must lie in [0, 2^r)."""
    if random_bits is None:
        return None
    if rounding is not Rounding.STOCHASTIC:
        raise ValueError(f"random_bits is for rounding='stochastic' only, got rounding={rounding.name.lower()!r}")
    if sr_bits == 0:
        raise ValueError("random_bits needs sr_bits, the number of bits of each random number (1 to 62)")
    if seed is not None:
        raise ValueError("random_bits and seed exclude each other: pass seed=None with explicit random_bits")
    if is_device_array(random_bits):
        random_bits = random_bits.copy_to_host() if hasattr(random_bits, "copy_to_host") else np.asarray(random_bits)
    r = np.asarray(random_bits)
    if r.dtype.kind not in "iu":
        raise TypeError(f"random_bits must be an integer array, got dtype {r.dtype}")
    if r.shape != tuple(shape):
        raise ValueError(f"random_bits has shape {r.shape}; it must have x's shape {tuple(shape)}")
    if r.size and (r.min() < 0 or int(r.max()) >= 1 << sr_bits):
        raise ValueError(f"random_bits must lie in [0, 2^sr_bits) = [0, {(1 << sr_bits) - 1}] for sr_bits={sr_bits}")
    return np.ascontiguousarray(r, dtype=np.int64)


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
