"""The cost model beside published figures (tests/data/cost_points.yaml, copied from the project's
reference data with its citations). Targets as the issue states them; the one known miss is pinned
to the value that explains it."""

from pathlib import Path

import pytest
import yaml

from lowbit.costmodel import estimate, validation
from lowbit.costmodel.cells import cell_costs
from lowbit.costmodel.components import multiplier
from lowbit.costmodel.technology import Node

POINTS = yaml.safe_load((Path(__file__).parents[1] / "data" / "cost_points.yaml").read_text())
CHEN = POINTS["int_vs_fp_chen2025"]["ratios"]


def chen_unit(name: str):
    """Chen et al.'s setup: k = 32 for MX, 16 for NV, 24-bit partial sums, a shared FP32 accumulator."""
    return estimate(name, name, "fp32", 16 if name.startswith("nv") else 32, "40nm", 24)


@pytest.mark.parametrize(
    ("name", "key"), [("mxint8", "mxint8_over_mxfp8"), ("nvfp4", "nvfp4_over_mxfp8"), ("nvint4", "nvint4_over_mxfp8")]
)
def test_chen_table5(name, key):
    base, unit = chen_unit("mxfp8_e4m3"), chen_unit(name)
    area = unit.area_per_lane_um2 / base.area_per_lane_um2  # Table 5 compares at equal throughput
    energy = unit.energy_pj_per_mac / base.energy_pj_per_mac
    assert area == pytest.approx(CHEN[key]["area"], rel=0.10)
    assert energy == pytest.approx(CHEN[key]["energy"], rel=0.15)


@pytest.mark.parametrize(("fp_acc", "int_acc"), [("fp16", "int16"), ("fp32", "int32")])
def test_fp8_mac_over_int8_mac(fp_acc, int_acc):
    low, high = POINTS["fp8_vs_int8_vanbaalen2023"]["target_ratio_fp8_over_int8_mac"]
    fp8 = estimate("float8_e4m3fn", "float8_e4m3fn", fp_acc, lanes=1, node="45nm")
    int8 = estimate("int8", "int8", int_acc, lanes=1, node="45nm")
    assert low <= fp8.area_um2 / int8.area_um2 <= high
    assert low <= fp8.energy_pj_per_mac / int8.energy_pj_per_mac <= high


def test_multiplier_energy_is_close_to_quadratic():
    h = POINTS["energy_45nm_horowitz"]["values"]
    published = h["int32_mult"] / h["int8_mult"]  # 15.5
    costs = cell_costs(Node(45))
    ratio = multiplier(32, 32).energy_pj(costs) / multiplier(8, 8).energy_pj(costs)
    assert ratio == pytest.approx(published, rel=0.10)
    row = next(c for c in validation.checks() if c.claim == "32-bit / 8-bit multiplier energy")
    assert row.met and row.lowbit == ratio


def test_multiplier_over_adder_area_is_aladdins_own_ratio():
    """The documented miss: lowbit takes both cells from Aladdin, so its ratio is Aladdin's, just
    under the 23-26 target (from Horowitz's areas)."""
    a = POINTS["aladdin_40nm"]["values"]
    aladdin_ratio = a["int32_mult"]["area_um2"] / a["int32_add"]["area_um2"]
    row = next(c for c in validation.checks() if c.claim.startswith("32-bit multiplier / 32-bit adder"))
    assert row.lowbit == pytest.approx(aladdin_ratio, rel=1e-12)
    assert not row.met and row.lowbit == pytest.approx(23, rel=0.01)


def test_validation_table_lists_every_check_with_its_verdict():
    text = validation.table()
    checks = validation.checks()
    assert len(checks) == 12 and text.count("\n") == len(checks) + 1
    assert sum(c.met for c in checks) == 11
    for c in checks:
        assert c.claim in text


def test_readme_shows_the_current_table():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert validation.table() in readme


def test_absolute_figures_within_the_spread_of_published_sets():
    """The reference data: absolute pJ and um^2 differ by up to about 4x between sources."""
    h = POINTS["energy_45nm_horowitz"]["values"]
    area = POINTS["area_45nm_horowitz"]["values"]
    rows = validation.horowitz_table().splitlines()[2:]
    assert [r.split("|")[1].strip() for r in rows] == list(h)
    for r in rows:
        op, _, pj, _, um2 = (cell.strip() for cell in r.strip("|").split("|"))
        assert 0.25 <= float(pj) / h[op] <= 4 and 0.25 <= float(um2) / area[op] <= 4
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert validation.horowitz_table() in readme
