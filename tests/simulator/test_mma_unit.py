"""lowbit.simulator.mma and engines(): hand-worked cases of each behaviour MMA-Sim (arXiv
2511.10909) describes, one architecture against another, plus input checks and the listing.

Each case puts a dot product in D[0, 0] (row 0 of A, column 0 of B, C[0, 0]; the rest zero) and
derives the expected value in its comments."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import lowbit
from lowbit.formats import Algorithm, Arch, Normalization, get_engine
from lowbit.simulator import engines, mma

P = 2.0  # powers of two below are written P**-k
BIG = float(np.float32(3e38))  # a large float32 value


def dot(arch, instruction, a_row, b_col, c=0.0, scale_a=None, scale_b=None):
    """D[0, 0] of the instruction with a_row in A's row 0, b_col in B's column 0 and c in C[0, 0].
    scale_a / scale_b: the block scales of row 0 / column 0 (the others are 1)."""
    p = get_engine(arch, instruction, block=16 if scale_a is not None and len(scale_a) == 4 else None)
    a, b, cc = np.zeros((p.m, p.k)), np.zeros((p.k, p.n)), np.zeros((p.m, p.n))
    a[0, : len(a_row)], b[: len(b_col), 0], cc[0, 0] = a_row, b_col, c
    sa = sb = None
    if p.block_scaled:
        blocks = p.k // p.block_size
        sa, sb = np.ones((p.m, blocks)), np.ones((blocks, p.n))
        sa[0], sb[:, 0] = scale_a, scale_b
    return mma(arch, instruction, a, b, cc, sa, sb)[0, 0]


def bits32(x) -> int:
    return int(np.float32(x).view(np.uint32))


# ----- NVIDIA: products truncated below the largest exponent ---------------------------------
def test_fraction_bits_grow_from_volta_to_hopper():
    # 1 + 2 * 2^-24: Volta keeps 23 fraction bits below 2^0 and drops both; Turing keeps 24.
    row, col = [1, P**-24, P**-24], [1, 1, 1]
    assert dot("volta", "mma.m8n8k4.f32.f16.f16.f32", row, col) == 1.0
    assert dot("turing", "mma.m16n8k8.f32.f16.f16.f32", row, col) == 1 + P**-23
    # 1 + 4 * 2^-25 (each 2^-13 * 2^-12): Ampere (24 bits) drops them, Hopper (25) keeps them.
    row, col = [1] + [P**-13] * 4, [1] + [P**-12] * 4
    assert dot("ampere", "mma.m16n8k16.f32.f16.f16.f32", row, col) == 1.0
    assert dot("hopper", "mma.m16n8k16.f32.f16.f16.f32", row, col) == 1 + P**-23


def test_float32_output_is_truncated_not_rounded():
    # 1 + 2^-23 + 2^-24 is kept whole (24 bits), then cut toward zero: RNE would give 1 + 2^-22.
    d = dot("ampere", "mma.m16n8k8.f32.bf16.bf16.f32", [1, P**-23, P**-24], [1, 1, 1])
    assert d == 1 + P**-23


def test_fp8_keeps_13_fraction_bits_on_ada_and_hopper_not_on_blackwell():
    # 1 + 31 * 2^-14 (2^-8 * 2^-6 in e4m3): below 2^-13 each product is cut on Ada and Hopper.
    row, col = [1] + [P**-8] * 31, [1] + [P**-6] * 31
    assert dot("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", row, col) == 1.0
    assert dot("ada", "mma.m16n8k32.f32.e4m3.e4m3.f32", row, col) == 1.0
    assert dot("blackwell", "tcgen05.mma.m64n8k32.f8f6f4.f32.e4m3.e4m3", row, col) == 1 + 31 * P**-14
    assert dot("rtx_blackwell", "mma.m16n8k32.f32.e4m3.e4m3.f32", row, col) == 1 + 31 * P**-14


def test_fp8_cuts_c_and_the_output_to_13_bits():
    # C = 1 + 2^-20 is aligned with the product 1 and cut 13 bits below 2^0: D = 2.
    assert dot("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", [1], [1], 1 + P**-20) == 2.0
    assert dot("blackwell", "tcgen05.mma.m64n8k32.f8f6f4.f32.e4m3.e4m3", [1], [1], 1 + P**-20) == 2 + P**-20


def test_ampere_splits_k16_into_two_fused_sums():
    # 1 - 1 in the first half, 2^-15 * 2^-15 in the second: Ampere's second sum aligns at 2^-30's
    # own exponent (C is 0) and keeps it; Hopper's one sum aligns at 2^0 and cuts it (25 bits).
    row, col = [1, 1] + [0] * 6 + [P**-15], [1, -1] + [0] * 6 + [P**-15]
    assert dot("ampere", "mma.m16n8k16.f32.f16.f16.f32", row, col) == P**-30
    assert dot("hopper", "mma.m16n8k16.f32.f16.f16.f32", row, col) == 0.0


def test_f16_output_rounds_to_nearest_even_and_overflows_to_inf():
    # 65504 + 8 = 65512 lies below the midpoint 65520: 65504. 65504 + 16 = 65520 is the tie with
    # 65536 (the even side), which is past float16's range: Inf.
    assert dot("turing", "mma.m16n8k8.f16.f16.f16.f16", [65504, 8], [1, 1]) == 65504
    assert dot("turing", "mma.m16n8k8.f16.f16.f16.f16", [65504, 16], [1, 1]) == np.inf


def test_float32_overflow_is_inf_even_when_truncating():
    # 2^127 * 1.5 * 2 = 1.5 * 2^128: past float32's range, Inf (not float32's largest value).
    assert dot("ampere", "mma.m16n8k8.f32.bf16.bf16.f32", [P**127, P**127], [1.5, 1.5]) == np.inf


def test_nvidia_special_values_and_zero_sign():
    ins = "mma.m16n8k16.f32.f16.f16.f32"
    assert bits32(dot("ampere", ins, [np.inf], [0.0])) == 0x7FFFFFFF  # Inf * 0
    assert bits32(dot("ampere", ins, [np.inf, np.inf], [1, -1])) == 0x7FFFFFFF  # Inf - Inf
    assert dot("ampere", ins, [np.inf, 1], [2, 1]) == np.inf
    assert bits32(dot("ampere", ins, [1], [1], np.nan)) == 0x7FFFFFFF
    assert bits32(dot("ampere", ins, [-0.0], [1], -0.0)) == 0  # a zero result is +0
    half = dot("ampere", "mma.m16n8k16.f16.f16.f16.f16", [np.nan], [1])
    assert half.dtype == np.float16 and int(half.view(np.uint16)) == 0x7FFF


# ----- block-scaled kinds ----------------------------------------------------------------------
def test_mxf8f6f4_scales_add_to_the_exponents():
    # 1.5 * 2 * 2^3 * 2^-1 = 12; a NaN scale (ue8m0 0xFF) makes the sum NaN.
    ins = "mma.m16n8k32.mxf8f6f4.f32.e4m3.e4m3.f32"
    assert dot("rtx_blackwell", ins, [1.5], [2.0], 0.0, [P**3], [P**-1]) == 12.0
    assert bits32(dot("rtx_blackwell", ins, [1.5], [2.0], 0.0, [np.nan], [1.0])) == 0x7FFFFFFF


def test_fp4_groups_align_at_their_scale_exponents():
    # Group 0: 1 * 1 under scales 1; group 1: -0.5 * 0.5 = -0.25 under scales 2^-a * 2^-a. Cut
    # 35 bits below 2^0: with a = 10, -2^-22 stays (D = 1 - 2^-22); with a = 20, -2^-42 goes.
    ins = "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue8m0"
    row, col = [1] + [0] * 15 + [-0.5], [1] + [0] * 15 + [0.5]
    for a, expected in ((10, 1 - P**-22), (20, 1.0)):
        scales = [1, P**-a, 1, 1]
        assert dot("rtx_blackwell", ins, row, col, 0.0, scales, scales) == expected


def test_nvfp4_scale_type_and_block_read_from_the_scales():
    # 16 products 1 * 1 under ue4m3 scales 1.5 * 1.5: 16 * 2.25 = 36. The name gives neither the
    # block nor the scale type: four scales per row make block 16, and 1.5 is a ue4m3 value.
    d = dot(
        "rtx_blackwell",
        "mma.m16n8k64.mxf4nvf4.f32.e2m1.e2m1.f32",
        [1] * 16,
        [1] * 16,
        0.0,
        [1.5] + [1] * 3,
        [1.5] + [1] * 3,
    )
    assert d == 36.0
    p = get_engine("blackwell", "tcgen05.mma.m128n8k64.mxf4nvf4.f32.e2m1.e2m1", block=16)
    assert p.scale_type.name == "ue4m3" and p.algorithm is Algorithm.GST_FDPA


# ----- AMD ---------------------------------------------------------------------------------------
def test_cdna3_rounds_down_asymmetrically():
    # p = 2^-12 (1 + 2^-8) * 2^-12 = 2^-24 + 2^-32. With C = 1 the total 1 + 2^-24 + 2^-32 is cut
    # down to 31 fraction bits (1 + 2^-24), a tie for float32: 1.0. With C = -1 and -p the cut goes
    # down, away from zero (-1 - 2^-24 - 2^-31), past the tie: -(1 + 2^-23). CDNA1 sums exactly and
    # rounds once: +-(1 + 2^-23).
    x, y = P**-12 * (1 + P**-8), P**-12
    assert dot("cdna3", "mfma.f32_16x16x16_f16", [x], [y], 1.0) == 1.0
    assert dot("cdna3", "mfma.f32_16x16x16_f16", [-x], [y], -1.0) == -(1 + P**-23)
    assert dot("cdna1", "mfma.f32_16x16x16f16", [x], [y], 1.0) == 1 + P**-23
    assert dot("cdna1", "mfma.f32_16x16x16f16", [-x], [y], -1.0) == -(1 + P**-23)


def test_cdna3_fp8_sums_even_and_odd_products_apart():
    # 240 * 240 = 57600 (exponent 14) at an even index, -2^-10 * 2^-10 = -2^-20 at an odd one, C =
    # -57600. The odd half is fused alone, exactly; added to the even half it is rounded down to
    # 24 bits below 2^14: -2^-10, which is D. The f16 path fuses both products in one sum, where
    # -2^-20 is truncated toward zero: D = 0. (The exact value is -2^-20.)
    row, col = [240, P**-10], [240, -(P**-10)]
    assert dot("cdna3", "mfma.f32_16x16x32_fp8_fp8", row, col, -57600.0) == -(P**-10)
    assert dot("cdna3", "mfma.f32_16x16x16_f16", row, col, -57600.0) == 0.0


def test_cdna3_product_overflow_is_inf_and_underflow_keeps_the_sign():
    assert dot("cdna3", "mfma.f32_16x16x16_bf16", [P**127], [2.0], -BIG) == np.inf
    # -2^-100 * 2^-60 = -2^-160 rounds to zero in float32: -0 on CDNA3 (K = 8, one fused sum; at
    # K = 16 the second sum adds -0 to nothing and gives +0), +0 on NVIDIA (and Ampere cuts it
    # first: a zero C aligns at 2^-132, 24 bits below which -2^-160 is nothing).
    d = dot("cdna3", "mfma.f32_32x32x8_bf16", [-(P**-100)], [P**-60])
    assert d == 0 and np.signbit(d)
    assert not np.signbit(dot("cdna3", "mfma.f32_16x16x16_bf16", [-(P**-100)], [P**-60]))
    d = dot("ampere", "mma.m16n8k16.f32.bf16.bf16.f32", [-(P**-100)], [P**-60])
    assert d == 0 and not np.signbit(d)


def test_cdna2_flushes_subnormal_inputs_products_and_c():
    assert dot("cdna2", "mfma.f32_16x16x16f16", [P**-24], [1]) == 0.0  # float16 subnormal input
    assert dot("cdna1", "mfma.f32_16x16x16f16", [P**-24], [1]) == P**-24
    assert dot("cdna2", "mfma.f32_16x16x16bf16_1k", [P**-63], [P**-64]) == 0.0  # 2^-127 product
    assert dot("cdna1", "mfma.f32_16x16x8bf16", [P**-63], [P**-64]) == P**-127
    assert dot("cdna2", "mfma.f32_16x16x16f16", [0.0], [0.0], P**-130) == 0.0  # subnormal C


def test_cdna1_rounds_once_fma_chains_round_every_step():
    # 1 + 2^-24 + 2^-50 is above the tie 1 + 2^-24: one RNE gives 1 + 2^-23 (CDNA1, bf16 pairs).
    assert dot("cdna1", "mfma.f32_4x4x2bf16", [P**-12, P**-25], [P**-12, P**-25], 1.0) == 1 + P**-23
    # A float32 FMA chain adds 2^-24 twice to 1, a tie to even each time: 1.0.
    assert dot("cdna3", "mfma.f32_16x16x4_f32", [P**-12, P**-12], [P**-12, P**-12], 1.0) == 1.0
    # A float64 FMA keeps what float32 loses.
    d = dot("cdna3", "mfma.f64_16x16x4_f64", [P**-12, P**-12], [P**-12, P**-12], 1.0)
    assert d == 1 + P**-23 and d.dtype == np.float64


def test_fma_nan_and_inf():
    assert bits32(dot("cdna3", "mfma.f32_16x16x4_f32", [np.inf], [0.0])) == 0x7FC00000
    assert dot("cdna3", "mfma.f32_16x16x4_f32", [BIG], [10.0], -np.inf) == -np.inf
    assert dot("hopper", "mma.m16n8k4.f64.f64.f64.f64", [1e308], [10.0], -np.inf) == -np.inf


# ----- input checks ------------------------------------------------------------------------------
def _zeros(arch, instruction):
    p = get_engine(arch, instruction)
    return np.zeros((p.m, p.k)), np.zeros((p.k, p.n)), np.zeros((p.m, p.n))


def test_operand_values_are_checked_and_named():
    a, b, c = _zeros("hopper", "mma.m16n8k16.f32.f16.f16.f32")
    a[3, 2] = 0.1
    with pytest.raises(ValueError, match=r"^a: 0\.1 is not a float16 value"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", a, b, c)
    a[3, 2], b[0, 0] = 0.0, 1e6
    with pytest.raises(ValueError, match="^b: .* float16"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", a, b, c)
    b[0, 0], c[0, 0] = 0.0, 0.1  # 0.1 as a float64 is no float32 value
    with pytest.raises(ValueError, match="^c: .* float32"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", a, b, c)


def test_narrow_types_are_checked():
    a, b, c = _zeros("ampere", "mma.m16n8k8.f32.tf32.tf32.f32")
    a[0, 0] = 1 + P**-11  # 11 fraction bits: float32, not tf32
    with pytest.raises(ValueError, match="^a: .* tf32"):
        mma("ampere", "mma.m16n8k8.f32.tf32.tf32.f32", a, b, c)
    a, b, c = _zeros("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    a[0, 0] = np.inf  # e4m3 has no Inf
    with pytest.raises(ValueError, match="^a: inf is not a float8_e4m3fn value"):
        mma("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", a, b, c)
    a, b, c = _zeros("cdna3", "mfma.f32_16x16x32_fp8_fp8")
    a[0, 0] = 448.0  # e4m3fn's largest, past e4m3fnuz's 240
    with pytest.raises(ValueError, match="^a: .* float8_e4m3fnuz"):
        mma("cdna3", "mfma.f32_16x16x32_fp8_fp8", a, b, c)


def test_shapes_are_checked():
    a, b, c = _zeros("hopper", "mma.m16n8k16.f32.f16.f16.f32")
    with pytest.raises(ValueError, match=r"^b: the instruction takes shape \(16, 8\)"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", a, b.T, c)
    with pytest.raises(TypeError, match="^a:"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", np.full((16, 16), "x"), b, c)


def test_scales_are_checked():
    ins = "mma.m16n8k32.mxf8f6f4.f32.e4m3.e4m3.f32"
    a, b, c = _zeros("rtx_blackwell", ins)
    with pytest.raises(ValueError, match="scale_a and scale_b"):
        mma("rtx_blackwell", ins, a, b, c)
    with pytest.raises(ValueError, match="^scale_a: 1.5 is not a float8_e8m0fnu value"):
        mma("rtx_blackwell", ins, a, b, c, np.full((16, 1), 1.5), np.ones((1, 8)))
    with pytest.raises(ValueError, match=r"^scale_b: the instruction takes shape \(1, 8\)"):
        mma("rtx_blackwell", ins, a, b, c, np.ones((16, 1)), np.ones((2, 8)))
    nv = "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3"
    a, b, c = _zeros("rtx_blackwell", nv)
    with pytest.raises(ValueError, match="^scale_a: -1.0 is not a unsigned float8_e4m3fn value"):
        mma("rtx_blackwell", nv, a, b, c, np.full((16, 4), -1.0), np.ones((4, 8)))
    a, b, c = _zeros("hopper", "mma.m16n8k16.f32.f16.f16.f32")
    with pytest.raises(ValueError, match="^scale_a: .* takes no scales"):
        mma("hopper", "mma.m16n8k16.f32.f16.f16.f32", a, b, c, np.ones((16, 1)), None)


@pytest.mark.parametrize(
    ("arch", "instruction", "message"),
    [
        ("pascal", "mma.m16n8k16.f32.f16.f16.f32", "arch must be one of"),
        ("ampere", "wgmma.m64n8k16.f32.f16.f16", "not one that lowbit models on ampere"),
        ("hopper", "mma.m16n8k32.f32.e4m3.e4m3.f32", "not one that lowbit models on hopper"),
        ("cdna2", "mfma.f32_16x16x8_bf16_1k", "not one that lowbit models on cdna2"),  # no such instruction
        ("hopper", "wgmma.m64n12k16.f32.f16.f16", "N must be a multiple of 8"),
        ("hopper", "hmma.16816.f32", "must start with"),
        ("hopper", "mma.m16n8k16.f32.f16", "types of D, A, B and C"),
        ("cdna3", "mfma.f32_16x16x16_f17", "not an mfma name"),
    ],
)
def test_bad_names(arch, instruction, message):
    a, b, c = np.zeros((16, 16)), np.zeros((16, 8)), np.zeros((16, 8))
    with pytest.raises(ValueError, match=message):
        mma(arch, instruction, a, b, c)


def test_spellings_of_one_instruction():
    full = get_engine("ampere", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32")
    assert full == get_engine("Ampere", "mma.m16n8k16.f32.f16.f16.f32")
    assert get_engine("cdna1", "v_mfma_f32_16x16x16f16") == get_engine("cdna1", "mfma.f32_16x16x16_f16")
    assert get_engine("cdna3", "mfma.f32_32x32x4_2b_f16") == get_engine("cdna3", "mfma.f32_32x32x4_f16")
    ptx = "mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3"
    assert get_engine("rtx_blackwell", ptx).instruction == "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3"
    wide = get_engine("hopper", "wgmma.m64n256k32.f32.e4m3.e4m3")
    assert (wide.n, wide.instruction) == (256, "wgmma.m64n256k32.f32.e4m3.e4m3")
    d = mma("hopper", wide.instruction, np.ones((64, 32)), np.ones((32, 256)), np.zeros((64, 256)))
    assert d.shape == (64, 256) and (d == 32).all()


# ----- the listing -------------------------------------------------------------------------------
def test_engines_cover_every_architecture_and_parse_back():
    listed = engines()
    assert {p.arch for p in listed} == set(Arch)
    for p in listed:
        assert get_engine(p.arch, p.instruction) == p
        assert p.group_size * p.split_k == p.k
        assert "2511.10909" in p.citation
    kinds = {p.instruction.split(".")[0] for p in listed}
    assert kinds == {"mma", "wgmma", "tcgen05", "mfma"}


def test_engine_parameters_as_the_paper_gives_them():
    assert get_engine("volta", "mma.m8n8k4.f32.f16.f16.f32").fraction_bits == 23
    assert get_engine("ampere", "mma.m16n8k16.f32.f16.f16.f32").fraction_bits == 24
    assert get_engine("ampere", "mma.m16n8k16.f32.f16.f16.f32").split_k == 2
    fp8 = get_engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    assert (fp8.fraction_bits, fp8.normalization) == (13, Normalization.RZ_E8M13)
    assert get_engine("blackwell", "tcgen05.mma.m128n8k32.f8f6f4.f32.e4m3.e4m3").fraction_bits == 25
    assert get_engine("rtx_blackwell", "mma.m16n8k64.mxf4.f32.e2m1.e2m1.f32").fraction_bits == 35
    cdna3 = get_engine("cdna3", "mfma.f32_16x16x32_fp8_fp8")
    assert (cdna3.algorithm, cdna3.fraction_bits, cdna3.second_fraction_bits) == (Algorithm.GTR_FDPA, 24, 31)
    assert get_engine("cdna2", "mfma.f32_16x16x16f16").flush_denormals
    assert lowbit.simulator.engines is engines


# ----- the integer helpers agree with exact rounding ---------------------------------------------
def test_vectorised_rounding_matches_python_integers():
    mma_module = importlib.import_module("lowbit.simulator.matrix_engines")
    rng = np.random.default_rng(7)
    totals = rng.integers(-(1 << 40), 1 << 40, size=4000) >> rng.integers(0, 40, size=4000)
    bases = rng.integers(-180, 110, size=4000)
    got = mma_module._to_float(*mma_module._requantize(totals, bases, 23, -126, lowbit.Rounding.RNE), 127)
    want = [mma_module._round_int(int(t), int(e), (23, -126, 127)) for t, e in zip(totals, bases, strict=True)]
    np.testing.assert_array_equal(got, np.array(want))
