"""An independent, slow oracle for one matrix-engine instruction: D = A·B + C.

Written from the MMA-Sim paper (Xie, Wang, Yang, Yang, "MMA-Sim: Bit-Accurate Reference Model of Tensor
Cores and Matrix Cores", arXiv 2511.10909, 2025) and from the behaviour of the authors' reference model
(github.com/microsoft/MMA-Sim, package `mmasim` 2.1.1), both read as facts. It shares no code with lowbit:
every value is held as Python integers, a signed integer significand times a power of two, and every step is
exact integer arithmetic. NumPy only carries the arrays in and out.

The paper derives nine arithmetic algorithms; MMA-Sim 2.1.1 implements them as the eight below (named as
there), plus the chaining of FDPAs when K exceeds an FDPA's length L:

- T-FDPA (truncated fused dot-product-add; NVIDIA): the L exact products and C are aligned to the largest
  "alignment exponent" e_max; each term is truncated toward zero to F fractional bits below 2^e_max (a
  grid of 2^(e_max - F)); the truncated terms are summed exactly; the sum is converted once by rho. The
  alignment exponent of a product is e_a + e_b, where e_x = max(floor(log2|x|), emin of x's format): a
  product is *not* renormalised, so 1.5·1.5 aligns at 2^0 though it is 2.25. A zero term (a zero product
  or C = 0) aligns at the constant e_zero, which can raise e_max. Instructions with K > L chain FDPAs of L
  products, each rounding its result into the accumulator format before the next.
- ST-FDPA (scaled, MXFP8/6/4 with one E8M0 scale per operand and 32 products): as T-FDPA, the scale
  exponents added to every product's alignment exponent.
- GST-FDPA (group-scaled, MXFP4/NVFP4): the 64 products form groups of G = 16 summed exactly; each group
  sum is multiplied by its two block scales and aligns at the sum of the scale exponents (e_zero when all
  its products are zero or a scale is zero; a group that cancels to zero keeps the scale exponent).
- E-FDPA (CDNA1): the exact sum of L products and C, rounded once to FP32 with RNE.
- FTZ-MUL-ADD (CDNA2): FP32 products (subnormal inputs flushed to +0, subnormal products flushed keeping
  the sign), summed by FP32 RNE additions in a pairwise tree of P = 2 or 4 products, each partial sum
  flushed the same way, then added to C (subnormal C flushed to +0).
- TR-FDPA (CDNA3 f16/bf16/xf32): products truncated to F = 24 bits below their own e_max and summed; that
  sum is rounded down (toward -inf) to F2 + 1 = 32 bits below max(e_dot, e_c), C rounded down to F bits
  below the same point, the two added, normalised, rounded down to F2 = 31 fractional bits and finally
  rounded to FP32 with RNE. Products of magnitude >= 2^128 are infinities.
- GTR-FDPA (CDNA3 fp8/bf8): as TR-FDPA, but the even- and odd-indexed products are first summed as two
  separate truncated groups, each rounded down to F bits below the larger group exponent, and C is dropped
  when its exponent is below e_max - F - 1.
- FMA (CDNA f32, f64): a chain of IEEE fused multiply-adds in the accumulator format.

Output conversions rho: RZ-FP32 (truncate to FP32, subnormals kept), RZ-E8M13 (truncate to 13 fractional
bits, FP32 range: Ada and Hopper FP8), RNE-FP16, RNE-FP32. Every conversion overflows to Inf, never to the
largest finite value (hardware behaviour modelled by MMA-Sim). NVIDIA results never are -0: MMA-Sim adds
+0.0 after each FDPA. (MMA-Sim writes the NaN results of the FDPA algorithms as 0x7FFFFFFF / 0x7FFF;
this oracle returns NaN, and its tests compare NaN as NaN.)

Special values follow IEEE rules in every algorithm: NaN when an operand or scale is NaN, Inf·0, or
+Inf + -Inf; otherwise an infinite operand (or, in TR-FDPA, an overflowing product) gives that infinity.
One deliberate difference from `mmasim` 2.1.1: its GTR-FDPA drops an infinite or NaN C when the products'
exponent exceeds 24 (an artefact of frexp(inf) = (inf, 0)); the hardware tests it was validated with never
draw an infinite FP32 C, so this oracle keeps IEEE semantics there.

Values go in and out as Python floats (every value of these formats is exact in binary64), the oracle
raising ValueError for a value its operand format cannot hold.

Checked bit for bit (NaN as NaN) against `mmasim` 2.1.1 on about 10^6 random output elements over every
family; test_mma_oracle.py repeats a smaller check wherever that package is installed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np

# --------------------------------------------------------------------------------------------------------
# Operand formats: bit-level decoding written from the IEEE-754 layout (sign, biased exponent, fraction),
# with the special-value conventions of each format.
# --------------------------------------------------------------------------------------------------------

IEEE = "ieee"  # all-ones exponent: Inf (fraction 0) or NaN
FN = "fn"  # OCP E4M3: no Inf; S.1111.111 is NaN
FNUZ = "fnuz"  # AMD FP8: no Inf, no -0; 0x80 is NaN
NONE = "none"  # FP6/FP4: every code is finite
E8M0 = "e8m0"  # unsigned power of two 2^(code-127); 0xFF is NaN


@dataclass(frozen=True)
class Fmt:
    """A binary floating-point format: `ebits` exponent bits, `mbits` fraction bits, exponent `bias`."""

    name: str
    ebits: int
    mbits: int
    bias: int
    special: str
    signed: bool = True

    @cached_property
    def bits(self) -> int:
        return self.ebits + self.mbits + int(self.signed)

    @cached_property
    def emin(self) -> int:
        """Exponent of the smallest normal value (and of every subnormal)."""
        return -self.bias if self.special == E8M0 else 1 - self.bias

    @cached_property
    def emax(self) -> int:
        """Exponent of the largest finite value."""
        top = (1 << self.ebits) - 1
        return top - self.bias - (1 if self.special == IEEE else 0) - (1 if self.special == E8M0 else 0)

    @cached_property
    def max_mag(self) -> int:
        """Largest finite significand (an integer with `mbits` fraction bits) at exponent `emax`."""
        full = (2 << self.mbits) - 1
        return full - 1 if self.special == FN else full

    def decode(self, code: int) -> float:
        """The value of one code (Python float, exact)."""
        m = self.mbits
        frac = code & ((1 << m) - 1)
        ex = (code >> m) & ((1 << self.ebits) - 1)
        neg = self.signed and bool((code >> (self.ebits + m)) & 1)
        top = (1 << self.ebits) - 1
        if self.special == E8M0:
            return math.nan if code == 0xFF else math.ldexp(1.0, code - self.bias)
        if self.special == IEEE and ex == top:
            return math.nan if frac else (-math.inf if neg else math.inf)
        if self.special == FN and ex == top and frac == (1 << m) - 1:
            return math.nan
        if self.special == FNUZ and neg and ex == 0 and frac == 0:
            return math.nan
        if ex == 0:
            v = math.ldexp(frac, self.emin - m)
        else:
            v = math.ldexp((1 << m) | frac, ex - self.bias - m)
        return -v if neg else v


F16 = Fmt("f16", 5, 10, 15, IEEE)
BF16 = Fmt("bf16", 8, 7, 127, IEEE)
TF32 = Fmt("tf32", 8, 10, 127, IEEE)
F32 = Fmt("f32", 8, 23, 127, IEEE)
F64 = Fmt("f64", 11, 52, 1023, IEEE)
E4M3 = Fmt("e4m3", 4, 3, 7, FN)
E5M2 = Fmt("e5m2", 5, 2, 15, IEEE)
E3M2 = Fmt("e3m2", 3, 2, 3, NONE)
E2M3 = Fmt("e2m3", 2, 3, 1, NONE)
E2M1 = Fmt("e2m1", 2, 1, 1, NONE)
FP8_FNUZ = Fmt("fp8", 4, 3, 8, FNUZ)  # AMD "fp8" = E4M3FNUZ
BF8_FNUZ = Fmt("bf8", 5, 2, 16, FNUZ)  # AMD "bf8" = E5M2FNUZ
UE8M0 = Fmt("ue8m0", 8, 0, 127, E8M0, signed=False)
UE4M3 = Fmt("ue4m3", 4, 3, 7, FN, signed=False)

FORMATS = {f.name: f for f in (F16, BF16, TF32, F32, F64, E4M3, E5M2, E3M2, E2M3, E2M1, FP8_FNUZ, BF8_FNUZ)}
SCALE_FORMATS = {f.name: f for f in (UE8M0, UE4M3)}

# A parsed value: (kind, negative, magnitude, lsb exponent, alignment exponent), the value being
# (-1)^negative · magnitude · 2^lsb. For a finite nonzero value magnitude has at most mbits + 1 bits and
# alignment exponent = lsb + mbits = max(floor(log2|x|), emin). Zero has magnitude 0.
FIN, INF, NAN = 0, 1, 2


def parse(x: float, fmt: Fmt, operand: str = "value") -> tuple:
    """`x` as a parsed value of `fmt`; ValueError when the format cannot hold it."""
    if x and math.isfinite(x) and (fmt.signed or x > 0):  # the common case first
        e = math.frexp(x)[1] - 1  # 2^e <= |x| < 2^(e+1)
        ea = max(e, fmt.emin)
        lsb = ea - fmt.mbits
        scaled = math.ldexp(abs(x), -lsb)  # exact: a power-of-two scaling into [1, 2^53)
        mag = int(scaled)
        if mag != scaled or e > fmt.emax or (e == fmt.emax and mag > fmt.max_mag):
            raise ValueError(f"{operand}: {x!r} is not a {fmt.name} value")
        return (FIN, x < 0, mag, lsb, ea)
    if math.isnan(x):
        if fmt.special == NONE:
            raise ValueError(f"{operand}: NaN is not a {fmt.name} value")
        return (NAN, False, 0, 0, 0)
    neg = math.copysign(1.0, x) < 0
    if math.isinf(x):
        if fmt.special != IEEE:
            raise ValueError(f"{operand}: {x} is not a {fmt.name} value")
        return (INF, neg, 0, 0, 0)
    if neg and not fmt.signed and x != 0:
        raise ValueError(f"{operand}: {x} is not a {fmt.name} value")
    if x == 0:
        if fmt.special == E8M0:
            raise ValueError(f"{operand}: 0 is not a {fmt.name} value")
        # FNUZ has no -0: a -0 operand is read as +0, the only zero it has.
        return (FIN, neg and fmt.special != FNUZ and fmt.signed, 0, fmt.emin - fmt.mbits, fmt.emin)
    raise ValueError(f"{operand}: {x!r} is not a {fmt.name} value")  # a negative value of an unsigned format


def to_float(v: tuple) -> float:
    """The Python float of a parsed value (exact: callers only hold values of at most binary64 width)."""
    kind, neg, mag, lsb, _ = v
    if kind == NAN:
        return math.nan
    if kind == INF:
        return -math.inf if neg else math.inf
    r = math.ldexp(mag, lsb) if mag else 0.0
    return -r if neg else r


# --------------------------------------------------------------------------------------------------------
# Exact rounding of (negative, magnitude · 2^lsb) to a precision P (fraction bits) and minimum exponent.
# --------------------------------------------------------------------------------------------------------

RZ, RNE, RD = "rz", "rne", "rd"


@dataclass(frozen=True)
class Conv:
    """An output conversion rho: round to `frac` fraction bits, exponents >= `emin` (below: subnormal grid),
    Inf from 2^`ovf` up."""

    name: str
    frac: int
    emin: int
    ovf: int
    mode: str


RZ_FP32 = Conv("RZ-FP32", 23, -126, 128, RZ)
RZ_E8M13 = Conv("RZ-E8M13", 13, -126, 128, RZ)
RNE_FP16 = Conv("RNE-FP16", 10, -14, 16, RNE)
RNE_FP32 = Conv("RNE-FP32", 23, -126, 128, RNE)
RNE_FP64 = Conv("RNE-FP64", 52, -1022, 1024, RNE)


def round_mag(neg: bool, mag: int, lsb: int, frac: int, emin: int, mode: str) -> tuple[int, int]:
    """Round the value (-1)^neg · mag · 2^lsb to `frac` fraction bits (grid 2^(max(e, emin) - frac)).
    Returns the rounded (magnitude, lsb); the magnitude may carry into a new binade."""
    if mag == 0:
        return 0, lsb
    e = mag.bit_length() - 1 + lsb
    q = max(e, emin) - frac
    k = q - lsb
    if k <= 0:
        return mag, lsb
    hi = mag >> k
    rem = mag - (hi << k)
    if mode == RNE:
        half = 1 << (k - 1)
        if rem > half or (rem == half and hi & 1):
            hi += 1
    elif mode == RD and neg and rem:
        hi += 1
    return hi, q


def convert(neg: bool, mag: int, lsb: int, rho: Conv) -> float:
    """The exact value (-1)^neg · mag · 2^lsb converted by rho, as a Python float (±0 keeps `neg`)."""
    hi, q = round_mag(neg, mag, lsb, rho.frac, rho.emin, rho.mode)
    if hi == 0:
        return -0.0 if neg else 0.0
    if hi.bit_length() - 1 + q >= rho.ovf:
        return -math.inf if neg else math.inf
    r = math.ldexp(hi, q)
    return -r if neg else r


def _trunc_to(s: int, lsb: int, grid: int) -> int:
    """The signed integer s · 2^lsb truncated toward zero onto multiples of 2^grid, in units of 2^grid."""
    if lsb >= grid:
        return s << (lsb - grid)
    k = grid - lsb
    return -((-s) >> k) if s < 0 else s >> k


def _floor_to(s: int, lsb: int, grid: int) -> int:
    """The signed integer s · 2^lsb rounded toward -inf onto multiples of 2^grid, in units of 2^grid."""
    return s << (lsb - grid) if lsb >= grid else s >> (grid - lsb)


# --------------------------------------------------------------------------------------------------------
# Special values (IEEE rules) and exact products
# --------------------------------------------------------------------------------------------------------


def _mul(x: tuple, y: tuple) -> tuple:
    """Exact product of two parsed values (alignment exponent e_x + e_y; unnormalised significand)."""
    kx, nx, mx, lx, ex = x
    ky, ny, my, ly, ey = y
    neg = nx != ny
    if kx == NAN or ky == NAN:
        return (NAN, False, 0, 0, 0)
    if kx == INF or ky == INF:
        if (kx == FIN and mx == 0) or (ky == FIN and my == 0):
            return (NAN, False, 0, 0, 0)
        return (INF, neg, 0, 0, 0)
    return (FIN, neg, mx * my, lx + ly, ex + ey)


def _special_sum(terms) -> tuple | None:
    """IEEE special result of a sum of parsed terms: NaN, ±Inf, or None when every term is finite."""
    pos_inf = neg_inf = False
    for t in terms:
        if t[0] == NAN:
            return (NAN, False, 0, 0, 0)
        if t[0] == INF:
            if t[1]:
                neg_inf = True
            else:
                pos_inf = True
    if pos_inf and neg_inf:
        return (NAN, False, 0, 0, 0)
    if pos_inf or neg_inf:
        return (INF, neg_inf, 0, 0, 0)
    return None


def _exact_sum(terms) -> tuple[int, int]:
    """Exact signed sum of finite parsed terms as (integer, lsb)."""
    lo = min((t[3] for t in terms if t[2]), default=0)
    s = 0
    for _, neg, mag, lsb, _ in terms:
        if mag:
            v = mag << (lsb - lo)
            s += -v if neg else v
    return s, lo


# --------------------------------------------------------------------------------------------------------
# The nine algorithms, one dot product each (a, b: lists of parsed values; c: parsed value)
# --------------------------------------------------------------------------------------------------------


def _truncated_fused_sum(terms, frac: int, e_zero: int | None) -> tuple[int, int]:
    """Step 2 of T/ST-FDPA: align every term at e_max, truncate to frac fraction bits, sum exactly.
    A zero term aligns at e_zero (None: every term carries its own alignment exponent).
    Returns (sum integer, grid exponent)."""
    e_max = max(t[4] if t[2] or e_zero is None else e_zero for t in terms)
    grid = e_max - frac
    s = 0
    for _, neg, mag, lsb, _ in terms:
        if mag:
            v = mag << (lsb - grid) if lsb >= grid else mag >> (grid - lsb)
            s += -v if neg else v
    return s, grid


def _nv_finish(s: int, grid: int, rho: Conv) -> float:
    """Convert an exact FDPA sum by rho; NVIDIA results are never -0 (MMA-Sim adds +0.0)."""
    r = convert(s < 0, abs(s), grid, rho)
    return 0.0 if r == 0 else r


def _has_special(*vectors) -> bool:
    return any(v[0] for vec in vectors for v in vec)  # FIN is 0


def _products(a: list, b: list, shift_e: int = 0, scale_mag: int = 1, shift_lsb: int = 0) -> tuple[list, bool]:
    """The nonzero exact products of two finite vectors as (negative, magnitude, lsb, alignment exponent),
    times an optional power-of-two-aligned scale, and whether some product was zero."""
    out = []
    zero = False
    for (_, na, ma, la, ea), (_, nb, mb, lb, eb) in zip(a, b, strict=True):
        if ma and mb:
            out.append((na != nb, ma * mb * scale_mag, la + lb + shift_lsb, ea + eb + shift_e))
        else:
            zero = True
    return out, zero


def _fused(prods: list, zero: bool, c: tuple, frac: int, e_zero: int) -> tuple[int, int]:
    """Step 2 of T/ST-FDPA on finite terms: align at e_max (zero terms at e_zero), truncate every term
    toward zero to frac fraction bits, sum exactly. Returns (sum integer, grid exponent)."""
    e_max = max((p[3] for p in prods), default=e_zero)
    if zero or not c[2]:
        e_max = max(e_max, e_zero)
    if c[2]:
        e_max = max(e_max, c[4])
    grid = e_max - frac
    s = 0
    for neg, mag, lsb, _ in (*prods, (c[1], c[2], c[3], 0)):
        if mag:
            v = mag << (lsb - grid) if lsb >= grid else mag >> (grid - lsb)
            s += -v if neg else v
    return s, grid


def t_fdpa(a: list, b: list, c: tuple, frac: int, rho: Conv, e_zero: int, finite: bool = False) -> float:
    """Algorithm T-FDPA (NVIDIA Volta to Blackwell, non-scaled): one fused dot-product-add of len(a).
    `finite`: the caller knows a and b hold no NaN or Inf."""
    if c[0] or (not finite and _has_special(a, b)):
        return to_float(_special_sum([*(_mul(x, y) for x, y in zip(a, b, strict=True)), c]))
    prods, zero = _products(a, b)
    s, grid = _fused(prods, zero, c, frac, e_zero)
    return _nv_finish(s, grid, rho)


def st_fdpa(a: list, b: list, c: tuple, alpha: tuple, beta: tuple, frac: int, rho: Conv, e_zero: int) -> float:
    """Algorithm ST-FDPA (MXFP8/6/4, K = 32, one E8M0 scale per operand): T-FDPA with scaled products."""
    scale = _mul(alpha, beta)
    if scale[0] or c[0] or _has_special(a, b):
        return to_float(_special_sum([*(_mul(_mul(x, y), scale) for x, y in zip(a, b, strict=True)), c]))
    prods, zero = _products(a, b, scale[4], scale[2], scale[3])
    s, grid = _fused(prods, zero, c, frac, e_zero)
    return _nv_finish(s, grid, rho)


def gst_fdpa(
    a: list, b: list, c: tuple, alphas: list, betas: list, group: int, frac: int, rho: Conv, e_zero: int
) -> float:
    """Algorithm GST-FDPA (MXFP4/NVFP4, K = 64): exact sums of `group` products, each times its two block
    scales and aligned at the scale exponents; `alphas`/`betas` hold one scale per group."""
    scales = [_mul(x, y) for x, y in zip(alphas, betas, strict=True)]
    special = _special_sum([*scales, c])
    if special is not None:
        return to_float(special)
    terms = []
    for g, scale in enumerate(scales):
        prods, _ = _products(a[g * group : (g + 1) * group], b[g * group : (g + 1) * group])
        lo = min((p[2] for p in prods), default=0)
        s = sum((-m if neg else m) << (lsb - lo) for neg, m, lsb, _ in prods)
        # a group aligns at e_zero only when every product or a scale is zero; a group that cancels to
        # zero keeps its scale exponent
        e = e_zero if not prods or scale[2] == 0 else scale[4]
        terms.append((FIN, (s < 0) != scale[1], abs(s) * scale[2], lo + scale[3], e))
    terms.append((FIN, c[1], c[2], c[3], c[4] if c[2] else e_zero))
    s, grid = _truncated_fused_sum(terms, frac, None)
    return _nv_finish(s, grid, rho)


def e_fdpa(a: list, b: list, c: tuple) -> float:
    """Algorithm E-FDPA (CDNA1): exact sum of the products and C, rounded once to FP32 with RNE
    (an exact zero is +0; an underflow keeps its sign)."""
    terms = [_mul(x, y) for x, y in zip(a, b, strict=True)]
    terms.append(c)
    special = _special_sum(terms)
    if special is not None:
        return to_float(special)
    s, lo = _exact_sum(terms)
    return convert(s < 0, abs(s), lo, RNE_FP32)


def _f32_round(neg: bool, mag: int, lsb: int) -> tuple:
    """FP32 RNE of an exact nonzero-or-zero finite value, as a parsed value (Inf on overflow)."""
    hi, q = round_mag(neg, mag, lsb, 23, -126, RNE)
    if hi and hi.bit_length() - 1 + q >= 128:
        return (INF, neg, 0, 0, 0)
    return (FIN, neg, hi, q, max(hi.bit_length() - 1 + q, -126) if hi else -126)


def _flush(v: tuple, emin: int, keep_sign: bool) -> tuple:
    """Flush a finite value below 2^emin to zero (signed zero when keep_sign, else +0)."""
    if v[0] == FIN and v[2] and v[2].bit_length() - 1 + v[3] < emin:
        return (FIN, v[1] if keep_sign else False, 0, v[3], emin)
    if v[0] == FIN and v[2] == 0 and not keep_sign:
        return (FIN, False, 0, v[3], emin)
    return v


def _f32_add(x: tuple, y: tuple) -> tuple:
    """IEEE FP32 addition with RNE (exact zero: -0 only when both operands are -0)."""
    special = _special_sum((x, y))
    if special is not None:
        return special
    s, lo = _exact_sum((x, y))
    if s == 0:
        return (FIN, x[1] and y[1] and x[2] == 0 and y[2] == 0, 0, lo, -126)
    return _f32_round(s < 0, abs(s), lo)


def _f32_mul(x: tuple, y: tuple) -> tuple:
    """IEEE FP32 multiplication with RNE."""
    p = _mul(x, y)
    if p[0] != FIN:
        return p
    return _f32_round(p[1], p[2], p[3])


def ftz_mul_add(a: list, b: list, c: tuple, width: int, in_emin: int) -> float:
    """Algorithm FTZ-MUL-ADD (CDNA2): FP32 products of flushed inputs, pairwise FP32 sums of width products,
    each sum added to the (flushed) accumulator in turn; every result below 2^-126 flushed keeping its sign."""
    prods = [
        _flush(_f32_mul(_flush(x, in_emin, False), _flush(y, in_emin, False)), -126, True)
        for x, y in zip(a, b, strict=True)
    ]
    acc = _flush(c, -126, False)
    for i in range(0, len(prods), width):
        s = _flush(_f32_add(prods[i], prods[i + 1]), -126, True)
        if width == 4:
            s2 = _flush(_f32_add(prods[i + 2], prods[i + 3]), -126, True)
            s = _flush(_f32_add(s, s2), -126, True)
        acc = _flush(_f32_add(acc, s), -126, True)
    return to_float(acc)


def _tr_finish(dot: int, dot_grid: int, c: tuple, e_dot: int, frac: int, frac2: int, drop_small_c: bool) -> float:
    """The common tail of TR/GTR-FDPA: round the dot sum down to frac2 + 1 bits and C down to frac bits below
    max(e_dot, e_c), add, normalise, round down to frac2 fraction bits, then RNE to FP32."""
    e_c = c[4] if c[2] else -126
    e_max = max(e_dot, e_c)
    g1 = e_max - (frac2 + 1)
    g2 = e_max - frac
    sd = _floor_to(dot, dot_grid, g1)
    sc = 0
    if c[2] and not (drop_small_c and e_c < e_max - frac - 1):
        sc = _floor_to(-c[2] if c[1] else c[2], c[3], g2)
    grid = min(g1, g2)
    total = (sd << (g1 - grid)) + (sc << (g2 - grid))
    if total == 0:
        return 0.0
    neg = total < 0
    hi, q = round_mag(neg, abs(total), grid, frac2, -126, RD)
    return convert(neg, hi, q, RNE_FP32)


def tr_fdpa(a: list, b: list, c: tuple, frac: int, frac2: int) -> float:
    """Algorithm TR-FDPA (CDNA3 f16/bf16/xf32)."""
    prods = []
    for x, y in zip(a, b, strict=True):
        p = _mul(x, y)
        if p[0] == FIN and p[2] and p[2].bit_length() - 1 + p[3] >= 128:
            p = (INF, p[1], 0, 0, 0)  # the product overflows FP32
        prods.append(p)
    special = _special_sum([*prods, c])
    if special is not None:
        return to_float(special)
    nonzero = [p for p in prods if p[2]]
    if not nonzero:
        return _tr_finish(0, 0, c, -999, frac, frac2, drop_small_c=False)
    dot, grid = _truncated_fused_sum(nonzero, frac, 0)
    return _tr_finish(dot, grid, c, grid + frac, frac, frac2, drop_small_c=False)


def gtr_fdpa(a: list, b: list, c: tuple, frac: int, frac2: int) -> float:
    """Algorithm GTR-FDPA (CDNA3 fp8/bf8): even and odd products summed as two truncated groups."""
    prods = [_mul(x, y) for x, y in zip(a, b, strict=True)]
    special = _special_sum([*prods, c])
    if special is not None:
        return to_float(special)
    groups = []
    for half in (prods[0::2], prods[1::2]):
        nonzero = [p for p in half if p[2]]
        if nonzero:
            s, grid = _truncated_fused_sum(nonzero, frac, 0)
            groups.append((s, grid, grid + frac))
    if not groups:
        return _tr_finish(0, 0, c, -999, frac, frac2, drop_small_c=True)
    e_dot = max(g[2] for g in groups)
    grid = e_dot - frac
    dot = sum(_floor_to(s, g, grid) for s, g, _ in groups)
    return _tr_finish(dot, grid, c, e_dot, frac, frac2, drop_small_c=True)


def fma_chain(a: list, b: list, c: tuple, rho: Conv) -> float:
    """Algorithm FMA: c <- fma(a_k, b_k, c) for k in order, IEEE with RNE in the accumulator format."""
    acc = c
    for x, y in zip(a, b, strict=True):
        p = _mul(x, y)
        special = _special_sum((p, acc))
        if special is not None:
            acc = special
            continue
        s, lo = _exact_sum((p, acc))
        if s == 0:
            neg = p[1] and acc[1] and p[2] == 0 and acc[2] == 0
            acc = (FIN, neg, 0, lo, rho.emin)
            continue
        r = convert(s < 0, abs(s), lo, rho)
        acc = (INF, r < 0, 0, 0, 0) if math.isinf(r) else _parse_exact(r, rho)
    return to_float(acc)


def _parse_exact(x: float, rho: Conv) -> tuple:
    fmt = F64 if rho is RNE_FP64 else F32
    return parse(x, fmt)


# --------------------------------------------------------------------------------------------------------
# Instruction table: every (arch, instruction) with its algorithm and parameters
# --------------------------------------------------------------------------------------------------------

PAPER = "Xie, Wang, Yang, Yang, MMA-Sim, arXiv 2511.10909 (2025)"
CITE = {
    "T-FDPA": f"{PAPER}: T-FDPA (truncated fused dot-product-add); mmasim 2.1.1 fdpa.t_fdpa",
    "ST-FDPA": f"{PAPER}: ST-FDPA (scaled T-FDPA); mmasim 2.1.1 fdpa.st_fdpa",
    "GST-FDPA": f"{PAPER}: GST-FDPA (group-scaled T-FDPA); mmasim 2.1.1 fdpa.gst_fdpa",
    "E-FDPA": f"{PAPER}: E-FDPA (exact FDPA, CDNA1); mmasim 2.1.1 fdpa.e_fdpa",
    "FTZ-MUL-ADD": f"{PAPER}: FTZ multiply-add (CDNA2); mmasim 2.1.1 ftz_mul_add",
    "TR-FDPA": f"{PAPER}: TR-FDPA (truncate + round down, CDNA3); mmasim 2.1.1 fdpa.tr_fdpa",
    "GTR-FDPA": f"{PAPER}: GTR-FDPA (grouped TR-FDPA, CDNA3 FP8); mmasim 2.1.1 fdpa.gtr_fdpa",
    "FMA": f"{PAPER}: FMA chain (IEEE fused multiply-add); mmasim 2.1.1 fma.MMA_FMA",
}

NV_ARCHS = ("volta", "turing", "ampere", "ada", "hopper", "blackwell", "rtx_blackwell")
AMD_ARCHS = ("cdna1", "cdna2", "cdna3")

# MMA-Sim's per-architecture T-FDPA parameters for mma.sync (nv_ptx/sim.py): fraction bits F, bytes of
# operands one FDPA reads (L = bytes / operand bytes), e_zero for FP16 and FP32 accumulation.
_MMA_F = {"volta": 23, "turing": 24, "ampere": 24, "ada": 24, "hopper": 25, "blackwell": 25, "rtx_blackwell": 25}
_MMA_L_BYTES = {"volta": 8, "turing": 16, "ampere": 16, "ada": 16, "hopper": 32, "blackwell": 32, "rtx_blackwell": 32}
_MMA_EZ16 = {
    "volta": -19,
    "turing": -20,
    "ampere": -20,
    "ada": -20,
    "hopper": -21,
    "blackwell": -21,
    "rtx_blackwell": -21,
}
_MMA_EZ32 = {
    "volta": -131,
    "turing": -132,
    "ampere": -132,
    "ada": -132,
    "hopper": -133,
    "blackwell": -133,
    "rtx_blackwell": -133,
}
_BYTES = {"f16": 2, "bf16": 2, "tf32": 4, "f32": 4, "e4m3": 1, "e5m2": 1, "e3m2": 1, "e2m3": 1, "e2m1": 1}
FP8 = ("e5m2", "e4m3")
F8F6F4 = ("e5m2", "e4m3", "e3m2", "e2m3", "e2m1")

_SM70 = ["m8n8k4.f32.f16.f16.f32", "m8n8k4.f32.f16.f16.f16", "m8n8k4.f16.f16.f16.f16"]
_SM75 = ["m16n8k8.f32.f16.f16.f32", "m16n8k8.f16.f16.f16.f16"]
_SM80 = [
    "m16n8k8.f32.tf32.tf32.f32",
    "m16n8k4.f32.tf32.tf32.f32",
    "m16n8k16.f32.f16.f16.f32",
    "m16n8k16.f16.f16.f16.f16",
    "m16n8k16.f32.bf16.bf16.f32",
    "m16n8k8.f32.bf16.bf16.f32",
]
_SM89 = [f"m16n8k{k}.{d}.{a}.{b}.{d}" for k in (32, 16) for d in ("f32", "f16") for a in FP8 for b in FP8]
_SM120 = [f"m16n8k32.f8f6f4.{d}.{a}.{b}.{d}" for d in ("f32", "f16") for a in F8F6F4 for b in F8F6F4]
_SM80_F64 = ["m8n8k4.f64.f64.f64.f64"]  # DMMA: a chain of IEEE binary64 FMAs
_SM90_F64 = ["m16n8k16.f64.f64.f64.f64", "m16n8k8.f64.f64.f64.f64", "m16n8k4.f64.f64.f64.f64"]
_MMA_BY_ARCH = {
    "volta": _SM70,
    "turing": _SM75 + _SM70,
    "ampere": _SM80_F64 + _SM80 + _SM75,
    "ada": _SM89 + _SM80_F64 + _SM80 + _SM75,
    "hopper": _SM90_F64 + _SM80_F64 + _SM80 + _SM75,
    "blackwell": _SM80_F64 + _SM80 + _SM75,
    "rtx_blackwell": _SM120 + _SM89 + _SM80_F64 + _SM80 + _SM75,
}
_RTX_SCALED = (
    [f"m16n8k32.mxf8f6f4.block32.f32.{a}.{b}.f32.ue8m0" for a in F8F6F4 for b in F8F6F4]
    + ["m16n8k64.mxf4.block32.f32.e2m1.e2m1.f32.ue8m0", "m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32.ue8m0"]
    + [f"m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.{t}" for t in ("ue8m0", "ue4m3")]
)
_WGMMA = ["m64n8k8.f32.tf32.tf32", "m64n8k16.f32.f16.f16", "m64n8k16.f16.f16.f16", "m64n8k16.f32.bf16.bf16"] + [
    f"m64n8k32.{d}.{a}.{b}" for d in ("f32", "f16") for a in FP8 for b in FP8
]
_TCGEN05 = (
    [f"m{m}n8k8.tf32.f32.tf32.tf32" for m in (64, 128)]
    + [f"m{m}n8k16.f16.f32.{t}.{t}" for m in (64, 128) for t in ("f16", "bf16")]
    + [f"m{m}n8k16.f16.f16.f16.f16" for m in (64, 128)]
    + [f"m{m}n8k32.f8f6f4.{d}.{a}.{b}" for m in (64, 128) for d in ("f32", "f16") for a in F8F6F4 for b in F8F6F4]
)
_TCGEN05_SCALED = (
    [f"m128n8k32.mxf8f6f4.block32.f32.{a}.{b}.ue8m0" for a in F8F6F4 for b in F8F6F4]
    + ["m128n8k64.mxf4.block32.f32.e2m1.e2m1.ue8m0", "m128n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.ue8m0"]
    + [f"m128n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.{t}" for t in ("ue8m0", "ue4m3")]
)
_CDNA1 = (
    [f"f32_{s}_f32" for s in ("32x32x2", "32x32x1", "16x16x4", "16x16x1", "4x4x1")]
    + [f"f32_{s}_f16" for s in ("32x32x8", "32x32x4", "16x16x16", "16x16x4", "4x4x4")]
    + [f"f32_{s}_bf16" for s in ("32x32x4", "32x32x2", "16x16x8", "16x16x2", "4x4x2")]
)
_CDNA2 = (
    ["f64_16x16x4_f64", "f64_4x4x4_f64"]
    + [f"f32_{s}_bf16_1k" for s in ("32x32x8", "32x32x4", "16x16x16", "16x16x4", "4x4x4")]
    + _CDNA1
)
_CDNA3_HALF_SHAPES = ("32x32x4_2b", "16x16x4_4b", "4x4x4_16b", "32x32x8", "16x16x16")
_CDNA3 = (
    ["f64_16x16x4_f64", "f64_4x4x4_4b_f64"]
    + ["f32_32x32x1_2b_f32", "f32_16x16x1_4b_f32", "f32_4x4x1_16b_f32", "f32_32x32x2_f32", "f32_16x16x4_f32"]
    + ["f32_16x16x8_xf32", "f32_32x32x4_xf32"]
    + [
        f"f32_{s}_{t}"
        for t in ("f16", "bf16")
        for s in ("32x32x4_2b", "16x16x4_4b", "4x4x4_16b", "32x32x8", "16x16x16")
    ]
    + [f"f32_{s}_{a}_{b}" for s in ("16x16x32", "32x32x16") for a in ("bf8", "fp8") for b in ("bf8", "fp8")]
)
_MFMA_BY_ARCH = {"cdna1": _CDNA1, "cdna2": _CDNA2, "cdna3": _CDNA3}


@dataclass(frozen=True)
class Spec:
    """One instruction on one architecture, with the algorithm that computes it."""

    arch: str
    instruction: str  # canonical spelling (see `canonical`)
    M: int
    N: int
    K: int
    a_type: str
    b_type: str
    c_type: str
    d_type: str
    algorithm: str
    F: int | None = None
    L: int = 0  # products per fused sum (FDPA length; P of FTZ-MUL-ADD; 1 for FMA)
    rho: Conv = RZ_FP32
    e_zero: int | None = None
    F2: int | None = None
    G: int | None = None
    scale_type: str | None = None
    block: int | None = None  # elements of K per scale
    family: str = ""
    citation: str = field(default="", compare=False)


def _nv_spec(arch: str, op: str, inst: str) -> Spec:
    """Parameters of a non-scaled NVIDIA instruction (canonical spelling without the op prefix)."""
    toks = inst.split(".")
    m, n, k = _mnk(toks[0])
    if op == "tcgen05":
        _, _kind, d, a, b = toks
        c = d
    elif op == "wgmma":
        _, d, a, b = toks
        c = d
    else:
        toks = [t for t in toks if t != "f8f6f4"]
        _, d, a, b, c = toks
    if a == "f64":
        return Spec(arch, f"mma.{inst}", m, n, k, a, b, c, d, "FMA", L=1, rho=RNE_FP64, family="nv.fma.f64")
    f16_out = d == "f16"
    L = (32 if op != "mma" else _MMA_L_BYTES[arch]) // _BYTES[a]
    if op == "mma":
        F = _MMA_F[arch]
        e_zero = _MMA_EZ16[arch] if f16_out else _MMA_EZ32[arch]
        if arch == "turing" and m == 8:  # Volta's m8n8k4 on Turing runs with Volta's parameters
            F, L, e_zero = 23, 4, (-19 if f16_out else -131)
        fp8_trunc = arch == "ada" and a in FP8
    else:
        F = 25
        e_zero = -21 if f16_out else -133
        fp8_trunc = op == "wgmma" and a in FP8
    if fp8_trunc:  # Ada and Hopper FP8: 13 fraction bits, FP32 output truncated to E8M13
        F = 13
    rho = RNE_FP16 if f16_out else (RZ_E8M13 if fp8_trunc else RZ_FP32)
    ins = {"f16": "f16bf16", "bf16": "f16bf16", "tf32": "tf32"}.get(a, "fp8" if fp8_trunc else "f8f6f4")
    fam = f"nv.t_fdpa.{ins}.{d}.F{F}.L{L}.ez{e_zero}"
    return Spec(arch, f"{_prefix(op)}.{inst}", m, n, k, a, b, c, d, "T-FDPA", F, L, rho, e_zero, family=fam)


def _nv_scaled_spec(arch: str, op: str, inst: str) -> Spec:
    toks = inst.split(".")
    m, n, k = _mnk(toks[0])
    kind, blk, d, a, b = toks[1:6]
    block = int(blk.removeprefix("block"))
    stype = toks[-1]
    if k == 64:
        return Spec(
            arch,
            f"{_prefix(op)}.{inst}",
            m,
            n,
            k,
            a,
            b,
            "f32",
            d,
            "GST-FDPA",
            35,
            64,
            RZ_FP32,
            -139,
            G=16,
            scale_type=stype,
            block=block,
            family=f"nv.gst_fdpa.{'nvfp4' if stype == 'ue4m3' else 'mxfp4'}",
        )
    return Spec(
        arch,
        f"{_prefix(op)}.{inst}",
        m,
        n,
        k,
        a,
        b,
        "f32",
        d,
        "ST-FDPA",
        25,
        32,
        RZ_FP32,
        -133,
        scale_type=stype,
        block=32,
        family="nv.st_fdpa.mxf8f6f4",
    )


def _amd_spec(arch: str, inst: str) -> Spec:
    """Parameters of an mfma instruction (canonical spelling f32_MxNxK[_nb]_type[_type][_1k])."""
    toks = inst.split("_")
    d = toks[0]
    m, n, k = (int(v) for v in toks[1].split("x"))
    rest = [t for t in toks[2:] if not re.fullmatch(r"\d+b", t) and t != "1k"]
    a = rest[0]
    b = rest[1] if len(rest) > 1 else a
    one_k = inst.endswith("_1k")
    amd_type = {"fp8": "fp8", "bf8": "bf8", "xf32": "tf32"}
    at, bt = amd_type.get(a, a), amd_type.get(b, b)
    base = dict(arch=arch, instruction=f"mfma.{inst}", M=m, N=n, K=k, a_type=at, b_type=bt, c_type=d, d_type=d)
    if a in ("f32", "f64"):
        rho = RNE_FP64 if a == "f64" else RNE_FP32
        return Spec(**base, algorithm="FMA", L=1, rho=rho, family=f"amd.fma.{a}")
    if a in ("fp8", "bf8"):
        return Spec(**base, algorithm="GTR-FDPA", F=24, L=16, rho=RNE_FP32, F2=31, family="amd.gtr_fdpa.fp8bf8")
    if arch == "cdna1":
        L = 4 if a == "f16" else 2
        return Spec(**base, algorithm="E-FDPA", L=L, rho=RNE_FP32, family=f"amd.e_fdpa.{a}.L{L}")
    if arch == "cdna2":
        P = 2 if a == "bf16" and not one_k else 4
        return Spec(**base, algorithm="FTZ-MUL-ADD", L=P, rho=RNE_FP32, family=f"amd.ftz_mul_add.P{P}")
    L = 4 if a == "xf32" else 8
    fam = "amd.tr_fdpa.xf32" if a == "xf32" else "amd.tr_fdpa.f16bf16"
    return Spec(**base, algorithm="TR-FDPA", F=24, L=L, rho=RNE_FP32, F2=31, family=fam)


def _prefix(op: str) -> str:
    return "tcgen05.mma" if op == "tcgen05" else op


def _mnk(shape: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"m(\d+)n(\d+)k(\d+)", shape)
    if m is None:
        raise ValueError(f"instruction: bad shape {shape!r}")
    return int(m[1]), int(m[2]), int(m[3])


@cache
def table() -> dict[tuple[str, str], Spec]:
    """Every (arch, canonical instruction) the oracle covers, with its parameters and citation."""
    out: dict[tuple[str, str], Spec] = {}

    def add(spec: Spec) -> None:
        out[(spec.arch, spec.instruction)] = Spec(**{**spec.__dict__, "citation": CITE[spec.algorithm]})

    for arch, insts in _MMA_BY_ARCH.items():
        for inst in insts:
            add(_nv_spec(arch, "mma", inst))
    for inst in _RTX_SCALED:
        add(_nv_scaled_spec("rtx_blackwell", "mma", inst))
    for inst in _WGMMA:
        add(_nv_spec("hopper", "wgmma", inst))
    for inst in _TCGEN05:
        add(_nv_spec("blackwell", "tcgen05", inst))
    for inst in _TCGEN05_SCALED:
        add(_nv_scaled_spec("blackwell", "tcgen05", inst))
    for arch, insts in _MFMA_BY_ARCH.items():
        for inst in insts:
            add(_amd_spec(arch, inst))
    return out


def families() -> dict[str, list[Spec]]:
    """The table grouped by family: instructions that run one algorithm with the same parameters."""
    out: dict[str, list[Spec]] = {}
    for spec in table().values():
        out.setdefault(spec.family, []).append(spec)
    return out


# --------------------------------------------------------------------------------------------------------
# Instruction names: accept the spellings PTX, LLVM and the AMD ISA use
# --------------------------------------------------------------------------------------------------------

_KINDS = ("f16", "tf32", "f8f6f4", "mxf8f6f4", "mxf4", "mxf4nvf4")
_NOISE = re.compile(r"\.(sync|aligned|row|col|block_scale|cta_group::\d|scale_vec::\w+|kind::)")


def _mfma_key(inst: str) -> str:
    return re.sub(r"[._]", "", inst.lower().removeprefix("v_mfma_").removeprefix("mfma.").removeprefix("mfma_"))


@cache
def _mfma_index() -> dict[tuple[str, str], str]:
    return {(arch, _mfma_key(i)): i for arch, insts in _MFMA_BY_ARCH.items() for i in insts}


def lookup(arch: str, instruction: str, scale_type: str | None = None, block: int | None = None) -> Spec:
    """The Spec of an (arch, instruction) in any usual spelling; ValueError when the oracle has none.
    `scale_type` and `block` pick the variant of a block-scaled kind that the name leaves open."""
    arch = arch.lower().replace(" ", "_").replace("ada_lovelace", "ada")
    name = instruction.strip().lower()
    if name.startswith(("mfma", "v_mfma")):
        key = _mfma_index().get((arch, _mfma_key(name)))
        if key is None:
            raise ValueError(f"instruction: {instruction!r} is not an mfma of {arch}")
        return table()[(arch, f"mfma.{key}")]
    name = _NOISE.sub("", name.replace("kind::", ""))
    toks = [t for t in name.split(".") if t]
    if toks[:2] == ["tcgen05", "mma"]:
        op, toks = "tcgen05", toks[2:]
    elif toks[0] in ("wgmma", "mma"):
        op, toks = toks[0], toks[1:]
        toks = [t for t in toks if t != "mma_async"]
    else:
        raise ValueError(f"instruction: {instruction!r} is not an mma, wgmma, tcgen05.mma or mfma name")
    stype = scale_type
    for t in list(toks):
        if t in SCALE_FORMATS:
            stype = t
            toks.remove(t)
        elif re.fullmatch(r"block\d+", t):
            block = int(t[5:])
            toks.remove(t)
    shape = toks[0]
    m, n, k = _mnk(shape)
    kind = toks[1] if len(toks) > 1 and toks[1] in _KINDS and (op == "tcgen05" or toks[1] not in ("f16",)) else None
    if op == "mma" and kind == "tf32":
        kind = None
    scaled = kind in ("mxf8f6f4", "mxf4", "mxf4nvf4")
    if scaled:
        blk = block or (16 if stype == "ue4m3" else 32)
        if stype is None:
            stype = "ue4m3" if kind == "mxf4nvf4" and blk == 16 else "ue8m0"
        first = shape if op == "mma" else f"m{m}n8k{k}"
        cand = ".".join([first, toks[1], f"block{blk}", *toks[2:], stype])
    elif op in ("tcgen05", "wgmma"):
        cand = ".".join([f"m{m}n8k{k}", *toks[1:]])
    else:
        rest = toks[1:]
        if kind == "f8f6f4" or (
            arch == "rtx_blackwell" and k == 32 and any(t in ("e3m2", "e2m3", "e2m1") for t in rest)
        ):
            rest = [t for t in rest if t != "f8f6f4"]
            cand = ".".join([shape, "f8f6f4", *rest])
        else:
            cand = ".".join([shape, *rest])
    spec = table().get((arch, f"{_prefix(op)}.{cand}"))
    if spec is None and op == "mma" and arch == "rtx_blackwell" and kind is None:
        spec = table().get((arch, f"mma.{shape}.f8f6f4.{'.'.join(toks[1:])}"))
    if spec is None:
        raise ValueError(f"instruction: {instruction!r} is not a {op} instruction of {arch}")
    if n != spec.N and op != "mma":  # wgmma and tcgen05 take any N that is a multiple of 8 up to 256
        if n % 8 or not 8 <= n <= 256:
            raise ValueError(f"instruction: N = {n} is not a multiple of 8 in [8, 256]")
        spec = Spec(**{**spec.__dict__, "N": n})
    return spec


# --------------------------------------------------------------------------------------------------------
# The instruction: D = A·B + C
# --------------------------------------------------------------------------------------------------------

_FMT_OF = {**FORMATS, "fp8": FP8_FNUZ, "bf8": BF8_FNUZ}


def _parse_matrix(x: np.ndarray, fmt: Fmt, operand: str, by_rows: bool) -> list[list[tuple]]:
    rows = x if by_rows else x.T
    cache_: dict[float, tuple] = {}
    out = []
    for row in rows.tolist():
        parsed = []
        for v in row:
            key = v if v else (0, math.copysign(1.0, v))
            key = "nan" if v != v else key
            p = cache_.get(key)
            if p is None:
                p = parse(v, fmt, operand)
                cache_[key] = p
            parsed.append(p)
        out.append(parsed)
    return out


def mma(
    arch: str,
    instruction: str,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    scale_a: np.ndarray | None = None,
    scale_b: np.ndarray | None = None,
    scale_type: str | None = None,
) -> np.ndarray:
    """D = A·B + C for one instruction, computed element by element with exact integers.

    a: (M, K), b: (K, N), c: (M, N) arrays of operand values; scale_a: (M, K/block), scale_b: (K/block, N)
    block-scale values for the block-scaled kinds (`scale_type` ue8m0 or ue4m3 where the name leaves it
    open). Returns float32 (FP32 output) or float16 (FP16 output)."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    block = None
    if scale_a is not None:
        scale_a = np.asarray(scale_a, dtype=np.float64)
        block = a.shape[1] // max(1, scale_a.shape[1])
    spec = lookup(arch, instruction, scale_type, block)
    if a.shape != (spec.M, spec.K) or b.shape != (spec.K, spec.N) or c.shape != (spec.M, spec.N):
        raise ValueError(f"a, b, c: shapes {a.shape}, {b.shape}, {c.shape} do not fit {spec.M}x{spec.N}x{spec.K}")
    rows = _parse_matrix(a, _FMT_OF[spec.a_type], "a", True)
    cols = _parse_matrix(b, _FMT_OF[spec.b_type], "b", False)
    cs = _parse_matrix(c, _FMT_OF[spec.c_type], "c", True)
    d_fmt = F16 if spec.d_type == "f16" else (F64 if spec.d_type == "f64" else F32)
    out = np.empty((spec.M, spec.N), dtype={"f16": np.float16, "f64": np.float64}.get(spec.d_type, np.float32))
    if spec.algorithm in ("ST-FDPA", "GST-FDPA"):
        if scale_a is None or scale_b is None:
            raise ValueError("scale_a, scale_b: a block-scaled kind needs both scale arrays")
        scale_b = np.asarray(scale_b, dtype=np.float64)
        nblk = spec.K // (spec.block or 32)
        if scale_a.shape != (spec.M, nblk) or scale_b.shape != (nblk, spec.N):
            raise ValueError(f"scale_a, scale_b: shapes {scale_a.shape}, {scale_b.shape}, expected {(spec.M, nblk)}")
        sfmt = SCALE_FORMATS[spec.scale_type]
        sa = _parse_matrix(scale_a, sfmt, "scale_a", True)
        sb = _parse_matrix(scale_b, sfmt, "scale_b", False)
    if spec.algorithm == "GST-FDPA":  # one scale per group of G: repeat each block scale block/G times
        per = spec.block // spec.G
        sa = [[s for s in row for _ in range(per)] for row in sa]
        sb = [[s for s in col for _ in range(per)] for col in sb]
    row_ok = [not _has_special(r) for r in rows]
    col_ok = [not _has_special(c) for c in cols]
    for i in range(spec.M):
        for j in range(spec.N):
            if spec.algorithm == "ST-FDPA":
                r = st_fdpa(rows[i], cols[j], cs[i][j], sa[i][0], sb[j][0], spec.F, spec.rho, spec.e_zero)
            elif spec.algorithm == "GST-FDPA":
                r = gst_fdpa(rows[i], cols[j], cs[i][j], sa[i], sb[j], spec.G, spec.F, spec.rho, spec.e_zero)
            else:
                r = _chain(spec, rows[i], cols[j], cs[i][j], d_fmt, row_ok[i] and col_ok[j])
            out[i, j] = r
    return out


def _chain(spec: Spec, a: list, b: list, c: tuple, d_fmt: Fmt, finite: bool) -> float:
    """One output element: FDPAs of L products in sequence, the accumulator rounded between them.
    `finite`: a and b hold no NaN or Inf."""
    alg = spec.algorithm
    if alg == "FMA":
        return fma_chain(a, b, c, spec.rho)
    if alg == "FTZ-MUL-ADD":
        return ftz_mul_add(a, b, c, spec.L, _FMT_OF[spec.a_type].emin)
    L = min(spec.K, spec.L)
    r = 0.0
    for k0 in range(0, spec.K, L):
        sa, sb = a[k0 : k0 + L], b[k0 : k0 + L]
        if alg == "T-FDPA":
            r = t_fdpa(sa, sb, c, spec.F, spec.rho, spec.e_zero, finite)
        elif alg == "E-FDPA":
            r = e_fdpa(sa, sb, c)
        elif alg == "TR-FDPA":
            r = tr_fdpa(sa, sb, c, spec.F, spec.F2)
        else:
            r = gtr_fdpa(sa, sb, c, spec.F, spec.F2)
        c = parse(r, d_fmt)
    return r
