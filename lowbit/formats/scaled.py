"""Block-scaled formats: an element format with a scale per block of elements.

A `ScaledFormat` is data like every other format: the element format, the block length, the
scale format and the rule that picks the scale. The arithmetic of each rule lives in
`lowbit.simulator.host.blocks`; DESIGN.md section 3 gives the exact semantics.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from .codebook import CodebookFormat
from .constructions import dynamic_map_signed
from .enums import parse_enum
from .grid import GridFormat
from .spec import Family, FloatFormat, IntFormat, _require_int, _require_real, _set_bool, _set_int


class ScaleRule(enum.Enum):
    """How a block's scale is chosen.

    OCP_FLOOR: power of two, exponent floor(log2(amax)) - emax(element) (OCP MX v1.0; default).
    CEIL:      as OCP_FLOOR, plus one when amax is not a power of two (torchao CEIL).
    EVEN:      amax rounded to the element's mantissa width (half up), then floor (torchao EVEN).
    RCEIL:     power of two ceil(log2(amax / max(element))) (torchao RCEIL, cuBLAS' rule).
    ABSMAX:    amax / max(element), rounded to the scale format (NF4, INT per group, NVFP4).
    SIGNED_ABSMAX: as ABSMAX with the sign of the block's largest-magnitude element, so that element
               always maps to +max (BOF4-S).
    MSE:       ABSMAX shrunk by the factor in a grid that minimises the block's squared error.
    ABSMEAN:   mean(|x|) (BitNet b1.58's ternary scale).
    TWN:       ternary weight networks: threshold 0.7 * mean|x|; elements sign(x) where |x| is above
               it, else 0; scale the mean |x| above the threshold (needs a {-1, 0, 1} element).
    """

    OCP_FLOOR = "ocp_floor"
    CEIL = "ceil"
    EVEN = "even"
    RCEIL = "rceil"
    ABSMAX = "absmax"
    SIGNED_ABSMAX = "signed_absmax"
    MSE = "mse"
    ABSMEAN = "absmean"
    TWN = "twn"

    @property
    def power_of_two(self) -> bool:
        return self in (ScaleRule.OCP_FLOOR, ScaleRule.CEIL, ScaleRule.EVEN, ScaleRule.RCEIL)


class TensorScale(enum.Enum):
    """A per-tensor float32 scale applied before the block scales.

    NONE:   no tensor scale.
    NVFP4:  TransformerEngine's two-level recipe: S_enc = 2688 / amax(tensor) (448 * 6).
    """

    NONE = "none"
    NVFP4 = "nvfp4"


ElementLike = FloatFormat | IntFormat | CodebookFormat | GridFormat
# Shrink factors the MSE rule tries by default: 1.00, 0.99, ..., 0.50 of the absmax scale.
MSE_FACTORS = tuple(1 - k / 100 for k in range(51))
TABLE_FORMATS = (CodebookFormat, GridFormat)


@dataclass(frozen=True)
class DoubleQuant:
    """QLoRA's double quantization of the block scales: the scales minus their mean, quantized in
    blocks of `block` scales to the nearest value of `code` times the block's absmax (fp32), plus
    the fp32 mean. `code` is bitsandbytes' signed 8-bit dynamic map."""

    block: int = 256
    code: CodebookFormat | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set_int(self, "block", 1)
        if self.code is None:
            object.__setattr__(self, "code", CodebookFormat(dynamic_map_signed(), source="bitsandbytes dynamic map"))

    @property
    def bits(self) -> int:
        return self.code.bits

    @property
    def bits_per_scale(self) -> float:
        """Code bits plus the fp32 absmax shared by `block` scales (the one fp32 mean per tensor is
        not counted)."""
        return self.code.bits + 32 / self.block

    def describe(self) -> str:
        return f"double-quantized ({self.code.bits}-bit dynamic map, block {self.block})"


@dataclass(frozen=True)
class MicroExponent:
    """Rouhani et al.'s (ISCA 2023) shared micro-exponent: a second-level power-of-two scale of
    `bits` bits per sub-block of `block` elements, under the block's shared exponent E.

    A sub-block whose largest exponent is E_sub is shifted down by d = min(E - E_sub, 2^bits - 1)
    binades: its elements are x * 2^-(E - d), rounded to the element's fixed point. Exponents are
    float32's exponent fields (floor(log2 |x|), a subnormal or zero counting as 2^-127, E8M0's
    lowest), so d is 0 for the sub-block holding the block's largest |x|. With bits = 1 this is
    the paper's MX rule as AMD Quark documents it: s_sb = 2^-1 when both values of the sub-block
    have an exponent strictly smaller than the block's largest, else 1 (README, "MX9, MX6, MX4").
    """

    block: int = 2
    bits: int = 1

    def __post_init__(self) -> None:
        _set_int(self, "block", 1)
        _set_int(self, "bits", 1, 4)  # shifts of up to 15 binades keep 2^shift exact in float32

    @property
    def max_shift(self) -> int:
        """The largest shift (binades): 2^bits - 1."""
        return (1 << self.bits) - 1


@dataclass(frozen=True)
class ScaledFormat:
    """`element` values times a per-block scale.

    element:      the element format (float, integer or codebook).
    block:        elements per block along `axis`; None means the whole axis (per channel), 0
                  the whole tensor (one scale).
    scale:        the scale's format; None stores it as an exact float32.
    rule:         how the scale is chosen (ScaleRule).
    tensor_scale: a per-tensor scale stage (TensorScale.NVFP4 for the two-level recipe).
    asymmetric:   integer elements: a zero point per block (unsigned codes); float and codebook
                  elements: AFPQ's separate scales for the positive and the negative values.
    axis:         the default block axis (a call's `axis` argument overrides it).
    scale_min, scale_max: clamp of the scale before rounding (torchao's single-level NVFP4
                  clamps to [2^-6, 448]); None for none.
    divide:       elements are x / scale when True, x * (1 / scale) when False (bitsandbytes,
                  TransformerEngine). Power-of-two scales give the same result either way.
    block_rows:   rows of a 2-D tile (NVIDIA's 16 x 16 weight tiles, arXiv 2509.25149): a block is
                  `block_rows` consecutive rows of the axis before the block axis by `block`
                  elements of the block axis, with one scale; 1 (default) is a 1-D block.
    scale_factors: the factors the MSE rule tries on the absmax scale before rounding it to the
                  scale format, in order (the first wins ties); None: 1.00, 0.99, ..., 0.50.
                  Four over six is (1.0, 1.5): the block maximum at 6 or at 4.
    tensor_scale_max: the block-scale value the tensor's amax maps to under the NVFP4 tensor
                  scale, S_enc = tensor_scale_max * max(element) / amax; None: the scale
                  format's largest value (448 for E4M3).
    micro:        a shared micro-exponent per sub-block (MX9, MX6, MX4), or None: needs the
                  OCP_FLOOR rule, a symmetric integer element and 1-D blocks a multiple of its
                  sub-block.
    """

    element: ElementLike
    block: int | None = 32
    scale: FloatFormat | IntFormat | DoubleQuant | None = None
    rule: ScaleRule = ScaleRule.ABSMAX
    tensor_scale: TensorScale = TensorScale.NONE
    asymmetric: bool = False
    axis: int = -1
    scale_min: float | None = None
    scale_max: float | None = None
    divide: bool = False
    block_rows: int = 1
    scale_factors: tuple[float, ...] | None = None
    tensor_scale_max: float | None = None
    micro: MicroExponent | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.element, (FloatFormat, IntFormat, *TABLE_FORMATS)):
            raise TypeError(f"element must be a float, integer or codebook format, got {self.element!r}")
        if self.block is not None:
            _set_int(self, "block", 0)
        if self.scale is not None and not isinstance(self.scale, (FloatFormat, IntFormat, DoubleQuant)):
            raise TypeError(f"scale must be a float format or None (exact float32), got {self.scale!r}")
        object.__setattr__(self, "rule", parse_enum(ScaleRule, self.rule, "rule"))
        object.__setattr__(self, "tensor_scale", parse_enum(TensorScale, self.tensor_scale, "tensor_scale"))
        _set_bool(self, "asymmetric")
        _set_bool(self, "divide")
        _set_int(self, "axis", -(1 << 30), (1 << 30) - 1)
        for bound in ("scale_min", "scale_max"):
            value = getattr(self, bound)
            if value is not None:
                value = _require_real(value, bound)
                if value <= 0:
                    raise ValueError(f"{bound} must be positive or None, got {value}")
                object.__setattr__(self, bound, value)
        if self.scale_min is not None and self.scale_max is not None and self.scale_min > self.scale_max:
            raise ValueError(f"scale_min {self.scale_min} is above scale_max {self.scale_max}")
        if isinstance(self.scale, DoubleQuant) and (self.asymmetric or self.tensor_scale is not TensorScale.NONE):
            raise ValueError("double quantization applies to one absmax scale per block (NF4's layout)")
        if self.rule.power_of_two:
            if isinstance(self.element, TABLE_FORMATS):
                raise ValueError(f"rule {self.rule.value!r} needs a float or integer element, not a codebook")
            if self.asymmetric:
                raise ValueError(f"rule {self.rule.value!r} has one scale per block; asymmetric needs absmax")
        if self.rule is ScaleRule.TWN and tuple(getattr(self.element, "values", ())) != (-1.0, 0.0, 1.0):
            raise ValueError("rule 'twn' needs a ternary element with values (-1, 0, 1)")
        if self.asymmetric and isinstance(self.element, IntFormat) and self.element.signed:
            raise ValueError("asymmetric integer elements use a zero point: give an unsigned element (e.g. uint4)")
        self._check_variants()
        if self.micro is not None:
            self._check_micro()

    def _check_micro(self) -> None:
        m = self.micro
        if not isinstance(m, MicroExponent):
            raise TypeError(f"micro must be a MicroExponent or None, got {m!r}")
        e = self.element
        if not (isinstance(e, IntFormat) and e.symmetric):
            raise ValueError(f"micro: a symmetric integer element (sign-magnitude, as MX9/6/4), got {e!r}")
        if self.rule is not ScaleRule.OCP_FLOOR or self.tensor_scale is not TensorScale.NONE:
            raise ValueError(f"micro: needs rule 'ocp_floor' and no tensor scale, got rule {self.rule.value!r}")
        if not self.block or self.block % m.block or self.block_rows != 1:
            raise ValueError(f"micro: 1-D blocks, a positive multiple of the sub-block {m.block}; got {self.block}")

    def _check_variants(self) -> None:
        """block_rows, scale_factors and tensor_scale_max: each only where it means something."""
        _set_int(self, "block_rows", 1)
        if self.block_rows > 1 and not self.block:
            raise ValueError(f"block_rows {self.block_rows} needs a fixed block (block > 0), got block {self.block}")
        if self.scale_factors is not None:
            if self.rule is not ScaleRule.MSE:
                raise ValueError(f"scale_factors are the MSE rule's candidates; rule is {self.rule.value!r}")
            if not isinstance(self.scale_factors, (tuple, list)):
                raise TypeError(f"scale_factors: a tuple of positive numbers, got {self.scale_factors!r}")
            factors = tuple(_require_real(f, "scale_factors") for f in self.scale_factors)
            if not factors or not all(math.isfinite(f) and f > 0 for f in factors):
                raise ValueError(f"scale_factors must be positive finite numbers, got {self.scale_factors!r}")
            object.__setattr__(self, "scale_factors", factors)
        if self.tensor_scale_max is not None:
            if self.tensor_scale is not TensorScale.NVFP4:
                raise ValueError("tensor_scale_max applies to the NVFP4 tensor scale (tensor_scale='nvfp4')")
            value = _require_real(self.tensor_scale_max, "tensor_scale_max")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"tensor_scale_max must be a positive finite number, got {value}")
            object.__setattr__(self, "tensor_scale_max", value)

    family = Family.SCALED

    @property
    def element_emax(self) -> int:
        """The element's largest power of two, which power-of-two rules align amax with (integers
        are 1.(bits-2) fixed point, as OCP's MXINT8: emax 0)."""
        if isinstance(self.element, FloatFormat):
            return self.element.emax
        return 0

    @property
    def element_step(self) -> float:
        """Value of one unit of an integer element code: 2^-(bits-2) under power-of-two rules
        (OCP MXINT8's 1.6 fixed point: 2^-6), 1 otherwise."""
        e = self.element
        if isinstance(e, IntFormat) and self.rule.power_of_two:
            return 2.0 ** -(e.bits - 2)
        return 1.0

    @property
    def element_mantissa_bits(self) -> int:
        """Fraction bits of the element below its leading bit: a float's mantissa bits, an
        integer's bits - 2 (its fixed point under power-of-two rules). Codebooks have none."""
        e = self.element
        if isinstance(e, FloatFormat):
            return e.man_bits
        if isinstance(e, IntFormat):
            return e.bits - 2
        raise ValueError(f"element_mantissa_bits: {self.name or 'this format'} has a codebook element")

    @property
    def element_max(self) -> float:
        """Largest element magnitude, with an integer element's fixed-point step applied under
        power-of-two rules."""
        return float(self.element.max) * self.element_step

    @property
    def search_factors(self) -> tuple[float, ...]:
        """The factors the MSE rule tries on the absmax scale, in order: `scale_factors` or the
        default MSE_FACTORS."""
        return self.scale_factors or MSE_FACTORS

    @property
    def scales_per_block(self) -> int:
        return 2 if self.asymmetric else 1

    @property
    def micro_bits_per_block(self) -> int:
        """Micro-exponent bits a block stores: one field per sub-block of the format's block (a
        block cut short by the end of the axis stores them all, as it stores its whole scale)."""
        m = self.micro
        return 0 if m is None else (self.block // m.block) * m.bits

    @property
    def scale_bits(self) -> float:
        if isinstance(self.scale, DoubleQuant):
            return self.scale.bits_per_scale
        return 32 if self.scale is None else self.scale.bits

    @property
    def bits(self) -> int:
        """Bits of one element code."""
        return self.element.bits

    @property
    def code_dtype(self):
        return self.element.code_dtype

    @property
    def has_nan(self) -> bool:
        """A block's scale can say NaN (a NaN scale code, or NaN decode), except a double-quantized
        one, whose dynamic-map codes are all numbers."""
        return not isinstance(self.scale, DoubleQuant)

    def bits_per_element(self, block_elems: int | None = None) -> float:
        """Element bits plus the block's scale bits shared over its elements. A per-channel or
        per-tensor format needs the elements per scale as `block_elems`; a fixed block ignores
        it. The NVFP4 tensor scale (32 bits per tensor) is not counted."""
        block = self.block * self.block_rows if self.block else block_elems
        if block is None:
            raise ValueError(
                "bits_per_element: a per-channel or per-tensor format needs block_elems (elements per scale)"
            )
        return self._bits_per_scale_of(_require_int(block, "block_elems", 1))

    def _bits_per_scale_of(self, elements_per_scale: float) -> float:
        """Element bits plus the scale bits spread over `elements_per_scale` elements."""
        per_block = self.scales_per_block * self.scale_bits + self.micro_bits_per_block
        return self.element.bits_per_element() + per_block / elements_per_scale

    def bits_per_element_in(self, shape: tuple[int, ...], axis: int | None = None) -> float:
        """Bits per element of an array of `shape` with its blocks along `axis` (default: the
        format's axis): a per-tensor scale spans every element, a per-channel one the axis, and
        fixed blocks ceil(length / block) scales per axis (a trailing partial block, or a block
        longer than the axis, still stores a whole scale)."""
        if self.block == 0:
            return self.bits_per_element(max(math.prod(shape), 1))
        if self.block_rows > 1 and len(shape) >= 2 and math.prod(shape):
            return self._tiled_bits_in(shape, self.axis if axis is None else axis)
        length = shape[self.axis if axis is None else axis] if shape else 0
        if self.block is None:
            return self.bits_per_element(max(length, 1))
        if length <= 0 or length % self.block == 0:
            return self.bits_per_element()
        return self._bits_per_scale_of(length / math.ceil(length / self.block))

    def _tiled_bits_in(self, shape: tuple[int, ...], axis: int) -> float:
        """Bits per element of 2-D tiles: one scale per (block_rows x block) tile, partial tiles
        at the ends of both axes storing a whole scale."""
        moved = list(shape)
        moved.append(moved.pop(axis))
        tiles = math.prod(moved[:-2]) * math.ceil(moved[-2] / self.block_rows) * math.ceil(moved[-1] / self.block)
        return self._bits_per_scale_of(math.prod(shape) / tiles)

    def describe(self) -> str:
        block = {None: "per channel", 0: "per tensor"}.get(self.block, f"block {self.block}")
        if self.block_rows > 1:
            block = f"{self.block_rows} x {self.block} tiles"
        scale = "fp32" if self.scale is None else (self.scale.name or self.scale.describe())
        asym = ", asymmetric" if self.asymmetric else ""
        if self.micro is not None:
            asym += f", {self.micro.bits}-bit micro-exponent per {self.micro.block}"
        return f"{self.element.name or self.element.describe()} x {scale} scale ({self.rule.value}), {block}{asym}"
