"""MX9, MX6 and MX4 (shared micro-exponents, Rouhani et al., ISCA 2023) against hand-worked
blocks and an independent NumPy implementation of the paper's rule written here.

The rule (README, "MX9, MX6, MX4"): a block of 16 has the shared exponent E = floor(log2 amax)
(E8M0, clipped to [-127, 127]); each sub-block of 2 the shift d = min(E - E_sub, 1), E_sub the
exponent of its own largest |x|; an element is k * 2^(E - d - (m - 1)) with the integer k = x over
that unit rounded half to even and clipped to +-(2^m - 1): m = 7, 4, 2 magnitude bits.
"""

import numpy as np
import pytest

import lowbit
from lowbit.simulator.host.blocks import ElementRounding, _mx_args, device_rows_kernel, fused_mx
from lowbit.simulator.host.encoded import Encoded
from lowbit.simulator.host.packing import unpack_codes
from lowbit.simulator.kernels.rounding import Rounding

F32 = np.float32
MAGNITUDE_BITS = {"mx9": 7, "mx6": 4, "mx4": 2}


# ----- the independent implementation ------------------------------------------------------------
def _floor_log2(a: np.ndarray) -> np.ndarray:
    """floor(log2 a) of float64 magnitudes, -127 for zero, clipped to E8M0's [-127, 127]."""
    mant, exp = np.frexp(a)
    return np.clip(np.where(a > 0, exp - 1, -127), -127, 127)


def paper_rule(x: np.ndarray, m: int, block: int = 16, sub: int = 2):
    """(values, element integers k, E, d) of finite x (length a multiple of `block`) by the paper's
    definition, in float64 (every step exact but the rounding of x / unit)."""
    b = x.astype(np.float64).reshape(-1, block)
    e = _floor_log2(np.abs(b).max(axis=1))
    e_sub = _floor_log2(np.abs(b).reshape(b.shape[0], -1, sub).max(axis=2))
    d = np.minimum(e[:, None] - e_sub, 1)
    unit = np.ldexp(1.0, np.repeat(e[:, None] - d, sub, axis=1) - (m - 1))
    top = 2**m - 1
    k = np.clip(np.rint(b / unit), -top, top)  # rint: half to even
    # + 0.0: an element that rounds to zero is the integer 0, +0 whatever the sign of x
    return (k * unit).reshape(x.shape) + 0.0, k.astype(np.int64).reshape(x.shape), e, d


def random_blocks(n: int, seed: int) -> np.ndarray:
    """Normal values with a magnitude per block over 2^-40 .. 2^40, outliers, zero pairs, ties."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * np.repeat(2.0 ** rng.uniform(-40, 40, n // 16), 16)
    out = rng.random(n) < 0.01
    x[out] *= 2.0 ** rng.integers(2, 12, out.sum())
    pairs = rng.random(n // 2) < 0.05
    x[np.repeat(pairs, 2)] = 0.0
    tie = rng.random(n) < 0.02  # half-integers of a small unit: ties of the element rounding
    x[tie] = (rng.integers(-40, 40, tie.sum()) + 0.5) * 2.0 ** rng.integers(-6, 0, tie.sum())
    return x.astype(F32)


@pytest.mark.parametrize("name", ["mx9", "mx6", "mx4"])
def test_bit_for_bit_against_the_paper_rule(name):
    m = MAGNITUDE_BITS[name]
    x = random_blocks(1 << 17, seed=m)
    values, k, e, d = paper_rule(x, m)
    enc = lowbit.encode(x, name)
    np.testing.assert_array_equal(lowbit.quantize(x, name).view(np.uint32), values.astype(F32).view(np.uint32))
    np.testing.assert_array_equal(enc.codes, (k % (1 << (m + 1))).astype(np.uint8))  # two's complement
    np.testing.assert_array_equal(enc.scales, (e + 127).astype(np.uint8))
    np.testing.assert_array_equal(enc.micro, d.astype(np.uint8))
    assert (d == 1).any() and (d == 0).any()


# ----- hand-worked blocks --------------------------------------------------------------------------
# MX6 (m = 4). amax 3.9: E = 1, scale code 128. Sub-blocks (unit 2^(E - d - 3)):
#   0  [3, -1.25]       E_sub 1, d 0, unit 1/4: k 12, -5
#   1  [1.5, 0.4]       E_sub 0 (one binade below), d 1, unit 1/8: k 12, 3.2 -> 3 (0.375)
#   2  [0.7, -0.2]      E_sub -1 (two below), d = min(2, 1) = 1: 5.6 -> 6, -1.6 -> -2
#   3  [0, 0]           all zero: E_sub -127, d 1
#   4  [0.3125, 0.1875] d 1: 2.5 -> 2 and 1.5 -> 2 (ties to even)
#   5  [-3.9, 0]        d 0: -15.6 -> -16, saturates at -15 (-3.75)
#   6  [1, 1.0625]      d 1: 8 and 8.5 -> 8 (tie)
#   7  [-2, 2.125]      d 0: -8 and 8.5 -> 8 (tie)
HAND_X = [3.0, -1.25, 1.5, 0.4, 0.7, -0.2, 0.0, 0.0, 0.3125, 0.1875, -3.9, 0.0, 1.0, 1.0625, -2.0, 2.125]
HAND_K = [12, -5, 12, 3, 6, -2, 0, 0, 2, 2, -15, 0, 8, 8, -8, 8]
HAND_D = [0, 1, 1, 1, 1, 0, 1, 0]
HAND_V = [3.0, -1.25, 1.5, 0.375, 0.75, -0.25, 0, 0, 0.25, 0.25, -3.75, 0, 1.0, 1.0, -2.0, 2.0]


def test_hand_worked_mx6_block():
    x = np.asarray(HAND_X, F32)
    enc = lowbit.encode(x, "mx6")
    assert enc.scales.tolist() == [128]
    assert enc.micro.tolist() == [HAND_D]
    assert enc.codes.tolist() == [k % 32 for k in HAND_K]
    np.testing.assert_array_equal(lowbit.decode(enc), HAND_V)
    np.testing.assert_array_equal(lowbit.quantize(x, "mx6"), HAND_V)


def test_hand_worked_mx4_and_mx9():
    # MX4 (m = 2, k in -3..3): E = 1; [3, 1]: d 0, unit 1: 3, 1; [0.75, 0.3]: E_sub -1, d 1, unit 1/2:
    # 1.5 -> 2 (tie to even), 0.6 -> 1; the rest zero (d 1).
    x = np.zeros(16, F32)
    x[:4] = [3.0, 1.0, 0.75, 0.3]
    enc = lowbit.encode(x, "mx4")
    assert enc.micro.tolist() == [[0, 1, 1, 1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(lowbit.decode(enc)[:4], [3.0, 1.0, 1.0, 0.5])
    # MX9 (m = 7, unit 2^(E - d - 6)): amax 1.0 (E 0, code 127); 0.3 in a sub-block of its own:
    # d 1, unit 2^-7: 38.4 -> 38, 0.296875. 1.0 + 2^-7 with d 0: 64.5 -> 64 (tie to even).
    y = np.zeros(16, F32)
    y[:3] = [1.0, 1.0 + 2.0**-7, 0.3]
    enc9 = lowbit.encode(y, "mx9")
    assert enc9.scales.tolist() == [127] and enc9.micro[0, :2].tolist() == [0, 1]
    np.testing.assert_array_equal(lowbit.decode(enc9)[:3], [1.0, 1.0, 38 * 2.0**-7])


def test_nan_inf_and_all_zero_blocks():
    x = np.concatenate([np.asarray(HAND_X, F32), np.zeros(16, F32), np.full(16, 1.0, F32)])
    x[33] = np.nan
    y = x.copy()
    y[33] = np.inf
    for data in (x, y):
        enc = lowbit.encode(data, "mx6")
        assert enc.scales.tolist() == [128, 0, 255]  # all-zero: 2^-127; NaN/Inf: E8M0's NaN
        assert enc.micro[1].tolist() == [0] * 8  # E_sub = E = -127 in an all-zero block
        assert enc.micro[2].tolist() == [0] * 8 and enc.codes[32:].tolist() == [0] * 16
        out = lowbit.decode(enc)
        np.testing.assert_array_equal(out[:16], HAND_V)
        np.testing.assert_array_equal(out[16:32], 0)
        assert np.isnan(out[32:]).all()
        np.testing.assert_array_equal(lowbit.quantize(data, "mx6").view(np.uint32), out.view(np.uint32))


def test_partial_and_short_blocks_pad_with_zeros():
    x = np.asarray([*HAND_X, 1.0, 0.25, 0.3], F32)  # a block of 16 and one of 3
    enc = lowbit.encode(x, "mx6")
    assert enc.scales.shape == (2,) and enc.micro.shape == (2, 8)
    # second block: E 0; [1, 0.25] d 0 (unit 1/8: 8, 2); [0.3, pad] E_sub -2, d 1 (unit 1/16: 4.8 -> 5)
    assert enc.micro[1].tolist() == [0, 1, 1, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(lowbit.decode(enc), [*HAND_V, 1.0, 0.25, 0.3125])
    short = lowbit.encode(np.asarray([1.0, 0.25, 0.3], F32), "mx6")  # an axis shorter than a block
    assert short.micro.shape == (1, 8)
    np.testing.assert_array_equal(lowbit.decode(short), [1.0, 0.25, 0.3125])


def test_tiny_values_and_the_top_of_float32():
    # amax 2^-128 (subnormal): E clips to -127 and so does E_sub of 2^-130: d 0, unit 2^-130 (MX6)
    enc = lowbit.encode(np.asarray([2.0**-128, 2.0**-130], F32), "mx6")
    assert enc.scales.tolist() == [0] and enc.micro[0, 0] == 0
    np.testing.assert_array_equal(lowbit.decode(enc), [2.0**-128, 2.0**-130])
    # FLT_MAX: E 127, d 0, unit 2^124: 15.99.. saturates at 15 (finite); 1e38 in the next sub-block
    # (E_sub 126): d 1, unit 2^123, 1e38 / 2^123 = 9.40 -> 9
    top = lowbit.quantize(np.asarray([np.finfo(F32).max, 0.0, 1e38], F32), "mx6")
    np.testing.assert_array_equal(top, [15 * 2.0**124, 0.0, 9 * 2.0**123])


@pytest.mark.parametrize("name", ["mx9", "mx6", "mx4"])
def test_decode_encode_is_quantize_and_packing_round_trips(name):
    x = random_blocks(4096 + 16, seed=3)[:4100].reshape(41, 100)
    x[5, 7] = np.nan
    for axis in (0, 1):
        enc = lowbit.encode(x, name, axis=axis)
        out = lowbit.quantize(x, name, axis=axis)
        np.testing.assert_array_equal(lowbit.decode(enc).view(np.uint32), out.view(np.uint32))
        bits = lowbit.get_format(name).bits
        codes = unpack_codes(enc.packed(), bits, enc.codes.size).reshape(enc.codes.shape)
        np.testing.assert_array_equal(codes, enc.codes)
        micro = unpack_codes(enc.packed_micro(), 1, enc.micro.size).reshape(enc.micro.shape)
        np.testing.assert_array_equal(micro, enc.micro)


def test_packed_micro_layout():
    enc = lowbit.encode(np.asarray(HAND_X, F32), "mx6")
    assert enc.packed_micro() == bytes([0b01011110])  # sub-block j in bit j
    assert enc.packed_micro("msb_first") == bytes([0b01111010])
    with pytest.raises(ValueError, match="no micro-exponents"):
        lowbit.encode(np.ones(32, F32), "mxint8").packed_micro()


def test_bits_per_element():
    assert [lowbit.bits_per_element(n) for n in ("mx9", "mx6", "mx4")] == [9.0, 6.0, 4.0]
    # 8 + (8 scale bits + 8 micro bits per block) / elements per block: a block of 4 (an axis of 20)
    assert lowbit.get_format("mx6").bits_per_element_in((20,)) == 5 + 2 * 16 / 20


def test_check_encoded_names_the_micro_field():
    enc = lowbit.encode(np.asarray(HAND_X, F32), "mx6")
    cases = [
        (None, "needs its sub-block micro-exponents"),
        (np.zeros((1, 7), np.uint8), "shape"),
        (np.full((1, 8), 2, np.uint8), "outside"),
        (np.zeros((1, 8), np.float32), "integer array"),
    ]
    for micro, message in cases:
        bad = Encoded(enc.codes, enc.format, enc.shape, enc.scales, None, enc.meta, micro)
        with pytest.raises((ValueError, TypeError), match=message):
            lowbit.decode(bad)
    other = lowbit.encode(np.ones(32, F32), "mxint8")
    with pytest.raises(ValueError, match="has no micro-exponents"):
        lowbit.decode(Encoded(other.codes, other.format, other.shape, other.scales, None, other.meta, enc.micro))


def test_spec_validation():
    micro = lowbit.formats.MicroExponent()
    int5 = lowbit.formats.IntFormat(5, symmetric=True)
    e8m0 = lowbit.get_format("float8_e8m0fnu")
    with pytest.raises(ValueError, match="symmetric integer"):
        lowbit.formats.ScaledFormat(lowbit.get_format("float4_e2m1fn"), 16, scale=e8m0, rule="ocp_floor", micro=micro)
    with pytest.raises(ValueError, match="ocp_floor"):
        lowbit.formats.ScaledFormat(int5, 16, scale=e8m0, rule="ceil", micro=micro)
    with pytest.raises(ValueError, match="multiple of the sub-block"):
        lowbit.formats.ScaledFormat(int5, 15, scale=e8m0, rule="ocp_floor", micro=micro)
    with pytest.raises(ValueError, match="bits"):
        lowbit.formats.MicroExponent(2, 5)


def test_two_bit_micro_exponents_follow_the_general_rule():
    # d = min(E - E_sub, 3): a sub-block 5 binades below shifts by 3
    fmt = lowbit.get_format("mx6", micro=lowbit.formats.MicroExponent(2, 2))
    x = np.zeros(16, F32)
    x[:4] = [2.0, 0.0, 2.0**-4 * 1.3, 2.0**-5]
    enc = lowbit.encode(x, fmt)
    assert enc.micro[0, :2].tolist() == [0, 3] and fmt.bits_per_element() == 5 + 0.5 + 1.0
    # unit 2^(1 - 3 - 3) = 2^-5: 1.3 * 2^-4 / 2^-5 = 2.6 -> 3
    np.testing.assert_array_equal(lowbit.decode(enc)[:4], [2.0, 0.0, 3 * 2.0**-5, 2.0**-5])


def test_fused_kernels_decline():
    fmt = lowbit.get_format("mx6")
    assert _mx_args(fmt, Rounding.RNE) is None
    assert device_rows_kernel(fmt, Rounding.RNE, None) is None
    assert fused_mx(np.ones((2, 16), F32), fmt, ElementRounding()) is None


def test_device_input_and_cuda_target_match_the_host():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    x = np.asarray(HAND_X * 2, F32)
    host = lowbit.quantize(x, "mx6")
    np.testing.assert_array_equal(np.asarray(lowbit.quantize(x, "mx6", target="cuda")), host)
    dev = lowbit.quantize(cuda.to_device(x), "mx6")
    got = dev.copy_to_host() if hasattr(dev, "copy_to_host") else np.asarray(dev)
    np.testing.assert_array_equal(got, host)


# ----- GEMM ---------------------------------------------------------------------------------------
def _operands(seed: int, m: int = 6, k: int = 80, n: int = 5, spread: int = 3):
    """a with magnitudes over 2^-spread .. 2^spread a block, b over 2^-3 .. 2^3 an element."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)) * np.repeat(2.0 ** rng.integers(-spread, spread, (m, k // 16)), 16, axis=1)
    a = (a * 2.0 ** rng.integers(-3, 3, (m, k))).astype(F32)
    b = (rng.standard_normal((k, n)) * 2.0 ** rng.integers(-3, 3, (k, n))).astype(F32)
    return a, b


def _hardware_sum(a, b, name: str) -> np.ndarray:
    """The product from the encoded fields as a unit computes it: integer products of a sub-block
    shifted by d_a + d_b, a block's sum times 2^(E_a + E_b) and the two fixed-point steps."""
    ea, eb = lowbit.encode(a, name, axis=1), lowbit.encode(b, name, axis=0)
    step = lowbit.get_format(name).element_step
    m = MAGNITUDE_BITS[name] + 1
    ka = np.where(ea.codes >= 1 << (m - 1), ea.codes.astype(np.int64) - (1 << m), ea.codes)
    kb = np.where(eb.codes >= 1 << (m - 1), eb.codes.astype(np.int64) - (1 << m), eb.codes)
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            for blk in range(a.shape[1] // 16):
                s = 0.0
                for sb in range(8):
                    kk = slice(blk * 16 + 2 * sb, blk * 16 + 2 * sb + 2)
                    shift = int(ea.micro[i, blk, sb]) + int(eb.micro[j, blk, sb])
                    s += float(np.dot(ka[i, kk], kb[kk, j])) * 2.0**-shift
                exps = int(ea.scales[i, blk]) + int(eb.scales[j, blk]) - 254
                out[i, j] += s * 2.0**exps * step * step
    return out


@pytest.mark.parametrize("name", ["mx9", "mx6", "mx4"])
def test_matmul_exact_is_the_hardware_sum_and_the_dequantized_product(name):
    a, b = _operands(seed=MAGNITUDE_BITS[name])
    exact = lowbit.simulator.matmul(a, b, name, name, accumulator="exact")
    np.testing.assert_array_equal(exact, _hardware_sum(a, b, name))
    deq = lowbit.quantize(a, name, axis=1).astype(np.float64) @ lowbit.quantize(b, name, axis=0).astype(np.float64)
    np.testing.assert_array_equal(exact, deq)  # every partial sum here is exact in float64


@pytest.mark.parametrize("name", ["mx9", "mx6", "mx4"])
def test_matmul_fp32_rounds_each_block_sum_into_the_accumulator(name):
    a, b = _operands(seed=11 + MAGNITUDE_BITS[name], k=320, spread=14)
    qa = lowbit.quantize(a, name, axis=1).astype(np.float64)
    qb = lowbit.quantize(b, name, axis=0).astype(np.float64)
    expected = np.zeros((a.shape[0], b.shape[1]), F32)
    for blk in range(a.shape[1] // 16):  # each block's exact sum added in K order, rounded to float32
        cols = slice(16 * blk, 16 * blk + 16)
        expected = (expected.astype(np.float64) + qa[:, cols] @ qb[cols]).astype(F32)
    got = lowbit.simulator.matmul(a, b, name, name, accumulator="fp32")
    np.testing.assert_array_equal(got, expected.astype(np.float64))
    assert not np.array_equal(got, qa @ qb)  # fp32 rounding shows on some output


def test_matrix_engines_refuse_micro_exponents():
    a, b = _operands(seed=1, k=64)
    with pytest.raises(ValueError, match="micro-exponent"):
        lowbit.simulator.matmul(
            a, b, "mx4", "mx4", engine="sm_100a:tcgen05.mma.cta_group::1.kind::mxf4nvf4.block16.ue8m0"
        )


@pytest.mark.parametrize("k", [5, 20, 37])
def test_matmul_partial_blocks_along_k(k):
    rng = np.random.default_rng(k)
    a = rng.standard_normal((3, k)).astype(F32)
    b = (rng.standard_normal((k, 4)) * 0.01).astype(F32)
    exact = lowbit.simulator.matmul(a, b, "mx6", "mx4", accumulator="exact")
    deq = lowbit.quantize(a, "mx6", axis=1).astype(np.float64) @ lowbit.quantize(b, "mx4", axis=0).astype(np.float64)
    np.testing.assert_array_equal(exact, deq)


@pytest.mark.parametrize("shape", [(0,), (0, 16), (16, 0), (3, 0, 5)])
def test_empty_arrays_encode_and_decode(shape):
    # no blocks (or blocks of no elements): 8 sub-block fields per block, whatever the count
    x = np.zeros(shape, F32)
    enc = lowbit.encode(x, "mx6")
    assert enc.micro.shape == (*enc.scales.shape, 8) and enc.micro.size == 0
    assert lowbit.decode(enc).shape == shape and lowbit.quantize(x, "mx6").shape == shape


def test_torch_encode_moves_the_micro_exponents_with_the_codes():
    torch = pytest.importorskip("torch")
    import lowbit.torch as lt

    enc = lt.encode(torch.tensor(HAND_X), "mx6")
    assert isinstance(enc.micro, torch.Tensor) and enc.micro.tolist() == [HAND_D]
    np.testing.assert_array_equal(lt.decode(enc).numpy(), HAND_V)
