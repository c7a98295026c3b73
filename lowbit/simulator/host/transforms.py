"""Transforms applied before quantization: the normalised (randomised) Hadamard transform."""

from __future__ import annotations

import math

import numpy as np

from ..kernels.dispatch import Out, run
from ..kernels.rounding import Rounding
from .inputs import check_seed, host_float_array, host_target


def _check_size(size: int, length: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size & (size - 1):
        raise ValueError(f"size must be a power of two, got {size!r}")
    if length % size:
        raise ValueError(f"size {size} must divide the axis length {length}; pad the axis first")
    return int(size)


def random_signs(size: int, seed: int) -> np.ndarray:
    """The ±1 diagonal of the randomised transform (seeded, so encode and decode agree)."""
    return np.where(np.random.default_rng(seed).random(size) < 0.5, -1.0, 1.0)


def hadamard(x, size: int | None = None, *, axis: int = -1, seed: int | None = None, inverse: bool = False,
             target=None) -> np.ndarray:  # fmt: skip
    """Normalised Hadamard transform of `x` in independent chunks of `size` along `axis`.

    y = H D x / sqrt(size) per chunk, with D = diag(random ±1 signs from `seed`) or the identity
    when seed is None. The transform is orthonormal: `hadamard(y, size, seed=s, inverse=True)`
    returns x. Computed in float64 by an O(n log n) butterfly kernel (CPU or CUDA); the result
    is float64. size defaults to the whole axis, which must then be a power of two.
    """
    arr = np.asarray(host_float_array(x), dtype=np.float64)
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension")
    moved = np.moveaxis(arr, axis, -1)
    h = _check_size(moved.shape[-1] if size is None else size, moved.shape[-1])
    seed = None if seed is None else check_seed(seed, Rounding.RNE)  # NumPy integers too
    buf = np.ascontiguousarray(moved).reshape(-1, h)
    signs = None if seed is None else random_signs(h, seed)
    if signs is not None and not inverse:
        buf = buf * signs
    flat = np.ascontiguousarray(buf).reshape(-1).copy()
    if flat.size:
        run("fwht", host_target(target), flat.size // h, Out(flat), h)
    k = h.bit_length() - 1
    # 2^(-k/2): a power of two times 1/sqrt(2) when k is odd (one rounding).
    flat *= 2.0 ** -(k // 2)
    if k % 2:
        flat *= 1 / math.sqrt(2)
    out = flat.reshape(-1, h)
    if signs is not None and inverse:
        out = out * signs
    return np.moveaxis(out.reshape(moved.shape), -1, axis)
