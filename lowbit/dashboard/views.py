"""What each view shows, as plain functions of the page's state (the callbacks only call these)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import no_update

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
    log_axis,
    metric_of,
    metrics,
    overflowed,
)
from . import figures, ids
from .data import Loaded, list_tables
from .data import load as load_file
from .designer import design_accuracy, design_cost, design_format
from .fronttable import front_table
from .groups import FAMILY, ColorBy, FacetBy, with_groups
from .state import COMPARE_MAX, FILTERS, PageState, from_controls, parse_query

# The detail view and the designer draw at most SAMPLE_ROWS (64) rows and SAMPLE_ELEMENTS (2^16)
# elements of a workload, whatever the table says (lowbit.study.replay)


AREA, ENERGY = "area_um2", "energy_pj_per_mac"  # the three-objective view's cost columns
FILTER_COLUMN = {"family": FAMILY}  # the family filter reads the derived family (groups.with_groups)
HIDDEN, SHOWN = {"display": "none"}, {"display": "block"}


def table_options(root: Path) -> list[str]:
    return list_tables(root)


def load(root: Path, table: str | None) -> Loaded:
    """A results table (lowbit.dashboard.data.load) with its derived family and element type."""
    loaded = load_file(root, table)
    return Loaded(with_groups(loaded.table), loaded.message)


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
        column = FILTER_COLUMN.get(f, f)
        out[f] = sorted(map(str, df[column].dropna().unique())) if column in df.columns else []
    out["format"] = list(dict.fromkeys(df["format"].astype(str))) if "format" in df.columns else []
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
    wanted values (a list, or one value). The family filter takes the derived family or the study's
    own family column (float, scaled, ...), so that either name selects."""
    if workload is not None and "workload" in df.columns:
        df = df[df["workload"] == workload] if isinstance(workload, str) else df.iloc[:0]
    for f, wanted in filters.items():
        columns = [c for c in (FILTER_COLUMN.get(f), f) if c in df.columns]
        if wanted and columns:
            wanted = [str(w) for w in (wanted if isinstance(wanted, list | tuple) else [wanted])]
            df = df[np.logical_or.reduce([df[c].astype(str).isin(wanted).to_numpy() for c in columns])]
    return df


def explorer_view(root: Path, state: PageState, candidates=()) -> tuple:
    """(figure, front table columns, front rows, message) of the explorer: the table's points of the
    state's workload (every workload when faceted or coloured by workload) and filters, coloured,
    faceted and on the log axes the state names."""
    return _explore(root, state, candidates, state.color)


def pareto_view(root: Path, table, workload, metric, cost, filters: dict, candidates) -> tuple:
    """(figure, front rows, message) of the explorer on its plain controls, one colour and no panels
    (the page's values, any JSON: lowbit.dashboard.state.from_controls reads them)."""
    state = from_controls(table, workload, metric, cost, filters, None, None, None, None, ())
    fig, _, rows, message = _explore(root, state, candidates, None)
    return fig, rows, message


def _explore(root: Path, state: PageState, candidates, color: ColorBy | None) -> tuple:
    loaded = load(root, state.table)
    df, metric, cost = loaded.table, state.metric, state.cost
    if df.empty or metric is None or cost is None or {metric, cost} - set(df.columns):
        empty = figures.pareto_figure(pd.DataFrame(), cost or "", metric or "")
        return empty, [], [], loaded.message or "Pick a table."
    workload = None if state.facet is FacetBy.WORKLOAD or color is ColorBy.WORKLOAD else state.workload
    d = filtered(df, workload, state.filters)
    over = d.loc[overflowed(d), "format"].astype(str).tolist()  # named below: an Inf or NaN metric is not drawn
    d = d[np.isfinite(pd.to_numeric(d[metric], errors="coerce")) & np.isfinite(pd.to_numeric(d[cost], errors="coerce"))]
    mine = [c for c in _candidates(candidates) if c["metric"] == metric and c["cost"] == cost]
    fig = figures.pareto_figure(d, cost, metric, mine, color, state.facet, state.log)
    listed = d
    if workload is None and "workload" in d.columns and state.workload in set(d["workload"]):
        listed = d[d["workload"] == state.workload]  # every workload drawn: the table lists the picked one's front
    columns, rows = front_table(figures.front_of(listed, cost, metric), cost, metric) if len(listed) else ([], [])
    message = loaded.message or ("" if len(d) else "No points match the filters.")
    if over:
        message += f" GEMM outputs overflowed to Inf/NaN (x where drawn) in {len(over)} point(s): {', '.join(over[:5])}"
    return fig, columns, rows, message.strip()


def three_objective_view(root: Path, state: PageState) -> tuple:
    """(figure, style) of accuracy against area with energy as colour; hidden for tables without
    area and energy columns or without an accuracy metric."""
    d = filtered(load(root, state.table).table, state.workload, state.filters)
    metric = state.metric
    if d.empty or metric is None or {metric, AREA, ENERGY} - set(d.columns):
        return go.Figure(), HIDDEN
    finite = np.ones(len(d), bool)
    for c in (metric, AREA, ENERGY):
        finite &= np.isfinite(pd.to_numeric(d[c], errors="coerce")).to_numpy()
    return figures.three_objective_figure(d[finite], metric, AREA, ENERGY), {"height": "440px", **SHOWN}


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


def _components(row: pd.Series, fmt: AnyFormat, k: int) -> list[tuple[str, float, float]]:
    """The priced unit's components (name, area in um^2, energy in pJ/MAC): the engine's datapath
    where the study's cost names one; none without a cost model for the format."""
    if not row.get("cost_spec"):
        return []
    settings = _cost_settings(row)
    try:
        e = settings.engine_cost() if settings.engine is not None else settings.estimate(fmt, k)
    except (ValueError, TypeError):
        return []
    return [(p.name, p.area_um2, p.energy_pj_per_mac) for p in e.components]


def _breakdown(row: pd.Series, fmt: AnyFormat, k: int) -> go.Figure:
    components = _components(row, fmt, k)
    return figures.cost_breakdown_figure(components) if components else go.Figure()


def _clicked_row(df: pd.DataFrame, index) -> pd.Series | None:
    """The table row a click names; None unless the index is a plain integer of the table (the index
    comes from the page's click data)."""
    if not isinstance(index, int) or isinstance(index, bool) or df.empty or index not in df.index:
        return None
    return df.loc[index]


PROMPT = "Click a point to see its detail."


def point_index(root: Path, table, workload, point) -> int | None:
    """The table row of the format `point`: on `workload`, else its first row (None: no such
    format, or anything but names: the arguments are the page's state)."""
    df = load(root, table).table
    if not isinstance(point, str) or df.empty or "format" not in df.columns:
        return None
    rows = df[df["format"].astype(str) == point]
    on = rows[rows["workload"] == workload] if "workload" in rows.columns and isinstance(workload, str) else rows
    picked = on if len(on) else rows
    return int(picked.index[0]) if len(picked) else None


def clicked_format(root: Path, table, click) -> str | None:
    """The format of the point a click names (Plotly click data: its customdata is the row index)."""
    point = click["points"][0] if isinstance(click, dict) and click.get("points") else {}
    row = _clicked_row(load(root, table).table, point.get("customdata") if isinstance(point, dict) else None)
    return None if row is None else str(row["format"])


def detail_style(root: Path, table, index) -> dict:
    """The detail charts' style: hidden (the prompt alone) until a point is picked."""
    return HIDDEN if _clicked_row(load(root, table).table, index) is None else SHOWN


def detail_view(root: Path, table, workload, filters: dict, index) -> tuple:
    """(title, value grid, error against magnitude, error histogram, cost breakdown) of one point; the
    prompt before any click."""
    empty = go.Figure()
    row = _clicked_row(load(root, table).table, index)
    if row is None:
        return PROMPT, empty, empty, empty, empty
    try:
        r = requantize(row, SAMPLE_ROWS, SAMPLE_ELEMENTS)
    except Exception as err:  # shown on the page
        return f"{row['format']}: no detail ({err})", empty, empty, empty, empty
    element = getattr(r.format, "element", r.format)
    values = np.asarray(getattr(element, "values", getattr(element, "table", [])), float).ravel()
    breakdown = _breakdown(row, r.format, r.x.shape[1])
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


COMPARE_PROMPT = f"Pick two or {COMPARE_MAX} formats above to compare them side by side."


def compare_view(root: Path, state: PageState) -> tuple:
    """(figure, style, message) of the compare view: the state's two or three formats side by side,
    each on the state's workload (else its first) and the detail view's bounded sample."""
    if not 2 <= len(state.compare) <= COMPARE_MAX:
        return go.Figure(), HIDDEN, COMPARE_PROMPT
    df = load(root, state.table).table
    items, problems = [], []
    for name in state.compare:
        index = point_index(root, state.table, state.workload, name)
        if index is None:
            problems.append(f"{name}: not in this table")
            continue
        row = df.loc[index]
        try:
            r = requantize(row, SAMPLE_ROWS, SAMPLE_ELEMENTS)
        except Exception as err:  # shown on the page
            problems.append(f"{name}: {err}")
            continue
        element = getattr(r.format, "element", r.format)
        values = np.asarray(getattr(element, "values", getattr(element, "table", [])), float).ravel()
        items.append({"name": f"{name} on {row['workload']}", "values": values, "error": r.q - r.x,
                      "components": _components(row, r.format, r.x.shape[1])})  # fmt: skip
    message = "; ".join(problems)
    return figures.compare_figure(items), (SHOWN if items else HIDDEN), message


def _pick(value: str | None, offered: list, what: str, problems: list[str]) -> str | None:
    """`value` if the table offers it, else the first offered (and a problem when a value was given)."""
    if value is not None and value not in offered:
        problems.append(f"{what} {value!r} is not in this table")
    return value if value in offered else (offered[0] if offered else None)


CONTROLS = 22  # the outputs of `controls`; the log axes are the 18th
LOG_AT = 17


def default_log(metric, cost) -> list[str]:
    """The axes the columns put on log scales (errors, areas and energies span decades)."""
    return [a for a, col in (("x", cost), ("y", metric)) if isinstance(col, str) and log_axis(col)]


def controls(root: Path, query: object, trigger, page: dict) -> tuple:
    """Every control's options and value for the page, by what changed (`trigger`, a component ID):
    on loading, the URL's state (each value the table lacks replaced by the default, and named in the
    message); a table just picked, its defaults (the colour, facet and log `page["switches"]` kept); a
    metric or cost axis just picked, only the log axes (the new columns' choice), the rest unchanged.
    `page`: the controls' values now (table, metric, cost, switches)."""
    if trigger in (ids.METRIC, ids.COST):
        out = [no_update] * CONTROLS
        out[LOG_AT] = default_log(page.get("metric"), page.get("cost"))
        return tuple(out)
    tables = table_options(root)
    state, problems = parse_query(query)
    if trigger == ids.TABLE:
        state, problems = from_controls(page.get("table"), None, None, None, {}, *page["switches"], None, ()), []
    name = _pick(state.table, tables, "table", problems)
    c = choices(root, name)
    workload = _pick(state.workload, c["workload"], "workload", problems)
    metric = _pick(state.metric, c["metric"], "metric", problems)
    cost = _pick(state.cost, c["cost"], "cost axis", problems)
    filters = {}
    for f in FILTERS:
        wanted = state.filters.get(f, ())
        problems += [f"{f} {v!r} is not in this table" for v in wanted if v not in c[f]]
        filters[f] = [v for v in wanted if v in c[f]]
    compare = [f for f in state.compare if f in c["format"]]
    problems += [f"format {f!r} is not in this table" for f in (*state.compare, state.point or "")
                 if f and f not in c["format"]]  # fmt: skip
    log = list(state.log) if state.log is not None else default_log(metric, cost)
    point = state.point if state.point in c["format"] else None
    options = dropdowns(c)
    message = "Ignored in the URL: " + "; ".join(problems) + "." if problems else ""
    return (name, options[0], workload, options[2], metric, options[4], cost, *options[6:10],
            *(filters[f] for f in FILTERS), state.color.value, state.facet.value, log, c["format"], compare, point,
            message)  # fmt: skip
