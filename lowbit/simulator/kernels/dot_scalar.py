"""Scalar arithmetic of the dot-product emulation, written once and compiled for the CPU and CUDA
(`make_dot_kernels(jit)`), and the CPU array drivers.

Numbers are float64 throughout. Element products are exact in float64 (the host checks that the
element formats allow it); sums and scalings that could round are carried as error-free pairs
(two_sum, two_prod) and rounded once, to the accumulator, through round-to-odd at 53 bits, which is
exact for any accumulator of up to 51 significand bits.

The accumulator parameter vector q (float64): kind, exponent bits, mantissa bits, emin, largest
finite value, rounding mode, integer bits, and three constants of the fast nearest rounding: the
Veltkamp splitter 2^(52 - mantissa bits) + 1, 2^emin, and 2^(emin - mantissa bits + 52).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .scalar import RDOWN, RNE, RTZ, RUP, retarget

prange = range  # the CPU build replaces it with numba.prange

Q_KIND, Q_EXP, Q_MAN, Q_EMIN, Q_MAX, Q_MODE, Q_BITS, Q_SPLIT, Q_TINY, Q_SUBC = range(10)
ACC_FLOAT, ACC_INT, ACC_EXACT = range(3)
ORDER_SEQUENTIAL, ORDER_PAIRWISE = range(2)
_SPLIT = 134217729.0  # 2^27 + 1: Veltkamp's splitter for float64
_TWO52 = 4503599627370496.0
STACK = 64  # pairwise partial sums held at once (a tree over up to 2^64 chunks)


def two_sum(a, b):
    """s = fl(a + b) and e with a + b = s + e exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def split64(a):
    c = a * _SPLIT
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    """p = fl(a * b) and e with a * b = p + e exactly (Dekker; no FMA needed)."""
    p = a * b
    ah, al = split64(a)
    bh, bl = split64(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def round_odd(h, r):
    """h + r (|r| below an ulp of h) rounded to odd at 53 bits: h if r is 0 or h's significand is
    odd, else h's neighbour toward r. Rounding that once more to p <= 51 bits is correct rounding."""
    if r == 0.0 or not math.isfinite(h):
        return h
    if h == 0.0:
        return math.copysign(5e-324, r)
    m, e = math.frexp(h)
    half = abs(m) * 4503599627370496.0  # the 53-bit significand over 2: a whole number when it is even
    if half != float(math.floor(half)):
        return h
    down = (r < 0.0) != (h < 0.0)  # toward zero
    step = math.ldexp(1.0, e - 54) if down and abs(m) == 0.5 else math.ldexp(1.0, e - 53)
    return h + step if r > 0.0 else h - step


def round_to_integer(x, mode):
    """x (|x| < 2^52) rounded to an integer-valued float under `mode`."""
    if mode == RNE:
        return math.copysign((abs(x) + _TWO52) - _TWO52, x)
    if mode == RTZ:
        return float(math.trunc(x))
    if mode == RUP:
        return float(math.ceil(x))
    if mode == RDOWN:
        return float(math.floor(x))
    return math.copysign(float(math.floor(abs(x) + 0.5)), x)  # RNA


def overflow_value(x, q):
    """The result of an overflow past the largest finite value, under the accumulator's mode."""
    mode = q[Q_MODE]
    toward_zero = mode == RTZ or (mode == RUP and x < 0.0) or (mode == RDOWN and x > 0.0)
    return math.copysign(q[Q_MAX], x) if toward_zero else math.copysign(math.inf, x)


def round_acc(x, q):
    """x rounded to the float accumulator (q[Q_EXP] exponent bits, q[Q_MAN] mantissa bits, IEEE
    subnormals and infinities) under its rounding mode; NaN and Inf pass through."""
    if not math.isfinite(x) or x == 0.0:
        return x
    e = max(math.frexp(x)[1] - 1, q[Q_EMIN])  # the exponent of x's binade, at least emin
    ulp = math.ldexp(1.0, int(e - q[Q_MAN]))
    r = round_to_integer(x / ulp, q[Q_MODE]) * ulp
    if abs(r) > q[Q_MAX]:
        return overflow_value(x, q)
    return r


def round_near(x, q):
    """Finite x rounded to nearest, ties to even, in the float accumulator without frexp: a Veltkamp split
    keeps (mantissa bits + 1) bits of a normal x; (x + C) - C rounds a subnormal one. Equals
    round_acc under RNE (tested)."""
    if abs(x) >= q[Q_TINY]:
        c = x * q[Q_SPLIT]
        r = c - (c - x)
    else:
        r = (x + q[Q_SUBC]) - q[Q_SUBC]
    if abs(r) > q[Q_MAX]:
        return math.copysign(math.inf, x)
    return r


def round_any(x, q):
    """x rounded once to the float accumulator: the fast nearest rounding under RNE, else round_acc."""
    if q[Q_MODE] == RNE and math.isfinite(x):
        return round_near(x, q)
    return round_acc(x, q)


def apply_alpha(x, tscale, q):
    """x times the tensor scales' product, applied as a GEMM epilogue's alpha: alpha is the product
    rounded to the accumulator, and x * alpha is rounded to it once more."""
    alpha = round_any(tscale, q)
    p, e = two_prod(x, alpha)
    if not math.isfinite(p):
        return p
    if e == 0.0:
        return round_any(p, q)
    return round_acc(round_odd(p, e), q)


def wrap_int(x, bits):
    """x (an integer-valued float) wrapped to a two's-complement integer of `bits` bits."""
    span = math.ldexp(1.0, int(bits))
    return x - span * math.floor((x + span / 2) / span)


def acc_add(a, vh, vl, q):
    """a + vh + vl (exact) rounded once to the accumulator (integer accumulators wrap)."""
    if q[Q_KIND] == ACC_INT:
        return wrap_int(a + vh, q[Q_BITS])
    s1, e1 = two_sum(a, vh)
    if not math.isfinite(s1):  # Inf or NaN: IEEE addition decides (two_sum's error term is NaN)
        return s1
    if vl == 0.0 and e1 == 0.0 and q[Q_MODE] == RNE:
        return round_near(s1, q)  # the sum is exact in float64: one rounding, the common case
    s2, e2 = two_sum(s1, vl)
    t, et = two_sum(e1, e2)
    h, eh = two_sum(s2, t)
    return round_acc(round_odd(h, eh + et), q)


def chunk_sum(ea, i, eb, j, k0, k1, trunc):
    """Sum of ea[i, k] * eb[j, k] for k0 <= k < k1 as an exact pair (hi, lo), and a flag set when
    the pair could not hold it. trunc > 0 first truncates each product toward zero to `trunc` bits
    below the chunk's largest product (a partial-sum adder of that width)."""
    ulp = 0.0
    if trunc > 0:
        top = -100000
        for k in range(k0, k1):
            p = ea[i, k] * eb[j, k]
            if p != 0.0:
                top = max(top, math.frexp(p)[1])
        ulp = math.ldexp(1.0, top - trunc)
    hi = 0.0
    lo = 0.0
    bad = False
    for k in range(k0, k1):
        p = ea[i, k] * eb[j, k]
        if trunc > 0:
            p = float(math.trunc(p / ulp)) * ulp
        hi, e = two_sum(hi, p)
        lo, e2 = two_sum(lo, e)
        bad = bad or e2 != 0.0
    hi, lo = two_sum(hi, lo)
    return hi, lo, bad


def scaled_pair(hi, lo, s):
    """(hi + lo) * s as an exact pair (vh, vl), and a flag set when it is not exact."""
    vh, e1 = two_prod(hi, s)
    l2, e2 = two_prod(lo, s)
    vl, e3 = two_sum(e1, l2)
    return vh, vl, e2 != 0.0 or e3 != 0.0


def chunk_value(ea, sa, blk_a, i, eb, sb, blk_b, j, k0, k1, trunc):
    """The chunk's exact partial sum times its two block scales: (vh, vl, inexact flag)."""
    hi, lo, bad = chunk_sum(ea, i, eb, j, k0, k1, trunc)
    s = sa[i, k0 // blk_a] * sb[j, k0 // blk_b]
    vh, vl, bad2 = scaled_pair(hi, lo, s)
    return vh, vl, bad or bad2


def pairwise_push(stack, sp, t, x, q):
    """Adds chunk result x (chunk number t) to the pairwise tree held in stack[:sp]; returns sp."""
    c = t
    while c & 1:
        sp -= 1
        x = acc_add(stack[sp], x, 0.0, q)
        c >>= 1
    stack[sp] = x
    return sp + 1


def dot_one(ea, sa, blk_a, eb, sb, blk_b, i, j, chunk, q, trunc, order, tscale, stack):
    """Output (i, j): the accumulator's value and a flag set when an exact sum overflowed its pair."""
    n = ea.shape[1]
    acc = 0.0
    lo_acc = 0.0
    bad = False
    sp = 0
    for k0 in range(0, n, chunk):
        vh, vl, b = chunk_value(ea, sa, blk_a, i, eb, sb, blk_b, j, k0, min(k0 + chunk, n), trunc)
        bad = bad or b
        if q[Q_KIND] == ACC_EXACT:
            acc, e1 = two_sum(acc, vh)
            lo_acc, e2 = two_sum(lo_acc, e1 + vl)
            bad = bad or e2 != 0.0
        elif order == ORDER_PAIRWISE:
            sp = pairwise_push(stack, sp, k0 // chunk, acc_add(0.0, vh, vl, q), q)
        else:
            acc = acc_add(acc, vh, vl, q)
    if order == ORDER_PAIRWISE and q[Q_KIND] != ACC_EXACT and sp > 0:
        acc = stack[sp - 1]
        for s in range(sp - 2, -1, -1):
            acc = acc_add(stack[s], acc, 0.0, q)
    if q[Q_KIND] == ACC_EXACT:
        if tscale != 1.0:
            p, e = two_prod(acc, tscale)
            return p + (e + lo_acc * tscale), bad
        return acc + lo_acc, bad
    if tscale != 1.0:
        return apply_alpha(acc, tscale, q), bad
    return acc, bad


def dot_loop(ea, sa, blk_a, eb, sb, blk_b, chunk, q, trunc, order, tscale, out, flags):
    """Every output: rows over the cores."""
    for i in prange(ea.shape[0]):
        stack = np.empty(STACK, np.float64)
        for j in range(eb.shape[0]):
            out[i, j], flags[i, j] = dot_one(ea, sa, blk_a, eb, sb, blk_b, i, j, chunk, q, trunc, order, tscale, stack)


TILE = 8
TILE32 = 32


def dot_fast_loop(ea, sa, blk_a, ebk, sb, blk_b, chunk, q, out):
    """Sequential accumulation when every chunk sum is exact in plain float64 and so is the product of
    two block scales (the host checks the bounds): tiles of TILE outputs of a row, whose chunk sums run
    as independent vector lanes over ebk, the second operand laid out (K, N). A chunk sum times its
    scales is carried as an exact pair (two_prod), as `dot_loop` does. Equals `dot_loop` (tested)."""
    n = ea.shape[1]
    cols = ebk.shape[1]
    for i in prange(ea.shape[0]):
        s = np.empty(TILE, np.float64)
        acc = np.empty(TILE, np.float64)
        for j0 in range(0, cols, TILE):
            w = min(TILE, cols - j0)
            for jj in range(w):
                acc[jj] = 0.0
            for k0 in range(0, n, chunk):
                k1 = min(k0 + chunk, n)
                for jj in range(w):
                    s[jj] = 0.0
                for k in range(k0, k1):
                    a = ea[i, k]
                    for jj in range(w):
                        s[jj] += a * ebk[k, j0 + jj]
                ka = k0 // blk_a
                kb = k0 // blk_b
                for jj in range(w):
                    vh, vl = two_prod(s[jj], sa[i, ka] * sb[j0 + jj, kb])
                    acc[jj] = acc_add(acc[jj], vh, vl, q)
            for jj in range(w):
                out[i, j0 + jj] = acc[jj]


ROWS = 16  # rows that share a strip of the second operand while it sits in cache


def dot_f32_loop(ea, sa, blk_a, ebk, sbt, blk_b, chunk, q, f32acc, out):
    """As `dot_fast_loop`, when chunk sums and their scalings are exact in float32 (the host checks
    the bound and the scales' range; K is a multiple of the chunk and N of TILE32, zero-padded;
    sbt is the second operand's scales laid out (blocks, N)): eight lanes a vector, ROWS rows per
    strip of TILE32 columns. With an FP32 round-to-nearest accumulator (f32acc) the accumulation is
    float32 addition itself, which rounds exactly as the emulation does."""
    n = ea.shape[1]
    cols = ebk.shape[1]
    rows = ea.shape[0]
    for r0 in prange((rows + ROWS - 1) // ROWS):
        s = np.empty(TILE32, np.float32)
        acc32 = np.empty(TILE32, np.float32)
        acc = np.empty(TILE32, np.float64)
        for j0 in range(0, cols, TILE32):
            for i in range(r0 * ROWS, min(r0 * ROWS + ROWS, rows)):
                for jj in range(TILE32):
                    acc32[jj] = 0.0
                    acc[jj] = 0.0
                for k0 in range(0, n, chunk):
                    for jj in range(TILE32):
                        s[jj] = 0.0
                    for k in range(k0, k0 + chunk):
                        a = ea[i, k]
                        for jj in range(TILE32):
                            s[jj] += a * ebk[k, j0 + jj]
                    sa_ik = sa[i, k0 // blk_a]
                    kb = k0 // blk_b
                    if f32acc:
                        for jj in range(TILE32):
                            acc32[jj] += s[jj] * (sa_ik * sbt[kb, j0 + jj])
                    else:
                        for jj in range(TILE32):
                            acc[jj] = acc_add(acc[jj], np.float64(s[jj] * (sa_ik * sbt[kb, j0 + jj])), 0.0, q)
                for jj in range(TILE32):
                    out[i, j0 + jj] = np.float64(acc32[jj]) if f32acc else acc[jj]


def scale_add_loop(sums, c0, sa, blk_a, sbt, blk_b, chunk, q, f32acc, acc32, acc):
    """Adds chunk sums c0, c0 + 1, ... (sums: (chunks, M, N) float32, each exact) times their block
    scales into the accumulators, in order along K, as `dot_f32_loop` does: float32 addition when
    f32acc (an FP32 round-to-nearest accumulator), else `acc_add`. sbt: the second operand's scales
    laid out (blocks, N)."""
    for i in prange(sums.shape[1]):
        for g in range(sums.shape[0]):
            k0 = (c0 + g) * chunk
            sa_ik = sa[i, k0 // blk_a]
            kb = k0 // blk_b
            if f32acc:
                for j in range(sums.shape[2]):
                    acc32[i, j] += sums[g, i, j] * (sa_ik * sbt[kb, j])
            else:
                for j in range(sums.shape[2]):
                    acc[i, j] = acc_add(acc[i, j], np.float64(sums[g, i, j] * (sa_ik * sbt[kb, j])), 0.0, q)


def scale_add64_loop(sums, c0, sa, blk_a, sbt, blk_b, chunk, q, acc):
    """As `scale_add_loop` for chunk sums exact in float64 (sums: (chunks, M, N) float64): a chunk sum
    times its scales is carried as an exact pair (two_prod) into `acc_add`, as `dot_fast_loop` does."""
    for i in prange(sums.shape[1]):
        for g in range(sums.shape[0]):
            k0 = (c0 + g) * chunk
            sa_ik = sa[i, k0 // blk_a]
            kb = k0 // blk_b
            for j in range(sums.shape[2]):
                vh, vl = two_prod(sums[g, i, j], sa_ik * sbt[kb, j])
                acc[i, j] = acc_add(acc[i, j], vh, vl, q)


# ----- Per-product accumulation (chunk 1): acc = round(acc + a_ik * b_kj) after every product -----
# The general driver carries every sum as an error-free pair and rounds it through round-to-odd. Where
# the host has proved one of two conditions for the operands' values (gemm.per_product_plan), the same
# result takes a few branch-free operations per product, which vectorise over columns:
#   exact:  acc + p is exact in float64 (every acc and p a multiple of a power of two g, and the
#           largest |acc| + |p| below 2^52 g): one rounding, to nearest even (a Veltkamp split, with
#           (x + C) - C for sums between the accumulator's subnormals) or directed (`directed_step`);
#   double: nearest even: the lanes' sum (float32 or float64, p' bits) rounded again to the
#           accumulator's p = man_bits + 1 bits is the sum rounded once, when both operands have at most
#           p bits, p' >= 2p + 1, and every product is a multiple of the accumulator's subnormal step u
#           (a sum below its smallest normal is then exact; a larger one rounds as with an unbounded
#           exponent). Figueroa 1995; in brief, with |x| >= |y|: if their exponents differ by at most
#           p' - p - 1, x + y is exact in p' bits; otherwise |y| < ulp_p(x)/2, and the distance from
#           x + y to each p-bit midpoint within reach (x +- ulp_p(x)/2, or x - ulp_p(x)/4 below a
#           power of two) is 0 or more than half an ulp of p' bits there, so the first rounding never
#           lands on a midpoint the sum is not on.
# Where every product is a multiple of u, a sum below the smallest normal has at most man_bits bits and
# the split alone rounds (`nearest_step`). The CUDA kernel takes `rounded_sum_step` under the same
# conditions. The constants of the steps, a vector in the lanes' dtype filled by the host:
(
    PP_SPLIT,  # Veltkamp's splitter 2^(lane precision - 1 - man_bits) + 1 (1: the lanes are the accumulator)
    PP_TINY,  # 2^emin, the smallest normal
    PP_SUBC,  # 1.5 * 2^(emin - man_bits + 52): (x + C) - C rounds x to a multiple of u
    PP_MAX,  # the largest finite value
    PP_INF,  # +Inf
    PP_INV2M,  # 2^-man_bits
    PP_ULP_MIN,  # u = 2^(emin - man_bits)
    PP_DIR_A,  # directed modes: see `directed_step`
    PP_DIR_B,
    PP_THR,
    PP_ZERO,
    PP_COUNT,
) = range(12)
PP_NEAR, PP_NEAR_SUB, PP_DIRECTED = range(3)  # the step: nearest, nearest with subnormal sums, directed
_ONE_BIT = 4503599627370497.0  # 2^52 + 1: a Veltkamp split that keeps one significant bit of a float64
_GRID = 6755399441055744.0  # 1.5 * 2^52: (x + _GRID * s) - _GRID * s rounds |x| < 2^51 s to a multiple of s
PP_ROWS = 4  # rows that share each element of the second operand: one load serves 4 sums
PP_COLS = 32  # columns of a strip: 4 rows x 32 columns of independent sums hide the step's latency


def nearest_step(acc, p, split, big, inf):
    """acc + p rounded to nearest even in the accumulator, when every sum below its smallest normal is
    exact there: Veltkamp's split with split = 2^(lane precision - 1 - man_bits) + 1 keeps man_bits + 1
    bits (split = 1 where the lanes are the accumulator: the sum itself). Past the largest finite
    value `big` the result is Inf of the sum's sign (an Inf sum gives NaN in the split: the same).
    Zero sums are +0 as in `dot_one`: acc is never -0 under nearest even, so a -0 product is as +0."""
    s = acc + p
    c = s * split
    r = c - (c - s)
    return r if abs(r) <= big else math.copysign(inf, s)


def nearest_sub_step(acc, p, split, tiny, subc, big, inf):
    """`nearest_step` for sums that can fall between the accumulator's subnormals: below its smallest
    normal `tiny`, (s + subc) - subc with subc = 1.5 * 2^(emin - man_bits + lane precision - 1) rounds s
    to a multiple of the subnormal step. Equals `round_near` on finite sums."""
    s = acc + p
    c = s * split
    hi = c - (c - s)
    lo = (s + subc) - subc
    r = hi if abs(s) >= tiny else lo
    return r if abs(r) <= big else math.copysign(inf, s)


def directed_step(acc, p, inv2m, ulp_min, big, inf, dir_a, dir_b, thr, zero):
    """acc + p, exact in float64, rounded once under a mode other than nearest-even, as `round_acc`
    rounds it (signs of zero included), on the magnitude a = |s| (sign restored at the end). The
    step of a's binade, ulp = max(2^floor(log2 a) * 2^-man_bits, ulp_min), comes from a one-bit
    Veltkamp split (2^floor(log2 a) is that split or half of it); rn, a rounded to nearest even on
    that grid, moves one step away from zero (up = dir_a * sign + dir_b = 1) or toward it (-1)
    where a lies beyond it that way by at least thr * ulp (thr: 2^-60, below every nonzero distance,
    a multiple of g > 2^-53 ulp; or 1/2 under rna, which moves ties only): rtz (0, -1), rup (1, 0),
    rdown (-1, 0), rna (0, 1).
    Past `big`: the largest finite value toward zero, else Inf. `zero` (+0.0, or -0.0 under rna) is
    added last: a zero result is +0 as round_acc's integer conversion gives it, or under rna the
    sum's sign (round_acc's copysign). A zero sum is +0, as in `dot_one`, whose chunk sums start
    from +0 (-0 + -0 would be -0 here). Every step is a select, so that the column loop vectorises
    (a select between two copysign calls stops it)."""
    s = (acc + p) + 0.0
    a = abs(s)
    c = a * _ONE_BIT
    h = c - (c - a)
    top = h if h <= a else h * 0.5  # 2^floor(log2 a)
    w = top * inv2m
    ulp = w if w > ulp_min else ulp_min
    grid = ulp * _GRID
    rn = (a + grid) - grid
    sign = math.copysign(1.0, s)
    up = dir_a * sign + dir_b
    r = rn + up * ulp if (a - rn) * up >= thr * ulp else rn
    over = big if up < 0.0 else inf
    return (r if r <= big else over) * sign + zero


def rounded_sum_step(acc, p, q):
    """acc + p rounded once to the float accumulator by `round_acc`, under the host's per-product
    conditions (the sum exact in float64, or nearest-even with innocuous double rounding), as
    `dot_one` rounds it at chunk 1: a zero product counts as +0, and under nearest-even a zero result
    is +0 (`round_near`'s). The CUDA per-product kernel's step: frexp and a power-of-two quotient, no
    product feeding a sum, so NVVM's default contraction of a * b + c into one fused operation (which
    numba-cuda cannot turn off, and which would break a Veltkamp split) leaves it unchanged."""
    r = round_acc((acc + p) + 0.0, q)
    return r + 0.0 if q[Q_MODE] == RNE else r


def per_product_one(ea, eb, i, j, q):
    """Output (i, j) accumulated one product at a time in K order (eb laid out (N, K))."""
    acc = 0.0
    for k in range(ea.shape[1]):
        acc = rounded_sum_step(acc, ea[i, k] * eb[j, k], q)
    return acc


def dot_per_product_loop(ea, ebk, c, kind, out):
    """Every output accumulated one product at a time in K order (ebk: the second operand laid out
    (K, N), N a multiple of PP_COLS, zero-padded; ea, ebk and c in the lanes' dtype, float32 or
    float64). Tiles of PP_ROWS rows by PP_COLS columns over the cores; the step kind is tested outside
    the column loop, so that each column loop is branch-free and vectorises (4 rows per element of b:
    1.6 times the speed of a column loop per row). Equals `dot_loop` at chunk 1 under the host's
    conditions (tested)."""
    rows, n = ea.shape
    strips = ebk.shape[1] // PP_COLS
    blocks = (rows + PP_ROWS - 1) // PP_ROWS
    split, tiny, subc, big, inf = c[PP_SPLIT], c[PP_TINY], c[PP_SUBC], c[PP_MAX], c[PP_INF]
    inv2m, ulp_min, thr, zero = c[PP_INV2M], c[PP_ULP_MIN], c[PP_THR], c[PP_ZERO]
    dir_a, dir_b = c[PP_DIR_A], c[PP_DIR_B]
    for t in prange(strips * blocks):
        j0 = (t // blocks) * PP_COLS  # a thread's tiles share strips: each strip is read by all rows
        i0 = (t % blocks) * PP_ROWS
        acc = np.zeros((PP_ROWS, PP_COLS), ea.dtype)
        a = np.empty(PP_ROWS, ea.dtype)
        for k in range(n):
            for r in range(PP_ROWS):
                a[r] = ea[min(i0 + r, rows - 1), k]  # rows past the last repeat it, unwritten
            # each element of b serves PP_ROWS rows (the row loop unrolls, the column loop vectorises)
            if kind == PP_NEAR:
                for jj in range(PP_COLS):
                    b = ebk[k, j0 + jj]
                    for r in range(PP_ROWS):
                        acc[r, jj] = nearest_step(acc[r, jj], a[r] * b, split, big, inf)
            elif kind == PP_NEAR_SUB:
                for jj in range(PP_COLS):
                    b = ebk[k, j0 + jj]
                    for r in range(PP_ROWS):
                        acc[r, jj] = nearest_sub_step(acc[r, jj], a[r] * b, split, tiny, subc, big, inf)
            else:
                for jj in range(PP_COLS):
                    b = ebk[k, j0 + jj]
                    for r in range(PP_ROWS):
                        p = a[r] * b
                        acc[r, jj] = directed_step(acc[r, jj], p, inv2m, ulp_min, big, inf, dir_a, dir_b, thr, zero)
        for r in range(min(PP_ROWS, rows - i0)):
            for jj in range(PP_COLS):
                out[i0 + r, j0 + jj] = acc[r, jj]


def tensor_scale_loop(out, tscale, q):
    """The tensor scales' product applied to every output as `apply_alpha` does."""
    for i in prange(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = apply_alpha(out[i, j], tscale, q)


SCALAR_FUNCTIONS = (
    two_sum,
    split64,
    two_prod,
    round_odd,
    round_to_integer,
    overflow_value,
    round_acc,
    round_near,
    round_any,
    apply_alpha,
    wrap_int,
    acc_add,
    chunk_sum,
    scaled_pair,
    chunk_value,
    pairwise_push,
    dot_one,
    nearest_step,
    nearest_sub_step,
    directed_step,
    rounded_sum_step,
    per_product_one,
)
CPU_LOOPS = (
    dot_loop,
    dot_fast_loop,
    dot_f32_loop,
    scale_add_loop,
    scale_add64_loop,
    tensor_scale_loop,
    dot_per_product_loop,
)


def make_dot_kernels(jit: Callable[[Callable], Callable], **extra_globals) -> dict[str, Callable]:
    """The scalar functions compiled with `jit` (CPU njit or CUDA device), as a namespace dict in
    which array drivers can be compiled too."""
    namespace = {**globals(), **extra_globals}
    retarget(SCALAR_FUNCTIONS, jit, namespace)
    return namespace
