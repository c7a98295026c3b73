"""Stochastic rounding onto a table of values (codebook and grid elements), on the host.

A value v >= 0 between neighbouring table values lo < hi goes to hi iff its r-bit random number
R < t = floor((v - lo) / (hi - lo) * 2^r): the rule of the float kernels, with the gap between the
two neighbours in place of the float's step. A negative value rounds as its magnitude does in the
mirrored table (-table reversed), so that, as in the float kernels, the rule acts on the magnitude:
"up" is away from zero, the bias is toward zero, and a table symmetric about 0 gives
round(-v) = -round(v) for the same random numbers. Values past the table's ends clamp to the end
value; a value equal to a table value stays.

t is exact. v, lo and hi are float32, so v - lo and hi - lo are exact in float64 unless their
exponents lie some 29 binades apart or more (a table with both 2^-40 and 1, say); TwoSum finds those
few elements, and Fractions compute them. The product by 2^r is exact, and the floor of the quotient
comes from integer long division of the 53-bit significands (float64 division would round t, which
reaches 2^62).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def table_codes(v: np.ndarray, table: np.ndarray, sr_bits: int, random_bits: np.ndarray) -> np.ndarray:
    """Codes (indices into `table`, int64, v's shape) of float32 v rounded stochastically.

    table: the ascending float32 values of the codes. sr_bits: r, 1 to 62. random_bits: each
    element's random number R in [0, 2^r), v's shape. NaN rounds as 0 does (the callers make such
    elements NaN or refuse them)."""
    x = np.asarray(v, dtype=np.float64).reshape(-1)
    x = np.where(np.isnan(x), 0.0, x)
    bits = np.asarray(random_bits, dtype=np.int64).reshape(-1)
    t64 = np.asarray(table, dtype=np.float32).astype(np.float64)
    c = np.clip(x, t64[0], t64[-1])
    k = np.clip(np.searchsorted(t64, c, side="right") - 1, 0, t64.size - 2)
    lo, hi = t64[k], t64[k + 1]
    # t counts on the magnitude: from lo for v >= 0; from hi (the mirrored table's lo) for v < 0,
    # where a larger magnitude is lo
    neg = np.signbit(x)
    t = _exact_t(np.where(neg, hi, c), np.where(neg, c, lo), lo, hi, sr_bits)
    up = bits < t
    return (k + np.where(neg, ~up, up)).reshape(np.shape(v))


def _exact_t(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, r: int) -> np.ndarray:
    """floor((a - b) / (hi - lo) * 2^r), exactly, for float32 values (as float64) with
    0 <= a - b <= hi - lo: integer division where float64 holds both differences, else Fractions."""
    d, d_exact = _difference(a, b)
    g, g_exact = _difference(hi, lo)
    t = _floor_ratio(d, g, r)
    for i in np.flatnonzero(~(d_exact & g_exact)):
        f = (Fraction(a[i]) - Fraction(b[i])) / (Fraction(hi[i]) - Fraction(lo[i]))
        t[i] = math.floor(f * 2**r)
    return t


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a - b in float64, whether it is exact): TwoSum's rounding error of a + (-b) is 0 iff exact."""
    s = a - b
    b_part = s - a
    err = (a - (s - b_part)) + (-b - b_part)
    return s, err == 0


def _floor_ratio(d: np.ndarray, g: np.ndarray, r: int) -> np.ndarray:
    """floor(d * 2^r / g) as int64, for float64 0 <= d <= g (so at most 2^r <= 2^62): d and g are
    num * 2^e and den * 2^f with integers num, den below 2^53 (den odd), and the quotient
    num / den * 2^(e - f + r) is divided out in integers, as many bits a step as keep the
    remainder (below den) shifted under 2^63: one or two steps for a float32 table."""
    md, ed = np.frexp(d)
    mg, eg = np.frexp(g)
    num = np.ldexp(md, 53).astype(np.int64)
    den = np.maximum(np.ldexp(mg, 53).astype(np.int64), 1)  # g = 0 only where d = 0 too
    low = np.frexp((den & -den).astype(np.float64))[1] - 1  # den's trailing zero bits
    den >>= low
    shift = ed - eg + r - low
    q = (num // den) >> np.clip(-shift, 0, 63)  # a negative shift divides the quotient down
    rem = num % den
    step_max = 63 - np.frexp(den.astype(np.float64))[1]  # rem < den < 2^bits(den)
    left = np.maximum(shift, 0)
    while left.any():
        step = np.minimum(left, step_max)
        rem <<= step
        q = (q << step) + rem // den
        rem %= den
        left -= step
    return q
