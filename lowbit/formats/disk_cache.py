"""Codebooks that take seconds to construct (AF4, BOF4, BOF4-S, Lloyd-Max), kept on disk between runs.

Each construction is a file of its own, named by what it was built from (the construction's name and
parameters) and lowbit's version, since a new version may change a construction. The values are
stored as exact hexadecimal floats, so a read gives back the very float64 values that were built. A
file that cannot be read, does not parse, or names another construction or version is ignored, and
the codebook is built again and rewritten. Files are written to a temporary name and renamed, so a
reader never sees half a file, and two processes building the same codebook both write whole ones.

Where: the folder named by the environment variable LOWBIT_CACHE_DIR; else `lowbit-codebooks` inside
NUMBA_CACHE_DIR where that is set; else `__pycache__/codebooks` beside this module, as Numba caches
lowbit's compiled kernels beside their sources (`make clean` removes both). A folder that cannot be
written leaves the codebook built but uncached.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .._version import __version__

CACHE_ENV = "LOWBIT_CACHE_DIR"
NUMBA_ENV = "NUMBA_CACHE_DIR"


def cache_dir() -> Path:
    """The folder codebook files go in (see the module docstring), read from the environment on each call."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get(NUMBA_ENV):
        return Path(os.environ[NUMBA_ENV]) / "lowbit-codebooks"
    return Path(__file__).parent / "__pycache__" / "codebooks"


def _key(construction: str, params: dict[str, int | float]) -> str:
    return json.dumps({"construction": construction, "params": params, "version": __version__}, sort_keys=True)


def cache_path(construction: str, params: dict[str, int | float]) -> Path:
    """The file that holds `construction` built with `params` under this lowbit version."""
    digest = hashlib.sha256(_key(construction, params).encode()).hexdigest()[:16]
    return cache_dir() / f"{construction}-{digest}.json"


def _read(path: Path, key: str) -> tuple[float, ...] | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry["key"] != key:  # another construction, parameters or version: not this one
            return None
        return tuple(float.fromhex(v) for v in entry["values"])
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable, corrupt: build it again
        return None


def _write(path: Path, key: str, values: tuple[float, ...]) -> None:
    text = json.dumps({"key": key, "values": [float(v).hex() for v in values]})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError:  # a read-only install: the codebook still serves this process
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def cached_codebook(
    construction: str, params: dict[str, int | float], build: Callable[[], tuple[float, ...]]
) -> tuple[float, ...]:
    """The values of `construction` with `params`: read from the cache, or `build()` and stored.

    construction: a name for what `build` computes ("af4", "lloyd_max_normal"); params: everything
    the result depends on besides lowbit's version (JSON numbers).
    """
    key = _key(construction, params)
    path = cache_path(construction, params)
    values = _read(path, key)
    if values is None:
        values = tuple(float(v) for v in build())
        _write(path, key, values)
    return values
