"""The fused micro-exponent kernel (MX9, MX6, MX4) equals the step-by-step pipeline
(`blocks._quantize_rows`, `_finish_micro`) bit for bit, values and scales, on the CPU and in the
CUDA simulator."""

import numpy as np
import pytest

import lowbit
from lowbit.simulator import Target
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, layout, quantize_rows
from lowbit.simulator.host.fused_micro import fused_micro
from lowbit.simulator.kernels.rounding import Rounding

F32 = np.float32
MICRO = ["mx9", "mx6", "mx4"]


def rows(n_blocks: int, block: int, seed: int = 0) -> np.ndarray:
    """Random blocks over float32's whole exponent range (subnormal blocks, blocks near FLT_MAX,
    sub-blocks an exponent or more below the block's amax), and edge blocks: all zero, NaN, +Inf,
    -Inf, -0, an amax at a power of two, element ties, FLT_MAX and float32 subnormals."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_blocks, block)).astype(F32)
    x *= np.exp2(rng.integers(-150, 127, n_blocks)).astype(F32)[:, None]
    x *= np.exp2(-rng.integers(0, 3, (n_blocks, block))).astype(F32)  # sub-blocks below the block
    edge = np.zeros((12, block), F32)
    edge[1, -1], edge[2, 0], edge[3, -1] = np.nan, np.inf, -np.inf
    edge[4] = -0.0
    edge[5, 0] = 1.0  # amax 1: E = 0 for integer elements
    edge[5, 1:] = (np.arange(1, block) % 7 + 0.5) / 64  # halves of MX9's step 2^-6: ties to even
    edge[6] = np.float32(3.4028235e38) * np.where(np.arange(block) % 2, 1, -1)
    edge[7] = np.arange(1, block + 1, dtype=np.uint32).view(F32)  # float32 subnormals: E = -127
    edge[8, 0] = 2.0**-127  # amax's exponent field at the clamp
    edge[9] = np.float32(1.5) * np.exp2(-np.arange(block) % 4).astype(F32)  # shifts 0 and 1 in turn
    edge[10, 0], edge[10, 1:] = 2.0**100, 2.0**-100  # elements flushed
    edge[11] = np.nextafter(F32(2.0), F32(0)) * np.sign(np.arange(block) - 3)  # amax just below 2
    return np.concatenate([edge, x]).astype(F32)


def same(a, b) -> None:
    np.testing.assert_array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
    np.testing.assert_array_equal(a.scales.view(np.uint32), b.scales.view(np.uint32))


def pipeline(r: np.ndarray, fmt):
    with np.errstate(all="ignore"):
        return _quantize_rows(r, fmt, ElementRounding(), False)


@pytest.mark.parametrize("block", [16, 7, 2, 1])  # 7: a cut block of an odd axis; 1: one element
@pytest.mark.parametrize("name", MICRO)
def test_fused_micro_equals_pipeline(name, block):
    fmt = lowbit.get_format(name)
    r = rows(3000, block, seed=block)
    fused = fused_micro(r, fmt, ElementRounding())
    assert fused is not None
    same(fused, pipeline(r, fmt))


@pytest.mark.parametrize("name", MICRO)
def test_quantize_uses_it_on_every_shape(name):
    """lowbit.quantize on a matrix, a 1-D array, rows of 32, an axis that pads and one row equals
    the pipeline's values laid out the same way (FLT_MAX-saturated as quantize_rows does)."""
    fmt = lowbit.get_format(name)
    x = rows(52, 16, seed=5).reshape(-1)  # 64 blocks
    for shape in [(64, 16), (x.size,), (-1, 32), (1, x.size)]:
        xs = x.reshape(shape)
        lay = layout(xs.shape, fmt, -1)
        with np.errstate(all="ignore"):
            expected = lay.from_rows(quantize_rows(lay.to_rows(xs), fmt, ElementRounding(), True).values)
        np.testing.assert_array_equal(lowbit.quantize(xs, name).view(np.uint32), expected.view(np.uint32))
    odd = x[:45].reshape(3, 15)
    lay = layout(odd.shape, fmt, -1)
    with np.errstate(all="ignore"):
        expected = lay.from_rows(quantize_rows(lay.to_rows(odd), fmt, ElementRounding(), True).values)
    np.testing.assert_array_equal(lowbit.quantize(odd, name).view(np.uint32), expected.view(np.uint32))


def test_declines_other_modes_and_formats():
    r = rows(4, 16)
    assert fused_micro(r, lowbit.get_format("mx9"), ElementRounding(Rounding.STOCHASTIC)) is None
    assert fused_micro(r, lowbit.get_format("mx9"), ElementRounding(Rounding.RTZ)) is None
    assert fused_micro(r, lowbit.get_format("mxint8"), ElementRounding()) is None
    assert fused_micro(r[:, :0], lowbit.get_format("mx9"), ElementRounding()) is None


def test_other_micro_shapes_equal_pipeline():
    """A sub-block of 4 with 2-bit shifts (up to 3) on blocks of 32, and a block cut to 13."""
    fmt = lowbit.formats.ScaledFormat(
        element=lowbit.formats.IntFormat(6, symmetric=True),
        block=32,
        scale=lowbit.get_format("float8_e8m0fnu"),
        rule="ocp_floor",
        micro=lowbit.formats.MicroExponent(block=4, bits=2),
    )
    for block in (32, 13):
        r = rows(1000, block, seed=7)
        same(fused_micro(r, fmt, ElementRounding()), pipeline(r, fmt))


@pytest.mark.parametrize("name", ["mx9", "mx4"])
def test_fused_micro_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = lowbit.get_format(name)
    r = rows(4, 16, seed=9)  # 16 rows: the 12 edge blocks and 4 random ones
    same(fused_micro(r, fmt, ElementRounding(target=Target.CUDA)), pipeline(r, fmt))
