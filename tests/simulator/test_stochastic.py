"""Stochastic rounding: reproducible, unbiased, and only ever the two neighbours."""

import numpy as np
import pytest

import lowbit
from lowbit.formats import catalog
from lowbit.simulator import reference as ref

CASES = [
    ("float8_e4m3fn", 17.3),
    ("float8_e5m2", -0.3),
    ("float4_e2m1fn", 2.2),
    ("int4", -3.7),
    ("bfloat16", 1.00390625 + 2**-11),
]
N = 20_000


@pytest.mark.parametrize("name,value", CASES)
def test_unbiased_and_only_neighbours(name, value):
    x = np.full(N, value, dtype=np.float64)
    q = lowbit.quantize(x, name, rounding="stochastic", seed=1234)
    lo, hi = ref.neighbours(catalog[name], value)
    assert lo < value < hi
    assert set(np.unique(q).tolist()) == {lo, hi}
    p = (value - lo) / (hi - lo)
    stderr = (hi - lo) * np.sqrt(p * (1 - p) / N)
    assert abs(q.mean() - value) < 4 * stderr


@pytest.mark.parametrize("name,value", CASES)
def test_same_seed_same_result(name, value):
    x = np.full(4096, value, dtype=np.float32)
    a = lowbit.quantize(x, name, rounding="stochastic", seed=7)
    np.testing.assert_array_equal(a, lowbit.quantize(x, name, rounding="stochastic", seed=7))
    assert not np.array_equal(a, lowbit.quantize(x, name, rounding="stochastic", seed=8))
    np.testing.assert_array_equal(
        lowbit.encode(x, name, rounding="stochastic", seed=7).codes,
        lowbit.encode(a, name).codes,
    )


def test_representable_values_are_not_moved():
    x = np.array(catalog["float8_e4m3fn"].values, dtype=np.float32)
    x = x[np.isfinite(x)]
    np.testing.assert_array_equal(lowbit.quantize(x, "float8_e4m3fn", rounding="stochastic", seed=3), x)
