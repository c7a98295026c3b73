"""The per-product driver (chunk 1: the accumulator rounds after every product, vectorised over
columns) against the general driver (error-free pairs and round-to-odd, `dot_loop`) bit for bit, on
the CPU and in the CUDA simulator: element formats from FP8 to FP4 and integers, accumulators from
FP32 to E4M3, every rounding mode, overflow to Inf, subnormal sums, cancellation, ties and signed
zeros worked by hand, shapes off every tile; the conditions that choose the driver, worked by hand
from `per_product_plan`'s rules; the directed rounding step against `round_acc`."""

import math

import numpy as np
import pytest

import lowbit
from lowbit.simulator import matmul
from lowbit.simulator.gemm import CpuPath, Grain, _setup, cpu_path, grain, per_product_plan
from lowbit.simulator.kernels import dot_scalar
from lowbit.simulator.kernels.cpu import cpu_dot_drivers
from lowbit.simulator.kernels.dot_scalar import PP_DIRECTED, PP_NEAR, PP_NEAR_SUB

MODES = ["rne", "rtz", "rna", "rup", "rdown"]
DIRECTED = MODES[1:]
F32, F64 = np.float32, np.float64

# (a format, b format, accumulator, the lanes and step under rne, whether directed modes take the
# driver), worked by hand for operands holding every finite code of their formats (the extremes
# decide): p = man_bits + 1 of the accumulator, u its subnormal step; an element format's step is
# its smallest subnormal (1 for integers), its bits its significand's.
PLANS = [
    # e4m3: step 2^-9, max 448, 4 bits; products: multiples of 2^-18, below 2^17.6, 8 bits
    ("float8_e4m3fn", "float8_e4m3fn", "fp16", (F32, PP_NEAR), True),  # 8 <= p = 11, 2^-18 >= u = 2^-24
    ("float8_e4m3fn", "float8_e4m3fn", "e5m10", (F32, PP_NEAR), True),  # fp16 by its layout
    ("float8_e4m3fn", "float8_e4m3fn", "bf16", (F64, PP_NEAR), False),  # bf16's 2^128 * 2^16 overflows float32
    ("float8_e4m3fn", "float8_e4m3fn", "e8m7", (F64, PP_NEAR), False),
    ("float8_e4m3fn", "float8_e4m3fn", "fp32", (F32, PP_NEAR), False),  # float32 addition itself
    ("float8_e4m3fn", "float8_e4m3fn", "tf32", (F64, PP_NEAR), False),  # u = 2^-136 is no float32 normal
    ("float8_e4m3fn", "float8_e4m3fn", "fp22", (F64, PP_NEAR), False),  # p = 14: 24 < 2p + 1
    ("float8_e4m3fn", "float8_e4m3fn", "e4m3", (F64, PP_NEAR_SUB), True),  # exact: 2^17.6 / 2^-18 < 2^52
    ("float8_e4m3fn", "float8_e4m3fn", "e5m11", (F64, PP_NEAR), True),  # p = 12: 24 < 2p + 1; exact
    ("float8_e4m3fn", "float8_e4m3fn", "e5m13", (F64, PP_NEAR), True),
    # e5m2: step 2^-16, max 57344, 3 bits
    ("float8_e5m2", "float8_e5m2", "bf16", (F64, PP_NEAR), False),
    ("float8_e5m2", "float8_e5m2", "fp32", (F32, PP_NEAR), False),
    ("float8_e5m2", "float8_e4m3fn", "e5m2", (F64, PP_NEAR_SUB), True),  # exact: 2^24.6 / 2^-25 < 2^52
    # fp6 (e2m3: step 2^-3, max 7.5, 4 bits; e3m2: step 2^-4, max 28, 3 bits) and fp4 (0.5, 6, 2 bits)
    ("float6_e2m3fn", "float6_e3m2fn", "e4m3", (F64, PP_NEAR), True),  # 7 bits > 4; exact, 2^-7 >= u = 2^-9
    ("float6_e2m3fn", "float6_e2m3fn", "fp16", (F32, PP_NEAR), True),
    ("float4_e2m1fn", "float8_e4m3fn", "fp16", (F32, PP_NEAR), True),
    ("float4_e2m1fn", "float4_e2m1fn", "e4m3", (F32, PP_NEAR), True),  # 4 bits <= p = 4
    # integers: step 1; int8 max 128, 7 bits; int4 max 8, 3 bits
    ("int8", "int8", "fp16", (F64, PP_NEAR), True),  # 14 bits > 11: exact in float64 only
    ("int8", "int8", "fp32", (F32, PP_NEAR), False),
    ("int4", "float4_e2m1fn", "fp16", (F32, PP_NEAR), True),
    ("int4", "int4", "e5m2", (F64, PP_NEAR), True),  # 6 bits > 3; exact: 2^15.8 / 2^-16 < 2^52
]


def general(s) -> np.ndarray:
    """The general driver on the setup (its chunk, sequential, no truncation, no tensor scale)."""
    m, n = s.fa.elements.shape[0], s.fb.elements.shape[0]
    out = np.zeros((m, n))
    flags = np.zeros((m, n), np.bool_)
    fa, fb = s.fa, s.fb
    cpu_dot_drivers().dot(
        fa.elements, fa.scales, fa.block, fb.elements, fb.scales, fb.block, s.chunk, s.q, 0, 0, 1.0, out, flags
    )
    assert not flags.any()
    return out


def setup(a, b, fa, fb, acc, mode="rne", **kw):
    return _setup(a, b, fa, fb, acc, kw.get("chunk"), kw.get("order", "sequential"), kw.get("psb"), mode)


def same_bits(got, want) -> None:
    np.testing.assert_array_equal(np.asarray(got, np.float64).view(np.uint64), np.asarray(want).view(np.uint64))


def codes(fmt: str, shape, rng, limit: float = math.inf) -> np.ndarray:
    """float32 values of `fmt` (exact in it) drawn from its finite codes of magnitude up to limit (at
    least its smallest nonzero one), with the largest and the smallest nonzero magnitude present."""
    v = lowbit.get_format(fmt).code_values
    v = v[np.isfinite(v)]
    v = v[np.abs(v) <= max(limit, np.abs(v[v != 0]).min())]
    x = rng.choice(v, size=shape)
    nonzero = np.abs(v[v != 0])
    x.flat[0] = nonzero.max()
    x.flat[-1] = -nonzero.min()
    return x.astype(np.float32)


def operands(fa: str, fb: str, regime: str, m: int, k: int, n: int, seed: int):
    """a (m, k) and b (k, n): every code ('wide'), codes of at most 2^-4 for floats and 2 for integers
    ('small': sums among the accumulator's subnormals), or every code in cancelling pairs ('cancel':
    a's columns 2t and 2t+1 equal, b's rows 2t+1 the negated rows 2t)."""
    rng = np.random.default_rng(seed)
    limits = [2.0 if name.startswith("int") else 2.0**-4 for name in (fa, fb)] if regime == "small" else [math.inf] * 2
    a = codes(fa, (m, k), rng, limits[0])
    b = codes(fb, (k, n), rng, limits[1])
    if regime == "cancel":
        a[:, 1::2] = a[:, 0 : k - 1 : 2]
        b[1::2] = -b[0 : k - 1 : 2]
    return a, b


def expected_plan(mode: str, rne_plan, directed: bool):
    if mode == "rne":
        return rne_plan
    return (F64, PP_DIRECTED) if directed else None


# ---- the driver equals the general one -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fa", "fb", "acc", "rne_plan", "directed"), PLANS)
def test_per_product_equals_the_general_driver(fa, fb, acc, rne_plan, directed, mode):
    want_plan = expected_plan(mode, rne_plan, directed)
    for seed, regime in enumerate(("wide", "small", "cancel")):
        a, b = operands(fa, fb, regime, 5, 67, 35, seed)  # M, K, N off every tile
        s = setup(a, b, fa, fb, acc, mode)
        plan = per_product_plan(s)
        if want_plan is None:
            assert plan is None
            assert cpu_path(s)[0] is not CpuPath.PER_PRODUCT
            return
        if regime == "wide":  # the extremes decide; a subset of the codes can only widen the choice
            assert (plan.dtype, plan.kind) == want_plan
        assert cpu_path(s) == (CpuPath.PER_PRODUCT, 1)
        same_bits(matmul(a, b, fa, fb, acc, rounding=mode), general(s))


def test_the_cases_reach_overflow_subnormals_and_signed_zeros():
    # guards the test above: its data reach what it is meant to exercise
    got = {}
    for regime, acc, mode in (("wide", "fp16", "rne"), ("small", "e4m3", "rna"), ("wide", "e4m3", "rtz")):
        a, b = operands("float8_e4m3fn", "float8_e4m3fn", regime, 5, 67, 35, 0 if regime == "wide" else 1)
        got[regime, acc, mode] = matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", acc, rounding=mode)
    assert np.isinf(got["wide", "fp16", "rne"]).any()
    assert (np.abs(got["wide", "e4m3", "rtz"]) == 240).any()  # overflow toward zero: the largest finite
    small = got["small", "e4m3", "rna"]
    assert ((small != 0) & (np.abs(small) < 2.0**-6)).any()  # among e4m3's subnormals


@pytest.mark.parametrize(("m", "k", "n"), [(1, 67, 35), (5, 67, 1), (1, 1, 1), (1, 300, 1), (9, 131, 70), (8, 64, 64)])
@pytest.mark.parametrize(("fa", "acc", "mode"), [("float8_e4m3fn", "fp16", "rne"), ("int8", "fp16", "rdown")])
def test_shapes(m, k, n, fa, acc, mode):
    # M = 1, N = 1, K = 1, M and N past one tile and off its multiples (9 x 70: several threads), exact multiples
    a, b = operands(fa, fa, "wide", m, k, n, seed=m + k + n)
    s = setup(a, b, fa, fa, acc, mode)
    assert cpu_path(s)[0] is CpuPath.PER_PRODUCT
    same_bits(matmul(a, b, fa, fa, acc, rounding=mode), general(s))


def test_chosen_for_fp8_with_an_fp16_accumulator():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 96)).astype(np.float32)
    b = rng.standard_normal((96, 48)).astype(np.float32)
    s = setup(a, b, "float8_e4m3fn", "float8_e4m3fn", "fp16")
    assert s.chunk == 1
    assert cpu_path(s) == (CpuPath.PER_PRODUCT, 1)
    plan = per_product_plan(s)
    assert (plan.dtype, plan.kind) == (F32, PP_NEAR)
    same_bits(matmul(a, b, "float8_e4m3fn", "float8_e4m3fn", "fp16"), general(s))


@pytest.mark.parametrize(
    ("fa", "fb", "acc", "mode", "kw"),
    [
        ("float8_e5m2", "float8_e5m2", "fp16", "rne", {}),  # products of 2^-32 below u = 2^-24, 2^63 wide
        ("int8", "int8", "bf16", "rne", {}),  # 14-bit products above p = 8, 2^128 / 2^-133 wide
        ("float8_e4m3fn", "float8_e4m3fn", "fp32", "rtz", {}),  # directed needs exact float64 sums
        ("float8_e4m3fn", "float8_e4m3fn", "fp16", "rne", {"order": "pairwise"}),
        ("float8_e4m3fn", "float8_e4m3fn", "fp16", "rne", {"psb": 8}),
        ("float8_e4m3fn", "float8_e4m3fn", "fp16", "rne", {"chunk": 4}),
        ("mxfp8_e4m3", "mxfp8_e4m3", "fp16", "rne", {"chunk": 1}),  # block scales
        ("int8", "int8", "int32", "rne", {}),
        ("float8_e4m3fn", "float8_e4m3fn", "exact", "rne", {}),
    ],
)
def test_not_chosen(fa, fb, acc, mode, kw):
    rng = np.random.default_rng(3)
    a = codes(fa, (4, 32), rng) if not fa.startswith("mx") else rng.standard_normal((4, 32)).astype(np.float32)
    b = codes(fb, (32, 5), rng) if not fb.startswith("mx") else rng.standard_normal((32, 5)).astype(np.float32)
    s = setup(a, b, fa, fb, acc, mode, **kw)
    assert per_product_plan(s) is None
    assert cpu_path(s)[0] is not CpuPath.PER_PRODUCT


# ---- worked by hand ------------------------------------------------------------------------------

E4 = "float8_e4m3fn"


def one_output(a_row, b_col, acc, mode, target=None) -> float:
    a = np.array([a_row], np.float32)
    b = np.array(b_col, np.float32)[:, None]
    s = setup(a, b, E4, E4, acc, mode)
    assert cpu_path(s)[0] is CpuPath.PER_PRODUCT
    got = matmul(a, b, E4, E4, acc, rounding=mode, target=target)
    same_bits(got, general(s))
    return float(got[0, 0])


ULP = 2.0**-10  # fp16's step at 1
TIES = {  # 1, then 1 + ulp/2 (a tie), then + 1.5 ulp (a tie again where the first went to 1 + ulp)
    "rne": 1 + 2 * ULP,
    "rna": 1 + 3 * ULP,
    "rup": 1 + 3 * ULP,
    "rtz": 1 + ULP,
    "rdown": 1 + ULP,
}
NEGATED = {"rne": "rne", "rna": "rna", "rup": "rdown", "rtz": "rtz", "rdown": "rup"}


@pytest.mark.parametrize("mode", MODES)
def test_ties_in_fp16(mode):
    # products 1, 2^-11 = ulp/2 and 3 * 2^-11 = 1.5 ulp, of e4m3 values (2^-5 * 2^-6, 1.5 * 2^-5 * 2^-5)
    a, b = [1.0, 2.0**-5, 1.5 * 2.0**-5], [1.0, 2.0**-6, 2.0**-5]
    assert one_output(a, b, "fp16", mode) == TIES[mode]
    assert one_output([-x for x in a], b, "fp16", mode) == -TIES[NEGATED[mode]]


U4 = 2.0**-9  # e4m3's subnormal step (emin -6, 3 mantissa bits)
SUBNORMAL = {  # sums 2^-10 = u/2 (a tie), -2^-10 and -2^-11 = -u/4 in an e4m3 accumulator
    "rne": (0.0, 0.0, 0.0),  # ties to the even 0; a negative sum that rounds to 0 is +0 (round_near)
    "rna": (U4, -U4, -0.0),  # away from 0; -u/4 rounds to a zero of the sum's sign
    "rup": (U4, 0.0, 0.0),
    "rtz": (0.0, 0.0, 0.0),
    "rdown": (0.0, -U4, -U4),
}


@pytest.mark.parametrize("mode", MODES)
def test_ties_and_signed_zeros_among_subnormals(mode):
    got = (
        one_output([2.0**-5], [2.0**-5], "e4m3", mode),
        one_output([-(2.0**-5)], [2.0**-5], "e4m3", mode),
        one_output([-(2.0**-5)], [2.0**-6], "e4m3", mode),
    )
    np.testing.assert_array_equal(np.array(got).view(np.uint64), np.array(SUBNORMAL[mode]).view(np.uint64))


OVERFLOW = {  # products 200704, -200704 and 0.875 in fp16 (largest 65504, step 32 at 2^15)
    "rne": math.inf,  # Inf, and Inf stays
    "rna": math.inf,
    "rup": math.inf,
    "rtz": -65472.0,  # 65504, then -135200 -> -65504, then -65503.125 toward zero
    "rdown": -math.inf,  # 65504 (toward -Inf), then -135200 -> -Inf
}


@pytest.mark.parametrize("mode", MODES)
def test_overflow_in_fp16(mode):
    assert one_output([448.0, -448.0, 448.0], [448.0, 448.0, 2.0**-9], "fp16", mode) == OVERFLOW[mode]


# ---- the host's bounds and the scalar steps ------------------------------------------------------


def test_grain_by_hand():
    assert grain(np.array([0.75, -3.0, 0.0, -0.0])) == Grain(3.0, 0.25, 2)
    assert grain(np.array([127.0, -128.0, 6.0])) == Grain(128.0, 1.0, 7)
    assert grain(np.array([1 + 2.0**-52, 2.0**-1074])) == Grain(1 + 2.0**-52, 2.0**-1074, 53)
    assert grain(np.zeros(3)) == Grain(0.0, math.inf, 0)


def _edge_values(man: int, emin: int, largest: float) -> np.ndarray:
    """Exact sums around an accumulator's grid: binade edges, ties, subnormals, the overflow edge."""
    rng = np.random.default_rng(5)
    u = 2.0 ** (emin - man)
    xs = [0.0, u, u / 2, u / 4, 3 * u / 2, 2.0**emin, 2.0**emin - u / 2, largest, largest + u, 2 * largest]
    for e in range(emin, int(math.log2(largest)) + 1, 3):
        step = 2.0 ** (e - man)
        xs += [2.0**e, 2.0**e - step / 4, 2.0**e + step / 2, 2.0**e + 1.5 * step, 2.0 ** (e + 1) - step / 2]
    xs += list(rng.integers(-(2**40), 2**40, 300) * 2.0 ** (emin - man - 8))  # exact, random
    xs = np.array(xs)
    return np.concatenate([xs, -xs])


@pytest.mark.parametrize("mode", DIRECTED)
@pytest.mark.parametrize(("acc", "elements"), [("fp16", E4), ("e4m3", E4), ("e5m2", E4), ("fp16", "int8")])
def test_directed_step_equals_round_acc(acc, elements, mode):
    a = codes(elements, (2, 4), np.random.default_rng(0))
    s = setup(a, a.T.copy(), elements, elements, acc, mode)
    plan = per_product_plan(s)
    assert plan.kind == PP_DIRECTED
    c = plan.constants
    consts = [c[i] for i in (dot_scalar.PP_INV2M, dot_scalar.PP_ULP_MIN, dot_scalar.PP_MAX, dot_scalar.PP_INF)]
    consts += [c[i] for i in (dot_scalar.PP_DIR_A, dot_scalar.PP_DIR_B, dot_scalar.PP_THR, dot_scalar.PP_ZERO)]
    man, emin, largest = s.acc.man_bits, int(s.q[dot_scalar.Q_EMIN]), float(s.q[dot_scalar.Q_MAX])
    for x in _edge_values(man, emin, largest):
        got = dot_scalar.directed_step(0.0, float(x), *consts)
        want = dot_scalar.round_acc(float(x) + 0.0, s.q)  # a zero sum is +0, as dot_one's chunk sums
        assert np.float64(got).view(np.uint64) == np.float64(want).view(np.uint64), x
    for x in (math.inf, -math.inf):  # an Inf accumulator stays where round_acc's overflow sent it
        want = dot_scalar.overflow_value(x, s.q)
        if math.isinf(want):
            assert dot_scalar.directed_step(x, 1.0, *consts) == want


# ---- CUDA (Numba's simulator in CI) --------------------------------------------------------------

cuda = pytest.importorskip("numba.cuda")


@pytest.mark.skipif(not cuda.is_available(), reason="no CUDA device and the CUDA simulator is off")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fa", "fb", "acc", "directed"),
    [
        ("float8_e4m3fn", "float8_e4m3fn", "fp16", True),
        ("float8_e4m3fn", "float8_e4m3fn", "e4m3", True),  # sums among the subnormals
        ("float8_e5m2", "float8_e5m2", "bf16", False),  # double rounding
        ("int4", "float4_e2m1fn", "fp32", False),
    ],
)
def test_cuda_simulator_equals_the_general_driver(fa, fb, acc, directed, mode):
    for seed, regime in enumerate(("wide", "small")):
        a, b = operands(fa, fb, regime, 3, 21, 4, seed)
        s = setup(a, b, fa, fb, acc, mode)
        assert (per_product_plan(s, float32_lanes=False) is not None) == (mode == "rne" or directed)
        same_bits(matmul(a, b, fa, fb, acc, rounding=mode, target="cuda"), general(s))


@pytest.mark.skipif(not cuda.is_available(), reason="no CUDA device and the CUDA simulator is off")
@pytest.mark.parametrize("mode", MODES)
def test_cuda_simulator_by_hand(mode):
    assert one_output([1.0, 2.0**-5, 1.5 * 2.0**-5], [1.0, 2.0**-6, 2.0**-5], "fp16", mode, "cuda") == TIES[mode]
    got = one_output([-(2.0**-5)], [2.0**-6], "e4m3", mode, "cuda")
    assert np.float64(got).view(np.uint64) == np.float64(SUBNORMAL[mode][2]).view(np.uint64)
    assert one_output([448.0, -448.0, 448.0], [448.0, 448.0, 2.0**-9], "fp16", mode, "cuda") == OVERFLOW[mode]
