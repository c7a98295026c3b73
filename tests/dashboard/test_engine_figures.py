"""Engine columns on the dashboard: readable labels in the metric picker, the engine graph (error
against each engine's datapath area, and its Pareto front), hidden for tables without engines, and
the designer's cost on a study whose cost section names an engine."""

import pandas as pd
import pytest

from lowbit.costmodel import engine_cost
from lowbit.dashboard import create_app, figures, ids, views
from lowbit.dashboard.designer import design_cost
from lowbit.formats import get_format
from lowbit.study import run_study, validate_study
from lowbit.study.schema import Cost

HOPPER = "hopper_wgmma_m64n8k32_f32_e4m3_e4m3"
ADA = "ada_mma_m16n8k32_f32_e4m3_e4m3_f32"
CDNA3 = "cdna3_mfma_f32_16x16x32_fp8_fp8"


def engine_table() -> pd.DataFrame:
    """Two rows (formats) of one workload, as an engine study writes them: Hopper with and without
    promotion and Ada on E4M3, CDNA3 on FNUZ; areas by hand."""
    nan = float("nan")
    return pd.DataFrame({
        "format": ["float8_e4m3fn", "float8_e4m3fnuz"],
        "family": ["float", "float"],
        "workload": ["K=4096", "K=4096"],
        f"gemm_accumulation_error_{HOPPER}": [0.01, nan],
        f"gemm_accumulation_error_{HOPPER}_p128": [0.001, nan],
        f"gemm_accumulation_error_{ADA}": [0.02, nan],
        f"gemm_accumulation_error_{CDNA3}": [nan, 0.0005],
        f"gemm_overflow_{HOPPER}": [0.0, nan],
        f"gemm_overflow_{HOPPER}_p128": [0.0, nan],
        f"gemm_overflow_{ADA}": [0.0, nan],
        f"gemm_overflow_{CDNA3}": [nan, 0.0],
        f"engine_area_um2_{HOPPER}": [100.0, 100.0],
        f"engine_area_um2_{ADA}": [50.0, 50.0],
        f"engine_area_um2_{CDNA3}": [200.0, 200.0],
        f"engine_energy_pj_per_mac_{HOPPER}": [0.08, 0.08],
        f"engine_energy_pj_per_mac_{ADA}": [0.09, 0.09],
        f"engine_energy_pj_per_mac_{CDNA3}": [0.16, 0.16],
        f"fraction_bits_{HOPPER}": [13.0, 13.0],
        f"fraction_bits_{ADA}": [13.0, 13.0],
        f"fraction_bits_{CDNA3}": [24.0, 24.0],
        "bits_per_element": [8.0, 8.0],
    })  # fmt: skip


def test_an_engine_tables_front_runs_across_engines():
    fig = figures.engine_pareto_figure(engine_table(), "gemm_accumulation_error")
    points, front = fig.data[0], fig.data[1]
    # four engine settings ran: (area, error) = Hopper (100, 0.01), Hopper p128 (100, 0.001),
    # Ada (50, 0.02), CDNA3 (200, 0.0005); Hopper without promotion is dominated by Hopper p128
    assert sorted(zip(points.x, points.y, strict=True)) == [(50, 0.02), (100, 0.001), (100, 0.01), (200, 0.0005)]
    assert list(zip(front.x, front.y, strict=True)) == [(50, 0.02), (100, 0.001), (200, 0.0005)]
    assert "engine: hopper wgmma.m64n8k32.f32.e4m3.e4m3, promote every 128" in front.hovertext[1]
    assert fig.layout.xaxis.title.text == "engine datapath area (um^2)"
    assert fig.layout.yaxis.title.text == "GEMM accumulation error" and fig.layout.yaxis.type == "log"
    # an engine column picks its metric; the energy axis reads each engine's energy
    energy = figures.engine_pareto_figure(engine_table(), f"gemm_accumulation_error_{ADA}", "engine_energy_pj_per_mac")
    assert sorted(energy.data[0].x) == [0.08, 0.08, 0.09, 0.16]


def test_the_metric_picker_names_engines(tmp_path):
    engine_table().to_parquet(tmp_path / "eng.parquet")
    c = views.choices(tmp_path, "eng.parquet")
    labels = {o["value"]: o["label"] for o in views.dropdowns(c)[2]}
    assert labels[f"gemm_accumulation_error_{HOPPER}_p128"] == (
        "GEMM accumulation error — hopper wgmma.m64n8k32.f32.e4m3.e4m3, promote every 128"
    )
    assert labels[f"gemm_accumulation_error_{CDNA3}"] == "GEMM accumulation error — cdna3 mfma.f32_16x16x32_fp8_fp8"
    assert len(labels) == 4  # the engines' cost and overflow columns are no accuracy metric
    fig, style = views.engine_view(tmp_path, "eng.parquet", "K=4096", f"gemm_accumulation_error_{CDNA3}",
                                   "fraction_bits", {})  # fmt: skip
    assert style["display"] == "block" and sorted(fig.data[0].x) == [13, 13, 13, 24]
    fig, _ = views.engine_view(tmp_path, "eng.parquet", "K=4096", ["x"], {"a": 1}, {})  # bad page state: defaults
    assert sorted(fig.data[0].x) == [50, 100, 100, 200]
    fig, style = views.engine_view(tmp_path, "eng.parquet", "K=4096", None, None, {"family": ["scaled"]})
    assert style == {"display": "none"}  # no row left


def test_tables_without_engines_hide_the_engine_graph(results):
    assert views.engine_view(results, "dash.parquet", "normal", "qsnr_db", "area_um2", {})[1] == {"display": "none"}
    assert ids.ENGINES in str(create_app(results).layout())


def test_a_run_engine_study_renders_on_the_dashboard(tmp_path):
    study = {
        "schema_version": 1,
        "name": "eng",
        "formats": ["float8_e4m3fn", "float8_e4m3fnuz"],
        "workloads": [{"kind": "gemm", "name": "g", "a": {"kind": "normal", "shape": [2, 256], "seed": 1},
                       "b": {"kind": "normal", "shape": [2, 256], "seed": 2}}],
        "metrics": [{"gemm_relative_error": {"engine": f"hopper:{e}", "promote_every": p, "formats": ["float8_e4m3fn"]}}
                    for e in ("wgmma.m64n8k32.f32.e4m3.e4m3", "wgmma.m64n8k32.f16.e4m3.e4m3") for p in (None, 128)]
                   + [{"gemm_relative_error": {"engine": "cdna3:mfma.f32_16x16x32_fp8_fp8",
                                               "formats": ["float8_e4m3fnuz"]}}],
        "cost": {"node": "7nm"},
    }  # fmt: skip
    r = run_study(validate_study(study), tmp_path, progress=False)
    assert r.failed == 0
    fig, style = views.engine_view(tmp_path, "eng.parquet", "g", None, "area_um2", {})
    assert style["display"] == "block" and len(fig.data[0].x) == 5
    areas = {engine_cost("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3").area_um2,
             engine_cost("hopper", "wgmma.m64n8k32.f16.e4m3.e4m3").area_um2,
             engine_cost("cdna3", "mfma.f32_16x16x32_fp8_fp8").area_um2}  # fmt: skip
    assert set(fig.data[0].x) == areas
    front = list(zip(fig.data[1].x, fig.data[1].y, strict=True))
    # a front of lower-is-better error against area: areas rise, errors fall, and it starts at the
    # smallest area's best error
    smallest = min(areas)
    assert front[0] == (smallest, min(y for x, y in zip(fig.data[0].x, fig.data[0].y, strict=True) if x == smallest))
    assert all(x1 > x0 and y1 < y0 for (x0, y0), (x1, y1) in zip(front, front[1:], strict=False))


@pytest.mark.parametrize(
    ("column", "want"),
    [("area_um2", "area_um2"), ("energy_pj_per_mac", "energy_pj_per_mac"), ("area_per_lane_um2", "per_product")],
)
def test_the_designer_prices_the_engine_a_study_names(column, want):
    priced = engine_cost("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", fraction_bits=18)
    cost = Cost(engine="hopper:wgmma.m64n8k32.f32.e4m3.e4m3", fraction_bits=18)
    value = design_cost(get_format("float8_e4m3fn"), column, (4, 64), cost)
    expected = priced.area_um2 / 32 if want == "per_product" else getattr(priced, want)  # 32 fused FP8 products
    assert value == pytest.approx(expected)
    assert design_cost(get_format("float8_e4m3fn"), "fraction_bits", (4, 64), cost) == 18
    assert design_cost(get_format("float8_e4m3fn"), "bits_per_element", (4, 64), cost) == 8
