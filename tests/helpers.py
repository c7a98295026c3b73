"""Test helpers: ml_dtypes dtypes by catalog name, and the input sets the acceptance criteria name."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

from lowbit.formats import Family, FloatFormat, IntFormat, catalog
from lowbit.models import load_minilm

FLOAT_NAMES = catalog.family(Family.FLOAT)
INT_NAMES = catalog.family(Family.INT)

# Formats outside the catalog that exercise every spec field: each combination the kernels branch on.
CUSTOM_FORMATS = {
    "e3m2_ieee": FloatFormat(3, 2),
    "e2m1_fn": FloatFormat(2, 1, specials="fn"),
    "e5m2_saturate": FloatFormat(5, 2, overflow="saturate"),
    "e4m3_fn_saturate": FloatFormat(4, 3, specials="fn", overflow="saturate"),
    "ue4m3": FloatFormat(4, 3, signed=False, specials="none"),
    "ue5m3_fn": FloatFormat(5, 3, signed=False, specials="fn"),
    "e3m3_bias5_fnuz": FloatFormat(3, 3, bias=5, specials="fnuz"),
    "e4m2_nosub": FloatFormat(4, 2, subnormals=False, specials="none"),
    "e2m0_fn_nosub_away": FloatFormat(2, 0, subnormals=False, specials="fn", ties="away"),
    "e6m9_ieee": FloatFormat(6, 9),
    "e1m2_none": FloatFormat(1, 2, specials="none"),
    "int4_symmetric": IntFormat(4, symmetric=True),
    "int16": IntFormat(16),
    "uint3": IntFormat(3, signed=False),
    "int1": IntFormat(1),
}


def ml_dtype(name: str) -> np.dtype:
    return np.dtype(np.float16 if name == "float16" else getattr(ml_dtypes, name))


def code_view(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint8 if a.dtype.itemsize == 1 else np.uint16)


def f32_bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def grid_inputs(fmt) -> np.ndarray:
    """Every finite value, every midpoint of neighbours (also past the largest value, where
    overflow starts), one float32 ulp either side of each midpoint, and the specials."""
    vals = np.unique(fmt.values[np.isfinite(fmt.values)])
    top = vals[-1]
    step = 1.0 if isinstance(fmt, IntFormat) else 2.0 ** (np.floor(np.log2(top)) - fmt.man_bits)
    ext = np.concatenate([-(top + step)[None], vals, (top + step)[None]])
    mids = ((ext[1:] + ext[:-1]) / 2).astype(np.float32)
    around = np.concatenate([np.nextafter(mids, np.float32(-np.inf)), np.nextafter(mids, np.float32(np.inf))])
    big = min(2 * top, 3e38)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, big, -big, 1e38, -1e38], dtype=np.float32)
    return np.concatenate([vals.astype(np.float32), mids, around, specials])


def random_f32(n: int, seed: int = 0) -> np.ndarray:
    """n float32 with uniformly random bit patterns (every exponent, subnormals too), no NaN."""
    bits = np.random.default_rng(seed).integers(0, 1 << 32, 2 * n, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    return x[~np.isnan(x)][:n]


def all_float16() -> np.ndarray:
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def minilm_or_skip():
    """The packaged MiniLM; a missing `models` extra skips, except under CI=true, where it fails."""
    try:
        return load_minilm()
    except ImportError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the models extra is missing: {err}")
        pytest.skip(str(err))
