"""Shared micro-exponents (MX9, MX6, MX4; Rouhani et al., ISCA 2023): the shift of each sub-block
under its block's shared exponent, and the per-element powers of two that apply it.

Rows are blocks (one a row, float32). A block stores one shift per sub-block of the format's block,
`fmt.block // micro.block` of them, even where the layout cut the block short at the end of the
axis: the missing elements count as zeros, as the padding of a partial block does.
"""

from __future__ import annotations

import numpy as np

from ...formats import MicroExponent, ScaledFormat

F32 = np.float32
_E_MIN, _E_MAX = -127, 127  # E8M0's exponent range; float32's exponent fields clipped to it


def sub_blocks(fmt: ScaledFormat) -> int:
    """Sub-blocks (micro-exponent fields) per block."""
    return fmt.block // fmt.micro.block


def _padded(rows: np.ndarray, width: int) -> np.ndarray:
    n = rows.shape[1]
    if n == width:
        return rows
    return np.concatenate([rows, np.zeros((rows.shape[0], width - n), rows.dtype)], axis=1)


def _exponent(amax: np.ndarray) -> np.ndarray:
    """floor(log2(amax)) from float32's exponent field, clipped to [-127, 127] (zero and subnormals:
    -127; NaN and Inf: 127, their blocks are NaN anyway)."""
    field = (np.ascontiguousarray(amax, np.float32).view(np.int32) >> 23) & 0xFF
    return np.clip(field - 127, _E_MIN, _E_MAX).astype(np.int32)


def shifts(rows: np.ndarray, shared: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    """The shift d of every sub-block (blocks, sub-blocks), uint8: min(E - E_sub, 2^bits - 1),
    where E is the block's shared exponent `shared` (int32 per row) and E_sub the exponent of the
    sub-block's largest |x|. Rows holding NaN or Inf get 0 (their blocks are NaN)."""
    m = fmt.micro
    n_sub = sub_blocks(fmt)
    a = np.abs(_padded(rows, n_sub * m.block)).reshape(rows.shape[0], n_sub, m.block)
    e_sub = _exponent(np.max(a, axis=2)) if rows.shape[0] else np.zeros((0, n_sub), np.int32)
    d = np.clip(shared[:, None] - e_sub, 0, m.max_shift)
    d[~np.isfinite(rows).all(axis=1)] = 0
    return d.astype(np.uint8)


def factors(d: np.ndarray, micro: MicroExponent, width: int, up: bool) -> np.ndarray:
    """Per-element powers of two (rows, width), float32: 2^d (up) or 2^-d of each element's
    sub-block, for rows of `width` elements. Exact: d is at most 15 (MicroExponent's bits are at most 4)."""
    per_element = np.repeat(d.astype(np.int32), micro.block, axis=1)[:, :width]
    return np.ldexp(F32(1), per_element if up else -per_element).astype(np.float32)
