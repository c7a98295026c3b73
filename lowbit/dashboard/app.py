"""The Dash app: `create_app(results_dir)` builds it; callbacks only hand the page's state to `views`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import dash
from dash import Input, Output, State, ctx, dash_table, dcc, html
from flask import Response, abort, request

from ..formats import ScaleRule
from . import ids, views
from .address import HostAllowList, allow_list
from .designer import DESIGN_BLOCK_MAX, SCALES
from .groups import ColorBy, FacetBy
from .state import COMPARE_MAX, from_controls, to_query

RULES = [r.value for r in ScaleRule]
DEFAULT_RULE = ScaleRule.OCP_FLOOR.value  # the designer starts from MX's rule (its element e2m1, block 32)


def _dropdown(id_: str, label: str, multi: bool = False) -> html.Div:
    return html.Div([html.Label(label), dcc.Dropdown(id=id_, multi=multi, clearable=multi)],
                    style={"minWidth": "180px", "flex": "1"})  # fmt: skip


def _switch(id_: str, label: str, options: list[str], value: str) -> html.Div:
    return html.Div([html.Label(label), dcc.Dropdown(id=id_, options=options, value=value, clearable=False)],
                    style={"minWidth": "150px", "flex": "1"})  # fmt: skip


def _front_table() -> dash_table.DataTable:
    """The front's formats: sortable, exported as CSV under the same labels, names left-aligned."""
    return dash_table.DataTable(id=ids.FRONT_TABLE, page_size=12, sort_action="native", export_format="csv",
                                export_headers="names", style_table={"overflowX": "auto"},
                                style_header={"fontWeight": "bold"},
                                style_cell_conditional=[{"if": {"column_type": "text"},
                                                         "textAlign": "left"}])  # fmt: skip


def _detail() -> html.Div:
    """The clicked point's detail: a prompt until a click (or a URL) names a point."""
    return html.Div(id=ids.DETAIL, children=[
        html.H3(id=ids.DETAIL_TITLE, children=views.PROMPT),
        html.Div(id=ids.DETAIL_BODY, style={"display": "none"}, children=[
            dcc.Graph(id=ids.GRID), html.Div([dcc.Graph(id=ids.ERROR_MAG, style={"flex": "1"}),
                                              dcc.Graph(id=ids.ERROR_HIST, style={"flex": "1"})],
                                             style={"display": "flex"}),
            html.Div([dcc.Graph(id=ids.CODE_HIST, style={"flex": "2"}),
                      dash_table.DataTable(id=ids.DIAGNOSTICS, columns=[{"name": "range", "id": "quantity"},
                                                                        {"name": "", "id": "value"}])],
                     style={"display": "flex", "gap": "12px", "alignItems": "center"}),
            dcc.Graph(id=ids.BREAKDOWN)])])  # fmt: skip


def _compare() -> html.Div:
    return html.Div([
        html.H3("Compare formats"),
        html.Div([html.Label(f"formats (two or {COMPARE_MAX})"), dcc.Dropdown(id=ids.COMPARE, multi=True)],
                 style={"maxWidth": "640px"}),
        html.Div(id=ids.COMPARE_MESSAGE, style={"margin": "6px 0"}),
        dcc.Graph(id=ids.COMPARE_GRAPH, style={"display": "none"})])  # fmt: skip


def layout(root: Path) -> html.Div:
    tables = views.table_options(root)
    row = {"display": "flex", "gap": "12px", "flexWrap": "wrap", "marginBottom": "8px"}
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        html.H2("lowbit: accuracy against cost"),
        html.Div([html.Div([html.Label("results table"),
                            dcc.Dropdown(id=ids.TABLE, options=tables, value=tables[0] if tables else None)],
                           style={"minWidth": "220px", "flex": "1"}),
                  _dropdown(ids.WORKLOAD, "workload"), _dropdown(ids.METRIC, "accuracy"),
                  _dropdown(ids.COST, "cost")], style=row),
        html.Div([_dropdown(ids.FAMILY, "family", True), _dropdown(ids.ELEMENT, "element", True),
                  _dropdown(ids.BLOCK, "block", True), _dropdown(ids.SCALE, "scale", True)], style=row),
        html.Div([_switch(ids.COLOR, "colour by", [c.value for c in ColorBy], ColorBy.FAMILY.value),
                  _switch(ids.FACET, "panels by", [f.value for f in FacetBy], FacetBy.NONE.value),
                  html.Div([html.Label("log scale"),
                            dcc.Checklist(id=ids.LOG, options=[{"label": " x axis", "value": "x"},
                                                               {"label": " y axis", "value": "y"}],
                                          value=[], inline=True, inputStyle={"marginLeft": "10px"})],
                           style={"minWidth": "150px", "flex": "1"})], style=row),
        html.Div(id=ids.URL_MESSAGE, style={"color": "#a33"}),
        html.Div(id=ids.MESSAGE, style={"color": "#a33", "minHeight": "1.2em"}),
        dcc.Graph(id=ids.PARETO, style={"height": "520px"}),
        html.H4("Pareto front"),
        _front_table(),
        html.Div(style={"height": "16px"}),
        dcc.Graph(id=ids.THREE, style={"display": "none"}),
        dcc.Graph(id=ids.LINEARITY, style={"display": "none"}),
        dcc.Graph(id=ids.ENGINES, style={"display": "none"}),
        html.H3("Format designer"),
        html.Div([html.Div([html.Label("element (eXmY, intN, or a name)"),
                            dcc.Input(id=ids.DESIGN_ELEMENT, value="e2m1", type="text")]),
                  html.Div([html.Label(f"block (0: none; at most {DESIGN_BLOCK_MAX})"),
                            dcc.Input(id=ids.DESIGN_BLOCK, value=32, type="number", min=0, max=DESIGN_BLOCK_MAX,
                                      step=1)]),
                  html.Div([html.Label("scale"), dcc.Dropdown(id=ids.DESIGN_SCALE, options=SCALES, value="e8m0",
                                                              clearable=False, style={"width": "120px"})]),
                  html.Div([html.Label("rule"), dcc.Dropdown(id=ids.DESIGN_RULE, options=RULES, value=DEFAULT_RULE,
                                                             clearable=False, style={"width": "140px"})]),
                  html.Button("add candidate", id=ids.DESIGN_ADD, n_clicks=0)], style=row),
        html.Div(id=ids.DESIGN_MESSAGE),
        dcc.Store(id=ids.CANDIDATES, data=[]),
        dcc.Store(id=ids.POINT, data=None),
        _detail(),
        _compare(),
    ], style={"fontFamily": "sans-serif", "margin": "16px"})  # fmt: skip


def _filters(family, element, block, scale) -> dict:
    return {"family": family, "element": element, "block": block, "scale": scale}


# The controls that make up the page's state (lowbit.dashboard.state), in from_controls' order
STATE = [ids.TABLE, ids.WORKLOAD, ids.METRIC, ids.COST, ids.FAMILY, ids.ELEMENT, ids.BLOCK, ids.SCALE, ids.COLOR,
         ids.FACET, ids.LOG]  # fmt: skip
STATE_INPUTS = [Input(i, "value") for i in STATE] + [Input(ids.POINT, "data"), Input(ids.COMPARE, "value")]
POINT_INPUTS = [Input(ids.TABLE, "value"), Input(ids.WORKLOAD, "value"), Input(ids.POINT, "data")]
CONTROL_OUTPUTS = ([Output(ids.TABLE, "value"), Output(ids.WORKLOAD, "options"), Output(ids.WORKLOAD, "value"),
                    Output(ids.METRIC, "options"), Output(ids.METRIC, "value"), Output(ids.COST, "options"),
                    Output(ids.COST, "value")] + [Output(i, "options") for i in STATE[4:8]]
                   + [Output(i, "value") for i in STATE[4:]]
                   + [Output(ids.COMPARE, "options"), Output(ids.COMPARE, "value"), Output(ids.POINT, "data"),
                      Output(ids.URL_MESSAGE, "children")])  # fmt: skip


def _state(table, workload, metric, cost, family, element, block, scale, color, facet, log, point, compare):
    """The page's state from its controls' values, in STATE_INPUTS' order."""
    filters = _filters(family, element, block, scale)
    return from_controls(table, workload, metric, cost, filters, color, facet, log, point, compare)


def _register(app: dash.Dash, root: Path) -> None:
    # pathname, not search, is the input: writing the state into search must not restore it again
    @app.callback(CONTROL_OUTPUTS, [Input(ids.URL, "pathname"), Input(ids.TABLE, "value"), Input(ids.METRIC, "value"),
                                    Input(ids.COST, "value")],
                  [State(ids.URL, "search"), State(ids.COLOR, "value"), State(ids.FACET, "value"),
                   State(ids.LOG, "value")])  # fmt: skip
    def _controls(_, table, metric, cost, search, color, facet, log):
        page = {"table": table, "metric": metric, "cost": cost, "switches": (color, facet, log)}
        return views.controls(root, search, ctx.triggered_id, page)

    @app.callback(Output(ids.URL, "search"), STATE_INPUTS, prevent_initial_call=True)
    def _address(*values):
        return to_query(_state(*values))

    @app.callback([Output(ids.PARETO, "figure"), Output(ids.FRONT_TABLE, "columns"), Output(ids.FRONT_TABLE, "data"),
                   Output(ids.MESSAGE, "children")], STATE_INPUTS + [Input(ids.CANDIDATES, "data")])  # fmt: skip
    def _pareto(*values):
        return views.explorer_view(root, _state(*values[:-1]), values[-1])

    @app.callback([Output(ids.THREE, "figure"), Output(ids.THREE, "style")], STATE_INPUTS)
    def _three(*values):
        return views.three_objective_view(root, _state(*values))

    @app.callback([Output(ids.LINEARITY, "figure"), Output(ids.LINEARITY, "style")],
                  [Input(ids.TABLE, "value"), Input(ids.WORKLOAD, "value")])  # fmt: skip
    def _linearity(table, workload):
        return views.linearity_view(root, table, workload)

    @app.callback([Output(ids.ENGINES, "figure"), Output(ids.ENGINES, "style")],
                  [Input(ids.TABLE, "value"), Input(ids.WORKLOAD, "value"), Input(ids.METRIC, "value"),
                   Input(ids.COST, "value"), Input(ids.FAMILY, "value"), Input(ids.ELEMENT, "value"),
                   Input(ids.BLOCK, "value"), Input(ids.SCALE, "value")])  # fmt: skip
    def _engines(table, workload, metric, cost, family, element, block, scale):
        return views.engine_view(root, table, workload, metric, cost, _filters(family, element, block, scale))

    @app.callback(Output(ids.POINT, "data", allow_duplicate=True), Input(ids.PARETO, "clickData"),
                  State(ids.TABLE, "value"), prevent_initial_call=True)  # fmt: skip
    def _click(click, table):
        return views.clicked_format(root, table, click)

    @app.callback([Output(ids.DETAIL_TITLE, "children"), Output(ids.GRID, "figure"), Output(ids.ERROR_MAG, "figure"),
                   Output(ids.ERROR_HIST, "figure"), Output(ids.BREAKDOWN, "figure")], POINT_INPUTS)  # fmt: skip
    def _detail(table, workload, point):
        return views.detail_view(root, table, None, {}, views.point_index(root, table, workload, point))

    @app.callback(Output(ids.DETAIL_BODY, "style"), POINT_INPUTS)
    def _detail_style(table, workload, point):
        return views.detail_style(root, table, views.point_index(root, table, workload, point))

    @app.callback([Output(ids.CODE_HIST, "figure"), Output(ids.DIAGNOSTICS, "data")], POINT_INPUTS)
    def _diagnostics(table, workload, point):
        return views.diagnostics_view(root, table, views.point_index(root, table, workload, point))

    @app.callback([Output(ids.COMPARE_GRAPH, "figure"), Output(ids.COMPARE_GRAPH, "style"),
                   Output(ids.COMPARE_MESSAGE, "children")],
                  [Input(ids.TABLE, "value"), Input(ids.WORKLOAD, "value"), Input(ids.COMPARE, "value")])  # fmt: skip
    def _compare(table, workload, compare):
        return views.compare_view(root, from_controls(table, workload, None, None, {}, None, None, None, None, compare))

    @app.callback([Output(ids.CANDIDATES, "data"), Output(ids.DESIGN_MESSAGE, "children")],
                  Input(ids.DESIGN_ADD, "n_clicks"),
                  [State(ids.TABLE, "value"), State(ids.WORKLOAD, "value"), State(ids.METRIC, "value"),
                   State(ids.COST, "value"), State(ids.DESIGN_ELEMENT, "value"), State(ids.DESIGN_BLOCK, "value"),
                   State(ids.DESIGN_SCALE, "value"), State(ids.DESIGN_RULE, "value"), State(ids.CANDIDATES, "data")],
                  prevent_initial_call=True)  # fmt: skip
    def _design(_, table, workload, metric, cost, element, block, scale, rule, candidates):
        return views.design_view(root, table, workload, metric, cost, element, block, scale, rule, candidates)


def _refuse_traversal(server) -> None:
    @server.before_request
    def _check():
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        for text in (raw, unquote(raw), unquote(unquote(raw)), request.path):
            if ".." in text or "\\\\" in text or "//" in text.split("?")[0].removeprefix("http://"):
                abort(400)


def _refuse_other_hosts(server, hosts: HostAllowList) -> None:
    @server.before_request
    def _check_host():
        if not hosts.allows(request.host):  # werkzeug's host: the Host header, "" when invalid
            shown = repr(request.headers.get("Host", ""))[:60]
            text = f"Refused: Host {shown} is not this dashboard's address; allow it with --allow-host NAME.\n"
            return Response(text, status=400, mimetype="text/plain")
        return None


def create_app(results_dir: str | Path, allowed_hosts: Iterable[str] = (), port: int | None = None) -> dash.Dash:
    """The dashboard over the Parquet tables directly inside `results_dir` (and nothing outside it).

    It answers requests whose Host header is a loopback name (127.0.0.1, localhost, [::1]) on `port`
    (any port when None) or one of `allowed_hosts` (NAME for any port, or NAME:PORT); any other Host
    gets a 400. ValueError naming allowed_hosts for an entry that is not a host name."""
    hosts = allow_list(allowed_hosts, port)
    root = Path(results_dir).resolve()
    app = dash.Dash(__name__, title="lowbit", assets_folder=str(Path(__file__).parent / "assets"),
                    suppress_callback_exceptions=False)  # fmt: skip
    app.layout = lambda: layout(root)
    _register(app, root)
    _refuse_other_hosts(app.server, hosts)
    _refuse_traversal(app.server)
    return app
