"""Figure functions and views on small tables: traces, fronts, messages for bad folders, and refusal of
anything outside the results folder."""

import numpy as np
import pandas as pd
import pytest

from lowbit.dashboard import create_app, figures, views
from lowbit.dashboard.state import PageState
from lowbit.study import pareto_front


def frame():
    return pd.DataFrame({
        "format": ["a", "b", "c", "d", "e"],
        "bits_per_element": [2.0, 4.0, 4.0, 8.0, 8.25],
        "qsnr_db": [5.0, 18.0, 16.0, 31.0, 30.0],
        "mse": [0.3, 0.016, 0.02, 0.0008, 0.001],
    })  # fmt: skip


def test_pareto_figure_front_equals_pareto_front():
    df = frame()
    fig = figures.pareto_figure(df, "bits_per_element", "qsnr_db")
    points, front = fig.data[0], fig.data[1]
    assert list(points.x) == df.bits_per_element.tolist() and list(points.y) == df.qsnr_db.tolist()
    want = pareto_front(df, "bits_per_element", "qsnr_db")
    assert list(front.x) == want.bits_per_element.tolist() and list(front.y) == want.qsnr_db.tolist()
    assert want.format.tolist() == ["a", "b", "d"]
    assert fig.layout.xaxis.title.text == "bits per element" and fig.layout.yaxis.title.text == "QSNR (dB)"
    assert "format: b" in front.hovertext[1]  # hover holds the spec


def test_lower_is_better_metrics_flip_the_front():
    fig = figures.pareto_figure(frame(), "bits_per_element", "mse")
    want = pareto_front(frame(), "bits_per_element", "mse", minimize_y=True)
    assert list(fig.data[1].y) == want.mse.tolist()


def test_candidates_and_big_tables():
    fig = figures.pareto_figure(frame(), "bits_per_element", "qsnr_db", [{"label": "e3m2 b32", "x": 6.25, "y": 27.0}])
    assert fig.data[-1].name == "candidate: e3m2 b32" and list(fig.data[-1].x) == [6.25]
    big = pd.DataFrame({"format": ["f"] * 10000, "bits_per_element": np.arange(10000.0),
                        "qsnr_db": np.arange(10000.0)})  # fmt: skip
    assert figures.pareto_figure(big, "bits_per_element", "qsnr_db").data[0].type == "scattergl"


def test_detail_figures():
    x = np.linspace(-4, 4, 1001)
    q = np.round(x)
    assert len(figures.value_grid_figure(np.array([-1.0, 0.0, 1.0, np.nan]), "ternary").data[0].x) == 3
    mag = figures.error_magnitude_figure(x, q)
    assert np.all(np.asarray(mag.data[0].y) <= 0.5 + 1e-12)
    assert len(figures.error_histogram_figure(x, q).data[0].x) == 1001
    bars = figures.cost_breakdown_figure([("multipliers", 10.0, 0.1), ("adder tree", 5.0, 0.05)])
    assert list(bars.data[0].y) == [10.0, 5.0] and list(bars.data[1].y) == [0.1, 0.05]


def test_views_on_results(results):
    table = views.table_options(results)
    assert table == ["dash.parquet"]
    c = views.choices(results, table[0])
    assert c["workload"] == ["normal", "laplace"] and "qsnr_db" in c["metric"] and "area_um2" in c["cost"]
    state = PageState(table[0], "normal", "qsnr_db", "bits_per_element")
    fig, _, rows, message = views.explorer_view(results, state)
    assert message == "" and sum(len(t.x) for t in fig.data if t.legendgroup not in ("front", "shape")) == 7 and rows
    df = pd.read_parquet(results / table[0])
    want = pareto_front(df[df.workload == "normal"], "bits_per_element", "qsnr_db")
    assert [r["format"] for r in rows] == want.format.tolist()
    assert c["family"] == ["FP32 scale", "FP8 scale", "MX (E8M0 scale)", "unscaled"]
    mx = PageState(**{**vars(state), "filters": {"family": ["MX (E8M0 scale)"]}})
    fig, _, rows, _ = views.explorer_view(results, mx)
    assert len(fig.data[0].x) == 2  # the E8M0-scaled formats: mxfp4 and mxfp6_e2m3
    fig, rows, _ = views.pareto_view(results, table[0], "normal", "qsnr_db", "bits_per_element",
                                     {"family": ["scaled"]}, [])  # fmt: skip
    # the study's own family name selects too: the block-scaled formats, all but float8_e4m3fn
    assert [t.name for t in fig.data] == ["points", "Pareto front"] and len(fig.data[0].x) == 6
    title, grid, mag, hist, bars = views.detail_view(results, table[0], None, {}, int(want.index[0]))
    assert views.detail_style(results, table[0], int(want.index[0])) == {"display": "block"}
    assert title.startswith(want.format.iloc[0]) and len(grid.data) == 1 and len(hist.data) == 1
    cands, msg = views.design_view(results, table[0], "normal", "qsnr_db", "bits_per_element", "e3m2", 32, "e8m0",
                                   "ocp_floor", [])  # fmt: skip
    assert len(cands) == 1 and cands[0]["x"] == 6.25 and msg.startswith("Candidate")
    cands, msg = views.design_view(results, table[0], "normal", "qsnr_db", "area_um2", "e9m9", 32, "e8m0", "absmax", [])
    assert cands == [] and msg.startswith("Cannot build that format")


def test_gemm_error_is_an_accuracy_axis(tmp_path):
    df = frame().assign(workload="g", gemm_relative_error_fp16=[0.3, 0.05, 0.06, 0.01, 0.02])
    df.to_parquet(tmp_path / "g.parquet")
    assert "gemm_relative_error_fp16" in views.choices(tmp_path, "g.parquet")["metric"]
    fig, _, rows, _ = views.explorer_view(tmp_path, PageState("g.parquet", "g", "gemm_relative_error_fp16",
                                                            "bits_per_element"))  # fmt: skip
    assert [r["format"] for r in rows] == ["a", "b", "d"] and fig.layout.yaxis.type == "log"


def test_linearity_figure_and_view(tmp_path):
    df = pd.DataFrame({
        "format": ["u1", "u2", "u3", "dp_3b", "u4", "dp_3b_measured"],
        "family": ["scaled", "scaled", "int", "mixed", "int", "mixed"],
        "workload": ["m"] * 6,
        "predicted_fidelity": [0.99, 0.95, 0.90, 0.97, np.nan, 0.5],
        "predictor": ["theorem", "theorem", "theorem", "theorem", np.nan, "measured"],
        "fidelity": [0.995, 0.96, 0.93, 0.98, 0.5, 0.9],
    })  # fmt: skip
    fig = figures.linearity_figure(df)
    uniform, mixed, line = fig.data
    # u4 has no prediction; dp_3b_measured's prediction is not the theorem's
    assert list(uniform.text) == ["u1", "u2", "u3"] and list(mixed.text) == ["dp_3b"]
    x, y = np.array([0.99, 0.95, 0.90, 0.97]), np.array([0.995, 0.96, 0.93, 0.98])
    dx, dy = x - x.mean(), y - y.mean()
    r = np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    assert f"Pearson r = {r:.3f} over 4 assignments" in fig.layout.title.text
    assert list(line.x) == [0.9, 1] and list(line.y) == [0.9, 1]
    df.to_parquet(tmp_path / "m.parquet")
    fig, style = views.linearity_view(tmp_path, "m.parquet", "m")
    assert style["display"] == "block" and len(fig.data) == 3 and fig.layout.xaxis.type == "log"
    # drops 1 - fidelity: predicted 0.01, 0.05, 0.10, 0.03; measured 0.005, 0.04, 0.07, 0.02
    assert np.allclose(fig.data[2].x, [0.005, 0.1]) and np.allclose(fig.data[0].y, [0.005, 0.04, 0.07])
    frame().assign(workload="w").to_parquet(tmp_path / "t.parquet")  # no prediction: the graph is hidden
    assert views.linearity_view(tmp_path, "t.parquet", "w")[1]["display"] == "none"


def test_messages_for_empty_corrupt_and_failed(tmp_path):
    fig, _, rows, message = views.explorer_view(tmp_path, PageState(None, None, "qsnr_db", "bits_per_element"))
    assert message.startswith("No results in") and rows == []
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    _, _, _, message = views.explorer_view(tmp_path, PageState("broken.parquet", None, "qsnr_db", "bits_per_element"))
    assert message.startswith("Cannot read broken.parquet")
    df = frame().assign(workload="w", status=["ok", "ok", "failed", "ok", "ok"], error=["", "", "boom", "", ""])
    df.to_parquet(tmp_path / "partial.parquet")
    fig, _, _, message = views.explorer_view(tmp_path, PageState("partial.parquet", "w", "qsnr_db", "bits_per_element"))
    assert "1 failed point(s) left out: c on w: boom" in message and len(fig.data[0].x) == 4  # one group: no family


@pytest.mark.parametrize("name", ["../dash.parquet", "/etc/passwd", "..", "sub/x.parquet", "..\\\\x.parquet"])
def test_views_refuse_paths_outside(results, name):
    _, _, rows, message = views.explorer_view(results, PageState(name, None, "qsnr_db", "bits_per_element"))
    assert message.startswith("Refused") and rows == []


@pytest.mark.parametrize("url", ["/../../etc/passwd", "/assets/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                                 "/_dash-component-suites/%252e%252e/x", "/assets/..%2f..%2fsecret"])  # fmt: skip
def test_http_traversal_is_refused(results, url):
    client = create_app(results).server.test_client()
    assert client.get(url).status_code == 400
    assert client.get("/").status_code == 200
