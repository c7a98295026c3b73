"""Bits per element is one number: the study table's column, the dashboard designer's and
lowbit.bits_per_element agree on every catalog format (the fixed values by hand)."""

import pytest

import lowbit
from lowbit.dashboard import views
from lowbit.formats import ScaledFormat, catalog
from lowbit.study import run_study, validate_study
from lowbit.study.point import spec_columns
from lowbit.study.schema import Cost, FormatSpec

K = 256
SHAPE = (1, K)  # one row: a per-channel scale and a per-tensor one both span the K elements

# element bits + scale bits / elements per scale, from DESIGN.md section 3 and the catalog's literals
BY_HAND = {
    "float8_e4m3fn": 8.0,
    "mxfp4": 4 + 8 / 32,
    "nvfp4": 4 + 8 / 16,  # the 32-bit tensor scale is not counted
    "nf4": 4 + 32 / 64,
    "nf4_dq": 4 + (8 + 32 / 256) / 64,  # 8-bit scale codes, an fp32 absmax per 256 of them
    "int4_g128": 4 + 16 / 128,
    "afpq_fp4_g128": 4 + 2 * 16 / 128,  # one fp16 scale for the positives, one for the negatives
    "int8_per_channel": 8 + 32 / K,
    "bitnet_b158": 2 + 32 / K,  # per tensor: one fp32 scale over the 1 x K tensor
    "paretoq_1bit": 1 + 32 / K,
    "higgs_p2_n16": 4 / 2,  # 16 points: a 4-bit code per pair of elements
    "higgs_p2_n64": 6 / 2,
    "ternary_codebook": 2.0,
}


def library(name: str) -> float:
    fmt = catalog[name]
    per_scale = isinstance(fmt, ScaledFormat) and not fmt.block  # per channel or per tensor
    if isinstance(fmt, ScaledFormat) and fmt.block_rows > 1:
        # 16 x 16 tiles on one row: each tile holds 16 elements and stores a whole scale
        return fmt.element.bits + fmt.scale_bits / fmt.block
    return lowbit.bits_per_element(name, block_elems=K if per_scale else None)


@pytest.mark.parametrize("name", list(catalog))
def test_table_designer_and_library_agree(name):
    spec = FormatSpec(format=name)
    table = spec_columns(spec, spec.spec(), SHAPE)["bits_per_element"]
    designer = views.design_cost(views.design_format(name, 0, None, None), "bits_per_element", SHAPE, Cost())
    assert table == designer == library(name)
    if name in BY_HAND:
        assert table == pytest.approx(BY_HAND[name], abs=1e-12)


def test_tiles_count_one_scale_per_tile():
    # 16 rows x 256: sixteen 16 x 16 tiles, each 256 FP4 elements and one 8-bit E4M3 scale
    shape = (16, K)
    spec = FormatSpec(format="nvfp4_2d")
    table = spec_columns(spec, spec.spec(), shape)["bits_per_element"]
    designer = views.design_cost(views.design_format("nvfp4_2d", 0, None, None), "bits_per_element", shape, Cost())
    assert table == designer == lowbit.bits_per_element("nvfp4_2d") == pytest.approx(4 + 8 / 256, abs=1e-12)
    assert lowbit.bits_per_element("nvfp4_2d") == 4 + 8 / 256


def test_every_hand_value_names_a_catalog_format():
    assert set(BY_HAND) <= set(catalog)


def test_study_row_and_designer_end_to_end(tmp_path):
    names = ["higgs_p2_n16", "int8_per_channel", "bitnet_b158", "mxfp4"]
    study = {"schema_version": 1, "name": "bits", "formats": names, "metrics": ["qsnr_db"],
             "workloads": [{"kind": "normal", "shape": [1, K], "name": "row"}]}  # fmt: skip
    r = run_study(validate_study(study), tmp_path, progress=False)
    got = dict(zip(r.table.format, r.table.bits_per_element, strict=True))
    assert got == pytest.approx({n: BY_HAND[n] for n in names}, abs=1e-12)
    # the designer (block 0: the named format as it is) on the same workload
    cands, msg = views.design_view(tmp_path, "bits.parquet", "row", "qsnr_db", "bits_per_element", "higgs_p2_n16", 0,
                                   None, None, [])  # fmt: skip
    assert cands[0]["x"] == 2.0, msg
