"""Whole GEMMs on a matrix engine: `matmul(..., engine=...)` equals a loop of `mma` calls over
tiles of M, N and K (the last K tile zero-padded), with C carried from call to call, and
`promote_every` equals adding each run of calls into float32 by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit.formats.engines import get_engine
from lowbit.simulator import matmul, matmul_error, mma
from lowbit.simulator.gemm import factors

# (arch, instruction, a_format, b_format): one or more per algorithm family.
CASES = [
    ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", "float8_e4m3fn", "float8_e4m3fn"),  # T_FDPA, RZ to 13 bits
    ("hopper", "wgmma.m64n8k32.f16.e5m2.e4m3", "float8_e5m2", "float8_e4m3fn"),  # f16 accumulator
    ("ampere", "mma.m16n8k16.f16.f16.f16.f16", "float16", "float16"),
    ("volta", "mma.m8n8k4.f32.f16.f16.f32", "float16", "float16"),
    ("ada", "mma.m16n8k32.f32.e4m3.e4m3.f32", "float8_e4m3fn", "float8_e4m3fn"),
    ("blackwell", "tcgen05.mma.m64n8k32.f8f6f4.f32.e2m1.e3m2", "float4_e2m1fn", "float6_e3m2fn"),
    ("rtx_blackwell", "mma.m16n8k32.mxf8f6f4.block32.f32.e4m3.e4m3.f32.ue8m0", "mxfp8_e4m3", "mxfp8_e4m3"),  # ST
    ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32.ue8m0", "mxfp4", "mxfp4"),  # GST
    ("cdna3", "mfma.f32_16x16x16_f16", "float16", "float16"),  # TR_FDPA
    ("cdna3", "mfma.f32_16x16x32_fp8_fp8", "float8_e4m3fnuz", "float8_e4m3fnuz"),  # GTR_FDPA
    ("cdna2", "mfma.f32_16x16x8bf16", "bfloat16", "bfloat16"),  # FTZ_MUL_ADD
    ("cdna1", "mfma.f32_4x4x4f16", "float16", "float16"),  # E_FDPA
    ("cdna3", "mfma.f32_16x16x4_f32", "float32", "float32"),  # FMA chain
    ("ampere", "mma.m16n8k8.f32.tf32.tf32.f32", "tf32", "tf32"),
]


def _tf32(x):
    """float32 rounded to nearest even at 10 fraction bits, on the bits (13 dropped)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def _factors(x, fmt):
    """The operand along K: wide formats by hand, lowbit's formats by their quantizer."""
    if fmt == "float32":
        return x.astype(np.float32).astype(np.float64), None
    if fmt == "tf32":
        return _tf32(x), None
    f = factors(x, fmt)
    return f.elements, f.scales


def _tiled_mma(arch, instruction, a_format, b_format, a, b, promote_every=None):
    """The GEMM as the test reads the contract: quantized operands, K padded with zeros to the
    instruction's k, one mma per (M tile, N tile, K tile) with C carried, optional float32 promotion."""
    p = get_engine(arch, instruction)
    (ea, sa), (eb, sb) = _factors(a, a_format), _factors(np.ascontiguousarray(b.T), b_format)
    m, k = a.shape
    n = b.shape[1]
    kp = -(-k // p.k) * p.k
    A = np.zeros((m, kp))
    A[:, :k] = ea
    B = np.zeros((kp, n))
    B[:k] = eb.T
    SA = SB = None
    if p.block_scaled:
        SA = np.ones((m, kp // p.block_size))
        SA[:, : sa.shape[1]] = sa
        SB = np.ones((kp // p.block_size, n))
        SB[: sb.shape[1]] = sb.T
    every = promote_every or kp
    out = np.zeros((m, n))
    for i0 in range(0, m, p.m):
        for j0 in range(0, n, p.n):
            rows, cols = slice(i0, i0 + p.m), slice(j0, j0 + p.n)
            total = np.zeros((p.m, p.n), np.float32)
            for s0 in range(0, kp, every):
                c = np.zeros((p.m, p.n), {"f16": np.float16, "f32": np.float32, "f64": np.float64}[p.c_type.name])
                for k0 in range(s0, min(kp, s0 + every), p.k):
                    ks = slice(k0, k0 + p.k)
                    scales = {}
                    if p.block_scaled:
                        bs = slice(k0 // p.block_size, (k0 + p.k) // p.block_size)
                        scales = {"scale_a": SA[rows, bs], "scale_b": SB[bs, cols]}
                    c = mma(arch, instruction, A[rows, ks], B[ks, cols], c, **scales)
                if promote_every is None:
                    total = c
                else:
                    with np.errstate(invalid="ignore", over="ignore"):
                        total = total + c.astype(np.float32)
            out[rows, cols] = total
    return out


def _data(rng, m, k, n, spread=0):
    a = rng.standard_normal((m, k)) * 2.0 ** rng.integers(-spread, spread + 1, (m, k))
    b = rng.standard_normal((k, n)) * 2.0 ** rng.integers(-spread, spread + 1, (k, n))
    return a, b


def _same(x, y):
    """Bit for bit, signed zeros included; NaN where NaN."""
    nan = np.isnan(x)
    assert np.array_equal(nan, np.isnan(y))
    assert np.array_equal(np.where(nan, 0.0, x).view(np.int64), np.where(nan, 0.0, y).view(np.int64))


def _shape(arch, instruction):
    p = get_engine(arch, instruction)
    return 2 * p.m if p.m <= 16 else p.m, 2 * p.n, 3 * p.k + p.k // 2


@pytest.mark.parametrize(("arch", "instruction", "fa", "fb"), CASES)
def test_engine_matmul_equals_a_loop_of_mma(arch, instruction, fa, fb):
    rng = np.random.default_rng(abs(hash(instruction)) % 2**32)
    m, n, k = _shape(arch, instruction)
    a, b = _data(rng, m, k, n, spread=3)
    got = matmul(a, b, fa, fb, engine=(arch, instruction))
    _same(got, _tiled_mma(arch, instruction, fa, fb, a, b))


@pytest.mark.parametrize(("arch", "instruction", "fa", "fb"), CASES[:1] + CASES[6:8] + CASES[9:10])
def test_promote_every_equals_float32_adds_of_mma_runs(arch, instruction, fa, fb):
    rng = np.random.default_rng(7)
    p = get_engine(arch, instruction)
    m, n, _ = _shape(arch, instruction)
    k = 5 * p.k + 3
    a, b = _data(rng, m, k, n, spread=2)
    every = 2 * p.k
    got = matmul(a, b, fa, fb, engine=f"{arch}:{instruction}", promote_every=every)
    _same(got, _tiled_mma(arch, instruction, fa, fb, a, b, promote_every=every))


def test_nvfp4_tensor_scales_are_the_epilogue_alpha():
    arch, instruction = "rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3"
    rng = np.random.default_rng(3)
    a, b = _data(rng, 16, 128, 8)
    a *= 1000.0  # a tensor scale far from 1
    got = matmul(a, b, "nvfp4", "nvfp4", engine=(arch, instruction))
    d = _tiled_mma(arch, instruction, "nvfp4", "nvfp4", a, b)
    ta, tb = factors(a, "nvfp4").tensor, factors(np.ascontiguousarray(b.T), "nvfp4").tensor
    alpha = np.float32(np.float32(ta) * np.float32(tb))
    _same(got, (d.astype(np.float32) * alpha).astype(np.float64))


def test_nan_and_inf_reach_the_outputs_as_the_instruction_gives_them():
    arch, instruction = "hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"
    rng = np.random.default_rng(5)
    a, b = _data(rng, 64, 70, 16)
    b[3, 2] = np.nan
    a[5, 40] = 1e30  # saturates? e4m3fn has no Inf: quantize makes it NaN
    got = matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=(arch, instruction))
    _same(got, _tiled_mma(arch, instruction, "float8_e4m3fn", "float8_e4m3fn", a, b))
    assert np.isnan(got[:, 2]).all() and np.isnan(got[5]).all()


def test_overflow_of_the_fp16_accumulator_gives_inf():
    arch, instruction = "ampere", "mma.m16n8k16.f16.f16.f16.f16"
    a = np.full((16, 64), 255.0)
    b = np.full((64, 8), 255.0)  # 64 * 65025 overflows float16
    got = matmul(a, b, "float16", "float16", engine=(arch, instruction))
    assert np.isinf(got).all() and (got > 0).all()
    _same(got, _tiled_mma(arch, instruction, "float16", "float16", a, b))


def test_batches_and_matmul_error_take_the_engine():
    engine = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 8, 64))
    b = rng.standard_normal((64, 8))
    got = matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=engine)
    for i in range(2):
        _same(got[i], matmul(a[i], b, "float8_e4m3fn", "float8_e4m3fn", engine=engine))
    err = matmul_error(a[0], b, "float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=32)
    _same(err.result, matmul(a[0], b, "float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=32))
    np.testing.assert_array_equal(err.reference, a[0] @ b)


def test_promotion_every_128_shrinks_the_error_of_long_fp8_sums_on_hopper():
    # DeepSeek-V3 (arXiv 2412.19437, section 3.3.2): FP8 GEMMs on H800 keep about 14 bits, and
    # promoting partial sums to FP32 every 128 elements of K fixes the loss for long K.
    rng = np.random.default_rng(11)
    a = np.abs(rng.standard_normal((4, 4096)))
    b = np.abs(rng.standard_normal((4096, 4)))
    engine = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    plain = matmul_error(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=engine).relative_accumulation_error
    promoted = matmul_error(
        a, b, "float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=128
    ).relative_accumulation_error
    assert promoted < plain / 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), "promote_every": 48}, "promote_every"),
        ({"engine": ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), "accumulator": "fp16"}, "accumulator"),
        ({"engine": ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), "chunk": 4}, "chunk"),
        ({"promote_every": 128}, "promote_every"),
        ({"engine": "hopper"}, "engine"),
        ({"engine": ("pascal", "mma.m16n8k16.f32.f16.f16.f32")}, "arch"),
    ],
)
def test_bad_engine_arguments_are_named(kwargs, message):
    a = np.ones((4, 64))
    with pytest.raises(ValueError, match=message):
        matmul(a, a.T, "float8_e4m3fn", "float8_e4m3fn", **kwargs)


@pytest.mark.parametrize(
    ("fmt", "engine", "message"),
    [
        ("float16", ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), "a_format 'float16'.*not a float8_e4m3fn value"),
        ("mxfp4", ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), "takes no block scales"),
        ("float4_e2m1fn", ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32"), "block"),
    ],
)
def test_formats_the_instruction_cannot_read_are_named(fmt, engine, message):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 64)) * 100
    with pytest.raises(ValueError, match=message):
        matmul(a, a.T, fmt, fmt, engine=engine)


def test_tf32_operands_round_to_nearest_even_as_on_the_bits():
    from lowbit.simulator.engine_gemm import wide_values

    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**19, 1000, dtype=np.uint64).astype(np.uint32) << 13) | np.uint32(0x1000)
    x = np.concatenate([bits, ties]).view(np.float32)
    x = x[np.isfinite(x)]
    _same(wide_values(x.astype(np.float64), "tf32"), _tf32(x))


def test_a_b_quantized_beforehand_is_checked_by_its_values():
    from lowbit.simulator import operand

    rng = np.random.default_rng(4)
    a = rng.standard_normal((4, 32))
    b = operand(rng.standard_normal((32, 3)) * 1000, "float16")  # float16 values, not e4m3 ones
    with pytest.raises(ValueError, match="not a float8_e4m3fn value"):
        matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"))


def test_nan_that_a_format_keeps_but_the_instruction_cannot_hold_is_refused():
    a = np.ones((4, 32))
    a[1, 3] = np.nan  # float4_e2m1fn has no NaN code; quantize keeps the NaN
    engine = ("blackwell", "tcgen05.mma.m64n8k32.f8f6f4.f32.e2m1.e2m1")
    with pytest.raises(ValueError, match="a_format 'float4_e2m1fn': nan is not a float4_e2m1fn value"):
        matmul(a, np.ones((32, 8)), "float4_e2m1fn", "float4_e2m1fn", engine=engine)


def test_matmul_error_takes_the_wide_operand_types():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((16, 16)), rng.standard_normal((16, 8))
    engine = ("ampere", "mma.m16n8k8.f32.tf32.tf32.f32")
    err = matmul_error(a, b, "tf32", "tf32", engine=engine)
    _same(err.result, _tiled_mma(*engine, "tf32", "tf32", a, b))
    np.testing.assert_array_equal(err.dequantized_reference, _tf32(a) @ _tf32(b))


def test_no_rows_still_checks_the_engine_arguments():
    a, b = np.ones((0, 64)), np.ones((64, 8))
    engine = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    assert matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=engine).shape == (0, 8)
    with pytest.raises(ValueError, match="promote_every"):
        matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=7)
    with pytest.raises(ValueError, match="engine"):
        matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", engine="nonsense")


def test_default_unit_arguments_may_be_written_out():
    from lowbit.simulator import Rounding

    a = np.ones((4, 32))
    engine = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    plain = matmul(a, a.T, "float8_e4m3fn", "float8_e4m3fn", engine=engine)
    spelled = matmul(a, a.T, "float8_e4m3fn", "float8_e4m3fn", "fp32", None, "sequential", None,
                     rounding=Rounding.RNE, engine=engine)  # fmt: skip
    _same(plain, spelled)
