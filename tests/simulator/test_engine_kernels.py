"""The compiled matrix-engine GEMM (`engine_gemm.run` on `kernels.engine_scalar`'s CPU and CUDA
drivers) equals the reference driver (`engine_gemm.reference`, which runs `matrix_engines`' NumPy
implementation of each instruction, itself tested against an independent oracle) bit for bit:
signed zeros included, NaN where NaN. The cases go through `matmul(..., engine=...)`; the
reference reads the same operands, built as `gemm._engine_matmul` builds them. CUDA runs in
Numba's simulator (conftest), on tiny shapes."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from lowbit.formats import get_format
from lowbit.formats.engines import Normalization, engine_catalog, get_engine
from lowbit.simulator import engine_gemm, matmul
from lowbit.simulator.gemm import Factors, factors
from lowbit.simulator.kernels import engine_scalar
from lowbit.simulator.kernels.dispatch import Target
from lowbit.simulator.kernels.rounding import Rounding
from lowbit.simulator.matrix_engines import _requantize

# (arch, instruction, a_format, b_format)
CASES = [
    ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", "float8_e4m3fn", "float8_e4m3fn"),  # int8 / int32 lanes
    ("hopper", "wgmma.m64n8k32.f16.e5m2.e4m3", "float8_e5m2", "float8_e4m3fn"),  # RNE to float16
    ("ada", "mma.m16n8k32.f32.e4m3.e4m3.f32", "float8_e4m3fn", "float8_e4m3fn"),  # split_k 2
    ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32", "bfloat16", "bfloat16"),  # float64 products
    ("ampere", "mma.m16n8k16.f16.f16.f16.f16", "float16", "float16"),
    ("ampere", "mma.m16n8k8.f32.tf32.tf32.f32", "tf32", "tf32"),
    ("volta", "mma.m8n8k4.f32.f16.f16.f32", "float16", "float16"),
    ("volta", "mma.m8n8k4.f32.f16.f16.f16", "float16", "float16"),  # C read as float16
    ("blackwell", "tcgen05.mma.m128n8k32.f8f6f4.f32.e2m1.e3m2", "float4_e2m1fn", "float6_e3m2fn"),  # int64 sums
    ("rtx_blackwell", "mma.m16n8k32.mxf8f6f4.block32.f32.e4m3.e4m3.f32.ue8m0", "mxfp8_e4m3", "mxfp8_e4m3"),  # ST
    ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue4m3", "nvfp4", "nvfp4"),  # GST
    ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32.ue8m0", "mxfp4", "mxfp4"),
]
IDS = [f"{arch}:{instruction}" for arch, instruction, _, _ in CASES]


def seeded(text: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(text.encode()))


def _factors(x: np.ndarray, fmt: str) -> Factors:
    """x (rows, K) along K as `gemm._engine_matmul` quantizes it for an engine."""
    if engine_gemm.wide_format(fmt):
        rows, k = x.shape
        return Factors(engine_gemm.wide_values(x, fmt), np.ones((rows, 1)), max(k, 1), 1.0, False, 0.0, 1, False)
    return factors(x, fmt)


def _operands(arch, instruction, a_format, b_format, a, b):
    """The profile and the operands `matmul(..., engine=...)` hands the engine."""
    fa, fb = _factors(a, a_format), _factors(np.ascontiguousarray(b.T), b_format)
    specs = [None if engine_gemm.wide_format(f) else get_format(f) for f in (a_format, b_format)]
    p = engine_gemm.resolve((arch, instruction), *specs, fa.nominal_block or None)
    return p, engine_gemm.engine_operands(p, fa, fb, a_format, b_format)


def _holds_nan(*formats: str) -> bool:
    return all(engine_gemm.wide_format(f) or get_format(f).has_nan for f in formats)


def _same(got, want):
    """Bit for bit, signed zeros included; NaN where NaN."""
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(np.where(nan, 0.0, got).view(np.int64), np.where(nan, 0.0, want).view(np.int64))


def _large(fmt: str) -> float:
    """A magnitude near the top of a format's range: a quarter of an element format's largest
    value, 2^70 for a block format (its scales carry it)."""
    spec = None if engine_gemm.wide_format(fmt) else get_format(fmt)
    return float(spec.max) / 4 if spec is not None and hasattr(spec, "max") else 2.0**70


def _data(kind: str, rng, m: int, k: int, n: int, formats: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Operands of one kind of case (before quantization into `formats`)."""
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    if kind == "binades":  # products and C many binades apart: truncation and zero terms
        a *= 2.0 ** rng.integers(-20, 21, (m, k))
        b *= 2.0 ** rng.integers(-20, 21, (k, n))
    elif kind == "subnormal":  # subnormal elements (block formats: small against their block's largest)
        a *= 2.0 ** rng.integers(-24, -12, (m, k))
        b *= 2.0 ** rng.integers(-24, -12, (k, n))
        a[:, ::16] = rng.standard_normal((m, -(-k // 16)))
    elif kind == "cancel":  # each product next to its negation, and a row that is minus another
        a[:, 1::2] = a[:, 0::2][:, : a[:, 1::2].shape[1]]
        b[1::2] = -b[0::2][: b[1::2].shape[0]]
        a[:, -8:] = rng.standard_normal((m, 8))  # a ragged tail that does not cancel
        a[1] = -a[0]
    elif kind == "zeros":  # zero rows, columns and elements: zero products align at the zero exponent
        a[2] = 0.0
        b[:, 3] = 0.0
        a[rng.random((m, k)) < 0.3] = 0.0
        b[rng.random((k, n)) < 0.3] = 0.0
    elif kind == "tiny":  # products below the zero exponent (bfloat16, block scales): zeros set the maximum
        a *= 2.0**-70
        b *= 2.0**-70
        a[:, 16:32] = 0.0  # whole subgroups without a nonzero product
        a[rng.random((m, k)) < 0.2] = 0.0
        b[rng.random((k, n)) < 0.2] = 0.0
    elif kind == "huge":  # sums past the output's range where the formats reach it: Inf inside the chain
        a[:3] *= _large(formats[0])
        b[:, : n // 2] *= _large(formats[1])
        a[0] = np.abs(a[0])
        b[:, :2] = np.abs(b[:, :2])
        b[:, 1] *= -1.0
    elif kind == "nonfinite":  # NaN and Inf operands (as each format quantizes them)
        a[0, 5], a[3, 7], b[9, 1] = np.nan, np.inf, -np.inf
        b[11, 4] = np.nan
    return a, b


KINDS = ["normal", "binades", "subnormal", "cancel", "zeros", "tiny", "huge", "nonfinite"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("arch", "instruction", "a_format", "b_format"), CASES, ids=IDS)
def test_compiled_equals_the_reference(arch, instruction, a_format, b_format, kind):
    if kind == "nonfinite" and not _holds_nan(a_format, b_format):
        pytest.skip("the formats quantize NaN and Inf to NaN, which the instruction's types cannot hold")
    rng = seeded(f"{instruction}:{kind}")
    a, b = _data(kind, rng, 6, 100, 40, (a_format, b_format))  # K = 100: a zero-padded last instruction
    p, ops = _operands(arch, instruction, a_format, b_format, a, b)
    for every in (None, 2 * p.k):
        with np.errstate(invalid="ignore", over="ignore"):
            got = matmul(a, b, a_format, b_format, engine=(arch, instruction), promote_every=every)
        _same(got, engine_gemm.reference(p, ops, every))


LARGE = [CASES[i] for i in (0, 3, 10)]  # float32 and float64 products, GST


@pytest.mark.parametrize(("arch", "instruction", "a_format", "b_format"), LARGE, ids=[f"{c[0]}:{c[1]}" for c in LARGE])
def test_several_strips_and_row_blocks(arch, instruction, a_format, b_format):
    # N = 300: two strips of columns (the second padded); M = 40: two tasks of rows
    rng = seeded(instruction)
    a, b = _data("binades", rng, 40, 160, 300, (a_format, b_format))
    p, ops = _operands(arch, instruction, a_format, b_format, a, b)
    _same(matmul(a, b, a_format, b_format, engine=(arch, instruction)), engine_gemm.reference(p, ops, None))


def _gst_empty_subgroup() -> tuple:
    """GST_FDPA, by hand: a subgroup whose products are all zero (A and B nonzero at alternate k)
    under scales of 2^100 must not set the maximum exponent (the reference aligns it at the zero
    exponent): column 0 is then 1 + 2^-20 (1 and 2^-10 * 2^-10 fused 35 bits below 2^0), not 0."""
    p = get_engine("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block16.f32.e2m1.e2m1.f32.ue8m0")
    a, b = np.zeros((1, 64)), np.zeros((64, 2))
    a[0, 0:16:2], b[1:16:2, 0] = 1.0, 1.0  # subgroup 0: no nonzero product
    a[0, 16], b[16] = 1.0, 1.0
    a[0, 32], b[32] = 1.0, 1.0
    sa, sb = np.ones((1, 4)), np.ones((4, 2))
    sa[0, 0] = sb[0, 0] = 2.0**100
    sa[0, 2] = sb[2, 0] = 2.0**-10  # column 1: scale_b 1 there, 1 + 2^-10
    return p, engine_gemm.EngineOperands(a, b, sa, sb, 1.0), [1.0 + 2.0**-20, 1.0 + 2.0**-10]


def _st_zero_group() -> tuple:
    """ST_FDPA, by hand: a fused sum whose products are all zero under scales of 2^120 leaves C
    (32, from the first sum) as it is: the scales shift no product exponent there."""
    p = get_engine("rtx_blackwell", "mma.m16n8k32.mxf8f6f4.block32.f32.e4m3.e4m3.f32.ue8m0")
    a, b = np.zeros((1, 64)), np.ones((64, 1))
    a[0, :32] = 1.0
    sa, sb = np.ones((1, 2)), np.ones((2, 1))
    sa[0, 1] = sb[1, 0] = 2.0**120
    return p, engine_gemm.EngineOperands(a, b, sa, sb, 1.0), [32.0]


@pytest.mark.parametrize("target", [Target.CPU, Target.CUDA])
@pytest.mark.parametrize("case", [_gst_empty_subgroup, _st_zero_group])
def test_hand_worked_exponents(case, target):
    p, ops, want = case()
    np.testing.assert_array_equal(engine_gemm.reference(p, ops, None)[0], want)  # the reference agrees by hand
    np.testing.assert_array_equal(engine_gemm.run(p, ops, None, target)[0], want)


def test_every_fused_sum_profile_takes_the_compiled_kernels():
    # _plan proves the float arithmetic exact for each profile; none falls back to the reference
    for p in engine_catalog():
        planned = engine_gemm._plan(p) is not None
        assert planned == (p.algorithm in engine_gemm.FAST_ALGORITHMS), p.instruction


@pytest.mark.parametrize("how", [Normalization.RZ_FP32, Normalization.RZ_E8M13, Normalization.RNE_FP16])
def test_requantize_equals_the_reference_rounding(how):
    # the scalar normalization (run here as plain Python, as the CUDA simulator runs it) against
    # matrix_engines._requantize on the integers it sees: ties, carries, subnormal and huge values
    man, emin, _, rne = engine_gemm._OUTPUTS[how]
    rng = seeded(how.value)
    total = rng.integers(-(2**40), 2**40, 3000) >> rng.integers(0, 40, 3000)
    total[:200] = (2 * rng.integers(0, 2**12, 200) + 1) << rng.integers(0, 20, 200)  # ties at many widths
    base = rng.integers(-180, 100, 3000)
    r, q = _requantize(total, base, man, emin, Rounding.RNE if rne else Rounding.RTZ)
    want = np.ldexp(r.astype(np.float64), q)
    for t, e, w in zip(total, base, want, strict=True):
        v = float(t) * 2.0 ** int(e)
        got = engine_scalar.requantize(v, man, emin, bool(rne))
        assert np.float64(got).view(np.int64) == np.float64(w).view(np.int64), (t, e)


cuda = pytest.importorskip("numba.cuda")


@pytest.mark.skipif(not cuda.is_available(), reason="no CUDA device and the CUDA simulator is off")
@pytest.mark.parametrize("kind", ["binades", "huge", "nonfinite"])
@pytest.mark.parametrize(("arch", "instruction", "a_format", "b_format"), CASES, ids=IDS)
def test_cuda_equals_the_reference(arch, instruction, a_format, b_format, kind):
    if kind == "nonfinite" and not _holds_nan(a_format, b_format):
        pytest.skip("the formats quantize NaN and Inf to NaN, which the instruction's types cannot hold")
    rng = seeded(f"cuda:{instruction}:{kind}")
    a, b = _data(kind, rng, 4, 40, 8, (a_format, b_format))
    p, ops = _operands(arch, instruction, a_format, b_format, a, b)
    every = 2 * p.k if kind == "binades" else None
    with np.errstate(invalid="ignore", over="ignore"):
        got = matmul(a, b, a_format, b_format, engine=(arch, instruction), promote_every=every, target="cuda")
    _same(got, engine_gemm.reference(p, ops, every))
