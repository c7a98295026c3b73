"""The given-scale fused path (`host.fused_given`) equals the step-by-step pipeline (`_quantize_rows`,
the oracle of record) bit for bit, values and scales, on the CPU and in the CUDA simulator; bare
codebook formats equal today's `round_elements` with NaN kept."""

import dataclasses

import numpy as np
import pytest

import lowbit
from lowbit.simulator import Target
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, layout, quantize_rows, round_elements
from lowbit.simulator.host.fused_given import PIECE, fused_given, quantize_codebook
from lowbit.simulator.kernels.rounding import Rounding

F32 = np.float32
FLT_MAX = np.finfo(np.float32).max
ZERO_POINT = ["int4_g128_asym", "int8_per_channel_asym"]
SIGNED = ["afpq_fp4_g128", "afpq_fp3_g128", "afpq_nf4_g128", "afpq_nf3_g128"]
OTHERS = ["nf4_dq", "paretoq_1bit", "nvfp4_ue5m3"]
FORMATS = ZERO_POINT + SIGNED + OTHERS
CODEBOOKS = ["nf4_codebook", "nf3_codebook", "fp3_e2m0", "ternary_codebook", "binary_codebook"]
CODEBOOKS += ["higgs_p1_n4", "higgs_p1_n8", "higgs_p1_n16"]


def edge_rows(block: int, n_blocks: int = 160, seed: int = 0) -> np.ndarray:
    """Random blocks over a wide exponent range, then the edge cases of the bar, one block each."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_blocks, block)).astype(F32)
    x *= np.exp2(rng.integers(-140, 120, n_blocks)).astype(F32)[:, None]
    x[0] = 0  # all zero
    x[1, block // 2], x[2, 0], x[3, -1] = np.nan, np.inf, -np.inf
    x[4] = -0.0  # all -0
    x[5] = np.abs(x[5])  # no negative value
    x[6] = -np.abs(x[6])  # no positive value
    x[7] = rng.integers(1, 50, block) * F32(2.0**-149)  # subnormal inputs: the scale is subnormal or 0
    x[8] = rng.uniform(-1, 1, block).astype(F32) * FLT_MAX  # near FLT_MAX
    x[8, 0] = FLT_MAX
    x[9] = F32(2.0**-149)  # the smallest subnormal everywhere
    x[10, ::2] = -0.0  # -0 beside +0 and nothing larger: NumPy's reduction picks the zero
    x[10, 1::2] = 0.0
    x[11, ::2] = -np.abs(x[11, ::2])
    x[11, 1::2] = 0.0  # +0 the largest value
    x[12, ::2] = np.abs(x[12, ::2])
    x[12, 1::2] = -0.0  # -0 the smallest value
    x[13] = rng.standard_normal(block).astype(F32) * F32(1e-30)  # a scale deep in fp16's underflow
    return x


def tie_rows(fmt, block: int) -> np.ndarray:
    """Blocks whose elements land exactly on the rounding boundaries: codebook midpoints (and the
    float32 neighbours) under a scale of 1, or half-integer codes of an asymmetric integer."""
    e = fmt.element
    if isinstance(e, lowbit.formats.IntFormat):  # lo 0, hi qmax: s = 1, zp = 0, x = k + 0.5
        top = F32(e.max)
        vals = np.arange(0, int(e.max)) + F32(0.5)
        row = np.resize(np.concatenate([[0, top], vals]).astype(F32), block)
        row[:2] = 0, top
        return row[None, :]
    if isinstance(e, lowbit.formats.CodebookFormat):
        r = F32(fmt.element_max)  # AFPQ's R: max(x) = R and min(x) = -R give scales of 1
        t = e.table.astype(np.float64)
        m = ((t[1:] + t[:-1]) / 2).astype(F32)
        vals = np.concatenate([m, np.nextafter(m, F32(9)), np.nextafter(m, F32(-9)), [0.0, -0.0]]) * r
        vals = np.resize(vals.astype(F32), (-(-vals.size // (block - 2)), block - 2))
        ends = np.tile(np.array([r, -r], F32), (vals.shape[0], 1))
        return np.concatenate([ends, vals], axis=1).astype(F32)
    return np.zeros((0, block), F32)


def same(a, b) -> None:
    np.testing.assert_array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
    np.testing.assert_array_equal(a.scales.view(np.uint32), b.scales.view(np.uint32))
    assert (a.tensor_scale is None) == (b.tensor_scale is None)
    if a.tensor_scale is not None:
        assert F32(a.tensor_scale).view(np.uint32) == F32(b.tensor_scale).view(np.uint32)


def pipeline(rows: np.ndarray, fmt) -> object:
    with np.errstate(all="ignore"):
        return _quantize_rows(rows, fmt, ElementRounding(), False)


def block_of(fmt) -> int:
    return fmt.block or 96


@pytest.mark.parametrize("name", FORMATS)
def test_fused_given_equals_pipeline(name):
    fmt = lowbit.get_format(name)
    rows = edge_rows(block_of(fmt))
    rows = np.concatenate([rows, tie_rows(fmt, rows.shape[1])])
    fused = fused_given(rows, fmt, ElementRounding())
    assert fused is not None
    ref = pipeline(rows, fmt)
    same(fused, ref)
    if ref.scale_state is not None:  # double quantization: codes, absmax per group, offset
        for a, b in zip(fused.scale_state, ref.scale_state, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("shape", [(64, 256), (20000,), (512, 32), (1, 37), (9, 130)])
def test_fused_given_on_shapes(name, shape):
    # A matrix, a 1-D array (per-channel formats: one row longer than a kernel piece), many short
    # rows, one short row, and an axis that is not a multiple of the block (zero padding).
    fmt = lowbit.get_format(name)
    x = np.random.default_rng(3).standard_normal(shape).astype(F32)
    x *= np.exp2(np.random.default_rng(4).integers(-20, 20, shape)).astype(F32)
    rows = layout(x.shape, fmt, -1).to_rows(x)
    if len(shape) == 1 and fmt.block is None:
        assert rows.shape[1] > PIECE
    fused = fused_given(rows, fmt, ElementRounding())
    assert fused is not None
    same(fused, pipeline(rows, fmt))


@pytest.mark.parametrize("name", ["int4_g128_asym", "afpq_nf4_g128", "nf4_dq"])
def test_quantize_takes_the_fused_path_and_saturates(name):
    # Through the public API: quantize_rows runs the path, then saturates as for the pipeline.
    fmt = lowbit.get_format(name)
    x = edge_rows(128, 40, seed=9)
    lay = layout(x.shape, fmt, -1)
    with np.errstate(all="ignore"):
        ref = quantize_rows(lay.to_rows(x), fmt, ElementRounding(), True)  # codes: the pipeline
    got = lowbit.quantize(x, name)
    np.testing.assert_array_equal(got.view(np.uint32), lay.from_rows(ref.values).view(np.uint32))


def test_nvfp4_ue5m3_tiny_and_huge_tensors():
    # A tensor near 2^-140 makes dec_b / S_enc too small for a float32 reciprocal (the block
    # divides); one near 2^100 gives a tiny S_enc.
    fmt = lowbit.get_format("nvfp4_ue5m3")
    for scale in (F32(2.0**-140), F32(2.0**-120), F32(2.0**100)):
        rows = (np.random.default_rng(7).standard_normal((64, 16)) * scale).astype(F32)
        same(fused_given(rows, fmt, ElementRounding()), pipeline(rows, fmt))


def test_fused_given_declines():
    rows = edge_rows(128, 16)
    assert fused_given(rows, lowbit.get_format("int4_g128_asym"), ElementRounding(Rounding.STOCHASTIC)) is None
    for name in ("mxfp4", "twn"):  # power-of-two and TWN rules: other paths' formats
        assert fused_given(rows, lowbit.get_format(name), ElementRounding()) is None
    assert fused_given(rows[:, :0], lowbit.get_format("nf4_dq"), ElementRounding()) is None


@pytest.mark.parametrize("name", ["int4_g128_asym", "afpq_nf4_g128", "afpq_fp4_g128", "nf4_dq", "nvfp4_ue5m3"])
def test_fused_given_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = lowbit.get_format(name)
    if fmt.block > 16:  # the same kernel paths on groups of 16: the simulator runs at Python speed
        fmt = dataclasses.replace(fmt, block=16)
    rows = edge_rows(block_of(fmt), 16, seed=5)
    same(fused_given(rows, fmt, ElementRounding(target=Target.CUDA)), pipeline(rows, fmt))


def codebook_input(fmt, size: int = 20000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(size) * np.exp2(rng.integers(-3, 3, size))).astype(F32)
    t = fmt.table.astype(np.float64)
    m = ((t[1:] + t[:-1]) / 2).astype(F32)
    ties = np.concatenate([m, np.nextafter(m, F32(9)), np.nextafter(m, F32(-9))])
    x[: ties.size] = ties
    x[ties.size : ties.size + 10] = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, FLT_MAX, -FLT_MAX]
    return x


def todays_codebook(x: np.ndarray, fmt) -> np.ndarray:
    """What quantize returned for a bare codebook before the fused path: round_elements, NaN kept."""
    values = round_elements(x, fmt, ElementRounding(), False)[0]
    return np.where(np.isnan(x), F32(np.nan), values).astype(F32)


@pytest.mark.parametrize("name", CODEBOOKS)
def test_bare_codebook_equals_todays_result(name):
    fmt = lowbit.get_format(name)
    x = codebook_input(fmt)
    ref = todays_codebook(x, fmt)
    got = lowbit.quantize(x.reshape(100, 200), name)
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint32), ref.view(np.uint32))
    out = np.empty_like(x)
    assert lowbit.quantize(x, name, out=out) is out
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))


def test_bare_codebook_declines_and_cuda_simulator():
    fmt = lowbit.get_format("nf4_codebook")
    x = codebook_input(fmt, 64)
    assert quantize_codebook(x, fmt, ElementRounding(Rounding.STOCHASTIC)) is None
    assert quantize_codebook(x, lowbit.get_format("nf4"), ElementRounding()) is None
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    for name in ("nf4_codebook", "binary_codebook"):
        fmt = lowbit.get_format(name)
        got = quantize_codebook(x, fmt, ElementRounding(target=Target.CUDA))
        np.testing.assert_array_equal(got.view(np.uint32), todays_codebook(x, fmt).view(np.uint32))
