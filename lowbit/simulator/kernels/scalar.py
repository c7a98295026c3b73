"""Scalar element arithmetic, written once and compiled for every target by `make_kernels(jit)`.

The input reaches these functions as the integer bit pattern of an IEEE float32 or float64
(the array drivers pass an integer view of the input array), so the arithmetic is exact integer
work on sign, exponent and significand: no float operation can round behind our back, and no
bit-cast is needed on either target. Every format is described by the int64 parameter vector
built by `simulator.params`; one compiled kernel serves them all.

`make_kernels(jit)` compiles them for a target: each function is cloned with globals in which
the names of the other scalar functions refer to their compiled versions for that target. The
clones are plain functions (no closures), so Numba's on-disk cache can key them by code alone.

Integers (python ints in the CUDA simulator, int64 when compiled) never exceed 2^62, so the
code means the same in every target; the stochastic hash keeps products below 2^49 for the
same reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import FunctionType

import numpy as np

# Everything compiled code depends on lives in this file, because Numba's on-disk cache is
# invalidated only by changes to the file of the function it caches: the parameter-vector layout,
# the rounding-mode numbers, the scalar functions and the CPU loops.

# Layout of the int64 parameter vector (filled by simulator.params).
(
    P_IS_INT,
    P_M,
    P_EMIN,
    P_C,
    P_E_OVER,
    P_MAXMAG,
    P_NEGMAX,
    P_SIGN_SHIFT,
    P_MASK,
    P_INF,
    P_NAN_POS,
    P_NAN_NEG,
    P_OVERFLOW,
    P_TIES_AWAY,
    P_NEGZERO,
    P_ZERO_POS,
    P_ZERO_NEG,
    P_NEG_UNSIGNED,
    P_HAS_ZERO,
    P_COUNT,
) = range(20)

OVERFLOW_SATURATE, OVERFLOW_INF, OVERFLOW_NAN = 0, 1, 2

# Rounding modes as kernels see them (the values of the Rounding enum).
RNE, RTZ, RNA, RUP, RDOWN, STOCHASTIC = range(6)
# A magnitude past every format's range: marks overflow before it is resolved.
_OVER = 1 << 40
_M32 = 0xFFFFFFFF


def mul32(a, c):
    # a * c mod 2^32 with every partial product below 2^49.
    return (a * (c & 0xFFFF) + (((a * (c >> 16)) & 0xFFFF) << 16)) & _M32


def hash32(x):
    x = x & _M32
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def random62(seed, idx):
    """62 uniform random bits for element `idx`: a counter-based hash, so results do not
    depend on the target, the thread count or the order of evaluation."""
    h1 = hash32((idx & _M32) ^ hash32(seed ^ 0x9E3779B9))
    h1 = hash32(h1 ^ ((idx >> 32) & _M32) ^ hash32((seed >> 32) ^ 0x85EBCA6B))
    h2 = hash32(h1 ^ 0x27D4EB2F)
    return ((h1 & 0x7FFFFFFF) << 31) | (h2 & 0x7FFFFFFF)


def random_r(seed, idx, sr, rbits):
    """The sr-bit random number of element `idx`: rbits[idx] where the host gave the bits (rbits
    non-empty), else the top sr bits of `random62`."""
    if rbits.size > 0:
        return np.int64(rbits[idx])
    return random62(seed, idx) >> (62 - sr)


def truncated_remainder(sig, s, sr):
    """floor(rem * 2^sr / 2^s), rem = sig mod 2^s: the remainder below the rounding point cut to
    its top sr bits (sig < 2^54, so for s > 62 all of sig is remainder)."""
    rem = sig if s > 62 else sig & ((1 << s) - 1)
    if s <= sr:
        return rem << (sr - s)
    if s - sr > 62:
        return 0
    return rem >> (s - sr)


def round_shift(sig, s, base, neg, mode, ties_away, seed, idx, sr, rbits):
    """Code base + round(sig / 2^s) under `mode`; `neg` is the sign of the value. Stochastic
    rounding goes up iff an sr-bit random number R < floor(rem * 2^sr / 2^s) (sr = 0: the 62-bit
    rule without sr_bits, where a remainder below 2^-62 of a step counts as one unit)."""
    full = sig
    full_s = s
    if s > 62:
        # Far below half a step: only sticky bits remain.
        n = 0
        rem = 1
        s = 62
    else:
        n = sig >> s
        rem = sig & ((1 << s) - 1)
    code = base + n
    if rem == 0:
        return code
    half = 1 << (s - 1)
    # Nearest modes are written without branches: on real data the round-up decision is a coin
    # flip, and a mispredicted branch costs more than the whole rounding.
    if mode == RNE:
        up = (rem > half) | ((rem == half) & ((ties_away != 0) | ((code & 1) == 1)))
    elif mode == RNA:
        up = rem >= half
    elif mode == RTZ:
        up = False
    elif mode == RUP:
        up = neg == 0
    elif mode == RDOWN:
        up = neg != 0
    elif sr == 0:
        up = (random62(seed, idx) >> (62 - s)) < rem
    else:
        up = random_r(seed, idx, sr, rbits) < truncated_remainder(full, full_s, sr)
    return code + np.int64(up)


def finish_float(code, neg, p, mode):
    if code > p[P_MAXMAG]:
        toward_zero = mode == RTZ or (mode == RUP and neg != 0) or (mode == RDOWN and neg == 0)
        if toward_zero or p[P_OVERFLOW] == OVERFLOW_SATURATE:
            code = p[P_MAXMAG]
        elif p[P_OVERFLOW] == OVERFLOW_INF:
            code = p[P_INF]
        elif neg != 0:
            return p[P_NAN_NEG]
        else:
            return p[P_NAN_POS]
    if p[P_SIGN_SHIFT] < 0:
        if neg == 0 or (code == 0 and p[P_HAS_ZERO] != 0):
            return code
        return p[P_NEG_UNSIGNED]
    if code == 0 and p[P_NEGZERO] == 0 and p[P_HAS_ZERO] != 0:
        return 0
    # The sign is applied by arithmetic rather than a branch: signs of real data are random.
    return code | (neg << p[P_SIGN_SHIFT])


def encode_one(b, idx, in_m, in_e, p, mode, seed, sr, rbits):
    """Code of the input bit pattern `b` (IEEE, `in_e` exponent and `in_m` mantissa bits), element
    `idx` of its array. Stochastic rounding draws sr random bits (0: 62, the rule without sr_bits)
    from rbits[idx], or from the hash of (seed, idx) where rbits is empty. Returns -1 for NaN input
    when the format has no NaN code (the host decides what that means)."""
    sbit = in_m + in_e
    neg = (b >> sbit) & 1
    mag = b & ((1 << sbit) - 1)
    efield = mag >> in_m
    frac = mag & ((1 << in_m) - 1)
    if efield == (1 << in_e) - 1:
        if frac != 0:
            if neg != 0:
                return p[P_NAN_NEG]
            return p[P_NAN_POS]
        if p[P_INF] >= 0:
            if neg != 0 and p[P_SIGN_SHIFT] >= 0:
                return p[P_INF] | (1 << p[P_SIGN_SHIFT])
            if neg != 0:
                return p[P_NEG_UNSIGNED]
            return p[P_INF]
        code = _OVER
    elif mag == 0:
        if neg != 0:
            return p[P_ZERO_NEG]
        return p[P_ZERO_POS]
    else:
        bias = (1 << (in_e - 1)) - 1
        if efield == 0:
            sig = frac
            e = 1 - bias
            while sig < (1 << in_m):
                sig = sig << 1
                e -= 1
        else:
            sig = frac | (1 << in_m)
            e = efield - bias
        if e >= p[P_E_OVER]:
            code = _OVER
        else:
            emin = p[P_EMIN]
            m = p[P_M]
            eb = e if e > emin else emin
            base = ((eb - emin) << m) - p[P_C]
            code = round_shift(sig, eb - m - e + in_m, base, neg, mode, p[P_TIES_AWAY], seed, idx, sr, rbits)
            if code < 0:
                code = 0
    if p[P_IS_INT] != 0:
        limit = p[P_MAXMAG] + neg * (p[P_NEGMAX] - p[P_MAXMAG])
        code = min(code, limit)
        # Two's-complement negation when neg is 1, without a branch: (code ^ -1) + 1 == -code.
        return ((code ^ -neg) + neg) & p[P_MASK]
    return finish_float(code, neg, p, mode)


def quantize_one(b, idx, in_m, in_e, p, mode, seed, sr, rbits, table):
    code = encode_one(b, idx, in_m, in_e, p, mode, seed, sr, rbits)
    if code < 0:
        return math.nan
    return table[code]


# ----- Fast path: round to nearest even from float32, in float32 arithmetic ------------------
# For the common case (float32 input, rne with ties to even, a signed float format with
# subnormals inside float32's range, or an integer of up to 24 bits) the rounding is done with
# float32 operations alone, which compilers vectorize: no branch, no table lookup. The results
# equal the integer path above bit for bit (the tests check every float16 value, every tie and
# random float32 against both ml_dtypes and the oracle).
#
# Normal range: Veltkamp splitting. With c = y * (2^s + 1), c - (c - y) is y rounded to nearest
# even on 24 - s significant bits, exactly, when every operation rounds to nearest even.
# Subnormal range: (y + C) - C with C = 2^(emin - m + 23) rounds y to a multiple of the
# subnormal quantum 2^(emin - m), because ulp(C) is that quantum.
# Inputs of 2^100 and more are scaled by 2^-64 first so that y * (2^s + 1) cannot overflow.

# Layout of the float32 fast-path vector (filled by simulator.params.fast_params).
(
    F_IS_INT,
    F_SPLIT,
    F_MIN_NORMAL,
    F_CSUB,
    F_MAX,
    F_OVER,
    F_INF_OUT,
    F_NAN_POS,
    F_NAN_NEG,
    F_NEGZERO,
    F_LO,
    F_HI,
    F_COUNT,
) = range(13)
_BIG = 2.0**100
_DOWN = 2.0**-64
_UP = 2.0**64
_INT_MAGIC = 2.0**23
CHUNK = 1 << 14


def fast_tuple(f):
    """The F_COUNT entries of the fast parameter vector as a tuple."""
    return (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11])


def param_tuple(p):
    """The P_COUNT entries of the parameter vector as a tuple (register-resident in the loop)."""
    return (
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9],
        p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17], p[18],
    )  # fmt: skip


def round_float_rne(ax, q):
    """|x| rounded to nearest even in the float format of `q` (overflow and Inf resolved)."""
    one = np.float32(1.0)
    big = ax >= np.float32(_BIG)
    y = ax * (np.float32(_DOWN) if big else one)
    c = y * q[F_SPLIT]
    r = (c - (c - y)) * (np.float32(_UP) if big else one)
    sub = (ax + q[F_CSUB]) - q[F_CSUB]
    r = sub if ax < q[F_MIN_NORMAL] else r
    r = q[F_OVER] if r > q[F_MAX] else r
    return q[F_INF_OUT] if ax == np.float32(math.inf) else r


def round_int_rne(x, q):
    """|x| clipped to the integer range and rounded to nearest even (x must not be NaN)."""
    y = q[F_HI] if x > q[F_HI] else x
    y = q[F_LO] if y < q[F_LO] else y
    return (abs(y) + np.float32(_INT_MAGIC)) - np.float32(_INT_MAGIC)


def signed_result(x, r, q):
    """The rounded magnitude r given x's sign, or the NaN the format returns."""
    neg = math.copysign(np.float32(1.0), x) < 0
    r = math.copysign(r, x) if (q[F_NEGZERO] != 0 or r != 0) else np.float32(0.0)
    nan = q[F_NAN_NEG] if neg else q[F_NAN_POS]
    return nan if (x != x or r != r) else r


def quantize_fast_float(x, q):
    return signed_result(x, round_float_rne(abs(x), q), q)


def quantize_fast_int(x, q):
    return signed_result(x, round_int_rne(x, q), q)


def quantize_finite_float(x, q):
    """quantize_fast_float for finite x below 2^100 in magnitude, which block kernels guarantee
    (the scale bounds every element): no rescaling, Inf or NaN selects."""
    ax = abs(x)
    c = ax * q[F_SPLIT]
    r = c - (c - ax)
    sub = (ax + q[F_CSUB]) - q[F_CSUB]
    r = sub if ax < q[F_MIN_NORMAL] else r
    r = q[F_OVER] if r > q[F_MAX] else r
    return math.copysign(r, x) if (q[F_NEGZERO] != 0 or r != 0) else np.float32(0.0)


def quantize_finite_int(x, q):
    """quantize_fast_int for finite x (block kernels): no NaN select."""
    r = round_int_rne(x, q)
    return math.copysign(r, x) if r != 0 else np.float32(0.0)


def quantize_fast(x, q):
    if q[F_IS_INT] != 0:
        return quantize_fast_int(x, q)
    return quantize_fast_float(x, q)


def code_of_value(r, b, c):
    """Code of the representable float32 value r (bit pattern b as an integer), whose sign bit
    is the input's also when r is NaN."""
    neg = (b >> 31) & 1
    if c[P_IS_INT] != 0:
        code = (np.int64(r) if r == r else 0) & c[P_MASK]
        return c[P_NAN_NEG] if r != r and neg != 0 else (c[P_NAN_POS] if r != r else code)
    a = b & 0x7FFFFFFF
    e = a >> 23
    eu = max(e, 1) - 127
    m = c[P_M]
    emin = c[P_EMIN]
    normal = ((eu - emin + 1) << m) + ((a >> (23 - m)) & ((1 << m) - 1)) - c[P_C]
    sig = (a & 0x7FFFFF) | (np.int64(e > 0) << 23)
    sub = sig >> min(max(emin - m - eu + 23, 0), 63)
    code = normal if (e > 0 and eu >= emin) else sub
    code = c[P_INF] if a == 0x7F800000 else code
    code = 0 if (code == 0 and c[P_NEGZERO] == 0) else code | (neg << c[P_SIGN_SHIFT])
    nan = c[P_NAN_NEG] if neg != 0 else c[P_NAN_POS]
    return nan if a > 0x7F800000 else code


# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range


def quantize_loop(bits, in_m, in_e, p, mode, seed, sr, rbits, table, out):
    for i in prange(bits.size):
        out[i] = quantize_one(int(bits[i]), i, in_m, in_e, p, mode, seed, sr, rbits, table)


def encode_loop(bits, in_m, in_e, p, mode, seed, sr, rbits, out):
    for i in prange(bits.size):
        out[i] = encode_one(int(bits[i]), i, in_m, in_e, p, mode, seed, sr, rbits)


def draw_loop(seed, sr, out):
    """out[i] = the sr-bit random number of element i under `seed` (what `encode_one` draws)."""
    for i in prange(out.size):
        out[i] = random62(seed, i) >> (62 - sr)


def decode_loop(codes, table, out):
    for i in prange(codes.size):
        out[i] = table[codes[i]]


def fwht_row(buf, base, h):
    """In-place unnormalised Walsh-Hadamard transform of buf[base : base + h] (h a power of 2)."""
    step = 1
    while step < h:
        for i in range(base, base + h, 2 * step):
            for j in range(i, i + step):
                a = buf[j]
                b = buf[j + step]
                buf[j] = a + b
                buf[j + step] = a - b
        step *= 2


def fwht_loop(buf, h):
    for r in prange(buf.size // h):
        fwht_row(buf, r * h, h)


# ----- Fused block kernel for power-of-two (MX) scales -----------------------------------------
# Scale rules as kernels see them (the ScaleRule members with power-of-two scales).
RULE_FLOOR, RULE_CEIL, RULE_EVEN, RULE_RCEIL = range(4)


def pow2_exponent_one(abits, amax, rule, emax, mbits, max_pos):
    """Unbiased E8M0 exponent of a block from its amax (bit pattern abits, value amax), clamped
    to [-127, 127]. The same integer steps as `simulator.scales.pow2_exponent`."""
    if rule == RULE_RCEIL:
        d = np.float32(amax / max_pos)
        if d == 0:
            e = -127
        else:
            m, ex = math.frexp(d)
            e = ex - 1 + np.int64(m != 0.5)
    elif rule == RULE_EVEN:
        rounded = (abits + (1 << (23 - mbits - 1))) & 0x7F800000
        e = (rounded >> 23) - 127 - emax
    else:
        e = ((abits >> 23) & 0xFF) - 127 - emax
        if rule == RULE_CEIL:
            e += np.int64((abits & 0x7FFFFF) != 0)
    return min(max(e, -127), 127)


# 2^i for i in [-POW2_OFFSET, POW2_OFFSET], exact in float64: powers of two without a libm call.
POW2_OFFSET = 160
POW2 = np.ldexp(1.0, np.arange(-POW2_OFFSET, POW2_OFFSET + 1))
POW2.setflags(write=False)


def float_of_bits(b):
    """The float32 value of the non-negative finite bit pattern b, exactly, without a bit cast."""
    e = (b >> 23) & 0xFF
    m = b & 0x7FFFFF
    if e == 0:
        return np.float32(float(m) * POW2[POW2_OFFSET - 149])
    return np.float32(float(m | 0x800000) * POW2[POW2_OFFSET + e - 150])


def mx_block(x, xb, k, rule, emax, mbits, max_pos, step, q, is_int, out, scales):
    """Quantize row k of x (xb: its int32 view) with a power-of-two block scale."""
    n = x.shape[1]
    abits = row_amax_bits(xb, k)
    if abits >= 0x7F800000:  # NaN or Inf in the block
        for i in range(n):
            out[k, i] = math.nan
        scales[k] = math.nan
        return
    e = pow2_exponent_one(abits, float_of_bits(abits), rule, emax, mbits, max_pos)
    enc = np.float32(POW2[POW2_OFFSET - e])
    dec = np.float32(POW2[POW2_OFFSET + e])
    inv_step = np.float32(1.0) / step
    scales[k] = dec
    # Two inner loops rather than a test per element, so that each vectorises.
    if is_int:
        for i in range(n):
            r = quantize_finite_int(np.float32(np.float32(x[k, i] * enc) * inv_step), q)
            out[k, i] = np.float32(np.float32(r * step) * dec)
    else:  # float elements have step 1
        for i in range(n):
            r = quantize_finite_float(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(r * dec)


def mx_rows(lo, hi, x, xb, rule, emax, mbits, max_pos, step, f, is_int, out, scales):
    """Rows lo to hi - 1 of x with power-of-two block scales (CUDA: `mx_block` per row)."""
    q = fast_tuple(f)
    for k in range(lo, hi):
        mx_block(x, xb, k, rule, emax, mbits, max_pos, step, q, is_int, out, scales)


# ----- Fused block kernel for absmax scales (NVFP4, NF4/AF4/BOF4, INT per group) ---------------
# Element kinds and rules as the fused absmax kernel sees them.
KIND_FLOAT, KIND_INT, KIND_TABLE, KIND_GRID = range(4)
# One level: amax / max(element); two levels: NVFP4 under a tensor scale; fixed: a scale given
# per tensor (BitNet's mean |W|), passed where the tensor scale goes.
ABS_ONE_LEVEL, ABS_NV_TWO_LEVEL, ABS_FIXED = range(3)


def nearest_index(v, mids):
    """Number of midpoints below v: the nearest table entry, ties to the lower one. `mids` holds
    each midpoint's float32 threshold (midpoint < v exactly when threshold <= v), padded with +Inf
    to at least 2^k - 1 entries. Small tables are counted without branches (15 compares for 16 codes beat
    a search's dependent loads); large ones are searched in k steps."""
    if mids.size <= 31:
        c = 0
        for j in range(mids.size):
            c += np.int64(mids[j] <= v)
        return c
    idx = 0
    step = (mids.size + 1) // 2
    while step > 0:
        idx += step * np.int64(mids[idx + step - 1] <= v)
        step //= 2
    return idx


def round_element(v, kind, q, mids, table):
    if kind == KIND_TABLE:
        # q[0] flags a midpoint at exactly 0 (see positive_zero)
        return table[nearest_index(v, mids) + (positive_zero(v) if q[0] != 0 else 0)]
    if kind == KIND_GRID:
        return grid_value(v, q)
    if kind == KIND_INT:
        return quantize_fast_int(v, q)
    return quantize_fast_float(v, q)


def grid_value(v, q):
    """Grid value of v; q holds (gain, offset, kmin, kmax): k = clip(rint(v * gain - offset)),
    value (k + offset) / gain, the float32 steps of `GridFormat` (arithmetic, not a table
    load, so that loops over it vectorise)."""
    t = np.float32(np.float32(v * q[0]) - q[1])
    t = min(max(t, np.float32(q[2] - 1)), np.float32(q[3] + 1))
    # round half to even: adding 2^23 leaves no fraction bits (|t| is small after the clip)
    k = math.copysign(np.float32(np.float32(abs(t) + np.float32(_INT_MAGIC)) - np.float32(_INT_MAGIC)), t)
    k = min(max(k, q[2]), q[3])
    return np.float32(np.float32(k + q[1]) / q[0])


def grid_block(x, k, div, den, enc, dec, post, q, out):
    """Grid elements of row k: x / den where the format divides (den > 0), else x * enc."""
    if div:
        for i in range(x.shape[1]):
            out[k, i] = np.float32(np.float32(grid_value(np.float32(x[k, i] / den), q) * dec) * post)
    else:
        for i in range(x.shape[1]):
            out[k, i] = np.float32(np.float32(grid_value(np.float32(x[k, i] * enc), q) * dec) * post)


def positive_zero(v):
    """1 for +0, else 0: the tie at a midpoint of exactly 0 goes up for +0 (CodebookFormat)."""
    return np.int64(v == 0 and math.copysign(1.0, v) > 0)


def table_block(x, k, enc, dec, post, mids, zero_mid, table, out):
    """Nearest codebook value of each x * enc of row k, times the scale, for up to 16
    thresholds. The thresholds are sorted, so the value is that of the highest threshold at or
    below v: a chain of selects replaces the running value wherever a threshold is passed.
    Selects vectorise, where a per-element search or a table gather would not, and one pass over
    the row costs less than several (the loop overhead of a 64-element block is as large as its
    work). The values are scaled once per row, with the same two products as every other
    element path. `mids` is padded with +Inf to 16 entries, `table` to 17."""
    t0, t1, t2, t3, t4, t5, t6, t7 = mids[0], mids[1], mids[2], mids[3], mids[4], mids[5], mids[6], mids[7]
    t8, t9, t10, t11, t12, t13, t14, t15 = mids[8], mids[9], mids[10], mids[11], mids[12], mids[13], mids[14], mids[15]
    # Each entry scaled as `scaled_entry` does, written out: an inlined call costs Numba a copy of
    # its IR, and seventeen of them most of this function's compile time.
    z = np.float32(np.float32(table[0] * dec) * post)
    a0 = np.float32(np.float32(table[1] * dec) * post)
    a1 = np.float32(np.float32(table[2] * dec) * post)
    a2 = np.float32(np.float32(table[3] * dec) * post)
    a3 = np.float32(np.float32(table[4] * dec) * post)
    a4 = np.float32(np.float32(table[5] * dec) * post)
    a5 = np.float32(np.float32(table[6] * dec) * post)
    a6 = np.float32(np.float32(table[7] * dec) * post)
    a7 = np.float32(np.float32(table[8] * dec) * post)
    a8 = np.float32(np.float32(table[9] * dec) * post)
    a9 = np.float32(np.float32(table[10] * dec) * post)
    a10 = np.float32(np.float32(table[11] * dec) * post)
    a11 = np.float32(np.float32(table[12] * dec) * post)
    a12 = np.float32(np.float32(table[13] * dec) * post)
    a13 = np.float32(np.float32(table[14] * dec) * post)
    a14 = np.float32(np.float32(table[15] * dec) * post)
    a15 = np.float32(np.float32(table[16] * dec) * post)
    for i in range(x.shape[1]):
        v = np.float32(x[k, i] * enc)
        r = a0 if t0 <= v else z
        r = a1 if t1 <= v else r
        r = a2 if t2 <= v else r
        r = a3 if t3 <= v else r
        r = a4 if t4 <= v else r
        r = a5 if t5 <= v else r
        r = a6 if t6 <= v else r
        r = a7 if t7 <= v else r
        r = a8 if t8 <= v else r
        r = a9 if t9 <= v else r
        r = a10 if t10 <= v else r
        r = a11 if t11 <= v else r
        r = a12 if t12 <= v else r
        r = a13 if t13 <= v else r
        r = a14 if t14 <= v else r
        r = a15 if t15 <= v else r
        out[k, i] = r
    if zero_mid >= 0:  # +0 at a midpoint of exactly 0 goes up (CodebookFormat)
        for i in range(x.shape[1]):
            if positive_zero(np.float32(x[k, i] * enc)):
                out[k, i] = scaled_entry(table, zero_mid + 1, dec, post)


def scaled_entry(table, j, dec, post):
    """table[j] times the block scale, as every element path scales: (value * dec) * post."""
    return np.float32(np.float32(table[j] * dec) * post)


def nv_dec(amax, s_enc_over_max, qs):
    """NVFP4's block scale: e4m3_rne(amax * (S_enc * (1 / max(element)))). The product is at most
    about max(scale), so the finite fast path applies."""
    return np.float32(quantize_finite_float(np.float32(amax * s_enc_over_max), qs))


def nv_enc(dec, post):
    """1 / (dec_b * (1 / S_enc)), or 0 where dec_b is 0."""
    return np.float32(0.0) if dec == 0 else np.float32(np.float32(1.0) / np.float32(dec * post))


def absmax_post(level, s_enc):
    """The factor after the scale: 1 / S_enc for NVFP4's two levels, else 1."""
    return np.float32(np.float32(1.0) / s_enc) if level == ABS_NV_TWO_LEVEL else np.float32(1.0)


def absmax_dec(amax, level, elem_max, smin, smax, s_enc, qs):
    """The scale of a block of largest |x| amax (finite): one level (amax / max(element), clamped
    to [smin, smax] where those are positive, rounded to the scale format when qs[F_SPLIT] > 0),
    NVFP4's two levels under the tensor scale s_enc, or the given scale s_enc. Same float32 steps
    as `simulator.blocks`."""
    if level == ABS_FIXED:
        return s_enc
    if level == ABS_NV_TWO_LEVEL:
        return nv_dec(amax, np.float32(s_enc * np.float32(np.float32(1.0) / elem_max)), qs)
    dec = np.float32(amax / elem_max)
    if smin > 0:
        dec = max(dec, smin)
    if smax > 0:
        dec = min(dec, smax)
    if qs[F_SPLIT] > 0:
        dec = np.float32(quantize_fast_float(dec, qs))
    return dec


def absmax_enc(dec, level, post):
    """The factor elements are x times: 1 / (dec * post) for NVFP4, else 1 / dec (0 for a 0 scale)."""
    if level == ABS_NV_TWO_LEVEL:
        return nv_enc(dec, post)
    return np.float32(0.0) if dec == 0 else np.float32(np.float32(1.0) / dec)


def span_amax_bits(xb, k, lo, hi):
    """Bit pattern of the largest |x| of xb[k, lo:hi] (the int32 view): |x| orders like its bit
    pattern without the sign bit, and NaN and Inf (0x7F800000 and above) sort above every number.
    int32 arithmetic: twice the lanes of int64 in a vector."""
    m = np.int32(0)
    for i in range(lo, hi):
        m = max(m, np.int32(xb[k, i] & np.int32(0x7FFFFFFF)))  # Numba widens the & to int64: back to int32
    return np.int64(m)


def row_amax_bits(xb, k):
    """`span_amax_bits` of all of row k."""
    return span_amax_bits(xb, k, 0, xb.shape[1])


def amax_bits_rows(lo, hi, xb, out):
    """out[k] = `row_amax_bits` of rows lo to hi - 1 of the int32 view xb."""
    for k in range(lo, hi):
        out[k] = row_amax_bits(xb, k)


def absmax_scale(xb, k, level, elem_max, smin, smax, s_enc, qs):
    """(bad, dec, enc, post) of row k with an absmax scale (`absmax_dec`); bad: the row holds NaN
    or Inf. A given scale (ABS_FIXED) needs no amax (the host handles a non-finite one)."""
    abits = 0 if level == ABS_FIXED else row_amax_bits(xb, k)
    post = absmax_post(level, s_enc)
    if abits >= 0x7F800000:
        return True, np.float32(math.nan), np.float32(0.0), post
    dec = absmax_dec(float_of_bits(abits), level, elem_max, smin, smax, s_enc, qs)
    return False, dec, absmax_enc(dec, level, post), post


def absmax_scales(lo, hi, xb, level, elem_max, smin, smax, s_enc, fs, dec, enc):
    """`absmax_scale` of rows lo to hi - 1 into dec[: hi - lo] and enc[: hi - lo], with a NaN dec
    for a row holding NaN or Inf (no finite row's scale is NaN: the scale format saturates). The
    amax of every row first, then the scales in loops over rows, which vectorise where a scale
    between the element loops of each row cannot."""
    qs = fast_tuple(fs)
    post = absmax_post(level, s_enc)
    for k in range(lo, hi):
        abits = 0 if level == ABS_FIXED else row_amax_bits(xb, k)
        dec[k - lo] = float_of_bits(abits) if abits < 0x7F800000 else np.float32(math.nan)
    for j in range(hi - lo):
        a = dec[j]
        dec[j] = a if a != a else absmax_dec(a, level, elem_max, smin, smax, s_enc, qs)
    for j in range(hi - lo):
        enc[j] = absmax_enc(dec[j], level, post)


def nan_row(k, out, scales):
    """Row k of a block holding NaN or Inf: NaN values and scale."""
    for i in range(out.shape[1]):
        out[k, i] = math.nan
    scales[k] = math.nan


def absmax_divides(divide, enc):
    """Whether elements are x / scale: where the format says so, or where the scale (below
    2^-128) has no float32 reciprocal (the pipeline does the same)."""
    return divide or enc > np.float32(3.4028234663852886e38)


def absmax_den(dec, post, level):
    """The divisor of x where elements divide: dec_b * (1 / S_enc) for NVFP4, else the scale."""
    return np.float32(dec * post) if level == ABS_NV_TWO_LEVEL else dec


# Elements of row k of x under the absmax scale (dec, enc, post), one function per element kind, all
# with one signature (each takes what its kind needs) so that one row function serves them all.
def absmax_int_elements(x, k, level, divide, bounded, dec, enc, post, q, mids, table, out):
    """Integer elements."""
    if absmax_divides(divide, enc):
        den = absmax_den(dec, post, level)
        for i in range(x.shape[1]):
            r = quantize_fast_int(np.float32(0.0) if den == 0 else np.float32(x[k, i] / den), q)
            out[k, i] = np.float32(np.float32(r * dec) * post)
    else:  # the common case gets a loop without tests, which vectorises
        for i in range(x.shape[1]):
            r = quantize_finite_int(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(np.float32(r * dec) * post)


def absmax_float_bounded(level, smax, qs):
    """Whether |x * enc| stays near max(element): the scale is amax / max(element) itself (or
    NVFP4's), neither clamped from above nor rounded."""
    return level == ABS_NV_TWO_LEVEL or (level == ABS_ONE_LEVEL and smax <= 0 and qs[F_SPLIT] == 0)


def absmax_float_elements(x, k, level, divide, bounded, dec, enc, post, q, mids, table, out):
    """Float elements (`bounded`: `absmax_float_bounded`)."""
    if absmax_divides(divide, enc):  # x / scale (torchao's single level): the full path
        den = absmax_den(dec, post, level)
        for i in range(x.shape[1]):
            r = quantize_fast_float(np.float32(0.0) if den == 0 else np.float32(x[k, i] / den), q)
            out[k, i] = np.float32(np.float32(r * dec) * post)
    elif bounded:
        for i in range(x.shape[1]):
            r = quantize_finite_float(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(np.float32(r * dec) * post)
    else:  # a clamped, saturated or given scale does not bound x * enc: the full path
        for i in range(x.shape[1]):
            r = quantize_fast_float(np.float32(x[k, i] * enc), q)
            out[k, i] = np.float32(np.float32(r * dec) * post)


def absmax_table_elements(x, k, level, divide, bounded, dec, enc, post, q, mids, table, out):
    """Codebook elements (`q[0]` flags a midpoint at exactly 0, `q[1]` is its index)."""
    div = absmax_divides(divide, enc)
    if not div and mids.size == 16:
        table_block(x, k, enc, dec, post, mids, np.int64(q[1]), table, out)
        return
    den = absmax_den(dec, post, level)
    for i in range(x.shape[1]):
        if div:
            v = np.float32(0.0) if den == 0 else np.float32(x[k, i] / den)
        else:
            v = np.float32(x[k, i] * enc)
        r = table[nearest_index(v, mids) + (positive_zero(v) if q[0] != 0 else 0)]
        out[k, i] = np.float32(np.float32(r * dec) * post)


def absmax_grid_elements(x, k, level, divide, bounded, dec, enc, post, q, mids, table, out):
    """Grid elements."""
    div = absmax_divides(divide, enc)
    den = absmax_den(dec, post, level)
    if div and den == 0:  # an all-zero block: every element is 0
        grid_block(x, k, False, den, np.float32(0.0), dec, post, q, out)
    else:
        grid_block(x, k, div, den, enc, dec, post, q, out)


def absmax_block(x, xb, k, level, kind, divide, elem_max, smin, smax, s_enc, f, fs, mids, table, out, scales):
    """Quantize row k of x with an absmax scale (`absmax_scale`) and elements of `kind` (CUDA's
    thread per row; the CPU's row functions take the scales of many rows at once)."""
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    bad, dec, enc, post = absmax_scale(xb, k, level, elem_max, smin, smax, s_enc, qs)
    if bad:
        nan_row(k, out, scales)
        return
    scales[k] = dec
    b = absmax_float_bounded(level, smax, qs)
    if kind == KIND_TABLE:
        absmax_table_elements(x, k, level, divide, b, dec, enc, post, q, mids, table, out)
    elif kind == KIND_GRID:
        absmax_grid_elements(x, k, level, divide, b, dec, enc, post, q, mids, table, out)
    elif kind == KIND_INT:
        absmax_int_elements(x, k, level, divide, b, dec, enc, post, q, mids, table, out)
    else:
        absmax_float_elements(x, k, level, divide, b, dec, enc, post, q, mids, table, out)


# ----- CPU row functions over a range of rows (see ROW_FUNCTIONS) -------------------------------
# Rows are taken a chunk at a time: the scales of the chunk's rows in one call (`absmax_scales`,
# compiled once for every kind), then each row's elements. A chunk holds about ROWS_CHUNK elements,
# so that its rows are still in cache when the elements are read again after the amax.
ROWS_CHUNK = 1 << 13


def rows_per_chunk(n):
    """Rows of n elements per chunk (at least 1)."""
    return max(1, ROWS_CHUNK // max(n, 1))


# Stands for one of the absmax_*_elements functions in each build of absmax_kind_rows.
kind_elements = None


def absmax_kind_rows(lo, hi, x, xb, level, divide, elem_max, smin, smax, s_enc, f, fs, mids, table, out, scales):
    """Rows lo to hi - 1 of x (xb: its int32 view) with an absmax scale and the elements of one
    kind: `kind_elements`, which each build of this function binds (ABSMAX_KIND_ROWS)."""
    q = fast_tuple(f)
    post = absmax_post(level, s_enc)
    bounded = absmax_float_bounded(level, smax, fast_tuple(fs))
    per = rows_per_chunk(x.shape[1])
    dec = np.empty(per, np.float32)
    enc = np.empty(per, np.float32)
    for c in range(lo, hi, per):
        top = min(c + per, hi)
        absmax_scales(c, top, xb, level, elem_max, smin, smax, s_enc, fs, dec, enc)
        for k in range(c, top):
            d = dec[k - c]
            if d != d:
                nan_row(k, out, scales)
                continue
            scales[k] = d
            kind_elements(x, k, level, divide, bounded, d, enc[k - c], post, q, mids, table, out)


# The builds of absmax_kind_rows: row function name -> the element function it binds as
# kind_elements. Each compiles alone (a study compiles only the kinds its formats use).
ABSMAX_KIND_ROWS = {
    "absmax_int_rows": "absmax_int_elements",
    "absmax_float_rows": "absmax_float_elements",
    "absmax_table_rows": "absmax_table_elements",
    "absmax_grid_rows": "absmax_grid_elements",
}


def finite_amax_row(xb, k):
    """Bit pattern of the largest finite |x| in row k of the int32 view xb (0 for none)."""
    m = np.int32(0)
    for i in range(xb.shape[1]):
        b = np.int32(xb[k, i] & np.int32(0x7FFFFFFF))
        m = max(m, b if b < np.int32(0x7F800000) else np.int32(0))
    return np.int64(m)


def finite_amax_loop(xb, out):
    for k in prange(xb.shape[0]):
        out[k] = finite_amax_row(xb, k)


def abs_sum_loop(x, out):
    """Sum of |x| over each row in float64: four partial sums over the elements i = 0, 1, 2, 3
    (mod 4), in index order, then added as ((s0 + s1) + s2) + s3. Four independent chains run
    four times as fast as one, and the order is fixed, so the result is the same everywhere."""
    for k in prange(x.shape[0]):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        n = x.shape[1]
        top = n - n % 4
        for i in range(0, top, 4):
            s0 += abs(np.float64(x[k, i]))
            s1 += abs(np.float64(x[k, i + 1]))
            s2 += abs(np.float64(x[k, i + 2]))
            s3 += abs(np.float64(x[k, i + 3]))
        for i in range(top, n):
            s0 += abs(np.float64(x[k, i]))
        out[k] = ((s0 + s1) + s2) + s3


NV_CHUNK = 1024
NV_BLOCK = 16


def nv_chunks_rows(first, last, x, xb, elem_max, s_enc, f, fs, out, scales):
    """NVFP4 two-level on the CPU, blocks first to last - 1 (rows of x) a chunk at a time: the amax
    of every block first, then all their scales in one loop over blocks (which vectorises, where a
    scale per block in between element loops cannot), then the elements. The same scalar steps as
    the float build of `absmax_kind_rows`."""
    q = fast_tuple(f)
    qs = fast_tuple(fs)
    post = np.float32(np.float32(1.0) / s_enc)
    s_over = np.float32(s_enc * np.float32(np.float32(1.0) / elem_max))
    n = x.shape[1]
    amax = np.empty(NV_CHUNK, np.float32)
    bad = np.empty(NV_CHUNK, np.bool_)
    dec = np.empty(NV_CHUNK, np.float32)
    enc = np.empty(NV_CHUNK, np.float32)
    for lo in range(first, last, NV_CHUNK):
        hi = min(lo + NV_CHUNK, last)
        for kb in range(lo, hi):
            abits = span_amax_bits(xb, kb, 0, NV_BLOCK) if n == NV_BLOCK else span_amax_bits(xb, kb, 0, n)
            bad[kb - lo] = abits >= 0x7F800000
            amax[kb - lo] = float_of_bits(abits) if abits < 0x7F800000 else np.float32(0.0)
        for j in range(hi - lo):
            dec[j] = nv_dec(amax[j], s_over, qs)
        for j in range(hi - lo):
            enc[j] = nv_enc(dec[j], post)
        for kb in range(lo, hi):
            d = dec[kb - lo]
            e = enc[kb - lo]
            if bad[kb - lo]:
                for i in range(n):
                    out[kb, i] = math.nan
                scales[kb] = math.nan
            elif e > np.float32(3.4028234663852886e38):  # no float32 reciprocal: divide, as absmax_kind_rows
                scales[kb] = d
                den = np.float32(d * post)
                for i in range(n):
                    v = np.float32(0.0) if den == 0 else np.float32(x[kb, i] / den)
                    r = quantize_fast_float(v, q)
                    out[kb, i] = np.float32(np.float32(r * d) * post)
            else:
                scales[kb] = d
                if n == NV_BLOCK:  # a constant length: the loop compiles without overhead
                    nv_elements(x, kb, NV_BLOCK, e, d, post, q, out)
                else:
                    nv_elements(x, kb, n, e, d, post, q, out)


def nv_elements(x, kb, n, e, d, post, q, out):
    for i in range(n):
        r = quantize_finite_float(np.float32(x[kb, i] * e), q)
        out[kb, i] = np.float32(np.float32(r * d) * post)


def quantize_float_loop(x, f, out):
    q = fast_tuple(f)
    # Chunks over the cores with a plain inner loop, which the compiler vectorizes. Integer and
    # float formats get a loop each: a format test inside the loop costs a quarter of the speed.
    for k in prange((x.size + CHUNK - 1) // CHUNK):
        for i in range(k * CHUNK, min(k * CHUNK + CHUNK, x.size)):
            out[i] = quantize_fast_float(x[i], q)


def quantize_int_loop(x, f, out):
    q = fast_tuple(f)
    for k in prange((x.size + CHUNK - 1) // CHUNK):
        for i in range(k * CHUNK, min(k * CHUNK + CHUNK, x.size)):
            out[i] = quantize_fast_int(x[i], q)


def encode_fast_loop(x, f, p, out):
    q = fast_tuple(f)
    c = param_tuple(p)
    for k in prange((x.size + CHUNK - 1) // CHUNK):
        lo = k * CHUNK
        hi = min(lo + CHUNK, x.size)
        # Round a chunk into a cache-resident buffer, then read its bit patterns as codes.
        r = np.empty(hi - lo, np.float32)
        rb = r.view(np.uint32)
        for i in range(lo, hi):
            r[i - lo] = quantize_fast(x[i], q)
        for i in range(lo, hi):
            out[i] = code_of_value(r[i - lo], np.int64(rb[i - lo]), c)


CPU_LOOPS = (
    quantize_loop,
    encode_loop,
    draw_loop,
    decode_loop,
    quantize_float_loop,
    quantize_int_loop,
    encode_fast_loop,
    fwht_loop,
    finite_amax_loop,
    abs_sum_loop,
)
SCALAR_FUNCTIONS = (
    mul32,
    hash32,
    random62,
    random_r,
    truncated_remainder,
    round_shift,
    finish_float,
    encode_one,
    quantize_one,
    fast_tuple,
    param_tuple,
    round_float_rne,
    round_int_rne,
    signed_result,
    quantize_fast_float,
    quantize_fast_int,
    quantize_finite_float,
    quantize_finite_int,
    quantize_fast,
    code_of_value,
    fwht_row,
    float_of_bits,
    pow2_exponent_one,
    mx_block,
    nearest_index,
    grid_value,
    grid_block,
    positive_zero,
    round_element,
    scaled_entry,
    table_block,
    nv_dec,
    nv_enc,
    nv_elements,
    absmax_post,
    absmax_dec,
    absmax_enc,
    span_amax_bits,
    row_amax_bits,
    absmax_scale,
    nan_row,
    absmax_divides,
    absmax_den,
    absmax_int_elements,
    absmax_float_bounded,
    absmax_float_elements,
    absmax_table_elements,
    absmax_grid_elements,
    absmax_block,
    rows_per_chunk,
    finite_amax_row,
)
# CPU functions f(lo, hi, *args) over a range of rows, each a unit of compilation (not inlined, not
# parallel), run over ranges of all the rows on worker threads (`cpu.RowDriver`): that spares
# Numba's parallel lowering (seconds per driver). The absmax builds (ABSMAX_KIND_ROWS) are row
# functions too, one per element kind, each compiled only where a format uses it. Their element
# steps are the scalar functions CUDA's drivers call per row.
ROW_FUNCTIONS = (
    mx_rows,
    nv_chunks_rows,
    amax_bits_rows,
)
# What the row functions call without inlining it: compiled once for all of them.
CALLED_FUNCTIONS = (absmax_scales,)


def retarget(functions, jit: Callable[[Callable], Callable], namespace: dict) -> dict[str, Callable]:
    """Compile `functions` with `jit`, each seeing `namespace` (plus the compiled functions
    themselves) as its globals. Returns name -> compiled function."""
    compiled: dict[str, Callable] = {}
    for fn in functions:
        clone = FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
        clone.__qualname__, clone.__module__, clone.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
        compiled[fn.__name__] = namespace[fn.__name__] = jit(clone)
    return compiled


def retarget_builds(
    fn, builds: dict[str, str], jit: Callable[[Callable], Callable], namespace: dict
) -> dict[str, Callable]:
    """Compile one build of `fn` per entry of `builds` (its name -> the compiled function its
    global `kind_elements` names), each under its own name, so that each caches on its own."""
    compiled: dict[str, Callable] = {}
    for name, bound in builds.items():
        own = {**namespace, "kind_elements": namespace[bound]}
        clone = FunctionType(fn.__code__, own, name, fn.__defaults__)
        clone.__qualname__, clone.__module__, clone.__doc__ = name, fn.__module__, fn.__doc__
        compiled[name] = namespace[name] = jit(clone)
    return compiled


def make_kernels(jit: Callable[[Callable], Callable], **extra_globals) -> dict[str, Callable]:
    """The scalar element functions compiled with `jit` (CPU njit or CUDA device), as a namespace
    dict in which array drivers can be compiled too."""
    namespace = {**globals(), **extra_globals}
    retarget(SCALAR_FUNCTIONS, jit, namespace)
    return namespace
