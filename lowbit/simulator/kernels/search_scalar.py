"""Fused kernels of the search rules: MSE-searched block scales (one level, or NVFP4's block scale
under the tensor scale) and TWN's threshold, one block a row.

The search keeps, per block, the candidate scale whose values have the least sum of squared
errors, a float64 sum that NumPy takes in its pairwise order (`numpy.add.reduce` on a contiguous
float64 row): blocks of up to 128 terms summed by eight accumulators (term i into i mod 8), then
((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) and the terms past the last multiple of 8 one by
one; fewer than 8 terms one by one from -0.0; a longer run split at n2 = n // 2 - (n // 2) % 8 and
its halves added. `pairwise_sum` walks that tree without recursion (CUDA device functions cannot
recurse), its stack given by the driver. TWN's float64 sums of float32 terms go through NumPy's
cast buffer: pieces of `np.getbufsize()` terms, each summed pairwise, added left to right from 0.
The same order here makes the float64 sums, and so every decision, those of the pipeline.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float64, int64

from .scalar import (
    F_SPLIT,
    fast_tuple,
    float_of_bits,
    quantize_fast_float,
    quantize_fast_int,
    span_amax_bits,
)

# What a pairwise sum adds up: squared errors of a candidate's values, |x|, or |x| above a threshold.
TERM_SQ_ERROR, TERM_ABS, TERM_ABS_ABOVE = range(3)
# Levels of the MSE kernel: one scale per block, or NVFP4's block scale under the tensor scale.
LEVEL_ONE, LEVEL_NVFP4 = range(2)
# NumPy's pairwise leaf: runs of up to this many terms are summed by eight accumulators.
PW_BLOCK = 128
# Depth of the pairwise stack: enough for 2^62 terms.
STACK = 64
# Rows per CPU work item of the row kernels (the pairwise stack is allocated once per item).
ROWS_PER_ITEM = 256
_FLT_MAX = 3.4028234663852886e38


def element_value(xv, kind, div, den, enc, dec, post, q):
    """The value a candidate scale gives element xv (float32): xv / den where the scale has no
    float32 reciprocal or the format divides (0 where den is 0), else xv * enc; rounded to the
    element (kind 1: integer, else float, saturating); times dec, times post."""
    if div:
        v = np.float32(0.0) if den == 0 else np.float32(xv / den)
    else:
        v = np.float32(xv * enc)
    r = quantize_fast_int(v, q) if kind == 1 else quantize_fast_float(v, q)
    return np.float32(np.float32(r * dec) * post)


def fill_terms(x, k, lo, n, what, kind, div, den, enc, dec, post, q, delta, buf):
    """buf[0 : n] = terms lo .. lo + n - 1 of row k (float64): squared errors of a candidate's
    values, |x|, or |x| where it is above delta and 0 elsewhere. One loop per case, so each
    vectorises."""
    if what == TERM_ABS:
        for i in range(n):
            buf[i] = np.float64(abs(x[k, lo + i]))
    elif what == TERM_ABS_ABOVE:
        for i in range(n):
            a = abs(x[k, lo + i])
            buf[i] = np.float64(a) if a > delta else 0.0
    elif div and den != 0:
        sq_terms_div(x, k, lo, n, kind, den, dec, post, q, buf)
    else:
        # den == 0 (an all-zero scale) gives +0 elements where the format divides, x * 0 = -0 here
        # for negative x: the error is the same
        sq_terms_mul(x, k, lo, n, kind, enc, dec, post, q, buf)


def sq_terms_div(x, k, lo, n, kind, den, dec, post, q, buf):
    """Squared errors of elements x / den (den nonzero), a loop per element kind (each vectorises)."""
    if kind == 1:
        for i in range(n):
            xv = x[k, lo + i]
            r = quantize_fast_int(np.float32(xv / den), q)
            d = np.float64(np.float32(np.float32(np.float32(r * dec) * post) - xv))
            buf[i] = d * d
    else:
        for i in range(n):
            xv = x[k, lo + i]
            r = quantize_fast_float(np.float32(xv / den), q)
            d = np.float64(np.float32(np.float32(np.float32(r * dec) * post) - xv))
            buf[i] = d * d


def sq_terms_mul(x, k, lo, n, kind, enc, dec, post, q, buf):
    """Squared errors of elements x * enc, a loop per element kind (each vectorises)."""
    if kind == 1:
        for i in range(n):
            xv = x[k, lo + i]
            r = quantize_fast_int(np.float32(xv * enc), q)
            d = np.float64(np.float32(np.float32(np.float32(r * dec) * post) - xv))
            buf[i] = d * d
    else:
        for i in range(n):
            xv = x[k, lo + i]
            r = quantize_fast_float(np.float32(xv * enc), q)
            d = np.float64(np.float32(np.float32(np.float32(r * dec) * post) - xv))
            buf[i] = d * d


def leaf_sum(buf, n):
    """NumPy's pairwise sum of buf[0 : n], n <= PW_BLOCK: one by one from -0.0 below 8 terms, else
    eight accumulators (term i into i mod 8), added pairwise, then the rest one by one."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += buf[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]
    top = n - n % 8
    for i in range(8, top, 8):
        r0 += buf[i]
        r1 += buf[i + 1]
        r2 += buf[i + 2]
        r3 += buf[i + 3]
        r4 += buf[i + 4]
        r5 += buf[i + 5]
        r6 += buf[i + 6]
        r7 += buf[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(top, n):
        res += buf[i]
    return res


def pairwise_sum(x, k, lo, n, what, kind, div, den, enc, dec, post, q, delta, st):
    """NumPy's pairwise sum of terms lo .. lo + n - 1 of row k: its recursion walked with an
    explicit stack (st: three int64 arrays of STACK entries, a float64 one, and a float64 leaf
    buffer of PW_BLOCK), each frame's left half kept until its right is done."""
    st_lo, st_n, st_state, st_val, buf = st
    top = 0
    st_lo[0], st_n[0], st_state[0] = lo, n, 0
    ret = 0.0
    while top >= 0:
        m = st_n[top]
        if m <= PW_BLOCK:
            fill_terms(x, k, st_lo[top], m, what, kind, div, den, enc, dec, post, q, delta, buf)
            ret = leaf_sum(buf, m)
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if st_state[top] == 0:  # descend into the left half
            st_state[top] = 1
            top += 1
            st_lo[top], st_n[top], st_state[top] = st_lo[top - 1], half, 0
        elif st_state[top] == 1:  # the left half is in ret: keep it, descend into the right
            st_val[top] = ret
            st_state[top] = 2
            top += 1
            st_lo[top], st_n[top], st_state[top] = st_lo[top - 1] + half, m - half, 0
        else:
            ret = st_val[top] + ret
            top -= 1
    return ret


def candidate_scale(amax, factor, level, elem_max, smin, smax, s_over, qs):
    """A candidate's scale: one level, (amax * f) / max(element) clamped to [smin, smax] where
    those are positive and rounded to the scale format where qs[F_SPLIT] > 0; NVFP4, the scale
    format's rounding of (amax * (S_enc * (1 / max))) * f. The float32 steps of `host.scales`."""
    if level == LEVEL_NVFP4:
        return np.float32(quantize_fast_float(np.float32(np.float32(amax * s_over) * factor), qs))
    s = np.float32(np.float32(amax * factor) / elem_max)
    if smin > 0:
        s = max(s, smin)
    if smax > 0:
        s = min(s, smax)
    if qs[F_SPLIT] > 0:
        s = np.float32(quantize_fast_float(s, qs))
    return s


def scale_terms(s, level, divide, post):
    """(div, den, enc) of scale s: enc = 1 / s (NVFP4: 1 / (s * post)), 0 where that is 0; divide
    where the format does or where enc is past float32's range (a scale below 2^-128)."""
    den = np.float32(s * post) if level == LEVEL_NVFP4 else s
    enc = np.float32(0.0) if den == 0 else np.float32(np.float32(1.0) / den)
    return divide or enc > np.float32(_FLT_MAX), den, enc


def candidate_error(x, k, n, s, level, kind, divide, post, q, st):
    """Row k's sum of squared errors (NumPy's pairwise order) under candidate scale s."""
    div, den, enc = scale_terms(s, level, divide, post)
    if n <= PW_BLOCK:  # one leaf (NVFP4's blocks): no walk
        buf = st[4]
        fill_terms(x, k, 0, n, TERM_SQ_ERROR, kind, div, den, enc, s, post, q, 0.0, buf)
        return leaf_sum(buf, n)
    return pairwise_sum(x, k, 0, n, TERM_SQ_ERROR, kind, div, den, enc, s, post, q, 0.0, st)


def write_row(x, k, lo, n, s, level, kind, divide, post, q, out):
    """Values of row k's elements lo .. lo + n - 1 under scale s."""
    div, den, enc = scale_terms(s, level, divide, post)
    for i in range(lo, lo + n):
        out[k, i] = element_value(x[k, i], kind, div, den, enc, s, post, q)


def nan_row(k, n, out, scales):
    """A row holding NaN or Inf: NaN values and scale."""
    for i in range(n):
        out[k, i] = math.nan
    scales[k] = math.nan


def mse_row(x, xb, k, level, kind, divide, elem_max, smin, smax, s_enc, factors, q, qs, out, scales, st):
    """Row k quantized with the candidate scale of least squared error (the first on ties; a
    candidate equal to the one before it repeats its error and is skipped). NaN or Inf: NaN."""
    n = x.shape[1]
    abits = span_amax_bits(xb, k, 0, n)
    if abits >= 0x7F800000:
        nan_row(k, n, out, scales)
        return
    amax = float_of_bits(abits)
    post = np.float32(np.float32(1.0) / s_enc) if level == LEVEL_NVFP4 else np.float32(1.0)
    s_over = np.float32(s_enc * np.float32(np.float32(1.0) / elem_max))
    best = np.float32(0.0)
    best_err = 0.0
    prev = np.float32(0.0)
    for c in range(factors.size):
        s = candidate_scale(amax, factors[c], level, elem_max, smin, smax, s_over, qs)
        if c > 0 and s == prev:
            continue
        prev = s
        err = candidate_error(x, k, n, s, level, kind, divide, post, q, st)
        if c == 0 or err < best_err:
            best, best_err = s, err
    scales[k] = best
    write_row(x, k, 0, n, best, level, kind, divide, post, q, out)


def chunked_sum(x, k, lo, n, what, delta, chunk, st):
    """NumPy's float64 sum of float32 terms through its cast buffer: pairwise sums of pieces of
    `chunk` terms, added left to right from 0."""
    z = np.float32(0.0)  # no element: a parameter vector of zeros
    q = (z, z, z, z, z, z, z, z, z, z, z, z)
    total = 0.0
    for c in range(lo, lo + n, chunk):
        m = min(chunk, lo + n - c)
        one = np.float32(1.0)
        total += pairwise_sum(x, k, c, m, what, 0, False, one, one, one, one, q, delta, st)
    return total


def twn_row(x, xb, k, chunk, t_neg, t_zero, t_pos, out, scales, st):
    """TWN of row k: delta = 0.7 * float32(sum|x| / n); alpha = float32(sum of |x| above delta /
    their count), 0 where none is; values table[sign] * alpha, 0 below delta. NaN or Inf: NaN."""
    n = x.shape[1]
    if span_amax_bits(xb, k, 0, n) >= 0x7F800000:
        nan_row(k, n, out, scales)
        return
    delta = np.float32(np.float32(0.7) * np.float32(chunked_sum(x, k, 0, n, TERM_ABS, 0.0, chunk, st) / n))
    count = 0
    for i in range(n):
        count += np.int64(abs(x[k, i]) > delta)
    above = chunked_sum(x, k, 0, n, TERM_ABS_ABOVE, delta, chunk, st)
    alpha = np.float32(above / count) if count > 0 else np.float32(0.0)
    scales[k] = alpha
    twn_values(x, k, 0, n, delta, alpha, t_neg, t_zero, t_pos, out)


def twn_values(x, k, lo, n, delta, alpha, t_neg, t_zero, t_pos, out):
    """Elements lo .. lo + n - 1 of row k: table[sign(x)] * alpha above delta, table[0] * alpha below."""
    vn = np.float32(t_neg * alpha)
    vz = np.float32(t_zero * alpha)
    vp = np.float32(t_pos * alpha)
    for i in range(lo, lo + n):
        xv = x[k, i]
        r = vz
        if abs(xv) > delta:
            r = vp if xv > 0 else vn
        out[k, i] = r


def twn_sum_piece(x, k, lo, n, what, delta, chunk, st):
    """(sum, count) of one piece of row k (lo and n multiples of `chunk` but the row's last): its
    buffer pieces' pairwise sums added left to right from 0, and the count of |x| above delta."""
    count = 0
    if what == TERM_ABS_ABOVE:
        for i in range(lo, lo + n):
            count += np.int64(abs(x[k, i]) > delta)
    return chunked_sum(x, k, lo, n, what, delta, chunk, st), count


# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range


def cpu_stack():
    """The pairwise walk's stack and leaf buffer (`pairwise_sum`), on the heap."""
    s = np.empty(STACK, np.int64), np.empty(STACK, np.int64), np.empty(STACK, np.int64)
    return (*s, np.empty(STACK, np.float64), np.empty(PW_BLOCK, np.float64))


def mse_rows_loop(x, xb, level, kind, divide, elem_max, smin, smax, s_enc, factors, f, fs, out, scales):
    """`mse_row` on the CPU, ROWS_PER_ITEM rows at a time: their amax first, then every
    candidate's scales in a loop over the rows (which vectorises), then each row's search."""
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    rows = x.shape[0]
    n = x.shape[1]
    post = np.float32(np.float32(1.0) / s_enc) if level == LEVEL_NVFP4 else np.float32(1.0)
    s_over = np.float32(s_enc * np.float32(np.float32(1.0) / elem_max))
    for item in prange((rows + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM):
        st = cpu_stack()
        k0 = item * ROWS_PER_ITEM
        m = min(rows, k0 + ROWS_PER_ITEM) - k0
        amax = np.empty(m, np.float32)
        bits = np.empty(m, np.int64)
        for j in range(m):
            bits[j] = span_amax_bits(xb, k0 + j, 0, n)
            amax[j] = float_of_bits(bits[j]) if bits[j] < 0x7F800000 else np.float32(0.0)
        cands = np.empty((factors.size, m), np.float32)
        for c in range(factors.size):
            for j in range(m):
                cands[c, j] = candidate_scale(amax[j], factors[c], level, elem_max, smin, smax, s_over, qs)
        for j in range(m):
            k = k0 + j
            if bits[j] >= 0x7F800000:
                nan_row(k, n, out, scales)
                continue
            best = cands[0, j]
            best_err = candidate_error(x, k, n, best, level, kind, divide, post, q, st)
            for c in range(1, factors.size):
                s = cands[c, j]
                if s != cands[c - 1, j]:
                    err = candidate_error(x, k, n, s, level, kind, divide, post, q, st)
                    if err < best_err:
                        best, best_err = s, err
            scales[k] = best
            write_row(x, k, 0, n, best, level, kind, divide, post, q, out)


def twn_rows_loop(x, xb, chunk, t_neg, t_zero, t_pos, out, scales):
    rows = x.shape[0]
    for item in prange((rows + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM):
        st = cpu_stack()
        for k in range(item * ROWS_PER_ITEM, min(rows, item * ROWS_PER_ITEM + ROWS_PER_ITEM)):
            twn_row(x, xb, k, chunk, t_neg, t_zero, t_pos, out, scales, st)


def amax_pieces_loop(xb, prow, plo, pn, out):
    """Largest |x| bit pattern of each piece (row prow[p], elements plo[p] .. plo[p] + pn[p] - 1)."""
    for p in prange(prow.size):
        out[p] = span_amax_bits(xb, prow[p], plo[p], plo[p] + pn[p])


def mse_pieces_loop(x, prow, plo, pn, level, kind, divide, post, cands, active, f, errs):
    """errs[p, c]: the pairwise sum of squared errors of piece p (a node of NumPy's tree of its
    row) under candidate scale cands[row, c], for the active candidates."""
    q = fast_tuple(f)
    for p in prange(prow.size):
        st = cpu_stack()
        k = prow[p]
        for c in range(cands.shape[1]):
            if active[k, c]:
                s = cands[k, c]
                div, den, enc = scale_terms(s, level, divide, post)
                errs[p, c] = pairwise_sum(x, k, plo[p], pn[p], TERM_SQ_ERROR, kind, div, den, enc, s, post, q, 0.0, st)


def values_pieces_loop(x, prow, plo, pn, level, kind, divide, post, best, f, out):
    """Values of each piece under its row's chosen scale best[row]."""
    q = fast_tuple(f)
    for p in prange(prow.size):
        k = prow[p]
        write_row(x, k, plo[p], pn[p], best[k], level, kind, divide, post, q, out)


def twn_pieces_loop(x, prow, plo, pn, what, delta, chunk, sums, counts):
    """sums[p], counts[p]: `twn_sum_piece` of each piece under its row's delta."""
    for p in prange(prow.size):
        st = cpu_stack()
        sums[p], counts[p] = twn_sum_piece(x, prow[p], plo[p], pn[p], what, delta[prow[p]], chunk, st)


def twn_values_loop(x, prow, plo, pn, delta, alpha, t_neg, t_zero, t_pos, out):
    for p in prange(prow.size):
        k = prow[p]
        twn_values(x, k, plo[p], pn[p], delta[k], alpha[k], t_neg, t_zero, t_pos, out)


# Stands for numba.cuda in the CUDA build (see `modules`).
cuda = None


def cuda_stack():
    return (
        cuda.local.array(STACK, int64),
        cuda.local.array(STACK, int64),
        cuda.local.array(STACK, int64),
        cuda.local.array(STACK, float64),
        cuda.local.array(PW_BLOCK, float64),
    )


def mse_rows_grid(x, xb, level, kind, divide, elem_max, smin, smax, s_enc, factors, f, fs, out, scales):
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    st = cuda_stack()
    for k in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        mse_row(x, xb, k, level, kind, divide, elem_max, smin, smax, s_enc, factors, q, qs, out, scales, st)


def twn_rows_grid(x, xb, chunk, t_neg, t_zero, t_pos, out, scales):
    st = cuda_stack()
    for k in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        twn_row(x, xb, k, chunk, t_neg, t_zero, t_pos, out, scales, st)


SCALAR_FUNCTIONS = (
    element_value,
    fill_terms,
    sq_terms_div,
    sq_terms_mul,
    leaf_sum,
    pairwise_sum,
    candidate_scale,
    scale_terms,
    candidate_error,
    write_row,
    nan_row,
    mse_row,
    chunked_sum,
    twn_row,
    twn_values,
    twn_sum_piece,
    cpu_stack,
    cuda_stack,
)
CPU_LOOPS = (
    mse_rows_loop,
    twn_rows_loop,
    amax_pieces_loop,
    mse_pieces_loop,
    values_pieces_loop,
    twn_pieces_loop,
    twn_values_loop,
)
CUDA_LOOPS = (mse_rows_grid, twn_rows_grid)
