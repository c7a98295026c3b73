"""What a dot-product unit sees of a format: the lane operand (significand and exponent widths, or a
sign-only element, or a codebook decoded through a table) and its scale stage.

Every format of the catalog maps to an Operand; formats that cannot be costed get a ValueError that
says why.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from ..formats import (
    CodebookFormat,
    DoubleQuant,
    FloatFormat,
    GridFormat,
    IntFormat,
    ScaledFormat,
    TensorScale,
    VectorCodebookFormat,
    get_format,
)

# The largest codebook costed through a lookup table: 2^8 entries per table.
MAX_LUT_BITS = 8


class ScaleKind(enum.Enum):
    POW2 = "pow2"  # a power-of-two scale (E8M0): an exponent add
    MULTIPLY = "multiply"  # any other scale: a floating-point multiply


@dataclass(frozen=True)
class ScaleStage:
    """A block scale: its kind, exponent and significand widths (bits), elements per scale (None:
    one scale per output row, amortised over the reduction), and the extras some formats add."""

    kind: ScaleKind
    exp_bits: int
    sig_bits: int
    block: int | None
    count: int = 1  # 2 for AFPQ's separate positive and negative scales
    zero_point: bool = False  # integer elements with a zero point per block
    tensor_scale: bool = False  # NVFP4's per-tensor FP32 scale on top
    double_quant: bool = False  # the scale is itself a code (QLoRA double quantization)
    micro_block: int = 0  # elements per shared micro-exponent (MX9/6/4: 2); 0 for none
    micro_bits: int = 0  # bits of a micro-exponent: a sub-block's shift is 0 to 2^micro_bits - 1

    @property
    def micro_shift(self) -> int:
        """The largest shift a micro-exponent applies (binades)."""
        return (1 << self.micro_bits) - 1 if self.micro_bits else 0


@dataclass(frozen=True)
class Lookup:
    """A codebook decoded through a table of `entries` words of `width` bits, `per` elements a word."""

    entries: int
    width: int
    per: int = 1


@dataclass(frozen=True)
class Operand:
    """sig_bits: significand bits into the lane multiplier (hidden bit included; all bits for
    integers); exp_bits: 0 for integers. sign_only: the element is sign x constant (ternary or
    binary), so a conditional negate replaces the multiplier; has_zero: ternary."""

    name: str
    sig_bits: int
    exp_bits: int
    bits_per_element: float
    sign_only: bool = False
    has_zero: bool = False
    lookup: Lookup | None = None
    scale: ScaleStage | None = None


def _sign_only(values) -> tuple[bool, bool]:
    finite = [v for v in values if math.isfinite(v)]
    mags = {abs(v) for v in finite if v != 0}
    symmetric = len(mags) == 1 and any(v > 0 for v in finite) and any(v < 0 for v in finite)
    return symmetric, symmetric and 0 in finite


def _element(element, decode: FloatFormat, bits_per_element: float, name: str) -> Operand:
    """The lane operand of an element format (float, integer, codebook or grid)."""
    if isinstance(element, FloatFormat):
        return Operand(name, element.significand_bits, element.exp_bits, bits_per_element)
    values = () if isinstance(element, VectorCodebookFormat) else tuple(float(v) for v in element.values)
    sign_only, has_zero = _sign_only(values) if values else (False, False)
    if sign_only:
        return Operand(name, 1, 0, bits_per_element, sign_only=True, has_zero=has_zero)
    if isinstance(element, IntFormat):
        return Operand(name, element.significand_bits, 0, bits_per_element)
    return _decoded(element, decode, bits_per_element, name)


def _decoded(element, decode: FloatFormat, bits_per_element: float, name: str) -> Operand:
    per = element.dim if isinstance(element, VectorCodebookFormat) else 1
    code_bits = element.bits
    if code_bits > MAX_LUT_BITS:
        raise ValueError(
            f"format {name!r}: a codebook of {element.n_codes} values needs a {2**code_bits}-entry lookup table "
            f"per lane; lowbit costs codebooks of up to {MAX_LUT_BITS} bits"
        )
    lookup = Lookup(element.n_codes, per * decode.bits, per)
    return Operand(name, decode.significand_bits, decode.exp_bits, bits_per_element, lookup=lookup)


def _scale_stage(fmt: ScaledFormat) -> ScaleStage:
    s = fmt.scale
    if isinstance(s, DoubleQuant) or s is None:
        exp_bits, sig_bits = 8, 24  # an fp32 scale (double quantization decodes to one)
    elif isinstance(s, IntFormat):
        exp_bits, sig_bits = 0, s.significand_bits
    else:
        exp_bits, sig_bits = s.exp_bits, s.significand_bits
    pow2 = isinstance(s, FloatFormat) and s.man_bits == 0
    return ScaleStage(
        ScaleKind.POW2 if pow2 else ScaleKind.MULTIPLY,
        exp_bits,
        sig_bits,
        fmt.block or None,
        count=2 if fmt.asymmetric and not isinstance(fmt.element, IntFormat) else 1,
        zero_point=fmt.asymmetric and isinstance(fmt.element, IntFormat),
        tensor_scale=fmt.tensor_scale is TensorScale.NVFP4,
        double_quant=isinstance(s, DoubleQuant),
        micro_block=0 if fmt.micro is None else fmt.micro.block,
        micro_bits=0 if fmt.micro is None else fmt.micro.bits,
    )


def operand(fmt, decode: str | FloatFormat = "float16", reduction_length: int = 4096) -> Operand:
    """The Operand of a format name or spec. Codebooks decode through a table to `decode` (float16,
    as bitsandbytes dequantizes NF4). Per-channel and per-tensor scales count their bits over
    `reduction_length` elements."""
    spec = get_format(fmt)
    name = spec.name or (fmt if isinstance(fmt, str) else spec.describe())
    dec = get_format(decode)
    if not isinstance(dec, FloatFormat):
        raise ValueError(f"decode: codebooks decode to a float format, got {decode!r}")
    if isinstance(spec, ScaledFormat):
        bpe = spec.bits_per_element(reduction_length)
        base = _element(spec.element, dec, bpe, name)
        return Operand(**{**base.__dict__, "scale": _scale_stage(spec)})
    if isinstance(spec, (FloatFormat, IntFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
        bpe = float(spec.bits_per_element())
        return _element(spec, dec, bpe, name)
    raise ValueError(f"format {name!r}: the cost model has no template for {type(spec).__name__}")
