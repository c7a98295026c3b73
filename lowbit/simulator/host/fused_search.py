"""Fused paths for the search rules: MSE-searched scales (one level, and NVFP4's block scales under
the tensor scale) and TWN's threshold (`kernels/search_scalar.py`).

Each block's search runs inside the kernel, over the format's candidate factors, with every float64
sum taken in NumPy's order, so values and scales equal `blocks._quantize_rows` bit for bit. Rows
longer than `LONG_ROW` (per-channel formats on a long axis, a 1-D array) are cut on the CPU into
pieces that NumPy's order sums separately: for the squared errors, the nodes of its pairwise tree
of at most `PIECE` terms (their sums are combined here in the tree's order); for TWN's float32
sums, its cast buffer's pieces (added here left to right). The pieces spread over the cores.
"""

from __future__ import annotations

import functools

import numpy as np

from ...formats import DoubleQuant, FloatFormat, GridFormat, IntFormat, ScaledFormat, ScaleRule, TensorScale
from ..kernels.dispatch import Out, Target, run
from ..kernels.params import fast_params
from ..kernels.rounding import Rounding
from ..kernels.search_scalar import LEVEL_NVFP4, LEVEL_ONE, PW_BLOCK
from . import scales as rules
from .elements import saturating
from .rows import Blocks, ElementRounding
from .statistics import finite_amax

F32 = np.float32
# Rows longer than this many elements are split into pieces on the CPU (one row alone would use
# one core); a piece of the squared-error tree holds at most PIECE terms (128 KiB, in L2 while
# every candidate reads it).
LONG_ROW = 1 << 15
PIECE = 1 << 15


def _search_args(fmt: ScaledFormat) -> tuple | None:
    """(level, kind, divide, element max, smin, smax, element vector, scale vector) of an MSE
    format the kernel computes exactly, or None: integer or float elements and scale formats on
    the float32 fast path, no double quantization, no asymmetric scales, no micro-exponents."""
    e = fmt.element
    if fmt.asymmetric or fmt.micro is not None or isinstance(fmt.scale, DoubleQuant):
        return None
    if not isinstance(e, (IntFormat, FloatFormat)) or fmt.tensor_scale not in (TensorScale.NONE, TensorScale.NVFP4):
        return None
    f = fast_params(saturating(e), False)
    fs = np.zeros(16, np.float32) if fmt.scale is None else fast_params(saturating(fmt.scale), False)
    if f is None or fs is None:
        return None
    nvfp4 = fmt.tensor_scale is TensorScale.NVFP4
    if nvfp4 and (fmt.scale is None or fmt.scale_min is not None or fmt.scale_max is not None):
        return None  # the kernel's NVFP4 scale has no clamps (the catalog's have none)
    smin, smax = (F32(-1) if v is None else F32(v) for v in (fmt.scale_min, fmt.scale_max))
    kind = 1 if isinstance(e, IntFormat) else 0
    # NVFP4 multiplies by enc_b whatever `divide` says (the pipeline's `_apply`)
    level, divide = (LEVEL_NVFP4, False) if nvfp4 else (LEVEL_ONE, bool(fmt.divide))
    return level, kind, divide, F32(fmt.element_max), smin, smax, f, fs


def fused_mse(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None
) -> Blocks | None:
    """Values of an MSE-searched format (one level, or NVFP4 under its tensor scale) from the fused
    search kernel, or None where it does not apply (other rules, stochastic rounding, elements or
    scales off the fast path). Equals the pipeline bit for bit (tested)."""
    if fmt.rule is not ScaleRule.MSE or rnd.mode is not Rounding.RNE or rows.shape[1] == 0:
        return None
    args = _search_args(fmt)
    if args is None:
        return None
    level, kind, divide, elem_max, smin, smax, f, fs = args
    s_enc = F32(1)
    if level == LEVEL_NVFP4:
        s_enc = rules.nvfp4_scale_from_amax(finite_amax(rows, rnd.target), fmt)
    factors = np.array(fmt.search_factors, np.float32)
    out = np.empty_like(rows) if out is None else out
    scales = np.empty(rows.shape[0], np.float32)
    if rnd.target is Target.CPU and rows.shape[1] > LONG_ROW:
        _mse_long_rows(rows, fmt, args, s_enc, factors, out, scales)
    else:
        x, xb = rows, rows.view(np.int32)
        a = (level, kind, divide, elem_max, smin, smax, F32(s_enc), factors, f, fs)
        run("mse_rows", rnd.target, rows.shape[0], x, xb, *a, Out(out), Out(scales))
    return Blocks(out, None, scales[:, None], F32(F32(1) / s_enc) if level == LEVEL_NVFP4 else None)


@functools.cache
def tree_pieces(n: int, piece: int) -> tuple[tuple[int, int], ...]:
    """(start, length) of the nodes of NumPy's pairwise tree over n terms that hold at most
    `piece` terms (and at least one leaf), left to right."""
    if n <= max(piece, PW_BLOCK):
        return ((0, n),)
    half = n // 2 - (n // 2) % 8
    right = tree_pieces(n - half, piece)
    return (*tree_pieces(half, piece), *((lo + half, m) for lo, m in right))


def tree_combine(sums: np.ndarray, n: int, piece: int) -> np.ndarray:
    """The pairwise total of n terms from the sums of `tree_pieces(n, piece)` (axis 1 of sums,
    any trailing axes alongside), added in the tree's order."""
    pos = 0

    def node(m: int) -> np.ndarray:
        nonlocal pos
        if m <= max(piece, PW_BLOCK):
            pos += 1
            return sums[:, pos - 1]
        half = m // 2 - (m // 2) % 8
        left = node(half)
        return left + node(m - half)

    return node(n)


def _pieces(rows: np.ndarray, spans: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, length) of every piece of every row (int64), row by row."""
    los = np.array([s for s, _ in spans], np.int64)
    ns = np.array([m for _, m in spans], np.int64)
    r = rows.shape[0]
    return np.repeat(np.arange(r, dtype=np.int64), los.size), np.tile(los, r), np.tile(ns, r)


def _row_amax(rows: np.ndarray, prow, plo, pn) -> tuple[np.ndarray, np.ndarray]:
    """(amax, bad) of each row from its pieces: the largest |x| (0 where bad) and NaN-or-Inf flags."""
    bits = np.empty(prow.size, np.int64)
    run("amax_pieces", Target.CPU, prow.size, rows.view(np.int32), prow, plo, pn, Out(bits))
    top = bits.reshape(rows.shape[0], -1).max(axis=1)
    bad = top >= 0x7F800000
    return np.where(bad, 0, top).astype(np.int32).view(np.float32), bad


def _mse_long_rows(rows, fmt: ScaledFormat, args: tuple, s_enc: F32, factors, out, scales) -> None:
    """The MSE search on long rows: each candidate's squared errors summed per tree piece over
    the cores, combined in NumPy's order here; the scales of the candidates from `host.scales`."""
    level, kind, divide, *_, f, _fs = args
    n = rows.shape[1]
    spans = tree_pieces(n, PIECE)
    prow, plo, pn = _pieces(rows, spans)
    amax, bad = _row_amax(rows, prow, plo, pn)
    with np.errstate(over="ignore"):
        if level == LEVEL_NVFP4:
            cands = np.stack([rules.nvfp4_block_scales(amax, s_enc, fmt, c)[0] for c in fmt.search_factors], axis=1)
        else:
            top = F32(fmt.element_max)
            cands = np.stack([rules.round_to_scale_format((amax * F32(c)) / top, fmt) for c in fmt.search_factors], 1)
    cands = np.ascontiguousarray(cands, np.float32)
    active = np.ones(cands.shape, bool)
    active[:, 1:] = cands[:, 1:] != cands[:, :-1]  # a repeated scale repeats its error: it cannot win
    post = F32(F32(1) / s_enc) if level == LEVEL_NVFP4 else F32(1)
    errs = np.zeros((prow.size, cands.shape[1]), np.float64)
    pieces = (rows, prow, plo, pn, level, kind, divide, post)
    run("mse_pieces", Target.CPU, prow.size, *pieces, cands, active, f, Out(errs))
    total = tree_combine(errs.reshape(rows.shape[0], len(spans), -1), n, PIECE)
    best, best_err = cands[:, 0].copy(), total[:, 0].copy()
    for c in range(1, cands.shape[1]):
        better = active[:, c] & (total[:, c] < best_err)  # strict: the first candidate keeps a tie
        best[better], best_err[better] = cands[better, c], total[better, c]
    run("values_pieces", Target.CPU, prow.size, *pieces, best, f, Out(out))
    scales[:] = best
    _poison(out, scales, bad)


def _poison(out: np.ndarray, scales: np.ndarray, bad: np.ndarray) -> None:
    """Rows holding NaN or Inf decode to NaN, with a NaN scale (the pipeline's `_poison`)."""
    if bad.any():
        out[bad] = np.nan
        scales[bad] = np.nan


def _twn_table(fmt: ScaledFormat) -> tuple[F32, F32, F32] | None:
    """The ternary element's values for codes -1, 0, +1 (what `_twn` multiplies alpha by)."""
    e = fmt.element
    if not isinstance(e, GridFormat) or e.table.size != 3 or fmt.scale is not None:
        return None
    if fmt.scale_min is not None or fmt.scale_max is not None:
        return None
    return tuple(F32(v) for v in e.table)


def fused_twn(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None
) -> Blocks | None:
    """Values of a TWN format (ternary elements, threshold 0.7 mean|x|, alpha the mean |x| above
    it) from the fused kernel, or None where it does not apply (other rules or roundings: the
    pipeline then raises for the rounding). Equals the pipeline bit for bit (tested)."""
    if fmt.rule is not ScaleRule.TWN or rnd.mode is not Rounding.RNE or rows.shape[1] == 0:
        return None
    table = _twn_table(fmt)
    if table is None:
        return None
    out = np.empty_like(rows) if out is None else out
    scales = np.empty(rows.shape[0], np.float32)
    chunk = np.getbufsize()  # NumPy sums float32 as float64 through a cast buffer of this many
    if rnd.target is Target.CPU and rows.shape[1] > LONG_ROW:
        _twn_long_rows(rows, chunk, table, out, scales)
    else:
        run("twn_rows", rnd.target, rows.shape[0], rows, rows.view(np.int32), chunk, *table, Out(out), Out(scales))
    return Blocks(out, None, scales[:, None], None)


def _twn_long_rows(rows: np.ndarray, chunk: int, table, out, scales) -> None:
    """TWN on long rows: the buffer pieces' float64 sums over the cores, added in order here."""
    n = rows.shape[1]
    spans = tuple((lo, min(chunk, n - lo)) for lo in range(0, n, chunk))
    prow, plo, pn = _pieces(rows, spans)
    _, bad = _row_amax(rows, prow, plo, pn)
    sums = np.empty(prow.size, np.float64)
    counts = np.empty(prow.size, np.int64)
    zero = np.zeros(rows.shape[0], np.float32)
    run("twn_pieces", Target.CPU, prow.size, rows, prow, plo, pn, 1, zero, chunk, Out(sums), Out(counts))
    # accumulate adds left to right, as NumPy adds its buffer pieces
    total = np.add.accumulate(sums.reshape(rows.shape[0], -1), axis=1)[:, -1]
    delta = F32(0.7) * (total / n).astype(np.float32)
    run("twn_pieces", Target.CPU, prow.size, rows, prow, plo, pn, 2, delta, chunk, Out(sums), Out(counts))
    above = np.add.accumulate(sums.reshape(rows.shape[0], -1), axis=1)[:, -1]
    count = counts.reshape(rows.shape[0], -1).sum(axis=1)
    with np.errstate(invalid="ignore"):
        alpha = np.where(count > 0, above / np.maximum(count, 1), 0).astype(np.float32)
    run("twn_values", Target.CPU, prow.size, rows, prow, plo, pn, delta, alpha, *table, Out(out))
    scales[:] = alpha
    _poison(out, scales, bad)


FUSED_SEARCH = (fused_mse, fused_twn)
