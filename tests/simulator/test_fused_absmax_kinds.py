"""The CPU's absmax row drivers (one per element kind, run over ranges of rows on worker threads)
equal the step-by-step pipeline bit for bit, whatever the thread count and however the rows fall
into chunks; one long row (a per-channel format on a 1-D array) takes its scale from the host and
its elements in pieces, with the same results."""

import numba
import numpy as np
import pytest

import lowbit
from lowbit.formats import ScaledFormat
from lowbit.simulator import Target
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, fused_absmax, fused_mx

F32 = np.float32
# One format per element kind of the CPU drivers: float (one level, clamped and divided), integer,
# codebook (16 values: the select chain; 8: the counted search), grid (divided).
KINDS = ["nvfp4_single", "int4_g128", "nf4", "nf3", "paretoq_2bit"]


def edge_rows(n_rows: int, width: int, seed: int) -> np.ndarray:
    """Rows over a wide exponent range with the edge cases of a block: NaN, +-Inf, all zeros, -0,
    subnormals, values near FLT_MAX, a single nonzero element."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, width)).astype(F32)
    x *= np.exp2(rng.integers(-140, 120, n_rows)).astype(F32)[:, None]
    x[0] = 0.0
    x[1] = -0.0
    x[2, width // 2] = np.nan
    x[3, 0] = np.inf
    x[4, -1] = -np.inf
    x[5] = np.float32(2.0**-149) * np.arange(width)  # subnormal inputs, a subnormal scale
    x[6] = np.finfo(F32).max * np.sign(x[6])
    x[7] = 0.0
    x[7, 0] = np.float32(1e-45)
    return x


def same(a, b) -> None:
    np.testing.assert_array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
    np.testing.assert_array_equal(a.scales.view(np.uint32), b.scales.view(np.uint32))


def pipeline(r: np.ndarray, fmt):
    with np.errstate(all="ignore"):
        return _quantize_rows(r, fmt, ElementRounding(), False)


def with_threads(count: int, fn):
    before = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        return fn()
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("width", [1, 3, 32])
def test_kind_drivers_equal_pipeline_on_short_rows(name, width):
    # rows of 32: 256 rows a chunk, so the NaN rows placed below sit on both sides of a boundary
    fmt = lowbit.get_format(name)
    r = edge_rows(1100, max(width, 1), seed=width) if width > 1 else np.random.default_rng(1).standard_normal((900, 1))
    r = r.astype(F32)
    r[255:257, 0] = np.nan
    fused = fused_absmax(r, fmt, ElementRounding())
    assert fused is not None
    same(fused, pipeline(r, fmt))


@pytest.mark.parametrize("name", KINDS + ["nvfp4", "nvint4"])
def test_kind_drivers_do_not_depend_on_the_thread_count(name):
    fmt = lowbit.get_format(name)
    r = edge_rows(777, fmt.block or 64, seed=3)
    one = with_threads(1, lambda: fused_absmax(r, fmt, ElementRounding()))
    two = with_threads(2, lambda: fused_absmax(r, fmt, ElementRounding()))
    same(one, two)
    same(one, pipeline(r, fmt))


def test_mx_rows_do_not_depend_on_the_thread_count():
    fmt = lowbit.get_format("mxfp4")
    r = edge_rows(777, 32, seed=4)
    one = with_threads(1, lambda: fused_mx(r, fmt, ElementRounding()))
    same(one, with_threads(2, lambda: fused_mx(r, fmt, ElementRounding())))
    same(one, pipeline(r, fmt))


def _per_channel(name: str) -> ScaledFormat:
    """A catalog format, or its element with one scale per row (block None)."""
    if name in ("int8_per_channel", "int4_per_channel", "paretoq_ternary", "paretoq_2bit"):
        return lowbit.get_format(name)
    return ScaledFormat(lowbit.get_format(name).element, None)


@pytest.mark.parametrize("name", ["int8_per_channel", "paretoq_ternary", "nf4", "nvfp4_single"])
@pytest.mark.parametrize("case", ["random", "nan", "inf", "zeros", "subnormal", "huge"])
def test_one_long_row_equals_pipeline(name, case):
    fmt = _per_channel(name)
    r = np.random.default_rng(5).standard_normal((1, 4096 * 3)).astype(F32)
    if case == "nan":
        r[0, 5000] = np.nan
    elif case == "inf":
        r[0, 9000] = -np.inf
    elif case == "zeros":
        r[:] = 0.0
        r[0, 1::2] = -0.0
    elif case == "subnormal":
        r *= F32(2.0**-140)
    elif case == "huge":
        r *= F32(2.0**125)
    fused = fused_absmax(r, fmt, ElementRounding())
    assert fused is not None and fused.scales.shape == (1, 1)
    same(fused, pipeline(r, fmt))


def test_one_long_row_through_quantize_equals_pipeline():
    x = np.random.default_rng(6).standard_normal(4096 * 4).astype(F32)
    fmt = lowbit.get_format("int4_per_channel")
    expected = pipeline(x.reshape(1, -1), fmt).values.reshape(-1)
    np.testing.assert_array_equal(lowbit.quantize(x, fmt).view(np.uint32), expected.view(np.uint32))


# The simulator computes in NumPy scalars, on threads of its own: 1 / a subnormal scale overflows
# (to Inf, as compiled code does, and the element path divides instead).
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("name", ["int4_g128", "nvfp4_single", "nf3"])
def test_kind_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = lowbit.get_format(name)
    r = edge_rows(16, fmt.block or 32, seed=7)
    same(fused_absmax(r, fmt, ElementRounding(target=Target.CUDA)), fused_absmax(r, fmt, ElementRounding()))


def test_one_long_row_cuda_simulator():
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = lowbit.get_format("int8_per_channel")
    r = np.random.default_rng(8).standard_normal((1, 4096 * 2)).astype(F32)
    same(fused_absmax(r, fmt, ElementRounding(target=Target.CUDA)), pipeline(r, fmt))
