"""Fused paths for block formats whose scales the host computes ("given scales"), and for bare
codebook formats.

`fused_given` (a `fused_paths` path) serves the families of `blocks._quantize_rows` that the
one-pass kernels decline: zero points (asymmetric integers), AFPQ's separate positive and negative
scales, symmetric absmax or absmean scales in a format off the kernels' fast path (double
quantization, UE5M3), and NVFP4's two levels with such a scale format. Three steps:
  1. a kernel pass reduces each row to integers: the largest |x| (bit pattern) and, where the rule
     needs them, the largest and smallest x (order-preserving keys);
  2. the scale rules of `scales` run on those per-block statistics, on the host, with the
     pipeline's own NumPy expressions: the scales are the pipeline's by construction;
  3. a kernel pass rounds every element with its row's scale in the pipeline's float32 steps.
The one thing integers do not say is which zero np.max returns for a row whose largest value is
a zero of both signs (the SIMD reduction's choice): such data (rare: -0 beside +0 and nothing
larger) takes the pipeline's reduction itself.

`quantize_codebook` rounds a bare codebook format (no scale) in one kernel pass, as
`round_elements` does, NaN staying NaN.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np

from ...formats import CodebookFormat, DoubleQuant, FloatFormat, IntFormat, ScaledFormat, ScaleRule, TensorScale
from ..kernels.dispatch import Out, run
from ..kernels.jit import threads_for
from ..kernels.params import fast_params
from ..kernels.rounding import Rounding
from ..kernels.scalar import KIND_FLOAT, KIND_INT, KIND_TABLE
from . import scales as rules
from .elements import saturating
from .rows import Blocks, ElementRounding
from .statistics import abs_mean

F32 = np.float32
# Elements per work item of the kernels: longer rows are cut (per-channel scales on one long row
# still use every core); a piece of 16384 float32 is 64 KiB, an L2-resident slice.
PIECE = 1 << 14
_NEG_ZERO_BITS = np.int32(-(1 << 31))
_INF_BITS = np.int32(0x7F800000)  # also the order key of +Inf
_NEG_INF_KEY = np.int32(-0x7F800001)  # the order key of -Inf
_NONE = np.zeros(1, np.float32)
_THRESHOLDS = 16  # the kernels' select chain: up to 16 thresholds, 17 codebook values
# The scale rules see one value a block (1/16 of the data or less): they run on the calling thread,
# as any call below jit.SERIAL_BELOW elements does, since waking the worker pool for them costs
# more than their work (15 ms against 0.3 ms for 2^17 fp16 scales on 2 busy cores).
_SERIAL = 0


class Family(enum.Enum):
    """Which branch of the pipeline a format takes, as far as this path serves it."""

    ZERO_POINT = "zero_point"  # asymmetric integer: scale and zero point from [min(x, 0), max(x, 0)]
    SIGNED = "signed"  # AFPQ: max(x, 0) / R and |min(x, 0)| / R, by the sign bit of x
    SYMMETRIC = "symmetric"  # absmax or absmean, optionally double-quantized
    NVFP4 = "nvfp4"  # two levels under the tensor scale


def family(fmt: ScaledFormat) -> Family | None:
    """The pipeline branch of `fmt` if this path serves it (nearest rounding assumed), else None:
    power-of-two, TWN, search and signed-absmax rules, micro-exponents and grid elements decline."""
    if fmt.micro is not None or element_args(fmt.element) is None:
        return None
    if fmt.tensor_scale is TensorScale.NVFP4:
        return Family.NVFP4 if fmt.rule is ScaleRule.ABSMAX else None
    if fmt.tensor_scale is not TensorScale.NONE or fmt.rule.power_of_two or fmt.rule is ScaleRule.TWN:
        return None
    if fmt.asymmetric:  # the pipeline's asymmetric branches do not read the rule
        return Family.ZERO_POINT if isinstance(fmt.element, IntFormat) else Family.SIGNED
    return Family.SYMMETRIC if fmt.rule in (ScaleRule.ABSMAX, ScaleRule.ABSMEAN) else None


def element_args(e: FloatFormat | IntFormat | CodebookFormat) -> tuple | None:
    """(kind, fast vector, 16 thresholds, 17 values, zero_up, zval) of an element, or None where the
    kernels do not round it as the pipeline does (a codebook of more than 17 values, a grid, an
    element off the fast float32 path)."""
    if isinstance(e, CodebookFormat):
        if e.n_codes - 1 > _THRESHOLDS:
            return None
        t = e.thresholds
        mids = np.concatenate([t, np.full(_THRESHOLDS - t.size, np.inf, np.float32)]).astype(np.float32)
        table = np.concatenate([e.table, np.repeat(e.table[-1:], _THRESHOLDS + 1 - e.table.size)]).astype(np.float32)
        zm = e.zero_midpoint
        zval = F32(0) if zm is None else F32(e.table[zm + 1])
        return KIND_TABLE, np.zeros(16, np.float32), mids, table, zm is not None, zval
    if not isinstance(e, (IntFormat, FloatFormat)):
        return None
    f = fast_params(saturating(e), False)
    if f is None:
        return None
    kind = KIND_INT if isinstance(e, IntFormat) else KIND_FLOAT
    return kind, f, np.zeros(16, np.float32), np.zeros(17, np.float32), False, F32(0)


def fused_given(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None
) -> Blocks | None:
    """Values and scales of float32 rows (one block a row, C-contiguous) quantized to `fmt` by the
    given-scale kernels, written into `out` (rows' shape) where given; None where this path does
    not serve the format or the rounding (see `family`). Equals the pipeline bit for bit (tested)."""
    if not isinstance(fmt, ScaledFormat) or rnd.mode is not Rounding.RNE or 0 in rows.shape:
        return None
    fam = family(fmt)
    if fam is None:
        return None
    out = np.empty_like(rows) if out is None else out
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if fam is Family.SIGNED:
            return _signed(rows, fmt, rnd, out)
        if fam is Family.ZERO_POINT:
            return _zero_point(rows, fmt, rnd, out)
        if fam is Family.NVFP4:
            return _nvfp4(rows, fmt, rnd, out)
        return _symmetric(rows, fmt, rnd, out)


class RowStats(NamedTuple):
    """Per-row statistics of the stats pass (one entry a row)."""

    bad: np.ndarray  # the row holds NaN or Inf
    amax: np.ndarray | None  # float32 largest |x| (NaN or Inf where bad); None where minmax
    kmax: np.ndarray | None  # int32 order key of the largest x (`given_scalar.order_key`)
    kmin: np.ndarray | None  # ... of the smallest x


def _launch(kernel: str, rnd: ElementRounding, rows: np.ndarray, *args) -> int:
    """Run a row kernel over every piece of every row; returns the pieces per row."""
    n = rows.shape[1]
    piece = min(n, PIECE)
    per = -(-n // piece)
    run(kernel, rnd.target, rows.shape[0] * per, rows, piece, *args)
    return per


def row_stats(rows: np.ndarray, rnd: ElementRounding, minmax: bool) -> RowStats:
    """The stats pass over float32 rows: the largest and smallest x as order keys where `minmax`,
    else the largest |x|; and which rows hold NaN or Inf."""
    items = rows.shape[0] * -(-rows.shape[1] // min(rows.shape[1], PIECE))
    abits = np.empty(items, np.int32)
    kmax = np.empty(items if minmax else 1, np.int32)
    kmin = np.empty(items if minmax else 1, np.int32)
    per = _launch("given_stats", rnd, rows.view(np.int32), minmax, Out(abits), Out(kmax), Out(kmin))
    if not minmax:
        abits = abits.reshape(-1, per).max(axis=1)  # pieces of long rows: reduced on the host
        return RowStats(abits >= _INF_BITS, abits.view(np.float32), None, None)
    kmax, kmin = kmax.reshape(-1, per).max(axis=1), kmin.reshape(-1, per).min(axis=1)
    return RowStats((kmax >= _INF_BITS) | (kmin <= _NEG_INF_KEY), None, kmax, kmin)


def key_values(keys: np.ndarray) -> np.ndarray:
    """The float32 values of int32 order keys (the key map is its own inverse)."""
    return (keys ^ ((keys >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


def exact_max(rows: np.ndarray, st: RowStats) -> np.ndarray:
    """np.max(rows, axis=1) for the finite rows: the key's value, except where a row's largest
    value is +0 beside a -0, when the pipeline's reduction itself says which zero it returns."""
    cand = np.nonzero(st.kmax == 0)[0]
    if cand.size and (rows[cand].view(np.int32) == _NEG_ZERO_BITS).any():
        return np.max(rows, axis=1)
    return key_values(st.kmax)


def exact_min(rows: np.ndarray, st: RowStats) -> np.ndarray:
    """np.min(rows, axis=1) for the finite rows (as `exact_max`: -0 beside +0 asks NumPy)."""
    cand = np.nonzero(st.kmin == -1)[0]
    if cand.size and (rows[cand].view(np.int32) == 0).any():
        return np.min(rows, axis=1)
    return key_values(st.kmin)


def _signed(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray) -> Blocks:
    """AFPQ: s+ = max(max(x), 0) / R and s- = |min(min(x), 0)| / R, rounded to the scale format;
    each element takes the scale of its sign bit. (The sign of a zero minimum cannot matter: |.|.)"""
    st = row_stats(rows, rnd, True)
    r = F32(fmt.element_max)
    pos = np.maximum(exact_max(rows, st), F32(0)) / r
    neg = np.abs(np.minimum(key_values(st.kmin), F32(0))) / r
    with threads_for(_SERIAL):  # both columns rounded at once: elementwise, as the pipeline's two calls
        scales = rules.round_to_scale_format(np.stack([pos, neg], axis=1), fmt)
    scales[st.bad] = np.nan  # the kernel's mark of a NaN row, as the pipeline's _poison
    _launch("given_signed", rnd, rows, scales, fmt.divide, *element_args(fmt.element), Out(out))
    return Blocks(out, None, scales, None)


def _zero_point(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray) -> Blocks:
    """Asymmetric integers: s and zp from [min(x, 0), max(x, 0)] (`scales.zero_point_scale`);
    value (round(x / s + zp) - zp) * s."""
    st = row_stats(rows, rnd, True)
    lo = np.minimum(exact_min(rows, st), F32(0))
    hi = np.maximum(exact_max(rows, st), F32(0))
    with threads_for(_SERIAL):
        s, zp = rules.zero_point_scale(lo, hi, fmt)
    s[st.bad] = np.nan
    zp[st.bad] = np.nan
    _rows(rows, rnd, s, zp, fmt.divide, False, F32(1), fmt, out)
    return Blocks(out, None, np.stack([s, zp], axis=1), None)


def _symmetric(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray) -> Blocks:
    """One scale a row: absmax / max(element) or mean |x|, rounded to the scale format, and
    double-quantized over all blocks at once (`scales.double_quantize`) where the format says so."""
    if fmt.rule is ScaleRule.ABSMEAN:
        mean = abs_mean(rows)
        bad = ~np.isfinite(mean)  # a finite row's float64 mean is finite: as the pipeline's amax says
    else:
        st = row_stats(rows, rnd, False)
        bad = st.bad
    state = None
    with threads_for(_SERIAL):
        s = (
            rules.round_to_scale_format(mean, fmt)
            if fmt.rule is ScaleRule.ABSMEAN
            else rules.absmax_scale(st.amax, fmt)
        )
        if isinstance(fmt.scale, DoubleQuant):
            s, dq_codes, a2, offset = rules.double_quantize(np.where(bad, F32(0), s), fmt.scale)
            state = (dq_codes, a2, offset)
    s = s.astype(np.float32)  # a copy: NaN marks go in below
    s[bad] = np.nan
    _rows(rows, rnd, s, None, fmt.divide, False, F32(1), fmt, out)
    return Blocks(out, None, s[:, None], None, state)


def _nvfp4(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray) -> Blocks:
    """NVFP4's two levels (`scales.nvfp4_block_scales` under the tensor's S_enc): value
    (round(x * enc_b) * dec_b) * (1 / S_enc), enc_b derived from dec_b in the kernel."""
    st = row_stats(rows, rnd, False)
    s_enc = rules.nvfp4_scale_from_amax(finite_tensor_amax(rows, st), fmt)
    with threads_for(_SERIAL):
        dec, _ = rules.nvfp4_block_scales(st.amax, s_enc, fmt)
    post = F32(F32(1) / s_enc)
    dec[st.bad] = np.nan
    _rows(rows, rnd, dec, None, False, True, post, fmt, out)
    return Blocks(out, None, dec[:, None], post)


def _rows(rows, rnd: ElementRounding, s, zp, divide: bool, nv: bool, post: F32, fmt, out) -> None:
    """The element pass of one scale a row (and a zero point where zp is given)."""
    z = _NONE if zp is None else zp
    _launch("given_rows", rnd, rows, s, z, zp is not None, divide, nv, post, *element_args(fmt.element), Out(out))


def finite_tensor_amax(rows: np.ndarray, st: RowStats) -> F32:
    """The largest finite |x| of the tensor (0 for none): the rows' amax, and a look inside the
    rows holding NaN or Inf."""
    good = st.amax[~st.bad]
    amax = F32(good.max()) if good.size else F32(0)
    if st.bad.any():
        part = np.abs(rows[st.bad])
        part = part[np.isfinite(part)]
        amax = max(amax, F32(part.max()) if part.size else F32(0))
    return F32(amax)


def quantize_codebook(
    arr: np.ndarray, fmt: CodebookFormat, rnd: ElementRounding, sink: np.ndarray | None = None
) -> np.ndarray | None:
    """Values of a float32 array rounded to a bare codebook format `fmt` (nearest value, ties to
    the lower one, +0 up at a midpoint of 0; NaN stays NaN) in one kernel pass, written into `sink`
    (arr's shape, C-contiguous) where given; None where this path does not apply (another format,
    stochastic rounding, a codebook of more than 17 values, an empty array)."""
    if not isinstance(fmt, CodebookFormat) or rnd.mode is not Rounding.RNE or arr.size == 0:
        return None
    args = element_args(fmt)
    if args is None:
        return None
    _, _, mids, table, zero_up, zval = args
    flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    out = np.empty_like(flat) if sink is None else sink.reshape(-1)
    run("given_codebook", rnd.target, flat.size, flat, mids, table, zero_up, zval, Out(out))
    return out.reshape(arr.shape)
