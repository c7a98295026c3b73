"""Bit packing of codes narrower than a byte, with an explicit bit order."""

from __future__ import annotations

import enum

import numpy as np

from ...formats import parse_enum


class BitOrder(enum.Enum):
    """Where the first element goes.

    LSB_FIRST: the codes form a little-endian bit stream; the first code takes the lowest bits of
    the first byte (4-bit codes: first element in the low nibble; OCP MX, NVFP4).
    MSB_FIRST: the first code takes the highest bits (4-bit codes: first element in the high
    nibble; bitsandbytes NF4).
    """

    LSB_FIRST = "lsb_first"
    MSB_FIRST = "msb_first"


def _bit_positions(bits: int, order: BitOrder) -> np.ndarray:
    pos = np.arange(bits, dtype=np.uint16)
    return pos if order is BitOrder.LSB_FIRST else pos[::-1]


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in [1, 16], got {bits!r}")


def pack_codes(codes, bits: int, order: BitOrder | str = BitOrder.LSB_FIRST) -> np.ndarray:
    """Pack integer codes of `bits` bits each (C order) into a uint8 array.

    The last byte is padded with zero bits. 16-bit codes with LSB_FIRST are little-endian words.
    """
    _check_bits(bits)
    order = parse_enum(BitOrder, order, "order")
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {c.dtype}")
    c = c.reshape(-1).astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= 1 << bits):
        raise ValueError(f"codes must lie in [0, {(1 << bits) - 1}] to pack into {bits} bits")
    if order is BitOrder.LSB_FIRST and bits == 8:
        return c.astype(np.uint8)
    stream = ((c[:, None] >> _bit_positions(bits, order)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(stream, bitorder="little" if order is BitOrder.LSB_FIRST else "big")


def unpack_codes(data, bits: int, count: int, order: BitOrder | str = BitOrder.LSB_FIRST) -> np.ndarray:
    """Inverse of `pack_codes`: the first `count` codes (uint8 or uint16) of a packed buffer."""
    _check_bits(bits)
    order = parse_enum(BitOrder, order, "order")
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
    if buf.dtype != np.uint8:
        raise TypeError(f"data must be bytes or a uint8 array, got dtype {buf.dtype}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if count * bits > buf.size * 8:
        raise ValueError(f"data holds {buf.size * 8 // bits} codes of {bits} bits, fewer than count={count}")
    stream = np.unpackbits(buf, count=count * bits, bitorder="little" if order is BitOrder.LSB_FIRST else "big")
    weights = 1 << _bit_positions(bits, order).astype(np.int64)
    codes = (stream.reshape(count, bits).astype(np.int64) * weights).sum(axis=1)
    return codes.astype(np.uint8 if bits <= 8 else np.uint16)
