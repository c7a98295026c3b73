"""Fused kernels for block formats whose scales the host computes ("given scales").

The block formats of this file (zero points, AFPQ's separate positive and negative scales,
double-quantized scales, per-channel absmean, NVFP4 with a scale format off the float32 fast
path) and the bare codebook formats take two passes: `given_stats` reduces each piece of a row
to integer statistics (the largest |x| as a bit pattern, and the largest and smallest x as
order-preserving integer keys), the host turns them into scales with the NumPy rules of
`host.scales` (so the scales are the pipeline's by construction), and `given_rows` /
`given_signed` round every element with its row's scale in the float32 steps of the pipeline
(`host.blocks._quantize_rows`). `given_codebook` rounds unscaled codebook elements.

The element pass takes the scales themselves (the arrays the host returns) and derives each
row's step from them as the pipeline does, in float32 (`row_mode`): MODE_MUL v = x * factor
(factor = 1 / s, or 0 for a zero scale); MODE_DIV v = x / factor (a scale with no float32
reciprocal, or a format that divides); MODE_ZERO v = +0 (a format that divides by a zero scale);
MODE_NAN: a NaN scale, which the host gives exactly the rows that held NaN or Inf. Long rows are
cut into pieces of `piece` elements so that one long row (per-channel scales on a 1-D array)
still spreads over every core.
"""

from __future__ import annotations

import math

import numpy as np

from .scalar import KIND_INT, KIND_TABLE, fast_tuple, quantize_fast_float, quantize_fast_int

MODE_MUL, MODE_DIV, MODE_ZERO, MODE_NAN = range(4)
# Key of the smallest and largest int32: the identities of the max and min reductions.
_KEY_LOW = np.int32(-(1 << 31))
_KEY_HIGH = np.int32((1 << 31) - 1)
_MAG = np.int32(0x7FFFFFFF)
_SHIFT = np.int32(31)
CODEBOOK_CHUNK = 1 << 14

# prange is Python's range outside Numba; the CPU build binds it to numba.prange, and the CUDA
# build binds `cuda` to numba.cuda.
prange = range
cuda = None


def threshold_tuple(m):
    """The 16 float32 thresholds of a codebook (padded with +Inf) as a tuple: registers in the loop."""
    return (
        m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7],
        m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15],
    )  # fmt: skip


def value_tuple(t):
    """The 17 float32 codebook values (padded with the last value) as a tuple."""
    return (
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8],
        t[9], t[10], t[11], t[12], t[13], t[14], t[15], t[16],
    )  # fmt: skip


def chain_value(v, t, a, zero_up, zval):
    """Nearest codebook value of v, ties to the lower one: the value of the highest threshold at
    or below v (a chain of selects, which vectorises). zero_up != 0: +0 sits on a midpoint of
    exactly 0 and takes the value above it, zval (CodebookFormat's rule)."""
    r = a[1] if t[0] <= v else a[0]
    r = a[2] if t[1] <= v else r
    r = a[3] if t[2] <= v else r
    r = a[4] if t[3] <= v else r
    r = a[5] if t[4] <= v else r
    r = a[6] if t[5] <= v else r
    r = a[7] if t[6] <= v else r
    r = a[8] if t[7] <= v else r
    r = a[9] if t[8] <= v else r
    r = a[10] if t[9] <= v else r
    r = a[11] if t[10] <= v else r
    r = a[12] if t[11] <= v else r
    r = a[13] if t[12] <= v else r
    r = a[14] if t[13] <= v else r
    r = a[15] if t[14] <= v else r
    r = a[16] if t[15] <= v else r
    up = (zero_up != 0) & (v == 0) & (math.copysign(np.float32(1.0), v) > 0)
    return zval if up else r


def given_element(v, kind, q, t, a, zero_up, zval):
    """v rounded to the element: a codebook value, or the fast float32 path of an int or float."""
    if kind == KIND_TABLE:
        return chain_value(v, t, a, zero_up, zval)
    if kind == KIND_INT:
        return quantize_fast_int(v, q)
    return quantize_fast_float(v, q)


def given_scaled(x, mode, fac):
    """The element before rounding (the pipeline's `_scaled`) under a row's mode and factor."""
    if mode == MODE_MUL:
        return np.float32(x * fac)
    if mode == MODE_DIV:
        return np.float32(x / fac)
    return np.float32(0.0)


def row_mode(s, divide, nv, post):
    """(mode, factor) of a row's scale s, the pipeline's float32 steps: `_scaled` (x / s where the
    format divides, +0 where s is 0 there; else x * (1 / s), 1 / 0 taken as 0, or x / s where
    1 / s is Inf), or for NVFP4 (nv) `_apply` with enc = 1 / (s * post) (0 where s is 0) and
    x / (s * post) where enc is Inf (+0 where that is 0). A NaN scale marks a NaN row."""
    if s != s:
        return MODE_NAN, np.float32(0.0)
    if nv:
        den = np.float32(s * post)
        enc = np.float32(0.0) if s == 0 else np.float32(np.float32(1.0) / den)
        if enc == math.inf:
            return (MODE_ZERO if den == 0 else MODE_DIV), den
        return MODE_MUL, enc
    if divide:
        return (MODE_ZERO if s == 0 else MODE_DIV), s
    enc = np.float32(0.0) if s == 0 else np.float32(np.float32(1.0) / s)
    if enc == math.inf or enc == -math.inf:
        return MODE_DIV, s
    return MODE_MUL, enc


def order_key(b):
    """An integer whose order is that of the float32 with bit pattern b (int32): -0 sorts below +0,
    negative NaNs below -Inf and positive NaNs above +Inf. int32 arithmetic throughout: twice the
    lanes of int64 in a vector."""
    return np.int32(b ^ np.int32(np.int32(b >> _SHIFT) & _MAG))


def stats_piece(xb, k, lo, hi, minmax):
    """(largest |x| bits, largest key, smallest key) of xb[k, lo:hi]: the keys where minmax, else
    the bits."""
    abits = np.int32(0)
    kmax = _KEY_LOW
    kmin = _KEY_HIGH
    if minmax:  # NaN and Inf show in the keys (past those of +-FLT_MAX): no |x| needed
        for i in range(lo, hi):
            key = order_key(xb[k, i])
            kmax = max(kmax, key)
            kmin = min(kmin, key)
    else:
        for i in range(lo, hi):
            abits = max(abits, np.int32(xb[k, i] & _MAG))
    return abits, kmax, kmin


def stats_store(xb, item, k, lo, hi, minmax, abits, kmax, kmin):
    """The statistics of xb[k, lo:hi] into entry `item` of the outputs."""
    m, hi_key, lo_key = stats_piece(xb, k, lo, hi, minmax)
    abits[item] = m
    if minmax:  # the key arrays hold one entry otherwise
        kmax[item] = hi_key
        kmin[item] = lo_key


def rows_piece(x, k, lo, hi, s, zp, has_zp, divide, nv, post, kind, q, t, a, zero_up, zval, out):
    """Elements lo..hi of row k under one scale s: ((round(v (+ zp)) (- zp)) * s) * post."""
    mode, enc = row_mode(s, divide, nv, post)
    if mode == MODE_NAN:
        for i in range(lo, hi):
            out[k, i] = math.nan
    elif mode != MODE_MUL:  # rare rows (tiny or zero scales): the general steps
        for i in range(lo, hi):
            v = given_scaled(x[k, i], mode, enc)
            v = np.float32(v + zp) if has_zp else v
            r = given_element(v, kind, q, t, a, zero_up, zval)
            r = np.float32(r - zp) if has_zp else r
            out[k, i] = np.float32(np.float32(r * s) * post)
    elif has_zp:  # asymmetric integers
        for i in range(lo, hi):
            r = quantize_fast_int(np.float32(np.float32(x[k, i] * enc) + zp), q)
            out[k, i] = np.float32(np.float32(np.float32(r - zp) * s) * post)
    elif kind == KIND_TABLE:  # a loop per kind without tests, so that each vectorises
        for i in range(lo, hi):
            r = chain_value(np.float32(x[k, i] * enc), t, a, zero_up, zval)
            out[k, i] = np.float32(np.float32(r * s) * post)
    elif kind == KIND_INT:
        for i in range(lo, hi):
            r = quantize_fast_int(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(np.float32(r * s) * post)
    else:
        for i in range(lo, hi):
            r = quantize_fast_float(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(np.float32(r * s) * post)


def signed_piece(x, k, lo, hi, scales, divide, kind, q, t, a, zero_up, zval, out):
    """Elements lo..hi of row k under AFPQ's two scales: column 0 for x without its sign bit,
    column 1 for x with it (-0 included); value round(v) * s."""
    sp, sn = scales[k, 0], scales[k, 1]
    mp, ep = row_mode(sp, divide, False, np.float32(1.0))
    mn, en = row_mode(sn, divide, False, np.float32(1.0))
    one = np.float32(1.0)
    if mp == MODE_NAN:
        for i in range(lo, hi):
            out[k, i] = math.nan
    elif mp != MODE_MUL or mn != MODE_MUL:
        for i in range(lo, hi):
            xi = x[k, i]
            neg = math.copysign(one, xi) < 0
            v = given_scaled(xi, mn, en) if neg else given_scaled(xi, mp, ep)
            r = given_element(v, kind, q, t, a, zero_up, zval)
            out[k, i] = np.float32(r * (sn if neg else sp))
    elif kind == KIND_TABLE:
        for i in range(lo, hi):
            xi = x[k, i]
            neg = math.copysign(one, xi) < 0
            r = chain_value(np.float32(xi * (en if neg else ep)), t, a, zero_up, zval)
            out[k, i] = np.float32(r * (sn if neg else sp))
    else:
        for i in range(lo, hi):
            xi = x[k, i]
            neg = math.copysign(one, xi) < 0
            r = given_element(np.float32(xi * (en if neg else ep)), kind, q, t, a, zero_up, zval)
            out[k, i] = np.float32(r * (sn if neg else sp))


def codebook_chunk(x, lo, hi, t, a, zero_up, zval, out):
    """Nearest codebook values of x[lo:hi] (unscaled); NaN stays NaN."""
    for i in range(lo, hi):
        v = x[i]
        r = chain_value(v, t, a, zero_up, zval)
        out[i] = r if v == v else np.float32(math.nan)


def piece_bounds(item, per, piece, n):
    """(row, first, end) of work item `item`: rows of n elements cut into `per` pieces."""
    k = item // per
    lo = (item - k * per) * piece
    return k, lo, min(lo + piece, n)


# ----- CPU drivers ------------------------------------------------------------------------------


def given_stats_loop(xb, piece, minmax, abits, kmax, kmin):
    """Statistics of every piece of every row (item = row * pieces + piece). Rows of one piece
    loop over rows directly: the row index known as the loop's own vectorises twice as well."""
    n = xb.shape[1]
    per = (n + piece - 1) // piece
    if per == 1:
        for k in prange(xb.shape[0]):
            stats_store(xb, k, k, 0, n, minmax, abits, kmax, kmin)
    else:
        for item in prange(xb.shape[0] * per):
            k, lo, hi = piece_bounds(item, per, piece, n)
            stats_store(xb, item, k, lo, hi, minmax, abits, kmax, kmin)


def given_rows_loop(x, piece, scales, zps, has_zp, divide, nv, post, kind, f, mids, table, zero_up, zval, out):
    q = fast_tuple(f)
    t = threshold_tuple(mids)
    a = value_tuple(table)
    n = x.shape[1]
    per = (n + piece - 1) // piece
    if per == 1:  # as in given_stats_loop
        for k in prange(x.shape[0]):
            z = zps[k] if has_zp else np.float32(0.0)
            rows_piece(x, k, 0, n, scales[k], z, has_zp, divide, nv, post, kind, q, t, a, zero_up, zval, out)
    else:
        for item in prange(x.shape[0] * per):
            k, lo, hi = piece_bounds(item, per, piece, n)
            z = zps[k] if has_zp else np.float32(0.0)
            rows_piece(x, k, lo, hi, scales[k], z, has_zp, divide, nv, post, kind, q, t, a, zero_up, zval, out)


def given_signed_loop(x, piece, scales, divide, kind, f, mids, table, zero_up, zval, out):
    q = fast_tuple(f)
    t = threshold_tuple(mids)
    a = value_tuple(table)
    n = x.shape[1]
    per = (n + piece - 1) // piece
    if per == 1:  # as in given_stats_loop
        for k in prange(x.shape[0]):
            signed_piece(x, k, 0, n, scales, divide, kind, q, t, a, zero_up, zval, out)
    else:
        for item in prange(x.shape[0] * per):
            k, lo, hi = piece_bounds(item, per, piece, n)
            signed_piece(x, k, lo, hi, scales, divide, kind, q, t, a, zero_up, zval, out)


def given_codebook_loop(x, mids, table, zero_up, zval, out):
    t = threshold_tuple(mids)
    a = value_tuple(table)
    for c in prange((x.size + CODEBOOK_CHUNK - 1) // CODEBOOK_CHUNK):
        lo = c * CODEBOOK_CHUNK
        codebook_chunk(x, lo, min(lo + CODEBOOK_CHUNK, x.size), t, a, zero_up, zval, out)


# ----- CUDA drivers (grid-stride over the same work items) ----------------------------------------


def given_stats_grid(xb, piece, minmax, abits, kmax, kmin):
    n = xb.shape[1]
    per = (n + piece - 1) // piece
    for item in range(cuda.grid(1), xb.shape[0] * per, cuda.gridsize(1)):
        k, lo, hi = piece_bounds(item, per, piece, n)
        stats_store(xb, item, k, lo, hi, minmax, abits, kmax, kmin)


def given_rows_grid(x, piece, scales, zps, has_zp, divide, nv, post, kind, f, mids, table, zero_up, zval, out):
    q = fast_tuple(f)
    t = threshold_tuple(mids)
    a = value_tuple(table)
    n = x.shape[1]
    per = (n + piece - 1) // piece
    for item in range(cuda.grid(1), x.shape[0] * per, cuda.gridsize(1)):
        k, lo, hi = piece_bounds(item, per, piece, n)
        z = zps[k] if has_zp else np.float32(0.0)
        rows_piece(x, k, lo, hi, scales[k], z, has_zp, divide, nv, post, kind, q, t, a, zero_up, zval, out)


def given_signed_grid(x, piece, scales, divide, kind, f, mids, table, zero_up, zval, out):
    q = fast_tuple(f)
    t = threshold_tuple(mids)
    a = value_tuple(table)
    n = x.shape[1]
    per = (n + piece - 1) // piece
    for item in range(cuda.grid(1), x.shape[0] * per, cuda.gridsize(1)):
        k, lo, hi = piece_bounds(item, per, piece, n)
        signed_piece(x, k, lo, hi, scales, divide, kind, q, t, a, zero_up, zval, out)


def given_codebook_grid(x, mids, table, zero_up, zval, out):
    t = threshold_tuple(mids)
    a = value_tuple(table)
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        codebook_chunk(x, i, i + 1, t, a, zero_up, zval, out)


SCALAR_FUNCTIONS = (
    threshold_tuple,
    value_tuple,
    chain_value,
    given_element,
    given_scaled,
    row_mode,
    order_key,
    stats_piece,
    stats_store,
    rows_piece,
    signed_piece,
    codebook_chunk,
    piece_bounds,
)
CPU_LOOPS = (given_stats_loop, given_rows_loop, given_signed_loop, given_codebook_loop)
CUDA_LOOPS = (given_stats_grid, given_rows_grid, given_signed_grid, given_codebook_grid)
