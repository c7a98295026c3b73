"""What each view shows, as plain functions of the page's state (the callbacks only call these)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures
from .data import ACCURACY, COST, load

FILTERS = ("family", "element", "block", "scale")
DETAIL_ROWS = 64  # rows of the workload drawn for the detail view


def table_options(root: Path) -> list[str]:
    from .data import list_tables

    return list_tables(root)


def choices(root: Path, table: str | None) -> dict[str, list]:
    """Values the dropdowns offer for a table: workloads, metrics and cost axes present, filter values."""
    df = load(root, table).table
    out: dict[str, list] = {"workload": [], "metric": [], "cost": []}
    if df.empty:
        return {**out, **{f: [] for f in FILTERS}}
    out["workload"] = list(dict.fromkeys(df["workload"]))
    gemm = [c for c in df.columns if c.startswith("gemm_relative_error")]
    out["metric"] = [m for m in [*ACCURACY, *gemm] if m in df.columns and df[m].notna().any()]
    out["cost"] = [c for c in COST if c in df.columns and df[c].notna().any()]
    for f in FILTERS:
        out[f] = sorted(map(str, df[f].dropna().unique())) if f in df.columns else []
    return out


def dropdowns(c: dict, accuracy: dict, cost: dict) -> tuple:
    """The table callback's outputs: workload options and value, metric and cost options (labelled)
    and values, and the four filters' options."""

    def first(values):
        return values[0] if values else None

    metrics = [{"label": accuracy.get(m, m), "value": m} for m in c["metric"]]
    costs = [{"label": cost.get(m, m), "value": m} for m in c["cost"]]
    return (c["workload"], first(c["workload"]), metrics, first(c["metric"]), costs, first(c["cost"]),
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
    from ..study.reports import linearity_rows

    df = filtered(load(root, table).table, workload, {})
    shown = len(linearity_rows(df)) > 0
    return figures.linearity_figure(df, drops=True), {"height": "420px", "display": "block" if shown else "none"}


def _point_data(row: pd.Series):
    from pydantic import TypeAdapter

    from ..study.schema import FormatSpec, Workload
    from ..study.workloads import GemmPair, synthetic

    w = TypeAdapter(Workload).validate_json(row["workload_spec"])
    if w.kind == "gemm":
        w = w.a
    if not hasattr(w, "shape"):
        raise ValueError("the detail view redraws synthetic workloads only")
    spec = FormatSpec.model_validate_json(row["format_spec"])
    x = synthetic(w.model_copy(update={"shape": [min(w.shape[0], DETAIL_ROWS), *w.shape[1:]]}))
    return spec, (x.a if isinstance(x, GemmPair) else x)


def detail_view(root: Path, table, workload, filters: dict, index) -> tuple:
    """(title, value grid, error against magnitude, error histogram, cost breakdown) of one point."""
    import plotly.graph_objects as go

    from ..study.point import _quantize

    empty = go.Figure()
    df = load(root, table).table
    if index is None or df.empty or index not in df.index:
        return "Click a point to see its detail.", empty, empty, empty, empty
    row = df.loc[index]
    try:
        spec, x = _point_data(row)
        fmt = spec.spec()
        q = _quantize(x, spec, fmt)
    except Exception as err:  # shown on the page
        return f"{row['format']}: no detail ({err})", empty, empty, empty, empty
    element = getattr(fmt, "element", fmt)
    values = np.asarray(getattr(element, "values", getattr(element, "table", [])), float).ravel()
    breakdown = empty
    if isinstance(row.get("cost_spec"), str) and row["cost_spec"]:
        from ..costmodel import estimate

        c = json.loads(row["cost_spec"])
        try:
            e = estimate(fmt, c.get("b_format") or fmt, c["accumulator"], c["lanes"], c["node"], c["partial_sum_bits"])
            breakdown = figures.cost_breakdown_figure([(p.name, p.area_um2, p.energy_pj_per_mac) for p in e.components])
        except (ValueError, TypeError):
            pass
    title = f"{row['format']} on {row['workload']}"
    return (title, figures.value_grid_figure(values, str(row.get("element", ""))),
            figures.error_magnitude_figure(x, q), figures.error_histogram_figure(x, q), breakdown)  # fmt: skip


def design_view(root: Path, table, workload, metric, cost, element, block, scale, rule, candidates) -> tuple:
    """(candidates with the new one, message): a designed format's accuracy and cost on the workload."""
    from ..costmodel import estimate
    from ..formats import ScaledFormat, get_format
    from ..study.metrics import tensor_metrics
    from ..study.schema import FormatSpec

    candidates = list(candidates or [])
    df = load(root, table).table
    if df.empty:
        return candidates, "Load a table first."
    rows = df[df["workload"] == workload] if workload is not None else df
    if rows.empty:
        return candidates, "Pick a workload."
    try:
        el = get_format(str(element).strip())
        if block:
            sc = None if scale in (None, "fp32") else get_format(scale)
            fmt = ScaledFormat(el, int(block), sc, rule or "absmax")
        else:
            fmt = el
        spec = FormatSpec(format="int8")  # only its Hadamard and rounding fields are used below
        _, x = _point_data(rows.iloc[0])
        from ..study.point import _quantize

        q = _quantize(x, spec, fmt)
        acc = tensor_metrics(x, q, [metric])[metric] if metric in ACCURACY and metric != "fidelity" else float("nan")
        if cost == "bits_per_element":
            c = float(fmt.bits_per_element(x.shape[1])) if isinstance(fmt, ScaledFormat) else float(fmt.bits)
        else:
            settings = json.loads(rows.iloc[0]["cost_spec"] or "{}") or {}
            e = estimate(
                fmt,
                settings.get("b_format") or fmt,
                settings.get("accumulator", "fp32"),
                settings.get("lanes", 32),
                settings.get("node", "7nm"),
                settings.get("partial_sum_bits", 24),
            )
            c = {"area_um2": e.area_um2, "area_per_lane_um2": e.area_per_lane_um2,
                 "energy_pj_per_mac": e.energy_pj_per_mac, "sram_pj_per_element": e.memory.a_sram_pj,
                 "dram_pj_per_element": e.memory.a_dram_pj}.get(cost, float("nan"))  # fmt: skip
    except Exception as err:  # a bad design is a message, not a traceback
        return candidates, f"Cannot build that format: {err}"
    label = f"{element} b{block or '-'} {scale or ''} {rule or ''}".strip()
    candidates.append({"label": label, "x": c, "y": acc, "metric": metric, "cost": cost})
    return candidates, f"Candidate {label}: {ACCURACY.get(metric, metric)} {acc:.4g}, {COST.get(cost, cost)} {c:.4g}"
