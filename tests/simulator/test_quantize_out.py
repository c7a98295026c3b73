"""quantize(..., out=): the result written into a given array equals the returned one, bit for
bit, for every path (fused block kernels, the pipeline, element kernels), in place too; bad
`out` arrays get errors that name them."""

import numpy as np
import pytest

import lowbit

NAMES = ["mxfp4", "nvfp4", "nf4", "bitnet_b158", "int4_g128", "afpq_nf4_g128", "paretoq_ternary"]
NAMES += ["nf4_codebook", "higgs_p2_n16", "float8_e4m3fn", "int8"]
CASES = [((8, 256), -1), ((256, 8), 0), ((3, 100), -1)]


def data(shape, dtype=np.float32):
    x = np.random.default_rng(7).standard_normal(shape).astype(dtype)
    x[0, :2] = np.nan, -0.0
    return x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", CASES)
def test_out_equals_returned(name, case):
    shape, axis = case
    x = data(shape)
    ref = lowbit.quantize(x, name, axis=axis)
    out = np.full_like(ref, 7.0)
    got = lowbit.quantize(x, name, axis=axis, out=out)
    assert got is out
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("name", NAMES)
def test_out_in_place(name):
    x = data((8, 256))
    ref = lowbit.quantize(x, name)
    lowbit.quantize(x, name, out=x)
    np.testing.assert_array_equal(x.view(np.uint32), ref.view(np.uint32))


def test_out_not_contiguous():
    x = data((8, 256))
    big = np.zeros((8, 512), np.float32)
    out = big[:, ::2]
    lowbit.quantize(x, "nvfp4", out=out)
    np.testing.assert_array_equal(out, lowbit.quantize(x, "nvfp4"))
    assert (big[:, 1::2] == 0).all()


def test_out_float64_elements():
    x = data((4, 32), np.float64)
    out = np.empty_like(x)
    lowbit.quantize(x, "float8_e5m2", out=out)
    np.testing.assert_array_equal(out, lowbit.quantize(x, "float8_e5m2"))


@pytest.mark.parametrize(
    ("out", "error", "match"),
    [
        (np.empty((8, 255), np.float32), ValueError, "out has shape"),
        (np.empty((8, 256), np.float64), TypeError, "out has dtype"),  # block formats return float32
        ([0.0] * 4, TypeError, "out must be a NumPy array"),
    ],
)
def test_out_errors(out, error, match):
    with pytest.raises(error, match=match):
        lowbit.quantize(data((8, 256)), "mxfp4", out=out)


def test_out_read_only():
    out = np.empty((8, 256), np.float32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        lowbit.quantize(data((8, 256)), "nf4", out=out)
