"""NumPy and ml_dtypes dtypes as formats: each maps to the catalog format of the same name."""

import re
import subprocess
import sys

import numpy as np
import pytest

import lowbit
from lowbit.formats import catalog, get_format

ml_dtypes = pytest.importorskip("ml_dtypes")

# Every ml_dtypes real type and the lowbit format of its name (written out: the catalog follows ml_dtypes' names)
ML_DTYPE_NAMES = [
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e4m3b11fnuz", "float8_e3m4",
    "float8_e4m3", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn", "bfloat16", "int2", "int4",
    "uint2", "uint4",
]  # fmt: skip


@pytest.mark.parametrize("name", ML_DTYPE_NAMES)
def test_each_ml_dtype_type_dtype_and_name_is_the_catalog_format(name):
    kind = getattr(ml_dtypes, name)
    assert get_format(kind) is catalog[name]
    assert get_format(np.dtype(kind)) is catalog[name]
    assert get_format(np.dtype(name)) is catalog[name]  # ml_dtypes registers its names with NumPy
    assert get_format(name) is catalog[name]


def test_numpy_types_by_hand():
    assert get_format(np.float16) is catalog["float16"]
    assert get_format(np.dtype("float16")) is catalog["float16"]
    assert get_format(np.int8) is catalog["int8"] and get_format(np.uint8) is catalog["uint8"]
    # no catalog entry: the generic intN / uintN of that width
    assert (get_format(np.int16).bits, get_format(np.uint16).signed) == (16, False)
    # 1-bit integers: ml_dtypes' int1 is two's complement {-1, 0}
    assert (get_format(ml_dtypes.int1).min, get_format(ml_dtypes.int1).max) == (-1, 0)


def test_the_dtype_format_agrees_with_ml_dtypes_casts():
    # In range and finite, rounding to nearest even: the same values as ml_dtypes' own cast
    x = np.linspace(-400.0, 400.0, 2001, dtype=np.float32)
    for kind in (ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.bfloat16, np.float16):
        expected = x.astype(kind).astype(np.float32)
        np.testing.assert_array_equal(lowbit.quantize(x, kind), expected, err_msg=np.dtype(kind).name)
    assert get_format(ml_dtypes.float8_e4m3fn).max == 448.0  # 1.75 * 2^8, OCP FP8


def test_options_apply_to_a_dtype_format():
    spec = get_format(np.float16, overflow="saturate")
    assert spec.overflow.value == "saturate" and (spec.exp_bits, spec.man_bits) == (5, 10)


@pytest.mark.parametrize("kind", [np.float32, np.float64, np.int32, np.uint64])
def test_wider_than_16_bits_is_refused_by_name(kind):
    name = np.dtype(kind).name
    with pytest.raises(ValueError, match=rf"format: dtype '{name}' has no lowbit format: .* at most 16 bits"):
        get_format(kind)


@pytest.mark.parametrize("kind", [np.bool_, np.complex64, np.str_, np.void, np.dtype("datetime64[s]")])
def test_a_dtype_that_is_not_a_real_number_is_a_type_error(kind):
    message = f"format: dtype '{np.dtype(kind).name}' is not a real number format"
    with pytest.raises(TypeError, match=re.escape(message)):
        get_format(kind)


def test_other_objects_still_name_what_is_accepted():
    with pytest.raises(TypeError, match="format must be a name, a format spec or a NumPy / ml_dtypes dtype, got float"):
        get_format(1.5)


def test_importing_lowbit_does_not_import_ml_dtypes():
    code = "import sys, lowbit; lowbit.get_format('float8_e4m3fn'); print('ml_dtypes' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
