"""What each view shows, as plain functions of the page's state (the callbacks only call these)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..formats import AnyFormat
from ..study.metrics import tensor_case
from ..study.replay import SAMPLE_ELEMENTS, SAMPLE_ROWS, data_shape, draw, requantize, row_width, sample_shape
from ..study.reports import linearity_rows
from ..study.schema import Cost
from ..study.store import (
    COST_COLUMNS,
    ENGINE_AREA,
    ENGINE_ENERGY,
    FRACTION_BITS,
    WorkloadKind,
    column_label,
    engine_points,
    metric_of,
    metrics,
    overflowed,
)
from . import figures
from .data import list_tables, load
from .designer import design_accuracy, design_cost, design_format

FILTERS = ("family", "element", "block", "scale")
# The detail view and the designer draw at most SAMPLE_ROWS (64) rows and SAMPLE_ELEMENTS (2^16)
# elements of a workload, whatever the table says (lowbit.study.replay)


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
    out["cost"] = [c.name for c in (*COST_COLUMNS, FRACTION_BITS) if _present(df, c.name)]
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


def _candidates(value) -> list[dict]:
    """The page's designer candidates, keeping only well-formed ones (the store is client state)."""
    keys = ("label", "x", "y", "metric", "cost")
    return [c for c in value if isinstance(c, dict) and all(k in c for k in keys)] if isinstance(value, list) else []


def filtered(df: pd.DataFrame, workload: str | None, filters: dict) -> pd.DataFrame:
    """Rows of `workload` (None: all; anything but a name: none) whose filter columns hold one of the
    wanted values (a list, or one value)."""
    if workload is not None and "workload" in df.columns:
        df = df[df["workload"] == workload] if isinstance(workload, str) else df.iloc[:0]
    for f, wanted in filters.items():
        if wanted and f in df.columns:
            wanted = wanted if isinstance(wanted, list) else [wanted]
            df = df[df[f].astype(str).isin([str(w) for w in wanted])]
    return df


def pareto_view(root: Path, table, workload, metric, cost, filters: dict, candidates) -> tuple:
    """(figure, front rows, message) of the explorer."""
    loaded = load(root, table)
    df = loaded.table
    if df.empty or not isinstance(metric, str) or not isinstance(cost, str) or {metric, cost} - set(df.columns):
        return figures.pareto_figure(pd.DataFrame(), cost or "", metric or ""), [], loaded.message or "Pick a table."
    d = filtered(df, workload, filters)
    over = d.loc[overflowed(d), "format"].astype(str).tolist()  # named below: an Inf or NaN metric is not drawn
    d = d[np.isfinite(pd.to_numeric(d[metric], errors="coerce")) & np.isfinite(pd.to_numeric(d[cost], errors="coerce"))]
    mine = [c for c in _candidates(candidates) if c["metric"] == metric and c["cost"] == cost]
    fig = figures.pareto_figure(d, cost, metric, mine)
    front = figures.front_of(d, cost, metric) if len(d) else d
    rows = front[["format", cost, metric]].round(6).to_dict("records") if len(front) else []
    message = loaded.message or ("" if len(d) else "No points match the filters.")
    if over:
        message += f" GEMM outputs overflowed to Inf/NaN (x where drawn) in {len(over)} point(s): {', '.join(over[:5])}"
    return fig, rows, message.strip()


def linearity_view(root: Path, table, workload) -> tuple:
    """(figure, style) of predicted against measured model fidelity drops on log scales; hidden for
    tables without a prediction."""
    df = filtered(load(root, table).table, workload, {})
    shown = len(linearity_rows(df)) > 0
    return figures.linearity_figure(df, drops=True), {"height": "420px", "display": "block" if shown else "none"}


def _engine_metric(df: pd.DataFrame, metric) -> str | None:
    """The GEMM metric whose engine columns the engine view draws: the picked one's if it has engine
    columns, else the first that does (None: the table has none)."""
    picked = metric_of(metric) if isinstance(metric, str) else None
    gemm = [m for m in metrics() if WorkloadKind.GEMM in m.kinds]
    for m in ([picked] if picked in gemm else []) + gemm:
        if len(engine_points(df, m.name)):
            return m.name
    return None


def engine_view(root: Path, table, workload, metric, cost, filters: dict) -> tuple:
    """(figure, style) of a GEMM metric on every engine of the table against each engine's cost (energy
    or fraction bits when the picked cost axis is one of those, else the datapath's area); hidden for
    tables without engine columns."""
    df = filtered(load(root, table).table, workload, filters)
    base = _engine_metric(df, metric) if not df.empty else None
    if base is None:
        return go.Figure(), {"display": "none"}
    picked = cost if isinstance(cost, str) else ""  # the page's state: any JSON value
    axis = {"energy_pj_per_mac": ENGINE_ENERGY.name, FRACTION_BITS.name: FRACTION_BITS.name}.get(
        picked, ENGINE_AREA.name
    )
    return figures.engine_pareto_figure(df, base, axis), {"height": "460px", "display": "block"}


def _cost_settings(row: pd.Series) -> Cost:
    """The row's cost-model settings (the schema's defaults where the study gave none)."""
    return Cost.model_validate_json(row.get("cost_spec") or "{}")


def _breakdown(row: pd.Series, fmt: AnyFormat, k: int) -> go.Figure:
    """The priced unit's components: the engine's datapath where the study's cost names one."""
    settings = _cost_settings(row)
    try:
        e = settings.engine_cost() if settings.engine is not None else settings.estimate(fmt, k)
    except (ValueError, TypeError):  # no cost model for this format: the graph stays empty
        return go.Figure()
    return figures.cost_breakdown_figure([(p.name, p.area_um2, p.energy_pj_per_mac) for p in e.components])


def _clicked_row(df: pd.DataFrame, index) -> pd.Series | None:
    """The table row a click names; None unless the index is a plain integer of the table (the index
    comes from the page's click data)."""
    if not isinstance(index, int) or isinstance(index, bool) or df.empty or index not in df.index:
        return None
    return df.loc[index]


def detail_view(root: Path, table, workload, filters: dict, index) -> tuple:
    """(title, value grid, error against magnitude, error histogram, cost breakdown) of one point."""
    empty = go.Figure()
    row = _clicked_row(load(root, table).table, index)
    if row is None:
        return "Click a point to see its detail.", empty, empty, empty, empty
    try:
        r = requantize(row, SAMPLE_ROWS, SAMPLE_ELEMENTS)
    except Exception as err:  # shown on the page
        return f"{row['format']}: no detail ({err})", empty, empty, empty, empty
    element = getattr(r.format, "element", r.format)
    values = np.asarray(getattr(element, "values", getattr(element, "table", [])), float).ravel()
    breakdown = _breakdown(row, r.format, r.x.shape[1]) if row.get("cost_spec") else empty
    title = f"{row['format']} on {row['workload']}"
    return (title, figures.value_grid_figure(values, str(row.get("element", ""))),
            figures.error_magnitude_figure(r.x, r.q), figures.error_histogram_figure(r.x, r.q), breakdown)  # fmt: skip


def diagnostics_view(root: Path, table, index) -> tuple:
    """(element-code histogram, rows of the range diagnostics) of one point, on the detail view's
    sample of its workload (lowbit.diagnose)."""
    row = _clicked_row(load(root, table).table, index)
    if row is None:
        return go.Figure(), []
    try:
        r = requantize(row, SAMPLE_ROWS, SAMPLE_ELEMENTS)
        d = tensor_case(r.x, r.spec, r.format).diagnosis
    except Exception as err:  # shown on the page
        return go.Figure(), [{"quantity": "no diagnostics", "value": str(err)}]
    element = getattr(r.format, "element", r.format)
    fig = figures.code_histogram_figure(d.code_histogram, element.code_values, d.code_entropy_bits,
                                        str(row.get("element", "")))  # fmt: skip
    return fig, figures.diagnosis_rows(d)


def design_view(root: Path, table, workload, metric, cost, element, block, scale, rule, candidates) -> tuple:
    """(candidates with the new one, message): a designed format's accuracy and cost on the workload."""
    candidates = _candidates(candidates)
    df = load(root, table).table
    if df.empty:
        return candidates, "Load a table first."
    if not isinstance(metric, str) or not isinstance(cost, str):
        return candidates, "Pick an accuracy metric and a cost axis."
    rows = filtered(df, workload, {})
    if rows.empty:
        return candidates, "Pick a workload."
    row = rows.iloc[0]
    try:
        fmt = design_format(element, block, scale, rule)
    except Exception as err:  # a bad design is a message, not a traceback
        return candidates, f"Cannot build that format: {err}"
    try:
        x = draw(row, sample_shape(row, row_width(fmt, data_shape(row)[1])))
        acc = design_accuracy(metric, x, fmt)
        c = design_cost(fmt, cost, data_shape(row), _cost_settings(row))
    except Exception as err:  # shown on the page
        return candidates, f"Cannot evaluate that format on {row['workload']}: {err}"
    label = f"{str(element).strip()} b{int(block) or '-'} {scale or ''} {rule or ''}".strip()
    candidates.append({"label": label, "x": c, "y": acc, "metric": metric, "cost": cost})
    return candidates, f"Candidate {label}: {column_label(metric)} {acc:.4g}, {column_label(cost)} {c:.4g}"
