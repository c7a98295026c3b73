"""Pure figure functions: data in, Plotly figure out (the tests call them directly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..study import pareto_front
from ..study.reports import linearity_rows, pearson
from ..study.store import (
    BITS_PER_ELEMENT,
    ENGINE,
    ENGINE_AREA,
    column_label,
    engine_points,
    higher_is_better,
    log_axis,
    metric_of,
    overflow_note,
    overflowed,
)
from .groups import ELEMENT_TYPE, SYMBOLS, ColorBy, FacetBy, group_values, ordered, with_groups

HOVER_COLUMNS = ("format", "family", "element", "bits", "block", "scale", "rule", "asymmetric", "tensor_scale")
HOVER_COLUMNS += ("rounding", "hadamard", BITS_PER_ELEMENT.name, "workload", ENGINE)
SVG_LIMIT = 5000  # above this many points the scatter draws on a WebGL canvas


def _hover(df: pd.DataFrame) -> list[str]:
    """'column: value' lines of the spec columns, built column-wise (a loop over rows is too slow for
    ten thousand points)."""
    cols = [c for c in HOVER_COLUMNS if c in df.columns]
    if not cols or not len(df):
        return [""] * len(df)
    text = f"{cols[0]}: " + df[cols[0]].astype(str)
    for c in cols[1:]:
        text = text + f"<br>{c}: " + df[c].astype(str)
    return text.tolist()


def front_of(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The Pareto front with the dashboard's sense of better: lower cost, and higher or lower
    accuracy depending on the metric."""
    return pareto_front(df, x, y, minimize_x=True, minimize_y=not higher_is_better(y))


def _palette(groups: list[str]) -> dict[str, str]:
    colors = px.colors.qualitative.D3
    return {g: colors[i % len(colors)] for i, g in enumerate(groups)}


def _point_traces(fig: go.Figure, df: pd.DataFrame, x: str, y: str, color: ColorBy | None,
                  colors: dict[str, str], col: int, shown: set[str]) -> None:  # fmt: skip
    """The points of one panel: one trace per colour group (one "points" trace without `color`),
    shaped by element type; overflowed points as x, with a note in their hover."""
    scatter = go.Scatter if len(df) <= SVG_LIMIT else go.Scattergl
    flags, text = overflowed(df).to_numpy(), np.array(_hover(df), dtype=object)
    for i in np.flatnonzero(flags):
        text[i] += "<br>overflow: " + overflow_note(df.iloc[i])
    shapes = df[ELEMENT_TYPE].map(lambda t: SYMBOLS.get(t, SYMBOLS["other"])) if ELEMENT_TYPE in df else "circle"
    symbols = np.where(flags, "x", shapes).tolist()
    groups = group_values(df, color) if color is not None else pd.Series("points", index=df.index)
    for g in ordered(groups):
        at = np.flatnonzero((groups == g).to_numpy())
        rows = df.iloc[at]
        fig.add_trace(scatter(x=rows[x], y=rows[y], mode="markers", name=g, legendgroup=g, showlegend=g not in shown,
                              text=text[at].tolist(), customdata=[int(i) for i in rows.index],
                              hovertemplate="%{text}<extra></extra>",
                              marker={"size": 10, "opacity": 0.85, "color": colors.get(g),
                                      "symbol": [symbols[i] for i in at], "line": {"width": 0.5, "color": "white"}}),
                      row=1, col=col)  # fmt: skip
        shown.add(g)


def _front_trace(fig: go.Figure, df: pd.DataFrame, x: str, y: str, col: int, labels: bool) -> None:
    front = front_of(df, x, y)
    # labelled fronts have no markers of their own: the coloured points they pass through stay visible
    fig.add_trace(go.Scatter(x=front[x], y=front[y], mode="lines+text" if labels else "lines+markers",
                             name="Pareto front", legendgroup="front", showlegend=col == 1,
                             text=front["format"].astype(str).tolist() if labels and "format" in front else None,
                             textposition="top left", textfont={"size": 10}, hovertext=_hover(front), cliponaxis=False,
                             customdata=[int(i) for i in front.index], hovertemplate="%{hovertext}<extra></extra>",
                             line={"shape": "hv", "color": "#888", "width": 1.2},
                             marker={"size": 4, "color": "#888"}), row=1, col=col)  # fmt: skip


def _shape_legend(fig: go.Figure, df: pd.DataFrame) -> None:
    """One grey legend entry per element type drawn, naming its marker shape."""
    for t in sorted(set(df[ELEMENT_TYPE])) if ELEMENT_TYPE in df else []:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{t} element", legendgroup="shape",
                                 marker={"symbol": SYMBOLS.get(t, SYMBOLS["other"]), "color": "#888", "size": 9},
                                 hoverinfo="skip"))  # fmt: skip


def pareto_figure(df: pd.DataFrame, x: str, y: str, candidates: list[dict] | None = None,
                  color: ColorBy | None = None, facet: FacetBy = FacetBy.NONE,
                  log: tuple[str, ...] | None = None) -> go.Figure:  # fmt: skip
    """Every point (hover: its spec), the front as a line over them with its formats' names, and
    designer candidates. With `color`, one trace per group (the legend names them) and marker shapes by
    element type; with `facet`, one panel per group, each with its own front. `log` names the axes
    ("x", "y") drawn on log scales; None: the columns' own choice (errors span decades)."""
    grouped = with_groups(df) if color is not None or facet is not FacetBy.NONE else df
    panels = ordered(group_values(grouped, facet)) if facet is not FacetBy.NONE and len(df) else [None]
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[p for p in panels if p is not None] or None)  # fmt: skip
    colors = _palette(ordered(group_values(grouped, color))) if color is not None else {}  # one per group, all panels
    shown: set[str] = set()
    for col, panel in enumerate(panels, start=1):
        part = grouped if panel is None else grouped[group_values(grouped, facet) == panel]
        if len(part):
            _point_traces(fig, part, x, y, color, colors, col, shown)
            _front_trace(fig, part, x, y, col, labels=color is not None)
    if color is not None and len(df):
        _shape_legend(fig, grouped)
    for c in candidates or []:
        fig.add_trace(go.Scatter(x=[c["x"]], y=[c["y"]], mode="markers+text", name=f"candidate: {c['label']}",
                                 text=[c["label"]], textposition="top center",
                                 marker={"size": 14, "symbol": "star", "color": "crimson"}), row=1, col=1)  # fmt: skip
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 40, "b": 50}, legend={"orientation": "h"})
    logs = log if log is not None else tuple(a for a, c in (("x", x), ("y", y)) if log_axis(c))
    fig.update_xaxes(title_text=column_label(x), type="log" if "x" in logs else None)
    fig.update_yaxes(title_text=column_label(y), row=1, col=1)
    fig.update_yaxes(type="log" if "y" in logs else None)
    return fig


def engine_pareto_figure(df: pd.DataFrame, metric: str, cost: str = ENGINE_AREA.name) -> go.Figure:
    """A table's GEMM `metric` (its name, or one of its engine columns) on every engine against each
    engine's cost (`cost`: engine_area_um2, engine_energy_pj_per_mac or fraction_bits): one point per
    row and engine (`lowbit.study.store.engine_points`), and their Pareto front."""
    points = engine_points(df, metric)
    base = metric_of(metric).name  # engine_points has refused anything but a GEMM metric
    points = points[np.isfinite(pd.to_numeric(points[base], errors="coerce"))
                    & np.isfinite(pd.to_numeric(points[cost], errors="coerce"))]  # fmt: skip
    fig = pareto_figure(points, cost, base)
    fig.update_layout(title=f"{column_label(base)} on {points[ENGINE].nunique()} engine settings")
    return fig


def value_grid_figure(values: np.ndarray, name: str) -> go.Figure:
    """The element format's values (codes) on a number line."""
    v = np.unique(np.asarray(values, float)[np.isfinite(values)])
    fig = go.Figure(go.Scatter(x=v, y=np.zeros_like(v), mode="markers", marker={"symbol": "line-ns-open", "size": 18},
                               hovertemplate="%{x}<extra></extra>", name="values"))  # fmt: skip
    fig.update_layout(title=f"{name}: {len(v)} values", yaxis={"visible": False}, height=180, template="plotly_white",
                      margin={"l": 30, "r": 20, "t": 40, "b": 30})  # fmt: skip
    return fig


def error_magnitude_figure(x: np.ndarray, q: np.ndarray, bins: int = 40) -> go.Figure:
    """Mean |error| against |x| (log-spaced bins of the input magnitude)."""
    ax = np.abs(np.asarray(x, float)).ravel()
    err = np.abs(np.asarray(q, float) - np.asarray(x, float)).ravel()
    pos = ax > 0
    fig = go.Figure()
    if pos.any():
        edges = np.geomspace(ax[pos].min(), ax[pos].max(), bins + 1)
        idx = np.clip(np.digitize(ax[pos], edges) - 1, 0, bins - 1)
        sums = np.bincount(idx, err[pos], bins)
        counts = np.bincount(idx, minlength=bins)
        centers = np.sqrt(edges[:-1] * edges[1:])
        ok = counts > 0
        fig.add_trace(go.Scatter(x=centers[ok], y=sums[ok] / counts[ok], mode="lines+markers", name="mean |error|"))
    fig.update_layout(xaxis={"type": "log", "title": "|x|"}, yaxis={"title": "mean |error|"}, template="plotly_white",
                      height=280, margin={"l": 60, "r": 20, "t": 20, "b": 50})  # fmt: skip
    return fig


def error_histogram_figure(x: np.ndarray, q: np.ndarray, bins: int = 80) -> go.Figure:
    err = (np.asarray(q, float) - np.asarray(x, float)).ravel()
    fig = go.Figure(go.Histogram(x=err, nbinsx=bins, name="error"))
    fig.update_layout(xaxis_title="error (quantized - original)", yaxis_title="count", template="plotly_white",
                      height=280, margin={"l": 60, "r": 20, "t": 20, "b": 50})  # fmt: skip
    return fig


def code_histogram_figure(counts: np.ndarray, values: np.ndarray, entropy_bits: float, name: str) -> go.Figure:
    """How often each element code occurs (bars by code number; hover: the code's value), with the
    codes' entropy against the code width in the title."""
    counts = np.asarray(counts)
    codes = np.arange(counts.size)
    width = max(1, int(np.ceil(np.log2(max(counts.size, 2)))))
    fig = go.Figure(go.Bar(x=codes, y=counts, customdata=np.asarray(values, float), name="codes",
                           hovertemplate="code %{x}: value %{customdata}, %{y} elements<extra></extra>"))  # fmt: skip
    fig.update_layout(title=f"{name} codes: entropy {entropy_bits:.3g} of {width} bits", xaxis_title="element code",
                      yaxis_title="elements", template="plotly_white", height=280,
                      margin={"l": 60, "r": 20, "t": 40, "b": 50})  # fmt: skip
    return fig


def _percent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.3g} %"


def _bits(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3g} bits"


def diagnosis_rows(d) -> list[dict]:
    """A lowbit.Diagnosis as table rows {quantity, value}: the shares of elements saturated, flushed
    and subnormal (percent), the code entropies (bits) and the QSNR (dB); n/a where there is none."""
    return [
        {"quantity": "saturated", "value": _percent(d.saturated_fraction)},
        {"quantity": "flushed to zero", "value": _percent(d.flushed_fraction)},
        {"quantity": "subnormal", "value": _percent(d.subnormal_fraction)},
        {"quantity": "element code entropy", "value": _bits(d.code_entropy_bits)},
        {"quantity": "scale code entropy", "value": _bits(d.scale_entropy_bits)},
        {"quantity": "QSNR", "value": "n/a" if np.isnan(d.qsnr_db) else f"{d.qsnr_db:.4g} dB"},
        {"quantity": "left out (NaN/Inf)", "value": _percent(d.nonfinite_fraction)},
    ]


def cost_breakdown_figure(components: list[tuple[str, float, float]]) -> go.Figure:
    """Area (um^2) and energy (pJ/MAC) of each component, in two panels side by side (one axis each:
    the two units never share a scale)."""
    names = [c[0] for c in components]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("area (µm²)", "energy (pJ/MAC)"), horizontal_spacing=0.12)
    fig.add_trace(go.Bar(x=names, y=[c[1] for c in components], name="area (µm²)", marker_color="#1f77b4"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[c[2] for c in components], name="energy (pJ/MAC)", marker_color="#ff7f0e"),
                  1, 2)  # fmt: skip
    fig.update_layout(template="plotly_white", height=320, showlegend=False,
                      margin={"l": 60, "r": 20, "t": 40, "b": 90})  # fmt: skip
    return fig


def three_objective_figure(df: pd.DataFrame, metric: str, area: str = "area_um2",
                           energy: str = "energy_pj_per_mac") -> go.Figure:  # fmt: skip
    """Accuracy against area (log axis), each point coloured by its energy per MAC (a colour bar in
    pJ/MAC) and shaped by element type, with the formats' names on the points."""
    d = with_groups(df)
    fig = go.Figure()
    if len(d):
        shapes = [SYMBOLS.get(t, SYMBOLS["other"]) for t in d[ELEMENT_TYPE]]
        fig.add_trace(go.Scatter(x=d[area], y=d[metric], mode="markers+text", text=d["format"].astype(str),
                                 textposition="top center", textfont={"size": 9}, hovertext=_hover(d),
                                 hovertemplate="%{hovertext}<extra></extra>", customdata=[int(i) for i in d.index],
                                 marker={"size": 11, "symbol": shapes, "color": d[energy], "colorscale": "Viridis",
                                         "colorbar": {"title": {"text": "energy<br>(pJ/MAC)"}}},
                                 name="formats"))  # fmt: skip
    fig.update_layout(template="plotly_white", height=420, xaxis={"title": column_label(area), "type": "log"},
                      yaxis={"title": column_label(metric), "type": "log" if log_axis(metric) else None},
                      title="Three objectives: accuracy, area and energy (colour)",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})  # fmt: skip
    return fig


def compare_figure(items: list[dict]) -> go.Figure:
    """Two or three formats side by side, one column each: the element's value grid, the error
    histogram on the detail sample, and the cost by component (area in µm², energy in pJ/MAC).
    Each item: name, values (element values), error (quantized - original), components
    [(name, area, energy)]."""
    n = max(len(items), 1)
    fig = make_subplots(rows=4, cols=n, subplot_titles=[i["name"] for i in items] or None, vertical_spacing=0.1,
                        row_titles=["values", "error", "area (µm²)", "energy (pJ/MAC)"],
                        shared_xaxes=False)  # fmt: skip
    colors = px.colors.qualitative.D3
    for col, item in enumerate(items, start=1):
        v = np.unique(np.asarray(item["values"], float))
        v = v[np.isfinite(v)]
        color = colors[(col - 1) % len(colors)]
        fig.add_trace(go.Scatter(x=v, y=np.zeros_like(v), mode="markers", showlegend=False, name=item["name"],
                                 marker={"symbol": "line-ns-open", "size": 14, "color": color}), 1, col)  # fmt: skip
        fig.add_trace(go.Histogram(x=np.asarray(item["error"], float).ravel(), nbinsx=60, showlegend=False,
                                   name=item["name"], marker_color=color), 2, col)  # fmt: skip
        if col > 1:  # one value and one error scale across the formats, so that widths compare by eye
            fig.update_xaxes(matches="x", row=1, col=col)
            fig.update_xaxes(matches=f"x{n + 1}", row=2, col=col)
            for row in (3, 4):  # costs on one scale per row: a taller bar costs more
                fig.update_yaxes(matches=f"y{(row - 1) * n + 1}", row=row, col=col)
        names = [c[0] for c in item["components"]]
        fig.add_trace(go.Bar(x=names, y=[c[1] for c in item["components"]], showlegend=False,
                             marker_color="#1f77b4", name="area"), 3, col)  # fmt: skip
        fig.add_trace(go.Bar(x=names, y=[c[2] for c in item["components"]], showlegend=False,
                             marker_color="#ff7f0e", name="energy"), 4, col)  # fmt: skip
    fig.update_yaxes(visible=False, row=1)
    fig.update_layout(template="plotly_white", height=1000, margin={"l": 50, "r": 40, "t": 40, "b": 90})
    return fig


def linearity_figure(df: pd.DataFrame, drops: bool = False) -> go.Figure:
    """Measured model fidelity against the linearity theorem's prediction, one marker per format or
    per-layer mix (DP rows as diamonds), the line measured = predicted, and Pearson's r (of the
    fidelities) in the title. With `drops`, both axes show the drop 1 - fidelity on log scales, which
    spreads out the formats close to 1 (predictions of no drop or less are left out there)."""
    rows = linearity_rows(df)
    x = rows.get("predicted_fidelity", pd.Series(dtype=float)).astype(float)
    y = rows.get("fidelity", pd.Series(dtype=float)).astype(float)
    if drops:
        x, y = 1 - x, 1 - y
    fig = go.Figure()
    for mixed, group in rows.groupby(rows.get("family", pd.Series("", index=rows.index)) == "mixed"):
        fig.add_trace(go.Scatter(x=x[group.index], y=y[group.index], mode="markers+text", text=group["format"],
                                 textposition="top center", name="DP mix" if mixed else "uniform",
                                 marker={"size": 9, "symbol": "diamond" if mixed else "circle"}))  # fmt: skip
    if len(rows):
        lo, hi = (float(min(x[x > 0].min(), y[y > 0].min())), float(max(x.max(), y.max()))) if drops else (
            float(min(x.min(), y.min())), 1.0)  # fmt: skip
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="measured = predicted",
                                 line={"dash": "dot", "color": "grey"}))  # fmt: skip
    r = pearson(rows)
    title = f"Linearity theorem: Pearson r = {r:.3f} over {len(rows)} assignments" if len(rows) else (
        "No predicted fidelity in this table (a model study with allocations has it)")  # fmt: skip
    what = "drop (1 - mean cosine)" if drops else "fidelity (mean cosine)"
    fig.update_layout(title=title, xaxis_title=f"predicted {what}, from sum of alpha x relative MSE",
                      yaxis_title=f"measured {what}", template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50}, legend={"orientation": "h"})  # fmt: skip
    if drops:
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log")
    return fig
