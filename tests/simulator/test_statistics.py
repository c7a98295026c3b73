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


def test_abs_mean_rounds_the_float64_mean_once():
    rng = np.random.default_rng(1)
    for shape in [(3, 5), (2, 4096 * 2), (4, 0)]:
        x = rng.standard_normal(shape).astype(F32)
        expect = np.abs(x.astype(np.float64)).mean(axis=1).astype(F32) if shape[1] else np.zeros(shape[0], F32)
        np.testing.assert_array_equal(abs_mean(x), expect)


def test_pow2_element_args_name_the_rule_and_element():
    # FP4 (E2M1): emax 2, 1 mantissa bit, max 6, no fixed-point step; MXINT8: 1.6 fixed point
    assert pow2_element_args(lowbit.get_format("mxfp4"))[1:5] == (2, 1, F32(6), F32(1))
    assert pow2_element_args(lowbit.get_format("mxint8"))[1:5] == (0, 6, F32(127 / 64), F32(2**-6))
    assert pow2_element_args(lowbit.get_format("nvfp4")) is None  # an absmax rule
