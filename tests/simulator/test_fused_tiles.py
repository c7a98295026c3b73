"""The fused 2-D tile kernel (nvfp4_2d in place) equals today's pipeline bit for bit: the tiles
gathered into rows by `Layout`, `_quantize_rows` and `_saturated` (values and tile scales), on the
CPU and in the CUDA simulator."""

import numpy as np
import pytest

import lowbit
from lowbit.formats import ScaledFormat
from lowbit.formats.catalog import catalog
from lowbit.simulator import Target
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, _saturated, layout
from lowbit.simulator.host.fused_tiles import fused_tiles, quantize_tiles
from lowbit.simulator.kernels.rounding import Rounding

F32 = np.float32
FMT = catalog["nvfp4_2d"]


def pipeline(x: np.ndarray, axis: int = -1, fmt=FMT) -> tuple[np.ndarray, np.ndarray]:
    """(values, tile scales) of today's path: tiles gathered into rows, the step-by-step pipeline."""
    lay = layout(x.shape, fmt, axis)
    with np.errstate(all="ignore"):
        b = _saturated(_quantize_rows(lay.to_rows(x), fmt, ElementRounding(), False), fmt)
    return lay.from_rows(b.values), b.scales.reshape(lay.blocks_shape)


def fused(x: np.ndarray, axis: int = -1, target: Target = Target.CPU, fmt=FMT):
    got = fused_tiles(x, layout(x.shape, fmt, axis), fmt, Rounding.RNE, target)
    assert got is not None
    return got


def same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(a, F32).view(np.uint32), np.asarray(b, F32).view(np.uint32))


def check(x: np.ndarray, axis: int = -1) -> None:
    values, scales = fused(x, axis)
    want_values, want_scales = pipeline(x, axis)
    same_bits(values, want_values)
    same_bits(scales, want_scales)


def wide(shape, seed: int, lo: int = -60, hi: int = 60) -> np.ndarray:
    """Normal values times 2^k, k uniform in [lo, hi) per element: every tile a mix of magnitudes."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp2(rng.integers(lo, hi, shape))).astype(F32)


SHAPES = [
    ((64, 64), -1),  # whole tiles
    ((37, 45), -1),  # rows and columns padded
    ((3, 20, 33), -1),  # N-d: tiles over the last two axes, per matrix
    ((40, 17), 0),  # the block axis first
    ((5, 7, 9), 1),  # the block axis in the middle; 7 x 9 moved: tiles cut to 5 rows
    ((2, 40), -1),  # tiles cut to the 2 rows there are
    ((512, 32), -1),  # many short rows (2 tiles a row of tiles)
    ((16, 16), -1),  # one tile
    ((33, 1), -1),  # one column: tiles 16 x 1
]


@pytest.mark.parametrize(("shape", "axis"), SHAPES)
def test_random_wide_range_equals_pipeline(shape, axis):
    check(wide(shape, seed=len(shape) * 100 + shape[0]), axis)


def test_per_tile_magnitudes_equal_pipeline():
    # each tile its own magnitude, over the range where E4M3 scales are normal, subnormal and 0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((96, 96)).astype(F32)
    x *= np.repeat(np.repeat(np.exp2(rng.integers(-40, 20, (6, 6))), 16, axis=0), 16, axis=1).astype(F32)
    check(x)


def edge_cases() -> np.ndarray:
    """Tiles of 16 x 16 (a 48 x 64 matrix): zeros, NaN, +-Inf, subnormals, -0, ties."""
    x = wide((48, 64), seed=5, lo=-8, hi=8)
    x[:16, :16] = 0.0  # an all-zero tile
    x[:16, 16:32] = -0.0  # an all -0 tile
    x[3, 40] = np.nan  # a NaN tile
    x[5, 50] = np.inf  # a +Inf tile
    x[20, 7] = -np.inf  # a -Inf tile
    x[16:32, 16:32] = np.float32(1e-45) * np.arange(256, dtype=F32).reshape(16, 16)  # subnormal inputs
    x[16:32, 32:48] *= -0.0  # signed zeros in a tile that is all zeros
    # ties: amax 6 x 2^10 (the tensor's largest), so the scale is exact and x * enc lands on every
    # midpoint of FP4 (and the float32 numbers on either side)
    mids = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], F32)
    ties = np.concatenate([mids, np.nextafter(mids, F32(0)), np.nextafter(mids, F32(9)), -mids])
    tile = np.resize(ties, 256).reshape(16, 16).astype(F32)
    tile[0, 0] = 6.0
    x[32:48, :16] = tile * F32(2.0**10)
    x[32:48, 16:32] = tile * F32(2.0**-3)  # the same in a tile with a rounded scale
    return x


def test_edge_case_tiles_equal_pipeline():
    x = edge_cases()
    check(x)
    values, scales = fused(x)
    assert np.isnan(values[:16, 32:48]).all() and np.isnan(scales[0, 2])  # the NaN tile
    assert np.isnan(values[:16, 48:]).all() and np.isnan(values[16:32, :16]).all()  # the Inf tiles
    assert (values[:16, :32] == 0).all() and scales[0, 0] == 0 and scales[0, 1] == 0  # zero tiles


@pytest.mark.parametrize("scale", [2.0**-140, 2.0**-120, 2.0**-100, 2.0**100, 2.0**120])
def test_tiny_and_huge_tensors_equal_pipeline(scale):
    # tiny: the tile scales have no float32 reciprocal (the divide path); huge: values near FLT_MAX,
    # which saturate
    x = wide((48, 40), seed=7, lo=-3, hi=3) * F32(scale)
    x[0, 0] = np.finfo(F32).max if scale > 1 else x[0, 0]
    check(x)


def test_values_near_flt_max_saturate():
    x = np.full((16, 16), np.finfo(F32).max, F32)
    x[1, 1] = -np.finfo(F32).max
    x[2, 2] = np.nextafter(np.finfo(F32).max, F32(0))
    check(x)
    values, _ = fused(x)
    assert np.isfinite(values).all()


def test_quantize_uses_the_tiles_and_writes_into_out():
    x = wide((40, 56), seed=9)
    want = pipeline(x)[0]
    same_bits(lowbit.quantize(x, "nvfp4_2d"), want)
    out = np.empty_like(x)
    assert lowbit.quantize(x, "nvfp4_2d", out=out) is out
    same_bits(out, want)
    y = x.copy()
    lowbit.quantize(y, "nvfp4_2d", out=y)  # out overlapping x: computed apart, then copied
    same_bits(y, want)


def test_quantize_other_axis_and_n_d_with_out():
    x = wide((3, 24, 40), seed=10)
    want = pipeline(x, axis=1)[0]
    out = np.empty_like(x)
    lowbit.quantize(x, "nvfp4_2d", axis=1, out=out)
    same_bits(out, want)
    xt = np.asfortranarray(wide((40, 24), seed=11))  # not C-contiguous input
    same_bits(lowbit.quantize(xt, "nvfp4_2d"), pipeline(np.ascontiguousarray(xt))[0])


def test_declines_what_it_does_not_compute():
    x = wide((32, 32), seed=12)
    lay = layout(x.shape, FMT, -1)
    assert quantize_tiles(x, lay, FMT, Rounding.STOCHASTIC, Target.CPU) is None
    nv = catalog["nvfp4"]
    assert quantize_tiles(x, layout(x.shape, nv, -1), nv, Rounding.RNE, Target.CPU) is None  # 1-D blocks
    one_row = np.ones((1, 32), F32)  # tiles cut to 1 row: plain 1-D blocks
    assert quantize_tiles(one_row, layout(one_row.shape, FMT, -1), FMT, Rounding.RNE, Target.CPU) is None
    one_level = ScaledFormat(FMT.element, 16, scale=FMT.scale, block_rows=16)  # no tensor scale
    assert quantize_tiles(x, layout(x.shape, one_level, -1), one_level, Rounding.RNE, Target.CPU) is None
    same_bits(lowbit.quantize(x, one_level), pipeline(x, fmt=one_level)[0])
    same_bits(lowbit.quantize(one_row, "nvfp4_2d"), pipeline(one_row)[0])


def test_one_dimensional_input_raises():
    with pytest.raises(ValueError, match="at least 2"):
        lowbit.quantize(np.ones(32, F32), "nvfp4_2d")


def test_cuda_simulator_equals_cpu():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    x = wide((18, 20), seed=13)  # tiny: the simulator runs a Python thread per tile
    x[2, 3] = np.nan
    x[17, 19] = 0.0
    values, scales = fused(x, target=Target.CUDA)
    want_values, want_scales = pipeline(x)
    same_bits(values, want_values)
    same_bits(scales, want_scales)
    same_bits(lowbit.quantize(x, "nvfp4_2d", target="cuda"), want_values)
