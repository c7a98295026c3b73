"""Workload files checked before a study runs: each exists, is a readable regular file, and has a
header that describes the numeric tensor the runner will read.

- `.npy`: the magic string, then a version 1.0, 2.0 or 3.0 header (NumPy's own parser, header at most
  10,000 bytes); a numeric dtype (no Python objects: a pickled array is refused), a non-empty shape,
  and data that the file holds in full.
- `.safetensors`: an 8-byte little-endian header length of at most MAX_SAFETENSORS_HEADER bytes, a JSON
  object of that length, and the named tensor in it with a supported dtype, a shape and data offsets
  whose span matches the shape and lies inside the file.
Each check raises ValueError with a message that starts with what is wrong (the caller names the path).
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ..models.safetensors import DTYPES
from .errors import clip, echo

MAX_SAFETENSORS_HEADER = 16 << 20  # 16 MiB: a large checkpoint's header is well under 1 MiB
SAFETENSORS_ITEMSIZE = {**{name: np.dtype(t).itemsize for name, t in DTYPES.items()}, "BF16": 2}


def resolve_input(path: str, base: Path) -> Path:
    """A workload path: absolute as given, else relative to `base` (the study file's folder)."""
    p = Path(path)
    return p if p.is_absolute() else base / p


def _open_regular(path: Path):
    """The file opened for reading, or ValueError: missing, a folder or device, unreadable."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ValueError(f"cannot read the file at {clip(str(path))} ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):  # a FIFO would block, a device would never end
        raise ValueError(f"{clip(str(path))} is not a regular file")
    try:
        return open(path, "rb")
    except OSError as err:
        raise ValueError(f"cannot read the file at {clip(str(path))} ({err.strerror or err})") from None


def check_npy(path: Path) -> None:
    """ValueError unless `path` is a .npy file of a non-empty numeric array, held in full."""
    with _open_regular(path) as f:
        try:
            version = npy_format.read_magic(f)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"version {version[0]}.{version[1]}; NumPy writes 1.0, 2.0 and 3.0")
            # 3.0 differs from 2.0 only in a UTF-8 header, which numeric dtypes never need
            read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read(f)
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            raise ValueError(f"not a valid .npy file ({clip(str(err))})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError("holds Python objects (a pickled array); lowbit reads numeric arrays only")
    if dtype.kind not in "fiu":
        raise ValueError(f"needs a numeric (float or integer) array, got dtype {clip(str(dtype))}")
    size = math.prod(shape)
    if size == 0:
        raise ValueError(f"holds an empty array (shape {shape})")
    need = offset + size * dtype.itemsize
    have = os.stat(path).st_size
    if have < need:
        raise ValueError(f"truncated: shape {shape} of {dtype} needs {need:,} bytes, the file has {have:,}")


def _safetensors_header(f, size: int) -> dict:
    raw = f.read(8)
    if len(raw) < 8:
        raise ValueError(f"not a valid .safetensors file (it has {size} bytes, fewer than the 8 of its length)")
    n = int.from_bytes(raw, "little")
    if n > MAX_SAFETENSORS_HEADER:
        raise ValueError(f"not a valid .safetensors file: header length {n:,} is over the cap of "
                         f"{MAX_SAFETENSORS_HEADER:,} bytes")  # fmt: skip
    if 8 + n > size:
        raise ValueError(f"truncated: header length {n:,} runs past the end of the {size:,}-byte file")
    try:
        head = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"not a valid .safetensors file: its header is not JSON ({clip(str(err))})") from None
    if not isinstance(head, dict):
        raise ValueError(f"not a valid .safetensors file: its header is a JSON {type(head).__name__}, not an object")
    return head


def _check_entry(info: object, tensor: str, data_bytes: int) -> None:
    """ValueError unless `info` describes a tensor of a supported dtype held in the data section."""
    where = f"tensor {echo(tensor)}"
    if not isinstance(info, dict):
        raise ValueError(f"{where}: its header entry is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_ITEMSIZE:
        raise ValueError(f"{where}: dtype {echo(dtype)} is not supported ({', '.join(SAFETENSORS_ITEMSIZE)})")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"{where}: shape {echo(shape)} is not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):  # fmt: skip
        raise ValueError(f"{where}: data_offsets {echo(offsets)} are not [start, end]")
    if math.prod(shape) == 0:
        raise ValueError(f"{where}: is empty (shape {shape})")
    if offsets[1] - offsets[0] != math.prod(shape) * SAFETENSORS_ITEMSIZE[dtype]:
        raise ValueError(f"{where}: data_offsets {offsets} span {offsets[1] - offsets[0]:,} bytes; shape {shape} "
                         f"of {dtype} needs {math.prod(shape) * SAFETENSORS_ITEMSIZE[dtype]:,}")  # fmt: skip
    if offsets[1] > data_bytes:
        raise ValueError(f"{where}: truncated: its data ends at byte {offsets[1]:,} of a {data_bytes:,}-byte "
                         "data section")  # fmt: skip


class MissingTensorError(ValueError):
    """A .safetensors file that is sound but lacks the named tensor (the `tensor` key is at fault)."""


def check_safetensors(path: Path, tensor: str) -> None:
    """ValueError unless `path` is a .safetensors file whose header holds `tensor`, and the file its data
    (MissingTensorError when the file is sound and only the tensor is missing)."""
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = _safetensors_header(f, size)
        n = f.tell() - 8
    if tensor == "__metadata__" or tensor not in head:
        names = sorted(k for k in head if k != "__metadata__")
        raise MissingTensorError(f"no tensor {echo(tensor)} in {clip(path.name)}; it has {clip(str(names[:10]))}")
    _check_entry(head[tensor], tensor, size - 8 - n)
