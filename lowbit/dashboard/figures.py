"""Pure figure functions: data in, Plotly figure out (the tests call them directly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

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


def pareto_figure(df: pd.DataFrame, x: str, y: str, candidates: list[dict] | None = None) -> go.Figure:
    """Every point (hover: its spec), the front as a line over them, and designer candidates."""
    scatter = go.Scatter if len(df) <= SVG_LIMIT else go.Scattergl
    fig = go.Figure()
    if len(df):
        flags, text = overflowed(df).to_numpy(), _hover(df)  # a point whose GEMM outputs overflowed: an x and a note
        for i in np.flatnonzero(flags):
            text[i] += "<br>overflow: " + overflow_note(df.iloc[i])
        fig.add_trace(scatter(x=df[x], y=df[y], mode="markers", name="points", text=text,
                              customdata=[int(i) for i in df.index], hovertemplate="%{text}<extra></extra>",
                              marker={"size": 7, "opacity": 0.6,
                                      "symbol": np.where(flags, "x", "circle").tolist()}))  # fmt: skip
        front = front_of(df, x, y)
        fig.add_trace(go.Scatter(x=front[x], y=front[y], mode="lines+markers", name="Pareto front",
                                 text=_hover(front), customdata=[int(i) for i in front.index],
                                 hovertemplate="%{text}<extra></extra>", line={"shape": "hv"}))  # fmt: skip
    for c in candidates or []:
        fig.add_trace(go.Scatter(x=[c["x"]], y=[c["y"]], mode="markers+text", name=f"candidate: {c['label']}",
                                 text=[c["label"]], textposition="top center",
                                 marker={"size": 14, "symbol": "star", "color": "crimson"}))  # fmt: skip
    fig.update_layout(xaxis_title=column_label(x), yaxis_title=column_label(y), template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 30, "b": 50}, legend={"orientation": "h"})  # fmt: skip
    if log_axis(y):  # errors span decades
        fig.update_yaxes(type="log")
    if log_axis(x):
        fig.update_xaxes(type="log")
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
    """Area (um^2) and energy (pJ/MAC) of each component, as two bar charts side by side."""
    names = [c[0] for c in components]
    fig = go.Figure([go.Bar(x=names, y=[c[1] for c in components], name="area (um^2)", yaxis="y"),
                     go.Bar(x=names, y=[c[2] for c in components], name="energy (pJ/MAC)", yaxis="y2")])  # fmt: skip
    fig.update_layout(barmode="group", yaxis={"title": "area (um^2)"}, template="plotly_white", height=320,
                      yaxis2={"title": "energy (pJ/MAC)", "overlaying": "y", "side": "right"},
                      margin={"l": 60, "r": 60, "t": 20, "b": 90}, legend={"orientation": "h"})  # fmt: skip
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
