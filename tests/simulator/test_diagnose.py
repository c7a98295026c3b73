"""lowbit.diagnose: fractions, histograms, entropy and QSNR checked by hand on constructed tensors."""

import math

import numpy as np
import pytest

import lowbit
from lowbit.simulator.host.diagnose import entropy_bits

E8M0_BIAS = 127


def _mx_block() -> np.ndarray:
    """One MXFP4 block of 32, amax 60 = 7.5 * 2^3: ocp_floor's scale is 2^(5 - 2) = 8, so the
    elements are x / 8, the largest value 6 * 8 = 48, the next 4 * 8 = 32, and the saturation
    threshold 48 + (48 - 32) / 2 = 56."""
    x = np.zeros(32, np.float32)
    # 60, -58 and 56 (the tie) saturate; 52 (6.5 -> 6) and 48 do not;
    # 1 (0.125) and -2 (0.25, a tie to even 0) flush; 3, 4, 5 (0.375, 0.5, 0.625) are the subnormal 0.5
    x[:10] = [60, -58, 56, 52, 48, 1, -2, 3, 4, 5]
    return x


def test_mxfp4_block_by_hand():
    d = lowbit.diagnose(_mx_block(), "mxfp4")
    assert d.n_elements == 32
    assert d.saturated_fraction == 3 / 32
    assert d.flushed_fraction == 2 / 32
    assert d.subnormal_fraction == 3 / 32
    # codes of float4_e2m1fn: 6 -> 0b0111 (60, 56, 52, 48), -6 -> 0b1111, +0 -> 0 (22 zeros and 1),
    # -0 -> 0b1000, 0.5 -> 1
    expected = np.zeros(16, np.int64)
    expected[[7, 15, 0, 8, 1]] = [4, 1, 22 + 1, 1, 3]
    np.testing.assert_array_equal(d.code_histogram, expected)
    assert d.scale_histogram.shape == (256,) and d.scale_histogram[E8M0_BIAS + 3] == 1
    assert d.scale_histogram.sum() == 1 and d.scale_entropy_bits == 0.0
    p = expected[expected > 0] / 32
    assert d.code_entropy_bits == pytest.approx(-np.sum(p * np.log2(p)), abs=1e-12)
    # q = 48, -48, 48, 48, 48, 0, -0, 4, 4, 4
    noise = 12**2 + 10**2 + 8**2 + 4**2 + 0 + 1 + 2**2 + 1 + 0 + 1
    signal = 60**2 + 58**2 + 56**2 + 52**2 + 48**2 + 1 + 4 + 9 + 16 + 25
    assert d.qsnr_db == pytest.approx(-10 * math.log10(noise / signal), abs=1e-9)
    assert d.blocks.saturated_fraction.shape == (1,) and d.blocks.saturated_fraction[0] == 3 / 32
    assert d.blocks.qsnr_db[0] == pytest.approx(d.qsnr_db, abs=1e-9)
    assert d.blocks.scale_codes[0] == E8M0_BIAS + 3 and d.blocks.amax[0] == 60


def test_ceil_moves_the_scale_up_and_nothing_saturates():
    # 'ceil': amax 60 is not a power of two, so the scale is 2^(5 + 1 - 2) = 16, the threshold 7 * 16
    d = lowbit.diagnose(_mx_block(), lowbit.formats.ScaledFormat(**_mxfp4_fields("ceil")))
    assert d.saturated_fraction == 0.0
    assert d.blocks.scale_codes[0] == E8M0_BIAS + 4
    # now 1, 2 and 3 (1/16, 1/8, 3/16 of the scale) flush; 4 (0.25, a tie) flushes to even 0
    assert d.flushed_fraction == 4 / 32


def _mxfp4_fields(rule: str) -> dict:
    m = lowbit.get_format("mxfp4")
    return {"element": m.element, "block": m.block, "scale": m.scale, "rule": rule}


def test_e4m3_subnormals_flushes_and_saturation_by_hand():
    # float8_e4m3fn: smallest subnormal 2^-9, smallest normal 2^-6, max 448, next below 416: threshold 464
    x = np.array([2**-10, 2**-11, 2**-9, 3 * 2**-9, 2**-6, 1.0, 448.0, 460.0, 464.0, -1000.0])
    d = lowbit.diagnose(x, "float8_e4m3fn")
    assert d.flushed_fraction == 2 / 10  # 2^-10 is the tie between 0 and 2^-9 (to even 0), 2^-11 below it
    assert d.subnormal_fraction == 2 / 10  # 2^-9 and 3 * 2^-9
    assert d.saturated_fraction == 2 / 10  # 464 (the tie, which rounds to 448) and -1000 (NaN); 460 rounds
    assert d.blocks is None and d.scale_histogram is None and math.isnan(d.scale_entropy_bits)
    assert d.qsnr_db == -math.inf  # -1000 overflowed to NaN: an infinite error


def test_int8_per_channel_by_hand():
    # one fp32 absmax scale per row (the last axis): amax / 127 = 1, 0 and 2
    x = np.array([[127, 1, 0.4, -0.6], [0, 0, 0, 0], [254, 0.9, -1.2, 3]], np.float32)
    d = lowbit.diagnose(x, "int8_per_channel")
    assert d.saturated_fraction == 0.0 and d.subnormal_fraction == 0.0
    assert d.flushed_fraction == 2 / 12  # 0.4 / 1 and 0.9 / 2 round to 0
    np.testing.assert_array_equal(d.blocks.flushed_fraction, [[0.25], [0.0], [0.25]])
    assert d.scale_histogram is None  # fp32 scales: their entropy over the three distinct codes
    assert d.scale_entropy_bits == pytest.approx(math.log2(3))
    # row 0: q = 127, 1, 0, -1; row 2: q = 254, 0, -2, 4
    signal0, noise0 = 127**2 + 1 + 0.4**2 + 0.6**2, 0.4**2 + 0.4**2
    assert d.blocks.qsnr_db[0, 0] == pytest.approx(-10 * math.log10(noise0 / signal0), rel=1e-6)
    assert d.blocks.qsnr_db[1, 0] == math.inf
    noise = noise0 + 0.9**2 + 0.8**2 + 1.0
    signal = signal0 + 254**2 + 0.9**2 + 1.2**2 + 9
    assert d.qsnr_db == pytest.approx(-10 * math.log10(noise / signal), rel=1e-6)


def test_entropy_of_hand_built_histograms():
    assert entropy_bits(np.array([5, 5, 5, 5])) == 2.0
    assert entropy_bits(np.array([0, 7, 0, 0])) == 0.0
    assert entropy_bits(np.array([1, 1, 2])) == 1.5
    assert math.isnan(entropy_bits(np.zeros(3)))
    # int8 codes of 0, 1, 2, 3: four codes once each
    assert lowbit.diagnose(np.array([0.0, 1, 2, 3]), "int8").code_entropy_bits == 2.0


def test_nan_and_inf_blocks_are_left_out():
    x = np.tile(_mx_block(), 3)
    x[33] = np.nan
    x[70] = np.inf
    d = lowbit.diagnose(x, "mxfp4")
    assert d.n_elements == 32 and d.nonfinite_fraction == 2 / 3
    assert d.saturated_fraction == 3 / 32 and d.code_histogram.sum() == 32
    np.testing.assert_array_equal(d.blocks.finite, [True, False, False])
    assert np.isnan(d.blocks.qsnr_db[1:]).all() and d.scale_histogram.sum() == 1
    e = lowbit.diagnose(np.array([1.0, np.nan, np.inf, 2.0]), "int8")
    assert e.n_elements == 2 and e.nonfinite_fraction == 0.5 and e.qsnr_db == math.inf


def test_per_block_layout_follows_the_axis():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    d = lowbit.diagnose(x, "mxfp8_e4m3", axis=0)
    assert d.blocks.qsnr_db.shape == (3, 2)
    # the per-block powers add up to the tensor's QSNR
    total = -10 * np.log10(d.blocks.noise_power.sum() / d.blocks.signal_power.sum())
    assert d.qsnr_db == pytest.approx(total)
    # and the QSNR is that of quantize (the fused kernels, another path than encode and decode)
    q = lowbit.quantize(x, "mxfp8_e4m3", axis=0).astype(np.float64)
    x64 = x.astype(np.float64)
    assert d.qsnr_db == pytest.approx(-10 * np.log10(np.sum((q - x64) ** 2) / np.sum(x64**2)), abs=1e-9)


def test_bad_formats_are_refused():
    with pytest.raises(TypeError, match="fmt"):
        lowbit.diagnose(np.zeros((4, 2), np.float32), "higgs_p2_n16")
    with pytest.raises(ValueError):
        lowbit.diagnose(np.zeros(4), "no_such_format")


def test_a_short_last_block_counts_its_elements_only():
    # 40 elements: a block of 32 and one of 8 (zero-padded inside the quantizer, never counted)
    x = np.concatenate([_mx_block(), np.array([60, 1, 1, 1, 1, 1, 1, 1], np.float32)])
    d = lowbit.diagnose(x, "mxfp4")
    assert d.n_elements == 40 and d.nonfinite_fraction == 0.0
    np.testing.assert_array_equal(d.blocks.finite, [True, True])
    # the short block's scale is 8 too: 60 saturates, and its seven 1s (0.125) flush
    np.testing.assert_array_equal(d.blocks.saturated_fraction, [3 / 32, 1 / 8])
    np.testing.assert_array_equal(d.blocks.flushed_fraction, [2 / 32, 7 / 8])
    assert d.code_histogram.sum() == 40


def test_empty_and_scalar_input():
    d = lowbit.diagnose(np.zeros((0, 32), np.float32), "mxfp4")
    assert d.n_elements == 0 and math.isnan(d.saturated_fraction) and d.code_histogram.sum() == 0
    s = lowbit.diagnose(1000.0, "float8_e4m3fn")
    assert s.saturated_fraction == 1.0 and s.n_elements == 1


def test_int8_edges_are_not_mirrored():
    # int8: top 127 (threshold 127.5, its tie counted), bottom -128 (threshold -128.5): two's
    # complement has one more negative value, so the negative edge is its own
    x = np.array([127.4, 127.5, -127.9, -128.4, -128.5, -200.0, 0.0, 5.0])
    d = lowbit.diagnose(x, "int8")
    assert d.saturated_fraction == 3 / 8  # 127.5, -128.5, -200


def test_a_block_whose_scale_underflows_saturates_nothing():
    # NVFP4: the tensor scale 448 * 6 / 1000 = 2.688 puts block 0's E4M3 scale at 448; block 1's
    # amax 1e-9 asks for 1e-9 / 6 * 2.688 = 4.5e-10, far below E4M3's smallest subnormal 2^-9: its
    # scale code is 0 and its sixteen elements decode to 0, flushed (none is past a range edge)
    x = np.full(32, 1e-9, np.float32)
    x[:16] = 1000.0
    d = lowbit.diagnose(x, "nvfp4")
    assert d.blocks.scale_codes[1] == 0
    np.testing.assert_array_equal(d.blocks.flushed_fraction, [0.0, 1.0])
    np.testing.assert_array_equal(d.blocks.saturated_fraction, [0.0, 0.0])
    assert d.saturated_fraction == 0.0 and d.flushed_fraction == 0.5


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4", "float8_e4m3fn", "int8_per_channel"])
def test_stochastic_rounding_with_sr_bits_is_the_quantizers(fmt):
    # the diagnosis is of the codes quantize gives (the fused kernels, another path) under the same
    # rounding, seed and random bits
    x = np.random.default_rng(4).standard_normal((16, 64)).astype(np.float32)
    x64 = x.astype(np.float64)
    for sr_bits in (1, 3):
        q = lowbit.quantize(x, fmt, rounding="stochastic", seed=9, sr_bits=sr_bits).astype(np.float64)
        d = lowbit.diagnose(x, fmt, rounding="stochastic", seed=9, sr_bits=sr_bits)
        assert d.qsnr_db == pytest.approx(-10 * np.log10(np.sum((q - x64) ** 2) / np.sum(x64**2)), abs=1e-9)
        assert d.flushed_fraction == np.count_nonzero((q == 0) & (x64 != 0)) / x.size
