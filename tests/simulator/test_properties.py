"""Property tests (hypothesis): idempotent, monotone, sign-symmetric, decode(encode) == quantize."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import lowbit
from lowbit.formats import IntFormat, catalog

from ..helpers import CUSTOM_FORMATS

FORMATS = [*catalog.family("float"), *catalog.family("int"), *CUSTOM_FORMATS]
finite32 = st.floats(allow_nan=False, allow_infinity=True, width=32)
arrays = st.lists(finite32, min_size=1, max_size=64).map(lambda v: np.array(v, dtype=np.float32))


def _spec(name):
    return CUSTOM_FORMATS.get(name) or catalog[name]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS), arrays)
def test_idempotent(name, x):
    q = lowbit.quantize(x, _spec(name))
    np.testing.assert_array_equal(lowbit.quantize(q, _spec(name)), q)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS), arrays)
def test_monotone(name, x):
    # -0 before +0: formats without a zero send them to the smallest value of their own sign.
    x = x[np.lexsort((~np.signbit(x), x))]
    q = lowbit.quantize(x, _spec(name))
    q = q[~np.isnan(q)]  # formats with NaN overflow map large values to NaN
    assert np.all(q[1:] >= q[:-1])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS), arrays)
def test_sign_symmetric_where_the_format_is(name, x):
    fmt = _spec(name)
    if not fmt.signed or (isinstance(fmt, IntFormat) and not fmt.symmetric):
        return
    np.testing.assert_array_equal(lowbit.quantize(-x, fmt), -lowbit.quantize(x, fmt))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS), arrays, st.sampled_from(["rne", "rtz", "rna", "rup", "rdown"]))
def test_decode_of_encode_is_quantize(name, x, mode):
    fmt = _spec(name)
    q = lowbit.quantize(x, fmt, rounding=mode)
    d = lowbit.decode(lowbit.encode(x, fmt, rounding=mode))
    np.testing.assert_array_equal(d.view(np.uint32), q.view(np.uint32))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(FORMATS), st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=32))
def test_float64_idempotent_and_decode_of_encode(name, values):
    x = np.array(values, dtype=np.float64)
    fmt = _spec(name)
    q = lowbit.quantize(x, fmt)
    np.testing.assert_array_equal(lowbit.quantize(q, fmt), q)
    np.testing.assert_array_equal(lowbit.decode(lowbit.encode(x, fmt), dtype=np.float64), q)
