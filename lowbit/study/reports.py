"""Numbers derived from study tables, as the README compares them with papers."""

from __future__ import annotations

import numpy as np
import pandas as pd


def crossover(df: pd.DataFrame, fp: str, integer: str, x: str = "w_crest_factor", y: str = "qsnr_db") -> float:
    """The x (crest factor) at which format `fp` stops losing to `integer` in y (QSNR): linear
    interpolation of y_fp - y_int between the two sweep points where it changes sign. NaN when it
    never does on the sweep. Formats are matched on the `format` column (the study's labels)."""
    a = df[df["format"] == fp].groupby(x)[y].mean()
    b = df[df["format"] == integer].groupby(x)[y].mean()
    diff = (a - b).dropna().sort_index()
    xs, ds = diff.index.to_numpy(float), diff.to_numpy(float)
    for i in range(1, len(xs)):
        if ds[i - 1] < 0 <= ds[i]:
            return float(xs[i - 1] + (xs[i] - xs[i - 1]) * (-ds[i - 1]) / (ds[i] - ds[i - 1]))
    return float("nan")


def shannon_ratio(df: pd.DataFrame) -> pd.Series:
    """MSE over the rate-distortion bound 2^(-2R) of unit-variance data, R the bits per element."""
    return df["mse"] / np.exp2(-2.0 * df["bits_per_element"])


def linearity_rows(df: pd.DataFrame, measured: str = "fidelity") -> pd.DataFrame:
    """Rows of a model study that carry both the linearity theorem's predicted fidelity and a measured
    one (the study needs allocations for the prediction; rows allocated on measured per-layer drops
    are left out, their prediction being another one)."""
    if "predicted_fidelity" not in df.columns or measured not in df.columns:
        return df.iloc[0:0]
    ok = np.isfinite(pd.to_numeric(df["predicted_fidelity"], errors="coerce"))
    ok &= np.isfinite(pd.to_numeric(df[measured], errors="coerce"))
    if "predictor" in df.columns:
        ok &= df["predictor"].ne("measured")
    return df[ok]


def pearson(df: pd.DataFrame, x: str = "predicted_fidelity", y: str = "fidelity") -> float:
    """Pearson's correlation of two columns (NaN with fewer than three rows or a constant column)."""
    if len(df) < 3:
        return float("nan")
    a, b = df[x].to_numpy(float), df[y].to_numpy(float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
