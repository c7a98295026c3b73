"""Pareto fronts of a results table."""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_front(
    df: pd.DataFrame, x: str, y: str, *, minimize_x: bool = True, minimize_y: bool = False
) -> pd.DataFrame:
    """The rows of `df` that no other row dominates in (x, y), sorted by x.

    A row dominates another when it is at least as good in both columns and better in one; by
    default lower x (a cost) and higher y (an accuracy such as qsnr_db) are better. Rows with NaN in
    either column are left out. Exact duplicates of a front point are all kept.
    """
    for col in (x, y):
        if col not in df.columns:
            raise KeyError(f"pareto_front: no column {col!r}; the table has {sorted(df.columns)}")
    d = df[np.isfinite(pd.to_numeric(df[x], errors="coerce")) & np.isfinite(pd.to_numeric(df[y], errors="coerce"))]
    xs = d[x].to_numpy(float) * (1 if minimize_x else -1)
    ys = d[y].to_numpy(float) * (1 if minimize_y else -1)
    order = np.lexsort((ys, xs))  # by x, then by y: the best y first among equal x
    keep = np.zeros(len(d), bool)
    best = np.inf
    last = None
    for i in order:
        if ys[i] < best or (last is not None and xs[i] == xs[last] and ys[i] == ys[last]):
            keep[i] = True
            if ys[i] < best:
                best = ys[i]
                last = i
    front = d[keep]
    return front.sort_values(x, ascending=minimize_x, kind="stable")
