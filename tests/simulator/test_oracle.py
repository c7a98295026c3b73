"""Kernels against the pure-Python oracle: every code, every rounding mode, float64 input."""

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

import lowbit
from lowbit.formats import catalog
from lowbit.simulator import reference as ref

from ..helpers import CUSTOM_FORMATS, grid_inputs

ALL_FORMATS = {**{n: catalog[n] for n in (*catalog.family("float"), *catalog.family("int"))}, **CUSTOM_FORMATS}
MODES = ["rne", "rtz", "rna", "rup", "rdown"]
VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "vectors.yaml").read_text())


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b) and math.copysign(1, a) == math.copysign(1, b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_every_code_decodes_to_oracle_and_round_trips(name):
    fmt = lowbit.get_format(ALL_FORMATS[name])
    codes = np.arange(fmt.n_codes, dtype=np.int64)
    got = lowbit.decode(codes, fmt, dtype=np.float64)
    expected = [ref.value_of(fmt, int(c)) for c in codes]
    bad = [int(c) for c, g, e in zip(codes, got, expected, strict=True) if not _same(float(g), e)]
    assert not bad, f"codes {bad[:8]} decode wrongly"
    finite_or_inf = ~np.isnan(got)
    enc = lowbit.encode(got[finite_or_inf], fmt).codes
    np.testing.assert_array_equal(enc, codes[finite_or_inf])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ALL_FORMATS)
def test_rounding_modes_match_oracle(name, mode):
    fmt = ALL_FORMATS[name]
    x = grid_inputs(fmt) if fmt.bits <= 8 else grid_inputs(fmt)[::97]
    got = lowbit.encode(x, fmt, rounding=mode).codes
    expected = [ref.encode_value(fmt, float(v), mode) for v in x]
    bad = [(float(v), int(g), e) for v, g, e in zip(x, got, expected, strict=True) if g != e]
    assert not bad, f"{len(bad)} mismatches (input, lowbit, oracle): {bad[:5]}"


@pytest.mark.parametrize("name", list(VECTORS["elements_ml_dtypes"]))
def test_published_edge_vectors(name):
    pairs = VECTORS["elements_ml_dtypes"][name]
    x = np.array([p[0] for p in pairs], dtype=np.float32)
    expected = np.array([p[1] for p in pairs], dtype=np.float32)
    got = lowbit.quantize(x, name)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(expected[~np.isnan(expected)]))


def _double_rounding_cases(fmt) -> np.ndarray:
    """float64 values just off a tie between two codes, so close that float32 rounds them onto
    the tie: rounding via float32 then lands on the even code, rounding directly does not."""
    vals = np.unique(fmt.values[np.isfinite(fmt.values)])
    mids = (vals[1:] + vals[:-1]) / 2
    mids = mids[mids != 0]
    return np.concatenate([mids * (1 + 2.0**-40), mids * (1 - 2.0**-40)])


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float6_e3m2fn", "bfloat16", "int4"])
def test_float64_input_rounds_once(name):
    fmt = catalog[name]
    if fmt.family.value == "int":
        k = np.arange(-8, 8) + 0.5
        x = np.concatenate([k + 2.0**-40, k - 2.0**-40])
    else:
        x = _double_rounding_cases(fmt)
    got = lowbit.quantize(x, name)
    assert got.dtype == np.float64
    expected = np.array([ref.value_of(fmt, ref.encode_value(fmt, Fraction(float(v)))) for v in x])
    np.testing.assert_array_equal(got, expected)
    via_f32 = lowbit.quantize(x.astype(np.float32), name).astype(np.float64)
    assert (via_f32 != got).mean() > 0.2, "the cases should really double-round through float32"


def test_float64_example_by_hand():
    # 17 + 2^-40 lies above the 16/18 tie of float8_e4m3fn; float32 rounds it to 17 (the tie) -> 16.
    assert lowbit.quantize(np.array([17.0 + 2.0**-40]), "float8_e4m3fn")[0] == 18.0
    assert lowbit.quantize(np.array([17.0 + 2.0**-40], dtype=np.float32), "float8_e4m3fn")[0] == 16.0
