"""The tensor statistics the block paths share (`host.statistics`), against NumPy."""

import numpy as np
import pytest

import lowbit
from lowbit.simulator import Target
from lowbit.simulator.host.statistics import abs_mean, finite_amax, pow2_element_args

F32 = np.float32


@pytest.mark.parametrize("size", [0, 1, 17, 4096, 4096 * 3 + 5])
def test_finite_amax_skips_nan_and_inf(size):
    rng = np.random.default_rng(size)
    x = (rng.standard_normal(size) * 3).astype(F32)
    if size > 2:
        x[[0, size // 2, size - 1]] = [np.nan, np.inf, -np.inf]
    finite = np.abs(x[np.isfinite(x)])
    expect = finite.max() if finite.size else F32(0)
    assert finite_amax(x, Target.CPU) == expect


def test_finite_amax_of_a_strided_view():
    x = np.arange(-50, 50, dtype=F32).reshape(10, 10)
    x[0, 0] = -1000  # in a column the view leaves out
    assert finite_amax(x[:, 1::2], Target.CPU) == F32(49)


def abs_mean_by_hand(row: np.ndarray) -> np.float32:
    """mean |x| in the documented order: float64 sums over pieces of 4096 (or the whole row), each in
    four chains (elements i mod 4, the tail into chain 0) added ((s0 + s1) + s2) + s3, the pieces
    left to right, divided by n and rounded once."""
    n = row.size
    size = 4096 if n % 4096 == 0 else n
    total = 0.0
    for lo in range(0, n, size):
        a = [abs(float(v)) for v in row[lo : lo + size]]
        top = len(a) - len(a) % 4
        s = [0.0, 0.0, 0.0, 0.0]
        for i in range(top):
            s[i % 4] += a[i]
        for v in a[top:]:
            s[0] += v
        total += ((s[0] + s[1]) + s[2]) + s[3]
    return np.float32(total / n)


def test_abs_mean_follows_its_summation_order():
    rng = np.random.default_rng(1)
    for shape in [(3, 5), (2, 4096 * 2), (2, 4099)]:
        # magnitudes over many binades, so that another order would round differently
        x = (rng.standard_normal(shape) * np.exp2(rng.integers(-20, 20, shape))).astype(F32)
        expect = np.array([abs_mean_by_hand(r) for r in x], F32)
        np.testing.assert_array_equal(abs_mean(x).view(np.uint32), expect.view(np.uint32))
    np.testing.assert_array_equal(abs_mean(np.zeros((4, 0), F32)), np.zeros(4, F32))


def test_pow2_element_args_name_the_rule_and_element():
    # FP4 (E2M1): emax 2, 1 mantissa bit, max 6, step 1 (float elements); MXINT8: 1.6 fixed point
    assert pow2_element_args(lowbit.get_format("mxfp4"))[1:5] == (2, 1, F32(6), F32(1))
    assert pow2_element_args(lowbit.get_format("mxint8"))[1:5] == (0, 6, F32(127 / 64), F32(2**-6))
    assert pow2_element_args(lowbit.get_format("nvfp4")) is None  # an absmax rule
