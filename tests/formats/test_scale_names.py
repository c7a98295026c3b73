"""Scale formats named outside the catalog: UE5M3 (NVFP4's unsigned E5M3 block-scale variant)."""

import math

import numpy as np

import lowbit


def test_ue5m3fn_by_name_is_the_variant_scale():
    f = lowbit.get_format("ue5m3fn")
    assert f == lowbit.get_format("nvfp4_ue5m3").scale
    # unsigned, bias 15: the top finite code 0xFE is 1.110 x 2^(31-15), 0xFF is NaN
    assert f.max == 1.75 * 2.0**16 == 114688.0
    assert f.min_subnormal == 2.0**-17  # 0.001 x 2^(1-15)
    assert math.isnan(f.values[0xFF]) and f.values[0x01] == 2.0**-17
    assert "ue5m3fn" in lowbit.formats.known_names()


def test_ue5m3fn_rounds_and_saturates_by_hand():
    x = np.array([1.0625, 1.1875, 114688.0, 2.0**-18], np.float32)
    # 1.0625 is the tie between 1.0 and 1.125 (even: 1.0); 1.1875 ties 1.125 / 1.25 (even: 1.25);
    # 2^-18 ties 0 and 2^-17 (even: 0)
    assert lowbit.quantize(x, "ue5m3fn").tolist() == [1.0, 1.25, 114688.0, 0.0]
