"""engine_cost: one fused dot-product-add datapath per instruction. Cell counts worked by hand from the
widths each algorithm needs (multiplied by the calibrated cell costs), monotonicity, the published
contrasts (Hopper's 13-bit FP8 sum against Blackwell's 25), every profile, and bad input."""

import dataclasses
import math

import pytest

import lowbit.simulator
from lowbit.costmodel import EngineCost, engine_cost, get_node
from lowbit.costmodel.cells import Cell, cell_costs
from lowbit.costmodel.components import float_adder
from lowbit.costmodel.engines import exponent_bits, fixed_point_bits
from lowbit.formats import Normalization, get_engine
from lowbit.formats.engines import operand_types

ADD, MUL, MUX, CMP, GATE = Cell.ADDER_BIT, Cell.MULTIPLIER_CELL, Cell.MUX_BIT, Cell.COMPARE_BIT, Cell.GATE
COSTS = cell_costs(get_node("7nm"))

VOLTA_F32 = ("volta", "mma.m8n8k4.f32.f16.f16.f32")
VOLTA_F16 = ("volta", "mma.m8n8k4.f16.f16.f16.f16")
AMPERE_F16 = ("ampere", "mma.m16n8k16.f32.f16.f16.f32")
HOPPER_FP8 = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
BLACKWELL_FP8 = ("blackwell", "tcgen05.mma.m128n8k32.f8f6f4.f32.e4m3.e4m3")
RTX_NVF4 = ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3")
RTX_MXF4 = ("rtx_blackwell", "mma.m16n8k64.mxf4.f32.e2m1.e2m1.f32")
CDNA3_F16 = ("cdna3", "mfma.f32_16x16x4_4b_f16")
CDNA3_FP8 = ("cdna3", "mfma.f32_16x16x32_fp8_fp8")
CDNA1_F16 = ("cdna1", "mfma.f32_16x16x4f16")
CDNA1_F32 = ("cdna1", "mfma.f32_32x32x1f32")


def area(cells: dict) -> float:
    return sum(n * COSTS[c].area_um2 for c, n in cells.items())


def energy(cells: dict) -> float:
    return sum(n * COSTS[c].energy_pj for c, n in cells.items())


def part(cost: EngineCost, name: str):
    found = [c for c in cost.components if c.name == name]
    assert len(found) == 1, f"{name} not in {[c.name for c in cost.components]}"
    return found[0]


def assert_part(cost: EngineCost, name: str, cells: dict, macs: int) -> None:
    c = part(cost, name)
    assert c.area_um2 == pytest.approx(area(cells), rel=1e-12)
    assert c.energy_pj_per_mac == pytest.approx(energy(cells) / macs, rel=1e-12)


def shifter(width: int) -> float:
    """A product aligner over a `width`-bit field: width x log2(width) 2:1 mux bits (Chen's count)."""
    return width * math.log2(width)


def test_volta_f16_by_hand():
    """Volta f16 -> f32: 4 products and C, F = 23. f16 significands 11 bits, exponents 5 bits; a
    product's exponent 6 bits, C's 8: exponents meet at 8 bits. Aligned term 23 + 2 integer + 1 sign
    + 0 guard (truncation) = 26 bits; 5 terms sum to 26 + 3 = 29 bits. RZ: no rounding part."""
    cost = engine_cost(*VOLTA_F32)
    assert cost.fraction_bits == 23 and cost.aligned_bits == 26 and cost.group_size == 4
    assert_part(cost, "significand multipliers", {MUL: 4 * 11 * 11}, 4)
    assert_part(cost, "exponent adders", {ADD: 4 * 5}, 4)
    assert_part(cost, "exponent max tree", {CMP: 4 * 8, MUX: 4 * 8}, 4)
    assert_part(cost, "exponent subtractors", {ADD: 5 * 8}, 4)
    assert_part(cost, "alignment shifters", {MUX: 5 * shifter(26)}, 4)
    assert_part(cost, "term signs", {GATE: 5 * 26}, 4)
    # 5 terms: two 26-bit adds, then a 27-bit add (one word passed over), then a 28-bit add.
    assert_part(cost, "adder tree", {ADD: 26 + 26 + 27 + 28}, 4)
    # Negate (an XOR per bit, an increment as half an adder), leading zeros (two gates a bit),
    # the normalization shift over 29 bits, the 8-bit exponent update.
    assert_part(cost, "normalization", {GATE: 29 + 2 * 29, ADD: 29 / 2 + 8, MUX: shifter(29)}, 4)
    assert [c.name for c in cost.components] == [
        "significand multipliers",
        "exponent adders",
        "exponent max tree",
        "exponent subtractors",
        "alignment shifters",
        "term signs",
        "adder tree",
        "normalization",
    ]


def test_volta_f16_output_rounds_to_nearest_by_hand():
    """Volta f16 -> f16: C's exponent is 5 bits, so exponents meet at the product's 6. RNE to
    float16 from the 29-bit sum: 11 bits kept, guard and round, a sticky OR over the other 16
    bits, and an 11-bit incrementer (half an adder)."""
    cost = engine_cost(*VOLTA_F16)
    assert_part(cost, "exponent max tree", {CMP: 4 * 6, MUX: 4 * 6}, 4)
    assert_part(cost, "rounding", {GATE: 29 - 11 - 2, ADD: 11 / 2}, 4)


def test_cdna3_two_stages_by_hand():
    """CDNA3 f16 (TR_FDPA, 4 products, F = 24, F2 = 31): the products alone fused at 24 + 3 = 27
    bits (no C in the first stage: 3 max nodes, 4 shifters) into a 29-bit sum; the second stage
    cuts that sum 32 bits below the larger exponent (37 bits with its 5 integer and sign bits) and
    C 24 bits below (24 + 1 integer + 1 sign + 1 sticky to round down = 27), adds them (38 bits);
    then RNE from 32 bits to float32's 24: a sticky over 6 bits and a 24-bit incrementer."""
    cost = engine_cost(*CDNA3_F16)
    assert cost.fraction_bits == 24 and cost.aligned_bits == 27
    assert_part(cost, "exponent max tree", {CMP: 3 * 8, MUX: 3 * 8}, 4)
    assert_part(cost, "alignment shifters", {MUX: 4 * shifter(27)}, 4)
    assert_part(cost, "adder tree", {ADD: 27 + 27 + 28}, 4)
    second = {CMP: 8, MUX: 8 + shifter(37) + shifter(27), ADD: 8 + 37, GATE: 27}
    assert_part(cost, "second stage (C, round down)", second, 4)
    assert_part(cost, "normalization", {GATE: 38 + 2 * 38, ADD: 38 / 2 + 8, MUX: shifter(38)}, 4)
    assert_part(cost, "rounding", {GATE: 32 - 24 - 2, ADD: 24 / 2}, 4)


def test_cdna3_fp8_fuses_even_and_odd_apart():
    """GTR_FDPA (16 FP8 products): two fused sums of 8 (7 max nodes each) at 27 bits, 30-bit sums
    merged (one max node, a shift amount, two shifters, a 30-bit add)."""
    cost = engine_cost(*CDNA3_FP8)
    assert_part(cost, "exponent max tree", {CMP: 14 * 8, MUX: 14 * 8}, 16)
    assert_part(cost, "adder tree", {ADD: 2 * (4 * 27 + 2 * 28 + 29)}, 16)
    assert_part(cost, "even/odd merge", {CMP: 8, MUX: 8 + 2 * shifter(30), ADD: 8 + 30}, 16)


def test_block_scaled_fp4_by_hand():
    """RTX Blackwell mxf4nvf4 with ue4m3 scales (GST_FDPA, 64 products, subgroups of 16, F = 35).
    An e2m1 value is a multiple of 0.5 up to 6 (4 bits), so a product field is 8 bits and 9 with
    its sign; each subgroup of 16 sums exactly (adds of 9, 10, 11, 12 bits) into 13 bits. Each of
    the 4 blocks multiplies its two 4-bit scale significands (16 cells, a 5-bit exponent add, an
    8-bit normalizing select) and its 12-bit sum magnitude by the 8-bit product (96 cells). A scaled
    sum's 20 bits hold 2 + 6 fraction bits (elements, scales): 12 integer bits above the scale's
    exponent, so the aligned width is 35 + 12 + 1 = 48."""
    cost = engine_cost(*RTX_NVF4)
    assert cost.group_size == 64 and cost.aligned_bits == 48
    tree16 = 8 * 9 + 4 * 10 + 2 * 11 + 12
    assert_part(cost, "subgroup exact sums", {MUX: 64 * shifter(9), GATE: 64 * 9, ADD: 4 * tree16}, 64)
    assert_part(cost, "scale multipliers", {MUL: 4 * 16 + 4 * 12 * 8, ADD: 4 * 5, MUX: 4 * 8}, 64)
    # 4 scaled sums and C: exponents of max(ue4m3's 4 + 1, float32's 8) bits.
    assert_part(cost, "exponent max tree", {CMP: 4 * 8, MUX: 4 * 8}, 64)
    assert_part(cost, "alignment shifters", {MUX: 5 * shifter(48)}, 64)


def test_power_of_two_scales_add_exponents():
    """mxf4 (ue8m0, block 32): two 8-bit exponent adds per block, two blocks; no multipliers. The
    scaled sum's 12 magnitude bits less 2 fraction bits leave 10 integer bits: 35 + 10 + 1 = 46."""
    cost = engine_cost(*RTX_MXF4)
    assert_part(cost, "scale exponent adders", {ADD: 2 * 2 * 8}, 64)
    assert "scale multipliers" not in [c.name for c in cost.components]
    assert cost.aligned_bits == 46


def test_exact_sum_spans_the_whole_range():
    """CDNA1 f16 (E_FDPA): a float16 spans 2^-24 to 65504 < 2^16, 40 bits; a product field 80 bits
    and 81 with its sign; the 4 products placed over it and summed; one float adder with C."""
    cost = engine_cost(*CDNA1_F16)
    assert cost.aligned_bits == 81 and cost.fraction_bits is None
    assert_part(cost, "exact alignment", {MUX: 4 * shifter(81), GATE: 4 * 81}, 4)
    assert_part(cost, "adder tree", {ADD: 81 + 81 + 82}, 4)
    added = dict(float_adder(8, 23, 80 + 2).cells)
    assert_part(cost, "C add and rounding (float adder)", added, 4)


def test_fma_chain_is_one_float_fma():
    """CDNA1 f32 mfma: a 24 x 24 significand array, an 8-bit exponent add, and a float32 adder whose
    addend is the exact 48-bit product."""
    cost = engine_cost(*CDNA1_F32)
    assert cost.group_size == 1 and cost.aligned_bits is None
    assert_part(cost, "significand multipliers", {MUL: 24 * 24}, 1)
    assert_part(cost, "exponent adders", {ADD: 8}, 1)
    assert_part(cost, "accumulator (float adder, RNE)", dict(float_adder(8, 23, 48).cells), 1)


def test_float_tree_flushes_every_value():
    """CDNA2 f16 (FTZ_MUL_ADD, quads): 3 tree adds and 1 with C; flushes of 4 + 4 float16 inputs
    (4 + 10 gates each), C, the 4 products and the 4 sums in float32 (7 + 23 gates each)."""
    cost = engine_cost("cdna2", "mfma.f32_16x16x16f16")
    assert_part(cost, "float adder tree", {c: 3 * n for c, n in float_adder(8, 23, 24).cells.items()}, 4)
    assert_part(cost, "denormal flush", {GATE: 8 * 14 + 9 * 30}, 4)


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("f16", 5),
        ("bf16", 8),
        ("tf32", 8),
        ("f32", 8),
        ("f64", 11),
        ("e4m3", 4),
        ("e5m2", 5),
        ("fp8", 4),
        ("bf8", 5),
        ("e3m2", 3),
        ("e2m3", 2),
        ("e2m1", 2),
        ("ue8m0", 8),
        ("ue4m3", 4),
    ],
)
def test_exponent_fields(name, bits):
    assert exponent_bits(operand_types()[name]) == bits


def test_fixed_point_fields():
    """float16: 2^-24 to 65504 (40 bits); e2m1: 0.5 to 6 (4 bits); bfloat16: 2^-133 to below 2^128."""
    types = operand_types()
    assert fixed_point_bits(types["f16"]) == 40
    assert fixed_point_bits(types["e2m1"]) == 4
    assert fixed_point_bits(types["bf16"]) == 261


@pytest.mark.parametrize("engine", [VOLTA_F32, HOPPER_FP8, RTX_NVF4, CDNA3_F16, CDNA3_FP8, RTX_MXF4])
def test_more_fraction_bits_never_cost_less(engine):
    costs = [engine_cost(*engine, fraction_bits=f) for f in range(1, 41)]
    for lo, hi in zip(costs, costs[1:], strict=False):
        assert hi.area_um2 >= lo.area_um2 and hi.energy_pj_per_mac >= lo.energy_pj_per_mac
        assert part(hi, "alignment shifters").area_um2 > part(lo, "alignment shifters").area_um2
    assert costs[-1].area_um2 > costs[0].area_um2


@pytest.mark.parametrize("engine", [AMPERE_F16, BLACKWELL_FP8, CDNA3_F16])
def test_longer_groups_cost_more_area(engine):
    base = get_engine(*engine)
    costs = [engine_cost(dataclasses.replace(base, group_size=g)) for g in (2, 4, 8, 16, 32, 64)]
    for lo, hi in zip(costs, costs[1:], strict=False):
        assert hi.area_um2 > lo.area_um2
        assert part(hi, "adder tree").area_um2 > part(lo, "adder tree").area_um2


def test_hopper_fp8_sum_is_narrower_than_blackwell():
    """Hopper's FP8 wgmma keeps 13 fraction bits, Blackwell's 25: its shifters and adder tree are
    cheaper; at 25 bits they are Blackwell's."""
    hopper, blackwell = engine_cost(*HOPPER_FP8), engine_cost(*BLACKWELL_FP8)
    assert (hopper.fraction_bits, blackwell.fraction_bits) == (13, 25)
    assert (hopper.aligned_bits, blackwell.aligned_bits) == (16, 28)
    for name in ("alignment shifters", "adder tree"):
        assert part(hopper, name).area_um2 < part(blackwell, name).area_um2
        assert part(hopper, name).energy_pj_per_mac < part(blackwell, name).energy_pj_per_mac
    assert hopper.area_um2 < blackwell.area_um2
    widened = engine_cost(*HOPPER_FP8, fraction_bits=25)
    for name in ("alignment shifters", "adder tree"):
        assert part(widened, name).area_um2 == pytest.approx(part(blackwell, name).area_um2)


def test_nearest_normalization_costs_more_than_toward_zero():
    base = get_engine(*AMPERE_F16)
    rz = engine_cost(dataclasses.replace(base, normalization=Normalization.RZ_FP32))
    rne = engine_cost(dataclasses.replace(base, normalization=Normalization.RNE_FP32))
    assert "rounding" not in [c.name for c in rz.components]
    assert part(rne, "rounding").area_um2 > 0
    assert rne.area_um2 > rz.area_um2 and rne.energy_pj_per_mac > rz.energy_pj_per_mac


def test_every_profile_is_priced():
    profiles = lowbit.simulator.engines()
    assert len(profiles) >= 380
    for p in profiles:
        cost = engine_cost(p)
        assert math.isfinite(cost.area_um2) and cost.area_um2 > 0, p.instruction
        assert math.isfinite(cost.energy_pj_per_mac) and cost.energy_pj_per_mac > 0, p.instruction
        assert cost.area_um2 == pytest.approx(sum(c.area_um2 for c in cost.components))
        assert cost.energy_pj_per_mac == pytest.approx(sum(c.energy_pj_per_mac for c in cost.components))
        assert all(c.area_um2 > 0 for c in cost.components), p.instruction


def test_node_and_profile_forms():
    at45, at7 = engine_cost(*HOPPER_FP8, node="45nm"), engine_cost(*HOPPER_FP8)
    assert at7.node == "7nm" and at45.area_um2 > at7.area_um2 and at45.energy_pj_per_mac > at7.energy_pj_per_mac
    assert engine_cost(get_engine(*HOPPER_FP8)).area_um2 == at7.area_um2
    assert at7.area_per_product_um2 == pytest.approx(at7.area_um2 / 32)
    text = at7.modelled
    for phrase in ("T_FDPA", "alignment shifters", "MMA-Sim", "Aladdin", "register files", "operand delivery"):
        assert phrase in text
    assert "wgmma.m64n8k32.f32.e4m3.e4m3" in at7.table()


@pytest.mark.parametrize(
    "engine", [("ampere", "mma.m8n8k4.f64.f64.f64.f64"), CDNA1_F16, ("cdna2", "mfma.f32_16x16x16f16")]
)
def test_fraction_bits_needs_a_cut(engine):
    with pytest.raises(ValueError, match="fraction_bits: .* has no truncated fused sum"):
        engine_cost(*engine, fraction_bits=20)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="fraction_bits must be at least 1, got 0"):
        engine_cost(*HOPPER_FP8, fraction_bits=0)
    with pytest.raises(TypeError, match="fraction_bits must be an integer"):
        engine_cost(*HOPPER_FP8, fraction_bits=12.5)
    with pytest.raises(ValueError, match="node"):
        engine_cost(*HOPPER_FP8, node="3nm")
    with pytest.raises(ValueError, match="arch"):
        engine_cost("pascal", "mma.m16n8k16.f32.f16.f16.f32")
    with pytest.raises(ValueError, match="instruction"):
        engine_cost("hopper", "mma.m16n8k99.f32.f16.f16.f32")
    with pytest.raises(TypeError, match="instruction"):
        engine_cost("hopper")
    with pytest.raises(ValueError, match="instruction"):
        engine_cost(get_engine(*HOPPER_FP8), "wgmma.m64n8k32.f32.e4m3.e4m3")
