"""How the explorer groups points: a format's family (its scaling scheme) and element type, derived
from a results table's spec columns, and the switches that colour and facet by them.

A study's `family` column says only float, int, codebook, scaled or mixed; nearly every shipped format
is "scaled", so the explorer derives a finer family from the `scale` and `block` columns."""

from __future__ import annotations

import enum

import numpy as np
import pandas as pd

FAMILY = "family_group"  # derived columns added to a table's rows (never written back)
ELEMENT_TYPE = "element_type"
SCALE_NAMES = {"fp32": "FP32", "float32": "FP32", "float16": "FP16", "fp16": "FP16", "bfloat16": "BF16"}
SYMBOLS = {"float": "circle", "int": "square", "codebook": "diamond", "mixed": "star", "other": "triangle-up"}


class ColorBy(enum.Enum):
    """What colours the explorer's points."""

    FAMILY = "family"
    ELEMENT_TYPE = "element type"
    BLOCK = "block"
    SCALE = "scale"
    BITS = "bits"
    WORKLOAD = "workload"


class FacetBy(enum.Enum):
    """What splits the explorer into panels side by side (NONE: one panel)."""

    NONE = "none"
    WORKLOAD = "workload"
    FAMILY = "family"
    ELEMENT_TYPE = "element type"


COLUMN = {ColorBy.FAMILY: FAMILY, ColorBy.ELEMENT_TYPE: ELEMENT_TYPE, ColorBy.BLOCK: "block",
          ColorBy.SCALE: "scale", ColorBy.BITS: "bits", ColorBy.WORKLOAD: "workload",
          FacetBy.WORKLOAD: "workload", FacetBy.FAMILY: FAMILY, FacetBy.ELEMENT_TYPE: ELEMENT_TYPE}  # fmt: skip


def _scheme(scale: str, block: object, family: str) -> str:
    if family == "mixed":
        return "per-layer mix"
    if scale in ("none", "", "nan") or str(block) in ("1", "1.0"):
        return "unscaled"
    if "e8m0" in scale:
        return "MX (E8M0 scale)"
    if scale.startswith(("float8", "fp8")):
        return "FP8 scale"
    return f"{SCALE_NAMES.get(scale, scale)} scale"


def _element_type(element: str, family: str) -> str:
    if family in ("mixed", "int", "float", "codebook"):
        return family
    text = element.lower()
    if "codebook" in text:
        return "codebook"
    if text.startswith(("int", "uint")):
        return "int"
    if text.startswith(("float", "bfloat")) or text[:1] == "e" and "m" in text:
        return "float"
    return "other"


def with_groups(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the derived family (FAMILY) and element type (ELEMENT_TYPE: float, int, codebook,
    mixed or other) of each row; columns a table lacks count as unknown."""
    if df.empty:
        return df.assign(**{FAMILY: pd.Series(dtype=str), ELEMENT_TYPE: pd.Series(dtype=str)})
    n = len(df)
    family = df["family"].astype(str) if "family" in df.columns else pd.Series(["other"] * n, index=df.index)
    element = df["element"].astype(str) if "element" in df.columns else pd.Series([""] * n, index=df.index)
    scale = df["scale"].astype(str) if "scale" in df.columns else pd.Series(["none"] * n, index=df.index)
    block = df["block"] if "block" in df.columns else pd.Series([1] * n, index=df.index)
    # a table holds few distinct specs: derive each once (ten thousand rows take milliseconds)
    fams = _each_distinct(_scheme, scale, block.astype(str), family)
    types = _each_distinct(_element_type, element, family)
    return df.assign(**{FAMILY: fams, ELEMENT_TYPE: types})


def _each_distinct(derive, *columns: pd.Series) -> np.ndarray:
    """derive(*values) of each row, computed once per distinct combination of the columns' values."""
    codes, distinct = pd.factorize(pd.MultiIndex.from_arrays(columns))
    return np.array([derive(*values) for values in distinct], dtype=object)[codes]


def group_values(df: pd.DataFrame, by: ColorBy | FacetBy) -> pd.Series:
    """Each row's group under `by` as text (a numeric block or bit width in numeric order)."""
    column = COLUMN[by]
    if column not in df.columns:
        return pd.Series(["all"] * len(df), index=df.index)
    values = df[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: f"{v:g}")
    return values.astype(str)


def ordered(groups: pd.Series) -> list[str]:
    """The distinct groups, numbers in numeric order and names in alphabetical order."""
    names = list(dict.fromkeys(groups))

    def key(g: str) -> tuple:
        try:
            return (0, float(g), "")
        except ValueError:
            return (1, 0.0, g)

    return sorted(names, key=key)
