"""The reference oracle: slow, obvious, exact. Used only by tests.

Values are `fractions.Fraction`; a code's value is read off the format's definition, and an
input is rounded by finding its two neighbours in the sorted list of every finite value, so
nothing here shares arithmetic with the kernels (which shift significands).

Results: `decode_code` gives a Fraction, `INF`/`-INF`, or `NAN`/`-NAN` (a NaN code's sign).
"""

from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction

from ..formats import FloatFormat, IntFormat, Overflow, Specials, Ties, parse_enum
from .kernels.rounding import Rounding

INF, NEG_INF = "inf", "-inf"
NAN, NEG_NAN = "nan", "-nan"


def decode_code(fmt: FloatFormat | IntFormat, code: int):
    """Exact value of one code."""
    if isinstance(fmt, IntFormat):
        v = code - (1 << fmt.bits) if fmt.signed and code >= 1 << (fmt.bits - 1) else code
        return NAN if v < fmt.min else Fraction(v)
    e, m = fmt.exp_bits, fmt.man_bits
    negative = fmt.signed and (code >> (e + m)) & 1 == 1
    efield, mfield = (code >> m) & ((1 << e) - 1), code & ((1 << m) - 1)
    if fmt.specials in (Specials.FNUZ, Specials.EXTENDED) and negative and efield == 0 and mfield == 0:
        return NEG_NAN
    if fmt.specials is Specials.IEEE and efield == (1 << e) - 1:
        if mfield == 0:
            return NEG_INF if negative else INF
        return NEG_NAN if negative else NAN
    if fmt.specials is Specials.EXTENDED:
        # P3109's extended domain: Inf at the top magnitude code, the unsigned NaN just above it.
        top = (1 << (e + m)) - 1
        if fmt.signed and code & top == top:
            return NEG_INF if negative else INF
        if not fmt.signed and code >= top - 1:
            return INF if code == top - 1 else NAN
    if fmt.specials is Specials.FN and efield == (1 << e) - 1 and mfield == (1 << m) - 1:
        return NEG_NAN if negative else NAN
    if efield == 0 and fmt.subnormals:
        mag = Fraction(mfield, 1 << m) * Fraction(2) ** (1 - fmt.bias)
    else:
        mag = (1 + Fraction(mfield, 1 << m)) * Fraction(2) ** (efield - fmt.bias)
    return -mag if negative else mag


@functools.cache
def _positive_grid(fmt: FloatFormat | IntFormat):
    """Sorted (value, magnitude code) of every finite non-negative value, plus one point past the
    largest (the value the next code would have), marked with code None."""
    if isinstance(fmt, IntFormat):
        return [(Fraction(v), v) for v in range(fmt.max + 1)] + [(Fraction(fmt.max + 1), None)]
    sign_bit = 1 << (fmt.exp_bits + fmt.man_bits)
    grid = []
    for code in range(sign_bit):
        v = decode_code(fmt, code)
        if isinstance(v, Fraction) and v >= 0:
            grid.append((v, code))
    grid.sort()
    top, top_code = grid[-1]
    step = Fraction(2) ** (math.floor(math.log2(top)) - fmt.man_bits)
    # The overflow marker sits where the next code's value would be; ties against it are decided
    # by the parity of the largest code, as for any other pair of neighbours.
    grid.append((top + step, None))
    return grid


def _choose(lo, hi, a: Fraction, mode: Rounding, negative: bool, ties_away: bool, u, sr_bits: int | None = None):
    """Pick lo or hi (grid entries around magnitude a) under `mode`."""
    (lv, lc), (hv, _) = lo, hi
    if mode is Rounding.RTZ:
        return lo
    if mode in (Rounding.RUP, Rounding.RDOWN):
        away_from_zero = (mode is Rounding.RUP) != negative
        return hi if away_from_zero else lo
    if mode is Rounding.STOCHASTIC and sr_bits is not None:
        # the fraction of the gap cut to sr_bits bits, against an sr_bits-bit integer u
        return hi if u < math.floor((a - lv) / (hv - lv) * 2**sr_bits) else lo
    if mode is Rounding.STOCHASTIC:
        return hi if u < (a - lv) / (hv - lv) else lo
    if a - lv != hv - a:
        return lo if a - lv < hv - a else hi
    if mode is Rounding.RNA or ties_away:
        return hi
    return lo if lc % 2 == 0 else hi


def _overflow(fmt: FloatFormat | IntFormat, mode: Rounding, negative: bool) -> str:
    toward_zero = (
        mode is Rounding.RTZ or (mode is Rounding.RUP and negative) or (mode is Rounding.RDOWN and not negative)
    )
    if isinstance(fmt, IntFormat) or toward_zero or fmt.overflow in (Overflow.SATURATE, Overflow.SATURATE_FINITE):
        return "max"
    return "inf" if fmt.overflow is Overflow.INF else "nan"


@functools.cache
def _grid_values(fmt) -> list[Fraction]:
    return [v for v, _ in _positive_grid(fmt)]


def round_magnitude(
    fmt, a, mode: Rounding, negative: bool, u: Fraction | int | None = None, sr_bits: int | None = None
):
    """Magnitude code of `a` >= 0 (a Fraction or math.inf), or 'inf' / 'nan' on overflow."""
    grid = _positive_grid(fmt)
    values = _grid_values(fmt)
    ties_away = isinstance(fmt, FloatFormat) and fmt.ties is Ties.AWAY
    if a == math.inf or a >= values[-1]:
        verdict = _overflow(fmt, mode, negative)
        return grid[-2][1] if verdict == "max" else verdict
    i = bisect.bisect_right(values, a) - 1
    if i < 0:  # below the smallest value of a format without zero
        return grid[0][1]
    if values[i] == a:
        return grid[i][1]
    lo, hi = grid[i], grid[i + 1]
    _, code = _choose(lo, hi, a, mode, negative, ties_away, u, sr_bits)
    if code is None:
        verdict = _overflow(fmt, mode, negative)
        return grid[-2][1] if verdict == "max" else verdict
    return code


def _nan_or_none(fmt, negative: bool):
    if isinstance(fmt, IntFormat) or not fmt.has_nan:
        return None
    return fmt.nan_code(negative)


def encode_value(fmt, x, rounding: Rounding | str = "rne", u: Fraction | int | None = None, sr_bits: int | None = None):
    """Code of `x` (a float, int or Fraction). None means NaN into a format without NaN.

    u: for stochastic rounding, a number in [0, 1): the result is the upper neighbour iff
    u < (x - lower) / (upper - lower). With sr_bits = r, u is an integer in [0, 2^r) instead and
    the result is the upper neighbour iff u < floor((x - lower) / (upper - lower) * 2^r).
    """
    mode = parse_enum(Rounding, rounding, "rounding")
    if isinstance(x, float) and math.isnan(x):
        return _nan_or_none(fmt, math.copysign(1.0, x) < 0)
    negative = (x < 0) or (isinstance(x, float) and x == 0 and math.copysign(1.0, x) < 0)
    a = math.inf if isinstance(x, float) and math.isinf(x) else abs(Fraction(x))
    if isinstance(fmt, IntFormat):
        return _encode_int(fmt, a, mode, negative, u, sr_bits)
    if a == 0:
        if not fmt.has_zero:  # NaN where the format has it, else the smallest value of x's sign
            if fmt.has_nan:
                return fmt.nan_code(False)
            return (1 << fmt.sign_shift) if negative and fmt.signed else 0
        return (1 << fmt.sign_shift) if negative and fmt.has_negative_zero else 0
    if a == math.inf and fmt.keeps_inf:  # else Inf is an overflow (SATURATE_FINITE: max)
        mag = fmt.inf_code
    else:
        mag = round_magnitude(fmt, a, mode, negative, u, sr_bits)
    if mag == "nan":
        return fmt.nan_code(negative)
    if mag == "inf":
        mag = fmt.inf_code
    if not negative:
        return mag
    if not fmt.signed:
        rounds_to_zero = mag == 0 and fmt.has_zero
        return fmt.nan_code(False) if fmt.negative_is_nan and not rounds_to_zero else 0
    if mag == 0 and fmt.has_zero and not fmt.has_negative_zero:
        return 0
    return mag | (1 << fmt.sign_shift)


def _encode_int(fmt: IntFormat, a, mode: Rounding, negative: bool, u, sr_bits: int | None = None):
    if a == math.inf:
        n = fmt.max + 1 if not negative else -fmt.min + 1
    else:
        lo = math.floor(a)
        if lo == a:
            n = lo
        else:
            n = _choose((Fraction(lo), lo), (Fraction(lo + 1), lo + 1), a, mode, negative, False, u, sr_bits)[1]
    if negative:
        return (-min(n, -fmt.min)) % (1 << fmt.bits)
    return min(n, fmt.max)


def value_of(fmt, code: int) -> float:
    """decode_code as a Python float (NaN carries the code's sign)."""
    v = decode_code(fmt, code)
    if v in (NAN, NEG_NAN):
        return math.copysign(math.nan, -1.0 if v == NEG_NAN else 1.0)
    if v in (INF, NEG_INF):
        return math.inf if v == INF else -math.inf
    if v == 0 and isinstance(fmt, FloatFormat) and fmt.signed and code >> fmt.sign_shift:
        return -0.0  # Fractions have no signed zero; the code's sign bit says it is -0
    return float(v)


def neighbours(fmt, x: float) -> tuple[float, float]:
    """The representable values just below and above x (equal when x is representable)."""
    down = value_of(fmt, encode_value(fmt, x, Rounding.RDOWN))
    up = value_of(fmt, encode_value(fmt, x, Rounding.RUP))
    return down, up
