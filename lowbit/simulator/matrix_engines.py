"""One matrix instruction, bit-exact: `mma(arch, instruction, a, b, c)` computes D = A B + C as the
tensor cores and matrix cores of ten GPU architectures do (MMA-Sim, arXiv 2511.10909; the
algorithms and their parameters are data in `lowbit.formats.engines`).

Every operand value is split into an integer significand and an exponent, and the fused sums run
on int64 arrays over all outputs at once, so truncation, rounding down and the final rounding
are exact integer operations (no float rounding happens outside the places the algorithm says).
The exceptions are the IEEE paths: FTZ_MUL_ADD runs on float32 (NumPy's arithmetic is IEEE
round-to-nearest-even without flushing), float32 FMAs on float64 with an error-free sum, and
exact sums (E_FDPA) and float64 FMAs on Python integers, one output at a time.

NaN and Inf are left out of the integer sums and applied afterwards by IEEE rules: a NaN operand,
Inf times zero or Inf minus Inf gives NaN, else an Inf gives Inf (on CDNA3 also a product beyond
float32's range). A NaN result carries the instruction's NaN bit pattern; a zero result of a fused
sum is +0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from ..formats.engines import (
    Algorithm,
    Arch,
    EngineProfile,
    Normalization,
    OperandType,
    engine_catalog,
    get_engine,
    operand_type,
    parse_instruction,
)
from .host.codec import quantize
from .host.inputs import host_float_array
from .kernels.rounding import Rounding

_LEFT_OUT = -(1 << 20)  # an exponent below every real one: a term that takes no part in a maximum
_F32 = (23, -126, 127)  # fraction bits, emin, emax
_F16 = (10, -14, 15)
_F64 = (52, -1022, 1023)


def engines() -> list[EngineProfile]:
    """Every instruction `mma` models, with its arithmetic: architecture, M/N/K, operand types,
    fraction bits, fused-sum length, split-k, rounding, normalization, denormal flush, citation.
    wgmma and tcgen05 profiles are listed at N = 8; any N that is a multiple of 8 up to 256 works."""
    return list(engine_catalog())


# ----- operands ------------------------------------------------------------------------------
def fits_type(x: np.ndarray, t: OperandType) -> np.ndarray:
    """Which values of float64 x the type holds exactly (NaN and Inf where it has them)."""
    nan, inf = np.isnan(x), np.isinf(x)
    if t.fmt is not None:
        with np.errstate(invalid="ignore"):
            ok = quantize(x, t.fmt) == x
    else:
        # float32, tf32 and float64: the significand fits man_bits, the exponent the range.
        with np.errstate(invalid="ignore", over="ignore"):
            _, q = np.frexp(np.where(nan | inf, 0.0, x))
            scaled = np.ldexp(x, t.man_bits - np.maximum(q - 1, t.emin))
            ok = (scaled == np.trunc(scaled)) & (np.abs(x) <= t.max_value)
    if t.unsigned:
        ok &= ~(x < 0)
    return (ok & ~nan & ~inf) | (nan & t.has_nan) | (inf & t.has_inf)


def _operand(x, name: str, t: OperandType, shape: tuple[int, int]) -> np.ndarray:
    """x as a float64 array of `shape` holding values of type t; ValueError naming the operand."""
    try:
        arr = host_float_array(x).astype(np.float64)
    except TypeError as err:
        raise TypeError(f"{name}: {str(err).removeprefix('x: ')}") from None
    if arr.shape != shape:
        raise ValueError(f"{name}: the instruction takes shape {shape}, got {arr.shape}")
    bad = ~fits_type(arr, t)
    if bad.any():
        raise ValueError(f"{name}: {float(arr[bad][0])!r} is not a {t.label} value")
    return arr


def _scales(profile: EngineProfile, scale_a, scale_b) -> tuple[np.ndarray, np.ndarray] | None:
    if not profile.block_scaled:
        for name, s in (("scale_a", scale_a), ("scale_b", scale_b)):
            if s is not None:
                raise ValueError(f"{name}: {profile.instruction} is not block-scaled and takes no scales")
        return None
    if scale_a is None or scale_b is None:
        raise ValueError(f"scale_a and scale_b: {profile.instruction} needs a scale per block of both operands")
    blocks = profile.k // profile.block_size
    t = profile.scale_type
    sa = _operand(scale_a, "scale_a", t, (profile.m, blocks))
    sb = _operand(scale_b, "scale_b", t, (blocks, profile.n))
    return sa, sb


def _resolve(arch, instruction: str, scale_a, scale_b) -> EngineProfile:
    """The profile; a block-scaled name without a block size takes it from scale_a's shape, and
    mxf4nvf4 at block 16 without a scale type reads ue4m3 when every scale is a ue4m3 value."""
    key, _ = parse_instruction(instruction)
    block = scale = None
    if key.kind in ("mxf8f6f4", "mxf4", "mxf4nvf4") and scale_a is not None and scale_b is not None:
        cols = np.shape(scale_a)[-1] if np.ndim(scale_a) == 2 else 0
        block = key.k // cols if cols and key.k % cols == 0 else None
        if key.scale is None and key.kind == "mxf4nvf4" and (key.block or block) == 16:
            values = [host_float_array(s).astype(np.float64) for s in (scale_a, scale_b)]
            scale = "ue4m3" if all(fits_type(v, operand_type("ue4m3")).all() for v in values) else "ue8m0"
    return get_engine(arch, instruction, block=block, scale=scale)


# ----- integer helpers -----------------------------------------------------------------------
def _split(x: np.ndarray, t: OperandType) -> tuple[np.ndarray, np.ndarray]:
    """Finite float64 x as (sig, e): x = sig * 2^(e - t.man_bits), sig a signed int64 below
    2^(man_bits + 1), e >= t.emin (subnormals and zero take e = t.emin)."""
    _, q = np.frexp(x)
    e = np.where(x == 0, t.emin, np.maximum(q.astype(np.int64) - 1, t.emin))
    sig = np.ldexp(x, (t.man_bits - e).astype(np.int32)).astype(np.int64)
    return sig, e


def _finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def _shift_trunc(v: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """trunc(v * 2^sh) for int64 v (toward zero; sh may be negative or very large)."""
    mag = np.abs(v)
    r = np.where(sh >= 0, np.left_shift(mag, np.clip(sh, 0, 62)), np.right_shift(mag, np.clip(-sh, 0, 63)))
    return np.where(v < 0, -r, r)


def _shift_floor(v: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """floor(v * 2^sh) for int64 v (NumPy's right shift of a negative int64 is arithmetic)."""
    return np.where(sh >= 0, np.left_shift(v, np.clip(sh, 0, 62)), np.right_shift(v, np.clip(-sh, 0, 63)))


def _bit_length(mag: np.ndarray) -> np.ndarray:
    """Bits of non-negative int64 values below 2^62 (0 for 0)."""
    _, e = np.frexp(mag.astype(np.float64))
    e = e.astype(np.int64)
    # The float conversion may round up to the next power of two; step back where it did.
    below = np.left_shift(np.int64(1), np.maximum(e - 1, 0))
    return np.where((mag > 0) & (mag < below), e - 1, e)


def _requantize(total: np.ndarray, base: np.ndarray, man: int, emin: int, mode: Rounding) -> tuple:
    """total * 2^base cut to `man` fraction bits below its leading bit (below 2^emin: the
    subnormal grid), rounding RTZ, RDOWN or RNE. Returns (r, q): the value r * 2^q, r a signed
    int64."""
    mag = np.abs(total)
    lead = _bit_length(mag) - 1 + base
    q = np.maximum(lead, emin) - man
    sh = base - q
    if mode is Rounding.RDOWN:
        return _shift_floor(total, sh), q
    if mode is Rounding.RTZ:
        return _shift_trunc(total, sh), q
    k = np.clip(-sh, 1, 63)
    low = np.right_shift(mag, k)
    rem = mag - np.left_shift(low, k)
    half = np.left_shift(np.int64(1), k - 1)
    up = (rem > half) | ((rem == half) & ((low & 1) == 1))
    r = np.where(sh >= 0, np.left_shift(mag, np.clip(sh, 0, 62)), low + up)
    return np.where(total < 0, -r, r), q


def _to_float(r: np.ndarray, q: np.ndarray, emax: int) -> np.ndarray:
    """r * 2^q as float64, +-Inf from 2^(emax + 1) up; zero is +0."""
    v = np.ldexp(r.astype(np.float64), np.clip(q, -2000, 2000).astype(np.int32))
    return np.where(np.abs(v) >= 2.0 ** (emax + 1), np.copysign(np.inf, v), v)


def _underflow_sign(values: np.ndarray, total: np.ndarray) -> np.ndarray:
    """A negative sum that rounded to zero is -0, as IEEE rounding gives (CDNA3's last RNE)."""
    return np.where((values == 0) & (total < 0), -0.0, values)


def _normalize(total: np.ndarray, base: np.ndarray, how: Normalization) -> np.ndarray:
    """The fused sum total * 2^base as the output's value (float64 holding it)."""
    if how is Normalization.RNE_FP16:
        return _to_float(*_requantize(total, base, _F16[0], _F16[1], Rounding.RNE), _F16[2])
    bits = 13 if how is Normalization.RZ_E8M13 else 23
    mode = Rounding.RNE if how is Normalization.RNE_FP32 else Rounding.RTZ
    return _to_float(*_requantize(total, base, bits, _F32[1], mode), _F32[2])


# ----- special values ------------------------------------------------------------------------
def _special(products: np.ndarray, nonfinite: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The IEEE sum of the products that are not finite numbers (M, N, L) and of a non-finite C:
    NaN, +-Inf, or 0 where everything is finite."""
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.where(nonfinite, products, 0.0).sum(axis=-1)
        return total + np.where(np.isfinite(c), 0.0, c)


def _apply(values: np.ndarray, special: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(special), values, special)


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, L) and (L, N) as (M, N, L) products."""
    with np.errstate(invalid="ignore", over="ignore"):
        return a[:, None, :] * b.T[None, :, :]


def _nonfinite_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ~(np.isfinite(a)[:, None, :] & np.isfinite(b).T[None, :, :])


# ----- NVIDIA: truncated fused dot-product-add (T, ST, GST) ---------------------------------
def _fused_terms(sig: np.ndarray, exp: np.ndarray, frac: int, emax: np.ndarray, bits: int) -> np.ndarray:
    """Each term sig * 2^(exp - frac) truncated `bits` bits below 2^emax, as multiples of
    2^(emax - bits)."""
    return _shift_trunc(sig, bits - frac + exp - emax)


def _t_fdpa_step(p: EngineProfile, a, b, c, c_type: OperandType, sa=None, sb=None) -> np.ndarray:
    """One fused sum of A (M, L), B (L, N) and C (M, N); sa (M, L) and sb (L, N) are the block
    scales of each element (ST_FDPA: powers of two, which add to the product exponents)."""
    bits, zero = p.fraction_bits, p.zero_exponent
    siga, ea = _split(_finite(a), p.a_type)
    sigb, eb = _split(_finite(b), p.b_type)
    prod = siga[:, None, :] * sigb.T[None, :, :]
    pexp = ea[:, None, :] + eb.T[None, :, :]
    products, nonfinite = _outer(a, b), _nonfinite_products(a, b)
    if sa is not None:
        _, xa = _split(_finite(sa), p.scale_type)
        _, xb = _split(_finite(sb), p.scale_type)
        pexp = pexp + xa[:, None, :] + xb.T[None, :, :]
        with np.errstate(invalid="ignore", over="ignore"):
            products = products * _outer(sa, sb)
        nonfinite |= _nonfinite_products(sa, sb)
    pexp = np.where(prod == 0, zero, pexp)
    sigc, ec = _split(_finite(c), c_type)
    ec = np.where(sigc == 0, zero, ec)
    emax = np.maximum(pexp.max(axis=-1), ec)
    frac = p.a_type.man_bits + p.b_type.man_bits
    total = _fused_terms(prod, pexp, frac, emax[..., None], bits).sum(axis=-1)
    total += _fused_terms(sigc, ec, c_type.man_bits, emax, bits)
    values = _normalize(total, emax - bits, p.normalization)
    return _apply(values, _special(products, nonfinite, c))


def _chain(p: EngineProfile, a, b, c, step: Callable, sa=None, sb=None) -> np.ndarray:
    """split_k fused sums in K order, each result the next one's C."""
    c_type = p.c_type
    for k0 in range(0, p.k, p.group_size):
        cols = slice(k0, k0 + p.group_size)
        extra = () if sa is None else (sa[:, cols], sb[cols])
        c = step(p, a[:, cols], b[cols], c, c_type, *extra)
        c_type = p.d_type
    return c


def _t_fdpa(p, a, b, c, scales):
    if scales is None:
        return _chain(p, a, b, c, _t_fdpa_step)
    per_element = [np.repeat(scales[0], p.block_size, axis=1), np.repeat(scales[1], p.block_size, axis=0)]
    return _chain(p, a, b, c, _t_fdpa_step, *per_element)


def _fixed(x: np.ndarray, t: OperandType) -> np.ndarray:
    """Finite values of a narrow type as integers, in units of its smallest subnormal."""
    return np.ldexp(x, t.man_bits - t.emin).astype(np.int64)


def _gst_fdpa(p: EngineProfile, a, b, c, scales) -> np.ndarray:
    """GST_FDPA: products summed exactly per `subgroup`, each sum times its two scales aligned at
    the scales' exponents (not the sum's), fused with C truncated `fraction_bits` bits below the
    largest, RZ to float32. A subgroup of zero products, or a zero scale, aligns at zero_exponent."""
    g, bits, zero = p.subgroup, p.fraction_bits, p.zero_exponent
    prods = _fixed(a, p.a_type)[:, None, :] * _fixed(b, p.b_type).T[None, :, :]
    m, n, k = prods.shape
    groups = prods.reshape(m, n, k // g, g)
    sums, empty = groups.sum(axis=-1), (groups == 0).all(axis=-1)
    frac_ab = p.a_type.man_bits - p.a_type.emin + p.b_type.man_bits - p.b_type.emin
    reps = p.block_size // g
    sa, sb = np.repeat(scales[0], reps, axis=1), np.repeat(scales[1], reps, axis=0)
    siga, ea = _split(_finite(sa), p.scale_type)
    sigb, eb = _split(_finite(sb), p.scale_type)
    sig_scale = siga[:, None, :] * sigb.T[None, :, :]
    e_scale = ea[:, None, :] + eb.T[None, :, :]
    e_scale = np.where(empty | (sig_scale == 0), zero, e_scale)
    sigc, ec = _split(_finite(c), p.c_type)
    ec = np.where(sigc == 0, zero, ec)
    emax = np.maximum(e_scale.max(axis=-1), ec)
    frac = frac_ab + 2 * p.scale_type.man_bits
    total = _fused_terms(sums * sig_scale, e_scale, frac, emax[..., None], bits).sum(axis=-1)
    total += _fused_terms(sigc, ec, p.c_type.man_bits, emax, bits)
    values = _normalize(total, emax - bits, p.normalization)
    special = _special(_outer(sa, sb), _nonfinite_products(sa, sb), c)
    return _apply(values, special)


# ----- AMD CDNA3: truncate, then round down (TR, GTR) --------------------------------------
def _products(p: EngineProfile, a, b) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact products of finite A (M, L) and B (L, N): (sig, exp, fraction bits); zero products
    take part in no maximum."""
    siga, ea = _split(_finite(a), p.a_type)
    sigb, eb = _split(_finite(b), p.b_type)
    prod = siga[:, None, :] * sigb.T[None, :, :]
    pexp = np.where(prod == 0, _LEFT_OUT, ea[:, None, :] + eb.T[None, :, :])
    return prod, pexp, p.a_type.man_bits + p.b_type.man_bits


def _truncated_sum(prod, pexp, frac: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The products fused: (total, emax) with the sum total * 2^(emax - bits)."""
    emax = pexp.max(axis=-1)
    return _fused_terms(prod, pexp, frac, emax[..., None], bits).sum(axis=-1), emax


def _round_down_with_c(p: EngineProfile, dot, e_dot, c, c_type: OperandType, drop_far_c: bool) -> np.ndarray:
    """CDNA3's second stage: the fused products (dot * 2^(e_dot - F)) and C aligned at the larger
    exponent, rounded down to F2 + 1 and F fraction bits, added, rounded down to F2 bits below the
    leading bit (float32's subnormal grid below 2^-126), then RNE to float32."""
    f, f2 = p.fraction_bits, p.second_fraction_bits
    sigc, ec = _split(_finite(c), c_type)
    emax = np.maximum(e_dot, ec)
    dot = _shift_floor(dot, e_dot - emax + (f2 + 1 - f))
    cpart = _shift_floor(sigc, ec - emax + f - c_type.man_bits)
    if drop_far_c:
        cpart = np.where(ec < emax - f - 1, 0, cpart)
    total = dot + np.left_shift(cpart, f2 + 1 - f)
    r, q = _requantize(total, emax - f2 - 1, f2, _F32[1], Rounding.RDOWN)
    return _underflow_sign(_to_float(*_requantize(r, q, _F32[0], _F32[1], Rounding.RNE), _F32[2]), r)


def _cdna3_special(p: EngineProfile, a, b, c) -> np.ndarray:
    """As `_special`, with a product of 2^128 or more an Inf (it leaves float32's range)."""
    products = _outer(a, b)
    overflow = np.abs(np.where(np.isfinite(products), products, 0.0)) >= 2.0**128
    products = np.where(overflow, np.copysign(np.inf, products), products)
    return _special(products, _nonfinite_products(a, b) | overflow, c)


def _tr_fdpa_step(p: EngineProfile, a, b, c, c_type: OperandType) -> np.ndarray:
    prod, pexp, frac = _products(p, a, b)
    dot, e_dot = _truncated_sum(prod, pexp, frac, p.fraction_bits)
    values = _round_down_with_c(p, dot, e_dot, c, c_type, drop_far_c=False)
    return _apply(values, _cdna3_special(p, a, b, c))


def _gtr_fdpa_step(p: EngineProfile, a, b, c, c_type: OperandType) -> np.ndarray:
    """The even and the odd products fused apart, then added after rounding down to F bits below
    the larger of their exponents; C too far below (under F + 1 bits) drops out entirely."""
    prod, pexp, frac = _products(p, a, b)
    even, e_even = _truncated_sum(prod[..., 0::2], pexp[..., 0::2], frac, p.fraction_bits)
    odd, e_odd = _truncated_sum(prod[..., 1::2], pexp[..., 1::2], frac, p.fraction_bits)
    e_dot = np.maximum(e_even, e_odd)
    dot = _shift_floor(even, e_even - e_dot) + _shift_floor(odd, e_odd - e_dot)
    values = _round_down_with_c(p, dot, e_dot, c, c_type, drop_far_c=True)
    return _apply(values, _cdna3_special(p, a, b, c))


# ----- exact sums and FMA chains on Python integers -------------------------------------------
def _round_int(num: int, exp: int, fmt: tuple[int, int, int]) -> float:
    """num * 2^exp rounded to nearest even in a binary format (fraction bits, emin, emax), with
    subnormals and +-Inf on overflow, as a Python float (exact: the result fits a float64)."""
    man, emin, emax = fmt
    if num == 0:
        return 0.0
    mag = abs(num)
    q = max(mag.bit_length() - 1 + exp, emin) - man
    sh = q - exp
    if sh <= 0:
        r = mag << -sh
    else:
        r, rem, half = mag >> sh, mag & ((1 << sh) - 1), 1 << (sh - 1)
        r += rem > half or (rem == half and r & 1)
    value = math.inf if r.bit_length() - 1 + q > emax else math.ldexp(r, q)
    return -value if num < 0 else value


def _exact_terms(x: float) -> tuple[int, int]:
    """A finite float as (integer, exponent) with x = integer * 2^exponent."""
    m, e = math.frexp(x)
    return int(m * (1 << 53)), e - 53


def _exact_sum(terms: list[tuple[int, int]], fmt, negative_zero: bool = False) -> float:
    """sum of integer * 2^exponent terms, rounded once (a negative sum that underflows is -0). An
    exact zero is +0, or -0 where negative_zero says every term was a negative zero (IEEE FMA)."""
    live = [(v, e) for v, e in terms if v]
    if not live:
        return -0.0 if negative_zero else 0.0
    base = min(e for _, e in live)
    total = sum(v << (e - base) for v, e in live)
    return _round_int(total, base, fmt) if total else 0.0


def _e_fdpa_step(p: EngineProfile, a, b, c, c_type: OperandType) -> np.ndarray:
    """E_FDPA: the products and C summed exactly, one RNE to float32 (an exact zero is +0, as a
    fixed-point sum gives; MMA-Sim's model agrees)."""
    rows = [[_exact_terms(x) for x in row] for row in _finite(a).tolist()]
    cols = [[_exact_terms(x) for x in col] for col in _finite(b).T.tolist()]
    fc = _finite(c).tolist()
    values = np.empty(c.shape)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            terms = [(va * vb, ea + eb) for (va, ea), (vb, eb) in zip(row, col, strict=True)]
            terms.append(_exact_terms(fc[i][j]))
            values[i, j] = _exact_sum(terms, _F32)
    return _apply(values, _special(_outer(a, b), _nonfinite_products(a, b), c))


def _fma64(a: float, b: float, c: float) -> float:
    """IEEE float64 fused multiply-add (RNE), exact on Python integers."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a * b + c  # NaN or Inf by IEEE rules
    if not math.isfinite(c):
        return c  # an exact finite product leaves C's Inf or NaN as it is (a * b may overflow a float)
    (va, ea), (vb, eb) = _exact_terms(a), _exact_terms(b)
    negative_zero = math.copysign(1.0, a) * math.copysign(1.0, b) < 0 and math.copysign(1.0, c) < 0
    return _exact_sum([(va * vb, ea + eb), _exact_terms(c)], _F64, negative_zero)


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """IEEE float32 fused multiply-add (RNE) of float32 values held in float64 arrays. The product
    is exact in float64; the sum is s + err exactly (Knuth's TwoSum), and s rounds to float32 as
    the exact sum does unless s is a float32 tie, where err breaks it."""
    with np.errstate(invalid="ignore", over="ignore"):
        prod = a * b
        s = prod + c
        back = s - prod
        err = (prod - (s - back)) + (c - back)
        _, q = np.frexp(s)
        half_ulp = np.ldexp(1.0, np.maximum(q - 1, -126) - 24)
        ratio = np.abs(s) / half_ulp
        tie = np.isfinite(s) & (err != 0) & (ratio == np.trunc(ratio)) & (np.fmod(ratio, 2.0) == 1.0)
        s = np.where(tie, s + np.sign(err) * half_ulp, s)
        return s.astype(np.float32).astype(np.float64)


def _fma(p: EngineProfile, a, b, c, scales) -> np.ndarray:
    """A chain of FMAs over K in the output's precision."""
    acc = np.broadcast_to(c, (p.m, p.n)).copy()
    if p.d_type.name == "f64":
        fma = np.frompyfunc(_fma64, 3, 1)
        with np.errstate(invalid="ignore", over="ignore"):
            for k in range(p.k):
                acc = fma(a[:, k][:, None], b[k][None, :], acc).astype(np.float64)
        return acc
    for k in range(p.k):
        acc = _fma32(a[:, k][:, None], b[k][None, :], acc)
    return acc


# ----- AMD CDNA2: float32 multiply and add, flushing subnormals -------------------------------
def _flush(x: np.ndarray, keep_sign: bool, emin: int = _F32[1]) -> np.ndarray:
    """Float32 values below 2^emin (the subnormals of float32, or of the type they came from) to
    zero: +0, or the signed zero of x."""
    tiny = np.abs(x) < np.float32(2.0**emin)
    return np.where(tiny, x * np.float32(0.0) if keep_sign else np.float32(0.0), x)


def _ftz_mul_add(p: EngineProfile, a, b, c, scales) -> np.ndarray:
    """Products of flushed inputs, each flushed; pairs (or two pairs, then their sum) added and
    added to C, every sum flushed: float32 RNE throughout."""
    with np.errstate(invalid="ignore", over="ignore"):
        a32 = _flush(a.astype(np.float32), keep_sign=False, emin=p.a_type.emin)
        b32 = _flush(b.astype(np.float32), keep_sign=False, emin=p.b_type.emin)
        prod = _flush(a32[:, None, :] * b32.T[None, :, :], keep_sign=True)
        acc = _flush(c.astype(np.float32), keep_sign=False)
        for k0 in range(0, p.k, p.subgroup):
            s = _flush(prod[..., k0] + prod[..., k0 + 1], keep_sign=True)
            if p.subgroup == 4:
                s2 = _flush(prod[..., k0 + 2] + prod[..., k0 + 3], keep_sign=True)
                s = _flush(s + s2, keep_sign=True)
            acc = _flush(acc + s, keep_sign=True)
    return acc.astype(np.float64)


# ----- the instruction -----------------------------------------------------------------------
def _chained(step: Callable) -> Callable:
    return lambda p, a, b, c, scales: _chain(p, a, b, c, step)


_RUN = {
    Algorithm.T_FDPA: _t_fdpa,
    Algorithm.ST_FDPA: _t_fdpa,
    Algorithm.GST_FDPA: _gst_fdpa,
    Algorithm.TR_FDPA: _chained(_tr_fdpa_step),
    Algorithm.GTR_FDPA: _chained(_gtr_fdpa_step),
    Algorithm.E_FDPA: _chained(_e_fdpa_step),
    Algorithm.FTZ_MUL_ADD: _ftz_mul_add,
    Algorithm.FMA: _fma,
}
_DTYPES = {"f16": (np.float16, np.uint16), "f32": (np.float32, np.uint32), "f64": (np.float64, np.uint64)}


def run_algorithm(p: EngineProfile, a: np.ndarray, b: np.ndarray, c: np.ndarray, scales) -> np.ndarray:
    """D = A B + C by p's algorithm on checked float64 operands of any M and N (p's m and n are
    the arrays'); scales: (scale_a, scale_b) values of a block-scaled kind, else None. Returns
    float64 holding D's values (NaN without its bit pattern)."""
    return _RUN[p.algorithm](p, a, b, c, scales)


def _finish(values: np.ndarray, p: EngineProfile) -> np.ndarray:
    """The output array in D's dtype, NaNs written with the instruction's bit pattern."""
    dtype, bits = _DTYPES[p.d_type.name]
    with np.errstate(over="ignore"):
        out = values.astype(dtype)
    nan = np.isnan(out)
    if nan.any():
        out.view(bits)[nan] = p.nan_bits
    return out


def mma(
    arch: Arch | str,
    instruction: str,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    scale_a: ArrayLike | None = None,
    scale_b: ArrayLike | None = None,
) -> np.ndarray:
    """D = A B + C for one matrix instruction, bit-exact to MMA-Sim's algorithms.

    arch: 'volta', 'turing', 'ampere', 'ada', 'hopper', 'blackwell', 'rtx_blackwell', 'cdna1',
    'cdna2' or 'cdna3'. instruction: its PTX or LLVM name with shape and types, e.g.
    'mma.m16n8k16.f32.f16.f16.f32', 'wgmma.m64n8k32.f32.e4m3.e4m3',
    'tcgen05.mma.m128n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.ue4m3', 'mfma.f32_16x16x32_fp8_fp8'
    (`engines()` lists them all). a (M, K), b (K, N) and c (M, N): arrays of values of the
    operand types (checked; a ValueError names the operand). scale_a (M, K/block) and scale_b
    (K/block, N): the block scales' values (ue8m0 or ue4m3) of a block-scaled kind; a name
    without `.blockN` takes the block from scale_a's shape, and mxf4nvf4 at block 16 without
    `.ue8m0` or `.ue4m3` reads ue4m3 when every scale is one. Returns D as a float32, float16 or
    float64 array (D's type).
    """
    profile = _resolve(arch, instruction, scale_a, scale_b)
    m, n, k = profile.m, profile.n, profile.k
    A = _operand(a, "a", profile.a_type, (m, k))
    B = _operand(b, "b", profile.b_type, (k, n))
    C = _operand(c, "c", profile.c_type, (m, n))
    scales = _scales(profile, scale_a, scale_b)
    return _finish(run_algorithm(profile, A, B, C, scales), profile)
