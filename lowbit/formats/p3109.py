"""IEEE P3109 binaryKpP formats, from the working group's interim report, as FloatFormat data.

binaryKpP{s|u}{e|f}: K bits, precision P (significand bits including the implicit one), s or u
(signed or unsigned), e or f (extended domain, with +-Inf, or finite domain). Every format has
subnormals, one NaN and no negative zero:

    signed:   1 sign bit, K-P exponent bits, P-1 fraction bits, bias 2^(K-P-1); NaN at the
              negative-zero code (0x80 for K = 8). Finite domain: Specials.FNUZ. Extended
              domain: Specials.EXTENDED, +Inf at 0x7F and -Inf at 0xFF.
    unsigned: K-P+1 exponent bits, P-1 fraction bits, bias 2^(K-P); NaN at the all-ones code.
              Finite domain: Specials.FN with signed=False. Extended: Specials.EXTENDED, +Inf at
              all-ones minus one.

P = 1 leaves no fraction bits: the zero exponent field is zero alone (there are no other
subnormals), and a tie goes to the code with the even exponent field, as the report's
CodeIsEven says.

Conversion (the report's Project = RoundToPrecision then Saturate) maps to `overflow`:
    extended, overflow="inf" (default): OvfInf, non-saturating: finite overflow gives +-Inf.
    extended, overflow="saturate": SatPropagate: finite overflow gives +-max, Inf stays Inf.
    extended, overflow="saturate_finite": SatFinite: finite overflow and +-Inf give +-max.
    finite, overflow="saturate" (default): every saturation mode of the report (overflow and
        +-Inf give +-max; the finite domain has no other choice in the report).
        "saturate_finite" is accepted and stored as "saturate", the same conversion.
    finite, overflow="nan": overflow and +-Inf give NaN, the non-saturating conversion of gfloat
        (and of ml_dtypes' fnuz types); not one of the report's modes.
Rounding toward zero (rtz; rup below zero, rdown above) gives +-max on finite overflow whatever
`overflow` says, as the report's rounding does. Negative input to an unsigned format becomes 0
under the report's modes (see FloatFormat.negative_is_nan). The report's ToOdd and
TowardMaxMagnitude roundings have no lowbit equivalent.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from .spec import MAX_CODE_BITS, FloatFormat, Overflow, Specials

MIN_BITS = 3
_NAME = re.compile(r"^binary(\d+)p(\d+)([su])([ef])$")
# lowbit keeps every value of a format a float64 normal: the smallest, 2^(2 - bias - P), needs bias <= 2^9.
_MAX_BIAS_LOG2 = 9
# The report's saturation modes as lowbit's `overflow` in the extended domain (`binary(...,
# overflow=REPORT_OVERFLOW["SatFinite"])`); in the finite domain all three are Overflow.SATURATE.
REPORT_OVERFLOW = MappingProxyType(
    {"OvfInf": Overflow.INF, "SatPropagate": Overflow.SATURATE, "SatFinite": Overflow.SATURATE_FINITE}
)


def allowed() -> str:
    """The K and P that `binary` accepts, in words (for error messages and docs)."""
    return (
        f"K from {MIN_BITS} to {MAX_CODE_BITS}; P from 1 to K-1 (signed) or 1 to K (unsigned); "
        f"and K-P at most {_MAX_BIAS_LOG2 + 1} (signed) or {_MAX_BIAS_LOG2} (unsigned), so that the "
        "range fits float64"
    )


def name_of(k: int, p: int, signed: bool, extended: bool) -> str:
    """The report's name of a format, lower case: binary8p3se."""
    return f"binary{k}p{p}{'s' if signed else 'u'}{'e' if extended else 'f'}"


def binary(k: int, p: int, signed: bool = True, extended: bool = True, **options) -> FloatFormat:
    """The P3109 format binaryKpP (k bits, precision p) as a FloatFormat.

    options replace FloatFormat fields (overflow="saturate", say); the format keeps its report
    name only without options. ValueError names the format and the allowed K and P."""
    name = name_of(k, p, signed, extended)
    bias_log2 = k - p - (1 if signed else 0)
    if not MIN_BITS <= k <= MAX_CODE_BITS or not 1 <= p <= k - (1 if signed else 0) or bias_log2 > _MAX_BIAS_LOG2:
        raise ValueError(f"format {name!r}: P3109 formats in lowbit need {allowed()}")
    if extended:
        specials = Specials.EXTENDED
    else:
        specials = Specials.FNUZ if signed else Specials.FN
    fields = {
        "bias": 1 << bias_log2,
        "signed": signed,
        "specials": specials,
        "overflow": None if extended else Overflow.SATURATE,
        **options,
    }
    return FloatFormat(bias_log2 + 1, p - 1, name=None if options else name, **fields)


def parse(name: str, options: dict) -> FloatFormat | None:
    """The format a lower-case binaryKpP{s|u}{e|f} name denotes, or None for another name."""
    m = _NAME.match(name)
    if m is None:
        return None
    return binary(int(m.group(1)), int(m.group(2)), m.group(3) == "s", m.group(4) == "e", **options)
