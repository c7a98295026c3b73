"""Bad input gets a clear error naming the argument; odd shapes give correct results."""

import ml_dtypes
import numpy as np
import pytest

import lowbit
from lowbit.simulator import pack_codes, unpack_codes


def test_object_arrays_refused():
    with pytest.raises(TypeError, match="x"):
        lowbit.quantize(np.array([1.0, "a"], dtype=object), "fp8_e4m3")


@pytest.mark.parametrize("bad", [np.array([True, False]), np.array([1 + 2j]), np.array(["1.0"]), {"a": 1}])
def test_other_non_real_input_refused(bad):
    with pytest.raises(TypeError, match="x"):
        lowbit.quantize(bad, "fp8_e4m3")


def test_invalid_rounding_mode_names_argument_and_choices():
    with pytest.raises(ValueError, match="rounding.*'rne'.*'stochastic'.*'nearest'"):
        lowbit.quantize(np.ones(3), "fp4", rounding="nearest")


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "7"])
def test_bad_seed(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        lowbit.quantize(np.ones(3), "fp4", rounding="stochastic", seed=seed)


def test_bad_target_and_axis():
    with pytest.raises(ValueError, match="target"):
        lowbit.quantize(np.ones(3), "fp4", target="tpu")
    with pytest.raises(ValueError, match="axis"):
        lowbit.quantize(np.ones((2, 3)), "fp4", axis=2)
    with pytest.raises(TypeError, match="axis"):
        lowbit.quantize(np.ones(3), "fp4", axis="last")


def test_unknown_format_suggests_close_match():
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        lowbit.quantize(np.ones(3), "float8_e4m3f")
    with pytest.raises(ValueError, match="unknown name 'mxfp9'"):
        lowbit.get_format("mxfp9")


def test_empty_and_zero_d():
    for dtype in (np.float32, np.float64):
        e = lowbit.quantize(np.zeros((0, 3), dtype=dtype), "fp8_e4m3")
        assert e.shape == (0, 3) and e.dtype == dtype
    z = lowbit.quantize(np.float32(17.0), "fp8_e4m3")
    assert z.shape == () and z == 16.0
    enc = lowbit.encode(np.array(19.0, dtype=np.float32), "fp8_e4m3")
    assert enc.codes.shape == () and lowbit.decode(enc) == 20.0
    assert lowbit.encode(np.zeros(0, np.float32), "fp4").packed() == b""


def test_non_contiguous_views_and_layouts():
    x = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    for view in (x[::3, ::2], x.T, x[:, 5], np.asfortranarray(x)):
        expected = np.ascontiguousarray(view).astype(ml_dtypes.float6_e3m2fn).astype(np.float32)
        np.testing.assert_array_equal(lowbit.quantize(view, "fp6_e3m2"), expected)


def test_other_input_dtypes():
    np.testing.assert_array_equal(lowbit.quantize(np.array([17, 19, 300], dtype=np.int32), "fp8_e4m3"), [16, 20, 288])
    h = np.array([17.0, 0.1], dtype=np.float16)
    assert lowbit.quantize(h, "fp8_e4m3").dtype == np.float32
    assert lowbit.quantize([17.0, 19.0], "fp8_e4m3").tolist() == [16.0, 20.0]
    with pytest.raises(ValueError, match="2\\^53"):
        lowbit.quantize(np.array([2**60 + 1], dtype=np.int64), "int8")


def test_decode_checks_codes():
    with pytest.raises(ValueError, match="codes"):
        lowbit.decode(np.array([256]), "fp8_e4m3")
    with pytest.raises(TypeError, match="codes"):
        lowbit.decode(np.array([1.0]), "fp8_e4m3")
    with pytest.raises(TypeError, match="fmt"):
        lowbit.decode(np.array([1]))


def test_bits_per_element():
    assert lowbit.bits_per_element("fp4") == 4.0
    assert lowbit.bits_per_element("bfloat16") == 16.0
    with pytest.raises(ValueError, match="block_elems"):
        lowbit.bits_per_element("fp4", block_elems=32)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8, 12, 16])
@pytest.mark.parametrize("order", ["lsb_first", "msb_first"])
def test_pack_round_trip(bits, order):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, 37)
    packed = pack_codes(codes, bits, order)
    assert packed.size == -(-37 * bits // 8)
    np.testing.assert_array_equal(unpack_codes(packed, bits, 37, order), codes)


def test_nibble_and_bit_order_by_hand():
    # fp4 codes of [1.0, 6.0] are 0x2 and 0x7: first element in the low nibble -> 0x72 (published vector).
    assert lowbit.encode(np.array([1.0, 6.0], np.float32), "fp4").packed() == bytes([0x72])
    assert lowbit.encode(np.array([1.0, 6.0], np.float32), "fp4").packed("msb_first") == bytes([0x27])
    # 6-bit codes 0b000001, 0b000010, 0b000011, 0b000100 as an LSB-first stream: bits 0-5, 6-11, ...
    assert pack_codes([1, 2, 3, 4], 6).tolist() == [0x81, 0x30, 0x10]
    assert pack_codes([1, 2, 3, 0], 2).tolist() == [0b00111001]
    assert pack_codes([0x1234], 16).tolist() == [0x34, 0x12]
    with pytest.raises(ValueError, match="codes"):
        pack_codes([16], 4)
    with pytest.raises(ValueError, match="order"):
        pack_codes([1], 4, "middle")
