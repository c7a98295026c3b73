"""lowbit.compare: where two MX scale rules choose different scale codes, on hand-built blocks and
against an independent NumPy computation of the OCP floor and ceil exponents."""

from dataclasses import replace

import numpy as np
import pytest

import lowbit


def _rule(name: str, rule: str):
    return replace(lowbit.get_format(name), rule=rule)


def _blocks(*amaxes: float) -> np.ndarray:
    """One MXFP4 block of 32 per amax: the amax, then small values."""
    x = np.full((len(amaxes), 32), 0.125, np.float32)
    x[:, 0] = amaxes
    return x


def test_floor_and_ceil_agree_on_a_power_of_two_and_differ_elsewhere():
    # amax 4 = 2^2: both rules give 2^(2 - emax 2) = 1; amax 6 = 1.5 * 2^2: floor 2^0, ceil 2^1
    c = lowbit.compare(_blocks(4.0, 6.0), "mxfp4", _rule("mxfp4", "ceil"))
    assert c.n_blocks == 2 and c.differing_fraction == 0.5
    np.testing.assert_array_equal(c.differs, [[False], [True]])  # the blocks' shape: (rows, 1)
    assert c.code_shift == {1: 1}  # one binade up
    assert (c.power_of_two_blocks, c.power_of_two_differing) == (1, 0)
    np.testing.assert_array_equal(c.amax_mantissa, [[1.0], [1.5]])
    assert c.differing_per_bin.sum() == 1 and c.differing_per_bin[8] == 1  # 1.5 is in [1.5, 1.5625)


def test_rceil_and_floor_differ_where_the_mantissa_passes_the_elements():
    # rceil: 2^ceil(log2(amax / 6)); floor: 2^(floor(log2(amax)) - 2). They differ when amax's
    # mantissa exceeds 6's (1.5): amax 4 and 6 agree, 7.5 = 1.875 * 2^2 does not
    c = lowbit.compare(_blocks(4.0, 6.0, 7.5), "mxfp4", _rule("mxfp4", "rceil"))
    np.testing.assert_array_equal(c.differs[:, 0], [False, False, True])
    # the scale of the 7.5 block doubles: 7.5 / 2 = 3.75 rounds to 4 (error 0.5) instead of
    # saturating to 6 (error 1.5)
    assert c.qsnr_delta_db > 0 and c.differing_qsnr_db_b > c.differing_qsnr_db_a


def _exponents(amax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """floor(log2(amax)) and ceil(log2(amax)) from frexp (amax = m 2^e, m in [0.5, 1))."""
    m, e = np.frexp(amax.astype(np.float64))
    floor = e - 1
    return floor, floor + (m != 0.5)


@pytest.mark.parametrize("fmt", ["mxfp4", "mxfp8_e4m3"])
def test_differing_fraction_on_normal_data_matches_numpy(fmt):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((128, 256)).astype(np.float32)
    amax = np.abs(x.reshape(-1, 32)).max(axis=1)
    floor, ceil = _exponents(amax)
    mantissa = amax / np.ldexp(1.0, floor)
    element_max_mantissa = {"mxfp4": 1.5, "mxfp8_e4m3": 1.75}[fmt]  # 6 = 1.5 * 2^2, 448 = 1.75 * 2^8
    expected = {
        "ceil": np.mean(ceil != floor),
        "rceil": np.mean(mantissa > element_max_mantissa),
        # even: amax rounded half up to the element's mantissa bits (1 and 3), then floor
        "even": np.mean(mantissa >= 2 - 2.0 ** -({"mxfp4": 1, "mxfp8_e4m3": 3}[fmt] + 1)),
    }
    for rule, fraction in expected.items():
        c = lowbit.compare(x, fmt, _rule(fmt, rule))
        assert c.n_blocks == amax.size
        assert c.differing_fraction == pytest.approx(fraction, abs=0), rule
        assert set(c.code_shift) <= {1}
    # and the QSNR of each side is that of quantize, computed independently here
    c = lowbit.compare(x, fmt, _rule(fmt, "ceil"))
    x64 = x.astype(np.float64)
    for qsnr, f in ((c.qsnr_db_a, fmt), (c.qsnr_db_b, _rule(fmt, "ceil"))):
        q = lowbit.quantize(x, f).astype(np.float64)
        assert qsnr == pytest.approx(-10 * np.log10(np.sum((q - x64) ** 2) / np.sum(x64**2)), abs=1e-9)


def test_mismatched_layouts_are_refused():
    x = np.ones((2, 32), np.float32)
    with pytest.raises(ValueError, match="block layout"):
        lowbit.compare(x, "mxfp4", "nvfp4")
    with pytest.raises(ValueError, match="scale format"):
        lowbit.compare(x, "mxfp4", replace(lowbit.get_format("nvfp4"), block=32, tensor_scale="none"))
    with pytest.raises(TypeError, match="fmt_b"):
        lowbit.compare(x, "mxfp4", "float4_e2m1fn")


def test_tiles_and_tensor_scales_that_differ_are_refused():
    x = np.ones((32, 32), np.float32)
    # 16 x 16 tiles against rows of 16: the scales lie on different grids
    with pytest.raises(ValueError, match="block layout.*16 x 16 rows"):
        lowbit.compare(x, "nvfp4", "nvfp4_2d")
    # four over six maps the tensor's amax to a block scale of 256, NVFP4 to 448: the same E4M3 code
    # stands for block scales 448 / 256 apart
    with pytest.raises(ValueError, match="tensor scale"):
        lowbit.compare(x, "nvfp4", "nvfp4_4over6")
    # the same tensor scale stage: compared
    assert lowbit.compare(x, "nvfp4", "nvfp4_mse").n_blocks == 64
