"""The Dash app: `create_app(results_dir)` builds it; callbacks only hand the page's state to `views`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

import dash
from dash import Input, Output, State, dash_table, dcc, html
from flask import Response, abort, request

from ..formats import ScaleRule
from . import ids, views
from .address import HostAllowList, allow_list
from .designer import DESIGN_BLOCK_MAX, SCALES

RULES = [r.value for r in ScaleRule]
DEFAULT_RULE = ScaleRule.OCP_FLOOR.value  # the designer starts from MX's rule (its element e2m1, block 32)


def _dropdown(id_: str, label: str, multi: bool = False) -> html.Div:
    return html.Div([html.Label(label), dcc.Dropdown(id=id_, multi=multi, clearable=multi)],
                    style={"minWidth": "180px", "flex": "1"})  # fmt: skip


def layout(root: Path) -> html.Div:
    tables = views.table_options(root)
    row = {"display": "flex", "gap": "12px", "flexWrap": "wrap", "marginBottom": "8px"}
    return html.Div([
        html.H2("lowbit: accuracy against cost"),
        html.Div([html.Div([html.Label("results table"),
                            dcc.Dropdown(id=ids.TABLE, options=tables, value=tables[0] if tables else None)],
                           style={"minWidth": "220px", "flex": "1"}),
                  _dropdown(ids.WORKLOAD, "workload"), _dropdown(ids.METRIC, "accuracy"),
                  _dropdown(ids.COST, "cost")], style=row),
        html.Div([_dropdown(ids.FAMILY, "family", True), _dropdown(ids.ELEMENT, "element", True),
                  _dropdown(ids.BLOCK, "block", True), _dropdown(ids.SCALE, "scale", True)], style=row),
        html.Div(id=ids.MESSAGE, style={"color": "#a33", "minHeight": "1.2em"}),
        dcc.Graph(id=ids.PARETO, style={"height": "460px"}),
        html.H4("Pareto front"),
        dash_table.DataTable(id=ids.FRONT_TABLE, page_size=12, style_table={"overflowX": "auto"}),
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
        html.Div(id=ids.DETAIL, children=[
            html.H3(id=ids.DETAIL_TITLE, children="Click a point to see its detail."),
            dcc.Graph(id=ids.GRID), html.Div([dcc.Graph(id=ids.ERROR_MAG, style={"flex": "1"}),
                                              dcc.Graph(id=ids.ERROR_HIST, style={"flex": "1"})],
                                             style={"display": "flex"}),
            html.Div([dcc.Graph(id=ids.CODE_HIST, style={"flex": "2"}),
                      dash_table.DataTable(id=ids.DIAGNOSTICS, columns=[{"name": "range", "id": "quantity"},
                                                                        {"name": "", "id": "value"}])],
                     style={"display": "flex", "gap": "12px", "alignItems": "center"}),
            dcc.Graph(id=ids.BREAKDOWN)]),
    ], style={"fontFamily": "sans-serif", "margin": "16px"})  # fmt: skip


def _filters(family, element, block, scale) -> dict:
    return {"family": family, "element": element, "block": block, "scale": scale}


def _register(app: dash.Dash, root: Path) -> None:
    @app.callback([Output(ids.WORKLOAD, "options"), Output(ids.WORKLOAD, "value"), Output(ids.METRIC, "options"),
                   Output(ids.METRIC, "value"), Output(ids.COST, "options"), Output(ids.COST, "value"),
                   Output(ids.FAMILY, "options"), Output(ids.ELEMENT, "options"), Output(ids.BLOCK, "options"),
                   Output(ids.SCALE, "options")], Input(ids.TABLE, "value"))  # fmt: skip
    def _table(table):
        c = views.choices(root, table)
        return views.dropdowns(c)

    @app.callback([Output(ids.PARETO, "figure"), Output(ids.FRONT_TABLE, "data"), Output(ids.MESSAGE, "children")],
                  [Input(ids.TABLE, "value"), Input(ids.WORKLOAD, "value"), Input(ids.METRIC, "value"),
                   Input(ids.COST, "value"), Input(ids.FAMILY, "value"), Input(ids.ELEMENT, "value"),
                   Input(ids.BLOCK, "value"), Input(ids.SCALE, "value"), Input(ids.CANDIDATES, "data")])  # fmt: skip
    def _pareto(table, workload, metric, cost, family, element, block, scale, candidates):
        return views.pareto_view(root, table, workload, metric, cost, _filters(family, element, block, scale),
                                 candidates)  # fmt: skip

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

    @app.callback([Output(ids.DETAIL_TITLE, "children"), Output(ids.GRID, "figure"), Output(ids.ERROR_MAG, "figure"),
                   Output(ids.ERROR_HIST, "figure"), Output(ids.BREAKDOWN, "figure")],
                  Input(ids.PARETO, "clickData"), State(ids.TABLE, "value"))  # fmt: skip
    def _detail(click, table):
        index = click["points"][0].get("customdata") if click and click.get("points") else None
        return views.detail_view(root, table, None, {}, index)

    @app.callback([Output(ids.CODE_HIST, "figure"), Output(ids.DIAGNOSTICS, "data")],
                  Input(ids.PARETO, "clickData"), State(ids.TABLE, "value"))  # fmt: skip
    def _diagnostics(click, table):
        index = click["points"][0].get("customdata") if click and click.get("points") else None
        return views.diagnostics_view(root, table, index)

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
