"""The public API of every format family: quantize, encode, decode, bits_per_element, Encoded.

Everything a user passes is checked here (with `inputs`), on the host, before any kernel runs;
element formats round through `elements`, block-scaled and codebook formats through `blocks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...formats import (
    CodebookFormat,
    DoubleQuant,
    ElementFormat,
    GridFormat,
    ScaledFormat,
    VectorCodebookFormat,
    get_format,
    parse_enum,
)
from ..kernels.dispatch import Target
from ..kernels.jit import threads_for
from ..kernels.params import NanPolicy
from ..kernels.rounding import Rounding
from .blocks import ElementRounding, dequantize_rows, layout, quantize_rows, round_elements
from .elements import check_codes, decode_values, draw_bits, encode_values, quantize_device, quantize_flat
from .encoded import Encoded, check_encoded
from .fused_given import quantize_codebook
from .fused_tiles import quantize_tiles
from .inputs import (
    check_axis,
    check_random_bits,
    check_seed,
    check_sr_bits,
    float32_host,
    host_float_array,
    host_target,
    is_device_array,
    resolve_target,
)
from .micro import sub_blocks
from .scales import dq_values, scale_codes, scale_values


@dataclass(frozen=True)
class _Prepared:
    fmt: ElementFormat
    mode: Rounding
    seed: int
    target: Target
    sr_bits: int = 0  # 0: the 62-bit rule without sr_bits
    random_bits: np.ndarray | None = field(default=None, compare=False)  # x's shape, int64


def _prepare(x, fmt, axis, rounding, seed, target, sr_bits=None, random_bits=None) -> _Prepared:
    spec = get_format(fmt)
    mode = parse_enum(Rounding, rounding, "rounding")
    t = resolve_target(x, target)
    if not is_device_array(x):
        check_axis(axis, np.ndim(x) if isinstance(x, np.ndarray) else 0)
    sr = check_sr_bits(sr_bits, mode)
    bits = check_random_bits(random_bits, x.shape if hasattr(x, "shape") else np.shape(x), sr, seed, mode)
    return _Prepared(spec, mode, check_seed(seed, mode), t, sr, bits)


def _run_quantize(arr: np.ndarray, prep: _Prepared, sink: np.ndarray | None = None) -> np.ndarray:
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty_like(flat) if sink is None else sink.reshape(-1)
    args = (prep.seed, prep.target, out, prep.sr_bits, prep.random_bits)
    return quantize_flat(flat, prep.fmt, prep.mode, *args).reshape(arr.shape)


def quantize(
    x,
    fmt,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    target=None,
    out: np.ndarray | None = None,
    stream=0,
    sr_bits: int | None = None,
    random_bits=None,
):
    """Fake-quantize: round every element of `x` to `fmt` and return the values.

    x:        array-like of real numbers. float32 in gives float32 out; float64 (and integer)
              in gives float64 out, rounded directly from float64; float16 is widened to float32.
              Block, codebook and grid formats compute in float32 and return float32.
              A CUDA device array gives a device array.
    fmt:      a format name or spec (see `lowbit.get_format`).
    axis:     the block axis; element formats have no blocks and ignore it.
    rounding: 'rne' (default), 'rtz', 'rna', 'rup', 'rdown' or 'stochastic'.
    seed:     seed of stochastic rounding; the same seed gives the same result on every target.
    sr_bits:  random bits per element of stochastic rounding, 1 to 62: the remainder below the
              rounding point is cut to its top sr_bits bits, t = floor(rem * 2^r / 2^s) (2^s the
              gap between the two neighbours), and the magnitude rounds up (away from zero) iff
              the element's r-bit random number R < t. Element i of x (C order) draws
              R = random62(seed, i) >> (62 - r), also in block formats, whatever the axis.
              None (default): 62 random bits as before sr_bits existed (for block formats drawn
              in the order of the blocks' rows). Codebook and grid elements take the rule with
              the gap between neighbouring table values as the step (host.stochastic).
    random_bits: the random numbers themselves instead of a seed (then seed must be None and
              sr_bits given): an integer array of x's shape with values in [0, 2^sr_bits); the
              element at index i of x rounds with random_bits[i], also in block formats (their
              elements move into blocks along `axis` and are padded; each keeps its number).
    target:   'cpu', 'cuda' or None (CUDA for device arrays, else CPU).
    out:      a NumPy array of the result's shape and dtype to write into, and return (host
              input only). Reusing one saves allocating, and first touching, a new array per
              call; `out` may be `x` itself.
    stream:   for device input, the Numba CUDA stream the element kernels run on (0: the default
              stream); lowbit.torch passes torch's current stream.

    NaN stays NaN, also for formats without a NaN code (ml_dtypes returns a number there).
    """
    with threads_for(_size(x)):
        prep = _prepare(x, fmt, axis, rounding, seed, target, sr_bits, random_bits)
        return _quantize(x, prep, axis, out, stream)


def _size(x) -> int:
    """Elements of x, for the thread count (a list or scalar counts as small)."""
    size = getattr(x, "size", 0)
    return size if isinstance(size, (int, np.integer)) else 0


def _quantize(x, prep: _Prepared, axis, out, stream):
    blocked = isinstance(prep.fmt, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat))
    if is_device_array(x) and not blocked:
        if out is not None:
            raise TypeError("out: device input returns a new device array; out is for host arrays")
        return quantize_device(x, prep.fmt, prep.mode, prep.seed, stream, prep.sr_bits, prep.random_bits)
    arr = float32_host(x) if blocked else host_float_array(x)
    sink = _sink(out, arr)
    result = _quantize_blocked(arr, prep, axis, sink) if blocked else _run_quantize(arr, prep, sink)
    if out is None:
        return result
    if not np.may_share_memory(result, out):  # the result was computed apart
        np.copyto(out, result)
    return out


def _sink(out, arr: np.ndarray) -> np.ndarray | None:
    """`out` checked against the result (arr's shape and dtype), when kernels may write into it
    directly: C-contiguous and not overlapping the input. None otherwise (then the result is
    computed apart and copied in)."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != arr.shape:
        raise ValueError(f"out has shape {out.shape}; the result has shape {arr.shape}")
    if out.dtype != arr.dtype:
        raise TypeError(f"out has dtype {out.dtype}; the result has dtype {arr.dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if not out.flags.c_contiguous or np.may_share_memory(out, arr):
        return None
    return out


def encode(
    x,
    fmt,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    nan: NanPolicy | str = "raise",
    target=None,
    sr_bits: int | None = None,
    random_bits=None,
) -> Encoded:
    """Encode `x` to codes of `fmt` (same rounding as `quantize`, sr_bits and random_bits included).

    nan: for a format without a NaN code, NaN input raises ValueError ('raise', default) or is
         encoded as code 0 ('zero'). Formats with NaN encode it as their quiet NaN with the
         input's sign. Block formats encode a block holding NaN or Inf with a NaN scale; a
         double-quantized one (nf4_dq) has none, so 'zero' encodes that block as zeros.
    """
    with threads_for(_size(x)):
        return _encode(x, _prepare(x, fmt, axis, rounding, seed, target, sr_bits, random_bits), axis, nan)


def _encode(x, prep: _Prepared, axis, nan) -> Encoded:
    policy = parse_enum(NanPolicy, nan, "nan")
    if isinstance(prep.fmt, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
        return _encode_blocked(x, prep, axis, policy)
    if is_device_array(x):
        x = x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x)
    arr = host_float_array(x)
    spec = prep.fmt
    if not spec.has_nan and policy is NanPolicy.RAISE and np.isnan(arr).any():
        raise ValueError(
            f"x contains NaN and format {spec.name or spec!r} has no NaN code; pass nan='zero' to "
            "encode NaN as zero, or use quantize, which keeps NaN"
        )
    codes = encode_values(arr, spec, prep.mode, prep.seed, policy, prep.target, prep.sr_bits, prep.random_bits)
    return Encoded(codes=codes, format=spec, shape=tuple(arr.shape))


def decode(enc: Encoded | np.ndarray, fmt=None, *, dtype=np.float32, target=None) -> np.ndarray:
    """Values of encoded data: `decode(encoded)` or `decode(codes, fmt)`.

    dtype: float32 (default; exact for every catalog format) or float64 (needed only for a
    custom format whose range reaches past float32's).
    An Encoded is checked against its format first (`check_encoded`): a field that does not fit
    (codes out of range, a wrong scale shape, a missing tensor scale or block axis) raises
    ValueError, or TypeError for a wrong type, naming the field.
    """
    out_dtype = _out_dtype(dtype)
    if isinstance(enc, Encoded):
        if fmt is not None:
            raise TypeError("decode: pass fmt only with raw codes; an Encoded carries its format")
        check_encoded(enc)
        if isinstance(enc.format, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
            return _decode_blocked(enc).astype(out_dtype)
        codes, spec = np.asarray(enc.codes), enc.format
    else:
        if fmt is None:
            raise TypeError("decode: raw codes need fmt, e.g. decode(codes, 'float8_e4m3fn')")
        codes, spec = np.asarray(enc), get_format(fmt)
        if isinstance(spec, (ScaledFormat, VectorCodebookFormat)):
            raise TypeError(
                "decode: a block-scaled or vector format needs its layout; pass the Encoded that encode returned"
            )
        if isinstance(spec, (CodebookFormat, GridFormat)):
            return _codebook_values(codes, spec).astype(out_dtype)
    return decode_values(codes, spec, out_dtype, host_target(target))


def _out_dtype(dtype) -> np.dtype:
    try:
        out = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype: float32 or float64, got {dtype!r} ({err})") from None
    if out not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {out}")
    return out


def bits_per_element(fmt, block_elems: int | None = None) -> float:
    """Storage in bits per element, scales included (an element format has none): the format
    spec's own `bits_per_element` (see there for block_elems). The NVFP4 tensor scale (32 bits
    per tensor) is not counted."""
    return get_format(fmt).bits_per_element(block_elems)


# ----- block-scaled and codebook formats -----------------------------------------------------


def _rounder(prep: _Prepared, shape: tuple[int, ...], lay=None) -> ElementRounding:
    """The element rounding of a block or codebook format. With sr_bits, each element's random
    number is that of its index in x (C order: given, or drawn from the seed), moved into the
    blocks' rows by `lay` (padding gets 0); without sr_bits the kernels draw in row order."""
    bits = prep.random_bits
    if bits is None and prep.sr_bits and prep.mode is Rounding.STOCHASTIC:
        bits = draw_bits(prep.seed, prep.sr_bits, int(np.prod(shape)), prep.target).reshape(shape)
    if bits is not None and lay is not None:
        bits = lay.to_rows(bits)
    return ElementRounding(prep.mode, prep.seed, prep.target, prep.sr_bits, bits)


def _nearest_only(prep: _Prepared) -> None:
    if prep.mode is not Rounding.RNE:
        raise ValueError(
            f"rounding: vector codebooks take the nearest point only ('rne'), got {prep.mode.name.lower()!r}"
        )


def _quantize_blocked(arr: np.ndarray, prep: _Prepared, axis, sink: np.ndarray | None = None) -> np.ndarray:
    if isinstance(prep.fmt, VectorCodebookFormat):
        _nearest_only(prep)
        lay = layout(arr.shape, prep.fmt, axis)
        rows = lay.to_rows(arr)
        values = prep.fmt.table[prep.fmt.nearest(rows)]
        values[np.isnan(rows).any(axis=1)] = np.nan
        return lay.from_rows(values)
    if isinstance(prep.fmt, (CodebookFormat, GridFormat)):
        rnd = _rounder(prep, arr.shape)
        fused = quantize_codebook(arr, prep.fmt, rnd, sink)  # one kernel pass, or None
        if fused is not None:
            return fused
        values = round_elements(arr, prep.fmt, rnd, False)[0].reshape(arr.shape)
        return np.where(np.isnan(arr), np.float32(np.nan), values).astype(np.float32)  # NaN stays NaN
    lay = layout(arr.shape, prep.fmt, axis)
    tiled = quantize_tiles(arr, lay, prep.fmt, prep.mode, prep.target, sink)  # 2-D tiles in place, or None
    if tiled is not None:
        return tiled
    rows = lay.to_rows(arr)
    direct = sink is not None and lay.rows_are_input
    out_rows = sink.reshape(rows.shape) if direct else None
    rnd = _rounder(prep, arr.shape, lay)
    return lay.from_rows(quantize_rows(rows, prep.fmt, rnd, False, out_rows).values)


def _codebook_values(codes: np.ndarray, spec: CodebookFormat | GridFormat) -> np.ndarray:
    check_codes(codes, spec.n_codes, f"a codebook of {spec.n_codes} values")
    return spec.table[codes.astype(np.int64)]


def _encode_blocked(x, prep: _Prepared, axis, policy: NanPolicy) -> Encoded:
    arr = float32_host(x)
    spec = prep.fmt
    if isinstance(spec, VectorCodebookFormat):
        _nearest_only(prep)
        if policy is NanPolicy.RAISE and np.isnan(arr).any():
            raise ValueError(f"x contains NaN and codebook {spec.name or 'format'!r} has no NaN code; pass nan='zero'")
        lay = layout(arr.shape, spec, axis)
        codes = spec.nearest(np.nan_to_num(lay.to_rows(arr), nan=0.0)).astype(spec.code_dtype)
        return Encoded(codes.reshape(lay.blocks_shape), spec, tuple(arr.shape), meta={"axis": lay.axis})
    if isinstance(spec, (CodebookFormat, GridFormat)):
        if policy is NanPolicy.RAISE and np.isnan(arr).any():
            raise ValueError(f"x contains NaN and codebook {spec.name or 'format'!r} has no NaN code; pass nan='zero'")
        codes = round_elements(np.nan_to_num(arr, nan=0.0), spec, _rounder(prep, arr.shape), True)[1]
        return Encoded(codes=codes.reshape(arr.shape), format=spec, shape=tuple(arr.shape))
    if not spec.has_nan and policy is NanPolicy.RAISE and not np.isfinite(arr).all():
        raise ValueError(
            f"x contains NaN or Inf, which make their block NaN, and format {spec.name or 'format'!r} has "
            "no NaN scale (double-quantized scales are all numbers); pass nan='zero' to encode such blocks as zeros"
        )
    lay = layout(arr.shape, spec, axis)
    b = quantize_rows(lay.to_rows(arr), spec, _rounder(prep, arr.shape, lay), True)
    meta = {"axis": lay.axis}
    if b.scale_state is not None:
        dq_codes, meta["dq_absmax"], meta["dq_offset"] = b.scale_state
        scales = dq_codes.reshape(*lay.blocks_shape, 1)
    else:
        scales = scale_codes(b.scales, spec).reshape(*lay.blocks_shape, spec.scales_per_block)
    if spec.scales_per_block == 1:
        scales = scales[..., 0]
    return Encoded(
        codes=lay.from_rows(b.codes),
        format=spec,
        shape=tuple(arr.shape),
        scales=scales,
        tensor_scale=None if b.tensor_scale is None else float(b.tensor_scale),
        meta=meta,
        micro=None if b.micro is None else b.micro.reshape(*lay.blocks_shape, sub_blocks(spec)),
    )


def _decode_blocked(enc: Encoded) -> np.ndarray:
    spec = enc.format
    if isinstance(spec, VectorCodebookFormat):
        lay = layout(tuple(enc.shape), spec, enc.meta["axis"])
        return lay.from_rows(spec.table[np.asarray(enc.codes).reshape(-1).astype(np.int64)])
    if isinstance(spec, (CodebookFormat, GridFormat)):
        return _codebook_values(np.asarray(enc.codes), spec)
    lay = layout(tuple(enc.shape), spec, enc.meta["axis"])
    if isinstance(spec.scale, DoubleQuant):
        codes = np.asarray(enc.scales).reshape(-1)
        absmax = np.asarray(enc.meta["dq_absmax"], np.float32)
        scales = dq_values(codes, absmax, np.float32(enc.meta["dq_offset"]), spec.scale).reshape(-1, 1)
    else:
        scales = scale_values(np.asarray(enc.scales), spec).reshape(-1, spec.scales_per_block)
    micro = None if enc.micro is None else np.asarray(enc.micro).reshape(scales.shape[0], sub_blocks(spec))
    rows = dequantize_rows(lay.to_rows(np.asarray(enc.codes)), scales, enc.tensor_scale, spec, micro)
    return lay.from_rows(rows)
