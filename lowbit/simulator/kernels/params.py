"""Host side: a format spec becomes the int64 parameter vector the kernels read.

The kernels see formats only through this vector, so one compiled kernel serves every format.
Index names are module constants, which Numba folds into the compiled code.
"""

from __future__ import annotations

import enum
import functools

import numpy as np

from ...formats import FloatFormat, IntFormat, Overflow, Ties
from .scalar import (
    F_COUNT,
    F_CSUB,
    F_HI,
    F_INF_OUT,
    F_IS_INT,
    F_LO,
    F_MAX,
    F_MIN_NORMAL,
    F_NAN_NEG,
    F_NAN_POS,
    F_NEGZERO,
    F_OVER,
    F_SPLIT,
    OVERFLOW_INF,
    OVERFLOW_NAN,
    OVERFLOW_SATURATE,
    P_C,
    P_COUNT,
    P_E_OVER,
    P_EMIN,
    P_HAS_ZERO,
    P_INF,
    P_IS_INT,
    P_M,
    P_MASK,
    P_MAXMAG,
    P_NAN_NEG,
    P_NAN_POS,
    P_NEG_UNSIGNED,
    P_NEGMAX,
    P_NEGZERO,
    P_OVERFLOW,
    P_SIGN_SHIFT,
    P_TIES_AWAY,
    P_ZERO_NEG,
    P_ZERO_POS,
)

# SATURATE_FINITE saturates finite overflow as SATURATE does; its Inf input is sent to that same
# overflow path by P_INF = -1 (see _float_params).
_OVERFLOW_CODES = {
    Overflow.SATURATE: OVERFLOW_SATURATE,
    Overflow.SATURATE_FINITE: OVERFLOW_SATURATE,
    Overflow.INF: OVERFLOW_INF,
    Overflow.NAN: OVERFLOW_NAN,
}


class NanPolicy(enum.Enum):
    """What `encode` does with NaN input for a format that has no NaN code."""

    RAISE = "raise"
    ZERO = "zero"


def _float_params(fmt: FloatFormat, p: np.ndarray) -> None:
    p[P_M] = fmt.man_bits
    p[P_EMIN] = fmt.emin
    p[P_C] = 0 if fmt.subnormals else 1 << fmt.man_bits
    p[P_E_OVER] = fmt.emax + 1
    p[P_MAXMAG] = fmt.max_code
    p[P_SIGN_SHIFT] = fmt.sign_shift
    # -1 makes encode_one treat Inf input as an overflow: no Inf, or SATURATE_FINITE.
    p[P_INF] = fmt.inf_code if fmt.keeps_inf else -1
    p[P_OVERFLOW] = _OVERFLOW_CODES[fmt.overflow]
    p[P_TIES_AWAY] = fmt.ties is Ties.AWAY
    p[P_NEGZERO] = fmt.has_negative_zero
    p[P_HAS_ZERO] = fmt.has_zero
    nan_pos = fmt.nan_code(False)
    sign = (1 << fmt.sign_shift) if fmt.signed else 0
    if fmt.has_zero:
        p[P_ZERO_POS], p[P_ZERO_NEG] = 0, sign if fmt.has_negative_zero else 0
    elif nan_pos is not None:
        p[P_ZERO_POS] = p[P_ZERO_NEG] = nan_pos
    else:  # neither zero nor NaN: zero goes to the smallest value of its sign
        p[P_ZERO_POS], p[P_ZERO_NEG] = 0, sign
    # An unsigned format has no negative values: NaN or its smallest value (FloatFormat.negative_is_nan).
    p[P_NEG_UNSIGNED] = nan_pos if fmt.negative_is_nan else 0
    if nan_pos is not None:
        p[P_NAN_POS], p[P_NAN_NEG] = nan_pos, fmt.nan_code(True)


def _int_params(fmt: IntFormat, p: np.ndarray) -> None:
    p[P_IS_INT] = 1
    # Quantum 2^0: put the "normal" range above every input the kernel rounds.
    p[P_M] = p[P_EMIN] = p[P_E_OVER] = fmt.bits
    p[P_MAXMAG] = fmt.max
    p[P_NEGMAX] = -fmt.min
    p[P_MASK] = fmt.n_codes - 1
    p[P_INF] = -1


def kernel_params(fmt: FloatFormat | IntFormat, nan: NanPolicy = NanPolicy.RAISE) -> np.ndarray:
    """The parameter vector of `fmt`.

    NaN input maps to the format's NaN code; for a format without one it maps to -1 (quantize
    writes NaN, encode has already refused on the host) or, with NanPolicy.ZERO, to code 0.
    """
    p = np.zeros(P_COUNT, dtype=np.int64)
    p[P_NAN_POS] = p[P_NAN_NEG] = 0 if nan is NanPolicy.ZERO else -1
    if isinstance(fmt, IntFormat):
        _int_params(fmt, p)
    else:
        _float_params(fmt, p)
    return p


def _fast_eligible(fmt: FloatFormat | IntFormat) -> bool:
    if isinstance(fmt, IntFormat):
        return fmt.bits <= 24
    # Every value, quantum and constant of the fast path must be a float32 normal or subnormal.
    # Veltkamp splitting to a single significant bit (man_bits 0, P3109's P = 1) misrounds ties.
    return (
        fmt.signed
        and fmt.subnormals
        and fmt.ties is Ties.EVEN
        and 1 <= fmt.man_bits <= 23
        and fmt.emax <= 127
        and fmt.emin - fmt.man_bits >= -149
    )


@functools.cache
def fast_params(fmt: FloatFormat | IntFormat, for_encode: bool) -> np.ndarray | None:
    """The float32 vector of the vectorized round-to-nearest-even path, or None when `fmt` needs
    the general integer path. For encode, NaN results keep the input's sign (the code step reads
    it); for quantize they are the format's NaN values, as the general path returns them.
    Cached per format: the kernels only read the array."""
    if not _fast_eligible(fmt):
        return None
    f = np.zeros(F_COUNT, dtype=np.float32)
    if isinstance(fmt, IntFormat):
        f[F_IS_INT] = 1
        f[F_LO], f[F_HI] = fmt.min, fmt.max
    else:
        m = fmt.man_bits
        f[F_SPLIT] = 2.0 ** (23 - m) + 1
        f[F_MIN_NORMAL] = fmt.min_normal
        f[F_CSUB] = 2.0 ** (fmt.emin - m + 23)
        f[F_MAX] = fmt.max
        saturated = fmt.overflow in (Overflow.SATURATE, Overflow.SATURATE_FINITE)
        f[F_OVER] = fmt.max if saturated else {Overflow.INF: np.inf, Overflow.NAN: np.nan}[fmt.overflow]
        f[F_INF_OUT] = np.inf if fmt.keeps_inf else f[F_OVER]
        f[F_NEGZERO] = fmt.has_negative_zero
    f[F_NAN_POS], f[F_NAN_NEG] = _fast_nans(fmt, for_encode)
    return f


def _fast_nans(fmt: FloatFormat | IntFormat, for_encode: bool) -> tuple[np.float32, np.float32]:
    nan = np.float32(np.nan)
    if for_encode:
        return nan, -nan
    if isinstance(fmt, FloatFormat) and fmt.has_nan:
        # The values the general path returns: the table's NaN entries, narrowed to float32.
        values = np.asarray(fmt.values, dtype=np.float64)
        return values[fmt.nan_code(False)].astype(np.float32), values[fmt.nan_code(True)].astype(np.float32)
    return nan, nan
