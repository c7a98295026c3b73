"""The cost of shared micro-exponents (MX9, MX6, MX4): the "micro-exponents" part of the dot-product
unit counted by hand, and the rest of the unit unchanged by them."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from lowbit.costmodel import estimate
from lowbit.costmodel.cells import Cell
from lowbit.costmodel.operands import operand
from lowbit.costmodel.units import Geometry, dot_product_unit, mac_unit
from lowbit.formats import get_accumulator, get_format


def parts(a: str, b: str, lanes: int, unit=dot_product_unit) -> dict[str, dict]:
    geo = Geometry(lanes, 24, 4096, 1)
    found = unit(operand(a), operand(b), get_accumulator("fp32"), geo)
    return {p.name: {c: n * p.instances for c, n in p.counts.cells.items()} for p in found}


@pytest.mark.parametrize(("name", "bits"), [("mx9", 8), ("mx6", 5), ("mx4", 3)])
def test_micro_exponent_part_by_hand(name, bits):
    """32 lanes, 16 sub-blocks of 2. Per sub-block: the 2-bit add of the two 1-bit shifts, a
    shifter of the pair's sum (n + 1 bits, n = 2 bits for integers; shifts 0..2: 2 mux levels),
    and 2 extra bits of the adder tree for each of its 2 lanes."""
    n = 2 * bits
    c = parts(name, name, 32)["micro-exponents"]
    assert c == {Cell.ADDER_BIT: 16 * (2 + 2 * 2), Cell.MUX_BIT: 16 * (n + 1) * 2}


def test_one_operand_with_micro_exponents():
    """mx6 x mxint8: no shift add; shifts 0..1 (one mux level) of a 5 + 8 + 1 = 14-bit pair sum,
    one extra tree bit per lane."""
    c = parts("mx6", "mxint8", 32)["micro-exponents"]
    assert c == {Cell.ADDER_BIT: 16 * 2, Cell.MUX_BIT: 16 * 14}


def test_mac_unit_shifts_its_product():
    """A single MAC: the 2-bit shift add, a 10-bit product shifted by 0..2 (2 levels), 2 extra bits."""
    c = parts("mx6", "mx6", 1, mac_unit)["micro-exponents"]
    assert c == {Cell.ADDER_BIT: 2 + 2, Cell.MUX_BIT: 10 * 2}


def test_formats_without_micro_exponents_have_no_such_part():
    assert "micro-exponents" not in parts("mxint8", "mxint8", 32)
    assert "micro-exponents" not in parts("mxfp4", "mxfp4", 32)


def test_the_micro_part_is_the_whole_difference():
    """MX6 against the same format without micro-exponents: only the named part differs in area."""
    with_micro = estimate("mx6", "mx6")
    plain = replace(get_format("mx6"), micro=None, name="mx6_plain")
    without = estimate(plain, plain)
    micro = [c for c in with_micro.components if c.name == "micro-exponents"]
    assert len(micro) == 1 and micro[0].area_um2 > 0
    assert with_micro.area_um2 == pytest.approx(without.area_um2 + micro[0].area_um2)
    assert with_micro.area_um2 == pytest.approx(sum(c.area_um2 for c in with_micro.components))
    # memory: 6 bits against 5.5 (the element and the scale, no micro-exponent bits)
    assert with_micro.memory.a_bits_per_element == 6.0 and without.memory.a_bits_per_element == 5.5


def test_narrower_elements_cost_less():
    areas = [estimate(n, n).area_um2 for n in ("mx9", "mx6", "mx4")]
    assert areas[0] > areas[1] > areas[2]


def test_readme_shows_the_current_ratio_beside_the_paper():
    """area x bits per element against FP8 (float8_e4m3fn, 8 bits), as the README prints it beside
    the paper's secondary figures (tests/data/cost_points.yaml), which the model is not tuned to."""
    points = yaml.safe_load((Path(__file__).parents[1] / "data" / "cost_points.yaml").read_text())
    paper = points["microexponents_rouhani2023"]["area_times_memory_vs_fp8"]
    fp8 = estimate("float8_e4m3fn", "float8_e4m3fn").area_um2 * 8
    ratio = {n: estimate(n, n).area_um2 * get_format(n).bits_per_element() / fp8 for n in ("mx6", "mx4")}
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())  # lines joined
    assert f"{ratio['mx6']:.2f} for MX6 and {ratio['mx4']:.2f} for MX4" in readme
    assert f"reports {paper['MX6']} and {paper['MX4']}" in readme
