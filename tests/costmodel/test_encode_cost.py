"""The encoder's cost: cells counted by hand for NVFP4 and its variants, the variants' order on the
encode side and on the MAC side, stochastic rounding's random bits, and bad input."""

import math
from pathlib import Path

import pytest
import yaml

from lowbit.costmodel import EncodeCost, encode_cost, estimate
from lowbit.costmodel.cells import Cell, cell_costs
from lowbit.costmodel.encoder import candidates, encoder_parts
from lowbit.costmodel.operands import operand
from lowbit.costmodel.technology import get_node
from lowbit.costmodel.units import Geometry, dot_product_unit
from lowbit.formats import catalog, get_accumulator

A, M, X, C, G, R = (
    Cell.ADDER_BIT,
    Cell.MULTIPLIER_CELL,
    Cell.MUX_BIT,
    Cell.COMPARE_BIT,
    Cell.GATE,
    Cell.REGISTER_BIT,
)
VARIANTS = ("nvfp4_4over6", "nvfp4_2d", "nvfp4_ue5m3", "nvfp4_mse")


def parts(name: str, **kw) -> dict:
    """{part name: (cells, elements per operation, instances)}."""
    found, _ = encoder_parts(name, **kw)
    return {p.name: (dict(p.counts.cells), p.elements_per_operation, p.instances) for p in found}


def fp32_multiplier(b_sig: int) -> dict:
    """A float32 (24-bit significand, 8-bit exponent) by b_sig-bit multiply: the array, a 9-bit
    exponent add, a (24 + b_sig)-bit normalising mux."""
    return {M: 24 * b_sig, A: 9, X: 24 + b_sig}


def plus(*counts: dict) -> dict:
    out: dict = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def test_nvfp4_cells_by_hand():
    """16 lanes, blocks of 16, float32 in. Buffer: 16 x 32 flip-flops. amax: 15 compare-and-selects of
    31 bits (a tree over 16 lanes), 15 per 16 elements. Scale: amax x S_enc/6 (fp32 multiply), then
    E4M3 rounding: 5-bit alignment over 4 positions (10 mux bits), sticky OR of 24 - 4 = 20 bits, a
    4-bit increment, a 4-bit exponent rebias, a 7-bit compare and clamp. Reciprocal: a 24-bit array
    divider (24 x (24 adder + 24 mux bits)) and dec x (1/S_enc) (4 x 24 multiply). Per element:
    x x enc (fp32 multiply) and E2M1 rounding (3-bit alignment over 2 positions: 3 mux bits; sticky
    OR 22 gates; 2-bit increment, 2-bit rebias, 3-bit compare and clamp)."""
    p = parts("nvfp4")
    assert p["block buffer"] == ({R: 32}, 1, 16)
    assert p["amax tree"] == ({C: 31, X: 31}, 16 / 15, 15)
    assert p["scale"] == (plus(fp32_multiplier(24), {X: 10 + 7, G: 20, A: 4 + 4, C: 7}), 16, 1)
    assert p["reciprocal"] == (plus({A: 24 * 24, X: 24 * 24}, {M: 4 * 24, A: 9, X: 4 + 24}), 16, 1)
    assert p["element scaling"] == (fp32_multiplier(24), 1, 16)
    assert p["element rounding"] == ({X: 3 + 3, G: 22, A: 2 + 2, C: 3}, 1, 16)
    assert p["tensor scale"] == ({A: 24 * 24, X: 24 * 24}, math.inf, 1)
    assert not {"candidate errors", "random bits"} & set(p)


def test_totals_are_the_cells_priced():
    """The area is every part's cells times their copies; the energy each operation's cells over the
    elements it serves (the tensor scale's none: amortised over the tensor)."""
    costs = cell_costs(get_node("7nm"))
    p = parts("nvfp4")
    area = sum(sum(n * costs[c].area_um2 for c, n in cells.items()) * k for cells, _, k in p.values())
    energy = sum(sum(n * costs[c].energy_pj for c, n in cells.items()) / per for cells, per, _ in p.values())
    cost = encode_cost("nvfp4")
    assert isinstance(cost, EncodeCost) and cost.input == "float32"
    assert cost.area_um2 == pytest.approx(area)
    assert cost.energy_pj_per_element == pytest.approx(energy)
    assert sum(c.area_um2 for c in cost.components) == pytest.approx(cost.area_um2)
    assert "nvfp4" in cost.table()


def test_ue5m3_scale_is_one_exponent_bit_wider():
    """Encode: UE5M3 rounding has a 5-bit rebias and an 8-bit compare and clamp where E4M3 has 4 and
    7 (+1 adder, compare and mux bit); nothing else changes. MAC: the dequantizer's two scale
    multiplies add 5 + 1 exponent bits each where E4M3 adds 4 + 1 (+2 adder bits)."""
    nv, ue = parts("nvfp4"), parts("nvfp4_ue5m3")
    diff = {k: ue["scale"][0][k] - nv["scale"][0].get(k, 0) for k in ue["scale"][0]}
    assert {k: v for k, v in diff.items() if v} == {A: 1, C: 1, X: 1}
    assert {k: v for k, v in ue.items() if k != "scale"} == {k: v for k, v in nv.items() if k != "scale"}
    assert encode_cost("nvfp4_ue5m3").area_um2 > encode_cost("nvfp4").area_um2

    def dequantizer(name):
        op = operand(name)
        units = dot_product_unit(op, op, get_accumulator("fp32"), Geometry(16, 24, 4096, 1))
        return dict(next(u for u in units if u.name == "dequantizer").counts.cells)

    dq_nv, dq_ue = dequantizer("nvfp4"), dequantizer("nvfp4_ue5m3")
    assert dq_ue[A] - dq_nv[A] == 2 and dq_ue[M] == dq_nv[M]
    assert estimate("nvfp4_ue5m3", "nvfp4_ue5m3").area_um2 > estimate("nvfp4", "nvfp4").area_um2


def test_two_d_tiles_by_hand():
    """Tiles of 256: the buffer holds 256 x 32 bits; the amax tree is 15 comparators over the lanes
    plus one running maximum over the tile's 16 cycles, 255 compares per 256 elements; the scale and
    reciprocal serve 256 elements."""
    p, nv = parts("nvfp4_2d"), parts("nvfp4")
    assert p["block buffer"] == ({R: 32}, 1, 256)
    assert p["amax tree"] == ({C: 31, X: 31}, 256 / 255, 16)
    assert p["scale"] == (nv["scale"][0], 256, 1) and p["reciprocal"] == (nv["reciprocal"][0], 256, 1)
    assert p["element rounding"] == nv["element rounding"]
    two_d, plain = encode_cost("nvfp4_2d"), encode_cost("nvfp4")
    assert two_d.area_um2 > plain.area_um2  # the tile buffer
    assert two_d.energy_pj_per_element < plain.energy_pj_per_element  # one scale per 256, not 16
    assert two_d.block_elements == 256


def test_search_candidates():
    """Four over six: 2 candidates (factors 1 and 1.5). MSE 1.00 ... 0.50 on E4M3's 3 mantissa bits:
    log2(1 / 0.5) x 2^3 + 1 = 9 distinct scale codes. Plain NVFP4: 1."""
    assert candidates(catalog["nvfp4_4over6"]) == 2
    assert candidates(catalog["nvfp4_mse"]) == 9
    assert candidates(catalog["nvfp4"]) == 1


def test_four_over_six_by_hand():
    """One extra candidate: its factor multiply (24 x 8) and scale rounding and reciprocal per block,
    x x enc and E2M1 rounding per element; two error paths per element (the dequantize: E2M1's 2-bit
    significand by E4M3's 4, then the 6-bit product by 1/S_enc (6 x 24); a 24-bit difference, a
    24 x 24 square, a 48-bit accumulator); one 48-bit compare and a 2:1 select of 16 x 4 code bits
    and 8 scale bits per block."""
    p, nv = parts("nvfp4_4over6"), parts("nvfp4")
    assert p["candidate scales"] == (plus(fp32_multiplier(8), nv["scale"][0], nv["reciprocal"][0]), 16, 1)
    assert p["candidate elements"] == (plus(nv["element scaling"][0], nv["element rounding"][0]), 1, 16)
    error = plus({M: 2 * 4}, fp32_multiplier(6), {A: 24}, {M: 24 * 24}, {A: 48})
    assert p["candidate errors"] == ({k: 2 * v for k, v in error.items()}, 1, 16)
    assert p["candidate select"] == ({C: 48, X: 16 * 4 + 8}, 16, 1)


def test_variants_order_encode_versus_mac():
    """Encode: four over six and the MSE search cost more than plain NVFP4 (MSE's nine candidates the
    most); MAC: they, and the 2-D tiles, are the same unit as plain NVFP4; UE5M3 alone changes it."""
    enc = {n: encode_cost(n) for n in ("nvfp4", *VARIANTS)}
    e = {n: c.energy_pj_per_element for n, c in enc.items()}
    a = {n: c.area_um2 for n, c in enc.items()}
    assert e["nvfp4_mse"] > e["nvfp4_4over6"] > e["nvfp4"]
    assert a["nvfp4_mse"] > a["nvfp4_4over6"] > a["nvfp4"]
    mac = {n: estimate(n, n) for n in ("nvfp4", *VARIANTS)}
    for n in ("nvfp4_4over6", "nvfp4_2d", "nvfp4_mse"):
        assert mac[n].area_um2 == mac["nvfp4"].area_um2
        assert mac[n].energy_pj_per_mac == mac["nvfp4"].energy_pj_per_mac
    assert mac["nvfp4_ue5m3"].area_um2 > mac["nvfp4"].area_um2


def test_random_bits_follow_the_lfsr_file():
    """XAPP 052's 32-bit LFSR has four taps: each new bit is three 2-input XNORs and a flip-flop."""
    data = yaml.safe_load(
        (Path(__file__).parents[2] / "lowbit" / "costmodel" / "data" / "random_bits.yaml").read_text()
    )
    assert data["lfsr"]["taps"][0] == data["lfsr"]["width"] == 32
    assert data["per_random_bit"] == {"register_bit": 1, "gate": len(data["lfsr"]["taps"]) - 1}
    p = parts("nvfp4", sr_bits=5)
    assert p["random bits"] == ({R: 5, G: 15}, 1, 16)
    assert p["stochastic add"] == ({A: 5}, 1, 16)


@pytest.mark.parametrize("name", ["nvfp4", "mxfp4", "float8_e4m3fn"])
def test_sr_bits_price_is_linear_in_bits(name):
    """Energy and area added by stochastic rounding: k x (flip-flop + 3 gates + adder bit), per
    element and per lane."""
    costs = cell_costs(get_node("7nm"))
    per_bit_energy = costs[R].energy_pj + 3 * costs[G].energy_pj + costs[A].energy_pj
    per_bit_area = 16 * (costs[R].area_um2 + 3 * costs[G].area_um2 + costs[A].area_um2)
    base = encode_cost(name)
    for k in (1, 2, 8, 16):
        c = encode_cost(name, sr_bits=k)
        assert c.energy_pj_per_element - base.energy_pj_per_element == pytest.approx(k * per_bit_energy)
        assert c.area_um2 - base.area_um2 == pytest.approx(k * per_bit_area)


def test_element_formats_and_power_of_two_scales():
    """An element format is its rounding only; MXFP4's scale is exponent arithmetic (8-bit adds)."""
    p = parts("float8_e4m3fn")
    assert set(p) == {"element rounding"}
    mx = parts("mxfp4")
    assert mx["scale"] == ({A: 16}, 32, 1) and mx["element scaling"] == ({A: 8}, 1, 16)
    assert encode_cost("mxfp4").area_um2 < encode_cost("nvfp4").area_um2


def test_bad_input():
    with pytest.raises(ValueError, match="sr_bits"):
        encode_cost("nvfp4", sr_bits=0)
    with pytest.raises(TypeError, match="sr_bits"):
        encode_cost("nvfp4", sr_bits=True)
    with pytest.raises(ValueError, match="lanes"):
        encode_cost("nvfp4", lanes=0)
    with pytest.raises(ValueError, match="codebooks"):
        encode_cost("nf4")
    with pytest.raises(ValueError, match="rules"):
        encode_cost("bitnet_b158")


@pytest.mark.parametrize("name", ["mx9", "mx6", "mx4"])
def test_micro_exponents_on_the_encode_side_by_hand(name):
    """Per sub-block of 2 (8 per 16 lanes): d = min(E - E_sub, 1), an 8-bit subtract, an 8-bit
    compare and a 1-bit select, and the 8-bit subtract E - d; the rest is MX's encoder."""
    p = parts(name)
    assert p["micro-exponents"] == ({A: 8 + 8, C: 8, X: 1}, 2, 8)
    assert "micro-exponents" not in parts("mxint8") and "micro-exponents" not in parts("nvfp4")
