"""Unit templates: the k-lane dot-product unit (k >= 2) and the single MAC / FMA (k = 1), built from
the component library.

A unit is a list of Parts. Each part is a circuit (cell counts) and the number of MACs one of its
operations serves: per-lane parts and the adder tree serve k MACs per cycle, a block-scale stage
serves the block, a per-tensor stage the whole reduction, a codebook table read its reuse.

The dot-product unit follows Chen et al. (2025), Table 6, per k lanes (x exponent bits, y mantissa
bits, n the aligned width min(2^(x+1) + 2y, partial-sum cap)):
  multipliers k(y+1)^2 (floats) or k(x+y+1)^2 (integers); adder tree k n (floats) or 2k(x+y+1)
  (integers); exponent adders, subtractors and comparators k x each; aligners k n log2 n; one shared
  normalizer n log2 n. On top: the accumulator, the block-scale stage (E8M0: integer adds of the
  exponents; other scales: floating-point multiplies), codebook tables and zero-point corrections.

Shared micro-exponents (MX9, MX6, MX4; Rouhani et al. 2023) are a right shift, not an exponent add:
the elements are fixed point and the tree sums integers, so a sub-block's scale 2^-(da + db) is
applied by shifting the sum of its lanes' products by da + db positions before the tree, which
keeps them in fixed point (an exponent add would need a float partial sum per sub-block, and an
aligner after it). The "micro-exponents" part counts, per sub-block: the add da + db (both operands
have micro-exponents), a barrel shifter of the sub-block's sum (n + 1 bits, S + 1 positions, S the
largest total shift) and the S extra bits the adder tree needs for its lanes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..formats import Accumulator, AccumulatorKind
from .components import (
    NOTHING,
    Counts,
    adder,
    aligner,
    barrel_shifter,
    comparator,
    conditional_negate,
    float_adder,
    float_multiplier,
    multiplier,
    mux,
    register,
)
from .operands import Operand, ScaleKind


@dataclass(frozen=True)
class Part:
    """A named circuit of the unit, and how many MACs one of its operations serves."""

    name: str
    counts: Counts
    macs_per_operation: float  # MACs one operation of one copy serves (its energy is spread over them)
    instances: float = 1.0  # copies in the unit (the area counts each; together they serve more MACs; 0:
    # the part lives outside the unit, so only its energy counts)


@dataclass(frozen=True)
class Geometry:
    """The unit's shape: lanes, the partial-sum cap (bits, None for none), elements per output row
    that per-row scales are amortised over, and how often a decoded codebook value is reused."""

    lanes: int
    partial_sum_bits: int | None
    reduction_length: int
    reuse: int


def _product_bits(a: Operand, b: Operand) -> int:
    """Significand bits of a product (a sign-only operand passes the other one, plus a sign bit)."""
    if a.sign_only and b.sign_only:
        return 2
    if a.sign_only or b.sign_only:
        return (b if a.sign_only else a).sig_bits + 1
    return a.sig_bits + b.sig_bits


def _product(a: Operand, b: Operand, cap: int | None) -> tuple[bool, int, int]:
    """(float product?, exponent bits of the lanes' exponent logic, aligned width n)."""
    sig = _product_bits(a, b)
    floating = a.exp_bits > 0 or b.exp_bits > 0
    x = max(a.exp_bits, b.exp_bits)
    # The product's exponent spans 2^xa + 2^xb values (2^(x+1) for one format, Chen's formula).
    n = (2**a.exp_bits + 2**b.exp_bits) + sig - 2 if floating else sig
    return floating, x, n if cap is None else min(n, cap)


def _lane_multiplier(a: Operand, b: Operand) -> Counts:
    if a.sign_only and b.sign_only:
        return conditional_negate(1, a.has_zero or b.has_zero)
    if a.sign_only or b.sign_only:
        other = b if a.sign_only else a
        zero = a.has_zero if a.sign_only else b.has_zero
        return conditional_negate(other.sig_bits + 1, zero)
    return multiplier(a.sig_bits, b.sig_bits)


def _accumulator(acc: Accumulator, addend_bits: int) -> Counts:
    if acc.kind is AccumulatorKind.FLOAT:
        return float_adder(acc.exp_bits, acc.man_bits, addend_bits)
    if acc.kind is AccumulatorKind.INT:
        return adder(acc.bits) + register(acc.bits)
    raise ValueError(
        "accumulator: 'exact' is an emulation reference with no hardware cost; cost a float (fp32, fp16, "
        "bf16, fp22, eXmY) or integer (intN) accumulator instead"
    )


def _block(a: Operand, b: Operand, geo: Geometry) -> float:
    """Elements per dequantisation: the finer of the two operands' blocks."""
    blocks = [s.block or geo.reduction_length for s in (a.scale, b.scale) if s is not None]
    return float(min(blocks)) if blocks else float(geo.reduction_length)


def _dequantizer(a: Operand, b: Operand, n: int) -> Counts:
    """Applies the block scales to a partial sum of n bits: E8M0 scales add exponents (two 8-bit adds
    for two scales: their sum, then into the partial sum's exponent); other scales multiply (two
    floating-point multiplies: the scales' product, then the partial sum by it)."""
    scales = [s for s in (a.scale, b.scale) if s is not None]
    if not scales:
        return NOTHING
    counts = NOTHING
    pow2 = [s for s in scales if s.kind is ScaleKind.POW2]
    mult = [s for s in scales if s.kind is ScaleKind.MULTIPLY]
    for s in pow2:
        counts += adder(s.exp_bits)
    exp_bits = max(max((s.exp_bits for s in scales), default=0), 1)
    if len(mult) == 2:
        counts += float_multiplier(exp_bits, mult[0].sig_bits, mult[1].sig_bits)
        counts += float_multiplier(exp_bits, n, mult[0].sig_bits + mult[1].sig_bits)
    elif len(mult) == 1:
        counts += float_multiplier(exp_bits, n, mult[0].sig_bits)
    return counts


def _scale_extras(a: Operand, b: Operand, geo: Geometry, n: int, block: float) -> list[Part]:
    parts = []
    k = geo.lanes
    for op, other in ((a, b), (b, a)):
        s = op.scale
        if s is None:
            continue
        if s.tensor_scale and not any(p.name == "tensor scale" for p in parts):
            # One FP32 multiply per output by the product of the tensor scales, in the epilogue that
            # many units share: its energy counts, its area is not the unit's.
            parts.append(Part("tensor scale", float_multiplier(8, 24, 24), geo.reduction_length, instances=0.0))
        if s.double_quant:  # decode each block's 8-bit scale code and multiply by its group's absmax
            parts.append(Part(f"scale decode ({op.name})", mux(16, 256) + float_multiplier(8, 24, 16), block))
        if s.zero_point:  # zero point x (sum of the other operand over the block)
            sums = adder(k * (other.sig_bits + 1)) + float_multiplier(8, n, op.sig_bits)
            parts.append(Part(f"zero-point correction ({op.name})", sums, k))
        if s.count == 2:  # AFPQ: positive and negative values form two partial sums, dequantized apart
            parts.append(Part(f"second partial sum ({op.name})", adder(k * n) + aligner(n), k))
    return parts


def _lookups(a: Operand, b: Operand, geo: Geometry) -> list[Part]:
    parts = []
    for op in (a, b):
        t = op.lookup
        if t is None:
            continue
        # One shared table of registers; every lane reads it through its own mux tree.
        ports = max(1, math.ceil(geo.lanes / t.per))
        parts.append(Part(f"codebook table ({op.name})", register(t.entries * t.width), math.inf))
        parts.append(Part(f"codebook decode ({op.name})", mux(t.width, t.entries), t.per * geo.reuse, ports))
    return parts


def _micro_exponents(a: Operand, b: Operand, n: int, lanes: int) -> Part | None:
    """The sub-block shift of shared micro-exponents (see the module notes), or None without them.
    n: the products' aligned width; lanes: lanes the unit sums (1: a MAC shifts its product)."""
    stages = [op.scale for op in (a, b) if op.scale is not None and op.scale.micro_bits]
    if not stages:
        return None
    sub = min(s.micro_block for s in stages) if lanes > 1 else 1
    shift = sum(s.micro_shift for s in stages)  # S: the largest total shift of a sub-block
    counts = adder(max(s.micro_bits for s in stages) + 1) if len(stages) == 2 else NOTHING
    width = n + 1 if sub > 1 else n  # the sum of a sub-block's products carries one more bit
    counts += barrel_shifter(width, shift + 1) + adder(sub * shift)
    return Part("micro-exponents", counts, sub, max(1.0, lanes / sub))


def dot_product_unit(a: Operand, b: Operand, acc: Accumulator, geo: Geometry) -> list[Part]:
    """The parts of a k-lane dot-product unit (k = geo.lanes >= 2) for operands a and b."""
    k = geo.lanes
    floating, x, n = _product(a, b, geo.partial_sum_bits)
    block = _block(a, b, geo)
    parts = [Part("lane multipliers", _lane_multiplier(a, b), 1, k)]
    if floating:
        both = a.exp_bits > 0 and b.exp_bits > 0
        parts += [
            Part("exponent adders", adder(x) if both else NOTHING, 1, k),
            Part("exponent comparators", comparator(x), 1, k),
            Part("exponent subtractors", adder(x), 1, k),
            Part("aligners", aligner(n), 1, k),
        ]
    parts.append(Part("adder tree", adder(k * n), k))
    micro = _micro_exponents(a, b, n, k)
    if micro is not None:
        parts.append(micro)
    if acc.kind is AccumulatorKind.FLOAT:
        parts.append(Part("normalizer", aligner(n), k))
    # Blocks longer than the lanes sum their partial sums in fixed point before the scale applies.
    if block > k and (a.scale or b.scale):
        width = n + math.ceil(math.log2(block / k))
        parts.append(Part("block accumulator", adder(width) + register(width), k))
    if a.scale or b.scale:
        parts.append(Part("dequantizer", _dequantizer(a, b, n), block, max(1.0, math.ceil(k / block))))
    parts.append(Part("accumulator", _accumulator(acc, n), max(float(k), block if (a.scale or b.scale) else k)))
    parts += _scale_extras(a, b, geo, n, block)
    parts += _lookups(a, b, geo)
    return parts


def mac_unit(a: Operand, b: Operand, acc: Accumulator, geo: Geometry) -> list[Part]:
    """A single MAC (integers) or FMA (floats): the lane multiplier and exponent add, then the
    product added straight into the accumulator; scales, when the formats have them, as above."""
    floating, x, _ = _product(a, b, None)
    sig = _product_bits(a, b)
    parts = [Part("multiplier", _lane_multiplier(a, b), 1)]
    if floating and a.exp_bits > 0 and b.exp_bits > 0:
        parts.append(Part("exponent adder", adder(x + 1), 1))
    micro = _micro_exponents(a, b, sig, 1)
    if micro is not None:
        parts.append(micro)
    parts.append(Part("accumulator", _accumulator(acc, sig), 1))
    if a.scale or b.scale:
        block = _block(a, b, geo)
        parts.append(Part("dequantizer", _dequantizer(a, b, sig), block))
        parts += _scale_extras(a, b, geo, sig, block)
    parts += _lookups(a, b, geo)
    return parts
