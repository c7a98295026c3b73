"""The fused search kernels (MSE-searched scales, TWN thresholds) equal the step-by-step NumPy
pipeline bit for bit (values and scales), on the CPU and in the CUDA simulator."""

import dataclasses

import numpy as np
import pytest

import lowbit
from lowbit.formats import IntFormat, ScaledFormat, ScaleRule
from lowbit.simulator import Target
from lowbit.simulator.host import fused_search
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, quantize_rows
from lowbit.simulator.host.fused_search import fused_mse, fused_twn, tree_combine, tree_pieces

F32 = np.float32
MSE = ["lsq_int3", "lsq_int4", "nvfp4_mse", "nvfp4_4over6"]
ALL = [*MSE, "twn"]


def fused(rows: np.ndarray, name: str, target: Target = Target.CPU):
    path = fused_twn if name == "twn" else fused_mse
    b = path(rows, lowbit.get_format(name), ElementRounding(target=target))
    assert b is not None
    return b


def pipeline(rows: np.ndarray, name: str):
    with np.errstate(all="ignore"):
        return _quantize_rows(rows, lowbit.get_format(name), ElementRounding(), False)


def same(a, b) -> None:
    np.testing.assert_array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
    np.testing.assert_array_equal(a.scales.view(np.uint32), b.scales.view(np.uint32))
    assert (a.tensor_scale is None) == (b.tensor_scale is None)
    if a.tensor_scale is not None:
        assert F32(a.tensor_scale).view(np.uint32) == F32(b.tensor_scale).view(np.uint32)


def edge_rows(n_rows: int, width: int, seed: int = 0) -> np.ndarray:
    """Random rows over a wide exponent range, with the edge cases in the first rows: all zero,
    NaN, +Inf, -Inf, subnormal, -0 and zeros, values near FLT_MAX, a tiny scale."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, width)).astype(F32)
    x *= np.exp2(rng.integers(-140, 120, n_rows)).astype(F32)[:, None]
    tiny = np.finfo(F32).smallest_subnormal
    edges = [
        np.zeros(width, F32),
        np.where(np.arange(width) == width // 2, np.nan, 1).astype(F32),
        np.where(np.arange(width) == 0, np.inf, 1).astype(F32),
        np.where(np.arange(width) == width - 1, -np.inf, 1).astype(F32),
        (rng.integers(-9, 10, width) * tiny).astype(F32),  # subnormal inputs, a subnormal or 0 scale
        np.where(np.arange(width) % 2 == 0, -0.0, 0.0).astype(F32),
        (rng.standard_normal(width) * F32(1e38)).clip(-3.4e38, 3.4e38).astype(F32),
        np.full(width, -np.finfo(F32).max, F32),
    ]
    for i, e in enumerate(edges[: n_rows - 1]):
        x[i + 1] = e
    return x


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("width", [1, 5, 16, 32, 129, 4096 + 5])
def test_fused_search_equals_pipeline(name, width):
    r = edge_rows(48 if width < 1000 else 12, width, seed=width)
    same(fused(r, name), pipeline(r, name))


def tied_rows(fmt, n_rows: int = 64, width: int = 16, seed: int = 3) -> np.ndarray:
    """Rows whose elements are candidate values of the element grid times a candidate scale, so
    that several candidates give near or exactly equal errors (the first must keep a tie)."""
    rng = np.random.default_rng(seed)
    grid = np.unique(np.abs(fmt.element.code_values[np.isfinite(fmt.element.code_values)]))
    x = rng.choice(grid, (n_rows, width)) * rng.choice([-1, 1], (n_rows, width))
    x[:, 0] = grid.max()
    x = x.astype(F32) * F32(0.75)
    x[n_rows // 2 :, 1:] = np.nextafter(x[n_rows // 2 :, 1:], F32(np.inf))  # just off the grid
    return x


@pytest.mark.parametrize("name", MSE)
def test_near_tied_candidates(name):
    r = tied_rows(lowbit.get_format(name))
    same(fused(r, name), pipeline(r, name))


def test_twn_threshold_ties():
    # elements exactly at delta (not above it) and just above it
    r = np.tile(F32([1, 1, 1, 1, 0.7, 0.7000001, 0.6999999, 2]), (4, 2))
    r[1] *= -1
    same(fused(r, "twn"), pipeline(r, "twn"))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(64, 64), (1 << 12,), (128, 32)])
def test_three_shapes_through_quantize(name, shape):
    # the public entry point with `out`, on a matrix, a 1-D array and many short rows
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-4, 4, shape))).astype(F32)
    got = np.empty_like(x)
    lowbit.quantize(x, name, out=got)
    fmt = lowbit.get_format(name)
    rows = x.reshape(-1, 16) if fmt.block == 16 else x.reshape(-1, x.shape[-1])
    np.testing.assert_array_equal(got.view(np.uint32), pipeline(rows, name).values.reshape(shape).view(np.uint32))


@pytest.mark.parametrize("name", ["lsq_int4", "twn"])
def test_long_rows_split_over_pieces(name, monkeypatch):
    # rows longer than LONG_ROW are cut into pieces of NumPy's summation order (made small here;
    # TWN's pieces are NumPy's cast buffer, one piece a row at this width)
    monkeypatch.setattr(fused_search, "LONG_ROW", 300)
    monkeypatch.setattr(fused_search, "PIECE", 200)
    r = edge_rows(9, 3000, seed=5)
    with np.errstate(all="ignore"):
        expect = _quantize_rows(r, lowbit.get_format(name), ElementRounding(), False)
    same(fused(r, name), expect)


def test_one_long_row_splits_over_the_cores():
    # one row of 2^17 (a 1-D array of a per-channel format): pieces, the true NumPy order
    r = edge_rows(1, 1 << 17, seed=7)
    for name in ("lsq_int3", "twn"):
        same(fused(r, name), pipeline(r, name))


@pytest.mark.parametrize("n", [16, 32, 64, 128, 129, 4096, 4096 + 5, 20000])
def test_tree_pieces_reproduce_numpy_sum(n):
    # NumPy's pairwise order, checked on its own: pieces summed by NumPy, combined by the tree
    rng = np.random.default_rng(n)
    terms = (rng.standard_normal((20, n)) * np.exp2(rng.integers(-30, 30, (20, n)))) ** 2
    spans = tree_pieces(n, 256)
    sums = np.stack([np.sum(terms[:, lo : lo + m], axis=1) for lo, m in spans], axis=1)
    np.testing.assert_array_equal(tree_combine(sums, n, 256), np.sum(terms, axis=1))


def test_declines_what_it_does_not_compute():
    r = edge_rows(4, 16)
    fmt = lowbit.get_format("lsq_int4")
    assert fused_mse(r, fmt, ElementRounding(mode=lowbit.simulator.Rounding.STOCHASTIC)) is None
    assert fused_mse(r, lowbit.get_format("nvfp4"), ElementRounding()) is None
    assert fused_twn(r, fmt, ElementRounding()) is None
    assert fused_twn(r, lowbit.get_format("twn"), ElementRounding(mode=lowbit.simulator.Rounding.RTZ)) is None


def test_quantize_rows_takes_the_fused_path():
    r = edge_rows(8, 32)
    for name in ALL:
        got = quantize_rows(r, lowbit.get_format(name), ElementRounding(), False)
        same(got, pipeline(r, name))


# The simulator runs a kernel at Python speed: the catalog's 51 MSE candidates took minutes a row
# there, so the searches run with a few candidates (the same kernel paths: one level dividing,
# NVFP4's two levels, a leaf of NumPy's sum and a longer row's pairwise walk). 1.0 and 0.99 round to
# the same E4M3 scale for most blocks: the repeated candidate is skipped.
def _mse(bits: int, factors: tuple[float, ...]) -> ScaledFormat:
    return ScaledFormat(IntFormat(bits), None, rule=ScaleRule.MSE, divide=True, scale_factors=factors)


SIM_FORMATS = {
    "lsq_int3": (_mse(3, (1.0, 0.8, 0.6)), 21),
    "lsq_int4_long": (_mse(4, (1.0, 0.7)), 133),
    "nvfp4_mse": (dataclasses.replace(lowbit.get_format("nvfp4_mse"), scale_factors=(1.0, 0.99, 0.75, 0.6)), 16),
    "nvfp4_4over6": (lowbit.get_format("nvfp4_4over6"), 16),
    "twn": (lowbit.get_format("twn"), 21),
}


# the simulator computes in NumPy scalars, which warn where float32 overflows as the kernel means
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("name", SIM_FORMATS)
def test_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt, width = SIM_FORMATS[name]
    r = edge_rows(10 if width < 100 else 3, width, seed=11)
    path = fused_twn if fmt.rule is ScaleRule.TWN else fused_mse
    got = path(r, fmt, ElementRounding(target=Target.CUDA))
    with np.errstate(all="ignore"):
        same(got, _quantize_rows(r, fmt, ElementRounding(), False))
