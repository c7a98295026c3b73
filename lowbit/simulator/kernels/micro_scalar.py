"""Fused block kernel for shared micro-exponents (MX9, MX6, MX4; `host.micro`).

One row is one block: its amax gives the shared exponent E as `scalar.mx_block` computes it; each
sub-block's largest |x| gives its shift d = min(max(E - E_sub, 0), max_shift), E_sub the
float32 exponent field of that amax minus 127, clipped to [-127, 127], as `host.micro.shifts`;
each element is ((x * 2^-E) * (1 / step)) * 2^d rounded to the element, and its value
((element * step) * 2^-d) * 2^E: the float32 steps of `blocks._finish_micro`, in its order.
"""

from __future__ import annotations

import math

import numpy as np

from .scalar import (
    POW2,
    POW2_OFFSET,
    fast_tuple,
    float_of_bits,
    pow2_exponent_one,
    quantize_finite_int,
    span_amax_bits,
)

_INF_BITS = 0x7F800000


def sub_shift(xb, k, lo, hi, e, max_shift):
    """The shift d of the sub-block of row k holding elements lo .. hi - 1 (the elements past the
    row count as zeros, so they are left out of its amax)."""
    sb = span_amax_bits(xb, k, lo, hi)
    e_sub = min(max(((sb >> 23) & 0xFF) - 127, -127), 127)
    return min(max(e - e_sub, 0), max_shift)


def micro_elements(x, xb, k, n, msub, e, enc, dec, inv_step, step, max_shift, q, out):
    """Elements and values of row k (n elements) under shared exponent e (enc = 2^-e, dec = 2^e),
    a sub-block of msub elements at a time."""
    for lo in range(0, n, msub):
        hi = min(lo + msub, n)
        d = sub_shift(xb, k, lo, hi, e, max_shift)
        up = np.float32(np.int64(1) << d)
        down = np.float32(POW2[POW2_OFFSET - d])
        for i in range(lo, hi):
            v = np.float32(np.float32(np.float32(x[k, i] * enc) * inv_step) * up)
            r = quantize_finite_int(v, q)  # micro formats have symmetric integer elements
            out[k, i] = np.float32(np.float32(np.float32(r * step) * down) * dec)


def block_exponent(xb, k, n, rule, emax, mbits, max_pos):
    """(E, or 128 for a row holding NaN or Inf) of row k of n elements, as `scalar.mx_block`."""
    abits = span_amax_bits(xb, k, 0, n)
    if abits >= _INF_BITS:
        return 128
    return pow2_exponent_one(abits, float_of_bits(abits), rule, emax, mbits, max_pos)


def micro_block(x, xb, k, rule, emax, mbits, max_pos, step, msub, max_shift, q, out, scales):
    """Quantize row k of x (xb: its int32 view) with a power-of-two block scale and shared
    micro-exponents per msub elements."""
    n = x.shape[1]
    e = block_exponent(xb, k, n, rule, emax, mbits, max_pos)
    if e > 127:  # NaN or Inf in the block: the pipeline poisons it
        for i in range(n):
            out[k, i] = math.nan
        scales[k] = math.nan
        return
    enc = np.float32(POW2[POW2_OFFSET - e])
    dec = np.float32(POW2[POW2_OFFSET + e])
    inv_step = np.float32(np.float32(1.0) / step)
    scales[k] = dec
    if n == 16 and msub == 2:  # MX9/MX6/MX4's shape as constants: the loops unroll (10 times as fast)
        micro_elements(x, xb, k, 16, 2, e, enc, dec, inv_step, step, max_shift, q, out)
    else:
        micro_elements(x, xb, k, n, msub, e, enc, dec, inv_step, step, max_shift, q, out)


# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range


def micro_loop(x, xb, rule, emax, mbits, max_pos, step, msub, max_shift, f, out, scales):
    q = fast_tuple(f)
    for k in prange(x.shape[0]):
        micro_block(x, xb, k, rule, emax, mbits, max_pos, step, msub, max_shift, q, out, scales)


# Stands for numba.cuda in the source; the CUDA build binds the real module.
cuda = None


def micro_grid(x, xb, rule, emax, mbits, max_pos, step, msub, max_shift, f, out, scales):
    q = fast_tuple(f)
    for k in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        micro_block(x, xb, k, rule, emax, mbits, max_pos, step, msub, max_shift, q, out, scales)


SCALAR_FUNCTIONS = (
    sub_shift,
    micro_elements,
    block_exponent,
    micro_block,
)
CPU_LOOPS = (micro_loop,)
CUDA_LOOPS = (micro_grid,)
