"""The page's state in its URL: state -> URL -> state round trips, garbage URLs (a message, never an
exception), the controls a URL restores against a real table, and callbacks of one to three lines."""

import ast
from pathlib import Path

import pytest
from dash import no_update
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.dashboard import app, ids, views
from lowbit.dashboard.groups import ColorBy, FacetBy
from lowbit.dashboard.state import FILTERS, PageState, from_controls, parse_query, to_query

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
states = st.builds(
    PageState,
    table=st.none() | names,
    workload=st.none() | names,
    metric=st.none() | names,
    cost=st.none() | names,
    filters=st.dictionaries(st.sampled_from(FILTERS), st.lists(names, min_size=1, max_size=3, unique=True).map(tuple)),
    color=st.sampled_from(ColorBy),
    facet=st.sampled_from(FacetBy),
    log=st.none() | st.sampled_from([(), ("x",), ("y",), ("x", "y")]),
    point=st.none() | names,
    compare=st.lists(names, max_size=3, unique=True).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(states)
def test_state_url_state_round_trip(state):
    assert parse_query(to_query(state)) == (state, [])


def test_a_written_url():
    state = PageState(table="q.parquet", workload="normal 16x256", metric="qsnr_db", cost="area_um2",
                      filters={"family": ("MX (E8M0 scale)",)}, color=ColorBy.ELEMENT_TYPE, facet=FacetBy.WORKLOAD,
                      log=("x",), point="mxfp4", compare=("mxfp4", "nvfp4"))  # fmt: skip
    query = to_query(state)
    assert query == ("?table=q.parquet&workload=normal+16x256&metric=qsnr_db&cost=area_um2&point=mxfp4"
                     "&color=element+type&facet=workload&log=x&compare=mxfp4&compare=nvfp4"
                     "&family=MX+%28E8M0+scale%29")  # fmt: skip
    assert to_query(PageState()) == "" and to_query(PageState(log=())) == "?log=none"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("?color=purple", "color: 'purple' is not one of family, element type, block, scale, bits, workload"),
        ("?facet=table", "facet: 'table' is not one of none, workload, family, element type"),
        ("?log=z", "log: 'z' is not one of x, y, none"),
        ("?rm=-rf", "'rm' is not a setting of this page"),
        ("?compare=a&compare=b&compare=c&compare=d", "compare: at most 3 formats, got 4"),
        ("?table=" + "x" * 300, "table: a value longer than 200 characters"),
    ],
)
def test_garbage_urls_are_named_not_raised(query, problem):
    state, problems = parse_query(query)
    assert len(problems) == 1 and problems[0].startswith(problem)
    assert state.color is ColorBy.FAMILY and state.facet is FacetBy.NONE and len(state.compare) <= 3


@pytest.mark.parametrize("query", [None, 17, ["?a=b"], "", "?", "?&&==&", "%%%", "?table=%ZZ"])
def test_anything_else_reads_as_a_state(query):
    state, _ = parse_query(query)
    assert isinstance(state, PageState)


def test_controls_of_any_type_read_as_unset():
    state = from_controls(["x"], 3, {"a": 1}, None, "filters", "purple", 7, "x", ["p"], "mxfp4")
    assert state == PageState(compare=("mxfp4",))


def test_a_url_restores_the_controls(results):
    query = "?workload=laplace&metric=mse&cost=area_um2&color=block&facet=workload&log=y&point=nvfp4" \
            "&compare=mxfp4&compare=nf4&family=MX+%28E8M0+scale%29"  # fmt: skip
    out = views.controls(results, query, None, {})
    table, _, workload, _, metric, _, cost = out[:7]
    filters, (color, facet, log, formats, compare, point, message) = out[11:15], out[15:]
    assert (table, workload, metric, cost) == ("dash.parquet", "laplace", "mse", "area_um2")
    assert filters == (["MX (E8M0 scale)"], [], [], [])
    assert (color, facet, log, compare, point, message) == ("block", "workload", ["y"], ["mxfp4", "nf4"], "nvfp4", "")
    assert len(formats) == 7


def test_a_url_naming_what_the_table_lacks_gets_defaults_and_a_message(results):
    out = views.controls(results, "?workload=moon&metric=nope&compare=zzz&color=purple", None, {})
    assert out[2] == "normal" and out[4] == "qsnr_db" and out[15] == "family" and out[19] == []
    message = out[-1]
    assert message.startswith("Ignored in the URL:")
    for part in ("workload 'moon' is not in this table", "metric 'nope' is not in this table",
                 "format 'zzz' is not in this table", "color: 'purple' is not one of"):  # fmt: skip
        assert part in message


def test_picking_a_table_resets_its_controls_and_keeps_the_switches(results):
    page = {"table": "dash.parquet", "switches": ("bits", "workload", ["x"])}
    out = views.controls(results, "?workload=laplace&metric=mse", ids.TABLE, page)
    assert out[2] == "normal" and out[4] == "qsnr_db" and out[15:18] == ("bits", "workload", ["x"])
    # the log axes of a first visit follow the columns: QSNR and bits per element are linear
    assert views.controls(results, "", None, {})[17] == []


@pytest.mark.parametrize(("metric", "cost", "log"), [("mse", "bits_per_element", ["y"]), ("qsnr_db", "area_um2", ["x"]),
                                                     ("mae", "energy_pj_per_mac", ["x", "y"])])  # fmt: skip
def test_a_new_axis_sets_only_the_log_switches(results, metric, cost, log):
    out = views.controls(results, "?metric=qsnr_db", ids.METRIC, {"metric": metric, "cost": cost})
    assert len(out) == 22 and out[17] == log
    assert all(o is no_update for i, o in enumerate(out) if i != 17)


def test_callbacks_are_one_to_three_lines():
    tree = ast.parse(Path(app.__file__).read_text())
    callbacks = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                 and any("callback" in ast.unparse(d) for d in f.decorator_list)]  # fmt: skip
    assert len(callbacks) >= 10
    for f in callbacks:
        body = f.body[1:] if isinstance(f.body[0], ast.Expr) and isinstance(f.body[0].value, ast.Constant) else f.body
        assert 1 <= body[-1].end_lineno - body[0].lineno + 1 <= 3, f.name
