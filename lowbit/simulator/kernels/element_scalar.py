"""Element formats the float32 fast path declines, rounded on float32 bit patterns.

The fast path (`scalar.quantize_fast_float`) rounds in float32 arithmetic, which only knows ties to
even and a signed format with a significand bit: E8M0 (no zero, ties away, unsigned), the other
unsigned formats (UE5M3), P = 1 formats (binary8p1se) and every directed rounding mode go to the
general path (`scalar.encode_one`), which normalises each input and looks its value up in a table:
twenty times slower than a copy. Here the same rounding is done on the float32 bit pattern itself,
with integer operations and selects only, which vectorise.

Why the bit pattern: a non-negative float32 bit pattern a is, within a binade (and over the
subnormals together with the lowest normal binade), a linear function of the value whose unit is
that binade's ulp; the exponent field is a multiple of 2^23. So rounding the value to a multiple of
the format's quantum 2^q, q >= (binade exponent - 23), is rounding a to a multiple of 2^t, t = q -
(exponent - 23) <= 23, and a carry into the exponent field is the next binade, exactly. Values below
the quantum (t > 23) round to 0 or to the quantum, decided by comparing a with the bit pattern of
half a quantum. The result is the rounded value's own float32 bit pattern, written into an int32
view of the output; the format's constants and the results that do not depend on the magnitude
(NaN, Inf and zero input, overflow, a zero result, negative input to an unsigned format) come from
the host (`host.elements.bits_params`), which computes them with the general path's own functions.

Formats qualify when every value they hold is a float32 and their quantum is uniform below
float32's lowest normal binade: emin >= -127, emin - man_bits >= -149, emax <= 127.
"""

from __future__ import annotations

# Layout of the int64 vector of `bits_params` (one format, one rounding mode).
(
    G_M,  # mantissa bits of the format
    G_EMIN,  # unbiased exponent of its lowest normal binade
    G_C,  # 2^m without subnormals, else 0 (as scalar's P_C): the code of a value is base + n
    G_MAXBITS,  # float32 bit pattern of the largest finite value
    G_MINBITS,  # of the smallest normal without subnormals (below it all clamps to it), else 0
    G_QBITS,  # of the quantum below the lowest normal binade, 2^(emin - m)
    G_HALFBITS,  # of half that quantum (0 where float32 cannot hold it: then no input is below it)
    G_SIGNED,  # 1 for a signed format
    G_SMALL_ODD,  # C's parity: the code of 0 below the lowest quantum is odd (E8M0's -1)
    G_UP_POS,  # directed modes: 1 where a positive inexact value goes up in magnitude (rup)
    G_UP_NEG,  # ... and a negative one (rdown)
    G_ZERO_POS,  # int32 results of +0 and -0 input
    G_ZERO_NEG,
    G_INF_POS,  # of +Inf and -Inf input
    G_INF_NEG,
    G_NAN_POS,  # of NaN input with the sign bit clear and set
    G_NAN_NEG,
    G_OVER_POS,  # of a finite value past the largest one, positive and negative
    G_OVER_NEG,
    G_ROUND_ZERO_POS,  # of a nonzero finite value that rounds to 0, positive and negative
    G_ROUND_ZERO_NEG,
    G_NEG_UNSIGNED,  # of a negative value that does not round to zero in an unsigned format
    G_COUNT,
) = range(23)

# How the magnitude rounds, a constant of each inner loop (so that each compiles to its own
# branch-free code): nearest with ties to the even code; nearest with ties up in magnitude (rna,
# or rne on a format whose ties go away from zero); directed (rtz, rup, rdown).
ROUND_EVEN, ROUND_TIES_UP, ROUND_DIRECTED = range(3)

_INF_BITS = 0x7F800000


def rounded_magnitude(a, neg, g, kind):
    """The float32 bit pattern of |x| rounded to the format (a: |x|'s bit pattern, finite and
    nonzero; neg: x's sign; kind: ROUND_*), clamped below to the smallest normal where there are
    no subnormals; past the largest value where it overflows. The code of the result is base + n
    as in `scalar.encode_one`, and its parity breaks ties to even."""
    m = g[G_M]
    emin = g[G_EMIN]
    ef = a >> 23
    e = max(ef, 1) - 127  # the binade whose ulp is a's unit (float32 subnormals share -126's)
    # The exponent of the value itself, as far as it matters: a float32 subnormal lies below
    # 2^-126, and emin >= -127, so -127 stands for all of them.
    elo = e if ef > 0 else -127
    eb = max(elo, emin)
    t = eb - m - e + 23  # the quantum 2^(eb - m) in units of a
    small = t > 23  # |x| below the quantum: 0 or the quantum
    t = min(t, 23)  # at least 1: the host takes formats of up to 22 mantissa bits
    mask = (1 << t) - 1
    half = (mask + 1) >> 1
    if kind == ROUND_TIES_UP:
        r = (a + half) & ~mask
        up_small = a >= g[G_HALFBITS]
    elif kind == ROUND_EVEN:
        # a + half - 1 + odd carries past the mask iff rem > half, or rem == half and n is odd
        sig = (a & 0x7FFFFF) | (min(ef, 1) << 23)  # the significand: n as encode_one sees it
        odd = ((sig >> t) + ((eb - emin) << m) - g[G_C]) & 1
        r = (a + half - 1 + odd) & ~mask
        up_small = (a > g[G_HALFBITS]) | ((a == g[G_HALFBITS]) & (g[G_SMALL_ODD] != 0))
    else:
        up_small = (g[G_UP_NEG] if neg != 0 else g[G_UP_POS]) != 0
        r = (a + (mask if up_small else 0)) & ~mask
    tiny = g[G_QBITS] if up_small else 0
    r = tiny if small else r
    return max(r, g[G_MINBITS])


def round_bits_one(b, g, kind):
    """The int32 bit pattern of float32 input b (its int32 bit pattern, sign-extended) rounded to
    the format of `g`: the value the general path gives, bit for bit."""
    neg = (b >> 31) & 1
    a = b & 0x7FFFFFFF
    r = rounded_magnitude(max(a, 1), neg, g, kind)  # 1: zero and the specials are selected below
    # A signed result is r with x's sign; as an int32, a set sign bit is r - 2^31.
    signed = r - (neg << 31)
    res = signed if g[G_SIGNED] != 0 else r
    res = g[G_NEG_UNSIGNED] if (neg != 0 and g[G_SIGNED] == 0) else res
    res = (g[G_ROUND_ZERO_NEG] if neg != 0 else g[G_ROUND_ZERO_POS]) if r == 0 else res
    res = (g[G_OVER_NEG] if neg != 0 else g[G_OVER_POS]) if r > g[G_MAXBITS] else res
    res = (g[G_ZERO_NEG] if neg != 0 else g[G_ZERO_POS]) if a == 0 else res
    res = (g[G_INF_NEG] if neg != 0 else g[G_INF_POS]) if a == _INF_BITS else res
    return (g[G_NAN_NEG] if neg != 0 else g[G_NAN_POS]) if a > _INF_BITS else res


def bits_tuple(g):
    """The G_COUNT entries of the vector as a tuple (register-resident in the loop)."""
    return (
        g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11],
        g[12], g[13], g[14], g[15], g[16], g[17], g[18], g[19], g[20], g[21],
    )  # fmt: skip


# prange is Python's range outside Numba; the CPU build binds it to numba.prange.
prange = range
CHUNK = 1 << 14


def quantize_bits_loop(xb, g, kind, out):
    """out[i] (an int32 view of float32 results) = xb[i] (an int32 view of float32 input)
    rounded, in chunks over the cores with a plain inner loop per kind, which vectorises."""
    c = bits_tuple(g)
    for k in prange((xb.size + CHUNK - 1) // CHUNK):
        lo = k * CHUNK
        hi = min(lo + CHUNK, xb.size)
        if kind == ROUND_EVEN:
            for i in range(lo, hi):
                out[i] = round_bits_one(int(xb[i]), c, ROUND_EVEN)
        elif kind == ROUND_TIES_UP:
            for i in range(lo, hi):
                out[i] = round_bits_one(int(xb[i]), c, ROUND_TIES_UP)
        else:
            for i in range(lo, hi):
                out[i] = round_bits_one(int(xb[i]), c, ROUND_DIRECTED)


# Stands for numba.cuda in the source; the CUDA build binds the real module.
cuda = None


def quantize_bits_grid(xb, g, kind, out):
    c = bits_tuple(g)
    for i in range(cuda.grid(1), xb.size, cuda.gridsize(1)):
        out[i] = round_bits_one(int(xb[i]), c, kind)


SCALAR_FUNCTIONS = (rounded_magnitude, round_bits_one, bits_tuple)
CPU_LOOPS = (quantize_bits_loop,)
CUDA_LOOPS = (quantize_bits_grid,)
