"""The explorer's figures, called directly on tiny tables with the groups written by hand: colour
groups and marker shapes, facets, log toggles, the three-objective view, the front table's labels and
rounding, the grouped cost breakdown and the compare view."""

import numpy as np
import pandas as pd
import pytest

from lowbit.dashboard import figures, views
from lowbit.dashboard.fronttable import front_table
from lowbit.dashboard.groups import ColorBy, FacetBy, with_groups
from lowbit.dashboard.state import PageState
from lowbit.study import pareto_front


def tiny() -> pd.DataFrame:
    """Four formats on two workloads, with the spec columns a study writes."""
    one = pd.DataFrame({
        "format": ["mxfp4", "int8_per_channel", "float8_e4m3fn", "nf4"],
        "family": ["scaled", "scaled", "float", "scaled"],
        "element": ["float4_e2m1fn", "int8 (signed, symmetric): [-127, 127]", "float8_e4m3fn", "nf4_codebook"],
        "bits": [4, 8, 8, 4],
        "block": [32, 1024, 1, 64],
        "scale": ["float8_e8m0fnu", "fp32", "none", "fp32"],
        "bits_per_element": [4.25, 8.03125, 8.0, 4.5],
        "qsnr_db": [18.63791, 42.9, 31.6, 20.7],
        "area_um2": [790.4567, 2240.0, 1990.0, 8600.0],
        "energy_pj_per_mac": [0.012345, 0.08, 0.07, 0.5],
    })  # fmt: skip
    return pd.concat([one.assign(workload="normal"), one.assign(workload="laplace", qsnr_db=one.qsnr_db - 1)],
                     ignore_index=True)  # fmt: skip


def test_families_and_element_types_from_the_spec_columns():
    g = with_groups(tiny().iloc[:4])
    assert g["family_group"].tolist() == ["MX (E8M0 scale)", "FP32 scale", "unscaled", "FP32 scale"]
    assert g["element_type"].tolist() == ["float", "int", "float", "codebook"]


def test_points_are_coloured_by_family_and_shaped_by_element_type():
    fig = figures.pareto_figure(tiny().iloc[:4], "bits_per_element", "qsnr_db", color=ColorBy.FAMILY)
    groups = {t.name: t for t in fig.data if t.legendgroup not in ("front", "shape")}
    assert sorted(groups) == ["FP32 scale", "MX (E8M0 scale)", "unscaled"]
    fp32 = groups["FP32 scale"]  # int8_per_channel (an int: square) and nf4 (a codebook: diamond)
    assert list(fp32.x) == [8.03125, 4.5] and list(fp32.marker.symbol) == ["square", "diamond"]
    assert list(groups["unscaled"].marker.symbol) == ["circle"]
    assert len({t.marker.color for t in groups.values()}) == 3  # one colour each
    shapes = [t.name for t in fig.data if t.legendgroup == "shape"]
    assert shapes == ["codebook element", "float element", "int element"]
    front = next(t for t in fig.data if t.name == "Pareto front")
    # (bits, QSNR): mxfp4 (4.25, 18.6), nf4 (4.5, 20.7), float8 (8, 31.6), int8 (8.03, 42.9): all on the front
    assert list(front.text) == ["mxfp4", "nf4", "float8_e4m3fn", "int8_per_channel"] and "text" in front.mode


def test_colour_by_block_orders_blocks_as_numbers():
    fig = figures.pareto_figure(tiny().iloc[:4], "bits_per_element", "qsnr_db", color=ColorBy.BLOCK)
    assert [t.name for t in fig.data if t.legendgroup not in ("front", "shape")] == ["1", "32", "64", "1024"]


def test_facets_by_workload_give_one_panel_and_front_each():
    fig = figures.pareto_figure(tiny(), "bits_per_element", "qsnr_db", color=ColorBy.FAMILY, facet=FacetBy.WORKLOAD)
    assert [a.text for a in fig.layout.annotations] == ["laplace", "normal"]
    fronts = [t for t in fig.data if t.name == "Pareto front"]
    assert [t.xaxis for t in fronts] == ["x", "x2"] and [t.showlegend for t in fronts] == [True, False]
    assert list(fronts[0].y) == pytest.approx([17.63791, 19.7, 30.6, 41.9])  # laplace: QSNR one lower
    legend = [t.name for t in fig.data if t.showlegend and t.legendgroup not in ("front", "shape")]
    assert sorted(legend) == ["FP32 scale", "MX (E8M0 scale)", "unscaled"]  # each group named once


def test_log_toggles_override_the_columns_choice():
    df = tiny().assign(mse=[0.1, 0.001, 0.01, 0.05] * 2)
    assert figures.pareto_figure(df, "area_um2", "mse").layout.xaxis.type == "log"  # the columns' choice
    fig = figures.pareto_figure(df, "area_um2", "mse", log=("y",))
    assert fig.layout.xaxis.type is None and fig.layout.yaxis.type == "log"
    fig = figures.pareto_figure(df, "bits_per_element", "qsnr_db", log=("x", "y"))
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_three_objectives_colour_accuracy_against_area_by_energy():
    fig = figures.three_objective_figure(tiny().iloc[:4], "qsnr_db")
    (points,) = fig.data
    assert list(points.x) == [790.4567, 2240.0, 1990.0, 8600.0]
    assert list(points.marker.color) == [0.012345, 0.08, 0.07, 0.5]
    assert list(points.marker.symbol) == ["circle", "square", "circle", "diamond"]
    assert fig.layout.xaxis.type == "log" and "pJ/MAC" in points.marker.colorbar.title.text


def test_the_front_table_has_labels_units_and_rounding():
    columns, rows = front_table(with_groups(tiny().iloc[:1]), "area_um2", "qsnr_db")
    assert [c["name"] for c in columns] == ["format", "family", "element type", "bits per element", "QSNR (dB)",
                                            "area (µm²)"]  # fmt: skip
    assert [c["type"] for c in columns] == ["text", "text", "text", "numeric", "numeric", "numeric"]
    # 3 significant digits: 18.63791 -> 18.6, 790.4567 -> 790; bits per element to 3 decimals
    assert rows == [{"format": "mxfp4", "family_group": "MX (E8M0 scale)", "element_type": "float",
                     "bits_per_element": 4.25, "qsnr_db": 18.6, "area_um2": 790.0}]  # fmt: skip
    columns, rows = front_table(tiny().iloc[1:2], "energy_pj_per_mac", "qsnr_db")
    assert columns[-1]["name"] == "energy (pJ/MAC)" and rows[0]["energy_pj_per_mac"] == 0.08
    assert rows[0]["bits_per_element"] == 8.031  # 8.03125 to 3 decimals


def test_the_cost_breakdown_puts_area_and_energy_on_two_axes():
    fig = figures.cost_breakdown_figure([("multipliers", 10.0, 0.1), ("adder tree", 5.0, 0.05)])
    area, energy = fig.data
    assert (area.xaxis, area.yaxis, energy.xaxis, energy.yaxis) == ("x", "y", "x2", "y2")
    assert list(area.y) == [10.0, 5.0] and list(energy.y) == [0.1, 0.05]
    assert [a.text for a in fig.layout.annotations] == ["area (µm²)", "energy (pJ/MAC)"]


def test_the_compare_figure_sets_two_formats_side_by_side():
    items = [{"name": "a", "values": [-1.0, 0.0, 1.0, np.nan], "error": np.array([0.1, -0.1]),
              "components": [("multipliers", 10.0, 0.1)]},
             {"name": "b", "values": [-2.0, -1.0, 0.0, 1.0, 2.0], "error": np.array([0.2]),
              "components": [("multipliers", 20.0, 0.3), ("scale", 2.0, 0.01)]}]  # fmt: skip
    fig = figures.compare_figure(items)
    assert [a.text for a in fig.layout.annotations][:2] == ["a", "b"]
    axes = {"a": ("x", "x3", "x5", "x7"), "b": ("x2", "x4", "x6", "x8")}  # rows of values, error, area, energy
    by_column = {c: [t for t in fig.data if t.xaxis in axes[c]] for c in axes}
    assert [t.type for t in by_column["a"]] == ["scatter", "histogram", "bar", "bar"]
    assert list(by_column["a"][0].x) == [-1.0, 0.0, 1.0] and list(by_column["b"][0].x) == [-2, -1, 0, 1, 2]
    assert list(by_column["b"][2].y) == [20.0, 2.0] and list(by_column["b"][3].y) == [0.3, 0.01]
    assert fig.layout.yaxis6.matches == "y5"  # the area bars share one scale


def test_the_compare_view_on_results(results):
    state = PageState("dash.parquet", "laplace", compare=("mxfp4", "nvfp4"))
    fig, style, message = views.compare_view(results, state)
    assert style == {"display": "block"} and message == ""
    assert [a.text for a in fig.layout.annotations][:2] == ["mxfp4 on laplace", "nvfp4 on laplace"]
    assert len(fig.data) == 8
    _, style, message = views.compare_view(results, PageState("dash.parquet", compare=("mxfp4",)))
    assert style == {"display": "none"} and message.startswith("Pick two or 3 formats")
    _, style, message = views.compare_view(results, PageState("dash.parquet", compare=("mxfp4", "nope")))
    assert style == {"display": "block"} and message == "nope: not in this table"


def test_the_detail_prompts_before_any_click(results):
    title, *charts = views.detail_view(results, "dash.parquet", None, {}, None)
    assert title == "Click a point to see its detail." and all(len(c.data) == 0 for c in charts)
    assert views.detail_style(results, "dash.parquet", None) == {"display": "none"}
    assert views.point_index(results, "dash.parquet", "laplace", "mxfp4") is not None
    assert views.point_index(results, "dash.parquet", "laplace", ["mxfp4"]) is None  # forged page state
    click = {"points": [{"customdata": views.point_index(results, "dash.parquet", "laplace", "nf4")}]}
    assert views.clicked_format(results, "dash.parquet", click) == "nf4"
    assert views.clicked_format(results, "dash.parquet", {"points": [{"customdata": "0"}]}) is None


def test_panels_by_workload_on_results_list_the_picked_workloads_front(results):
    state = PageState("dash.parquet", "laplace", "qsnr_db", "bits_per_element", facet=FacetBy.WORKLOAD)
    fig, columns, rows, message = views.explorer_view(results, state)
    assert [a.text for a in fig.layout.annotations] == ["laplace", "normal"] and message == ""
    df = pd.read_parquet(results / "dash.parquet")
    laplace = df[df.workload == "laplace"]
    want = pareto_front(laplace, "bits_per_element", "qsnr_db")
    assert [r["format"] for r in rows] == want.format.tolist()
    assert [c["name"] for c in columns] == ["format", "family", "element type", "bits per element", "QSNR (dB)"]
