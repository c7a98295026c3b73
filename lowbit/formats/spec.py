"""Element format specifications: frozen data, every other property derived.

A format is a handful of orthogonal fields. Value tables, ranges and special codes are
computed from them, so adding a format means adding one literal to the catalog.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .enums import parse_enum

MAX_CODE_BITS = 16


class Specials(enum.Enum):
    """Where a float format keeps Inf and NaN.

    IEEE: Inf and NaNs use the all-ones exponent field.
    FN:   no Inf; the all-ones code of each sign is NaN (float8_e4m3fn, float8_e8m0fnu).
    FNUZ: no Inf, no negative zero; the negative-zero code is the single NaN.
    NONE: every code is a finite number (float4_e2m1fn, float6_*).
    EXTENDED: the extended domain of the IEEE P3109 formats (binaryKpPse, binaryKpPue): one NaN,
          no negative zero, Inf at the largest magnitude code the NaN leaves. Signed: NaN at the
          negative-zero code (0x80 for 8 bits), +Inf at the all-ones magnitude (0x7F) and -Inf at
          its negative (0xFF). Unsigned: NaN at the all-ones code, +Inf at all-ones minus one.
          An unsigned EXTENDED format encodes negative input as 0, as the report's saturation
          does (see `FloatFormat.negative_is_nan`).

    P3109's finite domain needs no member of its own: signed it is FNUZ (binary8p4sf is
    float8_e4m3fnuz value for value), unsigned it is FN with signed=False.
    """

    IEEE = "ieee"
    FN = "fn"
    FNUZ = "fnuz"
    NONE = "none"
    EXTENDED = "extended"


class Overflow(enum.Enum):
    """What a finite value beyond the largest finite magnitude becomes under nearest rounding,
    and whether +-Inf input stays Inf.

    SATURATE:        finite overflow gives +-max; +-Inf input stays +-Inf where the format has Inf
                     (the P3109 report's SatPropagate), else gives +-max.
    SATURATE_FINITE: finite overflow and +-Inf input both give +-max (the report's SatFinite).
                     In a format without Inf it is SATURATE, and the spec stores SATURATE.
    INF:             finite overflow gives +-Inf (needs a format with Inf).
    NAN:             finite overflow gives NaN (needs a format with NaN).
    """

    SATURATE = "saturate"
    SATURATE_FINITE = "saturate_finite"
    INF = "inf"
    NAN = "nan"


class Ties(enum.Enum):
    """How the format's nearest rounding (`rne`) breaks an exact tie.

    EVEN is IEEE 754's rule (the code with an even last bit). AWAY rounds ties away from zero;
    float8_e8m0fnu uses it, as ml_dtypes and the OCP MX reference do for the E8M0 scale.
    """

    EVEN = "even"
    AWAY = "away"


class Family(enum.Enum):
    INT = "int"
    FLOAT = "float"
    CODEBOOK = "codebook"
    SCALED = "scaled"


def _require_int(value, argument: str, minimum: int, maximum: int | None = None) -> int:
    """value as a Python int (NumPy integer scalars are accepted as ints are); TypeError for a
    non-integer (bool included), ValueError outside [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ValueError(f"{argument} must be at least {minimum}{upper}, got {value}")
    return int(value)


def _require_bool(value, argument: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument} must be True or False, got {value!r}")
    return bool(value)


def _require_real(value, argument: str) -> float:
    """value as a finite Python float (ints, floats and NumPy scalars of either are accepted)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{argument} must be a finite number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{argument} must be a finite number, got {value!r}")
    return float(value)


def _set_int(spec, argument: str, minimum: int, maximum: int | None = None) -> None:
    """Checks the integer field `argument` of a frozen spec and stores it as a Python int, so that
    specs built from NumPy integers equal, hash and print as those built from ints."""
    object.__setattr__(spec, argument, _require_int(getattr(spec, argument), argument, minimum, maximum))


def _set_bool(spec, argument: str) -> None:
    object.__setattr__(spec, argument, _require_bool(getattr(spec, argument), argument))


class ElementStorage:
    """Storage of formats without a block scale: each code holds `elements_per_code` elements."""

    elements_per_code = 1

    def bits_per_element(self, block_elems: int | None = None) -> float:
        """Bits of storage per element. block_elems is for block-scaled formats (elements per
        scale); an element or codebook format has no scale and refuses it."""
        if block_elems is not None:
            raise ValueError(f"block_elems applies to block-scaled formats; {self.name or self!r} has no scale")
        return self.bits / self.elements_per_code

    def bits_per_element_in(self, shape: tuple[int, ...], axis: int | None = None) -> float:
        """Bits per element of an array of `shape` (the same for every shape: no scale)."""
        return self.bits_per_element()

    @property
    def code_values(self) -> np.ndarray:
        """The value each code decodes to, in code order, as float64 (NaN codes NaN)."""
        return np.asarray(self.values, np.float64)


@dataclass(frozen=True)
class IntFormat(ElementStorage):
    """A fixed-point integer format with `bits` bits, codes in two's complement.

    symmetric: the most negative code is unused, so the range is [-(2^(bits-1)-1), 2^(bits-1)-1]
    (int4 symmetric is [-7, 7]). Values out of range are clipped, never wrapped.
    """

    bits: int
    signed: bool = True
    symmetric: bool = False
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set_int(self, "bits", 1, MAX_CODE_BITS)
        _set_bool(self, "signed")
        _set_bool(self, "symmetric")
        if self.symmetric and not self.signed:
            raise ValueError("symmetric=True needs signed=True: an unsigned format has no negative side")
        if self.symmetric and self.bits < 2:
            raise ValueError("symmetric=True needs bits >= 2, got bits=1")

    family = Family.INT

    @property
    def n_codes(self) -> int:
        return 1 << self.bits

    @property
    def significand_bits(self) -> int:
        """Bits of the magnitude a multiplier sees (all of the code)."""
        return self.bits

    @property
    def min(self) -> int:
        """Most negative representable integer."""
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def max(self) -> int:
        """Largest representable integer."""
        return (1 << (self.bits - (1 if self.signed else 0))) - 1

    @property
    def min_normal(self) -> float:
        return 1.0

    @property
    def min_subnormal(self) -> float:
        return 1.0

    has_nan = False
    has_inf = False
    has_zero = True

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    @cached_property
    def values(self) -> np.ndarray:
        """float64 value of every code 0 .. 2^bits-1 (two's complement); unused codes are NaN."""
        codes = np.arange(self.n_codes, dtype=np.int64)
        vals = codes - (self.n_codes if self.signed else 0) * (codes >= self.n_codes // 2)
        out = vals.astype(np.float64)
        out[(vals < self.min) | (vals > self.max)] = np.nan
        out.setflags(write=False)
        return out

    def describe(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        sym = ", symmetric" if self.symmetric else ""
        return f"int{self.bits} ({kind}{sym}): [{self.min}, {self.max}], rounded and clipped"


@dataclass(frozen=True)
class FloatFormat(ElementStorage):
    """A minifloat with `exp_bits` exponent and `man_bits` mantissa bits.

    bias:       exponent bias; default 2^(exp_bits-1) - 1.
    signed:     has a sign bit (the top bit of the code).
    subnormals: the zero exponent field holds subnormals and zero. When False the zero field is an
                ordinary binade and the format has no zero (float8_e8m0fnu).
    specials:   where Inf and NaN live, see `Specials`.
    overflow:   what nearest rounding past the largest finite value gives; default INF for IEEE
                and EXTENDED, NAN for FN/FNUZ, SATURATE for NONE. Directed rounding toward zero
                always saturates. Inf input stays Inf where the format has Inf (unless
                SATURATE_FINITE, see `keeps_inf`), else is treated as an overflow. An unsigned
                format treats negative input as below its range, see `negative_is_nan`.
    ties:       tie rule of `rne` for this format, see `Ties`.
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    signed: bool = True
    subnormals: bool = True
    specials: Specials = Specials.IEEE
    overflow: Overflow | None = None
    ties: Ties = Ties.EVEN
    name: str | None = field(default=None, compare=False)

    family = Family.FLOAT

    def __post_init__(self) -> None:
        _set_int(self, "exp_bits", 1, 1 << 10)
        _set_int(self, "man_bits", 0, 1 << 10)
        _set_bool(self, "signed")
        _set_bool(self, "subnormals")
        if self.bits > MAX_CODE_BITS:
            raise ValueError(
                f"exp_bits + man_bits + sign = {self.bits} bits; element formats have at most {MAX_CODE_BITS} bits"
            )
        object.__setattr__(self, "specials", parse_enum(Specials, self.specials, "specials"))
        object.__setattr__(self, "ties", parse_enum(Ties, self.ties, "ties"))
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (self.exp_bits - 1)) - 1)
        else:
            _set_int(self, "bias", -(1 << 20), 1 << 20)
        if self.overflow is None:
            default = {Specials.IEEE: Overflow.INF, Specials.EXTENDED: Overflow.INF, Specials.NONE: Overflow.SATURATE}
            object.__setattr__(self, "overflow", default.get(self.specials, Overflow.NAN))
        object.__setattr__(self, "overflow", parse_enum(Overflow, self.overflow, "overflow"))
        if self.overflow is Overflow.SATURATE_FINITE and not self.has_inf:
            # the same conversion: stored as SATURATE so that equal formats compare equal
            object.__setattr__(self, "overflow", Overflow.SATURATE)
        self._check_specials()

    def _check_specials(self) -> None:
        s = self.specials
        if s is Specials.IEEE and self.man_bits < 1:
            raise ValueError("specials='ieee' needs man_bits >= 1 to hold a NaN; use specials='fn'")
        if s is Specials.IEEE and self.exp_bits < 2:
            raise ValueError("specials='ieee' needs exp_bits >= 2 to leave a finite normal binade")
        if s is Specials.FNUZ and not self.signed:
            raise ValueError("specials='fnuz' puts NaN at the negative-zero code; it needs signed=True")
        if s in (Specials.FNUZ, Specials.EXTENDED) and not self.subnormals:
            raise ValueError(f"specials={s.value!r} needs subnormals=True: without them there is no zero code")
        if self.overflow is Overflow.INF and not self.has_inf:
            raise ValueError(f"overflow='inf' needs a format with Inf; specials={s.value!r} has none")
        if self.overflow is Overflow.NAN and not self.has_nan:
            raise ValueError(f"overflow='nan' needs a format with NaN; specials={s.value!r} has none")
        if self.max_code < 1 and not (self.max_code == 0 and not self.subnormals):
            raise ValueError(f"e{self.exp_bits}m{self.man_bits} with specials={s.value!r} has no finite value")
        if self.min_subnormal_exponent < -1022 or self.emax > 1023:
            raise ValueError(
                f"bias={self.bias} puts the range outside float64 (2^{self.min_subnormal_exponent} "
                f"to 2^{self.emax}); lowbit computes in float64"
            )

    # ----- layout ------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        return self.exp_bits + self.man_bits + (1 if self.signed else 0)

    @property
    def n_codes(self) -> int:
        return 1 << self.bits

    @property
    def significand_bits(self) -> int:
        """Mantissa bits plus the hidden bit."""
        return self.man_bits + 1

    @property
    def sign_shift(self) -> int:
        """Bit position of the sign in a code (-1 when unsigned)."""
        return self.exp_bits + self.man_bits if self.signed else -1

    @property
    def emin(self) -> int:
        """Unbiased exponent of the lowest normal binade."""
        return (1 if self.subnormals else 0) - self.bias

    @property
    def min_subnormal_exponent(self) -> int:
        return self.emin - (self.man_bits if self.subnormals else 0)

    @property
    def max_code(self) -> int:
        """Magnitude code (sign bit clear) of the largest finite value."""
        all_ones = (1 << (self.exp_bits + self.man_bits)) - 1
        if self.specials is Specials.IEEE:
            return all_ones - (1 << self.man_bits)
        if self.specials is Specials.FN:
            return all_ones - 1
        if self.specials is Specials.EXTENDED:
            # Inf sits just above; unsigned, NaN takes the all-ones code above that.
            return all_ones - (1 if self.signed else 2)
        return all_ones

    @property
    def emax(self) -> int:
        """Unbiased exponent of the binade holding the largest finite value."""
        field = self.max_code >> self.man_bits
        return (max(field, 1) if self.subnormals else field) - self.bias

    # ----- specials ----------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.specials in (Specials.IEEE, Specials.EXTENDED)

    @property
    def has_nan(self) -> bool:
        return self.specials is not Specials.NONE

    @property
    def has_zero(self) -> bool:
        return self.subnormals

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.subnormals and not self._nan_at_negative_zero

    @property
    def _nan_at_negative_zero(self) -> bool:
        return self.signed and self.specials in (Specials.FNUZ, Specials.EXTENDED)

    @property
    def negative_is_nan(self) -> bool:
        """Whether an unsigned format encodes a negative input (one that does not round to zero)
        as NaN; otherwise it becomes code 0, the bottom of the range (zero, where there is one).

        Negative input is out of an unsigned format's range at the low end, so it follows
        `overflow`: NAN gives NaN, SATURATE gives 0 (the P3109 report's saturation clamps to 0,
        as unsigned integers clip). Under INF, IEEE formats give NaN (IEEE 754's invalid
        operation) and EXTENDED formats give 0 (the report's OvfInf has no -Inf to give). A
        format without NaN always gives 0. False for signed formats."""
        if self.signed or not self.has_nan:
            return False
        return self.overflow is Overflow.NAN or (self.overflow is Overflow.INF and self.specials is Specials.IEEE)

    @property
    def keeps_inf(self) -> bool:
        """Whether +-Inf input encodes as +-Inf: the format has Inf and overflow is not
        SATURATE_FINITE. Otherwise Inf input is an overflow, resolved by `overflow`."""
        return self.has_inf and self.overflow is not Overflow.SATURATE_FINITE

    @property
    def inf_code(self) -> int | None:
        """Magnitude code of +Inf, or None."""
        if not self.has_inf:
            return None
        return self.max_code + 1

    def nan_code(self, negative: bool = False) -> int | None:
        """The code lowbit writes for NaN (quiet, with the input's sign where the format has one)."""
        if self.specials is Specials.NONE:
            return None
        if self._nan_at_negative_zero:
            return 1 << self.sign_shift
        if self.specials is Specials.EXTENDED:  # unsigned: the all-ones code
            return self.n_codes - 1
        if self.specials is Specials.FN:
            mag = self.max_code + 1
        else:
            mag = self.max_code + 1 + (1 << (self.man_bits - 1))
        return mag | ((1 << self.sign_shift) if negative and self.signed else 0)

    # ----- values ------------------------------------------------------------------------
    def _magnitude(self, mag: np.ndarray) -> np.ndarray:
        efield = mag >> self.man_bits
        frac = mag & ((1 << self.man_bits) - 1)
        normal = (efield > 0) | (not self.subnormals)
        sig = np.where(normal, frac + (1 << self.man_bits), frac)
        exp = np.where(normal, efield, 1) - self.bias - self.man_bits
        return np.ldexp(sig.astype(np.float64), exp.astype(np.int32))

    @cached_property
    def values(self) -> np.ndarray:
        """float64 value of every code 0 .. 2^bits-1; NaN codes hold NaN carrying the code's sign."""
        codes = np.arange(self.n_codes, dtype=np.int64)
        mag_bits = self.exp_bits + self.man_bits
        mag = codes & ((1 << mag_bits) - 1)
        negative = (codes >> mag_bits) & 1 if self.signed else np.zeros_like(codes)
        out = self._magnitude(mag)
        if self.has_inf:
            out[mag == self.inf_code] = np.inf
            out[mag > self.inf_code] = np.nan
        elif self.specials is Specials.FN:
            out[mag > self.max_code] = np.nan
        out = np.where(negative == 1, -out, out)
        if self._nan_at_negative_zero:
            out[self.nan_code()] = -np.nan  # the negative-zero code: ml_dtypes reads it as -NaN
        out.setflags(write=False)
        return out

    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(self._magnitude(np.array([self.max_code]))[0])

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value."""
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (the smallest normal when there are no subnormals)."""
        return float(np.ldexp(1.0, self.min_subnormal_exponent))

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def describe(self) -> str:
        sign = "" if self.signed else "unsigned, "
        sub = "" if self.subnormals else ", no subnormals or zero"
        return (
            f"e{self.exp_bits}m{self.man_bits} ({sign}bias {self.bias}, specials {self.specials.value}, "
            f"overflow {self.overflow.value}{sub})"
        )


ElementFormat = IntFormat | FloatFormat
