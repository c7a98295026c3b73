"""A small reader of the .safetensors format: an 8-byte little-endian header length, a JSON header of
{name: {dtype, shape, data_offsets}}, then the tensors' raw little-endian bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8}  # fmt: skip


def header(path: Path) -> dict:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


def _decode(raw: bytes, info: dict) -> np.ndarray:
    if info["dtype"] == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
    if info["dtype"] not in DTYPES:
        raise ValueError(f"safetensors: dtype {info['dtype']} is not supported")
    return np.frombuffer(raw, np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")).reshape(info["shape"])


def read_tensor(path: str | Path, name: str) -> np.ndarray:
    """One tensor of a .safetensors file."""
    path = Path(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
        if name not in head:
            names = sorted(k for k in head if k != "__metadata__")
            raise ValueError(f"safetensors: no tensor {name!r} in {path.name}; it has {names[:10]}")
        start, end = head[name]["data_offsets"]
        f.seek(8 + n + start)
        return _decode(f.read(end - start), head[name])


def read_all(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, by name."""
    path = Path(path)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in head.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = _decode(data[8 + n + start : 8 + n + end], info)
    return out
