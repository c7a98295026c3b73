"""Matrix engines in studies: the schema's `engine` (GEMM metrics and the cost section), the columns a
point writes, the costs that come from `lowbit.costmodel.engine_cost`, and the long form that puts
engines on one axis. Expected values come from hand arithmetic, `lowbit.simulator.matmul` and
`lowbit.costmodel.engine_cost` called directly."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lowbit.costmodel import engine_cost
from lowbit.formats.engines import engine_catalog
from lowbit.simulator import matmul_error
from lowbit.study import StudyError, run_study, validate_study
from lowbit.study.point import _gemm_metrics, evaluate, payloads
from lowbit.study.schema import Cost
from lowbit.study.store import (
    column_label,
    engine_label,
    engine_of_slug,
    engine_points,
    engine_slug,
    metric_column,
    overflow_note,
)
from lowbit.study.workloads import GemmPair

HOPPER = "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"
HOPPER_SLUG = "hopper_wgmma_m64n8k32_f32_e4m3_e4m3"
CDNA3 = "cdna3:mfma.f32_16x16x32_fp8_fp8"
RTX_MX = "rtx_blackwell:mma.m16n8k32.mxf8f6f4.block32.f32.e4m3.e4m3.f32.ue8m0"


def gemm(k: int = 64, rows: int = 2) -> dict:
    side = {"kind": "normal", "shape": [rows, k]}
    return {"kind": "gemm", "name": f"K={k}", "a": {**side, "seed": 1}, "b": {**side, "seed": 2}}


def study(metrics: list, formats: list | None = None, **extra) -> dict:
    return {"schema_version": 1, "name": "eng", "formats": formats or ["float8_e4m3fn"], "workloads": [gemm()],
            "metrics": metrics, **extra}  # fmt: skip


def problems(data: dict) -> list[str]:
    with pytest.raises(StudyError) as err:
        validate_study(data)
    return err.value.problems


# ----- names ---------------------------------------------------------------------------------------
def test_the_slug_by_hand_and_back_for_every_catalogued_engine():
    assert engine_slug(HOPPER, 128) == HOPPER_SLUG + "_p128"
    assert engine_slug(CDNA3) == "cdna3_mfma_f32_16x16x32_fp8_fp8"
    for p in engine_catalog():
        name = f"{p.arch.value}:{p.instruction}"
        assert engine_of_slug(engine_slug(name, 64)) == (name, 64), name
    # wgmma and tcgen05 take any N; the catalog holds N = 8
    assert engine_of_slug("hopper_wgmma_m64n256k32_f32_e4m3_e4m3") == ("hopper:wgmma.m64n256k32.f32.e4m3.e4m3", None)
    assert engine_of_slug("fp16") is None and engine_of_slug("e8m13") is None


def test_labels_of_engine_columns():
    want = "GEMM relative error — hopper wgmma.m64n8k32.f32.e4m3.e4m3, promote every 128"
    assert column_label(f"gemm_relative_error_{HOPPER_SLUG}_p128") == want
    assert column_label(f"gemm_accumulation_error_{HOPPER_SLUG}") == "GEMM accumulation error — " + HOPPER.replace(
        ":", " "
    )
    assert column_label(f"engine_area_um2_{HOPPER_SLUG}").startswith("engine datapath area (um^2) — hopper wgmma")
    assert column_label("gemm_relative_error_fp16") == "GEMM relative error (fp16 accumulator)"  # as before
    note = overflow_note({f"gemm_overflow_{HOPPER_SLUG}_p128": 0.5, "gemm_overflow_fp16": 1.0})
    assert note == (
        "hopper wgmma.m64n8k32.f32.e4m3.e4m3, promote every 128: 50% of outputs Inf/NaN; "
        "fp16 accumulator: 100% of outputs Inf/NaN"
    )


# ----- the schema ----------------------------------------------------------------------------------
def test_an_engine_is_named_as_lowbit_names_it_however_it_was_spelled():
    spelled = [
        HOPPER,
        ["hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"],
        "Hopper:wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3",
    ]
    for engine in spelled:
        s = validate_study(study([{"gemm_relative_error": {"engine": engine, "promote_every": 128}}]))
        assert s.metric_entries() == [{"gemm_relative_error": {"engine": HOPPER, "promote_every": 128}}]
        assert metric_column(s.metric_entries()[0]) == f"gemm_relative_error_{HOPPER_SLUG}_p128"
    # a block-scaled kind gets its block and scale type written out
    s = validate_study(
        study(
            [{"gemm_relative_error": {"engine": "rtx_blackwell:mma.m16n8k32.kind::mxf8f6f4.f32.e4m3.e4m3.f32"}}],
            ["mxfp8_e4m3"],
        )  # fmt: skip
    )
    assert s.metric_entries()[0]["gemm_relative_error"]["engine"] == RTX_MX


@pytest.mark.parametrize(
    ("options", "want"),
    [
        ({"engine": "hopper:wgmma.m64n8k33.f32.e4m3.e4m3"}, "metrics[0].gemm_relative_error.engine: instruction"),
        ({"engine": "hoper:wgmma.m64n8k32.f32.e4m3.e4m3"}, "metrics[0].gemm_relative_error.engine: arch must be"),
        ({"engine": "hopper"}, "metrics[0].gemm_relative_error.engine: must be 'arch:instruction'"),
        ({"engine": HOPPER, "accumulator": "fp16"}, "metrics[0].gemm_relative_error: engine and accumulator are"),
        ({"engine": HOPPER, "chunk": 32}, "metrics[0].gemm_relative_error: engine and chunk are exclusive"),
        ({"promote_every": 128}, "metrics[0].gemm_relative_error.promote_every: promotion applies to a matrix"),
        ({"engine": HOPPER, "promote_every": 48}, "metrics[0].gemm_relative_error.promote_every: must be a multiple"),
        ({"engine": HOPPER, "formats": ["e4m3"]}, "metrics[0].gemm_relative_error.formats[0]: not a format of"),
    ],
)
def test_bad_engine_options_name_their_path(options, want):
    (problem,) = problems(study([{"gemm_relative_error": options}]))
    assert problem.startswith(want), problem
    if "engine:" in want and "instruction" in want:
        assert "lowbit.simulator.engines() lists them" in problem


def test_an_engine_that_cannot_read_a_format_is_a_study_error():
    # MXFP4 on an FP8 engine: no scales, and E2M1 elements are not what it reads
    (problem,) = problems(study([{"gemm_relative_error": {"engine": HOPPER}}], ["mxfp4"]))
    assert problem.startswith("metrics[0].gemm_relative_error.engine: " + HOPPER + " cannot run formats point 'mxfp4'")
    assert "it takes no scales" in problem
    # NVIDIA's E4M3 reaches 448; CDNA3's FNUZ fp8 stops at 240
    (problem,) = problems(study([{"gemm_relative_error": {"engine": CDNA3}}], ["float8_e4m3fn"]))
    assert "it reads float8_e4m3fnuz elements, and float8_e4m3fn has values" in problem
    (problem,) = problems(study([{"gemm_relative_error": {"engine": RTX_MX}}], ["nvfp4"]))
    assert "it reads blocks of 32 elements with float8_e8m0fnu scales" in problem
    # int4's -8 .. 7 are all E4M3 values: the engine reads them
    validate_study(study([{"gemm_relative_error": {"engine": HOPPER}}], ["int4"]))
    # `formats` picks the points an engine runs on
    validate_study(study([{"gemm_relative_error": {"engine": HOPPER, "formats": ["float8_e4m3fn"]}}],
                         ["float8_e4m3fn", "mxfp4"]))  # fmt: skip


def test_two_entries_of_one_column_clash_only_where_one_runs_on_some_formats():
    entry = {"gemm_relative_error": {"engine": HOPPER, "formats": ["float8_e4m3fn"]}}
    (problem,) = problems(study([entry, {"gemm_relative_error": {"engine": HOPPER}}]))
    assert problem.startswith(f"metrics[1]: writes the column 'gemm_relative_error_{HOPPER_SLUG}', as metrics[0]")
    validate_study(study(["mse", "mse"]))  # as old studies could


def test_cost_names_an_engine():
    s = validate_study(study(["mse"], cost={"engine": HOPPER, "fraction_bits": 20}))
    assert s.cost.engine == HOPPER and s.cost.fraction_bits == 20
    assert Cost.model_validate(s.cost.model_dump()) == s.cost  # as a point's payload and cost_spec carry it
    (problem,) = problems(study(["mse"], cost={"fraction_bits": 20}))
    assert problem.startswith("cost: fraction_bits: sets an engine's fused sum")
    (problem,) = problems(study(["mse"], cost={"engine": HOPPER, "lanes": 16}))
    assert problem.startswith("cost: engine and lanes are exclusive")
    # an FMA chain rounds every step: no fused sum whose width fraction_bits could set
    (problem,) = problems(study(["mse"], cost={"engine": "ampere:mma.m8n8k4.f64.f64.f64.f64", "fraction_bits": 20}))
    assert problem.startswith("cost: ") and "fraction_bits" in problem
    # a study without an engine dumps (and so hashes) as it did before engines
    assert set(Cost().model_dump()) == {"node", "lanes", "accumulator", "partial_sum_bits", "b_format"}


# ----- points ------------------------------------------------------------------------------------
def one_big_product_and_small_ones() -> GemmPair:
    """a = ones (1 x 256), b = [256, 2^-7, ..., 2^-7]: every value is an E4M3 one, and the exact
    product is 256 + 255 * 2^-7 = 257.9921875."""
    b = np.full((256, 1), 2.0**-7, np.float32)
    b[0, 0] = 256.0
    return GemmPair(np.ones((1, 256), np.float32), b)


def test_promotion_by_hand_through_the_points_gemm_metrics():
    # Hopper's FP8 sum keeps 13 fraction bits below its largest term. Without promotion C holds 256 from
    # the first k step on, so every 2^-7 product lies below the cut: 256. Promoting every 128 elements
    # restarts from C = 0: the second half's 128 products sum exactly to 1.0, added in float32: 257.
    exact = 256 + 255 * 2.0**-7
    entries = [{"gemm_accumulation_error": {"engine": HOPPER}},
               {"gemm_accumulation_error": {"engine": HOPPER, "promote_every": 128}},
               {"gemm_relative_error": {"engine": HOPPER, "promote_every": 128}}]  # fmt: skip
    out = _gemm_metrics(entries, one_big_product_and_small_ones(), "float8_e4m3fn", "float8_e4m3fn")
    assert out[f"gemm_accumulation_error_{HOPPER_SLUG}"] == pytest.approx((exact - 256) / exact, rel=1e-12)
    assert out[f"gemm_accumulation_error_{HOPPER_SLUG}_p128"] == pytest.approx((exact - 257) / exact, rel=1e-12)
    assert out[f"gemm_relative_error_{HOPPER_SLUG}_p128"] == pytest.approx((exact - 257) / exact, rel=1e-12)
    assert out[f"gemm_overflow_{HOPPER_SLUG}"] == 0.0 and out[f"gemm_overflow_{HOPPER_SLUG}_p128"] == 0.0
    # an entry that does not run on this format leaves its column NaN and writes no overflow column
    out = _gemm_metrics([{"gemm_relative_error": {"engine": HOPPER, "formats": ["other"]}}],
                        one_big_product_and_small_ones(), "float8_e4m3fn", "float8_e4m3fn")  # fmt: skip
    assert math.isnan(out[f"gemm_relative_error_{HOPPER_SLUG}"]) and len(out) == 1


def test_a_run_writes_the_simulators_numbers_and_each_engines_cost(tmp_path):
    data = study(
        [{"gemm_relative_error": {"engine": HOPPER, "formats": ["float8_e4m3fn"]}},
         {"gemm_accumulation_error": {"engine": CDNA3, "promote_every": 32, "formats": ["float8_e4m3fnuz"]}},
         {"gemm_relative_error": {"accumulator": "fp16"}}],
        ["float8_e4m3fn", "float8_e4m3fnuz"], cost={"node": "16nm"})  # fmt: skip
    r = run_study(validate_study(data), tmp_path, progress=False)
    assert r.failed == 0
    fn, fnuz = r.table.iloc[0], r.table.iloc[1]
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(2)  # the workload's draws, redone here
    a = rng_a.standard_normal((2, 64)).astype(np.float32)
    b = np.ascontiguousarray(rng_b.standard_normal((2, 64)).astype(np.float32).T)
    want = matmul_error(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=HOPPER)
    assert fn[f"gemm_relative_error_{HOPPER_SLUG}"] == want.relative_error
    err = matmul_error(a, b, "float8_e4m3fnuz", "float8_e4m3fnuz", engine=CDNA3, promote_every=32)
    acc = np.linalg.norm(err.result - err.dequantized_reference) / np.linalg.norm(err.dequantized_reference)
    assert fnuz["gemm_accumulation_error_cdna3_mfma_f32_16x16x32_fp8_fp8_p32"] == pytest.approx(acc, rel=1e-12)
    assert np.isnan(fn["gemm_accumulation_error_cdna3_mfma_f32_16x16x32_fp8_fp8_p32"])
    assert np.isnan(fnuz[f"gemm_relative_error_{HOPPER_SLUG}"]) and fnuz["gemm_relative_error_fp16"] > 0
    for engine, slug in ((HOPPER, HOPPER_SLUG), (CDNA3, "cdna3_mfma_f32_16x16x32_fp8_fp8")):
        priced = engine_cost(*engine.split(":"), node="16nm")
        assert (r.table[f"engine_area_um2_{slug}"] == priced.area_um2).all()
        assert (r.table[f"engine_energy_pj_per_mac_{slug}"] == priced.energy_pj_per_mac).all()
    assert r.table[f"fraction_bits_{HOPPER_SLUG}"].tolist() == [13, 13]  # FP8 on Hopper: 13 bits (MMA-Sim)
    assert r.table["fraction_bits_cdna3_mfma_f32_16x16x32_fp8_fp8"].tolist() == [24, 24]


def test_the_long_form_has_one_row_per_engine_that_ran(tmp_path):
    data = study(
        [{"gemm_relative_error": {"engine": HOPPER, "formats": ["float8_e4m3fn"]}},
         {"gemm_relative_error": {"engine": HOPPER, "promote_every": 32, "formats": ["float8_e4m3fn"]}},
         {"gemm_relative_error": {"engine": CDNA3, "formats": ["float8_e4m3fnuz"]}}],
        ["float8_e4m3fn", "float8_e4m3fnuz"], cost={"node": "7nm"})  # fmt: skip
    table = run_study(validate_study(data), tmp_path, progress=False).table
    long = engine_points(table, "gemm_relative_error")
    assert long["engine"].tolist() == [engine_label(HOPPER), engine_label(HOPPER, 32), engine_label(CDNA3)]
    assert long["promote_every"].tolist() == [0, 32, 0] and long["format"].tolist() == ["float8_e4m3fn"] * 2 + [
        "float8_e4m3fnuz"
    ]
    wide = [f"gemm_relative_error_{HOPPER_SLUG}", f"gemm_relative_error_{HOPPER_SLUG}_p32",
            "gemm_relative_error_cdna3_mfma_f32_16x16x32_fp8_fp8"]  # fmt: skip
    assert long["gemm_relative_error"].tolist() == [table[wide[0]][0], table[wide[1]][0], table[wide[2]][1]]
    hopper, cdna3 = engine_cost("hopper", HOPPER.split(":")[1]), engine_cost("cdna3", CDNA3.split(":")[1])
    assert long["engine_area_um2"].tolist() == [hopper.area_um2, hopper.area_um2, cdna3.area_um2]
    assert long["fraction_bits"].tolist() == [13, 13, 24]
    assert not any(c.startswith("gemm_relative_error_") for c in long.columns)  # the engines' columns folded in
    with pytest.raises(ValueError, match="not a GEMM metric"):
        engine_points(table, "mse")
    assert engine_points(pd.DataFrame({"mse": [1.0]}), "gemm_relative_error").empty


def test_a_study_cost_on_an_engine_prices_its_datapath(tmp_path):
    data = study(["mse"], cost={"engine": HOPPER, "fraction_bits": 20, "node": "7nm"})
    data["workloads"] = [{"kind": "normal", "shape": [2, 64]}]
    table = run_study(validate_study(data), tmp_path, progress=False).table
    wide, own = (
        engine_cost("hopper", HOPPER.split(":")[1], fraction_bits=20),
        engine_cost("hopper", HOPPER.split(":")[1]),
    )
    assert table.area_um2[0] == wide.area_um2 and table.energy_pj_per_mac[0] == wide.energy_pj_per_mac
    assert table.area_per_lane_um2[0] == pytest.approx(wide.area_um2 / 32)  # Hopper fuses 32 FP8 products
    assert table.fraction_bits[0] == 20 and wide.area_um2 > own.area_um2  # 7 more bits: a wider datapath
    assert table.sram_pj_per_element[0] > 0  # the memory columns stay the format's
    assert column_label("fraction_bits") == "fraction bits of the engine's fused sum"


def test_a_point_whose_data_the_engine_cannot_hold_fails_alone():
    """The parse-time check passed (the study's format); a payload whose format changed since (a stale
    cache, a hand-made payload) fails its point with the simulator's message, and nothing else."""
    s = validate_study(study([{"gemm_relative_error": {"engine": HOPPER}}], ["float8_e4m3fn"]))
    (payload,) = payloads(s, Path("."), "test")
    row = evaluate({**payload, "spec": {"format": "float8_e5m2"}})
    assert row["status"] == "failed" and "float8_e5m2" in row["error"] and row["format"] == "float8_e5m2"


def test_a_dumped_engine_study_validates_again():
    from lowbit.study.schema import validate_study as validate

    engine = "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"
    normal = {"kind": "normal", "shape": [2, 64]}
    study = validate({
        "schema_version": 1, "name": "round", "formats": ["float8_e4m3fn"],
        "workloads": [{"kind": "gemm", "a": normal, "b": normal}],
        "metrics": [{"gemm_accumulation_error": {"engine": engine, "promote_every": 64}}],
        "cost": {"engine": engine},
    })  # fmt: skip
    again = validate(study.model_dump())
    assert again.model_dump() == study.model_dump()
