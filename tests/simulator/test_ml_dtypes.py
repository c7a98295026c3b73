"""Acceptance: for float32 input, quantize and encode equal ml_dtypes' astype bit for bit."""

import numpy as np
import pytest

import lowbit
from lowbit.formats import catalog
from lowbit.simulator import reference as ref

from ..helpers import FLOAT_NAMES, INT_NAMES, all_float16, code_view, f32_bits, grid_inputs, ml_dtype, random_f32


def _e8m0_subnormal_band(x: np.ndarray) -> np.ndarray:
    """float32 subnormals in (2^-127, 1.5 * 2^-127): ml_dtypes sends them up to 2^-126, the nearest
    E8M0 value is 2^-127. lowbit rounds correctly here (DESIGN: one correct rounding)."""
    return (np.abs(x) > 2.0**-127) & (np.abs(x) < 1.5 * 2.0**-127) & (x > 0)


def _payload_nan(x: np.ndarray) -> np.ndarray:
    """NaNs other than the canonical quiet NaN: lowbit writes the canonical NaN with the input's
    sign (as ml_dtypes does for its own types); numpy's float16 cast keeps payload bits."""
    return np.isnan(x) & ((f32_bits(x) & 0x7FFFFFFF) != 0x7FC00000)


def _documented_difference(name: str, x: np.ndarray) -> np.ndarray:
    differs = _payload_nan(x)
    if name == "float8_e8m0fnu":
        differs |= _e8m0_subnormal_band(x)
    return differs


@pytest.mark.parametrize("name", [n for n in FLOAT_NAMES if catalog[n].has_nan])
def test_payload_nan_gives_canonical_nan_with_sign(name):
    x = all_float16()
    x = x[_payload_nan(x)]
    got = lowbit.quantize(x, name)
    assert np.isnan(got).all()
    if catalog[name].signed and catalog[name].specials.value != "fnuz":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(x))
    codes = lowbit.encode(x, name).codes
    assert set(codes.tolist()) <= {catalog[name].nan_code(False), catalog[name].nan_code(True)}


def test_e8m0_subnormal_band_is_rounded_to_nearest():
    x = np.arange(0x400001, 0x600000, 997, dtype=np.uint32).view(np.float32)
    assert _e8m0_subnormal_band(x).all()
    codes = lowbit.encode(x, "float8_e8m0fnu").codes
    fmt = catalog["float8_e8m0fnu"]
    assert codes.tolist() == [ref.encode_value(fmt, float(v)) for v in x] == [0] * x.size
    assert (code_view(x.astype(ml_dtype("float8_e8m0fnu"))) == 1).all()


def _inputs(name: str) -> np.ndarray:
    x = np.concatenate([all_float16(), grid_inputs(catalog[name]), random_f32(1_000_000, seed=len(name))])
    if not catalog[name].has_nan:
        return x[~np.isnan(x)]
    return np.concatenate([x, np.array([np.nan, -np.nan], dtype=np.float32)])


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_encode_equals_ml_dtypes(name):
    x = _inputs(name)
    expected = code_view(x.astype(ml_dtype(name)))
    got = lowbit.encode(x, name).codes
    bad = np.nonzero((got != expected) & ~_documented_difference(name, x))[0]
    assert bad.size == 0, f"{bad.size} mismatches, first inputs {x[bad[:5]]}: {got[bad[:5]]} vs {expected[bad[:5]]}"


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_quantize_equals_ml_dtypes(name):
    x = _inputs(name)
    expected = x.astype(ml_dtype(name)).astype(np.float32)
    got = lowbit.quantize(x, name)
    assert got.dtype == np.float32
    bad = np.nonzero((f32_bits(got) != f32_bits(expected)) & ~_documented_difference(name, x))[0]
    assert bad.size == 0, f"{bad.size} mismatches, first inputs {x[bad[:5]]}: {got[bad[:5]]} vs {expected[bad[:5]]}"


@pytest.mark.parametrize("name", [n for n in FLOAT_NAMES if not catalog[n].has_nan])
def test_nan_into_format_without_nan(name):
    """ml_dtypes turns NaN into a number here; lowbit keeps NaN in quantize and refuses in encode."""
    x = np.array([1.0, np.nan, -np.nan], dtype=np.float32)
    q = lowbit.quantize(x, name)
    assert q[0] == 1.0 and np.isnan(q[1:]).all()
    with pytest.raises(ValueError, match=name):
        lowbit.encode(x, name)
    assert lowbit.encode(x, name, nan="zero").codes[1:].tolist() == [0, 0]


@pytest.mark.parametrize("name", INT_NAMES)
def test_integers_round_and_clip_against_oracle(name):
    """ml_dtypes truncates and wraps integers; lowbit rounds (rne) and clips. Checked by the oracle."""
    fmt = catalog[name]
    x = np.concatenate(
        [np.arange(fmt.min - 3, fmt.max + 3, 0.25, dtype=np.float32), np.array([np.inf, -np.inf, 1e30, -1e30, -0.0])]
    ).astype(np.float32)
    codes = lowbit.encode(x, name).codes
    expected = [ref.encode_value(fmt, float(v)) for v in x]
    assert codes.tolist() == expected
    np.testing.assert_array_equal(lowbit.quantize(x, name), np.clip(np.round(x), fmt.min, fmt.max))
