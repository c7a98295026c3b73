"""MX block formats against hand-worked OCP vectors and an independent NumPy reimplementation."""

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import yaml

import lowbit

DATA = yaml.safe_load((Path(__file__).parents[1] / "data" / "vectors.yaml").read_text())
MX = DATA["mx_blocks_ocp_floor_rne"]
F32 = np.float32


def q(x, fmt, **kw):
    return lowbit.quantize(np.asarray(x, dtype=F32), fmt, **kw)


@pytest.mark.parametrize("name", ["mxfp4", "mxfp8_e4m3", "mxint8"])
def test_reference_vectors(name):
    for case in MX[name]:
        np.testing.assert_array_equal(q(case["in"], name), np.asarray(case["out"], F32))


def test_vector_notes_other_rules_and_options():
    # Notes in the reference vectors: what the other rules and options give on the same blocks.
    for rule in ("ceil", "even", "rceil"):
        np.testing.assert_array_equal(q([7.0, 0.25, 1.25, -7.0], lowbit.get_format("mxfp4", rule=rule)), [8, 0, 1, -8])
        np.testing.assert_array_equal(q([3.9, 1.0, 0.3], lowbit.get_format("mxfp4", rule=rule)), [4, 1, 0.5])
    rna = q([485.0, 400.0, 0.0009765625, 0.0029296875, 17.0, 19.0], "mxfp8_e4m3", rounding="rna")
    np.testing.assert_array_equal(rna, [448, 416, 2.0**-9, 2.0**-8, 18, 20])
    twos = lowbit.get_format("mxint8", element=lowbit.IntFormat(8))
    assert q([-1.999, 1.0, 0.5078125, 0.5234375], twos)[0] == -2.0


def test_all_zero_block():
    enc = lowbit.encode(np.zeros(64, F32), "mxfp4")
    np.testing.assert_array_equal(enc.scales, [0, 0])  # 2^-127, code 0x00
    np.testing.assert_array_equal(enc.codes, 0)
    np.testing.assert_array_equal(lowbit.decode(enc), 0)


def test_power_of_two_amax_is_exact():
    x = [4.0, 1.0, 0.5, 3.0]
    enc = lowbit.encode(np.asarray(x, F32), "mxfp4")
    assert enc.scales[0] == 127  # floor(log2 4) - emax(E2M1) = 2 - 2 = 0
    np.testing.assert_array_equal(lowbit.decode(enc), x)


def test_tiny_and_huge_amax():
    # amax 2^-130: exponent -132 clamps to -127; elements are x * 2^127 = 2^-3 rounded in E2M1
    # (0.125 lies below the 0.25 tie between 0 and 0.5) -> 0; 2^-128 -> 0.5 exactly.
    tiny = lowbit.encode(np.asarray([2.0**-130, 2.0**-128], F32), "mxfp4")
    assert tiny.scales[0] == 0
    np.testing.assert_array_equal(lowbit.decode(tiny), [0.0, 2.0**-128])
    # amax 3e38: floor(log2) = 127, exponent 125; 3e38 / 2^125 = 7.05 saturates to 6.
    huge = lowbit.encode(np.asarray([3e38, 2.0**125], F32), "mxfp4")
    assert huge.scales[0] == 127 + 125
    np.testing.assert_array_equal(lowbit.decode(huge), [6 * 2.0**125, 2.0**125])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_poisons_its_block_only(bad):
    x = np.arange(64, dtype=F32)
    x[40] = bad
    enc = lowbit.encode(x, "mxfp8_e4m3")
    assert enc.scales[1] == 0xFF and enc.scales[0] != 0xFF
    out = lowbit.decode(enc)
    assert np.isnan(out[32:]).all() and not np.isnan(out[:32]).any()
    np.testing.assert_array_equal(lowbit.quantize(x, "mxfp8_e4m3"), out)


def test_ties_round_to_even_then_away_with_rna():
    # Scale 2^0 (amax 4): 2.5 ties 2|3 -> 2; 3.5 ties 3|4 -> 4; 0.25 ties 0|0.5 -> 0; 5 ties 4|6 -> 4.
    x = [4.0, 2.5, 3.5, 0.25, 5.0, -2.5]
    np.testing.assert_array_equal(q(x, "mxfp4"), [4, 2, 4, 0, 4, -2])
    np.testing.assert_array_equal(q(x, "mxfp4", rounding="rna"), [4, 3, 4, 0.5, 6, -3])


@pytest.mark.parametrize(
    ("amax", "codes"),
    [
        # E8M0 codes for ocp_floor, ceil, even, rceil, worked by hand for E2M1 (emax 2, max 6):
        (7.0, (127, 128, 128, 128)),  # 1.11b*2^2: even rounds the mantissa up to 2^3; 7/6 > 1
        (6.5, (127, 128, 127, 128)),  # 1.101b*2^2: even stays in 2^2; 6.5/6 > 1
        (5.0, (127, 128, 127, 127)),  # 5/6 < 1: rceil keeps 2^0
        (4.0, (127, 127, 127, 127)),  # a power of two: every rule agrees
    ],
)
def test_scale_rules_differ(amax, codes):
    for rule, code in zip(("ocp_floor", "ceil", "even", "rceil"), codes, strict=True):
        enc = lowbit.encode(np.asarray([amax, 1.0], F32), lowbit.get_format("mxfp4", rule=rule))
        assert enc.scales[0] == code, rule


# ----- an independent NumPy implementation of the OCP rule -----------------------------------

ELEMENTS = {
    "mxfp4": (ml_dtypes.float4_e2m1fn, 2, 6.0),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 2, 7.5),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 4, 28.0),
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 448.0),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 15, 57344.0),
}


def ocp_numpy(x: np.ndarray, dtype, emax: int, maxval: float, block: int = 32) -> np.ndarray:
    rows = x.reshape(-1, block).astype(np.float64)
    amax = np.abs(rows).max(axis=1)
    _, exp = np.frexp(amax)  # amax = m * 2^exp with m in [0.5, 1): floor(log2 amax) = exp - 1
    e = np.clip(np.where(amax > 0, exp - 1, -127) - emax, -127, 127)
    scaled = np.clip(rows / np.exp2(e)[:, None], -maxval, maxval)  # exact in float64
    elem = scaled.astype(np.float32).astype(dtype).astype(np.float64)  # ml_dtypes: RNE
    return (elem * np.exp2(e)[:, None]).astype(np.float32).reshape(x.shape)


def outlier_data(n: int = 1 << 20) -> np.ndarray:
    rng = np.random.default_rng(2024)
    x = rng.standard_normal(n).astype(F32)
    x *= np.exp2(rng.integers(-20, 20, n // 32)).repeat(32).astype(F32)  # per-block magnitudes
    spikes = rng.random(n) < 1e-3
    x[spikes] *= F32(1000)  # outliers
    x[:32] = 0  # an all-zero block
    x[32:64] = rng.standard_normal(32) * F32(2.0**-135)  # a block below 2^-127
    return x


@pytest.mark.parametrize("name", list(ELEMENTS))
def test_equals_independent_numpy_ocp_rule(name):
    x = outlier_data()
    dtype, emax, maxval = ELEMENTS[name]
    np.testing.assert_array_equal(q(x, name).view(np.uint32), ocp_numpy(x, dtype, emax, maxval).view(np.uint32))


def test_mxint8_equals_independent_numpy():
    x = outlier_data(1 << 16)
    rows = x.reshape(-1, 32).astype(np.float64)
    amax = np.abs(rows).max(axis=1)
    _, exp = np.frexp(amax)
    e = np.clip(np.where(amax > 0, exp - 1, -127), -127, 127)
    ints = np.clip(np.rint(rows / np.exp2(e - 6)[:, None]), -127, 127)  # 1.6 fixed point, symmetric
    ref = (ints * np.exp2(e - 6)[:, None]).astype(np.float32).reshape(x.shape)
    np.testing.assert_array_equal(q(x, "mxint8"), ref)


def test_axis_and_padding():
    x = np.random.default_rng(1).standard_normal((40, 3)).astype(F32)
    along0 = lowbit.quantize(x, "mxfp4", axis=0)
    np.testing.assert_array_equal(along0, lowbit.quantize(x.T.copy(), "mxfp4").T)
    # 40 = 32 + 8: the second block is padded with zeros, which do not change its scale.
    padded = np.concatenate([x[:, 0], np.zeros(24, F32)])
    np.testing.assert_array_equal(along0[:, 0], lowbit.quantize(padded, "mxfp4")[:40])
    enc = lowbit.encode(x, "mxfp4", axis=0)
    assert enc.scales.shape == (3, 2)
    np.testing.assert_array_equal(lowbit.decode(enc), along0)
    assert lowbit.bits_per_element("mxfp4") == 4.25 and lowbit.bits_per_element("mxfp8_e4m3") == 8.25


@pytest.mark.parametrize("name", ["mxfp4", "nvfp4", "nf4", "int4_g128_asym"])
def test_any_axis_of_a_3d_array(name):
    x = np.random.default_rng(9).standard_normal((5, 70, 3)).astype(F32)
    for axis in (0, 1, 2, -1):
        y = lowbit.quantize(x, name, axis=axis)
        moved = np.moveaxis(x, axis, -1).copy()
        np.testing.assert_array_equal(np.moveaxis(y, axis, -1), lowbit.quantize(moved, name))
        np.testing.assert_array_equal(lowbit.decode(lowbit.encode(x, name, axis=axis)), y)
    with pytest.raises(ValueError, match="axis"):
        lowbit.quantize(x, name, axis=3)
