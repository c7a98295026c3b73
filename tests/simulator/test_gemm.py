"""GEMM emulation against an exact oracle written here in Python fractions, against NumPy float32
rounding, on cases where accumulation visibly matters, CPU against the CUDA simulator, the fast
drivers against the general one, and bad input."""

import math
from fractions import Fraction

import numpy as np
import pytest

import lowbit
from lowbit.simulator.gemm import _setup, dot, factors, matmul, matmul_error
from lowbit.simulator.kernels import dot_scalar

ACCUMULATORS = {  # name: (exponent bits, mantissa bits), or None for integer / exact
    "fp32": (8, 23),
    "fp16": (5, 10),
    "bf16": (8, 7),
    "fp22": (8, 13),
    "e5m2": (5, 2),
}
MODES = ["rne", "rtz", "rup", "rdown", "rna"]


# ---- the oracle ----------------------------------------------------------------------------------


def floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    return e


def round_fraction(x: Fraction, exp_bits: int, man_bits: int, mode: str = "rne") -> float:
    """x rounded to an IEEE-style float with exp_bits and man_bits (subnormals, Inf on overflow)."""
    if x == 0:
        return 0.0
    bias = 2 ** (exp_bits - 1) - 1
    emin, emax = 1 - bias, 2**exp_bits - 2 - bias
    largest = (2 - Fraction(1, 2**man_bits)) * Fraction(2) ** emax
    ulp = Fraction(2) ** (max(floor_log2(abs(x)), emin) - man_bits)
    q = x / ulp
    fl = math.floor(q)
    rem = q - fl
    if mode == "rne":
        n = fl + 1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else fl
    elif mode == "rna":
        n = int(abs(q) + Fraction(1, 2)) * (1 if q > 0 else -1)
    elif mode == "rtz":
        n = int(q)
    elif mode == "rup":
        n = math.ceil(q)
    else:
        n = fl
    r = n * ulp
    if abs(r) > largest:
        toward_zero = mode == "rtz" or (mode == "rup" and x < 0) or (mode == "rdown" and x > 0)
        return math.copysign(float(largest), x) if toward_zero else math.copysign(math.inf, x)
    return float(r)


def pairwise(values, add):
    n = len(values)
    if n == 1:
        return values[0]
    p = 1 << (n.bit_length() - 1)
    if p == n:
        p //= 2
    return add(pairwise(values[:p], add), pairwise(values[p:], add))


def oracle(fa, fb, chunk, acc, order="sequential", mode="rne", trunc=None):
    """The emulated product from the operands' factors, in exact rational arithmetic."""
    m, k = fa.elements.shape
    n = fb.elements.shape[0]
    out = np.zeros((m, n))
    alpha_exact = Fraction(fa.tensor) * Fraction(fb.tensor)
    for i in range(m):
        for j in range(n):
            values = []
            for k0 in range(0, k, chunk):
                prods = [
                    Fraction(fa.elements[i, kk]) * Fraction(fb.elements[j, kk]) for kk in range(k0, min(k0 + chunk, k))
                ]
                if trunc:
                    nz = [abs(p) for p in prods if p]
                    if nz:
                        ulp = Fraction(2) ** (floor_log2(max(nz)) + 1 - trunc)
                        prods = [int(p / ulp) * ulp for p in prods]  # toward zero
                s = Fraction(fa.scales[i, k0 // fa.block]) * Fraction(fb.scales[j, k0 // fb.block])
                values.append(sum(prods, Fraction(0)) * s)
            if acc == "exact":
                out[i, j] = float(sum(values, Fraction(0)) * alpha_exact)
                continue
            if acc.startswith("int"):
                bits = int(acc[3:])

                def wrap(x, bits=bits):
                    return (x + 2 ** (bits - 1)) % 2**bits - 2 ** (bits - 1)

                out[i, j] = float(wrap(sum(values, Fraction(0))))
                continue
            e, mb = ACCUMULATORS[acc]

            def rnd(x, e=e, mb=mb):
                if isinstance(x, float):  # Inf or NaN after an overflow: IEEE arithmetic from here on
                    return x
                r = round_fraction(x, e, mb, mode)
                return Fraction(r) if math.isfinite(r) else r

            def add(x, y):
                return float(x) + float(y) if isinstance(x, float) or isinstance(y, float) else x + y

            if order == "sequential":
                a = Fraction(0)
                for v in values:
                    a = rnd(add(a, v))
            else:
                a = pairwise([rnd(v) for v in values], lambda x, y: rnd(add(x, y)))
            if alpha_exact != 1:
                alpha = rnd(alpha_exact)
                a = rnd(float(a) * float(alpha) if isinstance(a, float) else a * alpha)
            out[i, j] = float(a)
    return out


def data(m, k, n, seed, spread=4):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((m, k)) * np.exp2(rng.integers(-spread, spread, (m, k)))).astype(np.float32)
    b = (rng.standard_normal((k, n)) * np.exp2(rng.integers(-spread, spread, (k, n)))).astype(np.float32)
    return a, b


def emulate_and_oracle(a, b, fmt_a, fmt_b, acc, **kw):
    s = _setup(
        a,
        b,
        fmt_a,
        fmt_b,
        acc,
        kw.get("chunk"),
        kw.get("order", "sequential"),
        kw.get("partial_sum_bits"),
        kw.get("rounding", "rne"),
    )
    got = matmul(a, b, fmt_a, fmt_b, acc, **kw)
    want = oracle(
        s.fa, s.fb, s.chunk, acc, kw.get("order", "sequential"), kw.get("rounding", "rne"), kw.get("partial_sum_bits")
    )
    return got, want


def same_bits(got, want):
    np.testing.assert_array_equal(np.asarray(got, np.float64).view(np.uint64), np.asarray(want).view(np.uint64))


# ---- against the oracle --------------------------------------------------------------------------


@pytest.mark.parametrize("acc", [*ACCUMULATORS, "exact"])
@pytest.mark.parametrize("order", ["sequential", "pairwise"])
@pytest.mark.parametrize(
    ("fa", "fb", "k"),
    [
        ("mxfp4", "mxfp4", 256),
        ("nvfp4", "nvfp4", 96),
        ("float8_e4m3fn", "float8_e4m3fn", 40),
        ("mxfp8_e5m2", "mxint8", 64),
        ("nf4", "float8_e5m2", 128),
    ],
)
def test_every_accumulator_and_order_against_the_oracle(fa, fb, k, acc, order):
    a, b = data(2, k, 3, seed=k)
    got, want = emulate_and_oracle(a, b, fa, fb, acc, order=order)
    same_bits(got, want)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("acc", ["fp16", "bf16", "e5m2"])
def test_accumulator_rounding_modes_against_the_oracle(acc, mode):
    a, b = data(2, 64, 3, seed=7)
    got, want = emulate_and_oracle(a, b, "float8_e4m3fn", "float8_e4m3fn", acc, rounding=mode, chunk=4)
    same_bits(got, want)


@pytest.mark.parametrize("acc", ["int32", "int16"])
def test_integer_accumulators_wrap_as_the_oracle(acc):
    a = np.full((2, 8), 127.0)
    b = np.full((8, 2), 127.0)
    b[:, 1] = -127
    got, want = emulate_and_oracle(a, b, "int8", "int8", acc)
    same_bits(got, want)
    if acc == "int16":  # 8 * 16129 = 129032 wraps to 129032 - 2 * 65536 = -2040
        assert got[0, 0] == -2040.0 and got[0, 1] == 2040.0


def test_fp32_sequential_equals_float32_rounding_after_every_addition():
    a, b = data(3, 256, 3, seed=11)
    got = matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", "fp32", chunk=1)
    qa = lowbit.quantize(a, "float8_e4m3fn")
    qb = lowbit.quantize(b, "float8_e4m3fn")
    for i in range(3):
        for j in range(3):
            acc = np.float32(0)
            for kk in range(256):
                acc = np.float32(acc + np.float32(qa[i, kk] * qb[kk, j]))  # the e4m3 product is exact in float32
            assert got[i, j] == float(acc)


def test_fp32_sequential_blocks_equal_float32_rounding_per_block():
    a, b = data(2, 128, 2, seed=12)
    got = matmul(a, b, "mxfp4", "mxfp4", "fp32")
    fa, fb = factors(a, "mxfp4"), factors(np.ascontiguousarray(b.T), "mxfp4")
    for i in range(2):
        for j in range(2):
            acc = np.float32(0)
            for blk in range(4):
                sl = slice(32 * blk, 32 * blk + 32)
                psum = float(np.dot(fa.elements[i, sl], fb.elements[j, sl]))  # exact: small multiples of 1/4
                acc = np.float32(acc + np.float32(psum * fa.scales[i, blk] * fb.scales[j, blk]))
            assert got[i, j] == float(acc)


# ---- accumulation that matters -------------------------------------------------------------------


def test_long_sums_order_fp16_fp22_fp32():
    rng = np.random.default_rng(3)
    a = np.abs(rng.standard_normal((4, 4096))).astype(np.float32)
    b = np.abs(rng.standard_normal((4096, 4))).astype(np.float32)
    err = {
        acc: matmul_error(a, b, "float8_e4m3fn", "float8_e4m3fn", acc, chunk=1).relative_accumulation_error
        for acc in ("fp16", "fp22", "fp32")
    }
    # Sums reach about 2600: fp16 steps there are 2, so addends below 1 (most of them) are lost;
    # fp22 steps are 1/4 and fp32 steps 2^-12. Measured: fp16 9%, fp22 0.4%, fp32 2e-7.
    assert err["fp16"] > 0.05, err
    assert err["fp32"] < 1e-6, err
    assert 100 * err["fp32"] < err["fp22"] < err["fp16"] / 10, err


def test_partial_sum_truncation_by_hand():
    a = np.array([[1.0, 2.0**-30, -(2.0**-22) - 2.0**-25]])
    b = np.ones((3, 1))
    # exact: 1 + 2^-30 - 2^-22 - 2^-25
    exact = matmul(a, b, "bfloat16", "bfloat16", "exact", chunk=3)
    assert exact[0, 0] == float(Fraction(1) + Fraction(1, 2**30) - Fraction(1, 2**22) - Fraction(1, 2**25))
    # a 24-bit partial sum keeps bits 2^0 .. 2^-23 of every product: 2^-30 drops, -(2^-22 + 2^-25)
    # truncates toward zero to -2^-22
    cut = matmul(a, b, "bfloat16", "bfloat16", "exact", chunk=3, partial_sum_bits=24)
    assert cut[0, 0] == 1.0 - 2.0**-22
    # 8 bits: 2^-30 and the small negative product drop entirely
    assert matmul(a, b, "bfloat16", "bfloat16", "exact", chunk=3, partial_sum_bits=8)[0, 0] == 1.0


def test_partial_sum_truncation_against_the_oracle():
    a, b = data(2, 64, 3, seed=5, spread=8)
    got, want = emulate_and_oracle(a, b, "float8_e5m2", "float8_e5m2", "fp32", chunk=16, partial_sum_bits=12)
    same_bits(got, want)


# ---- exact block formats against float64 ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4"])
def test_exact_block_formats_equal_float64_matmul_of_dequantized(fmt):
    rng = np.random.default_rng(9)
    a = rng.standard_normal((5, 128)).astype(np.float32)
    b = rng.standard_normal((128, 6)).astype(np.float32)
    # NVFP4's tensor scale 448 * 6 / amax is 1 when amax is 2688: then every value is exact in float32
    a[0, 0] = b[0, 0] = 2688.0
    qa, qb = lowbit.quantize(a, fmt).astype(np.float64), lowbit.quantize(b, fmt, axis=0).astype(np.float64)
    ref = qa @ qb
    exact_ref = np.array(
        [
            [float(sum(Fraction(x) * Fraction(y) for x, y in zip(qa[i], qb[:, j], strict=True))) for j in range(6)]
            for i in range(5)
        ]
    )
    assert np.array_equal(ref, exact_ref)  # float64 is exact here
    assert np.array_equal(matmul(a, b, fmt, fmt, "exact"), ref)


# ---- drivers agree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fa", "fb", "acc", "path"),
    [
        # chunks of at least BLAS_CHUNK take their sums from NumPy's matmul, chunks of 1 the tiled loops
        ("mxfp4", "mxfp4", "fp32", "float32"),
        ("mxfp4", "mxfp4", "fp16", "float32"),
        ("int4", "int4", "fp32", "per_product"),  # chunk 1: a rounding after every product
        ("float4_e2m1fn", "float4_e2m1fn", "fp16", "per_product"),
        ("int8", "int8", "bf16", "float32"),  # chunk 1, but beyond the per-product path's bounds
        ("nvfp4", "nvfp4", "fp32", "float32"),
        ("int8", "int8", "int32", "float32"),
        ("mxfp8_e4m3", "mxfp8_e4m3", "fp16", "float64"),
        ("float8_e4m3fn", "float8_e4m3fn", "bf16", "per_product"),
        ("mxint8", "mxint8", "fp32", "float32"),
        # float32 block scales and codebook elements: chunk sums exact in float64, their scaling not
        ("mxfp8_e4m3", "nf4", "fp32", "float64"),
        ("mxfp8_e4m3", "af4", "fp16", "float64"),
        ("mxfp8_e4m3", "int8_per_channel", "fp32", "float64"),
        ("mxfp8_e4m3", "bitnet_b158", "bf16", "float64"),
        ("float8_e4m3fn", "nf4", "fp32", "float64"),
        # float32 scales on both sides: their product can need 48 bits, beyond float32
        ("nf4", "nf4", "fp32", "general"),
    ],
)
@pytest.mark.parametrize("k", [96, 100])  # 100: a last block shorter than the others
def test_fast_drivers_equal_the_general_one(fa, fb, acc, path, k):
    from lowbit.simulator.gemm import BLAS_CHUNK, cpu_path
    from lowbit.simulator.kernels.cpu import cpu_dot_drivers

    a, b = data(37, k, 45, seed=21)
    b[5:9] *= 1e-3  # blocks of small scales beside large ones
    got = matmul(a, b, fa, fb, acc)
    s = _setup(a, b, fa, fb, acc, None, "sequential", None, "rne")
    assert cpu_path(s)[0].value == path
    if path != "general":  # chunks of 1 take the tiled loops, the others NumPy's matmul
        assert (cpu_path(s)[1] < BLAS_CHUNK) == (fa == fb and fa in ("int4", "float4_e2m1fn", "float8_e4m3fn")
                                                 or (fa, acc) == ("int8", "bf16"))  # fmt: skip
    general = np.zeros_like(got)
    flags = np.zeros(got.shape, np.bool_)
    tscale = s.fa.tensor * s.fb.tensor
    cpu_dot_drivers().dot(
        s.fa.elements,
        s.fa.scales,
        s.fa.block,
        s.fb.elements,
        s.fb.scales,
        s.fb.block,
        s.chunk,
        s.q,
        0,
        0,
        tscale,
        general,
        flags,
    )
    same_bits(got, general)


cuda = pytest.importorskip("numba.cuda")


@pytest.mark.skipif(not cuda.is_available(), reason="no CUDA device and the CUDA simulator is off")
@pytest.mark.parametrize(
    ("fa", "acc", "order", "trunc"),
    [
        ("mxfp4", "fp32", "sequential", None),
        ("nvfp4", "fp16", "pairwise", None),
        ("float8_e5m2", "exact", "sequential", None),
        ("int8", "int32", "sequential", None),
        ("mxfp8_e4m3", "bf16", "sequential", 12),
    ],
)
def test_cuda_simulator_equals_cpu(fa, acc, order, trunc):
    a, b = data(3, 64, 2, seed=31)
    cpu = matmul(a, b, fa, fa, acc, order=order, partial_sum_bits=trunc)
    gpu = matmul(a, b, fa, fa, acc, order=order, partial_sum_bits=trunc, target="cuda")
    same_bits(gpu, cpu)


# ---- scalar rounding -----------------------------------------------------------------------------


@pytest.mark.parametrize("acc", ["fp32", "fp16", "bf16", "e5m2"])
def test_fast_nearest_rounding_equals_the_oracle(acc):
    from lowbit.formats.accumulator import get_accumulator
    from lowbit.simulator import Rounding
    from lowbit.simulator.gemm import _acc_params

    e, mb = ACCUMULATORS[acc]
    q = _acc_params(get_accumulator(acc), Rounding.RNE)
    rng = np.random.default_rng(1)
    bias = 2 ** (e - 1) - 1
    xs = rng.standard_normal(3000) * np.exp2(rng.integers(-bias - mb - 3, bias + 3, 3000))
    ties = [(2.0 ** (1 - bias - mb)) * (k + 0.5) for k in range(8)]  # subnormal ties
    ties += [1 + 2.0 ** -(mb + 1), 1 + 3 * 2.0 ** -(mb + 1), float(q[4]) + 2.0 ** (2**e - 2 - bias - mb - 1)]
    for x in [*xs, *ties, *(-t for t in ties)]:
        want = round_fraction(Fraction(x), e, mb)
        assert dot_scalar.round_near(x, q) == want
        assert dot_scalar.round_acc(x, q) == want


# ---- API and bad input ---------------------------------------------------------------------------


def test_dot_and_batch():
    a, b = data(6, 64, 5, seed=2)
    full = matmul(a, b, "mxfp4", "mxfp4", "fp32")
    batch = matmul(a.reshape(2, 3, 64), b, "mxfp4", "mxfp4", "fp32")
    assert batch.shape == (2, 3, 5)
    same_bits(batch.reshape(6, 5), full)
    # per-block scales do not depend on the other rows, so a dot product is one output of the matmul
    assert dot(a[2], b[:, 3], "mxfp4", "mxfp4") == full[2, 3]
    assert isinstance(dot(a[1], b[:, 1], "int8", "int8", "int32"), float)


def test_matmul_error_parts():
    a, b = data(4, 64, 4, seed=4)
    e = matmul_error(a, b, "mxfp4", "mxfp4", "exact")
    assert np.array_equal(e.result, matmul(a, b, "mxfp4", "mxfp4", "exact"))
    assert np.abs(e.accumulation_error).max() <= 1e-12 * np.abs(e.result).max()
    assert np.allclose(e.reference, a.astype(np.float64) @ b.astype(np.float64))
    assert e.relative_error > 0.01  # FP4 quantization error


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda a, b: matmul(a, b[:-1], "mxfp4", "mxfp4"), ValueError, "a has K = 64 columns but b has 63 rows"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", "fp31"), ValueError, "accumulator: unknown name 'fp31'"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", chunk=24), ValueError, "chunk 24 does not divide the block of 32"),
        (lambda a, b: matmul(a[0], b, "mxfp4", "mxfp4"), ValueError, "a must be 2-D"),
        (lambda a, b: matmul(a, b[None], "mxfp4", "mxfp4"), ValueError, "b must be 2-D"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", order="tree"), ValueError, "order must be"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", "int32"), ValueError, "integer accumulation needs integer"),
        (lambda a, b: matmul(a, b, "afpq_fp4_g128", "mxfp4"), ValueError, "AFPQ"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", partial_sum_bits=1), ValueError, "partial_sum_bits"),
        (lambda a, b: matmul(a, b, "mxfp4", "mxfp4", rounding="stochastic"), ValueError, "rounding"),
        (lambda a, b: dot(a, b, "mxfp4", "mxfp4"), ValueError, "x and y must be 1-D"),
    ],
)
def test_bad_input(call, error, match):
    a, b = data(2, 64, 2, seed=1)
    with pytest.raises(error, match=match):
        call(a, b)


def test_per_tensor_and_per_channel_formats():
    a, b = data(4, 64, 5, seed=8, spread=1)
    for fmt in ("bitnet_b158", "int8_per_channel"):
        qa = lowbit.quantize(a, "mxfp8_e4m3").astype(np.float64)
        qb = lowbit.quantize(b, fmt, axis=0).astype(np.float64)
        got = matmul(a, b, "mxfp8_e4m3", fmt, "exact")
        np.testing.assert_allclose(got, qa @ qb, rtol=1e-6, atol=1e-9)  # float32 dequantized values round


@pytest.mark.parametrize("fmt", ["mxfp4", "nvfp4", "int4_g128_asym", "bitnet_b158", "nf4", "float8_e4m3fn"])
@pytest.mark.parametrize("acc", ["fp32", "fp16"])
def test_operand_prepared_once_gives_the_same_product(fmt, acc):
    # bitnet_b158's absmean scale is not a projection: re-quantizing the values would move them, so this
    # also checks that a prepared operand is not quantized a second time
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 128)).astype(np.float32)
    b = rng.standard_normal((128, 9)).astype(np.float32)
    prepared = lowbit.simulator.operand(b, fmt)
    direct = lowbit.simulator.matmul(a, b, "mxfp8_e4m3", fmt, acc)
    assert np.array_equal(lowbit.simulator.matmul(a, prepared, "mxfp8_e4m3", None, acc), direct)


def test_operand_checks_k():
    prepared = lowbit.simulator.operand(np.ones((64, 3), np.float32), "mxfp4")
    with pytest.raises(ValueError, match="K = 32 columns but b has 64 rows"):
        lowbit.simulator.matmul(np.ones((2, 32), np.float32), prepared, "mxfp4", None)
