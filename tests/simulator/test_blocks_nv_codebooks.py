"""NVFP4, NF4 and the other codebooks, AFPQ, BitNet, HIGGS grids: hand-worked rows, published
tables and independent NumPy implementations of the recipes."""

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import yaml

import lowbit
from lowbit.formats import catalog

DATA = Path(__file__).parents[1] / "data"
VECTORS = yaml.safe_load((DATA / "vectors.yaml").read_text())
PUBLISHED = yaml.safe_load((DATA / "published.yaml").read_text())["codebooks"]
F32 = np.float32


def nvfp4_numpy(x: np.ndarray) -> np.ndarray:
    """TransformerEngine's two-level NVFP4 recipe, step by step in float32 (DESIGN.md section 3)."""
    amax = F32(np.abs(x).max())
    s_enc = F32(1) if amax == 0 else min(F32(2688) / amax, F32(np.finfo(F32).max))
    rows = x.reshape(-1, 16)
    dec = (np.abs(rows).max(axis=1) * (s_enc * (F32(1) / F32(6)))).astype(ml_dtypes.float8_e4m3fn).astype(F32)
    with np.errstate(divide="ignore"):
        enc = np.where(dec == 0, F32(0), F32(1) / (dec * (F32(1) / s_enc))).astype(F32)
    scaled = np.clip(rows * enc[:, None], F32(-6), F32(6))
    qv = scaled.astype(ml_dtypes.float4_e2m1fn).astype(F32)
    return ((qv * dec[:, None]) * (F32(1) / s_enc)).reshape(x.shape)


def test_nvfp4_two_level_equals_numpy_recipe():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(1 << 18) * np.exp2(rng.integers(-8, 8, (1 << 18) // 16)).repeat(16)).astype(F32)
    x[:16] = 0
    np.testing.assert_array_equal(lowbit.quantize(x, "nvfp4").view(np.uint32), nvfp4_numpy(x).view(np.uint32))


def test_nvfp4_vectors_and_packing():
    case = VECTORS["nvfp4_two_level_torchao"][0]
    x = np.zeros(32, F32)
    x[:4] = case["in"]
    x[16] = case["tensor_amax"]  # another block carries the tensor's amax
    enc = lowbit.encode(x, "nvfp4")
    assert enc.tensor_scale == pytest.approx(case["tensor_scale"], rel=1e-7)
    assert enc.scales[0] == case["scale_code"]
    np.testing.assert_array_equal(lowbit.decode(enc.codes[:4], "float4_e2m1fn"), case["elements"])
    for name in ("nvfp4", "nvfp4_single"):
        assert lowbit.encode(np.array([1.0, 6.0], F32), name).packed()[0] == 0x72
    assert lowbit.bits_per_element("nvfp4") == 4.5


def test_nvfp4_single_level_vectors():
    rows = VECTORS["nvfp4_single_level_torchao"]
    enc = lowbit.encode(np.asarray(rows[0]["in"], F32), "nvfp4_single")
    assert enc.scales[0] == rows[0]["scale_code"]
    np.testing.assert_array_equal(lowbit.decode(enc.codes, "float4_e2m1fn"), rows[0]["elements"])
    single = lowbit.quantize(np.asarray(rows[1]["in"], F32), "nvfp4_single")
    np.testing.assert_array_equal(single, rows[1]["dequantized"])
    zero = lowbit.encode(np.zeros(16, F32), "nvfp4_single")
    assert lowbit.decode(zero.scales, "float8_e4m3fn")[0] == rows[2]["scale"]
    np.testing.assert_array_equal(lowbit.decode(zero), 0)


def test_nf4_table_is_the_published_one():
    assert catalog["nf4_codebook"].values == tuple(PUBLISHED["nf4"]["values"])
    assert catalog["nf3_codebook"].values == tuple(PUBLISHED["nf3"]["values"])
    assert catalog["fp3_e2m0"].values == tuple(float(v) for v in PUBLISHED["fp3_e2m0"]["values"])


def test_nf4_ties_go_to_the_lower_code():
    t = catalog["nf4_codebook"].table.astype(np.float64)
    mids = (t[1:] + t[:-1]) / 2
    exact = mids[mids.astype(F32).astype(np.float64) == mids]  # midpoints float32 can hold
    assert exact.size >= 3
    block = np.concatenate([[1.0], exact]).astype(F32)  # absmax 1: elements are x * 1
    codes = lowbit.encode(block, "nf4").codes[1:]
    lower = np.searchsorted(t, exact) - 1
    np.testing.assert_array_equal(codes, lower)
    # one float32 ulp above a midpoint goes up
    above = np.nextafter(exact.astype(F32), F32(2))
    np.testing.assert_array_equal(lowbit.encode(np.concatenate([[F32(1)], above]), "nf4").codes[1:], lower + 1)


def test_nf4_zero_block_packing_and_bits():
    enc = lowbit.encode(np.zeros(128, F32), "nf4")
    np.testing.assert_array_equal(enc.codes, 7)
    assert enc.packed()[0] == 0x77
    first_high = lowbit.encode(np.array([-1.0, 1.0], F32), "nf4").packed()
    assert first_high[0] == 0x0F  # code 0 in the high nibble, code 15 in the low one
    assert lowbit.bits_per_element("nf4") == 4.5


def test_nf4_equals_numpy_bitsandbytes_rule():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(64 * 500).astype(F32)
    rows = x.reshape(-1, 64)
    absmax = np.abs(rows).max(axis=1)
    v = rows * (F32(1) / absmax)[:, None]
    t = np.asarray(PUBLISHED["nf4"]["values"], F32)
    dist = np.abs(v[..., None].astype(np.float64) - t.astype(np.float64))
    codes = np.argmin(dist, axis=-1)  # argmin keeps the first (lower) code on ties
    ref = (t[codes] * absmax[:, None]).reshape(x.shape)
    np.testing.assert_array_equal(lowbit.quantize(x, "nf4"), ref)
    np.testing.assert_array_equal(lowbit.encode(x, "nf4").codes, codes.reshape(x.shape))


def test_higgs_p1_grids_match_published():
    for n in (4, 8, 16):
        np.testing.assert_allclose(catalog[f"higgs_p1_n{n}"].values, PUBLISHED["higgs_p1"][f"n{n}"], atol=1e-4, rtol=0)


def test_afpq_one_sided_and_zero_groups():
    pos = np.linspace(0.1, 6.0, 128, dtype=F32)  # no negative values: the negative scale is 0
    enc = lowbit.encode(pos, "afpq_fp4_g128")
    sp, sn = lowbit.decode(enc.scales, "float16")[0]
    assert sn == 0 and sp == 1.0  # 6 / 6 in fp16
    out = lowbit.decode(enc)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, lowbit.quantize(pos, "float4_e2m1fn"))
    zeros = lowbit.quantize(np.zeros(256, F32), "afpq_nf3_g128")
    np.testing.assert_array_equal(zeros, 0)
    neg = -pos  # only negative values: the positive scale is 0
    np.testing.assert_array_equal(lowbit.quantize(neg, "afpq_fp4_g128"), -lowbit.quantize(pos, "float4_e2m1fn"))


def test_afpq_uses_separate_scales():
    x = np.zeros(128, F32)
    x[0], x[1], x[2] = 6.0, -1.5, -0.75  # s+ = 1, s- = 0.25
    out = lowbit.quantize(x, "afpq_fp4_g128")
    assert out[0] == 6.0 and out[1] == -1.5 and out[2] == -0.75  # -6 * 0.25, -3 * 0.25
    sym = lowbit.quantize(x, lowbit.get_format("afpq_fp4_g128", asymmetric=False))
    assert sym[2] == -1.0  # one scale of 1: -0.75 rounds to the E2M1 value -1 (tie 0.5|1 -> even)


def test_bitnet_hand_rows():
    w = np.array([0.5, -1.5, 0.0, 2.0], F32)  # mean |w| = 1: round half even then clip
    np.testing.assert_array_equal(lowbit.quantize(w, "bitnet_b158"), [0.0, -1.0, 0.0, 1.0])
    w2 = np.array([[0.3, -0.1], [0.9, -0.5]], F32)  # alpha = 0.45 over the whole tensor
    alpha = F32(np.float64(1.8) / 4)
    expected = np.array([[1, 0], [1, -1]], F32) * alpha  # 0.67 -> 1, -0.22 -> 0, 2 -> 1, -1.11 -> -1
    np.testing.assert_array_equal(lowbit.quantize(w2, "bitnet_b158"), expected)


def test_int_groups_symmetric_and_zero_point():
    x = np.linspace(-1.0, 3.0, 128, dtype=F32)
    sym = lowbit.encode(x, "int4_g128")
    s = lowbit.decode(sym.scales, "float16")[0]
    assert s == F32(np.float16(3.0 / 7))
    asym = lowbit.encode(x, "int4_g128_asym")
    s, zp = lowbit.decode(asym.scales, "float16")[0]
    assert s == F32(np.float16(4.0 / 15)) and zp == np.rint(1.0 / s)
    out = lowbit.decode(asym)
    assert np.abs(out - x).max() <= s / 2 + 1e-6
    np.testing.assert_array_equal(out, lowbit.quantize(x, "int4_g128_asym"))


def test_nf4_double_quantization():
    fmt = catalog["nf4_dq"]
    assert lowbit.bits_per_element(fmt) == pytest.approx(4 + (8 + 32 / 256) / 64)  # 4.127
    code = fmt.scale.code.values
    # 127 positive and 127 negative midpoints, 0 and +1 (the map has no -1)
    assert len(code) == 256 and code[-1] == 1.0 and code[0] == pytest.approx(-(1 - 0.9 / 128)) and 0.0 in code
    assert min(v for v in code if v > 0) == pytest.approx(0.55e-6)  # (0.1 + 1) / 2 * 10^-6
    x = np.random.default_rng(5).standard_normal((32, 64 * 300)).astype(F32)  # weight-like data
    enc = lowbit.encode(x, fmt)
    from lowbit.simulator.host.scales import dq_values

    got = dq_values(enc.scales.reshape(-1), enc.meta["dq_absmax"], enc.meta["dq_offset"], fmt.scale)
    absmax = np.abs(x).reshape(-1, 64).max(axis=1)
    assert np.max(np.abs(got - absmax) / absmax) < 0.01
    np.testing.assert_array_equal(lowbit.decode(enc), lowbit.quantize(x, fmt))


def test_af4_and_bof4_constructions_match_published_tables():
    af4 = lowbit.get_format("af4").element.values
    np.testing.assert_allclose(af4, PUBLISHED["af4_64"]["values"], atol=1e-6, rtol=0)
    bof4 = lowbit.get_format("bof4_b64").element.values
    np.testing.assert_allclose(bof4, PUBLISHED["bof4_mse_64"]["values"], atol=2e-3, rtol=0)
    mae = lowbit.get_format("bof4_mae").element.values
    np.testing.assert_allclose(mae, PUBLISHED["bof4_mae_64"]["values"], atol=2e-3, rtol=0)


def test_af4_other_block_sizes_are_computed():
    a32, a64, a256 = (lowbit.get_format(f"af4_b{b}").element.values for b in (32, 64, 256))
    assert len(a32) == len(a256) == 16 and a32[7] == 0.0 and a32[0] == -1.0 and a32[-1] == 1.0
    # larger blocks have a larger absmax, so the interior codes move towards 0
    assert a32[8] > a64[8] > a256[8]
    assert lowbit.get_format("af4_b256").block == 256
    with pytest.raises(ValueError, match="block"):
        lowbit.get_format("af4_b1")


def test_paretoq_and_twn_hand_rows():
    w = np.array([[0.9, -0.3, 0.1, -1.2, 0.5]], F32)
    # TWN: mean|w| = 0.6, delta = 0.42; alpha = mean(0.9, 1.2, 0.5) = 2.6 / 3
    alpha = F32(np.float64(2.6) / 3)
    np.testing.assert_array_equal(lowbit.quantize(w, "twn"), np.array([[1, 0, 0, -1, 1]], F32) * alpha)
    # ParetoQ 1-bit: sign(w) * mean|w|
    np.testing.assert_array_equal(lowbit.quantize(w, "paretoq_1bit"), np.sign(w) * F32(0.6))
    # ternary SEQ, alpha = 1.2: round(clip(w/alpha, +-0.99) * 1.5) = [1, -0, 0, -1, 1]; value alpha * k / 1.5
    k = np.array([[1, 0, 0, -1, 1]], F32)
    np.testing.assert_array_equal(lowbit.quantize(w, "paretoq_ternary"), (k / F32(1.5)) * F32(1.2))
    # 2-bit SEQ: round(clip(w/alpha) * 2 - 0.5) + 0.5 = [1.5, -0.5, 0.5, -1.5, 0.5]; value alpha * that / 2
    h = np.array([[1.5, -0.5, 0.5, -1.5, 0.5]], F32)
    np.testing.assert_array_equal(lowbit.quantize(w, "paretoq_2bit"), (h / F32(2)) * F32(1.2))


def test_paretoq_round_half_even_ties():
    # alpha = 1: 2-bit SEQ sees v * 2 - 0.5 = [1.48 (clipped), 0.5, -1.5, 0]: ties go to the even integer.
    w = np.array([1.0, 0.5, -0.5, 0.25], F32)
    np.testing.assert_array_equal(lowbit.quantize(w, "paretoq_2bit"), [0.75, 0.25, -0.75, 0.25])
    # ternary: 0.33333334 * 1.5 rounds to exactly 0.5 in float32, and round(0.5) = 0.
    np.testing.assert_array_equal(
        lowbit.quantize(np.array([1.0, 0.33333334], F32), "paretoq_ternary"), [F32(1) / F32(1.5), 0.0]
    )
    # BitNet, alpha = mean|w| = 1: 0.5 ties 0|1 -> 0, -1.5 ties -1|-2 -> -2 -> clipped to -1.
    bitnet = lowbit.quantize(np.array([0.5, -1.5, 2.0, 0.0], F32), "bitnet_b158")
    np.testing.assert_array_equal(bitnet, [0, -1, 1, 0])


def test_lsq_uses_the_searched_step_with_twos_complement_range():
    w = np.random.default_rng(4).standard_normal((4, 128)).astype(F32)
    enc = lowbit.encode(w, "lsq_int4")
    step = np.asarray(enc.scales, dtype=np.uint32).view(F32).reshape(-1)
    ref = np.clip(np.rint(w / step[:, None]), -8, 7) * step[:, None]  # alpha * clip(round(w / alpha), -8, 7)
    np.testing.assert_array_equal(lowbit.decode(enc), ref)
    # the MSE search never does worse than plain absmax
    absmax = lowbit.quantize(w, lowbit.get_format("lsq_int4", rule="absmax"))
    assert np.mean((lowbit.decode(enc) - w) ** 2) <= np.mean((absmax - w) ** 2)


def test_higgs_p2_grids_are_the_shipped_data_and_round_pairs():
    grids = yaml.safe_load((DATA / "higgs_p2_grids.yaml").read_text())
    for n in (16, 64):
        fmt = catalog[f"higgs_p2_n{n}"]
        assert fmt.points == tuple(tuple(p) for p in grids[f"n{n}"])
        assert lowbit.bits_per_element(fmt) == np.log2(n) / 2
    fmt = catalog["higgs_p2_n16"]
    pts = np.asarray(fmt.points, F32)
    x = np.concatenate([pts[3], pts[7], pts[0] + F32(1e-3), [0.5]]).astype(F32)  # odd length: padded
    y = lowbit.quantize(x, fmt)
    np.testing.assert_array_equal(y[:6], np.concatenate([pts[3], pts[7], pts[0]]))
    enc = lowbit.encode(x, fmt)
    assert enc.codes[:3].tolist() == [3, 7, 0]
    np.testing.assert_array_equal(lowbit.decode(enc), y)
    # the last, padded pair (0.5, 0) goes to the nearest point by brute force
    d = ((pts - np.array([0.5, 0.0], F32)) ** 2).sum(axis=1)
    assert enc.codes[3] == np.argmin(d) and y[6] == pts[np.argmin(d), 0]


def test_bof4s_signed_absmax_and_the_published_mse_ordering():
    fmt = lowbit.get_format("bof4s")
    values = fmt.element.values
    assert values[-1] == 1.0 and 0.0 in values and values[0] > -1.0  # the lowest code is free
    x = np.array([0.1, -2.0, 0.5, 1.0], F32)  # the largest |x| is negative: it maps to +1
    enc = lowbit.encode(np.concatenate([x, np.zeros(60, F32)]), fmt)
    assert np.asarray(enc.scales, dtype=np.uint32).view(F32)[0] == -2.0
    assert lowbit.decode(enc)[1] == -2.0
    # BOF4 paper, Table 1 (Llama-3.1-8B weight MSE): BOF4-S < BOF4 < NF4 < AF4. Normal weights agree.
    w = np.random.default_rng(8).standard_normal((128, 512)).astype(F32)
    mse = {n: float(np.mean((lowbit.quantize(w, n) - w) ** 2)) for n in ("bof4s", "bof4", "nf4", "af4")}
    assert mse["bof4s"] < mse["bof4"] < mse["nf4"] < mse["af4"]


def test_a_zero_midpoint_keeps_the_sign_of_zero():
    # {-1, +1} has its midpoint at 0: +0 (and a positive value that underflows when scaled) goes
    # to +1, -0 to -1, so no value changes sign.
    np.testing.assert_array_equal(lowbit.quantize(np.array([0.0, -0.0], F32), "binary_codebook"), [1.0, -1.0])
    x = np.array([1e-30, 2.8544957e15, -1e-30], F32)
    y = lowbit.quantize(x, "paretoq_1bit")
    np.testing.assert_array_equal(np.sign(y), [1, 1, -1])
    grid = catalog["higgs_p1_n4"].table
    np.testing.assert_array_equal(lowbit.quantize(np.array([0.0, -0.0], F32), "higgs_p1_n4"), [grid[2], grid[1]])
