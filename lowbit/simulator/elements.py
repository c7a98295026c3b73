"""Public element-format API: quantize, encode, decode, bits_per_element.

Everything a user passes is checked here, on the host, before any kernel runs; kernels only
see validated integer views of contiguous arrays and a parameter vector.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field

import numpy as np

from ..formats import (
    CodebookFormat,
    DoubleQuant,
    ElementFormat,
    GridFormat,
    IntFormat,
    ScaledFormat,
    VectorCodebookFormat,
    get_format,
)
from .packing import BitOrder, pack_codes
from .params import NanPolicy, fast_params, kernel_params
from .rounding import Rounding

_MAX_SEED = (1 << 63) - 1
_EXACT_INT_LIMIT = 1 << 53


class Target(enum.Enum):
    """Where a kernel runs. AUTO: CUDA for device arrays, the CPU otherwise."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"

    @classmethod
    def parse(cls, value: Target | str | None) -> Target:
        if value is None:
            return cls.AUTO
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.lower() in {m.value for m in cls}:
            return cls(value.lower())
        raise ValueError(f"target must be one of 'auto', 'cpu', 'cuda', got {value!r}")


@dataclass(frozen=True)
class Encoded:
    """Codes of an encoded array.

    codes:        element codes (uint8 for formats of up to 8 bits, else uint16), shape `shape`.
    format:       the format spec.
    scales:       codes of the block scales (None for element and codebook formats): shape of x
                  with the block axis moved last and counted in blocks, plus a last axis of 2 for
                  asymmetric formats ([scale, zero point] or [positive, negative scale]). An
                  exact-float32 scale's code is its IEEE bit pattern (uint32).
    tensor_scale: the per-tensor scale in the decode direction (NVFP4: 1 / S_enc), else None.
    meta:         {"axis": the block axis used}; double-quantized scales add "dq_absmax" (fp32
                  per group of scales) and "dq_offset" (the fp32 mean).
    """

    codes: np.ndarray
    format: ElementFormat
    shape: tuple[int, ...]
    scales: np.ndarray | None = None
    tensor_scale: float | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def packed(self, order: BitOrder | str | None = None) -> bytes:
        """The element codes as a byte string, `format.bits` bits each, in C order.

        order: LSB_FIRST puts the first element in the lowest bits of the first byte (4-bit
        codes: the low nibble, as OCP MX and NVFP4 do); MSB_FIRST puts it in the highest bits
        (bitsandbytes' NF4 layout). None (default) uses the format's own layout: MSB_FIRST for
        codebook elements (bitsandbytes), LSB_FIRST otherwise. 16-bit codes are little-endian.
        Scales are not included: they are `scales`, one code per block.
        """
        if order is None:
            element = self.format.element if isinstance(self.format, ScaledFormat) else self.format
            order = BitOrder.MSB_FIRST if isinstance(element, CodebookFormat) else BitOrder.LSB_FIRST
        return pack_codes(self.codes, self.format.bits, order).tobytes()


def _is_device_array(x) -> bool:
    # Numba's device arrays carry __cuda_ndarray__ (also in the CUDA simulator); other libraries'
    # device arrays carry the CUDA array interface.
    if isinstance(x, np.ndarray):
        return False
    return hasattr(x, "__cuda_array_interface__") or hasattr(x, "__cuda_ndarray__")


def _host_float_array(x) -> np.ndarray:
    """x as a float32 or float64 ndarray holding exactly the same values."""
    if isinstance(x, (list, tuple)) or np.isscalar(x) or hasattr(x, "__array__"):
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise TypeError(f"x: cannot convert to a numeric array ({err})") from None
    else:
        raise TypeError(f"x must be an array or array-like of real numbers, got {type(x).__name__}")
    kind = arr.dtype.kind
    if arr.dtype in (np.float32, np.float64):
        return arr
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    if kind in "iu":
        if arr.dtype.itemsize >= 8 and arr.size and np.abs(arr).max() > _EXACT_INT_LIMIT:
            raise ValueError("x: 64-bit integers above 2^53 are not exact in float64; convert them yourself")
        return arr.astype(np.float64)
    if arr.dtype.type.__module__ == "ml_dtypes" and arr.dtype.itemsize <= 2:
        # ml_dtypes' narrow types (bfloat16, float8_*, int4, ...) are exact in float32.
        return arr.astype(np.float32)
    raise TypeError(
        f"x: dtype {arr.dtype} is not supported; pass float16, float32, float64 or integer data "
        "(object, bool, complex and string arrays are refused)"
    )


def _bits_view(flat):
    """Integer view of a contiguous float32/float64 array and its IEEE (mantissa, exponent) bits."""
    if flat.dtype == np.float32:
        return flat.view(np.int32), 23, 8
    return flat.view(np.int64), 52, 11


def _check_axis(axis, ndim: int) -> None:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if ndim and not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} dimensions")


def _check_seed(seed, rounding: Rounding) -> int:
    if seed is None:
        return secrets.randbits(63) if rounding is Rounding.STOCHASTIC else 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2^63 - 1], got {seed}")
    return int(seed)


def _resolve_target(x, target) -> Target:
    t = Target.parse(target)
    if t is Target.AUTO:
        return Target.CUDA if _is_device_array(x) else Target.CPU
    if t is Target.CPU and _is_device_array(x):
        raise ValueError("target='cpu' was given a CUDA device array; copy it to the host first")
    return t


def _cpu():
    from .cpu import cpu_drivers

    return cpu_drivers()


def _run_cuda(kernel_name: str, n: int, inputs: tuple, out: np.ndarray) -> np.ndarray:
    """Copy array inputs to the device, run the named CUDA driver over n elements, copy out back."""
    from numba import cuda

    from .cuda import cuda_drivers, launch

    args = [cuda.to_device(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a for a in inputs]
    d_out = cuda.device_array_like(out)
    launch(getattr(cuda_drivers(), kernel_name), n)(*args, d_out)
    return d_out.copy_to_host()


@dataclass(frozen=True)
class _Prepared:
    fmt: ElementFormat
    mode: Rounding
    seed: int
    target: Target


def _prepare(x, fmt, axis, rounding, seed, target) -> _Prepared:
    spec = get_format(fmt)
    mode = Rounding.parse(rounding)
    t = _resolve_target(x, target)
    if not _is_device_array(x):
        _check_axis(axis, np.ndim(x) if isinstance(x, np.ndarray) else 0)
    return _Prepared(spec, mode, _check_seed(seed, mode), t)


def _fast(flat: np.ndarray, prep: _Prepared, for_encode: bool) -> np.ndarray | None:
    """Parameters of the vectorized float32 round-to-nearest-even path, when it applies."""
    if flat.dtype != np.float32 or prep.mode is not Rounding.RNE:
        return None
    return fast_params(prep.fmt, for_encode)


def _run_quantize(arr: np.ndarray, prep: _Prepared, sink: np.ndarray | None = None) -> np.ndarray:
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.empty_like(flat) if sink is None else sink.reshape(-1)
    if flat.size == 0:
        return out.reshape(arr.shape)
    fast = _fast(flat, prep, for_encode=False)
    if fast is not None:
        if prep.target is Target.CUDA:
            return _run_cuda("quantize_fast", flat.size, (flat, fast), out).reshape(arr.shape)
        quantize_cpu = _cpu().quantize_int if isinstance(prep.fmt, IntFormat) else _cpu().quantize_float
        quantize_cpu(flat, fast, out)
        return out.reshape(arr.shape)
    bits, in_m, in_e = _bits_view(flat)
    p = kernel_params(prep.fmt)
    table = np.asarray(prep.fmt.values, dtype=np.float64)
    args = (in_m, in_e, p, int(prep.mode), prep.seed)
    if prep.target is Target.CUDA:
        out = _run_cuda("quantize", flat.size, (bits, *args, table), out)
    else:
        _cpu().quantize(bits, *args, table, out)
    return out.reshape(arr.shape)


def _run_quantize_device(x, prep: _Prepared):
    from numba import cuda

    d = x if hasattr(x, "__cuda_ndarray__") else cuda.as_cuda_array(x)
    if d.dtype not in (np.float32, np.float64):
        raise TypeError(f"x: device arrays must be float32 or float64, got {d.dtype}")
    if not d.is_c_contiguous():
        raise ValueError("x: device arrays must be C-contiguous")
    flat = d.reshape(d.size)
    out = cuda.device_array(d.size, dtype=d.dtype)
    fast = fast_params(prep.fmt, False) if d.dtype == np.float32 and prep.mode is Rounding.RNE else None
    if d.size and fast is not None:
        from .cuda import cuda_drivers, launch

        launch(cuda_drivers().quantize_fast, d.size)(flat, cuda.to_device(fast), out)
    elif d.size:
        in_m, in_e = (23, 8) if d.dtype == np.float32 else (52, 11)
        bits = flat.view(np.int32 if d.dtype == np.float32 else np.int64)
        table = cuda.to_device(np.asarray(prep.fmt.values, dtype=np.float64))
        p = cuda.to_device(kernel_params(prep.fmt))
        from .cuda import cuda_drivers, launch

        launch(cuda_drivers().quantize, d.size)(bits, in_m, in_e, p, int(prep.mode), prep.seed, table, out)
    return out.reshape(d.shape)


def quantize(
    x,
    fmt,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    target=None,
    out: np.ndarray | None = None,
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
    target:   'cpu', 'cuda' or None (CUDA for device arrays, else CPU).
    out:      a NumPy array of the result's shape and dtype to write into, and return (host
              input only). Reusing one saves allocating, and first touching, a new array per
              call; `out` may be `x` itself.

    NaN stays NaN, also for formats without a NaN code (ml_dtypes returns a number there).
    """
    prep = _prepare(x, fmt, axis, rounding, seed, target)
    blocked = isinstance(prep.fmt, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat))
    if _is_device_array(x) and not blocked:
        if out is not None:
            raise TypeError("out: device input returns a new device array; out is for host arrays")
        return _run_quantize_device(x, prep)
    arr = _float32_host(x) if blocked else _host_float_array(x)
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
) -> Encoded:
    """Encode `x` to codes of `fmt` (same rounding as `quantize`).

    nan: for a format without a NaN code, NaN input raises ValueError ('raise', default) or is
         encoded as code 0 ('zero'). Formats with NaN encode it as their quiet NaN with the
         input's sign.
    """
    prep = _prepare(x, fmt, axis, rounding, seed, target)
    policy = NanPolicy.parse(nan)
    if isinstance(prep.fmt, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
        return _encode_blocked(x, prep, axis, policy)
    if _is_device_array(x):
        x = x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x)
    arr = _host_float_array(x)
    spec = prep.fmt
    if not spec.has_nan and policy is NanPolicy.RAISE and np.isnan(arr).any():
        raise ValueError(
            f"x contains NaN and format {spec.name or spec!r} has no NaN code; pass nan='zero' to "
            "encode NaN as zero, or use quantize, which keeps NaN"
        )
    flat = np.ascontiguousarray(arr).reshape(-1)
    codes = np.empty(flat.size, dtype=spec.code_dtype)
    fast = _fast(flat, prep, for_encode=True)
    if flat.size and fast is not None and prep.target is Target.CPU:
        _cpu().encode_fast(flat, fast, kernel_params(spec, policy), codes)
    elif flat.size:
        bits, in_m, in_e = _bits_view(flat)
        args = (bits, in_m, in_e, kernel_params(spec, policy), int(prep.mode), prep.seed)
        if prep.target is Target.CUDA:
            codes = _run_cuda("encode", flat.size, args, codes)
        else:
            _cpu().encode(*args, codes)
    return Encoded(codes=codes.reshape(arr.shape), format=spec, shape=tuple(arr.shape))


def decode(enc: Encoded | np.ndarray, fmt=None, *, dtype=np.float32, target=None) -> np.ndarray:
    """Values of encoded data: `decode(encoded)` or `decode(codes, fmt)`.

    dtype: float32 (default; exact for every catalog format) or float64 (needed only for a
    custom format whose range reaches past float32's).
    """
    if isinstance(enc, Encoded):
        if fmt is not None:
            raise TypeError("decode: pass fmt only with raw codes; an Encoded carries its format")
        if isinstance(enc.format, (ScaledFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
            return _decode_blocked(enc).astype(np.dtype(dtype))
        codes, spec = enc.codes, enc.format
    else:
        if fmt is None:
            raise TypeError("decode: raw codes need fmt, e.g. decode(codes, 'float8_e4m3fn')")
        codes, spec = np.asarray(enc), get_format(fmt)
        if isinstance(spec, (ScaledFormat, VectorCodebookFormat)):
            raise TypeError(
                "decode: a block-scaled or vector format needs its layout; pass the Encoded that encode returned"
            )
        if isinstance(spec, (CodebookFormat, GridFormat)):
            return _codebook_values(codes, spec).astype(np.dtype(dtype))
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {out_dtype}")
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= spec.n_codes):
        raise ValueError(f"codes must lie in [0, {spec.n_codes - 1}] for a {spec.bits}-bit format")
    flat = np.ascontiguousarray(codes).reshape(-1).astype(np.int64)
    out = np.empty(flat.size, dtype=out_dtype)
    if flat.size:
        table = np.asarray(spec.values, dtype=np.float64)
        if Target.parse(target) is Target.CUDA:
            out = _run_cuda("decode", flat.size, (flat, table), out)
        else:
            _cpu().decode(flat, table, out)
    return out.reshape(codes.shape)


def bits_per_element(fmt, block_elems: int | None = None) -> float:
    """Storage in bits per element, scales included (an element format has none).

    block_elems: elements per scale for per-channel and per-tensor formats (the axis length or
    the tensor size); block formats with a fixed block ignore it. The NVFP4 tensor scale (32 bits
    per tensor) is not counted.
    """
    spec = get_format(fmt)
    if isinstance(spec, ScaledFormat):
        return spec.bits_per_element(block_elems)
    if isinstance(spec, VectorCodebookFormat) and block_elems is None:
        return spec.bits_per_element
    if isinstance(spec, (CodebookFormat, GridFormat)) and block_elems is None:
        return float(spec.bits)
    if block_elems is not None:
        raise ValueError(f"block_elems applies to block-scaled formats; {spec.name or spec!r} is an element format")
    return float(spec.bits)


# ----- block-scaled and codebook formats -----------------------------------------------------


def _float32_host(x, what: str = "x") -> np.ndarray:
    """Block formats compute in float32 (the reference recipes do); float64 is rounded first."""
    if _is_device_array(x):
        x = x.copy_to_host() if hasattr(x, "copy_to_host") else np.asarray(x)
    return np.asarray(_host_float_array(x), dtype=np.float32)


def _rounder(prep: _Prepared):
    from .blocks import ElementRounding

    return ElementRounding(prep.mode, prep.seed, prep.target)


def _nearest_only(prep: _Prepared) -> None:
    if prep.mode is not Rounding.RNE:
        raise ValueError(
            f"rounding: vector codebooks take the nearest point only ('rne'), got {prep.mode.name.lower()!r}"
        )


def _quantize_blocked(arr: np.ndarray, prep: _Prepared, axis, sink: np.ndarray | None = None) -> np.ndarray:
    from .blocks import layout, quantize_rows, round_elements

    if isinstance(prep.fmt, VectorCodebookFormat):
        _nearest_only(prep)
        lay = layout(arr.shape, prep.fmt, axis)
        rows = lay.to_rows(arr)
        values = prep.fmt.table[prep.fmt.nearest(rows)]
        values[np.isnan(rows).any(axis=1)] = np.nan
        return lay.from_rows(values)
    if isinstance(prep.fmt, (CodebookFormat, GridFormat)):
        values = round_elements(arr, prep.fmt, _rounder(prep), False)[0].reshape(arr.shape)
        return np.where(np.isnan(arr), np.float32(np.nan), values).astype(np.float32)  # NaN stays NaN
    lay = layout(arr.shape, prep.fmt, axis)
    rows = lay.to_rows(arr)
    direct = sink is not None and lay.rows_are_input
    out_rows = sink.reshape(rows.shape) if direct else None
    return lay.from_rows(quantize_rows(rows, prep.fmt, _rounder(prep), False, out_rows).values)


def _codebook_values(codes: np.ndarray, spec: CodebookFormat | GridFormat) -> np.ndarray:
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= spec.n_codes):
        raise ValueError(f"codes must lie in [0, {spec.n_codes - 1}] for a codebook of {spec.n_codes} values")
    return spec.table[codes.astype(np.int64)]


def _scale_codes(values: np.ndarray, spec: ScaledFormat) -> np.ndarray:
    if isinstance(spec.scale, DoubleQuant):
        raise TypeError("double-quantized scale codes come with their state; see _encode_blocked")
    if spec.scale is None:
        return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return encode(values.astype(np.float32), spec.scale, nan="zero").codes


def _scale_values(codes: np.ndarray, spec: ScaledFormat) -> np.ndarray:
    if spec.scale is None:
        return np.ascontiguousarray(codes, dtype=np.uint32).view(np.float32)
    return decode(codes, spec.scale)


def _encode_blocked(x, prep: _Prepared, axis, policy: NanPolicy) -> Encoded:
    from .blocks import layout, quantize_rows, round_elements

    arr = _float32_host(x)
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
        codes = round_elements(np.nan_to_num(arr, nan=0.0), spec, _rounder(prep), True)[1]
        return Encoded(codes=codes.reshape(arr.shape), format=spec, shape=tuple(arr.shape))
    lay = layout(arr.shape, spec, axis)
    b = quantize_rows(lay.to_rows(arr), spec, _rounder(prep), True)
    meta = {"axis": lay.axis}
    if b.scale_state is not None:
        dq_codes, meta["dq_absmax"], meta["dq_offset"] = b.scale_state
        scales = dq_codes.reshape(*lay.blocks_shape, 1)
    else:
        scales = _scale_codes(b.scales, spec).reshape(*lay.blocks_shape, spec.scales_per_block)
    if spec.scales_per_block == 1:
        scales = scales[..., 0]
    return Encoded(
        codes=lay.from_rows(b.codes),
        format=spec,
        shape=tuple(arr.shape),
        scales=scales,
        tensor_scale=None if b.tensor_scale is None else float(b.tensor_scale),
        meta=meta,
    )


def _decode_blocked(enc: Encoded) -> np.ndarray:
    from .blocks import dequantize_rows, layout

    spec = enc.format
    if isinstance(spec, VectorCodebookFormat):
        lay = layout(enc.shape, spec, enc.meta.get("axis"))
        return lay.from_rows(spec.table[np.asarray(enc.codes).reshape(-1).astype(np.int64)])
    if isinstance(spec, (CodebookFormat, GridFormat)):
        return _codebook_values(enc.codes, spec)
    lay = layout(enc.shape, spec, enc.meta.get("axis"))
    if isinstance(spec.scale, DoubleQuant):
        from .scales import dq_values

        codes = np.asarray(enc.scales).reshape(-1)
        scales = dq_values(codes, enc.meta["dq_absmax"], enc.meta["dq_offset"], spec.scale).reshape(-1, 1)
    else:
        scales = _scale_values(np.asarray(enc.scales), spec).reshape(-1, spec.scales_per_block)
    rows = dequantize_rows(lay.to_rows(np.asarray(enc.codes)), scales, enc.tensor_scale, spec)
    return lay.from_rows(rows)
