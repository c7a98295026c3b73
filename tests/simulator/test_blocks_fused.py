"""The fused block kernels equal the step-by-step NumPy pipeline bit for bit (values and scales),
on the CPU and in the CUDA simulator."""

import numpy as np
import pytest

import lowbit
from lowbit.simulator import Target
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, fused_absmax, fused_mx

F32 = np.float32
MX = ["mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxint8", "mxint4"]
RULES = ["ocp_floor", "ceil", "even", "rceil"]


def rows(n_blocks: int = 4096, block: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_blocks, block)).astype(F32)
    x *= np.exp2(rng.integers(-140, 120, n_blocks)).astype(F32)[:, None]
    x[0] = 0
    x[1, 3], x[2, 5], x[3, 7] = np.nan, np.inf, -np.inf
    x[4] = np.nextafter(F32(7 * 2.0**10), F32(0)) * np.sign(x[4])  # amax just below a rule boundary
    return x


def same(a, b) -> None:
    np.testing.assert_array_equal(a.values.view(np.uint32), b.values.view(np.uint32))
    np.testing.assert_array_equal(a.scales.view(np.uint32), b.scales.view(np.uint32))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", MX)
def test_fused_mx_equals_pipeline(name, rule):
    fmt = lowbit.get_format(name, rule=rule)
    r = rows()
    fused = fused_mx(r, fmt, ElementRounding())
    assert fused is not None
    with np.errstate(all="ignore"):
        same(fused, _quantize_rows(r, fmt, ElementRounding(), False))


@pytest.mark.parametrize("name", ["mxfp4", "mxint8"])
def test_fused_mx_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    r = rows(16, seed=1)
    fmt = lowbit.get_format(name, rule="rceil")
    same(fused_mx(r, fmt, ElementRounding(target=Target.CUDA)), fused_mx(r, fmt, ElementRounding()))


ABSMAX = ["nvfp4", "nvfp4_single", "nvint4", "nf4", "nf3", "af4", "bof4", "af4_b256", "int4_g128", "int8_g128"]
ABSMAX += ["int4_per_channel", "paretoq_ternary", "paretoq_2bit"]


def tie_rows(fmt, block: int) -> np.ndarray:
    """Blocks whose absmax is 1 and whose other elements sit on, just above and just below every
    midpoint of the codebook that float32 can hold (the cases the float32 thresholds must get right)."""
    t = fmt.element.table.astype(np.float64)
    mids = (t[1:] + t[:-1]) / 2
    m = mids.astype(F32)
    vals = np.concatenate([m, np.nextafter(m, F32(2)), np.nextafter(m, F32(-2))])
    vals = np.resize(vals, (-(-vals.size // (block - 1)), block - 1))
    return np.concatenate([np.ones((vals.shape[0], 1), F32), vals], axis=1).astype(F32)


@pytest.mark.parametrize("name", ABSMAX)
def test_fused_absmax_equals_pipeline(name):
    fmt = lowbit.get_format(name)
    block = fmt.block or 64
    r = rows(512, block, seed=2)
    if name.startswith(("nf", "af", "bof")):
        r = np.concatenate([r, tie_rows(fmt, block)])
    fused = fused_absmax(r, fmt, ElementRounding())
    assert fused is not None
    with np.errstate(all="ignore"):
        ref = _quantize_rows(r, fmt, ElementRounding(), False)
    same(fused, ref)
    assert (fused.tensor_scale is None) == (ref.tensor_scale is None)


def _built_specs():
    from lowbit.formats import CodebookFormat, GridFormat, ScaledFormat

    return {
        # a midpoint at exactly 0: +0 goes up, -0 down
        "zero_midpoint": ScaledFormat(lowbit.get_format("higgs_p1_n16"), 64),
        # 31 thresholds: more than the select chain takes, so the per-element search
        "five_bit": ScaledFormat(CodebookFormat(tuple(np.linspace(-1, 1, 32)), source="test"), 32),
        # an offset of -0 must add as +0 in the arithmetic grid value, as in the table
        "grid_negative_zero": ScaledFormat(GridFormat(1.5, -0.0, range=1.0), None, divide=True),
    }


@pytest.mark.parametrize("key", ["zero_midpoint", "five_bit", "grid_negative_zero"])
def test_fused_absmax_built_specs_equal_pipeline(key):
    fmt = _built_specs()[key]
    block = fmt.block or 64
    r = rows(256, block, seed=6)
    r[5, : block // 2] = 0.0
    r[5, block // 2 :] = -0.0
    r[6] = 0.0
    r[6, 0] = 1.0
    r[6, 1::2] = -0.0
    fused = fused_absmax(r, fmt, ElementRounding())
    assert fused is not None
    with np.errstate(all="ignore"):
        same(fused, _quantize_rows(r, fmt, ElementRounding(), False))
    if key == "zero_midpoint":  # the codebook has no 0: +0 takes the value above, -0 the one below
        assert (fused.values[6, 2::2] > 0).all() and (fused.values[6, 1::2] < 0).all()


@pytest.mark.parametrize("bad", [None, np.nan, np.inf])
def test_fused_per_tensor_absmean_equals_pipeline(bad):
    fmt = lowbit.get_format("bitnet_b158")
    r = rows(64, 128, seed=5)[5:].reshape(1, -1)  # one block: the whole tensor (finite rows only)
    r = np.concatenate([r, np.zeros((1, 4096 * 4 - r.size % (4096 * 4)), F32)], axis=1)
    if bad is not None:
        r[0, 5000] = bad  # the whole tensor becomes NaN, scale included
    fused = fused_absmax(r, fmt, ElementRounding())
    assert fused is not None
    with np.errstate(all="ignore"):
        same(fused, _quantize_rows(r, fmt, ElementRounding(), False))


@pytest.mark.parametrize("name", ["nvfp4", "nf4", "paretoq_2bit"])
def test_fused_absmax_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")

    fmt = lowbit.get_format(name)
    r = rows(8, fmt.block or 32, seed=4)
    same(fused_absmax(r, fmt, ElementRounding(target=Target.CUDA)), fused_absmax(r, fmt, ElementRounding()))


def test_fused_float_elements_under_a_saturating_scale():
    # FP4 elements with an fp16 scale: amax 1e38 saturates the scale at 65504, so x / scale is huge
    # and the element rounding must take the path that handles any magnitude.
    fmt = lowbit.formats.ScaledFormat(lowbit.get_format("fp4"), 32, scale=lowbit.get_format("float16"))
    r = rows(64, 32, seed=6)
    r[10] *= F32(1e30)
    fused = fused_absmax(r, fmt, ElementRounding())
    with np.errstate(all="ignore"):
        same(fused, _quantize_rows(r, fmt, ElementRounding(), False))


@pytest.mark.parametrize("scale", [F32(2.0**-120), F32(2.0**-140), F32(2.0**100)])
def test_fused_nvfp4_tiny_and_huge_tensors(scale):
    # A tensor whose amax is near 2^-120 makes dec_b / S_enc too small for a float32 reciprocal, so
    # the block divides instead; both the chunked CPU kernel and the pipeline must do so alike.
    fmt = lowbit.get_format("nvfp4")
    r = (np.random.default_rng(7).standard_normal((300, 16)) * scale).astype(F32)
    fused = fused_absmax(r, fmt, ElementRounding())
    with np.errstate(all="ignore"):
        same(fused, _quantize_rows(r, fmt, ElementRounding(), False))
