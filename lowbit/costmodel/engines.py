"""`engine_cost`: the area and energy of one fused dot-product-add datapath of a tensor-core or
matrix-core instruction (`lowbit.formats.engines`), built from the component library.

The unit priced is ONE datapath: the circuit that computes one output's fused sum of `group_size`
products and C, once per group (a profile's `split_k` groups run through it one after another).
`area_um2` is that datapath's area (um^2); `energy_pj_per_mac` is the energy of one of its
operations (pJ) over the `group_size` products it sums.

Widths (bits), with g = group_size, F = fraction_bits, sa and sb the significands of A and B
(fraction bits + 1), xa, xb and xc the exponent fields of A, B and C:
- An aligned product term is F + 2 + 1 + guard bits wide: F fraction bits below the largest
  exponent, 2 integer bits (a product of two significands in [1, 2) lies in [1, 4)), a sign bit,
  and the guard bits the cut's rounding needs (data/engine_datapath.yaml: 0 to truncate, 1 sticky
  bit to round down, 3 to round to nearest). C's term fits the same field (it has one integer bit).
- Exponents meet in a max tree of max(max(xa, xb) + 1, xc) bits (a product's exponent is the sum
  of two fields); block scales widen the products' exponents by one bit more than the scale's.
- An adder tree over t terms of w bits adds pairs at each level, level l's adders w + l bits wide:
  its sum has w + ceil(log2 t) bits.

The parts, per algorithm (each a `Component`; their areas and energies add up to the totals):
- T_FDPA and ST_FDPA: g significand multipliers (sa x sb) and g exponent adders (max(xa, xb)
  bits); ST_FDPA's scale exponent adders (two adds of the scale's exponent per block, as
  `estimate` prices an E8M0 scale); the exponent max tree (g comparators and selects over g + 1
  exponents); g + 1 exponent subtractors (the shift amounts); g + 1 alignment shifters (w log2 w
  multiplexer bits each, Chen et al. 2025's count); g + 1 sign gates per bit; the adder tree over
  g + 1 terms; the normalization (conversion to magnitude, leading-zero counter, normalization
  shifter over the sum's width, exponent update); the rounding (none for RZ; for RNE a sticky OR
  over the dropped bits below guard and round, and an incrementer counted as half an adder of the
  output's significand, as the library's float adder counts it).
- GST_FDPA: each product placed exactly in a fixed-point field spanning the element formats'
  whole range, summed in subgroups of `subgroup`; per block two scale exponent adds (ue8m0) or a
  floating-point multiply of the two scales and a multiply of each subgroup sum by their product
  (ue4m3); then the subgroup sums and C fused as in T_FDPA.
- TR_FDPA and GTR_FDPA (CDNA3): the products fused as in T_FDPA without C (GTR_FDPA: the even and
  the odd products apart, then merged by an arithmetic shift, which rounds down at no cost in two's
  complement); the second stage aligns that sum (F2 + 1 fraction bits) and C (F bits, rounded
  down: one sticky bit) at the larger exponent and adds them; normalization; RNE to float32 of
  the F2-bit result.
- E_FDPA: the products placed exactly in a fixed-point field over their whole exponent range
  (alignment over the full range) and summed, then added to C with one rounding by a float adder
  whose addend is that whole sum.
- FTZ_MUL_ADD: float32 multipliers and the pair or quad tree of float32 adders, then one more for
  C; the flush of every subnormal input, product and sum (a NOR of the exponent bits and an AND per
  fraction bit).
- FMA: the significand multiplier, the exponent adder and a float adder of the output format whose
  addend is the exact product.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..formats import Algorithm, Arch, EngineProfile, Normalization, OperandType, SumRounding, get_engine
from .cells import cell_costs, gate_equivalents
from .components import (
    NOTHING,
    Counts,
    adder,
    aligner,
    comparator,
    conditional_negate,
    float_adder,
    float_multiplier,
    gates,
    leading_zero_counter,
    log2_ceil,
    multiplier,
    mux,
)
from .data import load
from .estimate import Component, breakdown_lines
from .technology import Node, get_node

SOURCES = (
    "Algorithms and their parameters: Xie, Wang, Yang, Yang, MMA-Sim, arXiv 2511.10909 (2025). "
    "Component counts: lowbit's component library (Chen et al. 2025 Table 6's aligner and exponent "
    "counts). Cell area and energy: Aladdin 40 nm (Shao et al., ISCA 2014), scaled by Stillmaker and "
    "Baas (2017). Guard bits per rounding: Ercegovac and Lang, Digital Arithmetic (2004), floating-point addition."
)
NOT_MODELLED = (
    "Not modelled: register files, operand delivery (register-file reads, crossbars, shared memory), "
    "control and sequencing, pipeline registers, special values (NaN, Inf, the exponent a zero term "
    "aligns to), subnormal outputs and overflow, and the split_k loop that feeds each group's result "
    "back as C. (The float adders of FMA, FTZ_MUL_ADD and E_FDPA keep the library's result register.)"
)
_ALGORITHM_TEXT = {
    Algorithm.T_FDPA: "products and C aligned to the largest exponent, truncated F bits below it, summed, normalized",
    Algorithm.ST_FDPA: "T_FDPA with the two block scales' exponents added to the products' exponents",
    Algorithm.GST_FDPA: "exact subgroup sums times their block scales, fused with C as in T_FDPA",
    Algorithm.TR_FDPA: "products fused and truncated, then added to C rounding down (F2 bits), then RNE",
    Algorithm.GTR_FDPA: "even and odd products fused apart, merged rounding down, added to C as in TR_FDPA",
    Algorithm.E_FDPA: "products summed exactly over their whole range, added to C with one RNE",
    Algorithm.FTZ_MUL_ADD: "float32 multiplies and a tree of float32 adds (RNE), subnormals flushed",
    Algorithm.FMA: "one IEEE fused multiply-add per product",
}
_SIGN = 1  # the sign bit an aligned term carries into the adder tree
_PRODUCT_INTEGER_BITS = 2  # a product of two significands in [1, 2) lies in [1, 4)
_C_INTEGER_BITS = 1  # C's significand lies in [1, 2)
# Fraction bits of the output and the rounding its normalization applies.
_OUTPUT = {
    Normalization.RZ_FP32: (23, SumRounding.TRUNCATE),
    Normalization.RZ_E8M13: (13, SumRounding.TRUNCATE),
    Normalization.RNE_FP16: (10, SumRounding.NEAREST),
    Normalization.RNE_FP32: (23, SumRounding.NEAREST),
    Normalization.RNE_FP64: (52, SumRounding.NEAREST),
}
_NO_CUT = {
    Algorithm.FMA: "it rounds every multiply-add to nearest (IEEE)",
    Algorithm.E_FDPA: "it sums exactly",
    Algorithm.FTZ_MUL_ADD: "it multiplies and adds in float32 with RNE",
}


@dataclass(frozen=True)
class EngineCost:
    """The cost of one fused dot-product-add datapath of an instruction (see the module doc).

    area_um2:          area of ONE datapath (um^2): one output's fused sum of group_size products and C.
    energy_pj_per_mac: energy of one operation of the datapath (pJ) over the group_size products it sums.
    components:        the breakdown (their areas and energies add up to the totals).
    fraction_bits:     the fused sum's F (bits; the profile's, or the override); None without a cut.
    aligned_bits:      width of an aligned term (bits; the exact field for E_FDPA); None for float trees.
    """

    arch: str
    instruction: str
    node: str
    profile: EngineProfile
    fraction_bits: int | None
    aligned_bits: int | None
    area_um2: float
    energy_pj_per_mac: float
    components: tuple[Component, ...]
    gate_equivalents: float

    @property
    def group_size(self) -> int:
        return self.profile.group_size

    @property
    def area_per_product_um2(self) -> float:
        """Area per product summed per operation (um^2): the datapath's area at equal throughput."""
        return self.area_um2 / self.profile.group_size

    @property
    def modelled(self) -> str:
        """Which parts are priced and their sources, and what is left out."""
        algorithm = self.profile.algorithm
        parts = ", ".join(c.name for c in self.components)
        return f"{algorithm.name} ({_ALGORITHM_TEXT[algorithm]}). Modelled: {parts}. {SOURCES} {NOT_MODELLED}"

    def table(self) -> str:
        """A plain-text report: the totals and the breakdown."""
        bits = "no cut" if self.fraction_bits is None else f"{self.fraction_bits} fraction bits"
        lines = [
            f"{self.instruction} on {self.arch}, {self.profile.algorithm.name}, group {self.group_size}, {bits}, "
            f"{self.node}",
            f"area {self.area_um2:.1f} um^2 per datapath ({self.gate_equivalents:.0f} GE); "
            f"energy {self.energy_pj_per_mac:.4f} pJ per MAC",
            "",
        ]
        return "\n".join(lines + breakdown_lines(self.components, self.area_um2))


@dataclass(frozen=True)
class _Datapath:
    parts: list[tuple[str, Counts]]
    aligned_bits: int | None


# ----- widths ------------------------------------------------------------------------------------
def exponent_bits(t: OperandType) -> int:
    """Bits of t's exponent field: enough codes for every binade from emin to the largest finite
    value's, and one for zero and the subnormals."""
    emax = math.frexp(t.max_value)[1] - 1
    return math.ceil(math.log2(emax - t.emin + 2))


def fixed_point_bits(t: OperandType) -> int:
    """Bits of t's largest magnitude counted in units of its smallest subnormal: the width of a
    fixed-point field that holds every value of t exactly."""
    return int(math.ldexp(t.max_value, t.man_bits - t.emin)).bit_length()


def guard_bits(cut: SumRounding) -> int:
    """Bits kept below a cut that rounds as `cut` (data/engine_datapath.yaml)."""
    return int(load("engine_datapath")["guard_bits"][cut.value])


def _sig(t: OperandType) -> int:
    return t.man_bits + 1


def _product_exp_bits(p: EngineProfile) -> int:
    """A product's exponent: the sum of two exponent fields, one bit wider than the wider."""
    return max(exponent_bits(p.a_type), exponent_bits(p.b_type)) + 1


# ----- building blocks ---------------------------------------------------------------------------
def _max_node(width: int) -> Counts:
    """One node of an exponent max tree: compare two exponents, pass the larger."""
    return comparator(width) + mux(width)


def adder_tree(terms: int, width: int) -> Counts:
    """A binary tree of two-input adders over `terms` words of `width` bits: level l (from 0) adds
    pairs of (width + l)-bit words into (width + l + 1)-bit sums, an odd word passing to the next
    level. terms - 1 adders; the sum has width + ceil(log2 terms) bits."""
    counts, n, level = NOTHING, terms, 0
    while n > 1:
        counts += (n // 2) * adder(width + level)
        n, level = n - n // 2, level + 1
    return counts


def _rounding(width: int, man_bits: int, cut: SumRounding) -> Counts:
    """Rounding a `width`-bit normalized magnitude to man_bits fraction bits: nothing to truncate;
    else a sticky OR over the dropped bits not kept as guard bits, and an incrementer of the
    man_bits + 1 kept bits (half adders, counted as half an adder, as `float_adder` counts it)."""
    kept = guard_bits(cut)
    if kept == 0:
        return NOTHING
    dropped = width - (man_bits + 1)
    return gates(dropped - (kept - 1)) + adder((man_bits + 1) / 2)


def _normalizer(width: int, exp_width: int) -> Counts:
    """A two's complement sum of `width` bits to sign and normalized magnitude: negate, count the
    leading zeros, shift over the width, update the exponent."""
    return conditional_negate(width, zero=False) + leading_zero_counter(width) + aligner(width) + adder(exp_width)


def _fused(terms: int, width: int, exp_width: int) -> list[tuple[str, Counts]]:
    """`terms` terms aligned to the largest exponent, signed and summed."""
    return [
        ("exponent max tree", (terms - 1) * _max_node(exp_width)),
        ("exponent subtractors", terms * adder(exp_width)),
        ("alignment shifters", terms * aligner(width)),
        ("term signs", gates(terms * width)),
        ("adder tree", adder_tree(terms, width)),
    ]


def _products(p: EngineProfile) -> list[tuple[str, Counts]]:
    g = p.group_size
    return [
        ("significand multipliers", g * multiplier(_sig(p.a_type), _sig(p.b_type))),
        ("exponent adders", g * adder(_product_exp_bits(p) - 1)),
    ]


def _output(width: int, exp_width: int, how: Normalization, rounded_width: int | None = None) -> list:
    """Normalization of a `width`-bit sum and the rounding to the output (of a rounded_width-bit
    magnitude where an earlier cut has narrowed it)."""
    man_bits, cut = _OUTPUT[how]
    return [
        ("normalization", _normalizer(width, exp_width)),
        ("rounding", _rounding(rounded_width or width, man_bits, cut)),
    ]


# ----- NVIDIA: truncated fused sums --------------------------------------------------------------
def _t_fdpa(p: EngineProfile, frac: int) -> _Datapath:
    terms = p.group_size + 1
    exp_width = max(_product_exp_bits(p), exponent_bits(p.c_type))
    parts = _products(p)
    if p.algorithm is Algorithm.ST_FDPA:
        se = exponent_bits(p.scale_type)
        blocks = p.group_size // p.block_size
        parts.append(("scale exponent adders", blocks * 2 * adder(se)))
        exp_width = max(max(_product_exp_bits(p), se + 1) + 1, exponent_bits(p.c_type))
    width = frac + _PRODUCT_INTEGER_BITS + _SIGN + guard_bits(p.sum_rounding)
    parts += _fused(terms, width, exp_width)
    parts += _output(width + log2_ceil(terms), exp_width, p.normalization)
    return _Datapath(parts, width)


def _scale_stage(p: EngineProfile, sub_width: int) -> tuple[list, int, int]:
    """GST_FDPA's block scales on the subgroup sums of sub_width bits (sign included): the parts,
    the scaled sums' significand bits and their fraction bits beyond the elements'."""
    s = p.scale_type
    blocks, sums = p.group_size // p.block_size, p.group_size // p.subgroup
    se, ss = exponent_bits(s), _sig(s)
    if s.man_bits == 0:  # a power of two: its exponent adds, as `estimate` prices an E8M0 scale
        return [("scale exponent adders", blocks * 2 * adder(se))], sub_width - _SIGN, 0
    # The two scales multiply per block, then each subgroup sum by their product.
    counts = blocks * float_multiplier(se, ss, ss) + sums * multiplier(sub_width - _SIGN, 2 * ss)
    return [("scale multipliers", counts)], sub_width - _SIGN + 2 * ss, 2 * s.man_bits


def _gst_fdpa(p: EngineProfile, frac: int) -> _Datapath:
    g, sub = p.group_size, p.subgroup
    a, b = p.a_type, p.b_type
    field = fixed_point_bits(a) + fixed_point_bits(b) + _SIGN
    sub_width = field + log2_ceil(sub)
    exact = g * aligner(field) + gates(g * field) + (g // sub) * adder_tree(sub, field)
    parts = _products(p) + [("subgroup exact sums", exact)]
    scale_parts, term_bits, scale_frac = _scale_stage(p, sub_width)
    parts += scale_parts
    # A scaled sum's bits above its scale exponent: its width less the fraction bits of the
    # elements (counted from their smallest subnormals) and of the scales.
    integer_bits = term_bits - (a.man_bits - a.emin + b.man_bits - b.emin) - scale_frac
    width = frac + integer_bits + _SIGN + guard_bits(p.sum_rounding)
    exp_width = max(exponent_bits(p.scale_type) + 1, exponent_bits(p.c_type))
    terms = g // sub + 1
    parts += _fused(terms, width, exp_width)
    parts += _output(width + log2_ceil(terms), exp_width, p.normalization)
    return _Datapath(parts, width)


# ----- AMD CDNA3: truncate, then round down ------------------------------------------------------
def _tr_fdpa(p: EngineProfile, frac: int) -> _Datapath:
    """One (TR) or two (GTR: even and odd) truncated fused sums of the products, then the second
    stage with C."""
    halves = 2 if p.algorithm is Algorithm.GTR_FDPA else 1
    n = p.group_size // halves
    exp_width = max(_product_exp_bits(p), exponent_bits(p.c_type))
    # MMA-Sim's first stage truncates the products, whatever the second stage does.
    width = frac + _PRODUCT_INTEGER_BITS + _SIGN + guard_bits(SumRounding.TRUNCATE)
    parts = _products(p) + [(name, halves * counts) for name, counts in _fused(n, width, exp_width)]
    dot = width + log2_ceil(n)
    if halves == 2:
        # The sum with the smaller exponent shifts right to F bits below the larger: an arithmetic
        # shift of a two's complement sum rounds it down with no extra bit.
        merge = _max_node(exp_width) + adder(exp_width) + 2 * aligner(dot) + adder(dot)
        parts.append(("even/odd merge", merge))
        dot += 1
    f2 = p.second_fraction_bits
    # The dot sum cut F2 + 1 bits below the larger exponent (an arithmetic shift again); C cut F
    # bits below it, rounded down as a magnitude: its sticky bit.
    wide = f2 + 1 + (dot - frac)
    c_width = frac + _C_INTEGER_BITS + _SIGN + guard_bits(p.sum_rounding)
    second = _max_node(exp_width) + adder(exp_width) + aligner(wide) + aligner(c_width) + gates(c_width)
    parts.append(("second stage (C, round down)", second + adder(wide)))
    # Rounding down to F2 bits below the leading bit drops two's complement bits; RNE follows.
    parts += _output(wide + 1, exp_width, p.normalization, rounded_width=f2 + 1)
    return _Datapath(parts, width)


# ----- exact sums, float trees, FMA chains -------------------------------------------------------
def _e_fdpa(p: EngineProfile, frac: None) -> _Datapath:
    g, d = p.group_size, p.d_type
    field = fixed_point_bits(p.a_type) + fixed_point_bits(p.b_type) + _SIGN
    total = field - _SIGN + log2_ceil(g)
    parts = _products(p) + [
        ("exact alignment", g * aligner(field) + gates(g * field)),
        ("adder tree", adder_tree(g, field)),
        ("C add and rounding (float adder)", float_adder(exponent_bits(d), d.man_bits, total)),
    ]
    return _Datapath(parts, field)


def _flush(t: OperandType) -> Counts:
    """Flushing a subnormal of t to zero: a NOR over the exponent field, an AND per fraction bit."""
    return gates(exponent_bits(t) - 1 + t.man_bits)


def _ftz_mul_add(p: EngineProfile, frac: None) -> _Datapath:
    g, d = p.group_size, p.d_type
    e, m = exponent_bits(d), d.man_bits
    # Inputs, C, then the g products, the g - 1 tree sums and the sum with C, each flushed.
    flush = g * (_flush(p.a_type) + _flush(p.b_type)) + _flush(p.c_type) + 2 * g * _flush(d)
    parts = [
        ("float multipliers", g * float_multiplier(e, _sig(p.a_type), _sig(p.b_type))),
        ("float adder tree", (g - 1) * float_adder(e, m, m + 1)),
        ("float adder (C)", float_adder(e, m, m + 1)),
        ("denormal flush", flush),
    ]
    return _Datapath(parts, None)


def _fma(p: EngineProfile, frac: None) -> _Datapath:
    d = p.d_type
    parts = _products(p) + [
        ("accumulator (float adder, RNE)", float_adder(exponent_bits(d), d.man_bits, _sig(p.a_type) + _sig(p.b_type)))
    ]
    return _Datapath(parts, None)


_BUILD: dict[Algorithm, Callable[[EngineProfile, int | None], _Datapath]] = {
    Algorithm.T_FDPA: _t_fdpa,
    Algorithm.ST_FDPA: _t_fdpa,
    Algorithm.GST_FDPA: _gst_fdpa,
    Algorithm.TR_FDPA: _tr_fdpa,
    Algorithm.GTR_FDPA: _tr_fdpa,
    Algorithm.E_FDPA: _e_fdpa,
    Algorithm.FTZ_MUL_ADD: _ftz_mul_add,
    Algorithm.FMA: _fma,
}


# ----- the entry point ---------------------------------------------------------------------------
def _profile(arch, instruction: str | None) -> EngineProfile:
    if isinstance(arch, EngineProfile):
        if instruction is not None:
            raise ValueError("instruction: pass an EngineProfile alone, or an arch and an instruction")
        return arch
    if instruction is None:
        raise TypeError("instruction: engine_cost needs the instruction name after the arch, or an EngineProfile")
    return get_engine(arch, instruction)


def _fraction_bits(p: EngineProfile, fraction_bits) -> int | None:
    if fraction_bits is None:
        return p.fraction_bits
    if isinstance(fraction_bits, bool) or not isinstance(fraction_bits, int):
        raise TypeError(f"fraction_bits must be an integer, got {fraction_bits!r}")
    if p.fraction_bits is None:
        raise ValueError(
            f"fraction_bits: {p.instruction} on {p.arch.value} ({p.algorithm.name}) has no truncated fused sum "
            f"whose width it could set: {_NO_CUT[p.algorithm]}"
        )
    if fraction_bits < 1:
        raise ValueError(f"fraction_bits must be at least 1, got {fraction_bits}")
    return fraction_bits


def _merge(parts: list[tuple[str, Counts]]) -> list[tuple[str, Counts]]:
    """Parts of one name added together, in first-seen order; empty ones left out."""
    merged: dict[str, Counts] = {}
    for name, counts in parts:
        merged[name] = merged.get(name, NOTHING) + counts
    return [(name, counts) for name, counts in merged.items() if counts.cells]


def engine_cost(
    arch: EngineProfile | Arch | str,
    instruction: str | None = None,
    *,
    node: str | float | Node = "7nm",
    fraction_bits: int | None = None,
) -> EngineCost:
    """Area (um^2) and energy per MAC (pJ) of one fused dot-product-add datapath of an instruction.

    arch, instruction: as `lowbit.formats.get_engine` takes them ('hopper', 'wgmma.m64n8k32.f32.e4m3.e4m3'),
                   or an EngineProfile alone (`engine_cost(profile)`).
    node:          technology node: '45nm', '40nm', '16nm', '7nm' (or any size from 7 to 130 nm).
    fraction_bits: the fused sum's fraction bits F (>= 1) in place of the profile's, to put the
                   accumulator's width on a cost axis; only for algorithms that cut their sum there
                   (T, ST, GST, TR, GTR_FDPA).
    The datapath is one output's fused sum of group_size products and C (see the module doc for
    its parts); its energy is spread over the group_size MACs of one operation.
    """
    p = _profile(arch, instruction)
    frac = _fraction_bits(p, fraction_bits)
    tech = get_node(node)
    datapath = _BUILD[p.algorithm](p, frac)
    costs = cell_costs(tech)
    components = tuple(
        Component(name, counts.area_um2(costs), counts.energy_pj(costs) / p.group_size)
        for name, counts in _merge(datapath.parts)
    )
    area = sum(c.area_um2 for c in components)
    return EngineCost(
        arch=p.arch.value,
        instruction=p.instruction,
        node=tech.label,
        profile=p,
        fraction_bits=frac,
        aligned_bits=datapath.aligned_bits,
        area_um2=area,
        energy_pj_per_mac=sum(c.energy_pj_per_mac for c in components),
        components=components,
        gate_equivalents=gate_equivalents(area, tech),
    )
