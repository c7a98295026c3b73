"""Element formats on the host: flat float arrays rounded, encoded and decoded by the compiled
drivers. Inputs here are already validated (see `inputs`); the public API (`codec`), the scale
rules and the block pipeline all round through these functions.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ...formats import FloatFormat, IntFormat, Overflow, Ties
from ..kernels import element_scalar as g
from ..kernels import scalar
from ..kernels.dispatch import Out, Target, as_device_array, device_array, launch_on_device, run, to_device
from ..kernels.params import NanPolicy, fast_params, kernel_params
from ..kernels.rounding import Rounding

ElementLike = FloatFormat | IntFormat


@functools.cache
def saturating(e: ElementLike) -> ElementLike:
    """e with saturating overflow. Block formats saturate their elements and scales: the scale
    was chosen so that the block fits, and a finite block never gets an infinite scale.
    SATURATE_FINITE already saturates (Inf input included): e is kept as it is."""
    if isinstance(e, FloatFormat) and e.overflow not in (Overflow.SATURATE, Overflow.SATURATE_FINITE):
        return dataclasses.replace(e, overflow=Overflow.SATURATE, name=None)
    return e


def bits_view(flat: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Integer view of a contiguous float32/float64 array and its IEEE (mantissa, exponent) bits."""
    if flat.dtype == np.float32:
        return flat.view(np.int32), 23, 8
    return flat.view(np.int64), 52, 11


def _fast(flat: np.ndarray, fmt: ElementLike, mode: Rounding, for_encode: bool) -> np.ndarray | None:
    """Parameters of the vectorized float32 round-to-nearest-even path, when it applies."""
    if flat.dtype != np.float32 or mode is not Rounding.RNE:
        return None
    return fast_params(fmt, for_encode)


_NO_BITS = np.zeros(0, np.int64)

# Rounding modes the bit-pattern path takes (stochastic rounding draws per element: general path).
_BITS_MODES = (Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RUP, Rounding.RDOWN)


def _bits_eligible(fmt: ElementLike) -> bool:
    """Whether `element_scalar` rounds fmt: a float format whose every value is a float32 and
    whose quantum is uniform below float32's lowest normal binade (see that module)."""
    return (
        isinstance(fmt, FloatFormat)
        and fmt.man_bits <= 22  # the rounding point t is then at least 1 (see rounded_magnitude)
        and fmt.emin >= -127
        and fmt.min_subnormal_exponent >= -149
        and fmt.emax <= 127
    )


def _f32_bits(value: float) -> int:
    """The float32 bit pattern of a float64 value as a signed int32 (its narrowing, as the
    kernels narrow table values)."""
    return int(np.array(value, np.float64).astype(np.float32).view(np.int32))


def _code_bits(code: int, table: np.ndarray) -> int:
    """The int32 result of the general path for a code (-1: NaN without a NaN code)."""
    return _f32_bits(np.nan if code < 0 else table[code])


def bits_kind(fmt: FloatFormat, mode: Rounding) -> int:
    """How `element_scalar` rounds the magnitude under mode (its ROUND_* constants)."""
    if mode is Rounding.RNA or (mode is Rounding.RNE and fmt.ties is Ties.AWAY):
        return g.ROUND_TIES_UP
    return g.ROUND_EVEN if mode is Rounding.RNE else g.ROUND_DIRECTED


@functools.cache
def bits_params(fmt: ElementLike, mode: Rounding) -> np.ndarray | None:
    """The int64 vector of `element_scalar` for fmt under mode, or None where that path does not
    apply. The results that do not depend on the magnitude come from the general path's own
    scalar functions (`scalar.encode_one`, `scalar.finish_float`), run here in Python, so they
    are its results by construction. Cached per format and mode: the kernels only read it."""
    if mode not in _BITS_MODES or not _bits_eligible(fmt):
        return None
    p = kernel_params(fmt)
    table = np.asarray(fmt.values, dtype=np.float64)
    m, emin = fmt.man_bits, fmt.emin
    out = np.zeros(g.G_COUNT, np.int64)
    out[g.G_M], out[g.G_EMIN], out[g.G_C] = m, emin, p[scalar.P_C]
    out[g.G_MAXBITS] = _f32_bits(fmt.max)
    out[g.G_MINBITS] = 0 if fmt.subnormals else _f32_bits(fmt.min_normal)
    out[g.G_QBITS] = _f32_bits(np.ldexp(1.0, emin - m))
    out[g.G_HALFBITS] = _f32_bits(np.ldexp(1.0, emin - m - 1)) if emin - m - 1 >= -149 else 0
    out[g.G_SIGNED] = fmt.signed
    out[g.G_SMALL_ODD] = p[scalar.P_C] & 1
    out[g.G_UP_POS], out[g.G_UP_NEG] = mode is Rounding.RUP, mode is Rounding.RDOWN
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan], np.float32).view(np.int32)
    for index, b in zip(range(g.G_ZERO_POS, g.G_NAN_NEG + 1), specials, strict=True):
        out[index] = _code_bits(scalar.encode_one(int(b), 0, 23, 8, p, int(mode), 0, 0, _NO_BITS), table)
    for neg in (0, 1):
        over = scalar.finish_float(p[scalar.P_MAXMAG] + 1, neg, p, int(mode))
        out[g.G_OVER_POS + neg] = _code_bits(over, table)
        out[g.G_ROUND_ZERO_POS + neg] = _code_bits(scalar.finish_float(0, neg, p, int(mode)), table)
    negative = scalar.finish_float(min(1, p[scalar.P_MAXMAG]), 1, p, int(mode))
    out[g.G_NEG_UNSIGNED] = _code_bits(negative, table)
    return out


def random_args(sr_bits: int, random_bits: np.ndarray | None) -> tuple[int, np.ndarray]:
    """The kernels' (sr, rbits): sr random bits per element (0: the 62-bit rule without sr_bits)
    and the explicit random numbers flattened in C order (empty: drawn from the seed)."""
    if random_bits is None:
        return sr_bits, _NO_BITS
    return sr_bits, np.ascontiguousarray(random_bits, dtype=np.int64).reshape(-1)


def draw_bits(seed: int, sr_bits: int, size: int, target: Target = Target.CPU) -> np.ndarray:
    """The sr_bits-bit random numbers that elements 0 .. size - 1 draw from `seed` (int64)."""
    out = np.empty(size, np.int64)
    if size:
        run("draw", target, size, seed, sr_bits, Out(out))
    return out


def quantize_flat(
    flat: np.ndarray,
    fmt: ElementLike,
    mode: Rounding,
    seed: int,
    target: Target,
    out: np.ndarray,
    sr_bits: int = 0,
    random_bits: np.ndarray | None = None,
) -> np.ndarray:
    """Values of a contiguous 1-D float32/float64 array rounded to `fmt`, written into `out`.
    Stochastic rounding takes sr_bits random bits per element (0: 62, the rule without sr_bits),
    element i the i-th of `random_bits` (C order) where given, else drawn from (seed, i)."""
    if flat.size == 0:
        return out
    fast = _fast(flat, fmt, mode, for_encode=False)
    if fast is not None:
        kernel = (
            "quantize_fast"
            if target is Target.CUDA
            else ("quantize_int" if isinstance(fmt, IntFormat) else "quantize_float")
        )
        run(kernel, target, flat.size, flat, fast, Out(out))
        return out
    rounding = bits_params(fmt, mode) if flat.dtype == np.float32 else None
    if rounding is not None:
        kind = bits_kind(fmt, mode)
        run("quantize_bits", target, flat.size, flat.view(np.int32), rounding, kind, Out(out.view(np.int32)))
        return out
    bits, in_m, in_e = bits_view(flat)
    table = np.asarray(fmt.values, dtype=np.float64)
    sr, rbits = random_args(sr_bits, random_bits)
    params = kernel_params(fmt)
    run("quantize", target, flat.size, bits, in_m, in_e, params, int(mode), seed, sr, rbits, table, Out(out))
    return out


def round_values(
    x: np.ndarray,
    fmt: ElementLike,
    mode: Rounding = Rounding.RNE,
    seed: int = 0,
    target: Target = Target.CPU,
    sr_bits: int = 0,
    random_bits: np.ndarray | None = None,
) -> np.ndarray:
    """x (float32 or float64 host array) rounded to `fmt`, same shape and dtype (random_bits, where
    given, of x's shape: see `quantize_flat`)."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    return quantize_flat(flat, fmt, mode, seed, target, out, sr_bits, random_bits).reshape(np.shape(x))


def quantize_device(
    x, fmt: ElementLike, mode: Rounding, seed: int, stream=0, sr_bits: int = 0, random_bits: np.ndarray | None = None
):
    """A CUDA device array rounded to `fmt`, as a new device array; every copy and launch is on
    `stream` (a Numba stream, 0 the default one), so that the result is ordered after x's producer."""
    d = as_device_array(x)
    if d.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: device arrays must be float32 or float64, got {d.dtype}")
    if not d.is_c_contiguous():
        raise ValueError("x: device arrays must be C-contiguous")
    flat = d.reshape(d.size)
    out = device_array(d.size, d.dtype, stream)
    fast = fast_params(fmt, False) if d.dtype == np.float32 and mode is Rounding.RNE else None
    if d.size and fast is not None:
        launch_on_device("quantize_fast", d.size, flat, to_device(fast, stream), out, stream=stream)
    elif d.size:
        in_m, in_e = (23, 8) if d.dtype == np.float32 else (52, 11)
        bits = flat.view(np.int32 if d.dtype == np.float32 else np.int64)
        table = to_device(np.asarray(fmt.values, dtype=np.float64), stream)
        params = to_device(kernel_params(fmt), stream)
        sr, rbits = random_args(sr_bits, random_bits)
        rbits = to_device(rbits, stream)
        args = (bits, in_m, in_e, params, int(mode), seed, sr, rbits, table, out)
        launch_on_device("quantize", d.size, *args, stream=stream)
    return out.reshape(d.shape)


def encode_values(
    x: np.ndarray,
    fmt: ElementLike,
    mode: Rounding,
    seed: int,
    policy: NanPolicy,
    target: Target = Target.CPU,
    sr_bits: int = 0,
    random_bits: np.ndarray | None = None,
) -> np.ndarray:
    """Codes of x (float32 or float64 host array) in `fmt`, same shape. NaN input follows
    `policy` for a format without a NaN code (the caller has refused it for RAISE). Stochastic
    rounding as in `quantize_flat`."""
    flat = np.ascontiguousarray(x).reshape(-1)
    codes = np.empty(flat.size, dtype=fmt.code_dtype)
    fast = _fast(flat, fmt, mode, for_encode=True)
    if flat.size and fast is not None and target is Target.CPU:
        run("encode_fast", target, flat.size, flat, fast, kernel_params(fmt, policy), Out(codes))
    elif flat.size:
        bits, in_m, in_e = bits_view(flat)
        sr, rbits = random_args(sr_bits, random_bits)
        params = kernel_params(fmt, policy)
        run("encode", target, flat.size, bits, in_m, in_e, params, int(mode), seed, sr, rbits, Out(codes))
    return codes.reshape(np.shape(x))


def check_codes(codes: np.ndarray, n_codes: int, what: str) -> None:
    """Raise unless codes is an integer array with every code in [0, n_codes)."""
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= n_codes):
        raise ValueError(f"codes must lie in [0, {n_codes - 1}] for {what}")


def decode_values(codes: np.ndarray, fmt: ElementLike, dtype=np.float32, target: Target = Target.CPU) -> np.ndarray:
    """Values of element codes (checked to lie in the format's range) as float32 or float64."""
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {out_dtype}")
    check_codes(codes, fmt.n_codes, f"a {fmt.bits}-bit format")
    flat = np.ascontiguousarray(codes).reshape(-1).astype(np.int64)
    out = np.empty(flat.size, dtype=out_dtype)
    if flat.size:
        run("decode", target, flat.size, flat, np.asarray(fmt.values, dtype=np.float64), Out(out))
    return out.reshape(codes.shape)
