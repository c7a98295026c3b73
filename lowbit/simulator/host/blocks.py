"""Block-scaled and codebook formats: layout, scales, elements, and their inverse.

Pipeline of `quantize_scaled` (every arithmetic step in float32, as the reference recipes):
  1. move the block axis last, zero-pad it to a multiple of the block, view as (blocks, block)
     (a block longer than the axis holds the whole axis: no padding to the block's length);
  2. per-block statistics (amax, and min/max or mean|x| where the rule needs them);
  3. the scale rule (`scales.py`) gives the scale(s) of each block;
  4. elements v = x * (1 / scale) (or x / scale where the format says so);
  5. v is rounded to the element format by the element kernels (any rounding mode) or to the
     nearest codebook value (ties to the lower code);
  6. value = element * scale (NVFP4: (element * dec_b) * (1 / S_enc)).
A block holding NaN or Inf gets a NaN scale and decodes to NaN throughout. A finite block's value
that step 6 carries past float32's range saturates to +-FLT_MAX (`saturate`), so finite input
never gives Inf or NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...formats import (
    CodebookFormat,
    DoubleQuant,
    GridFormat,
    IntFormat,
    ScaledFormat,
    ScaleRule,
    TensorScale,
)
from ..kernels.dispatch import Out, Target, device_array, launch_on_device, run, to_device
from ..kernels.params import NanPolicy, fast_params
from ..kernels.rounding import Rounding
from ..kernels.scalar import KIND_FLOAT, KIND_GRID, KIND_INT, KIND_TABLE
from . import micro as micro_exponents
from . import scales as rules
from .elements import draw_bits, encode_values, round_values, saturating
from .fused_paths import FUSED_PATHS
from .inputs import MAX_SR_BITS
from .rows import Blocks, ElementRounding
from .statistics import abs_mean, finite_amax, pow2_element_args
from .stochastic import table_codes

F32 = np.float32


@dataclass(frozen=True)
class Layout:
    """How an array maps onto (blocks, block) rows and back."""

    shape: tuple[int, ...]  # of the input
    axis: int  # normalised block axis (ignored for per-tensor formats)
    block: int  # elements per block after resolving None (axis length) and 0 (whole tensor)
    per_tensor: bool
    # 2-D tiles: rows of the axis before the block axis (in the moved shape) per block; a row of
    # `to_rows` is then a tile flattened in C order (tile_rows x block elements)
    tile_rows: int = 1

    @property
    def moved_shape(self) -> tuple[int, ...]:
        if self.per_tensor:
            return (int(np.prod(self.shape)),)
        s = list(self.shape)
        s.append(s.pop(self.axis))
        return tuple(s)

    @property
    def blocks_shape(self) -> tuple[int, ...]:
        """Shape of the per-block scale arrays: the moved shape with its last axis counted in blocks."""
        m = self.moved_shape
        last = -(-m[-1] // self.block) if m[-1] else 0
        if self.tile_rows > 1:  # tiles: the axis before the block axis counted in tiles too
            return (*m[:-2], -(-m[-2] // self.tile_rows), last)
        return (*m[:-1], last)

    def to_rows(self, x: np.ndarray) -> np.ndarray:
        m = x.reshape(-1) if self.per_tensor else np.moveaxis(x, self.axis, -1)
        n = m.shape[-1]
        pad = (-n) % self.block
        if pad:
            m = np.concatenate([m, np.zeros((*m.shape[:-1], pad), dtype=m.dtype)], axis=-1)
        if self.tile_rows > 1:
            return self._tiles(m)
        return np.ascontiguousarray(m).reshape(-1, self.block)

    def _tiles(self, m: np.ndarray) -> np.ndarray:
        """(tiles, tile_rows * block) of the moved, block-padded array m: rows zero-padded to a
        multiple of tile_rows, then each tile flattened row by row."""
        r, t, b = m.shape[-2], self.tile_rows, self.block
        pad = (-r) % t
        if pad:
            m = np.concatenate([m, np.zeros((*m.shape[:-2], pad, m.shape[-1]), dtype=m.dtype)], axis=-2)
        lead = m.shape[:-2]
        tiled = m.reshape(*lead, (r + pad) // t, t, m.shape[-1] // b, b)
        return np.ascontiguousarray(np.swapaxes(tiled, -3, -2)).reshape(-1, t * b)

    @property
    def rows_are_input(self) -> bool:
        """Whether the rows are a plain reshape of a C-contiguous input (no axis move, no
        padding), so that results can be written straight into an array of the input's shape."""
        if self.per_tensor:
            return True
        n = self.shape[self.axis] if self.shape else 0
        return self.axis == len(self.shape) - 1 and n % self.block == 0 and self.tile_rows == 1

    def from_rows(self, rows: np.ndarray) -> np.ndarray:
        if int(np.prod(self.shape)) == 0:
            return np.zeros(self.shape, dtype=rows.dtype)
        m = self.moved_shape
        if self.tile_rows > 1:
            rows = self._untile(rows)
        padded = rows.reshape(*m[:-1], -1)[..., : m[-1]]
        if self.per_tensor:
            return padded.reshape(self.shape)
        return np.moveaxis(padded, -1, self.axis)

    def _untile(self, rows: np.ndarray) -> np.ndarray:
        """The inverse of `_tiles`: the moved array (block-padded along its last axis), its
        tile-row padding removed."""
        m, t, b = self.moved_shape, self.tile_rows, self.block
        lead, (nt, nb) = m[:-2], self.blocks_shape[-2:]
        tiled = rows.reshape(*lead, nt, nb, t, b)
        return np.swapaxes(tiled, -3, -2).reshape(*lead, nt * t, nb * b)[..., : m[-2], :]


def layout(shape: tuple[int, ...], fmt: ScaledFormat, axis: int | None) -> Layout:
    ndim = len(shape)
    per_tensor = fmt.block == 0 or ndim == 0
    ax = fmt.axis if axis is None else axis
    if not per_tensor:
        if not -ndim <= ax < ndim:
            raise ValueError(f"axis {ax} is out of range for an array with {ndim} dimensions")
        ax %= ndim
    length = int(np.prod(shape)) if per_tensor else shape[ax]
    block = fmt.block if fmt.block else max(length, 1)
    if isinstance(fmt, ScaledFormat):
        # A block longer than the axis holds the whole axis, its scale computed on the elements
        # present: the rows are the axis's length, never the block's (a block of 10^8 on 4 values).
        block = min(block, max(length, 1))
    tile = _tile_rows(shape, fmt, ax)
    return Layout(tuple(shape), int(ax) if not per_tensor else 0, int(block), per_tensor, tile)


def _tile_rows(shape: tuple[int, ...], fmt, axis: int) -> int:
    """Rows per 2-D tile: the format's block_rows, cut to the rows there are (as a block is cut to
    its axis); 1 for 1-D blocks. Tiles need the axis before the block axis: 2 dimensions or more."""
    rows = getattr(fmt, "block_rows", 1)
    if rows == 1:
        return 1
    if len(shape) < 2:
        raise ValueError(
            f"format {fmt.name or fmt.describe()!r} scales {rows} x {fmt.block} tiles: x needs at least 2 "
            f"dimensions (the block axis and the axis before it), got shape {tuple(shape)}"
        )
    moved = [n for i, n in enumerate(shape) if i != axis]
    return int(min(rows, max(moved[-1], 1)))


def round_elements(
    v: np.ndarray, fmt: ScaledFormat | CodebookFormat | GridFormat, rnd: ElementRounding, want_codes: bool
):
    """(values, codes or None) of v rounded to the element format (float32 rows)."""
    mode, seed, target = rnd.mode, rnd.seed, rnd.target
    e = fmt.element if isinstance(fmt, ScaledFormat) else fmt
    if isinstance(e, (GridFormat, CodebookFormat)) and mode is not Rounding.RNE:
        return _table_stochastic(v, e, rnd, want_codes)
    if isinstance(e, GridFormat):
        k = e.round(v)
        return e.table[k], (k.astype(e.code_dtype) if want_codes else None)
    if isinstance(e, CodebookFormat):
        idx = np.searchsorted(e.midpoints, v, side="left")
        if e.zero_midpoint is not None:
            idx = np.where((v == 0) & ~np.signbit(v), e.zero_midpoint + 1, idx)
        idx = np.minimum(idx, e.n_codes - 1)
        return e.table[idx], (idx.astype(e.code_dtype) if want_codes else None)
    el = saturating(e)
    sr, bits = rnd.sr_bits, rnd.random_bits
    vals = round_values(v, el, mode, seed, target, sr, bits).astype(np.float32)
    codes = encode_values(v, el, mode, seed, NanPolicy.ZERO, target, sr, bits) if want_codes else None
    return vals, codes


def _table_stochastic(v: np.ndarray, e: CodebookFormat | GridFormat, rnd: ElementRounding, want_codes: bool):
    """(values, codes or None) of codebook or grid elements under stochastic rounding (the rule in
    `stochastic`): sr_bits random bits each (62 without sr_bits), given or drawn from the seed."""
    if rnd.mode is not Rounding.STOCHASTIC:
        raise ValueError(
            f"rounding: codebook and grid elements take 'rne' (nearest) or 'stochastic', got {rnd.mode.name.lower()!r}"
        )
    r = rnd.sr_bits or MAX_SR_BITS
    bits = rnd.random_bits if rnd.random_bits is not None else draw_bits(rnd.seed, r, v.size, rnd.target)
    k = table_codes(v, e.table, r, np.reshape(bits, np.shape(v)))
    return e.table[k], (k.astype(e.code_dtype) if want_codes else None)


def _mx_args(fmt: ScaledFormat, mode: Rounding) -> tuple | None:
    """The fused power-of-two kernel's format arguments, or None where it does not apply (other
    modes, elements outside the vectorised path, micro-exponents: the kernel has no sub-block shift)."""
    if not fmt.rule.power_of_two or mode is not Rounding.RNE or fmt.micro is not None:
        return None
    args = pow2_element_args(fmt)
    return None if args is None else (*args, isinstance(fmt.element, IntFormat))


def fused_mx(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None) -> Blocks | None:
    """Values of a power-of-two-scaled format from the fused block kernel (one pass over the
    data), or None where it does not apply (other modes, codes wanted, elements outside the
    vectorised path). It equals the step-by-step pipeline bit for bit (tested)."""
    args = _mx_args(fmt, rnd.mode)
    if args is None or rows.shape[1] == 0:
        return None
    out = np.empty_like(rows) if out is None else out
    scales = np.empty(rows.shape[0], np.float32)
    _launch("mx", rnd, rows, args, out, scales)
    return Blocks(out, None, scales[:, None], None)


def _element_kind(fmt: ScaledFormat):
    """(kind, parameter vector, thresholds, table) of the element for the fused absmax kernel."""
    e = fmt.element
    f = np.zeros(16, np.float32)
    if isinstance(e, CodebookFormat):
        # f[0] flags a midpoint at exactly 0 and f[1] is its index (-1 for none): +0 goes up there.
        f[0], f[1] = e.zero_midpoint is not None, -1 if e.zero_midpoint is None else e.zero_midpoint
        # Up to 16 codes: 16 thresholds padded with +Inf, for the one-pass select chain of the
        # kernel; larger tables: the padded search thresholds. Copies: CUDA needs writable arrays.
        t = e.search_thresholds
        mids = np.concatenate([t, np.full(16 - t.size, np.inf, np.float32)]) if t.size < 16 else t.copy()
        table = np.concatenate([e.table, np.repeat(e.table[-1:], mids.size + 1 - e.table.size)])
        return 2, f, mids, table
    if isinstance(e, GridFormat):
        f[:4] = e.gain, e.offset + 0.0, e.kmin, e.kmax  # + 0.0: an offset of -0 adds as +0
        return 3, f, np.zeros(1, np.float32), e.table.copy()
    f = fast_params(saturating(e), False)
    none = np.zeros(1, np.float32), np.zeros(1, np.float32)
    return None if f is None else (1 if isinstance(e, IntFormat) else 0, f, *none)


def _absmax_applies(fmt: ScaledFormat, mode: Rounding) -> bool:
    """Whether the fused absmax kernel computes `fmt` exactly: symmetric, nearest rounding, and a
    scale format on the kernel's fast path (an unsigned scale such as UE5M3 is not: it declines).
    The caller checks the rule (absmax only, so the search rules decline); a 2-D tile is one
    row of the rows, which the kernel scales like any other."""
    if fmt.asymmetric or mode is not Rounding.RNE or isinstance(fmt.scale, DoubleQuant):
        return False
    fs = np.zeros(16, np.float32) if fmt.scale is None else fast_params(saturating(fmt.scale), False)
    return fs is not None and _element_kind(fmt) is not None


def _absmax_args(fmt: ScaledFormat, level: int, s_enc) -> tuple:
    """The fused absmax kernel's arguments after the rows (level 0: one scale per row; 1: NVFP4's
    two levels with the tensor's encode scale s_enc; 2: one scale s_enc for all rows)."""
    fs = np.zeros(16, np.float32) if fmt.scale is None else fast_params(saturating(fmt.scale), False)
    code, f, mids, table = _element_kind(fmt)
    smin, smax = (F32(-1) if v is None else F32(v) for v in (fmt.scale_min, fmt.scale_max))
    return (level, code, fmt.divide, F32(fmt.element_max), smin, smax, F32(s_enc), f, fs, mids, table)


def fused_absmax(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, out: np.ndarray | None = None
) -> Blocks | None:
    """Values of a symmetric absmax-scaled format (NVFP4 one or two levels, NF4/AF4/BOF4, INT per
    group, ParetoQ SEQ) or of a per-tensor absmean format (BitNet) from the fused kernel, or None
    where it does not apply. Equals the pipeline (tested)."""
    per_tensor_mean = fmt.rule is ScaleRule.ABSMEAN and fmt.block == 0 and rows.shape[0] == 1
    if not (fmt.rule is ScaleRule.ABSMAX or per_tensor_mean):
        return None
    if rows.shape[1] == 0 or not _absmax_applies(fmt, rnd.mode):
        return None
    two = fmt.tensor_scale is TensorScale.NVFP4
    level, work = (1, rows) if two else (0, rows)
    if two:
        s_enc = rules.nvfp4_scale_from_amax(finite_amax(rows, rnd.target), fmt)
    elif per_tensor_mean:
        s_enc = _symmetric_scale(rows, None, fmt, rnd)[0]
        if not np.isfinite(s_enc):  # NaN or Inf in the tensor: all of it is NaN, as in the pipeline
            return Blocks(np.full_like(rows, np.nan), None, np.full((1, 1), np.nan, np.float32), None)
        level, work = 2, _chunked(rows)  # one scale: spread the elements over the cores
    elif rows.shape[0] == 1 and _chunked(rows).shape[0] > 1:
        # One long row (a per-channel format on a 1-D array): its scale by the pipeline's own rule
        # from the amax of a pass over the cores, then the elements in pieces over the cores.
        amax = _amax(_chunked(rows), rnd)
        if not np.isfinite(amax):  # NaN or Inf in the row: all of it is NaN, as in the pipeline
            return Blocks(np.full_like(rows, np.nan), None, np.full((1, 1), np.nan, np.float32), None)
        s_enc = _symmetric_scale(rows, np.array([amax], np.float32), fmt, rnd)[0]
        level, work = 2, _chunked(rows)
    else:
        s_enc = F32(1)
    args = _absmax_args(fmt, level, s_enc)
    out = np.empty_like(work) if out is None else out.reshape(work.shape)
    scales = np.empty(work.shape[0], np.float32)
    if two and args[1] == 0 and rnd.target is Target.CPU:  # a CPU-only driver for NVFP4's long rows
        em, f, fs = args[3], args[7], args[8]
        run("nv_chunks", Target.CPU, work.shape[0], work, work.view(np.int32), em, F32(s_enc), f, fs, out, scales)
    else:
        _launch_absmax(rnd, work, args, out, scales)
    if level == 2:  # one scale for the whole row
        return Blocks(out.reshape(rows.shape), None, scales[:1, None], None)
    return Blocks(out, None, scales[:, None], F32(F32(1) / s_enc) if two else None)


# The CPU's absmax driver of each element kind (each compiles only its own elements).
_KIND_DRIVERS = {
    KIND_FLOAT: "absmax_float",
    KIND_INT: "absmax_int",
    KIND_TABLE: "absmax_table",
    KIND_GRID: "absmax_grid",
}


def _launch_absmax(rnd: ElementRounding, rows: np.ndarray, args: tuple, out, scales) -> None:
    """Run the fused absmax kernel on `_absmax_args`'s arguments: on CUDA one kernel for every
    element kind; on the CPU the kind's driver, which takes all but the kind."""
    if rnd.target is Target.CUDA:
        _launch("absmax", rnd, rows, args, out, scales)
        return
    level, kind, *rest = args
    _launch(_KIND_DRIVERS[kind], rnd, rows, (level, *rest), out, scales)


def device_rows_kernel(fmt: ScaledFormat, mode: Rounding, tensor_amax: float | None) -> tuple[str, tuple] | None:
    """(kernel, format arguments) of the fused kernel that quantizes rows of `fmt` (one block a
    row) in one pass on a device, or None where no fused kernel applies (then the host pipeline
    runs). `tensor_amax` is the tensor's largest finite |x|, for NVFP4's two levels. 2-D tiles
    decline: the device rows are 1-D blocks of the block axis."""
    if fmt.block == 0 or fmt.block_rows > 1:
        return None
    mx = _mx_args(fmt, mode)
    if mx is not None:
        return "mx", mx
    if fmt.rule is not ScaleRule.ABSMAX or not _absmax_applies(fmt, mode):
        return None
    if fmt.tensor_scale is TensorScale.NVFP4:
        return "absmax", _absmax_args(fmt, 1, rules.nvfp4_scale_from_amax(F32(tensor_amax), fmt))
    return "absmax", _absmax_args(fmt, 0, F32(1))


def quantize_rows_device(rows, kernel: str, args: tuple, stream=0, out=None):
    """Values of float32 rows already on the device (a C-contiguous (blocks, block) device array),
    by `device_rows_kernel`'s kernel, into `out` (a device array of rows' shape; None: a new one),
    every copy and launch on `stream`. Finite blocks whose values pass float32's range come back as
    +-Inf; the caller clamps them to +-FLT_MAX (`saturate` does the same on the host)."""
    out = device_array(rows.shape, np.float32, stream) if out is None else out
    scales = device_array(rows.shape[0], np.float32, stream)
    moved = tuple(to_device(a, stream) if isinstance(a, np.ndarray) else a for a in args)
    launch_on_device(kernel, rows.shape[0], rows, rows.view(np.int32), *moved, out, scales, stream=stream)
    return out


def _amax(rows: np.ndarray, rnd: ElementRounding) -> F32:
    """Largest |x| of the tensor (NaN where it holds NaN or Inf): each row's in a kernel pass, then
    the largest on the host. Pass long rows (`_chunked`)."""
    bits = np.zeros(rows.shape[0], np.int64)
    run("amax_bits", Target.CPU, rows.shape[0], rows.view(np.int32), Out(bits))
    top = bits.max() if bits.size else 0
    return F32(np.nan) if top >= 0x7F800000 else np.array([top], np.int64).astype(np.int32).view(np.float32)[0]


def _chunked(row: np.ndarray, size: int = 4096) -> np.ndarray:
    n = row.size
    return row.reshape(-1, size) if n % size == 0 and n > size else row


def _launch(kernel: str, rnd: ElementRounding, rows: np.ndarray, args: tuple, out, scales) -> None:
    run(kernel, rnd.target, rows.shape[0], rows, rows.view(np.int32), *args, Out(out), Out(scales))


def quantize_rows(
    rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, want_codes: bool, out: np.ndarray | None = None
) -> Blocks:
    """Quantize float32 rows (one block each) to `fmt`. The fused kernels write the values into
    `out` (rows' shape, C-contiguous) when it is given; the other paths return new arrays."""
    if not want_codes:
        for path in (fused_mx, fused_absmax, *FUSED_PATHS):
            fused = path(rows, fmt, rnd, out)
            if fused is not None:
                return _saturated(fused, fmt)
    # Blocks holding NaN or Inf overflow on the way and are set to NaN at the end, on purpose.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _saturated(_quantize_rows(rows, fmt, rnd, want_codes), fmt)


FLT_MAX = np.finfo(np.float32).max


def largest_element(fmt: ScaledFormat) -> F32:
    """The largest |element| a block's value is computed from (an integer's fixed-point step
    applied; an asymmetric integer's |code - zero point| is at most its largest code)."""
    table = fmt.element.code_values
    return F32(np.max(np.abs(table[np.isfinite(table)])) * fmt.element_step)


def saturate(values: np.ndarray, scales: np.ndarray, post, fmt: ScaledFormat) -> np.ndarray:
    """values (blocks, block) with every element times scale (times the NVFP4 tensor scale `post`)
    that passed float32's range set to +-FLT_MAX, in place: a finite block never gives Inf (nor
    NaN). One bound over all scales first, so the common case costs a pass over the scales only."""
    if scales.size == 0:
        return values
    big = F32(largest_element(fmt))
    p = F32(1) if post is None else F32(post)
    with np.errstate(over="ignore", invalid="ignore"):
        # NaN scales (NaN blocks) ignored; two reductions, no |scales| temporary (this runs on every call)
        top = max(np.fmax.reduce(scales, axis=None), -np.fmin.reduce(scales, axis=None))
        if np.isnan(top) or np.isfinite(F32(F32(big * F32(top)) * p)):
            return values
        risky = ~np.isfinite(F32(big * np.abs(scales).max(axis=1).astype(F32)) * p)
    values[risky] = np.clip(values[risky], -FLT_MAX, FLT_MAX)
    return values


def _saturated(b: Blocks, fmt: ScaledFormat) -> Blocks:
    saturate(b.values, b.scales, b.tensor_scale if fmt.tensor_scale is TensorScale.NVFP4 else None, fmt)
    return b


def _quantize_rows(rows: np.ndarray, fmt: ScaledFormat, rnd: ElementRounding, want_codes: bool) -> Blocks:
    amax = np.max(np.abs(rows), axis=1) if rows.shape[1] else np.zeros(rows.shape[0], np.float32)
    bad = ~np.isfinite(amax)
    tensor_scale = None
    rule = fmt.rule
    if fmt.tensor_scale is TensorScale.NVFP4:
        s_enc = rules.nvfp4_tensor_scale(rows, fmt)
        tensor_scale = F32(F32(1) / s_enc)
        if rule is ScaleRule.MSE:
            dec, enc = _nvfp4_search(rows, amax, s_enc, fmt, rnd)
        else:
            dec, enc = rules.nvfp4_block_scales(amax, s_enc, fmt)
        blocks = _apply(rows, enc[:, None], dec, fmt, rnd, want_codes, post=tensor_scale)
    elif rule.power_of_two:
        e = rules.pow2_exponent(amax, fmt)
        dec = np.ldexp(F32(1), e).astype(np.float32)
        enc = np.ldexp(F32(1), -e).astype(np.float32)
        step = F32(fmt.element_step)
        v = (rows * enc[:, None]) * (F32(1) / step)
        if fmt.micro is not None:
            blocks = _finish_micro(v, rows, e, dec, fmt, rnd, want_codes)
        else:
            blocks = _finish(v, dec, fmt, rnd, want_codes, step=step)
    elif rule is ScaleRule.TWN:
        if rnd.mode is not Rounding.RNE:
            raise ValueError(f"rounding: rule 'twn' uses its threshold only ('rne'), got {rnd.mode.name.lower()!r}")
        blocks = _twn(rows, fmt, want_codes)
    elif fmt.asymmetric and isinstance(fmt.element, IntFormat):
        lo = np.minimum(np.min(rows, axis=1), F32(0))
        hi = np.maximum(np.max(rows, axis=1), F32(0))
        s, zp = rules.zero_point_scale(lo, hi, fmt)
        v = _scaled(rows, s[:, None], fmt) + zp[:, None]
        vals, codes = round_elements(v, fmt, rnd, want_codes)
        values = (vals - zp[:, None]) * s[:, None]
        blocks = Blocks(values, codes, np.stack([s, zp], axis=1), None)
    elif fmt.asymmetric:
        r = F32(fmt.element_max)
        sp = rules.round_to_scale_format(np.maximum(np.max(rows, axis=1), F32(0)) / r, fmt)
        sn = rules.round_to_scale_format(np.abs(np.minimum(np.min(rows, axis=1), F32(0))) / r, fmt)
        neg = np.signbit(rows)
        s = np.where(neg, sn[:, None], sp[:, None])
        vals, codes = round_elements(_scaled(rows, s, fmt), fmt, rnd, want_codes)
        blocks = Blocks(vals * s, codes, np.stack([sp, sn], axis=1), None)
    else:
        s = _symmetric_scale(rows, amax, fmt, rnd)
        state = None
        if isinstance(fmt.scale, DoubleQuant):
            s, dq_codes, a2, offset = rules.double_quantize(np.where(bad, F32(0), s), fmt.scale)
            state = (dq_codes, a2, offset)
        vals, codes = round_elements(_scaled(rows, s[:, None], fmt), fmt, rnd, want_codes)
        blocks = Blocks(vals * s[:, None], codes, s[:, None], None, state)
    return _poison(blocks, bad, fmt)


def _twn(rows: np.ndarray, fmt: ScaledFormat, want_codes: bool) -> Blocks:
    """Ternary weight networks: delta = 0.7 * mean|x|; k = sign(x) where |x| > delta; the scale
    is the mean |x| over those elements (0 when there are none). Means accumulate in float64."""
    a = np.abs(rows)
    n = max(rows.shape[1], 1)
    delta = F32(0.7) * (np.sum(a, axis=1, dtype=np.float64) / n).astype(np.float32)
    above = a > delta[:, None]
    count = np.sum(above, axis=1)
    alpha = np.where(count > 0, np.sum(np.where(above, a, 0), axis=1, dtype=np.float64) / np.maximum(count, 1), 0)
    alpha = rules.round_to_scale_format(alpha.astype(np.float32), fmt)
    # -1, 0, 1; a NaN is never above delta (its block is NaN at the end, see _poison)
    k = np.where(above, np.sign(rows), F32(0)).astype(np.int64)
    codes = (k + 1).astype(fmt.element.code_dtype)
    values = fmt.element.table[k + 1] * alpha[:, None]
    return Blocks(values, codes if want_codes else None, alpha[:, None], None)


def _symmetric_scale(rows, amax, fmt: ScaledFormat, rnd: ElementRounding) -> np.ndarray:
    if fmt.rule is ScaleRule.ABSMEAN:
        return rules.round_to_scale_format(abs_mean(rows), fmt)
    if fmt.rule is ScaleRule.SIGNED_ABSMAX:
        # the largest-magnitude element with its sign (the first one on ties)
        signed = rows[np.arange(rows.shape[0]), np.argmax(np.abs(rows), axis=1)] if rows.shape[1] else amax
        return rules.round_to_scale_format(signed / F32(fmt.element_max), fmt)
    s = rules.absmax_scale(amax, fmt)
    if fmt.rule is ScaleRule.MSE:
        s = _mse_search(rows, amax, s, fmt, rnd)
    return s


def _mse_search(rows, amax, s_absmax, fmt: ScaledFormat, rnd: ElementRounding) -> np.ndarray:
    """Per block, the shrunk absmax scale with the least squared error (the largest factor wins ties)."""
    best_s, best_err = s_absmax, None
    for f in fmt.search_factors:
        s = rules.round_to_scale_format((amax * F32(f)) / F32(fmt.element_max), fmt)
        vals, _ = round_elements(_scaled(rows, s[:, None], fmt), fmt, rnd, False)
        err = np.sum((vals * s[:, None] - rows).astype(np.float64) ** 2, axis=1)
        if best_err is None:
            best_s, best_err = s, err
        else:
            better = err < best_err
            best_s, best_err = np.where(better, s, best_s), np.where(better, err, best_err)
    return best_s.astype(np.float32)


def _nvfp4_search(rows, amax, s_enc: F32, fmt: ScaledFormat, rnd: ElementRounding) -> tuple[np.ndarray, np.ndarray]:
    """(dec_b, enc_b) of the MSE rule under the NVFP4 tensor scale: each candidate factor f gives
    dec_b = scale((amax_b * (S_enc * (1/max))) * f); the block keeps the candidate whose values
    ((q * dec_b) * (1/S_enc), float32) have the least sum of squared errors against x (float64
    sum of the float32 differences squared); the first candidate wins ties."""
    post = F32(F32(1) / s_enc)
    best_dec, best_enc, best_err = None, None, None
    for f in fmt.search_factors:
        dec, enc = rules.nvfp4_block_scales(amax, s_enc, fmt, f)
        if best_dec is None:
            best_dec, best_enc, prev = dec.copy(), enc.copy(), dec
            best_err = _block_errors(rows, dec, enc, post, fmt, rnd)
            continue
        # A block whose candidate scale repeats the previous one repeats its error, which cannot win
        # (ties keep the first); with random numbers per position, every block is rounded again.
        todo = np.arange(rows.shape[0]) if rnd.mode is Rounding.STOCHASTIC else np.nonzero(dec != prev)[0]
        prev = dec
        if todo.size == 0:
            continue
        whole = todo.size == rows.shape[0]  # no copy of the rows when every block is to be tried
        part = (rows, dec, enc) if whole else (rows[todo], dec[todo], enc[todo])
        err = _block_errors(*part, post, fmt, rnd)
        better = err < best_err[todo]
        win = todo[better]
        best_dec[win], best_enc[win], best_err[win] = dec[win], enc[win], err[better]
    return best_dec.astype(np.float32), best_enc.astype(np.float32)


def _block_errors(rows, dec, enc, post: F32, fmt: ScaledFormat, rnd: ElementRounding) -> np.ndarray:
    """Each block's sum of squared errors (float64 over the float32 differences) under (dec, enc)."""
    values = _apply(rows, enc[:, None], dec, fmt, rnd, False, post=post).values
    return np.sum((values - rows).astype(np.float64) ** 2, axis=1)


def _scaled(rows: np.ndarray, s: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    """Elements before rounding: x / s or x * (1 / s); 0 where s is 0. A scale below 2^-128
    has no float32 reciprocal, so its block is divided instead."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        quotient = np.where(s == 0, F32(0), rows / s).astype(np.float32)
        if fmt.divide:
            return quotient
        enc = rules.reciprocal(s)
        return np.where(np.isinf(enc), quotient, rows * enc).astype(np.float32)


def _apply(rows, enc, dec, fmt, rnd, want_codes, post) -> Blocks:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        den = (dec * post)[:, None]
        v = np.where(np.isinf(enc), np.where(den == 0, F32(0), rows / den), rows * enc).astype(np.float32)
    vals, codes = round_elements(v, fmt, rnd, want_codes)
    return Blocks((vals * dec[:, None]) * post, codes, dec[:, None], post)


def _finish(v, dec, fmt, rnd, want_codes, step) -> Blocks:
    vals, codes = round_elements(v.astype(np.float32), fmt, rnd, want_codes)
    return Blocks((vals * step) * dec[:, None], codes, dec[:, None], None)


def _finish_micro(v, rows, e, dec, fmt, rnd, want_codes) -> Blocks:
    """Elements under shared micro-exponents: v (x / (2^E step)) times 2^d of its sub-block, rounded
    to the element; values (element * step) * 2^-d * 2^E. Every factor is a power of two, so only
    the rounding to the element and a value's overflow past float32 are inexact."""
    d = micro_exponents.shifts(rows, e, fmt)
    width = rows.shape[1]
    up = micro_exponents.factors(d, fmt.micro, width, up=True)
    vals, codes = round_elements((v * up).astype(np.float32), fmt, rnd, want_codes)
    down = micro_exponents.factors(d, fmt.micro, width, up=False)
    values = ((vals * F32(fmt.element_step)) * down) * dec[:, None]
    return Blocks(values, codes, dec[:, None], None, micro=d)


def _poison(b: Blocks, bad: np.ndarray, fmt: ScaledFormat) -> Blocks:
    """Blocks holding NaN or Inf become NaN: NaN values and scales, element code 0. Double-quantized
    scales have no NaN code, so there the codes are the element's zero (encode refuses such blocks
    unless nan='zero', which this encodes: the block decodes to zeros)."""
    if not bad.any():
        return b
    values = b.values.copy()
    values[bad] = np.nan
    scales = b.scales.copy()
    scales[bad] = np.nan
    codes = None if b.codes is None else b.codes.copy()
    if codes is not None:
        codes[bad] = zero_code(fmt) if isinstance(fmt.scale, DoubleQuant) else 0
    return Blocks(values, codes, scales, b.tensor_scale, b.scale_state, b.micro)


def zero_code(fmt: ScaledFormat) -> int:
    """The element code nearest 0 (0 itself in every catalog element)."""
    table = fmt.element.code_values
    return int(np.argmin(np.where(np.isnan(table), np.inf, np.abs(table))))


def dequantize_rows(
    codes: np.ndarray, scales: np.ndarray, tensor_scale, fmt: ScaledFormat, micro: np.ndarray | None = None
) -> np.ndarray:
    """Values of element codes and scale values (and, for micro-exponent formats, the sub-block
    shifts `micro`, (blocks, sub-blocks)): the exact inverse of `quantize_rows`."""
    e = fmt.element
    vals = e.code_values.astype(np.float32)[codes.astype(np.int64)]
    if fmt.micro is not None:
        vals = vals * micro_exponents.factors(micro, fmt.micro, vals.shape[1], up=False)
    with np.errstate(invalid="ignore", over="ignore"):
        if fmt.tensor_scale is TensorScale.NVFP4:
            out = (vals * scales[:, :1]) * F32(tensor_scale)
        elif fmt.rule.power_of_two:
            out = (vals * F32(fmt.element_step)) * scales[:, :1]
        elif fmt.asymmetric and isinstance(e, IntFormat):
            out = (vals - scales[:, 1:2]) * scales[:, :1]
        elif fmt.asymmetric:
            out = vals * np.where(np.signbit(vals), scales[:, 1:2], scales[:, :1])
        else:
            out = vals * scales[:, :1]
    out = out.astype(np.float32)
    out[np.isnan(scales).any(axis=1)] = np.nan
    return saturate(out, scales, tensor_scale if fmt.tensor_scale is TensorScale.NVFP4 else None, fmt)
