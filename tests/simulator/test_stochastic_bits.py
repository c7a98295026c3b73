"""Stochastic rounding with sr_bits random bits: the remainder below the rounding point is cut to
its top r bits, t = floor(rem * 2^r / 2^s), and the magnitude rounds up iff the element's r-bit
random number R < t. Expected values are worked by hand here, or come from the reference oracle
and from the bias formula E[q] - x = -(frac(f * 2^r) / 2^r) * ulp (f: the fraction of the gap)."""

import math
import os
from fractions import Fraction

import numpy as np
import pytest

import lowbit
from lowbit.formats import CodebookFormat, FloatFormat, GridFormat, IntFormat, ScaledFormat, catalog
from lowbit.simulator import reference as ref

from ..helpers import CUSTOM_FORMATS

F32 = np.float32
SR = "stochastic"


def q(x, fmt, bits, r, **kw):
    return lowbit.quantize(x, fmt, rounding=SR, sr_bits=r, random_bits=bits, **kw)


# ----- hand-worked cases ----------------------------------------------------------------------


def test_e2m1_one_point_three_with_three_bits():
    # 1.3 lies between 1.0 and 1.5: f = 0.6 of the gap, t = floor(0.6 * 8) = 4, so R = 0..3 go up
    x = np.full(8, 1.3, F32)
    np.testing.assert_array_equal(q(x, "float4_e2m1fn", np.arange(8), 3), [1.5] * 4 + [1.0] * 4)
    # one bit: t = floor(0.6 * 2) = 1, so only R = 0 goes up
    np.testing.assert_array_equal(q(x[:2], "float4_e2m1fn", np.arange(2), 1), [1.5, 1.0])
    # codes (bits s ee m, bias 1): 1.5 is 0 01 1 = 3, 1.0 is 0 01 0 = 2
    codes = lowbit.encode(x, "float4_e2m1fn", rounding=SR, sr_bits=3, random_bits=np.arange(8)).codes
    np.testing.assert_array_equal(codes, [3] * 4 + [2] * 4)


def test_negative_values_round_on_the_magnitude():
    # 'up' means away from zero: -1.3 goes to -1.5 for R < 4, else to -1.0
    x = np.full(8, -1.3, F32)
    np.testing.assert_array_equal(q(x, "float4_e2m1fn", np.arange(8), 3), [-1.5] * 4 + [-1.0] * 4)
    # int4: -2.6875 = -(2 + 11/16); with 4 bits t = 11, with 2 bits t = floor(2.75) = 2
    y = np.full(16, -2.6875)
    np.testing.assert_array_equal(q(y, "int4", np.arange(16), 4), [-3.0] * 11 + [-2.0] * 5)
    np.testing.assert_array_equal(q(y[:4], "int4", np.arange(4), 2), [-3.0, -3.0, -2.0, -2.0])


def test_int_formats():
    # 2.6875 = 2 + 11/16: t = 11 with 4 bits
    x = np.full(16, 2.6875)
    np.testing.assert_array_equal(q(x, "int8", np.arange(16), 4), [3.0] * 11 + [2.0] * 5)
    # 2.25 in int4 with 2 bits: t = 1; uint8 the same
    np.testing.assert_array_equal(q(np.full(4, 2.25), "int4", np.arange(4), 2), [3.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(q(np.full(4, 2.25), "uint8", np.arange(4), 2), [3.0, 2.0, 2.0, 2.0])
    # above int4's 7: rounding up clamps to 7, down gives 7 too
    np.testing.assert_array_equal(q(np.full(2, 7.5), "int4", np.arange(2), 1), [7.0, 7.0])
    # int4 (two's complement) reaches -8: -7.5 goes to -8 for R = 0, else to -7
    np.testing.assert_array_equal(q(np.full(2, -7.5), "int4", np.arange(2), 1), [-8.0, -7.0])


def test_subnormals():
    # e4m3fn's subnormal step is 2^-9: 1.75 * 2^-9 lies between 2^-9 and 2^-8 with f = 0.75,
    # so with 2 bits t = 3 and R = 0, 1, 2 go up
    x = np.full(4, 1.75 * 2.0**-9, F32)
    np.testing.assert_array_equal(q(x, "float8_e4m3fn", np.arange(4), 2), [2.0**-8] * 3 + [2.0**-9])
    # below the smallest subnormal: 0.25 * 2^-9 with 3 bits, t = 2: R = 0, 1 give 2^-9, the rest 0
    y = np.full(8, 0.25 * 2.0**-9, F32)
    np.testing.assert_array_equal(q(y, "float8_e4m3fn", np.arange(8), 3), [2.0**-9] * 2 + [0.0] * 6)
    # far below it (2^-40 of the step, float64 input): t = floor(2^-40 * 2^r) is 0 for r < 40 (never
    # up), 1 for r = 40 (R = 0 goes up), and 2^22 for r = 62 (R = 2^22 - 1 goes up, R = 2^22 does not)
    z = np.full(2, 2.0**-49)
    np.testing.assert_array_equal(q(z, "float8_e4m3fn", np.array([0, 2**39 - 1]), 39), [0.0, 0.0])
    np.testing.assert_array_equal(q(z, "float8_e4m3fn", np.array([0, 1]), 40), [2.0**-9, 0.0])
    np.testing.assert_array_equal(q(z, "float8_e4m3fn", np.array([2**22 - 1, 2**22]), 62), [2.0**-9, 0.0])


def test_top_binade_follows_the_overflow_rule():
    # 464 is halfway between e4m3fn's largest 448 and the next step 480: R = 0 of 1 bit rounds up,
    # which overflows to NaN (e4m3fn overflows to NaN); R = 1 gives 448
    x = np.array([464.0, 464.0, -464.0, -464.0], F32)
    r = q(x, "float8_e4m3fn", np.array([0, 1, 0, 1]), 1)
    assert np.isnan(r[0]) and np.isnan(r[2])
    assert r[1] == 448.0 and r[3] == -448.0
    # e5m2 (IEEE): 61440, halfway between 57344 and 65536, overflows to +-Inf when it goes up;
    # 59392 is a quarter of the way, so 1 bit never takes it up (t = 0) and 2 bits do for R = 0
    y = np.array([61440.0, 61440.0, -61440.0], F32)
    np.testing.assert_array_equal(q(y, "float8_e5m2", np.array([0, 1, 0]), 1), [np.inf, 57344.0, -np.inf])
    z = np.full(2, 59392.0, F32)
    np.testing.assert_array_equal(q(z, "float8_e5m2", np.array([0, 1]), 1), [57344.0, 57344.0])
    np.testing.assert_array_equal(q(z, "float8_e5m2", np.array([0, 1]), 2), [np.inf, 57344.0])
    # e2m1 saturates: 6.5 = 6 + 0.25 of the step 2 past 6; with 2 bits t = 1, R = 0 'up' stays at 6
    np.testing.assert_array_equal(q(np.full(2, 6.5, F32), "float4_e2m1fn", np.arange(2), 2), [6.0, 6.0])


def test_mx_block_keeps_each_random_number_at_its_position():
    # mxfp4 along axis 0 of a (32, 2) array: the elements move into blocks, each keeps random_bits[i, j].
    # Column 0: amax 4 gives the scale 2^(2 - 2) = 1, so 1.3 rounds in e2m1 as above (up iff R < 4).
    # Column 1: amax 8 gives the scale 2; 1.3 / 2 = 0.65 lies between 0.5 and 1.0 with f = 0.3,
    # t = floor(0.3 * 8) = 2, so it becomes 2.0 for R < 2 and 1.0 otherwise.
    x = np.full((32, 2), 1.3, F32)
    x[0] = [4.0, 8.0]
    i = np.arange(32)
    bits = np.stack([i % 8, (3 * i) % 8], axis=1)
    want = np.stack([np.where(i % 8 < 4, 1.5, 1.0), np.where((3 * i) % 8 < 2, 2.0, 1.0)], axis=1).astype(F32)
    want[0] = [4.0, 8.0]
    np.testing.assert_array_equal(q(x, "mxfp4", bits, 3, axis=0), want)
    np.testing.assert_array_equal(q(x.T.copy(), "mxfp4", bits.T.copy(), 3, axis=1), want.T)
    enc = lowbit.encode(x, "mxfp4", axis=0, rounding=SR, sr_bits=3, random_bits=bits)
    np.testing.assert_array_equal(lowbit.decode(enc), want)


def test_nvfp4_block():
    # Tensor amax 2688 = 6 * 448 gives S_enc = 448 * 6 / 2688 = 1. Block 0 holds 2688 (scale 448)
    # and zeros; block 1's amax 6 gives the scale e4m3(6 / 6) = 1, so 1.3 rounds in e2m1 as above.
    x = np.zeros(32, F32)
    x[0] = 2688.0
    x[16] = 6.0
    x[17:] = 1.3
    bits = np.zeros(32, np.int64)
    bits[17:] = np.arange(15) % 8
    want = x.copy()
    want[17:] = np.where(np.arange(15) % 8 < 4, 1.5, 1.0)
    np.testing.assert_array_equal(q(x, "nvfp4", bits, 3), want)


def test_int_per_group_block():
    # int4_g128: amax 7 gives the scale 7 / 7 = 1; 2.25 rounds up iff R < 1 (2 bits, t = 1)
    x = np.full(128, 2.25, F32)
    x[0] = 7.0
    bits = np.arange(128) % 4
    want = np.where(bits < 1, 3.0, 2.0).astype(F32)
    want[0] = 7.0
    np.testing.assert_array_equal(q(x, "int4_g128", bits, 2), want)


BLOCK_FORMATS = [
    n
    for n in catalog
    if isinstance(catalog[n], ScaledFormat) and isinstance(catalog[n].element, (FloatFormat, IntFormat))
]


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_every_block_format_keeps_random_numbers_with_their_elements(name):
    # the same blocks along axis 0 of x and along axis 1 of x.T: each element rounds with its own
    # number, so the results are transposes of each other
    x = np.random.default_rng(0).normal(size=(64, 48)).astype(F32)
    bits = np.random.default_rng(1).integers(0, 16, size=x.shape)
    a = q(x, name, bits, 4, axis=0)
    b = q(x.T.copy(), name, bits.T.copy(), 4, axis=1)
    np.testing.assert_array_equal(a, b.T)
    assert not np.array_equal(a, q(x, name, 15 - bits, 4, axis=0))  # the numbers matter


# ----- the distribution -----------------------------------------------------------------------

CASES = [("float8_e4m3fn", 17.3), ("float4_e2m1fn", 2.2), ("int4", -3.7), ("bfloat16", 1.00390625 + 2**-11)]


@pytest.mark.parametrize("r", [None, 62])
@pytest.mark.parametrize("name,value", CASES)
def test_many_bits_are_unbiased(name, value, r):
    # 100 seeds x 200 copies: a z-test at a fixed seed set, so the outcome is fixed too
    x = np.full(200, value)
    qs = np.concatenate([lowbit.quantize(x, name, rounding=SR, seed=s, sr_bits=r) for s in range(100)])
    lo, hi = ref.neighbours(catalog[name], value)
    assert set(np.unique(qs).tolist()) == {lo, hi}
    p = (value - lo) / (hi - lo)
    stderr = (hi - lo) * np.sqrt(p * (1 - p) / qs.size)
    assert abs(qs.mean() - value) < 4 * stderr


def _bias_formula(fmt, x: float, r: int) -> Fraction:
    """-(frac(f * 2^r) / 2^r) * ulp on the magnitude, with the sign of x (f: the fraction of the gap)."""
    lo, hi = ref.neighbours(fmt, abs(x))
    f = (Fraction(abs(x)) - Fraction(lo)) / (Fraction(hi) - Fraction(lo))
    scaled = f * 2**r
    bias = -(scaled - (scaled.numerator // scaled.denominator)) / 2**r * (Fraction(hi) - Fraction(lo))
    return bias if x > 0 else -bias


def _exhaustive_bias(x: np.ndarray, name: str, r: int) -> list[Fraction]:
    """E[q] - x over all 2^r random numbers, exactly (each value tiled 2^r times)."""
    tiled = np.repeat(x, 2**r)
    bits = np.tile(np.arange(2**r), x.size)
    vals = q(tiled, name, bits, r).reshape(x.size, 2**r).astype(np.float64)
    return [sum(map(Fraction, row)) / 2**r - Fraction(float(v)) for row, v in zip(vals, x, strict=True)]


@pytest.mark.parametrize("r", range(1, 9))
def test_bias_follows_its_formula_exactly(r):
    # a value sweep inside the range of each format, both signs
    rng = np.random.default_rng(r)
    for name, top in [("float8_e4m3fn", 400.0), ("float4_e2m1fn", 5.9), ("int8", 120.0), ("bfloat16", 1e3)]:
        x = rng.uniform(-top, top, 24)
        fmt = catalog[name]
        measured = _exhaustive_bias(x, name, r)
        expected = [_bias_formula(fmt, float(v), r) for v in x]
        assert measured == expected, name


def test_bias_of_one_point_three():
    # float32 1.3 is 1.2999999523; with r = 3, t = 4 of 8 random numbers go up: E[q] = 1.0 + 4/8 * 0.5
    (b,) = _exhaustive_bias(np.array([1.3], F32), "float4_e2m1fn", 3)
    assert b == Fraction(5, 4) - Fraction(float(F32(1.3)))


@pytest.mark.parametrize("r", [2, 4])
def test_few_bits_bias_is_visible_to_sampling(r):
    # 1.3 in e2m1 with r = 2: t = floor(0.6 * 4) = 2, E[q] = 1.25 (bias -0.05); with r = 4, t = 9,
    # E[q] = 1 + 9/16 * 0.5 = 1.28125. Seeds draw R uniformly: the mean lands on the formula.
    x = np.full(20_000, 1.3, F32)
    qs = lowbit.quantize(x, "float4_e2m1fn", rounding=SR, seed=99, sr_bits=r).astype(np.float64)
    t = int(0.6 * 2**r)
    mean = 1.0 + 0.5 * t / 2**r
    p = t / 2**r
    assert abs(qs.mean() - mean) < 4 * 0.5 * np.sqrt(p * (1 - p) / x.size)
    assert abs(qs.mean() - float(F32(1.3))) > 4 * 0.5 * np.sqrt(p * (1 - p) / x.size)  # the bias shows


# ----- reproducibility ------------------------------------------------------------------------

_M32 = 0xFFFFFFFF


def _hash32(x: int) -> int:
    x &= _M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _random62(seed: int, i: int) -> int:
    """The counter-based hash of (seed, i), written here from its definition in plain integers."""
    h1 = _hash32((i & _M32) ^ _hash32(seed ^ 0x9E3779B9))
    h1 = _hash32(h1 ^ ((i >> 32) & _M32) ^ _hash32((seed >> 32) ^ 0x85EBCA6B))
    h2 = _hash32(h1 ^ 0x27D4EB2F)
    return ((h1 & 0x7FFFFFFF) << 31) | (h2 & 0x7FFFFFFF)


@pytest.mark.parametrize("name", ["float8_e4m3fn", "mxfp4", "nvfp4", "int4_g128"])
def test_seed_draws_the_documented_numbers(name):
    # element i of x in C order draws random62(seed, i) >> (62 - r), whatever the block axis
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 4)).astype(F32)
    seed, r = 12345, 5
    bits = np.array([_random62(seed, i) >> (62 - r) for i in range(x.size)]).reshape(x.shape)
    for axis in (0, 1):
        a = lowbit.quantize(x, name, axis=axis, rounding=SR, seed=seed, sr_bits=r)
        np.testing.assert_array_equal(a, q(x, name, bits, r, axis=axis))
        np.testing.assert_array_equal(a, lowbit.quantize(x, name, axis=axis, rounding=SR, seed=seed, sr_bits=r))
        assert not np.array_equal(a, lowbit.quantize(x, name, axis=axis, rounding=SR, seed=seed + 1, sr_bits=r))


def test_sixty_two_bits_equal_the_default_rule_in_range():
    # for remainders of at most 62 bits the r-bit rule with r = 62 is the rule without sr_bits
    x = np.random.default_rng(2).normal(size=4096).astype(F32)
    for name in ["float8_e4m3fn", "bfloat16", "int8"]:
        a = lowbit.quantize(x, name, rounding=SR, seed=3)
        np.testing.assert_array_equal(a, lowbit.quantize(x, name, rounding=SR, seed=3, sr_bits=62))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "int4", "mxfp4", "nvfp4", "int4_g128", "mxint8"])
def test_cuda_equals_cpu(name):
    pytest.importorskip("numba.cuda")
    x = np.random.default_rng(6).normal(size=(2, 32)).astype(F32)
    bits = np.random.default_rng(7).integers(0, 2**6, size=x.shape)
    for kw in ({"seed": 9, "sr_bits": 6}, {"sr_bits": 6, "random_bits": bits}):
        cpu = lowbit.quantize(x, name, rounding=SR, target="cpu", **kw)
        gpu = lowbit.quantize(x, name, rounding=SR, target="cuda", **kw)
        np.testing.assert_array_equal(cpu.view(np.uint32), gpu.view(np.uint32))
    cpu = lowbit.encode(x, name, rounding=SR, sr_bits=6, random_bits=bits, target="cpu")
    gpu = lowbit.encode(x, name, rounding=SR, sr_bits=6, random_bits=bits, target="cuda")
    np.testing.assert_array_equal(cpu.codes, gpu.codes)


def test_device_array_with_random_bits():
    cuda = pytest.importorskip("numba.cuda")
    x = np.random.default_rng(8).normal(size=64).astype(F32)
    bits = np.arange(64) % 16
    out = lowbit.quantize(cuda.to_device(x), "float8_e5m2", rounding=SR, sr_bits=4, random_bits=bits)
    np.testing.assert_array_equal(out.copy_to_host(), q(x, "float8_e5m2", bits, 4))


# ----- the kernels against the oracle, on every code neighbourhood ----------------------------


def _neighbourhood_inputs(fmt) -> np.ndarray:
    """Points inside every gap between neighbouring finite values (and past the largest), both signs."""
    vals = np.unique(fmt.values[np.isfinite(fmt.values)]).astype(np.float64)
    top = vals[-1]
    step = 1.0 if not hasattr(fmt, "man_bits") else 2.0 ** (np.floor(np.log2(top)) - fmt.man_bits)
    ext = np.concatenate([vals, [top + step]])
    gaps = np.diff(ext)
    fractions = np.array([0.03, 0.25, 0.5, 0.61, 0.875, 0.999])
    x = (ext[:-1, None] + gaps[:, None] * fractions[None, :]).reshape(-1)
    return np.concatenate([x, -x]) if vals[0] < 0 or getattr(fmt, "signed", False) else x


FORMATS = ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float8_e5m2fnuz", "int4", "uint8"]


@pytest.mark.parametrize("r", [1, 3, 8, 62])
@pytest.mark.parametrize("name", FORMATS + ["e4m2_nosub", "ue4m3"])
def test_kernel_equals_oracle(name, r):
    fmt = CUSTOM_FORMATS.get(name) or catalog[name]
    x = _neighbourhood_inputs(fmt)
    bits = np.random.default_rng(r).integers(0, 2**r, size=x.size, dtype=np.int64)
    codes = lowbit.encode(x, fmt, rounding=SR, sr_bits=r, random_bits=bits).codes
    want = [ref.encode_value(fmt, float(v), SR, int(b), sr_bits=r) for v, b in zip(x, bits, strict=True)]
    np.testing.assert_array_equal(codes.astype(np.int64), want)
    # float32 input takes the same rule
    x32 = x.astype(F32)
    codes32 = lowbit.encode(x32, fmt, rounding=SR, sr_bits=r, random_bits=bits, nan="zero").codes
    want32 = [ref.encode_value(fmt, float(v), SR, int(b), sr_bits=r) for v, b in zip(x32, bits, strict=True)]
    np.testing.assert_array_equal(codes32.astype(np.int64), want32)


# ----- bad input ------------------------------------------------------------------------------


def test_bad_arguments_name_themselves():
    x = np.ones(4, F32)
    for bad in (0, 63, -1):
        with pytest.raises(ValueError, match="sr_bits"):
            lowbit.quantize(x, "fp8_e4m3", rounding=SR, seed=1, sr_bits=bad)
    for bad in (1.5, True, "4"):
        with pytest.raises(TypeError, match="sr_bits"):
            lowbit.quantize(x, "fp8_e4m3", rounding=SR, seed=1, sr_bits=bad)
    with pytest.raises(ValueError, match="sr_bits.*rounding"):
        lowbit.quantize(x, "fp8_e4m3", sr_bits=4)
    with pytest.raises(ValueError, match="sr_bits.*rounding"):
        lowbit.encode(x, "mxfp4", rounding="rtz", sr_bits=4)
    bits = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="random_bits.*seed"):
        lowbit.quantize(x, "fp8_e4m3", rounding=SR, seed=1, sr_bits=4, random_bits=bits)
    with pytest.raises(ValueError, match="random_bits.*sr_bits"):
        lowbit.quantize(x, "fp8_e4m3", rounding=SR, random_bits=bits)
    with pytest.raises(ValueError, match="random_bits.*rounding"):
        lowbit.quantize(x, "fp8_e4m3", random_bits=bits)
    with pytest.raises(ValueError, match="random_bits.*shape"):
        lowbit.quantize(x, "fp8_e4m3", rounding=SR, sr_bits=4, random_bits=np.zeros(5, np.int64))
    with pytest.raises(ValueError, match=r"random_bits.*\[0, 15\]"):
        lowbit.quantize(x, "fp8_e4m3", rounding=SR, sr_bits=4, random_bits=np.array([0, 1, 16, 2]))
    with pytest.raises(ValueError, match=r"random_bits.*\[0, 15\]"):
        lowbit.quantize(x, "mxfp4", rounding=SR, sr_bits=4, random_bits=np.array([0, 1, -1, 2]))
    with pytest.raises(TypeError, match="random_bits.*integer"):
        lowbit.quantize(x, "fp8_e4m3", rounding=SR, sr_bits=4, random_bits=np.zeros(4))
    # nearest-only rules keep their clear error: TWN's threshold, vector codebooks' nearest point
    with pytest.raises(ValueError, match="rounding.*twn.*'stochastic'"):
        lowbit.quantize(np.ones(64, F32), "twn", rounding=SR, sr_bits=4, random_bits=np.zeros(64, np.int64))
    with pytest.raises(ValueError, match="rounding.*vector codebooks.*'stochastic'"):
        lowbit.quantize(np.ones(64, F32), "higgs_p2_n16", rounding=SR, sr_bits=4, random_bits=np.zeros(64, np.int64))
    # codebooks take nearest and stochastic rounding, and say so for the other modes
    with pytest.raises(ValueError, match="rounding.*'rne'.*'stochastic', got 'rtz'"):
        lowbit.quantize(np.ones(64, F32), "nf4", rounding="rtz")


# ----- codebook and grid elements -------------------------------------------------------------
# They round on the host (a table search), so there is no CUDA kernel to compare with; only the
# seed's draw runs on the target, and test_blocks_properties.py compares that CPU against CUDA.

NF4 = catalog["nf4_codebook"]


def _f32(v: float) -> Fraction:
    return Fraction(float(F32(v)))


def test_nf4_by_hand():
    # 0.5 lies between NF4's 0.44070983 and 0.56261700 (float32 values): f = 0.0592902 / 0.1219072
    # = 0.4864, so with 3 bits t = floor(3.891) = 3 and R = 0, 1, 2 go up
    lo, hi = _f32(0.44070982933044434), _f32(0.5626170039176941)
    assert math.floor((Fraction(1, 2) - lo) / (hi - lo) * 8) == 3
    x = np.full(8, 0.5, F32)
    want = [float(F32(0.5626170039176941))] * 3 + [float(F32(0.44070982933044434))] * 5
    np.testing.assert_array_equal(q(x, "nf4_codebook", np.arange(8), 3), want)
    # codes are indices in the table: 0.5626 is code 13, 0.4407 code 12
    codes = lowbit.encode(x, "nf4_codebook", rounding=SR, sr_bits=3, random_bits=np.arange(8)).codes
    np.testing.assert_array_equal(codes, [13] * 3 + [12] * 5)
    # -0.5 rounds on its magnitude, between 0.39491749 and 0.52507305: f = 0.1050825 / 0.1301556
    # = 0.8074, t = floor(6.459) = 6, so R = 0..5 go away from zero to -0.52507305
    lo, hi = _f32(0.39491748809814453), _f32(0.5250730514526367)
    assert math.floor((Fraction(1, 2) - lo) / (hi - lo) * 8) == 6
    want = [-float(hi)] * 6 + [-float(lo)] * 2
    np.testing.assert_array_equal(q(-x, "nf4_codebook", np.arange(8), 3), want)
    # in the block format nf4 an absmax of 1 gives the scale 1: the elements round as above
    y = np.full(64, 0.5, F32)
    y[0] = 1.0
    bits = np.arange(64) % 8
    want = np.where(bits < 3, F32(0.5626170039176941), F32(0.44070982933044434))
    want[0] = 1.0
    np.testing.assert_array_equal(q(y, "nf4", bits, 3), want)
    enc = lowbit.encode(y, "nf4", rounding=SR, sr_bits=3, random_bits=bits)
    np.testing.assert_array_equal(lowbit.decode(enc), want)


def test_table_values_stay_and_the_ends_clamp():
    table = np.array(NF4.values, F32)
    x = np.concatenate([table, [1.5, -7.0, np.inf, -np.inf]]).astype(F32)
    for r in (1, 8, 62):
        for bits in (np.zeros(x.size, np.int64), np.full(x.size, 2**r - 1)):
            want = np.concatenate([table, [1.0, -1.0, 1.0, -1.0]])
            np.testing.assert_array_equal(q(x, "nf4_codebook", bits, r), want)


E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


@pytest.mark.parametrize("r", [1, 3, 8, 62])
def test_a_codebook_of_e2m1_values_rounds_as_the_float_kernel(r):
    # the same rule on the same neighbours: a codebook holding e2m1's values gives float4_e2m1fn's
    # results for every random number, both signs, past the ends (e2m1 saturates) included
    book = CodebookFormat(tuple(sorted({-v for v in E2M1_VALUES} | set(E2M1_VALUES))))
    x = np.random.default_rng(r).uniform(-7, 7, 4000).astype(F32)
    bits = np.random.default_rng(r + 1).integers(0, 2**r, size=x.size, dtype=np.int64)
    np.testing.assert_array_equal(q(x, book, bits, r), q(x, "float4_e2m1fn", bits, r))


def _oracle_code(table: list[Fraction], v: Fraction, r: int, bits: int) -> int:
    """The rule from its definition, in Fractions: clamp, neighbours lo <= v < hi, up iff bits < t;
    a negative v as its magnitude in the mirrored table."""
    if v < 0:
        return len(table) - 1 - _oracle_code([-u for u in reversed(table)], -v, r, bits)
    v = min(max(v, table[0]), table[-1])
    k = min(max(i for i, u in enumerate(table) if u <= v), len(table) - 2)
    t = math.floor((v - table[k]) / (table[k + 1] - table[k]) * 2**r)
    return k + (bits < t)


TABLES = {
    "nf4": NF4,
    # exponents far apart: 2^-70 and 1 differ by 70 binades, past what float64 holds in one number
    "wide": CodebookFormat((-3.0, -(2.0**-40), 0.0, 2.0**-70, 1e-3, 1.0, 7.5)),
    "no zero": CodebookFormat((-1.0, -0.25, 0.25, 1.0)),
    "seq_2bit": GridFormat(2.0, 0.5, -2, 1),
}


@pytest.mark.parametrize("r", [1, 5, 23, 62])
@pytest.mark.parametrize("name", list(TABLES))
def test_codebooks_equal_the_fraction_oracle(name, r):
    fmt = TABLES[name]
    table = [Fraction(float(v)) for v in fmt.table]
    rng = np.random.default_rng(r)
    top = float(fmt.table[-1])
    x = np.concatenate(
        [rng.uniform(-1.2 * top, 1.2 * top, 300), np.ldexp(rng.uniform(-1, 1, 100), -rng.integers(0, 80, 100))]
    )
    x = x.astype(F32)
    bits = rng.integers(0, 2**r, size=x.size, dtype=np.int64)
    codes = lowbit.encode(x, fmt, rounding=SR, sr_bits=r, random_bits=bits).codes
    want = [_oracle_code(table, Fraction(float(v)), r, int(b)) for v, b in zip(x, bits, strict=True)]
    np.testing.assert_array_equal(codes.astype(np.int64), want)


def test_the_floor_is_exact_where_float64_is_not():
    # table (-1, 2^-60), v = 2^-61: v - lo = 1 + 2^-61 and hi - lo = 1 + 2^-60 round to 1 in
    # float64 (f = 1, t = 2^r), but f = (1 + 2^-61) / (1 + 2^-60) < 1, so t = 2^r - 1: R = 2^r - 1 stays
    book = CodebookFormat((-1.0, 2.0**-60))
    for r in (3, 40, 61):
        f = (1 + Fraction(1, 2**61)) / (1 + Fraction(1, 2**60))
        assert math.floor(f * 2**r) == 2**r - 1
        got = q(np.full(2, 2.0**-61, F32), book, np.array([2**r - 2, 2**r - 1]), r)
        np.testing.assert_array_equal(got, [2.0**-60, -1.0])
    # 62 bits: f * 2^62 = 2^62 - 2 / (1 + 2^-60), just above 2^62 - 2, so t = 2^62 - 2
    assert math.floor(f * 2**62) == 2**62 - 2
    got = q(np.full(2, 2.0**-61, F32), book, np.array([2**62 - 3, 2**62 - 2]), 62)
    np.testing.assert_array_equal(got, [2.0**-60, -1.0])


@pytest.mark.parametrize("r", range(1, 9))
def test_codebook_bias_over_every_random_number(r):
    # the mean over all 2^r random numbers is lo + (t / 2^r) (hi - lo) on the magnitude, t counted in
    # Fractions here: the bias is -(frac(f 2^r) / 2^r) (hi - lo), toward zero, below one 2^r-th of the gap
    for fmt in (NF4, TABLES["seq_2bit"]):
        x = np.random.default_rng(r).uniform(-1, 1, 40).astype(F32)
        table = [Fraction(float(v)) for v in fmt.table]
        tiled = np.repeat(x, 2**r)
        bits = np.tile(np.arange(2**r), x.size)
        vals = q(tiled, fmt, bits, r).reshape(x.size, 2**r).astype(np.float64)
        for row, v in zip(vals, x, strict=True):
            a = abs(Fraction(float(v)))
            mirrored = table if v >= 0 else [-u for u in reversed(table)]
            a = min(a, mirrored[-1])
            k = min(max(i for i, u in enumerate(mirrored) if u <= a), len(mirrored) - 2)
            lo, hi = mirrored[k], mirrored[k + 1]
            gap = hi - lo
            t = math.floor((a - lo) / gap * 2**r)
            mean = sum(map(Fraction, row)) / 2**r * (1 if v >= 0 else -1)  # in the mirrored table
            assert mean == lo + Fraction(t, 2**r) * gap
            assert -gap / 2**r < mean - a <= 0


def test_codebook_seed_draws_the_documented_numbers():
    # sr_bits: element i of x in C order draws random62(seed, i) >> (62 - r), whatever the block axis;
    # without sr_bits, 62 bits of random62(seed, i) in the order of the blocks' rows
    x = np.random.default_rng(5).normal(size=(64, 2)).astype(F32)
    seed, r = 77, 4
    bits = np.array([_random62(seed, i) >> (62 - r) for i in range(x.size)]).reshape(x.shape)
    for name in ("nf4", "paretoq_2bit", "nf4_codebook"):
        a = lowbit.quantize(x, name, axis=0, rounding=SR, seed=seed, sr_bits=r)
        np.testing.assert_array_equal(a, q(x, name, bits, r, axis=0))
    full = np.array([_random62(seed, i) for i in range(x.size)]).reshape(x.shape)
    a = lowbit.quantize(x, "nf4_codebook", rounding=SR, seed=seed)
    np.testing.assert_array_equal(a, q(x, "nf4_codebook", full, 62))
    # nf4 along axis 0: block j is column j of x, so x[i, j] is element j * 64 + i of the rows
    by_rows = full.reshape(-1).reshape(2, 64).T
    a = lowbit.quantize(x, "nf4", axis=0, rounding=SR, seed=seed)
    np.testing.assert_array_equal(a, q(x, "nf4", by_rows, 62, axis=0))


@pytest.mark.parametrize("name", ["nf4_codebook", "ternary_codebook"])
def test_codebook_many_bits_are_unbiased(name):
    # 0.3 between NF4's 0.24611 and 0.33792, and between the ternary 0 and 1: 100 seeds x 200 copies
    x = np.full(200, 0.3, F32)
    qs = np.concatenate([lowbit.quantize(x, name, rounding=SR, seed=s) for s in range(100)]).astype(np.float64)
    table = catalog[name].table.astype(np.float64)
    hi = table[np.searchsorted(table, 0.3)]
    lo = table[np.searchsorted(table, 0.3) - 1]
    assert set(np.unique(qs).tolist()) == {lo, hi}
    v = float(F32(0.3))
    p = (v - lo) / (hi - lo)
    assert abs(qs.mean() - v) < 4 * (hi - lo) * np.sqrt(p * (1 - p) / qs.size)


# ----- lowbit.torch: every path checks the same way -------------------------------------------


@pytest.mark.parametrize("target", [None, "cuda"])
@pytest.mark.parametrize("name", ["mxfp4", "nf4", "float8_e4m3fn"])
def test_torch_checks_random_bits_on_every_path(name, target):
    torch = pytest.importorskip("torch")
    if target == "cuda":
        cuda = pytest.importorskip("numba.cuda")
        if not cuda.is_available():
            pytest.skip("no CUDA device and the CUDA simulator is off")
    from lowbit.torch import quantize as tq

    t = torch.ones(2, 32)
    bits = torch.zeros(2, 32, dtype=torch.int64)
    # mxfp4 with nearest rounding and target='cuda' is the fused device kernel's case
    with pytest.raises(ValueError, match="random_bits.*rounding"):
        tq(t, name, random_bits=bits, target=target)
    with pytest.raises(ValueError, match="random_bits.*sr_bits"):
        tq(t, name, rounding=SR, random_bits=bits, target=target)
    with pytest.raises(ValueError, match="random_bits.*seed"):
        tq(t, name, rounding=SR, seed=1, sr_bits=2, random_bits=bits, target=target)
    with pytest.raises(ValueError, match="random_bits.*shape"):
        tq(t, name, rounding=SR, sr_bits=2, random_bits=bits[:, :16], target=target)
    with pytest.raises(ValueError, match="random_bits"):
        tq(t, name, rounding=SR, sr_bits=2, random_bits=bits + 4, target=target)
    # and a valid call gives NumPy's values
    x = np.random.default_rng(3).normal(size=(2, 32)).astype(F32)
    good = np.random.default_rng(4).integers(0, 4, size=x.shape)
    got = tq(torch.from_numpy(x), name, rounding=SR, sr_bits=2, random_bits=torch.from_numpy(good), target=target)
    np.testing.assert_array_equal(got.numpy(), q(x, name, good, 2))


# ----- studies --------------------------------------------------------------------------------

STUDY = """schema_version: 1
name: sr
formats:
  - {{format: nf4, rounding: stochastic, seed: 3, sr_bits: 2}}
  - {{format: mxfp4, rounding: stochastic, seed: 3, sr_bits: 1}}
  - {{format: mxfp4, rounding: stochastic, seed: 3}}
  - sweep: {{format: [int4_g128], rounding: [stochastic], sr_bits: [1, 4]}}
workloads:
  - {{kind: npy, path: x.npy}}
metrics: [mse]
{extra}"""


def _study_file(tmp_path, extra: str = "", formats: str | None = None):
    text = STUDY.format(extra=extra)
    if formats is not None:
        text = text.split("formats:")[0] + "formats:\n" + formats + "\nworkloads:" + text.split("workloads:")[1]
    path = tmp_path / "sr.yaml"
    path.write_text(text)
    return path


def test_a_study_passes_sr_bits_to_quantize(tmp_path):
    from lowbit.study import load_study, run_study

    x = np.random.default_rng(0).normal(size=(4, 128)).astype(F32)
    np.save(tmp_path / "x.npy", x)
    table = run_study(_study_file(tmp_path), tmp_path / "out", progress=False, base=tmp_path).table
    assert list(table["status"]) == ["ok"] * 5
    by_name = dict(zip(table["format"], table["mse"], strict=True))
    cases = {
        "nf4 rounding=stochastic sr_bits=2": ("nf4", 2, 3),
        "mxfp4 rounding=stochastic sr_bits=1": ("mxfp4", 1, 3),
        "mxfp4 rounding=stochastic": ("mxfp4", None, 3),
        "int4_g128 rounding=stochastic sr_bits=1": ("int4_g128", 1, 0),
        "int4_g128 rounding=stochastic sr_bits=4": ("int4_g128", 4, 0),
    }
    for name, (fmt, r, seed) in cases.items():
        y = lowbit.quantize(x, fmt, rounding=SR, seed=seed, sr_bits=r).astype(np.float64)
        assert by_name[name] == pytest.approx(np.mean((y - x) ** 2), rel=1e-12), name
    assert by_name["mxfp4 rounding=stochastic sr_bits=1"] != by_name["mxfp4 rounding=stochastic"]
    # a point without sr_bits dumps, and so hashes, as before sr_bits
    from lowbit.study.point import payloads
    from lowbit.study.schema import FormatSpec

    keys = {"format", "element", "block", "scale", "rule", "asymmetric", "rounding", "seed", "hadamard"}
    assert set(FormatSpec(format="mxfp4", rounding=SR).model_dump()) == keys | {"hadamard_seed", "label"}
    points = payloads(load_study(_study_file(tmp_path)), tmp_path, "v")
    assert [("sr_bits" in p["spec"]) for p in points] == [True, True, False, True, True]
    assert len({p["hash"] for p in points}) == 5


@pytest.mark.parametrize(
    "entry,problem",
    [
        ("{format: mxfp4, rounding: stochastic, sr_bits: 0}", "formats[0].sr_bits: must be an integer from 1 to 62"),
        ("{format: mxfp4, rounding: stochastic, sr_bits: 63}", "formats[0].sr_bits: must be an integer from 1 to 62"),
        ("{format: mxfp4, rounding: stochastic, sr_bits: true}", "formats[0].sr_bits: "),
        ("{format: mxfp4, rounding: stochastic, sr_bits: 2.5}", "formats[0].sr_bits: "),
        (
            "{format: mxfp4, sr_bits: 4}",
            "formats[0]: sr_bits: goes with rounding 'stochastic' only, got rounding 'rne'",
        ),
        ("{sweep: {format: [nf4], sr_bits: [0]}}", "formats[0].sweep: sr_bits: "),
    ],
)
def test_study_sr_bits_errors_name_their_path(tmp_path, entry, problem):
    from lowbit.study import load_study
    from lowbit.study.errors import StudyError

    with pytest.raises(StudyError) as err:
        load_study(_study_file(tmp_path, formats=f"  - {entry}"))
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_torch_cuda_tensor_checks_random_bits_before_the_fused_kernel():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or os.environ.get("NUMBA_ENABLE_CUDASIM") != "0":
        pytest.skip("needs a CUDA GPU and NUMBA_ENABLE_CUDASIM=0 (scripts/gpu_check.sh)")
    from lowbit.torch import quantize as tq

    t = torch.ones(2, 32, device="cuda")
    with pytest.raises(ValueError, match="random_bits.*rounding"):
        tq(t, "mxfp4", random_bits=torch.zeros(2, 32, dtype=torch.int64, device="cuda"))
