"""Format specs: derived properties against ml_dtypes and by hand, validation, names."""

import ml_dtypes
import numpy as np
import pytest

import lowbit
from lowbit.formats import FloatFormat, IntFormat, Overflow, Specials, catalog, get_format

from ..helpers import FLOAT_NAMES, INT_NAMES, ml_dtype


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_float_properties_match_ml_dtypes_finfo(name):
    fmt, info = catalog[name], ml_dtypes.finfo(ml_dtype(name))
    assert fmt.max == float(info.max)
    assert fmt.min_normal == float(info.smallest_normal)
    assert fmt.min_subnormal == float(info.smallest_subnormal)
    assert fmt.bits == info.bits
    assert fmt.name == name


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_value_table_matches_ml_dtypes(name):
    fmt = catalog[name]
    ref = np.arange(fmt.n_codes, dtype=np.uint32).astype(fmt.code_dtype).view(ml_dtype(name)).astype(np.float64)
    np.testing.assert_array_equal(fmt.values, ref)
    np.testing.assert_array_equal(np.signbit(fmt.values), np.signbit(ref))


@pytest.mark.parametrize("name", INT_NAMES)
def test_int_ranges_match_ml_dtypes_iinfo(name):
    fmt = catalog[name]
    info = ml_dtypes.iinfo(getattr(ml_dtypes, name, None) or np.dtype(name))
    assert (fmt.min, fmt.max) == (info.min, info.max)


def test_hand_checked_properties():
    assert get_format("fp4").values[:8].tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert IntFormat(4, symmetric=True).min == -7
    assert get_format("e3m2").max == 28.0  # generic eXmY: every code finite
    assert get_format("ue4m3").max == 480.0 and not get_format("ue4m3").signed
    assert get_format("e4m3", specials="fn").max == 448.0
    assert get_format("fp8_e4m3") is catalog["float8_e4m3fn"]
    assert get_format("int3").max == 3 and get_format("uint5").max == 31
    assert FloatFormat(5, 2).overflow is Overflow.INF
    assert get_format("e5m2", specials="ieee", overflow="saturate").overflow is Overflow.SATURATE


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"exp_bits": 0, "man_bits": 3}, "exp_bits"),
        ({"exp_bits": 4, "man_bits": -1}, "man_bits"),
        ({"exp_bits": 9, "man_bits": 8}, "16"),
        ({"exp_bits": 4, "man_bits": 3, "bias": "7"}, "bias"),
        ({"exp_bits": 4, "man_bits": 3, "specials": "bogus"}, "specials"),
        ({"exp_bits": 4, "man_bits": 3, "specials": "fn", "overflow": "inf"}, "overflow"),
        ({"exp_bits": 4, "man_bits": 0, "specials": "ieee"}, "man_bits"),
        ({"exp_bits": 4, "man_bits": 3, "signed": False, "specials": "fnuz"}, "signed"),
        ({"exp_bits": 4, "man_bits": 3, "signed": 1}, "signed"),
        ({"exp_bits": 4, "man_bits": 3, "bias": 5000}, "float64"),
    ],
)
def test_bad_float_specs(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        FloatFormat(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"bits": 0}, "bits"), ({"bits": 17}, "bits"), ({"bits": 4, "signed": False, "symmetric": True}, "symmetric")],
)
def test_bad_int_specs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IntFormat(**kwargs)


def test_names_and_options_errors():
    with pytest.raises(ValueError, match="did you mean 'float8_e5m2'"):
        get_format("float8_e5m3")
    with pytest.raises(TypeError, match="unknown option"):
        get_format("fp4", blocks=3)
    with pytest.raises(TypeError, match="format must be"):
        get_format(3.5)
    assert Specials("fnuz") is Specials.FNUZ


def test_catalog_is_complete_and_grouped():
    expected = {
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e5m2",
        "float8_e5m2fnuz",
        "float8_e4m3b11fnuz",
        "float8_e3m4",
        "float8_e4m3",
        "float8_e8m0fnu",
        "float6_e2m3fn",
        "float6_e3m2fn",
        "float4_e2m1fn",
        "int2",
        "int4",
        "int8",
        "uint2",
        "uint4",
        "uint8",
        "bfloat16",
        "float16",
    }
    assert set(catalog.family("float")) | set(catalog.family("int")) == expected
    assert set(catalog.families) == {"int", "float", "codebook", "scaled"}
    for alias in ["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4", "e8m0"]:
        assert lowbit.get_format(alias).name in expected


def test_code_values_are_what_each_code_decodes_to():
    codes = np.arange(256, dtype=np.uint8)
    want = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)  # ml_dtypes decodes every code
    got = lowbit.get_format("float8_e4m3fn").code_values
    assert np.array_equal(got, want, equal_nan=True)
    # two's complement, by hand: codes 0..7 are 0..7, codes 8..15 are -8..-1
    assert lowbit.get_format("int4").code_values.tolist() == [*range(8), *range(-8, 0)]
    nf4 = lowbit.get_format("nf4").element
    assert nf4.code_values.dtype == np.float64 and nf4.code_values[7] == 0.0 and nf4.code_values[15] == 1.0
    assert lowbit.get_format("higgs_p2_n16").code_values.shape == (16, 2)


@pytest.mark.parametrize(
    ("name", "shape", "axis", "bits"),
    [
        ("int4_g128", (10, 256), 1, 4 + 16 / 128),  # whole blocks: one float16 scale per 128
        ("int4_g128", (10, 64), 1, 4 + 16 / 64),  # a block longer than the axis stores its scale for 64
        ("int4_g128", (10, 200), 1, 4 + 2 * 16 / 200),  # 128 + a trailing partial block of 72: two scales
        ("mxfp4", (3, 40), 1, 4 + 2 * 8 / 40),
        ("mxfp4", (40, 3), 0, 4 + 2 * 8 / 40),
        ("int4_per_channel", (10, 64), 1, 4 + 32 / 64),  # one float32 scale per row
    ],
)
def test_bits_per_element_in_counts_every_stored_scale(name, shape, axis, bits):
    assert lowbit.get_format(name).bits_per_element_in(shape, axis) == pytest.approx(bits, rel=1e-12)
