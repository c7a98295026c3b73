"""The unit templates: Chen et al.'s Table 6 counts reproduced by hand, monotonicity, every catalog
format, node scaling, memory energy, lane reuse, codebooks, sign-only formats and bad input."""

import math
from pathlib import Path

import pytest
import yaml

import lowbit
from lowbit.costmodel import estimate
from lowbit.costmodel.cells import Cell
from lowbit.costmodel.operands import operand
from lowbit.costmodel.units import Geometry, dot_product_unit
from lowbit.formats import CodebookFormat, ScaledFormat, ScaleRule, catalog, get_accumulator

POINTS = yaml.safe_load((Path(__file__).parents[1] / "data" / "cost_points.yaml").read_text())


def counts(name: str, lanes: int, cap: int = 24) -> dict[str, dict]:
    op = operand(name)
    parts = dot_product_unit(op, op, get_accumulator("fp32"), Geometry(lanes, cap, 4096, 1))
    return {p.name: {c: n * p.instances for c, n in p.counts.cells.items()} for p in parts}


@pytest.mark.parametrize(
    ("name", "k", "x", "y"), [("mxfp8_e4m3", 32, 4, 3), ("nvfp4", 16, 2, 1), ("mxfp6_e3m2", 32, 3, 2)]
)
def test_table6_float_counts(name, k, x, y):
    """Chen et al. 2025 Table 6, per k lanes: multiplier k(y+1)^2, adder k n, exponent add / subtract /
    compare k x each, aligner k n log2 n, shared normalizer n log2 n; n = min(2^(x+1) + 2y, 24)."""
    n = min(2 ** (x + 1) + 2 * y, 24)
    c = counts(name, k)
    assert c["lane multipliers"] == {Cell.MULTIPLIER_CELL: k * (y + 1) ** 2}
    assert c["adder tree"] == {Cell.ADDER_BIT: k * n}
    assert c["exponent adders"] == {Cell.ADDER_BIT: k * x}
    assert c["exponent subtractors"] == {Cell.ADDER_BIT: k * x}
    assert c["exponent comparators"] == {Cell.COMPARE_BIT: k * x}
    assert c["aligners"][Cell.MUX_BIT] == pytest.approx(k * n * math.log2(n))
    assert c["normalizer"][Cell.MUX_BIT] == pytest.approx(n * math.log2(n))


@pytest.mark.parametrize(("name", "k", "bits"), [("mxint8", 32, 8), ("nvint4", 16, 4)])
def test_table6_integer_counts(name, k, bits):
    """Integers (x = 0, x + y + 1 = bits): multiplier k bits^2, adder tree 2 k bits, no exponent logic."""
    c = counts(name, k)
    assert c["lane multipliers"] == {Cell.MULTIPLIER_CELL: k * bits**2}
    assert c["adder tree"] == {Cell.ADDER_BIT: 2 * k * bits}
    assert not {"aligners", "exponent adders", "exponent comparators"} & set(c)


def test_dequantizers_as_chen_describes():
    """E8M0: two 8-bit integer adds; E4M3: two floating-point multiplies (4 x 4 scale product, then
    the 10-bit NVFP4 partial sum by the 8-bit product)."""
    assert counts("mxfp8_e4m3", 32)["dequantizer"] == {Cell.ADDER_BIT: 16}
    nv = counts("nvfp4", 16)["dequantizer"]
    assert nv[Cell.MULTIPLIER_CELL] == 4 * 4 + 10 * 8


def test_breakdown_adds_up():
    e = estimate("nvfp4", "mxfp8_e4m3", lanes=16)
    assert e.area_um2 == pytest.approx(sum(c.area_um2 for c in e.components))
    assert e.energy_pj_per_mac == pytest.approx(sum(c.energy_pj_per_mac for c in e.components))
    assert e.area_per_lane_um2 == pytest.approx(e.area_um2 / 16)


@pytest.mark.parametrize("lanes", [1, 16, 32])
@pytest.mark.parametrize("exp_bits", [2, 3, 4, 5])
def test_more_mantissa_bits_never_cost_less(exp_bits, lanes):
    costs = [estimate(f"e{exp_bits}m{m}", f"e{exp_bits}m{m}", lanes=lanes) for m in range(0, 8)]
    for lo, hi in zip(costs, costs[1:], strict=False):
        assert hi.area_um2 >= lo.area_um2 and hi.energy_pj_per_mac >= lo.energy_pj_per_mac


@pytest.mark.parametrize("lanes", [1, 32])
def test_more_integer_bits_never_cost_less(lanes):
    costs = [estimate(f"int{b}", f"int{b}", "int32", lanes=lanes) for b in range(2, 17)]
    for lo, hi in zip(costs, costs[1:], strict=False):
        assert hi.area_um2 >= lo.area_um2 and hi.energy_pj_per_mac >= lo.energy_pj_per_mac


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "nvfp4", "int8", "float8_e4m3fn"])
@pytest.mark.parametrize("lanes", [1, 32])
def test_wider_accumulator_never_costs_less(fmt, lanes):
    for chain in (["fp16", "fp22", "fp32"], ["bf16", "fp22", "fp32"], ["int16", "int24", "int32"]):
        costs = [estimate(fmt, fmt, acc, lanes=lanes) for acc in chain]
        for lo, hi in zip(costs, costs[1:], strict=False):
            assert hi.area_um2 >= lo.area_um2 and hi.energy_pj_per_mac >= lo.energy_pj_per_mac


@pytest.mark.parametrize(("element", "scale"), [("e2m1", "e4m3"), ("e4m3", "e8m0"), ("int4", "float16")])
def test_larger_block_amortizes_scale_cost(element, scale):
    rule = ScaleRule.OCP_FLOOR if scale == "e8m0" else ScaleRule.ABSMAX
    blocks = [8, 16, 32, 64, 128, 256]
    ests = [
        estimate(ScaledFormat(lowbit.get_format(element), b, lowbit.get_format(scale), rule), "e4m3", lanes=16)
        for b in blocks
    ]
    scale_energy = [sum(c.energy_pj_per_mac for c in e.components if c.name == "dequantizer") for e in ests]
    assert all(hi < lo for lo, hi in zip(scale_energy, scale_energy[1:], strict=False))
    assert all(b.energy_pj_per_mac <= a.energy_pj_per_mac for a, b in zip(ests, ests[1:], strict=False))
    # Blocks shorter than the lanes need one dequantizer per block in the unit; longer ones share one.
    area = [sum(c.area_um2 for c in e.components if c.name == "dequantizer") for e in ests]
    assert area[0] == pytest.approx(2 * area[1]) and area[1] == pytest.approx(area[2])


@pytest.mark.parametrize("name", list(catalog))
def test_every_catalog_format_costs(name):
    for lanes in (1, 32):
        e = estimate(name, "float8_e4m3fn", lanes=lanes)
        assert math.isfinite(e.area_um2) and e.area_um2 > 0
        assert math.isfinite(e.energy_pj_per_mac) and e.energy_pj_per_mac > 0
        assert e.memory.a_bits_per_element > 0


def test_node_scaling_follows_stillmaker():
    factors = POINTS["technology_scaling"]["area_factor_from_45nm"]
    at = {n: estimate("mxfp4", "mxfp4", node=n) for n in ("45nm", "16nm", "7nm", "40nm")}
    assert at["16nm"].area_um2 / at["45nm"].area_um2 == pytest.approx(factors["16nm"])
    assert at["7nm"].area_um2 / at["45nm"].area_um2 == pytest.approx(factors["7nm"])
    assert at["7nm"].energy_pj_per_mac < at["16nm"].energy_pj_per_mac < at["40nm"].energy_pj_per_mac
    assert at["40nm"].energy_pj_per_mac < at["45nm"].energy_pj_per_mac
    assert at["40nm"].area_um2 < at["45nm"].area_um2


def test_memory_energy_from_bits_per_element():
    """At 45 nm, Horowitz's 32 KB SRAM costs 20 pJ per 64-bit access; DRAM 1300-2600 (mean taken)."""
    mem = POINTS["energy_45nm_horowitz"]["memory_pj_per_64bit_access"]
    e = estimate("mxfp4", "nvfp4", node="45nm")
    assert e.memory.a_bits_per_element == 4.25 and e.memory.b_bits_per_element == 4.5
    assert e.memory.a_sram_pj == pytest.approx(4.25 * mem["sram_32KB"] / 64)
    assert e.memory.b_dram_pj == pytest.approx(4.5 * sum(mem["dram"]) / 2 / 64)


def test_lane_reuse_costs_the_wider_lane():
    fp4_on_fp8 = estimate("float4_e2m1fn", "float4_e2m1fn", lane_format="float8_e4m3fn")
    fp8 = estimate("float8_e4m3fn", "float8_e4m3fn")
    fp4 = estimate("float4_e2m1fn", "float4_e2m1fn")
    assert fp4_on_fp8.area_um2 == pytest.approx(fp8.area_um2)
    assert fp4.area_um2 < fp8.area_um2
    assert fp4_on_fp8.memory.a_bits_per_element == 4
    with pytest.raises(ValueError, match="lane_format: 'float4_e2m1fn' lanes .* cannot run 'float8_e4m3fn'"):
        estimate("float8_e4m3fn", "float8_e4m3fn", lane_format="float4_e2m1fn")


def test_codebook_decode_amortized_over_reuse():
    def decode(reuse):
        e = estimate("nf4", "float8_e4m3fn", reuse=reuse)
        return next(c for c in e.components if c.name == "codebook decode (nf4)")

    assert decode(4).energy_pj_per_mac == pytest.approx(decode(1).energy_pj_per_mac / 4)
    assert decode(4).area_um2 == decode(1).area_um2


def test_ternary_uses_a_conditional_negate():
    ternary = estimate("bitnet_b158", "int8", "int32")
    int2 = estimate("int2", "int8", "int32")
    mult = {e: next(c for c in e.components if c.name == "lane multipliers") for e in (ternary, int2)}
    assert mult[ternary].area_um2 < mult[int2].area_um2
    assert ternary.energy_pj_per_mac < int2.energy_pj_per_mac


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"node": "3nm"}, ValueError, "node: unknown technology node '3nm'"),
        ({"lanes": 0}, ValueError, "lanes must be at least 1"),
        ({"lanes": 2.5}, TypeError, "lanes must be an integer"),
        ({"accumulator": "exact"}, ValueError, "'exact' is an emulation reference"),
        ({"accumulator": "fp99"}, ValueError, "accumulator: unknown name"),
        ({"reuse": 0}, ValueError, "reuse must be at least 1"),
        ({"multiplier_energy": "guess"}, ValueError, "guess"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        estimate("mxfp4", "mxfp4", **kwargs)


def test_a_format_it_cannot_cost_says_why():
    big = CodebookFormat(tuple(range(512)), source="a 9-bit test codebook")
    with pytest.raises(ValueError, match="512-entry lookup table per lane; lowbit costs codebooks of up to 8 bits"):
        estimate(big, "int8")
    with pytest.raises(ValueError, match="format: unknown name"):
        estimate("mxfp5", "int8")
