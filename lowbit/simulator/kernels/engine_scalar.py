"""Scalar arithmetic of the truncated fused sums of NVIDIA's matrix engines (T_FDPA, ST_FDPA,
GST_FDPA; `lowbit.formats.engines`), written once and compiled for the CPU and CUDA
(`make_engine_kernels(jit)`), and the CPU array drivers. `matrix_engines` is the reference: these
functions compute its integer arithmetic with floats where the floats are provably exact, and
`engine_gemm` runs them only where a host check of the profile (`engine_gemm._plan`) says so.

A GEMM is a chain of fused sums along K, each of `group` products and the previous result C. The
host hands the kernels each element's value v (0 where it is NaN or Inf) and its alignment
exponent e (the `e` of `matrix_engines._split`: floor(log2|v|), at least the type's emin, so a
subnormal takes emin; LEFT_OUT for a zero). A product aligns at ea + eb (+ xs, the two block
scales' exponents, for ST_FDPA), NOT at the exponent of its value; C at its own exponent, at least
its type's emin, or at `zero` when it is 0. The reference also aligns a zero product at `zero`,
but `zero` lies below the emin of C's types (checked), so the exponent of C is never below it:
zero products never set the maximum and the kernels leave them out. With emax the largest
alignment exponent of the group, each term is
    trunc(v_a * v_b * 2^(bits + xs - emax)),
the integer the reference's `_fused_terms` computes (it shifts sig_a * sig_b = v_a * v_b *
2^(frac - ea - eb) by bits - frac + ea + eb + xs - emax).

Why the floats are exact (each condition checked on the profile by `engine_gemm._plan`):
1. v_a * v_b is exact in the product dtype: float32 where the element values and every product
   fit it (at most 24 significant bits, no step below 2^-149: FP8, FP6, FP4), else float64 (f16,
   bf16, tf32: at most 22 bits, steps of 2^-272 and up).
2. The factor is 2^n, n = bits + xs - emax clamped to [lo, hi] (the dtype's normal range). For a
   nonzero product emax >= ea + eb + xs, so n <= bits - ea - eb <= bits - emin_a - emin_b <= hi,
   and |v_a v_b| < 2^(ea + eb + 2) gives |v_a v_b 2^n| < 2^(bits + 2). A power-of-two scaling is
   exact unless the result falls below the dtype's smallest normal, and then it and the exact
   value are both below 1 and truncate to 0. Where n < lo, the largest product times 2^lo is
   below 1, so the clamped term is 0 as the exact one is. A zero product times it is 0.
3. np.int64 (np.int32 where the sum allows, C_SUM32) of such a value truncates it toward zero; a
   group's terms and C's, below group * 2^(bits + 2) + 2^(bits + 1) <= 2^53, sum exactly in int64
   and in float64.
4. C is a value of the output type (at most 24 significant bits) and bits - emax lies in
   [bits - 300, bits - zero], so trunc(c * 2^(bits - emax)) is exact in float64.
5. The sum times 2^(emax - bits) is exact in float64 (emax - bits >= zero - bits > -1022), and
   `requantize` cuts it as `matrix_engines._requantize` does: toward zero by clearing the float64
   significand's low 52 - man bits (below 2^emin: truncating it on the grid 2^(emin - man)), to
   nearest even by adding and taking away 2^52 at the scale 2^(max(lead, emin) - man); the result
   from 2^(emax_out + 1) up is +-Inf, as `_to_float` gives; a zero result is +0.
GST_FDPA sums each subgroup of `sub` products exactly first, as the reference does: the elements
in fixed point (`matrix_engines._fixed`, in int8) and their products and sums in int16 (the host
checks both bounds); it flags the subgroups without a nonzero product: the reference aligns them
(and a zero scale) at `zero`, which as above never sets the maximum, so their scales' exponents
must take no part in it. A subgroup sum times its two scale values is exact in float64 (at most
15 + 8 significant bits), and times 2^(bits - emax - C_FIX) its truncation, summed with the
others and C's, stays below 2^53 (checked).

Exponents of elements are int8 (LEFT_OUT8 marks a zero) where they and their pair sums fit, else
int16 (LEFT_OUT16): a pair sum at or below C_NONE involves a zero element, and a group whose
pairs all do has no nonzero product, which the scales' exponents must not lift into the maximum.
Powers of two are built from their bit patterns (`pow2`) and exponents read from them
(`exponent`): no libm call, so the CPU loops over a strip of columns vectorise. The CPU drivers
run tasks of ROWS rows by one strip of B's columns (contiguous, its width a runtime value: with a
constant one LLVM unrolls the strip instead of vectorising it), the strip-major order keeping each
thread's strip in cache, and take four k at a time (integer sums: any order is exact). An Inf C
stays Inf (the reference reads it as 0 and the result as C); the host runs the outputs whose
operands hold NaN or Inf through the reference driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .scalar import retarget

prange = range  # the CPU build replaces it with numba.prange

# The int64 configuration vector of a profile (engine_gemm builds it).
(
    C_BITS,  # fraction bits kept below the group's largest exponent
    C_ZERO,  # the exponent a zero C aligns at (at most the C types' emin)
    C_GROUP,  # products per fused sum
    C_SPLIT,  # fused sums per instruction: C is read as the instruction's C type at each first one
    C_SUB,  # GST_FDPA: products per exact subgroup sum
    C_BLOCK,  # GST_FDPA: elements per block scale
    C_MAN,  # the output's fraction bits
    C_EMIN,  # the output's smallest normal exponent
    C_EMAX,  # the output's largest exponent (2^(C_EMAX + 1) and up is Inf)
    C_RNE,  # 1: round half to even to the output, 0: toward zero
    C_NARROW,  # 1: the instruction's C type is narrower than the output type (C is cut to it)
    C_C_MAN,  # the C type's fraction bits and smallest normal exponent
    C_C_EMIN,
    C_D_EMIN,  # the output type's smallest normal exponent (C within an instruction)
    C_LO,  # the products' factor 2^n is taken with n clamped to [C_LO, C_HI]
    C_HI,
    C_NONE,  # a pair exponent sum at or below this one involves a zero element (LEFT_OUT-based)
    C_SMALL,  # 1: the exponents are int8 (LEFT_OUT8-based; the CPU's fdpa_small driver), else int16
    C_SUM32,  # 1: a group's terms sum below 2^31 in magnitude (the CPU sums them in int32 lanes)
    C_FIX,  # GST_FDPA: fraction bits of the elements' product in fixed point
    C_COUNT,
) = range(21)

# Alignment exponent the host gives a zero element: two of them sum to -128 (int8) or -16384
# (int16), and either plus a real exponent stays below C_NONE = LEFT_OUT / 2.
LEFT_OUT8 = -64
LEFT_OUT16 = -8192
_NO_PRODUCT = -(1 << 20)  # an exponent below every real one
_TWO52 = 4503599627370496.0


# ----- scalar functions (CPU and CUDA) ---------------------------------------------------------
def pow2(n):
    """2^n as float64 for an integer -1022 <= n <= 1023, from its bit pattern."""
    return np.int64((np.int64(n) + 1023) << 52).view(np.float64)


def exponent(x):
    """floor(log2|x|) of a normal float64 x (-1023 for zero)."""
    return ((np.float64(x).view(np.int64) >> 52) & 0x7FF) - 1023


def requantize(v, man, emin, rne):
    """Finite float64 v cut to `man` fraction bits below its leading bit (below 2^emin: the grid
    2^(emin - man)), rounded half to even (rne) or toward zero; +0 for zero."""
    if not rne:
        return requantize_rz(v, man, emin)
    q = max(exponent(v), emin) - man
    x = v * pow2(-q)  # exact: a power of two, |x| < 2^(man + 1)
    r = math.copysign((abs(x) + _TWO52) - _TWO52, x)  # half to even: |x| < 2^52
    return r * pow2(q) + 0.0  # + 0.0 turns -0 into +0 (round-to-nearest addition)


def requantize_rz(v, man, emin):
    """`requantize` toward zero: from 2^emin up, v's float64 significand with its low 52 - man
    bits cleared; below, v truncated to the grid 2^(emin - man) (exact power-of-two scalings)."""
    keep = np.int64(-1) << (52 - man)
    cleared = np.int64(np.float64(v).view(np.int64) & keep).view(np.float64)
    tiny = np.float64(np.int64(v * pow2(man - emin))) * pow2(emin - man)
    return tiny if abs(v) < pow2(emin) else cleared  # never -0: v comes from integer sums


def to_output(total, emax, bits, man, emin, emax_out, rne):
    """The fused sum total * 2^(emax - bits) (total an integer-valued float64) as the output value:
    requantized, +-Inf from 2^(emax_out + 1) up."""
    r = requantize(total * pow2(emax - bits), man, emin, rne)
    return math.copysign(math.inf, r) if abs(r) >= pow2(emax_out + 1) else r


def narrow_c(c, c_man, c_emin):
    """C as an instruction reads it in a narrower C type: cut toward zero to its fraction bits
    (subnormal grid below 2^c_emin, no overflow), as `_split` does; Inf stays Inf."""
    return requantize_rz(c, c_man, c_emin) if abs(c) < math.inf else c


def c_finite(c):
    """The part of C a fused sum adds: C, or 0 for an Inf C (its result is C, see `fused_result`)."""
    return c if abs(c) < math.inf else 0.0


def c_exponent(cz, emin, zero):
    """The alignment exponent of a finite C: floor(log2|c|), at least emin; `zero` for zero."""
    return zero if cz == 0.0 else max(exponent(cz), emin)


def c_term(cz, bits, emax):
    """C's term: trunc(c * 2^(bits - emax)), exact (see the module doc)."""
    return np.float64(np.int64(cz * pow2(bits - emax)))


def fused_emax(e_pair, none, xs, ec):
    """The group's largest alignment exponent: of its nonzero products (e_pair, the largest
    ea + eb; at or below `none` when every product is zero) shifted by the scales' exponents xs,
    and of C (ec)."""
    return max(np.int64(e_pair) + xs if e_pair > none else _NO_PRODUCT, ec)


def product_factor(bits, xs, emax, lo, hi):
    """2^(bits + xs - emax), the exponent clamped to [lo, hi] (exact, see the module doc)."""
    return pow2(min(max(bits + xs - emax, lo), hi))


def product_term(a, b, f):
    """trunc(a * b * f) as an int64: a product's term (exact, see the module doc)."""
    return np.int64(a * b * f)


def product_term32(a, b, f):
    """`product_term` as an int32, where C_SUM32 keeps a group's sum below 2^31 (the CPU converts
    and adds eight float32 lanes at a time to int32, four to int64)."""
    return np.int32(a * b * f)


def fused_result(s, cz, c, emax, bits, man, emin, emax_out, rne):
    """A fused sum's result from its products' terms s and C (value c, finite part cz)."""
    total = np.float64(s) + c_term(cz, bits, emax)
    r = to_output(total, emax, bits, man, emin, emax_out, rne)
    return c if abs(c) == math.inf else r


def subgroup_exponent(live, sasb, xs):
    """GST_FDPA: a subgroup sum aligns at its scales' exponents xs; one without a nonzero product
    (live == 0) or with a zero scale takes no part in the maximum (module doc)."""
    return xs if live != 0 and sasb != 0.0 else _NO_PRODUCT


def subgroup_term(ssum, sasb, f):
    """GST_FDPA: trunc(subgroup sum * scale_a * scale_b * f), the sum in fixed point and f =
    2^(bits - emax - the fixed point's fraction bits) (exact, module doc)."""
    return np.float64(np.int64(np.float64(ssum) * sasb * f))


def fdpa_one(a, ea, b, eb, xa, xb, k0, k1, cfg, i, j):
    """Output (i, j) of a T_FDPA / ST_FDPA chain over K columns k0..k1 from C = 0 (one thread; b
    and eb laid out (K, N))."""
    bits, zero, group, split = cfg[C_BITS], cfg[C_ZERO], cfg[C_GROUP], cfg[C_SPLIT]
    c = 0.0
    for g0 in range(k0, k1, group):
        g = g0 // group
        first = g % split == 0
        if first and cfg[C_NARROW]:
            c = narrow_c(c, cfg[C_C_MAN], cfg[C_C_EMIN])
        cz = c_finite(c)
        ec = c_exponent(cz, cfg[C_C_EMIN] if first else cfg[C_D_EMIN], zero)
        e = _NO_PRODUCT
        for k in range(g0, g0 + group):
            e = max(e, np.int64(ea[i, k]) + np.int64(eb[k, j]))
        xs = np.int64(xa[i, g]) + np.int64(xb[g, j])
        emax = fused_emax(e, cfg[C_NONE], xs, ec)
        # A float64 factor: the float32 product (exact) widens, and the term is the same integer.
        f = product_factor(bits, xs, emax, cfg[C_LO], cfg[C_HI])
        s = np.int64(0)
        for k in range(g0, g0 + group):
            s += product_term(a[i, k], b[k, j], f)
        c = fused_result(s, cz, c, emax, bits, cfg[C_MAN], cfg[C_EMIN], cfg[C_EMAX], cfg[C_RNE])
    return c


def gst_one(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, i, j):
    """Output (i, j) of a GST_FDPA chain over K columns k0..k1 from C = 0 (one thread; b and nzb
    laid out (K, N))."""
    bits, zero, group, sub, block = cfg[C_BITS], cfg[C_ZERO], cfg[C_GROUP], cfg[C_SUB], cfg[C_BLOCK]
    c = 0.0
    for g0 in range(k0, k1, group):
        cz = c_finite(c)
        emax = c_exponent(cz, cfg[C_C_EMIN], zero)
        for s0 in range(g0, g0 + group, sub):
            live = 0
            for k in range(s0, s0 + sub):
                live = max(live, min(np.int64(nza[i, k]), np.int64(nzb[k, j])))
            kb = s0 // block
            xs = np.int64(xa[i, kb]) + np.int64(xb[kb, j])
            emax = max(emax, subgroup_exponent(live, sa[i, kb] * sb[kb, j], xs))
        f = pow2(bits - emax - cfg[C_FIX])
        s = 0.0
        for s0 in range(g0, g0 + group, sub):
            ssum = np.int64(0)
            for k in range(s0, s0 + sub):
                ssum += np.int64(a[i, k]) * np.int64(b[k, j])
            s += subgroup_term(ssum, sa[i, s0 // block] * sb[s0 // block, j], f)
        c = fused_result(s, cz, c, emax, bits, cfg[C_MAN], cfg[C_EMIN], cfg[C_EMAX], cfg[C_RNE])
    return c


# ----- CPU drivers: row blocks in parallel, a strip of w columns vectorised ---------------------
ROWS = 32  # rows of one task: they share a strip of B while it sits in cache


def exponent_pass(ea, eb, i, st, g0, g1, e, w):
    """e[jj]: the largest ea[i, k] + eb[st, k, jj] over k in g0..g1, in the build's LANE (int8 where
    C_SMALL, twice as many a vector, else int16); four k at a time, so that e is loaded and stored
    once per four."""
    for jj in range(w):
        e[jj] = 2 * LANE_LEFT_OUT
    k4 = g0 + (g1 - g0) // 4 * 4
    for k in range(g0, k4, 4):
        e0, e1, e2, e3 = ea[i, k], ea[i, k + 1], ea[i, k + 2], ea[i, k + 3]
        for jj in range(w):
            x = max(LANE(e0 + eb[st, k, jj]), LANE(e1 + eb[st, k + 1, jj]))
            y = max(LANE(e2 + eb[st, k + 2, jj]), LANE(e3 + eb[st, k + 3, jj]))
            e[jj] = max(e[jj], max(x, y))
    for k in range(k4, g1):
        eak = ea[i, k]
        for jj in range(w):
            e[jj] = max(e[jj], LANE(eak + eb[st, k, jj]))


def term_pass(a, b, i, st, g0, g1, f, s, w):
    """s[jj]: the sum of the products' terms of output (i, st * w + jj) over k in g0..g1, in
    int64 lanes, four k at a time (integer sums: any order is exact)."""
    for jj in range(w):
        s[jj] = 0
    k4 = g0 + (g1 - g0) // 4 * 4
    for k in range(g0, k4, 4):
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        for jj in range(w):
            fj = f[jj]
            x = product_term(a0, b[st, k, jj], fj) + product_term(a1, b[st, k + 1, jj], fj)
            y = product_term(a2, b[st, k + 2, jj], fj) + product_term(a3, b[st, k + 3, jj], fj)
            s[jj] += x + y
    for k in range(k4, g1):
        ak = a[i, k]
        for jj in range(w):
            s[jj] += product_term(ak, b[st, k, jj], f[jj])


def term_pass32(a, b, i, st, g0, g1, f, s, w):
    """`term_pass` in int32 lanes (s: int32), where C_SUM32."""
    for jj in range(w):
        s[jj] = 0
    k4 = g0 + (g1 - g0) // 4 * 4
    for k in range(g0, k4, 4):
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        for jj in range(w):
            fj = f[jj]
            x = np.int32(product_term32(a0, b[st, k, jj], fj) + product_term32(a1, b[st, k + 1, jj], fj))
            y = np.int32(product_term32(a2, b[st, k + 2, jj], fj) + product_term32(a3, b[st, k + 3, jj], fj))
            s[jj] += np.int32(x + y)
    for k in range(k4, g1):
        ak = a[i, k]
        for jj in range(w):
            s[jj] += product_term32(ak, b[st, k, jj], f[jj])


def group_exponents_of(ea, eb, i, st, g0, g1, lanes, e):
    """e[jj] (int64): the largest ea[i, k] + eb[st, k, jj] over the group, in the build's lanes."""
    w = e.shape[0]
    exponent_pass(ea, eb, i, st, g0, g1, lanes, w)
    for jj in range(w):
        e[jj] = lanes[jj]


def terms_narrow(a, b, i, st, g0, g1, f, sum32, s32, s):
    """s[jj] (int64): the group's summed terms of output (i, st * w + jj), in int32 lanes when sum32."""
    w = s.shape[0]
    if sum32:
        term_pass32(a, b, i, st, g0, g1, f, s32, w)
        for jj in range(w):
            s[jj] = s32[jj]
    else:
        term_pass(a, b, i, st, g0, g1, f, s, w)


def terms_wide(a, b, i, st, g0, g1, f, sum32, s32, s):
    """`terms_narrow` in int64 lanes only (float64 products)."""
    term_pass(a, b, i, st, g0, g1, f, s, s.shape[0])


# Bound by each CPU build of `fdpa_rows` (see CPU_BUILDS): its exponent lanes and the mark of a
# zero element in them, and its terms' pass; the stand-ins here are the wide build's.
LANE = np.int16
LANE_LEFT_OUT = LEFT_OUT16
group_terms = terms_wide


def fdpa_rows(a, ea, b, eb, xa, xb, k0, k1, cfg, r0, r1, st, out):
    """Rows r0..r1 of `fdpa_loop` in column strip st, their chains over K columns k0..k1 one
    fused sum of every row at a time, so that the sum's slice of B stays in cache for all rows."""
    w = b.shape[2]
    j0 = st * w
    bits, zero, group, split, none = cfg[C_BITS], cfg[C_ZERO], cfg[C_GROUP], cfg[C_SPLIT], cfg[C_NONE]
    man, emin, emax_out, rne = cfg[C_MAN], cfg[C_EMIN], cfg[C_EMAX], cfg[C_RNE]
    lo, hi, sum32 = cfg[C_LO], cfg[C_HI], cfg[C_SUM32]
    lanes = np.empty(w, LANE)
    e = np.empty(w, np.int64)
    f = np.empty(w, a.dtype)
    s = np.empty(w, np.int64)
    s32 = np.empty(w, np.int32)
    cz = np.empty(w, np.float64)
    c = np.zeros((r1 - r0, w), np.float64)
    for g0 in range(k0, k1, group):
        g = g0 // group
        first = g % split == 0
        c_emin = cfg[C_C_EMIN] if first else cfg[C_D_EMIN]
        for r in range(r1 - r0):
            i = r0 + r
            if first and cfg[C_NARROW]:
                for jj in range(w):
                    c[r, jj] = narrow_c(c[r, jj], cfg[C_C_MAN], cfg[C_C_EMIN])
            group_exponents_of(ea, eb, i, st, g0, g0 + group, lanes, e)
            xa_i = np.int64(xa[i, g])
            for jj in range(w):
                cz[jj] = c_finite(c[r, jj])
                xs = xa_i + xb[g, np.uint64(j0 + jj)]
                e[jj] = fused_emax(e[jj], none, xs, c_exponent(cz[jj], c_emin, zero))
                f[jj] = product_factor(bits, xs, e[jj], lo, hi)
            group_terms(a, b, i, st, g0, g0 + group, f, sum32, s32, s)
            for jj in range(w):
                c[r, jj] = fused_result(s[jj], cz[jj], c[r, jj], e[jj], bits, man, emin, emax_out, rne)
    for r in range(r1 - r0):
        for jj in range(w):
            out[r0 + r, np.uint64(j0 + jj)] = c[r, jj]


def fdpa_loop(a, ea, b, eb, xa, xb, k0, k1, cfg, out):
    """Every output of a T_FDPA / ST_FDPA chain over K columns k0..k1: B and its exponents in
    strips of w columns (b, eb: (strips, K, w), each strip contiguous), xb and out padded to
    strips * w columns; ROWS rows of one strip a task. Equals `fdpa_one` per output (tested)."""
    rows = a.shape[0]
    blocks = (rows + ROWS - 1) // ROWS
    # Strip-major tasks: the threads' contiguous shares of them keep one strip of B in cache.
    for t in prange(blocks * b.shape[0]):
        r0 = (t % blocks) * ROWS
        fdpa_rows(a, ea, b, eb, xa, xb, k0, k1, cfg, r0, min(r0 + ROWS, rows), t // blocks, out)


def live_pass(nza, nzb, i, st, s0, s1, live, t, w):
    """live[t, jj]: positive where a product of row i and column st * w + jj over k in s0..s1 is
    nonzero, else 0 (nza, nzb: positive for a nonzero element, 0 for a zero; int8 lanes)."""
    for jj in range(w):
        live[t, jj] = 0
    for k in range(s0, s1):
        nzak = nza[i, k]
        for jj in range(w):
            live[t, jj] = max(live[t, jj], min(nzak, nzb[st, k, jj]))


def sum_pass(a, b, i, st, s0, s1, ssum, t, w):
    """ssum[t, jj]: the sum of a[i, k] * b[st, k, jj] over k in s0..s1, the elements in fixed
    point (int8) and the sum in int16 lanes (both bounded by the host), four k at a time."""
    for jj in range(w):
        ssum[t, jj] = 0
    k4 = s0 + (s1 - s0) // 4 * 4
    for k in range(s0, k4, 4):
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        for jj in range(w):
            x = np.int16(np.int16(a0 * b[st, k, jj]) + np.int16(a1 * b[st, k + 1, jj]))
            y = np.int16(np.int16(a2 * b[st, k + 2, jj]) + np.int16(a3 * b[st, k + 3, jj]))
            ssum[t, jj] += np.int16(x + y)
    for k in range(k4, s1):
        ak = a[i, k]
        for jj in range(w):
            ssum[t, jj] += np.int16(ak * b[st, k, jj])


def gst_rows(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, r0, r1, st, out):
    """Rows r0..r1 of `gst_loop` in column strip st, each row's chain over K columns k0..k1."""
    w = b.shape[2]
    j0 = st * w
    bits, zero, group, sub, block = cfg[C_BITS], cfg[C_ZERO], cfg[C_GROUP], cfg[C_SUB], cfg[C_BLOCK]
    man, emin, emax_out, rne, c_emin = cfg[C_MAN], cfg[C_EMIN], cfg[C_EMAX], cfg[C_RNE], cfg[C_C_EMIN]
    subs, fix = group // sub, cfg[C_FIX]
    ssum = np.empty((subs, w), np.int16)
    live = np.empty((subs, w), np.int8)
    sasb = np.empty((subs, w), np.float64)
    e = np.empty(w, np.int64)
    f = np.empty(w, np.float64)
    s = np.empty(w, np.float64)
    cz = np.empty(w, np.float64)
    c = np.empty(w, np.float64)
    for i in range(r0, r1):
        for jj in range(w):
            c[jj] = 0.0
        for g0 in range(k0, k1, group):
            for t in range(subs):
                live_pass(nza, nzb, i, st, g0 + t * sub, g0 + t * sub + sub, live, t, w)
                sum_pass(a, b, i, st, g0 + t * sub, g0 + t * sub + sub, ssum, t, w)
            for jj in range(w):
                cz[jj] = c_finite(c[jj])
                e[jj] = c_exponent(cz[jj], c_emin, zero)
            for t in range(subs):
                kb = (g0 + t * sub) // block
                sa_i, xa_i = sa[i, kb], np.int64(xa[i, kb])
                for jj in range(w):
                    j = np.uint64(j0 + jj)
                    sasb[t, jj] = sa_i * sb[kb, j]
                    e[jj] = max(e[jj], subgroup_exponent(live[t, jj], sasb[t, jj], xa_i + xb[kb, j]))
            for jj in range(w):
                f[jj] = pow2(bits - e[jj] - fix)
                s[jj] = 0.0
            for t in range(subs):
                for jj in range(w):
                    s[jj] += subgroup_term(ssum[t, jj], sasb[t, jj], f[jj])
            for jj in range(w):
                c[jj] = fused_result(s[jj], cz[jj], c[jj], e[jj], bits, man, emin, emax_out, rne)
        for jj in range(w):
            out[i, np.uint64(j0 + jj)] = c[jj]


def gst_loop(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, out):
    """Every output of a GST_FDPA chain over K columns k0..k1: B and its nonzero flags in strips
    of w columns (b, nzb: (strips, K, w)), sb, xb and out padded to strips * w columns; ROWS rows
    of one strip a task. Equals `gst_one` per output (tested)."""
    rows = a.shape[0]
    blocks = (rows + ROWS - 1) // ROWS
    for t in prange(blocks * b.shape[0]):
        r0 = (t % blocks) * ROWS
        gst_rows(a, nza, b, nzb, sa, xa, sb, xb, k0, k1, cfg, r0, min(r0 + ROWS, rows), t // blocks, out)


def operand_loop(x, scale, emin, left, vals, exps):
    """An operand as the kernels read it: vals[i, k] = x[i, k] * scale (x 0 where not finite; the
    product exact in vals' dtype), exps[i, k] the alignment exponent of x[i, k] (floor(log2|x|),
    at least emin; `left` for 0)."""
    for i in prange(x.shape[0]):
        for k in range(x.shape[1]):
            v = c_finite(x[i, k])
            vals[i, k] = v * scale
            exps[i, k] = left if v == 0.0 else max(exponent(v), emin)


def operand_strips_loop(x, scale, emin, left, vals, exps):
    """`operand_loop` for B (x: (K, N)) laid out in strips of w columns (vals, exps: (strips, K,
    w)); the columns past N are 0."""
    w = vals.shape[2]
    for st in prange(vals.shape[0]):
        for k in range(x.shape[0]):
            for jj in range(w):
                j = st * w + jj
                v = c_finite(x[k, j]) if j < x.shape[1] else 0.0
                vals[st, k, jj] = v * scale
                exps[st, k, jj] = left if v == 0.0 else max(exponent(v), emin)


SCALAR_FUNCTIONS = (
    pow2,
    exponent,
    requantize,
    requantize_rz,
    to_output,
    narrow_c,
    c_finite,
    c_exponent,
    c_term,
    fused_emax,
    product_factor,
    product_term,
    product_term32,
    fused_result,
    subgroup_exponent,
    subgroup_term,
    fdpa_one,
    gst_one,
)
# The CPU drivers in three tiers, each compiled in a namespace holding the one before: the
# vectorised strip loops (inlined into the next tier), the per-task row functions (compiled on
# their own: inlined into a parallel loop, their code would make Numba's parallel passes take
# minutes to compile), and the parallel loops. `fdpa_rows` and `fdpa_loop` are built once per
# entry of CPU_BUILDS, each with only its own lanes compiled in.
CPU_STRIP_LOOPS = (
    exponent_pass,
    term_pass,
    term_pass32,
    group_exponents_of,
    terms_narrow,
    terms_wide,
    live_pass,
    sum_pass,
)
CPU_ROWS = (fdpa_rows, gst_rows)
CPU_LOOPS = (fdpa_loop, gst_loop, operand_loop, operand_strips_loop)
# driver suffix -> the names fdpa_rows reads: int8 exponents with int32 or int64 sums (float32
# products), or int16 exponents with int64 sums. The builds take different exponent dtypes, so
# their compilations (cached under one function name) never share a signature.
CPU_BUILDS = {
    "": {"LANE": np.int16, "LANE_LEFT_OUT": LEFT_OUT16, "group_terms": "terms_wide"},
    "_small": {"LANE": np.int8, "LANE_LEFT_OUT": LEFT_OUT8, "group_terms": "terms_narrow"},
}


def make_engine_kernels(jit: Callable[[Callable], Callable], **extra_globals) -> dict[str, Callable]:
    """The scalar functions compiled with `jit` (CPU njit or CUDA device), as a namespace dict in
    which array drivers can be compiled too."""
    namespace = {**globals(), **extra_globals}
    retarget(SCALAR_FUNCTIONS, jit, namespace)
    return namespace
