"""The page's state as a URL query string, so that a link reproduces the view: table, workload, axes,
filters, the colour, facet and log switches, the clicked format and the formats compared.

`parse_query` is the one edge where a URL becomes a `PageState`: a value it cannot read is dropped
(the page's default stands) and named in the returned problems, never raised."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

from .groups import ColorBy, FacetBy

FILTERS = ("family", "element", "block", "scale")
LOG_AXES = ("x", "y")
COMPARE_MAX = 3  # the compare view's columns
_TEXT_MAX = 200  # a longer value is no name the page offers
_KEYS = {"table": "table", "workload": "workload", "metric": "metric", "cost": "cost", "color": "color",
         "facet": "facet", "log": "log", "point": "point", "compare": "compare"}  # fmt: skip


@dataclass(frozen=True)
class PageState:
    """What the page shows. Names are checked against the loaded table by the views, not here."""

    table: str | None = None
    workload: str | None = None
    metric: str | None = None
    cost: str | None = None
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    color: ColorBy = ColorBy.FAMILY
    facet: FacetBy = FacetBy.NONE
    log: tuple[str, ...] | None = None  # "x" and/or "y" on log scales; None: the columns' own choice
    point: str | None = None  # the format whose detail is open
    compare: tuple[str, ...] = ()  # two or three formats side by side


def to_query(state: PageState) -> str:
    """The URL query string ("?..." or "" for a default state) of `state`."""
    pairs: list[tuple[str, str]] = []
    for name in ("table", "workload", "metric", "cost", "point"):
        value = getattr(state, name)
        if value:
            pairs.append((_KEYS[name], value))
    if state.color is not ColorBy.FAMILY:
        pairs.append(("color", state.color.value))
    if state.facet is not FacetBy.NONE:
        pairs.append(("facet", state.facet.value))
    if state.log is not None:  # "none" keeps a linear choice apart from the columns' own
        pairs += [("log", a) for a in state.log] or [("log", "none")]
    pairs += [("compare", f) for f in state.compare]
    pairs += [(f, v) for f in FILTERS for v in state.filters.get(f, ())]
    return "?" + urlencode(pairs) if pairs else ""


def _enum(kind, value: str, key: str, problems: list[str]):
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        problems.append(f"{key}: {value!r} is not one of {allowed}")
        return None


def parse_query(query: object) -> tuple[PageState, list[str]]:
    """The state a URL query string names, and a message for each value left out. Anything but a
    string (the page's state is client data) reads as the default state."""
    if not isinstance(query, str) or not query.strip("?"):
        return PageState(), []
    try:
        raw = parse_qs(query.lstrip("?"), keep_blank_values=False, strict_parsing=False, max_num_fields=100)
    except ValueError as err:
        return PageState(), [f"the URL's query cannot be read: {err}"]
    problems: list[str] = []
    known = set(_KEYS.values()) | set(FILTERS)
    problems += [f"{k!r} is not a setting of this page (allowed: {', '.join(sorted(known))})" for k in raw
                 if k not in known]  # fmt: skip
    values = {k: [v for v in vs if len(v) <= _TEXT_MAX] for k, vs in raw.items() if k in known}
    problems += [f"{k}: a value longer than {_TEXT_MAX} characters" for k, vs in raw.items()
                 if k in known and len(values[k]) < len(vs)]  # fmt: skip
    state = PageState()
    for name in ("table", "workload", "metric", "cost", "point"):
        if values.get(name):
            state = replace(state, **{name: values[name][-1]})
    if values.get("color"):
        state = replace(state, color=_enum(ColorBy, values["color"][-1], "color", problems) or ColorBy.FAMILY)
    if values.get("facet"):
        state = replace(state, facet=_enum(FacetBy, values["facet"][-1], "facet", problems) or FacetBy.NONE)
    log = values.get("log")
    problems += [f"log: {a!r} is not one of x, y, none" for a in log or [] if a not in (*LOG_AXES, "none")]
    compare = list(dict.fromkeys(values.get("compare", [])))
    if len(compare) > COMPARE_MAX:
        problems.append(f"compare: at most {COMPARE_MAX} formats, got {len(compare)}")
    filters = {f: tuple(values[f]) for f in FILTERS if values.get(f)}
    state = replace(state, log=None if log is None else tuple(a for a in LOG_AXES if a in log),
                    compare=tuple(compare[:COMPARE_MAX]), filters=filters)  # fmt: skip
    return state, problems


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _TEXT_MAX else None


def _texts(value: object) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(dict.fromkeys(t for v in values if (t := _text(str(v) if isinstance(v, int | float) else v))))


def from_controls(table: object, workload: object, metric: object, cost: object, filters: dict, color: object,
                  facet: object, log: object, point: object, compare: object) -> PageState:  # fmt: skip
    """The state the page's controls hold (client data: a value of the wrong type reads as unset, an
    unknown switch as its default)."""
    color_by = next((c for c in ColorBy if c.value == color), ColorBy.FAMILY)
    facet_by = next((f for f in FacetBy if f.value == facet), FacetBy.NONE)
    axes = None if not isinstance(log, list | tuple) else tuple(a for a in LOG_AXES if a in log)
    return PageState(table=_text(table), workload=_text(workload), metric=_text(metric), cost=_text(cost),
                     filters={f: v for f in FILTERS if (v := _texts(filters.get(f)))} if isinstance(filters, dict)
                     else {}, color=color_by, facet=facet_by, log=axes, point=_text(point),
                     compare=_texts(compare)[:COMPARE_MAX])  # fmt: skip
