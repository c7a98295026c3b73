"""The front table: the Pareto front's formats with human column labels, units and rounding, as a
sortable DataTable's columns and rows (the CSV export carries the same labels and values)."""

from __future__ import annotations

import math

import pandas as pd

from ..study.store import BITS_PER_ELEMENT, column_label
from .groups import ELEMENT_TYPE, FAMILY

UNITS = {"(um^2)": "(µm²)", "um^2": "µm²"}  # plot labels spell units in ASCII; the table in symbols
NAMES = {"format": "format", FAMILY: "family", ELEMENT_TYPE: "element type"}


def human_label(column: str) -> str:
    """A column's label with its unit, in the table's spelling ("area (µm²)", "QSNR (dB)")."""
    label = NAMES.get(column) or column_label(column)
    for ascii_unit, symbol in UNITS.items():
        label = label.replace(ascii_unit, symbol)
    return label


def rounded(value: object, column: str) -> object:
    """`value` to 3 significant digits (bits per element: to 3 decimals, as 4.031 differs from 4);
    text and non-finite values as they are."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return value if not isinstance(value, float) else None
    if column == BITS_PER_ELEMENT.name:
        return round(float(value), 3)
    return float(f"{float(value):.3g}")


def front_table(front: pd.DataFrame, cost: str, metric: str) -> tuple[list[dict], list[dict]]:
    """(columns, rows) of a DataTable listing `front`: format, family, element type, bits per element,
    the accuracy metric and the cost axis, each under its human label."""
    wanted = ["format", FAMILY, ELEMENT_TYPE, BITS_PER_ELEMENT.name, metric, cost]
    present = [c for c in dict.fromkeys(wanted) if c in front.columns]
    columns = [{"name": human_label(c), "id": c, "type": "numeric" if pd.api.types.is_numeric_dtype(front[c])
                else "text"} for c in present]  # fmt: skip
    rows = [{c: rounded(r[c], c) for c in present} for r in front[present].to_dict("records")]
    return columns, rows
