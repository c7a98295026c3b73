"""The vectorized float32 round-to-nearest-even path against the general integer path.

float32 input with rne takes the fast path; the same values as float64 take the integer path,
which rounds from the bit pattern and shares no arithmetic with it. Both are also checked
against ml_dtypes and the oracle elsewhere; here they must agree with each other bit for bit,
NaN payloads included.
"""

import numpy as np
import pytest

import lowbit
from lowbit.formats import catalog
from lowbit.simulator.kernels.params import fast_params

from ..helpers import CUSTOM_FORMATS, all_float16, grid_inputs, random_f32

ELEMENTS = (*catalog.family("float"), *catalog.family("int"))
FAST = [name for name in ELEMENTS if fast_params(catalog[name], False) is not None]
FAST_CUSTOM = [k for k, f in CUSTOM_FORMATS.items() if fast_params(f, False) is not None]


def test_fast_path_covers_the_common_formats():
    # Guards the test below against passing vacuously.
    for name in ("float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float16", "bfloat16", "int8", "uint4"):
        assert name in FAST
    assert "float8_e8m0fnu" not in FAST  # unsigned without zero: the general path


def _inputs(fmt) -> np.ndarray:
    specials = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -1e-45], np.float32)
    return np.concatenate([grid_inputs(fmt), random_f32(50_000, seed=3), all_float16()[::7], specials])


@pytest.mark.parametrize("name", FAST + FAST_CUSTOM)
def test_fast_equals_general(name):
    fmt = catalog[name] if name in catalog else CUSTOM_FORMATS[name]
    x = _inputs(fmt)
    fast = lowbit.quantize(x, fmt)
    general = lowbit.quantize(x.astype(np.float64), fmt).astype(np.float32)
    np.testing.assert_array_equal(fast.view(np.uint32), general.view(np.uint32))
    np.testing.assert_array_equal(
        lowbit.encode(x, fmt, nan="zero").codes, lowbit.encode(x.astype(np.float64), fmt, nan="zero").codes
    )


def test_fast_path_chunk_edges():
    # Sizes around the per-core chunk: every element is written exactly once.
    fmt = catalog["float8_e4m3fn"]
    for n in (1, 16383, 16384, 16385, 40000):
        x = random_f32(n, seed=n)
        np.testing.assert_array_equal(
            lowbit.quantize(x, fmt).view(np.uint32),
            lowbit.quantize(x.astype(np.float64), fmt).astype(np.float32).view(np.uint32),
        )


@pytest.mark.parametrize("name", ["float8_e4m3fn", "int8", "float4_e2m1fn"])
def test_the_kernels_read_exactly_the_parameter_vectors(name):
    """The tuples the encode loop copies into registers read every entry and none past the end (run as
    plain Python here, where a read past the end raises)."""
    from lowbit.formats import get_format
    from lowbit.simulator.kernels.params import kernel_params
    from lowbit.simulator.kernels.scalar import F_COUNT, P_COUNT, fast_tuple, param_tuple

    fmt = get_format(name)
    p, f = kernel_params(fmt), fast_params(fmt, True)
    assert len(p) == P_COUNT and param_tuple(p) == tuple(p)
    assert len(f) == F_COUNT and np.array_equal(fast_tuple(f), f, equal_nan=True)
