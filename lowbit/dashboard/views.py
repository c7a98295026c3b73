"""What each view shows, as plain functions of the page's state (the callbacks only call these)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..formats import AnyFormat, ScaledFormat, ScaleRule, get_format
from ..simulator import quantize
from ..study.replay import data_shape, requantize, row_data
from ..study.reports import linearity_rows
from ..study.schema import Cost
from ..study.store import COST_COLUMNS, WorkloadKind, column_label, cost_column, metric_of, metrics, storage_bits
from . import figures
from .data import list_tables, load

FILTERS = ("family", "element", "block", "scale")
DETAIL_ROWS = 64  # rows of the workload drawn for the detail view


def table_options(root: Path) -> list[str]:
    return list_tables(root)


def _present(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and bool(df[column].notna().any())


def choices(root: Path, table: str | None) -> dict[str, list]:
    """Values the dropdowns offer for a table: workloads, metrics and cost axes present, filter values."""
    df = load(root, table).table
    out: dict[str, list] = {"workload": [], "metric": [], "cost": []}
    if df.empty:
        return {**out, **{f: [] for f in FILTERS}}
    out["workload"] = list(dict.fromkeys(df["workload"]))
    # every registered metric's columns, in registry order (a GEMM metric has one per accumulator)
    out["metric"] = [c for m in metrics() for c in df.columns if metric_of(c) is m and _present(df, c)]
    out["cost"] = [c.name for c in COST_COLUMNS if _present(df, c.name)]
    for f in FILTERS:
        out[f] = sorted(map(str, df[f].dropna().unique())) if f in df.columns else []
    return out


def dropdowns(c: dict) -> tuple:
    """The table callback's outputs: workload options and value, metric and cost options (labelled)
    and values, and the four filters' options."""

    def first(values):
        return values[0] if values else None

    metric_options = [{"label": column_label(m), "value": m} for m in c["metric"]]
    cost_options = [{"label": column_label(m), "value": m} for m in c["cost"]]
    return (c["workload"], first(c["workload"]), metric_options, first(c["metric"]), cost_options, first(c["cost"]),
            c["family"], c["element"], c["block"], c["scale"])  # fmt: skip


def filtered(df: pd.DataFrame, workload: str | None, filters: dict) -> pd.DataFrame:
    if workload is not None and "workload" in df.columns:
        df = df[df["workload"] == workload]
    for f, wanted in filters.items():
        if wanted and f in df.columns:
            df = df[df[f].astype(str).isin([str(w) for w in wanted])]
    return df


def pareto_view(root: Path, table, workload, metric, cost, filters: dict, candidates) -> tuple:
    """(figure, front rows, message) of the explorer."""
    loaded = load(root, table)
    df = loaded.table
    if df.empty or metric not in df.columns or cost not in df.columns:
        return figures.pareto_figure(pd.DataFrame(), cost or "", metric or ""), [], loaded.message or "Pick a table."
    d = filtered(df, workload, filters)
    d = d[np.isfinite(pd.to_numeric(d[metric], errors="coerce")) & np.isfinite(pd.to_numeric(d[cost], errors="coerce"))]
    mine = [c for c in candidates or [] if c.get("metric") == metric and c.get("cost") == cost]
    fig = figures.pareto_figure(d, cost, metric, mine)
    front = figures.front_of(d, cost, metric) if len(d) else d
    rows = front[["format", cost, metric]].round(6).to_dict("records") if len(front) else []
    message = loaded.message or ("" if len(d) else "No points match the filters.")
    return fig, rows, message


def linearity_view(root: Path, table, workload) -> tuple:
    """(figure, style) of predicted against measured model fidelity drops on log scales; hidden for
    tables without a prediction."""
    df = filtered(load(root, table).table, workload, {})
    shown = len(linearity_rows(df)) > 0
    return figures.linearity_figure(df, drops=True), {"height": "420px", "display": "block" if shown else "none"}


def _cost_settings(row: pd.Series) -> Cost:
    """The row's cost-model settings (the schema's defaults where the study gave none)."""
    return Cost.model_validate_json(row.get("cost_spec") or "{}")


def _breakdown(row: pd.Series, fmt: AnyFormat, k: int) -> go.Figure:
    try:
        e = _cost_settings(row).estimate(fmt, k)
    except (ValueError, TypeError):  # no cost model for this format: the graph stays empty
        return go.Figure()
    return figures.cost_breakdown_figure([(p.name, p.area_um2, p.energy_pj_per_mac) for p in e.components])


def detail_view(root: Path, table, workload, filters: dict, index) -> tuple:
    """(title, value grid, error against magnitude, error histogram, cost breakdown) of one point."""
    empty = go.Figure()
    df = load(root, table).table
    if index is None or df.empty or index not in df.index:
        return "Click a point to see its detail.", empty, empty, empty, empty
    row = df.loc[index]
    try:
        r = requantize(row, DETAIL_ROWS)
    except Exception as err:  # shown on the page
        return f"{row['format']}: no detail ({err})", empty, empty, empty, empty
    element = getattr(r.format, "element", r.format)
    values = np.asarray(getattr(element, "values", getattr(element, "table", [])), float).ravel()
    breakdown = _breakdown(row, r.format, r.x.shape[1]) if row.get("cost_spec") else empty
    title = f"{row['format']} on {row['workload']}"
    return (title, figures.value_grid_figure(values, str(row.get("element", ""))),
            figures.error_magnitude_figure(r.x, r.q), figures.error_histogram_figure(r.x, r.q), breakdown)  # fmt: skip


def design_format(element, block, scale, rule) -> AnyFormat:
    """The designer's format: an element (eXmY, intN or any catalog name) with a block scale of
    `scale` picked by `rule` when block > 0; block 0 takes the named format as it is."""
    el = get_format(str(element).strip())
    if not block:
        return el
    sc = None if scale in (None, "fp32") else get_format(scale)
    return ScaledFormat(el, int(block), sc, rule or ScaleRule.ABSMAX)


def design_cost(fmt: AnyFormat, column: str, shape: tuple[int, int], cost: Cost) -> float:
    """A designed format's value in a cost column, computed as the study table computes it for data of
    `shape` (quantized along its last axis)."""
    col = cost_column(column)
    if col is None:
        return math.nan
    if col.of_estimate is None:
        return storage_bits(fmt, shape)
    return col.of_estimate(cost.estimate(fmt, shape[-1]))


def design_accuracy(metric: str | None, x: np.ndarray, q: np.ndarray) -> float:
    """A tensor metric of the designed format (NaN for GEMM and model metrics: a tensor is not enough)."""
    m = metric_of(metric) if metric else None
    if m is None or WorkloadKind.TENSOR not in m.kinds:
        return math.nan
    return m.compute(np.asarray(x, np.float64), np.asarray(q, np.float64))


def design_view(root: Path, table, workload, metric, cost, element, block, scale, rule, candidates) -> tuple:
    """(candidates with the new one, message): a designed format's accuracy and cost on the workload."""
    candidates = list(candidates or [])
    df = load(root, table).table
    if df.empty:
        return candidates, "Load a table first."
    rows = df[df["workload"] == workload] if workload is not None else df
    if rows.empty:
        return candidates, "Pick a workload."
    row = rows.iloc[0]
    try:
        fmt = design_format(element, block, scale, rule)
        x = row_data(row, DETAIL_ROWS)
        acc = design_accuracy(metric, x, quantize(x, fmt))
        c = design_cost(fmt, cost, data_shape(row), _cost_settings(row))
    except Exception as err:  # a bad design is a message, not a traceback
        return candidates, f"Cannot build that format: {err}"
    label = f"{element} b{block or '-'} {scale or ''} {rule or ''}".strip()
    candidates.append({"label": label, "x": c, "y": acc, "metric": metric, "cost": cost})
    return candidates, f"Candidate {label}: {column_label(metric)} {acc:.4g}, {column_label(cost)} {c:.4g}"
