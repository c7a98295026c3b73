"""A point's quantization, and its replay from a table row: the row's format (with its Hadamard
transform and rounding) applied again to its workload's data, for viewers such as the dashboard's
detail view. Rows carry their inputs as JSON (`format_spec`, `workload_spec`) for this."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..formats import AnyFormat
from ..simulator import hadamard, quantize
from .schema import FormatSpec, Gemm, parse_workload
from .workloads import synthetic


@dataclass(frozen=True)
class Requantized:
    """A row's format spec, its format, the data (float32) and its quantized copy."""

    spec: FormatSpec
    format: AnyFormat
    x: np.ndarray
    q: np.ndarray


def quantize_point(x: np.ndarray, spec: FormatSpec, fmt: AnyFormat | None = None) -> np.ndarray:
    """x through the point's Hadamard transform (if any), its format and rounding, and back."""
    fmt = spec.spec() if fmt is None else fmt
    if spec.hadamard:
        y = hadamard(x, spec.hadamard, seed=spec.hadamard_seed).astype(np.float32)
        q = quantize(y, fmt, rounding=spec.rounding, seed=spec.seed)
        return hadamard(q, spec.hadamard, seed=spec.hadamard_seed, inverse=True)
    return quantize(x, fmt, rounding=spec.rounding, seed=spec.seed)


def _synthetic(row: Mapping):
    """A row's synthetic workload (a GEMM's activations). Only these are replayed: their data is
    rebuilt from the seed, so no file is read."""
    w = parse_workload(row["workload_spec"])
    if isinstance(w, Gemm):
        w = w.a
    if not hasattr(w, "shape"):
        raise ValueError("the detail view redraws synthetic workloads only")
    return w


def data_shape(row: Mapping) -> tuple[int, int]:
    """The (rows, K) shape of a row's data as the study drew it (quantized along K), without drawing it."""
    shape = _synthetic(row).shape
    return math.prod(shape[:-1]), shape[-1]


def row_data(row: Mapping, rows: int | None = None) -> np.ndarray:
    """The data of a row's synthetic workload (a GEMM's activations), cut to its first `rows` rows."""
    w = _synthetic(row)
    if rows is not None:
        w = w.model_copy(update={"shape": [min(w.shape[0], rows), *w.shape[1:]]})
    return synthetic(w)


def requantize(row: Mapping, rows: int | None = 64) -> Requantized:
    """A table row's format applied again to (the first `rows` rows of) its workload's data."""
    spec = FormatSpec.model_validate_json(row["format_spec"])
    fmt = spec.spec()
    x = row_data(row, rows)
    return Requantized(spec, fmt, x, quantize_point(x, spec, fmt))
