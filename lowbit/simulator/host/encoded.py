"""`Encoded`, the codes `encode` returns, and `check_encoded`, which `decode` runs first: every
field is checked against the format, so that a doctored or hand-built `Encoded` gets a ValueError
(or TypeError) naming the field, never an IndexError, a broadcast error, wrap-around or NaN."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ...formats import (
    CodebookFormat,
    DoubleQuant,
    ElementFormat,
    FloatFormat,
    GridFormat,
    IntFormat,
    ScaledFormat,
    TensorScale,
    VectorCodebookFormat,
)
from .blocks import Layout, layout
from .packing import BitOrder, pack_codes
from .scales import dq_group

FORMATS = (FloatFormat, IntFormat, CodebookFormat, GridFormat, ScaledFormat, VectorCodebookFormat)


@dataclass(frozen=True)
class Encoded:
    """Codes of an encoded array.

    codes:        element codes (uint8 for formats of up to 8 bits, else uint16), shape `shape`.
    format:       the format spec.
    scales:       codes of the block scales (None for element and codebook formats): shape of x
                  with the block axis moved last and counted in blocks, plus a last axis of 2 for
                  asymmetric formats ([scale, zero point] or [positive, negative scale]). 2-D
                  tiles (`block_rows` > 1, nvfp4_2d) count the axis before the block axis (in the
                  moved shape) in tiles too: x of shape (M, K) with 16 x 16 tiles along K has
                  scales of shape (ceil(M / 16), ceil(K / 16)), partial tiles padded with zeros.
                  An exact-float32 scale's code is its IEEE bit pattern (uint32).
    tensor_scale: the per-tensor scale in the decode direction (NVFP4: 1 / S_enc), else None.
    meta:         {"axis": the block axis used}; double-quantized scales add "dq_absmax" (fp32
                  per group of scales) and "dq_offset" (the fp32 mean).
    micro:        shared micro-exponents (MX9, MX6, MX4; None for other formats): the shift d
                  of each sub-block (uint8, 0 to 2^bits - 1 = `fmt.micro.max_shift`), shape of
                  `scales` plus a last axis of `fmt.block // fmt.micro.block` sub-blocks, in
                  order along the block axis. A block cut short by the end of the axis still has
                  all of them; those past the end are 0 or 1 as padding zeros give. An element's
                  value is its code's value times 2^-d of its sub-block times the block scale.
                  `packed_micro` gives them as bits.
    """

    codes: np.ndarray
    format: ElementFormat
    shape: tuple[int, ...]
    scales: np.ndarray | None = None
    tensor_scale: float | None = None
    meta: dict = field(default_factory=dict, compare=False)
    micro: np.ndarray | None = None

    def packed(self, order: BitOrder | str | None = None) -> bytes:
        """The element codes as a byte string, `format.bits` bits each, in C order.

        order: LSB_FIRST puts the first element in the lowest bits of the first byte (4-bit
        codes: the low nibble, as OCP MX and NVFP4 do); MSB_FIRST puts it in the highest bits
        (bitsandbytes' NF4 layout). None (default) uses the format's own layout: MSB_FIRST for
        codebook elements (bitsandbytes), LSB_FIRST otherwise. 16-bit codes are little-endian.
        Scales are not included: they are `scales`, one code per block; micro-exponents are
        `packed_micro`.
        """
        if order is None:
            element = self.format.element if isinstance(self.format, ScaledFormat) else self.format
            order = BitOrder.MSB_FIRST if isinstance(element, CodebookFormat) else BitOrder.LSB_FIRST
        return pack_codes(self.codes, self.format.bits, order).tobytes()

    def packed_micro(self, order: BitOrder | str = BitOrder.LSB_FIRST) -> bytes:
        """The micro-exponent fields as a byte string, `micro.bits` bits each, in C order of
        `micro` (block by block, sub-blocks in order within a block). With LSB_FIRST (default) and
        MX9/MX6/MX4's eight 1-bit fields per block, a block's fields are one byte: sub-block j
        (elements 2j and 2j + 1 of the block) in bit j. The last byte is padded with zero bits."""
        if self.micro is None:
            raise ValueError(f"packed_micro: format {_name(self.format)} has no micro-exponents")
        return pack_codes(self.micro, self.format.micro.bits, order).tobytes()


def _name(fmt) -> str:
    return fmt.name or fmt.describe()


def _shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"Encoded.shape: a tuple of non-negative integers, got {type(shape).__name__}")
    for n in shape:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"Encoded.shape: a tuple of non-negative integers, got {tuple(shape)!r}")
        if n < 0:
            raise ValueError(f"Encoded.shape: a tuple of non-negative integers, got {tuple(shape)!r}")
    return tuple(int(n) for n in shape)


def _integer_array(value, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: an integer array, got {type(value).__name__} ({err})") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: codes are an integer array, got dtype {arr.dtype}")
    return arr


def _check_shape(arr: np.ndarray, expected: tuple[int, ...], where: str, what: str) -> None:
    if arr.shape != expected:
        raise ValueError(f"{where}: shape {arr.shape} does not match {expected}, {what}")


def _check_range(codes: np.ndarray, n_codes: int, where: str, fmt_name: str) -> None:
    """Every code in [0, n_codes)."""
    if codes.size == 0:
        return
    low, high = int(codes.min()), int(codes.max())
    if low < 0 or high >= n_codes:
        bad = low if low < 0 else high
        raise ValueError(f"{where}: code {bad} is outside [0, {n_codes - 1}] of {fmt_name}")


def _check_codes_of(codes: np.ndarray, fmt, where: str) -> None:
    """Codes of an element format, codebook or grid: in range, and not an integer format's unused
    code (a symmetric integer's most negative one, whose value table holds NaN)."""
    _check_range(codes, fmt.n_codes, where, _name(fmt))
    unused = np.nonzero(np.isnan(fmt.values))[0] if isinstance(fmt, IntFormat) else ()
    if len(unused) and codes.size:
        hit = np.isin(codes, unused)
        if hit.any():
            raise ValueError(f"{where}: code {int(codes[hit].flat[0])} is unused in {_name(fmt)}")


def check_encoded(enc) -> None:
    """Raise ValueError (TypeError for a wrong type) naming the first field of `enc` that does not
    fit its format: codes (dtype, shape, range), scales (presence, shape, range), tensor_scale
    and meta (the block axis, the double-quantization state)."""
    if not isinstance(enc, Encoded):
        raise TypeError(f"decode: an Encoded, got {type(enc).__name__}")
    fmt = enc.format
    if not isinstance(fmt, FORMATS):
        raise TypeError(f"Encoded.format: a format spec, got {type(fmt).__name__}")
    shape = _shape(enc.shape)
    codes = _integer_array(enc.codes, "Encoded.codes")
    lay = _layout(enc, fmt, shape) if isinstance(fmt, (ScaledFormat, VectorCodebookFormat)) else None
    if isinstance(fmt, VectorCodebookFormat):
        _check_shape(codes, lay.blocks_shape, "Encoded.codes", f"one code per {fmt.dim} elements of {shape}")
    else:
        _check_shape(codes, shape, "Encoded.codes", "Encoded.shape")
    _check_codes_of(codes, fmt.element if isinstance(fmt, ScaledFormat) else fmt, "Encoded.codes")
    if isinstance(fmt, ScaledFormat):
        _check_scales(enc, fmt, lay)
        _check_micro(enc, fmt, lay)
    elif enc.scales is not None:
        raise ValueError(f"Encoded.scales: format {_name(fmt)} has no block scales, got an array")
    _check_tensor_scale(enc.tensor_scale, fmt)


def _layout(enc, fmt, shape: tuple[int, ...]) -> Layout:
    """The block layout from meta['axis'], which must be present and an axis of `shape`."""
    meta = enc.meta
    if not isinstance(meta, Mapping):
        raise TypeError(f"Encoded.meta: a dict with the block axis, got {type(meta).__name__}")
    if "axis" not in meta:
        raise ValueError(f"Encoded.meta: 'axis' (the block axis encode used) is missing for {_name(fmt)}")
    axis = meta["axis"]
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"Encoded.meta['axis']: an integer, got {axis!r}")
    per_tensor = isinstance(fmt, ScaledFormat) and fmt.block == 0
    if shape and not per_tensor and not -len(shape) <= axis < len(shape):
        raise ValueError(f"Encoded.meta['axis']: {axis} is out of range for Encoded.shape {shape}")
    return layout(shape, fmt, int(axis))


def _check_scales(enc, fmt: ScaledFormat, lay: Layout) -> None:
    if enc.scales is None:
        raise ValueError(f"Encoded.scales: format {_name(fmt)} needs its block scales, got None")
    scales = _integer_array(enc.scales, "Encoded.scales")
    expected = lay.blocks_shape + ((2,) if fmt.asymmetric else ())
    _check_shape(scales, expected, "Encoded.scales", f"one scale code per block of {lay.block} along the axis")
    if isinstance(fmt.scale, DoubleQuant):
        _check_range(scales, fmt.scale.code.n_codes, "Encoded.scales", "the double-quantization map")
        _check_dq(enc.meta, fmt.scale, scales.size)
    elif fmt.scale is None:
        _check_range(scales, 1 << 32, "Encoded.scales", "float32 bit patterns")
    else:
        _check_codes_of(scales, fmt.scale, "Encoded.scales")


def _check_micro(enc, fmt: ScaledFormat, lay: Layout) -> None:
    """The sub-block shifts: present exactly for micro-exponent formats, one per sub-block of
    every block, each within [0, 2^bits - 1]."""
    if fmt.micro is None:
        if enc.micro is not None:
            raise ValueError(f"Encoded.micro: format {_name(fmt)} has no micro-exponents, got an array")
        return
    if enc.micro is None:
        raise ValueError(f"Encoded.micro: format {_name(fmt)} needs its sub-block micro-exponents, got None")
    micro = _integer_array(enc.micro, "Encoded.micro")
    n_sub = fmt.block // fmt.micro.block
    _check_shape(micro, (*lay.blocks_shape, n_sub), "Encoded.micro", f"{n_sub} micro-exponents per block")
    _check_range(micro, fmt.micro.max_shift + 1, "Encoded.micro", f"{fmt.micro.bits}-bit micro-exponents")


def _check_dq(meta: Mapping, dq: DoubleQuant, n_scales: int) -> None:
    for key in ("dq_absmax", "dq_offset"):
        if key not in meta:
            raise ValueError(f"Encoded.meta: {key!r} (the double-quantization state) is missing")
    absmax = np.asarray(meta["dq_absmax"])
    if absmax.dtype.kind != "f":
        raise TypeError(f"Encoded.meta['dq_absmax']: float32 values, got dtype {absmax.dtype}")
    groups = -(-n_scales // dq_group(dq, n_scales))
    if absmax.shape != (groups,):
        raise ValueError(
            f"Encoded.meta['dq_absmax']: shape {absmax.shape} does not match ({groups},), one per group of "
            f"{dq.block} scales"
        )
    if not np.isfinite(absmax).all():
        raise ValueError("Encoded.meta['dq_absmax']: values must be finite")
    offset = meta["dq_offset"]
    if isinstance(offset, (bool, np.bool_)) or not isinstance(offset, (int, float, np.integer, np.floating)):
        raise TypeError(f"Encoded.meta['dq_offset']: a number, got {offset!r}")
    if not np.isfinite(offset):
        raise ValueError(f"Encoded.meta['dq_offset']: a finite number, got {offset!r}")


def _check_tensor_scale(value, fmt) -> None:
    needs = isinstance(fmt, ScaledFormat) and fmt.tensor_scale is TensorScale.NVFP4
    if not needs:
        if value is not None:
            raise ValueError(f"Encoded.tensor_scale: format {_name(fmt)} has no tensor scale, got {value!r}")
        return
    if value is None:
        raise ValueError(f"Encoded.tensor_scale: format {_name(fmt)} needs its tensor scale (1 / S_enc), got None")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Encoded.tensor_scale: a number, got {type(value).__name__} {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"Encoded.tensor_scale: a finite positive number, got {value!r}")
