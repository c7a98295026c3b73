"""Scale rules of block-scaled formats, vectorised over blocks in float32.

Every function takes per-block statistics (float32 arrays, one entry per block) and returns
float32 scale values. Each step is a single float32 operation, in the order DESIGN.md section 3
gives, so results are the bits the reference recipes produce. A block holding NaN or Inf has a
NaN amax and gets a NaN scale.
"""

from __future__ import annotations

import numpy as np

from ...formats import DoubleQuant, ScaledFormat, ScaleRule
from ..kernels.params import NanPolicy
from ..kernels.rounding import Rounding
from .elements import decode_values, encode_values, round_values, saturating

F32 = np.float32
_E8M0_MIN, _E8M0_MAX = -127, 127
_FLT_MAX = np.finfo(np.float32).max


def _exponent_field(a: np.ndarray) -> np.ndarray:
    return (a.view(np.int32) >> 23) & 0xFF


def pow2_exponent(amax: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    """Unbiased E8M0 exponent of each block (int32; meaningless where amax is NaN)."""
    amax = np.where(np.isnan(amax), F32(0), amax).astype(np.float32)
    bits = amax.view(np.int32)
    emax = fmt.element_emax
    rule = fmt.rule
    if rule is ScaleRule.RCEIL:
        d = amax / F32(fmt.element_max)
        dbits = d.view(np.int32)
        field, frac = (dbits >> 23) & 0xFF, dbits & 0x7FFFFF
        # ceil(log2(d)), exactly: subnormal d lies in (2^-127, 2^-126] (-> -126) or below (-> -127).
        e = np.where(field > 0, field - 127 + (frac != 0), np.where(frac > (1 << 22), -126, -127))
    elif rule is ScaleRule.EVEN:
        mbits = fmt.element_mantissa_bits
        rounded = (bits + (1 << (23 - mbits - 1))) & 0x7F800000
        e = (rounded >> 23) - 127 - emax
    else:
        e = _exponent_field(amax) - 127 - emax
        if rule is ScaleRule.CEIL:
            e = e + ((bits & 0x7FFFFF) != 0)
    return np.clip(e, _E8M0_MIN, _E8M0_MAX).astype(np.int32)


def round_to_scale_format(s: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    """s clamped to [scale_min, scale_max] (where given) and rounded (rne) to the scale format,
    saturating at its largest value (a finite block never gets an infinite scale)."""
    if fmt.scale_min is not None:
        s = np.maximum(s, F32(fmt.scale_min))
    if fmt.scale_max is not None:
        s = np.minimum(s, F32(fmt.scale_max))
    if fmt.scale is None or isinstance(fmt.scale, DoubleQuant):
        return s.astype(np.float32)  # double quantization happens over all blocks at once
    return round_values(s.astype(np.float32), saturating(fmt.scale)).astype(np.float32)


def absmax_scale(amax: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    """amax / max(element), rounded to the scale format."""
    return round_to_scale_format(amax / F32(fmt.element_max), fmt)


def nvfp4_tensor_scale(x: np.ndarray, fmt: ScaledFormat) -> F32:
    """S_enc = (max(scale) * max(element)) / amax(tensor), at most FLT_MAX; 1 for an all-zero
    tensor. amax is taken over the finite values (blocks with NaN or Inf become NaN anyway)."""
    amax = F32(max(x.max(), -x.min())) if x.size else F32(0)  # two passes, no temporary array
    if not np.isfinite(amax):
        finite = np.abs(x[np.isfinite(x)])
        amax = F32(finite.max()) if finite.size else F32(0)
    return nvfp4_scale_from_amax(amax, fmt)


def nvfp4_scale_from_amax(amax: F32, fmt: ScaledFormat) -> F32:
    """S_enc of a tensor whose largest finite |x| is amax: (top * max(element)) / amax, where top is
    `fmt.tensor_scale_max` or else the scale format's largest value."""
    if amax == 0:
        return F32(1)
    top = fmt.scale.max if fmt.tensor_scale_max is None else fmt.tensor_scale_max
    with np.errstate(over="ignore"):
        s = F32(F32(top) * F32(fmt.element_max)) / amax
    return min(s, F32(np.finfo(np.float32).max))


def nvfp4_block_scales(
    amax: np.ndarray, s_enc: F32, fmt: ScaledFormat, factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(dec_b, enc_b) of TransformerEngine's recipe: dec_b = e4m3(amax_b * (S_enc * (1/max))),
    enc_b = 1 / (dec_b * (1/S_enc)), 0 where dec_b is 0. A search rule's candidate `factor`
    multiplies the unrounded dec_b (in float32) before it is rounded."""
    dec = round_to_scale_format((amax * F32(s_enc * F32(F32(1) / F32(fmt.element_max)))) * F32(factor), fmt)
    with np.errstate(divide="ignore"):
        enc = np.where(dec == 0, F32(0), F32(1) / (dec * (F32(1) / s_enc))).astype(np.float32)
    return dec, enc


def reciprocal(s: np.ndarray) -> np.ndarray:
    """1 / s in float32, 0 where s is 0 (an all-zero block quantizes to zeros)."""
    with np.errstate(divide="ignore"):
        return np.where(s == 0, F32(0), F32(1) / s).astype(np.float32)


def zero_point_scale(lo: np.ndarray, hi: np.ndarray, fmt: ScaledFormat) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric integer scale and zero point: s = (hi - lo) / qmax over [min(x, 0), max(x, 0)],
    zp = round(-lo / s) clipped to the code range (float32, round half even)."""
    qmax = F32(fmt.element.max)
    with np.errstate(over="ignore", invalid="ignore"):
        span = hi - lo
        # hi - lo past float32's range: hi / qmax - lo / qmax is the same ratio, rounded otherwise, and
        # saturated at FLT_MAX (a 1-bit code); a finite block never gets an infinite scale
        wide = np.minimum(hi / qmax - lo / qmax, _FLT_MAX)
        ratio = np.where(np.isinf(span) & np.isfinite(hi) & np.isfinite(lo), wide, span / qmax)
    s = round_to_scale_format(ratio.astype(np.float32), fmt)
    with np.errstate(divide="ignore", invalid="ignore"):
        zp = np.where(s == 0, F32(0), np.clip(np.rint(-lo / s), F32(0), qmax)).astype(np.float32)
    return s, zp


def double_quantize(s: np.ndarray, dq: DoubleQuant) -> tuple[np.ndarray, np.ndarray, np.ndarray, F32]:
    """QLoRA's double quantization of scale values s: (values, codes, absmax per group, offset).

    offset = mean(s) (accumulated in float64, rounded to float32); d = s - offset in groups of
    `dq.block` (the last group zero-padded); code = nearest map value of d * (1 / max|d|), ties
    to the lower code; value = map[code] * max|d| + offset.
    """
    offset = F32(np.mean(s, dtype=np.float64)) if s.size else F32(0)
    d = (s - offset).astype(np.float32)
    group = dq_group(dq, d.size)
    pad = (-d.size) % group
    rows = np.concatenate([d, np.zeros(pad, np.float32)]).reshape(-1, group)
    a2 = np.max(np.abs(rows), axis=1)
    v = rows * reciprocal(a2)[:, None]
    codes = np.minimum(np.searchsorted(dq.code.midpoints, v, side="left"), dq.code.n_codes - 1)
    values = dq_values(codes.reshape(-1)[: d.size], a2, offset, dq)
    return values, codes.reshape(-1)[: d.size].astype(np.uint8), a2.astype(np.float32), offset


def dq_group(dq: DoubleQuant, scales: int) -> int:
    """Scales per double-quantization group: dq.block, or all of them when there are fewer (a
    group longer than the scales holds them all; zero padding would not change its absmax)."""
    return max(1, min(dq.block, scales))


def dq_values(codes: np.ndarray, a2: np.ndarray, offset: F32, dq: DoubleQuant) -> np.ndarray:
    """Scale values of double-quantized codes: map[code] * absmax(group) + offset, in float32."""
    group = np.repeat(a2, dq_group(dq, codes.size))[: codes.size]
    return ((dq.code.table[codes.astype(np.int64)] * group) + F32(offset)).astype(np.float32)


def scale_codes(values: np.ndarray, spec: ScaledFormat) -> np.ndarray:
    """Codes of scale values in the scale format; an exact-float32 scale's code is its IEEE bits."""
    if isinstance(spec.scale, DoubleQuant):
        raise TypeError("double-quantized scale codes come with their state (double_quantize)")
    if spec.scale is None:
        return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return encode_values(values.astype(np.float32), spec.scale, Rounding.RNE, 0, NanPolicy.ZERO)


def scale_values(codes: np.ndarray, spec: ScaledFormat) -> np.ndarray:
    """Scale values (float32) of scale codes; the inverse of `scale_codes`."""
    if spec.scale is None:
        return np.ascontiguousarray(codes, dtype=np.uint32).view(np.float32)
    return decode_values(np.asarray(codes), spec.scale)
