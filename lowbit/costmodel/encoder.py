"""`encode_cost`: area and energy of the unit that quantizes a stream of float32 values into a
format (the encode side; `estimate` prices the MAC side), by component.

The unit takes `lanes` float32 values per cycle (16 by default: one NVFP4 block); a block holds
B = block x block_rows elements. Its parts, each built from the component library:
  block buffer:     the block's float32 values, held until its scale is known (B x 32 flip-flops).
  amax tree:        |x| compared as 31-bit integers (float32 magnitudes order as integers): a tree
                    over the lanes, plus a running maximum when a block spans several cycles; B - 1
                    compare-and-selects per block.
  scale:            per block, amax times S_enc / max(element) (a float32 multiply), rounded to the
                    scale format (subnormal alignment, round increment, exponent rebias, saturating
                    clamp); power-of-two rules: the exponent field minus emax and the rule's increment.
  reciprocal:       per block, 1 / (scale x 1/S_enc): a float32 multiply and a 24-bit array divider
                    (power-of-two: an exponent negate).
  element scaling:  per element, x times the reciprocal (power-of-two: an exponent add).
  element rounding: per element, subnormal alignment, the sticky OR, the round increment and the
                    saturation compare and clamp.
  tensor scale:     S_enc = top x max(element) / amax(tensor), one divide per tensor: its area only
                    (the tensor's amax is a pass over the data that this unit does not price).
  micro-exponents:  (MX9, MX6, MX4) per sub-block, its shift d = min(E - E_sub, 2^bits - 1): an 8-bit
                    subtract of the exponents, an 8-bit compare and a bits-wide select for the clamp,
                    and an 8-bit subtract E - d for its elements' scaling. The sub-block's max E_sub
                    comes from the amax tree's lower levels (sub-blocks of 2: its first level).
Search rules (MSE, four over six) evaluate c candidate scales in parallel. Each candidate past the
first adds its factor multiply, scale rounding, reciprocal, element scaling and rounding; every
candidate has an error path (dequantize, difference, square, a 48-bit accumulator); then c - 1
compares of the errors and the select of the winner's codes and scale. MSE's candidates are the
distinct scale codes its factors reach: c = min(factors, ceil(log2(max / min factor) x 2^m) + 1) for
a scale of m mantissa bits (1.00 ... 0.50 on E4M3: 9; four over six: 2).
With `sr_bits`, each element draws sr_bits random bits from an LFSR (data/random_bits.yaml) and adds
them below the kept bits at the rounding point (an sr_bits-wide adder).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..formats import FloatFormat, IntFormat, ScaledFormat, ScaleRule, TensorScale, get_format
from .cells import cell_costs, gate_equivalents
from .components import (
    NOTHING,
    Counts,
    adder,
    barrel_shifter,
    comparator,
    float_multiplier,
    gates,
    multiplier,
    mux,
    register,
)
from .data import load
from .estimate import breakdown_lines
from .technology import get_node

IN_BITS, IN_EXP, IN_SIG = 32, 8, 24  # float32 input: width, exponent bits, significand bits
ERROR_BITS = 48  # a candidate's sum of squared errors


@dataclass(frozen=True)
class EncodeComponent:
    """One part of the encoder: area (um^2, all its copies) and energy per element encoded (pJ)."""

    name: str
    area_um2: float
    energy_pj_per_element: float


def _per_element(c: EncodeComponent) -> float:
    return c.energy_pj_per_element


@dataclass(frozen=True)
class EncodeCost:
    """The cost of the unit that encodes float32 values into `format`.

    area_um2:              the unit's area (um^2).
    energy_pj_per_element: energy per element encoded (pJ).
    components:            the breakdown (their areas and energies add up to the totals).
    """

    format: str
    node: str
    lanes: int
    block_elements: int
    sr_bits: int | None
    area_um2: float
    energy_pj_per_element: float
    components: tuple[EncodeComponent, ...]
    gate_equivalents: float
    input: str = "float32"

    def table(self) -> str:
        """A plain-text report: totals and the breakdown."""
        sr = "" if self.sr_bits is None else f", stochastic rounding with {self.sr_bits} random bits"
        lines = [
            f"encode {self.input} -> {self.format}, {self.lanes} lanes, blocks of {self.block_elements}, "
            f"{self.node}{sr}",
            f"area {self.area_um2:.1f} um^2 ({self.gate_equivalents:.0f} GE); "
            f"energy {self.energy_pj_per_element:.4f} pJ per element",
            "",
        ]
        return "\n".join(lines + breakdown_lines(self.components, self.area_um2, _per_element, "pJ/elem"))


@dataclass(frozen=True)
class EncodePart:
    """A named circuit of the encoder (cell counts), the elements one of its operations serves,
    and its copies in the unit."""

    name: str
    counts: Counts
    elements_per_operation: float  # elements one operation serves (math.inf: amortised to nothing)
    instances: float  # copies in the unit (the area counts each)


def divider(width: int) -> Counts:
    """A restoring array divider: one `width`-bit subtract and select per quotient bit."""
    return (adder(width) + mux(width)) * width


def float_rounding(exp_bits: int, man_bits: int) -> Counts:
    """A float32 value rounded to a float of (exp_bits, man_bits): subnormal alignment of the kept
    bits and guard (up to man_bits + 1 positions), the sticky OR of the dropped bits, the round
    increment, the exponent rebias, and the saturating compare and clamp."""
    kept = man_bits + 2
    counts = barrel_shifter(kept, man_bits + 1) + gates(IN_SIG - man_bits - 1) + adder(man_bits + 1)
    return counts + adder(exp_bits) + comparator(exp_bits + man_bits) + mux(exp_bits + man_bits)


def int_rounding(bits: int) -> Counts:
    """A float32 value rounded to a `bits`-bit integer: alignment of the significand (up to 24
    positions), the sticky OR, the round increment, and the saturating compare and clamp."""
    return barrel_shifter(bits + 1, IN_SIG) + gates(IN_SIG - bits) + adder(bits) + comparator(bits) + mux(bits)


def _rounding(fmt) -> Counts:
    if isinstance(fmt, FloatFormat):
        return float_rounding(fmt.exp_bits, fmt.man_bits)
    if isinstance(fmt, IntFormat):
        return int_rounding(fmt.bits)
    return NOTHING  # an exact float32 scale: nothing to round


def _significand(fmt) -> int:
    return IN_SIG if fmt is None else fmt.significand_bits


def random_bits(sr_bits: int) -> Counts:
    """The LFSR cells that give `sr_bits` random bits (data/random_bits.yaml): per bit, its
    flip-flop and the XNOR gates of the taps."""
    per_bit = load("random_bits")["per_random_bit"]
    return (register(per_bit["register_bit"]) + gates(per_bit["gate"])) * sr_bits


def candidates(fmt: ScaledFormat) -> int:
    """Scale candidates a search rule evaluates: 1 for the others."""
    if fmt.rule is not ScaleRule.MSE:
        return 1
    factors = fmt.search_factors
    man = fmt.scale.man_bits if isinstance(fmt.scale, FloatFormat) else IN_SIG - 1
    reach = math.ceil(math.log2(max(factors) / min(factors)) * 2**man) + 1
    return max(1, min(len(set(factors)), reach))


_RULES = (ScaleRule.OCP_FLOOR, ScaleRule.CEIL, ScaleRule.EVEN, ScaleRule.RCEIL, ScaleRule.ABSMAX, ScaleRule.MSE)


def _check(fmt: ScaledFormat, name: str) -> None:
    if not isinstance(fmt.element, (FloatFormat, IntFormat)):
        raise ValueError(f"format {name!r}: encode_cost prices float and integer elements, not codebooks")
    if fmt.rule not in _RULES or fmt.asymmetric or not fmt.block:
        rules = ", ".join(r.value for r in _RULES)
        raise ValueError(
            f"format {name!r}: encode_cost prices symmetric fixed-size blocks with rules {rules}; "
            f"got rule {fmt.rule.value!r}, block {fmt.block}, asymmetric {fmt.asymmetric}"
        )
    if fmt.scale is not None and not isinstance(fmt.scale, (FloatFormat, IntFormat)):
        raise ValueError(f"format {name!r}: encode_cost prices float, integer or float32 scales")


def _scale_parts(fmt: ScaledFormat, block: int, lanes: int) -> list[EncodePart]:
    """Per block: the scale and its reciprocal; per element: the scaling (one candidate)."""
    per_block = max(1.0, lanes / block)
    if fmt.rule.power_of_two:
        scale = adder(IN_EXP) + adder(IN_EXP)  # exponent field minus emax, then the rule's increment
        return [
            EncodePart("scale", scale, block, per_block),
            EncodePart("reciprocal", adder(IN_EXP), block, per_block),
            EncodePart("element scaling", adder(IN_EXP), 1, lanes),
        ]
    scale = float_multiplier(IN_EXP, IN_SIG, IN_SIG) + _rounding(fmt.scale)
    recip = divider(IN_SIG)
    if fmt.tensor_scale is TensorScale.NVFP4:
        recip += float_multiplier(IN_EXP, _significand(fmt.scale), IN_SIG)
    return [
        EncodePart("scale", scale, block, per_block),
        EncodePart("reciprocal", recip, block, per_block),
        EncodePart("element scaling", float_multiplier(IN_EXP, IN_SIG, IN_SIG), 1, lanes),
    ]


def _search_parts(fmt: ScaledFormat, block: int, lanes: int, c: int, one: list[EncodePart]) -> list[EncodePart]:
    """A search rule's extra candidates, every candidate's error path, and the select."""
    per_block = max(1.0, lanes / block)
    element_path = next(p.counts for p in one if p.name == "element scaling") + _rounding(fmt.element)
    candidate_scale = float_multiplier(IN_EXP, IN_SIG, 8) + next(p.counts for p in one if p.name == "scale")
    recip = next(p.counts for p in one if p.name == "reciprocal")
    dequantize = multiplier(_significand(fmt.element), _significand(fmt.scale))
    dequantize += float_multiplier(IN_EXP, _significand(fmt.element) + _significand(fmt.scale), IN_SIG)
    error = dequantize + adder(IN_SIG) + multiplier(IN_SIG, IN_SIG) + adder(ERROR_BITS)
    select = comparator(ERROR_BITS) * (c - 1) + mux(fmt.element.bits * block + fmt.scale_bits, c)
    return [
        EncodePart("candidate scales", (candidate_scale + recip) * (c - 1), block, per_block),
        EncodePart("candidate elements", element_path * (c - 1), 1, lanes),
        EncodePart("candidate errors", error * c, 1, lanes),
        EncodePart("candidate select", select, block, per_block),
    ]


def _scaled_parts(fmt: ScaledFormat, name: str, lanes: int) -> tuple[list[EncodePart], int]:
    _check(fmt, name)
    block = fmt.block * fmt.block_rows
    tree = lanes - 1 + (1 if block > lanes else 0)
    parts = [
        EncodePart("block buffer", register(IN_BITS), 1, block),
        EncodePart("amax tree", comparator(IN_BITS - 1) + mux(IN_BITS - 1), block / max(block - 1, 1), tree),
    ]
    one = _scale_parts(fmt, block, lanes)
    parts += one
    parts.append(EncodePart("element rounding", _rounding(fmt.element), 1, lanes))
    c = candidates(fmt)
    if c > 1:
        parts += _search_parts(fmt, block, lanes, c, one)
    if fmt.tensor_scale is TensorScale.NVFP4:
        parts.append(EncodePart("tensor scale", divider(IN_SIG), math.inf, 1))
    if fmt.micro is not None:
        shift = adder(IN_EXP) + comparator(IN_EXP) + mux(fmt.micro.bits) + adder(IN_EXP)
        parts.append(EncodePart("micro-exponents", shift, fmt.micro.block, max(1.0, lanes / fmt.micro.block)))
    return parts, block


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return value


def encoder_parts(fmt, *, sr_bits: int | None = None, lanes: int = 16) -> tuple[list[EncodePart], int]:
    """(parts, elements per block) of the encoder of `fmt` (see `encode_cost` for the arguments)."""
    spec = get_format(fmt)
    name = spec.name or (fmt if isinstance(fmt, str) else spec.describe())
    lanes = _check_int(lanes, "lanes", 1)
    if sr_bits is not None:
        sr_bits = _check_int(sr_bits, "sr_bits", 1)
    if isinstance(spec, ScaledFormat):
        parts, block = _scaled_parts(spec, name, lanes)
    elif isinstance(spec, (FloatFormat, IntFormat)):
        parts, block = [EncodePart("element rounding", _rounding(spec), 1, lanes)], 1
    else:
        raise ValueError(f"format {name!r}: encode_cost prices float, integer and block-scaled formats")
    if sr_bits is not None:
        parts.append(EncodePart("random bits", random_bits(sr_bits), 1, lanes))
        parts.append(EncodePart("stochastic add", adder(sr_bits), 1, lanes))
    return parts, block


def encode_cost(fmt, node="7nm", *, sr_bits: int | None = None, lanes: int = 16) -> EncodeCost:
    """Area (um^2) and energy per element (pJ) of the unit that encodes float32 values into `fmt`.

    fmt:     a format name or spec: a float or integer element format, or a block-scaled one with
             float or integer elements and a power-of-two, absmax or MSE rule (the NVFP4 variants
             included).
    node:    technology node, as in `estimate`.
    sr_bits: stochastic rounding with this many random bits per element (an LFSR and an adder at
             the rounding point); None for round-to-nearest.
    lanes:   float32 values taken per cycle.
    The module docstring lists the components.
    """
    spec = get_format(fmt)
    name = spec.name or (fmt if isinstance(fmt, str) else spec.describe())
    parts, block = encoder_parts(spec, sr_bits=sr_bits, lanes=lanes)
    tech = get_node(node)
    costs = cell_costs(tech)
    components = tuple(
        EncodeComponent(
            p.name,
            p.counts.area_um2(costs) * p.instances,
            0.0 if math.isinf(p.elements_per_operation) else p.counts.energy_pj(costs) / p.elements_per_operation,
        )
        for p in parts
        if p.counts.cells
    )
    area = sum(c.area_um2 for c in components)
    return EncodeCost(
        format=name,
        node=tech.label,
        lanes=lanes,
        block_elements=block,
        sr_bits=sr_bits,
        area_um2=area,
        energy_pj_per_element=sum(c.energy_pj_per_element for c in components),
        components=components,
        gate_equivalents=gate_equivalents(area, tech),
    )
