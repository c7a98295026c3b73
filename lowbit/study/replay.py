"""A point's quantization, and its replay from a table row: the row's format (with its Hadamard
transform and rounding) applied again to its workload's data, for viewers such as the dashboard's
detail view. Rows carry their inputs as JSON (`format_spec`, `workload_spec`) for this.

A table can be forged, so a replay draws a bounded sample whatever the row says: at most
`SAMPLE_ROWS` rows and `SAMPLE_ELEMENTS` elements, where a row costs its length padded to whole
blocks (or the Hadamard size, if larger). The sample's shape is cut before any data is drawn, and a
row that alone would exceed the bound is refused with a ValueError naming the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..formats import AnyFormat, ScaledFormat
from ..simulator import hadamard, quantize
from .schema import FormatSpec, Gemm, parse_workload
from .workloads import synthetic

SAMPLE_ROWS = 64  # rows of a workload a replay draws at most
SAMPLE_ELEMENTS = 1 << 16  # elements (a row padded to whole blocks) a replay draws at most: 256 KiB of float32


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
        q = quantize(y, fmt, rounding=spec.rounding, seed=spec.seed, sr_bits=spec.sr_bits)
        return hadamard(q, spec.hadamard, seed=spec.hadamard_seed, inverse=True)
    return quantize(x, fmt, rounding=spec.rounding, seed=spec.seed, sr_bits=spec.sr_bits)


def _synthetic(row: Mapping):
    """A row's synthetic workload (a GEMM's activations). Only these are replayed: their data is
    rebuilt from the seed, so no file is read."""
    w = parse_workload(row["workload_spec"])
    if isinstance(w, Gemm):
        w = w.a
    if not hasattr(w, "shape"):
        raise ValueError("the detail view redraws synthetic workloads only")
    if not w.shape:
        raise ValueError("workload_spec.shape: empty; a workload has at least one axis")
    return w


def data_shape(row: Mapping) -> tuple[int, int]:
    """The (rows, K) shape of a row's data as the study drew it (quantized along K), without drawing it."""
    shape = _synthetic(row).shape
    return math.prod(shape[:-1]), shape[-1]


def row_width(fmt: AnyFormat, k: int, hadamard_size: int | None = None) -> int:
    """Elements one row of K costs the quantizer: K padded up to whole blocks, or the Hadamard size
    when that is larger (per-channel and per-tensor scales pad nothing)."""
    block = fmt.block if isinstance(fmt, ScaledFormat) else None
    width = -(-k // block) * block if block else k
    return max(width, hadamard_size or 0)


def sample_shape(row: Mapping, width: int = 0, rows: int | None = SAMPLE_ROWS,
                 elements: int = SAMPLE_ELEMENTS, cause: str = "workload_spec.shape") -> tuple[int, int]:  # fmt: skip
    """The (rows, K) of a bounded sample of a row's data: its first rows, at most `rows` of them and
    at most `elements` elements, a row costing max(K, width) elements. `cause` names the field
    that set `width`, for the ValueError raised when one row alone costs more than `elements`."""
    n, k = data_shape(row)
    bound = f"the replay's bound of {elements} elements per sample"
    if k > elements:
        raise ValueError(f"workload_spec.shape: rows of K = {k} elements exceed {bound}")
    if width > elements:
        raise ValueError(f"{cause}: a row padded to {width} elements (K = {k}) exceeds {bound}")
    return min(n, rows or n, elements // max(k, width)), k


def draw(row: Mapping, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The (rows, K) data of a row's synthetic workload (a GEMM's activations): its first `shape[0]`
    rows (as a sample_shape), or all of it when `shape` is None."""
    w = _synthetic(row)
    if shape is not None:
        n, k = data_shape(row)
        if shape[1] != k or not 1 <= shape[0] <= n:
            raise ValueError(f"shape: {shape} is not a cut of the workload's ({n}, {k})")
        # the first rows of a 2-D draw equal the full draw's (C order); cut before drawing anything
        w = w.model_copy(update={"shape": [shape[0], k]})
    return synthetic(w)


def row_data(row: Mapping, rows: int | None = None, elements: int | None = None) -> np.ndarray:
    """The data of a row's synthetic workload, cut to its first `rows` rows and, when `elements` is
    given, to the bounded sample of sample_shape."""
    if elements is not None:
        return draw(row, sample_shape(row, 0, rows, elements))
    n, k = data_shape(row)
    return draw(row, (min(n, rows), k) if rows is not None else None)


def _width_cause(spec: FormatSpec, fmt: AnyFormat, k: int) -> str:
    """The format_spec field behind a row's padded width (for the bound's error message)."""
    if spec.hadamard and spec.hadamard >= row_width(fmt, k):
        return "format_spec.hadamard"
    return "format_spec.block" if spec.block is not None else "format_spec.format"


def requantize(row: Mapping, rows: int | None = SAMPLE_ROWS, elements: int | None = SAMPLE_ELEMENTS) -> Requantized:
    """A table row's format applied again to a sample of its workload's data: its first `rows` rows,
    at most `elements` elements padding included (see sample_shape); None for either lifts that
    bound (the whole workload with both: for trusted rows only)."""
    spec = FormatSpec.model_validate_json(row["format_spec"])
    fmt = spec.spec()
    n, k = data_shape(row)
    if elements is not None:
        shape = sample_shape(row, row_width(fmt, k, spec.hadamard), rows, elements, _width_cause(spec, fmt, k))
    else:
        shape = (min(n, rows or n), k)
    x = draw(row, shape)
    return Requantized(spec, fmt, x, quantize_point(x, spec, fmt))
