"""The NVFP4 variants against an independent NumPy implementation written here from their papers.

Four over six: Cook et al. 2025 (arXiv 2512.02010): per block, the maximum at 6 or at 4, the smaller
squared error kept (ties: 6), the tensor scale S_enc = 256 * 6 / amax. 2-D tiles: NVIDIA's NVFP4
training recipe (arXiv 2509.25149), one E4M3 scale per 16 x 16 tile. UE5M3: Hu, Luschi & Balanca
2025 (arXiv 2509.17791), unsigned E5M3 scales (bias 15, subnormals, 0xFF NaN, max 1.75 * 2^16).
MSE: the E4M3 block scale shrunk by 1.00, 0.99, ..., 0.50, the least squared error kept (ties: the
larger). Every step is float32, in TransformerEngine's order (DESIGN.md section 3).
"""

import numpy as np
import pytest

import lowbit
from lowbit import decode, encode, quantize
from lowbit.formats import ScaledFormat, catalog
from lowbit.formats.catalog import UE5M3
from lowbit.simulator import matmul
from lowbit.simulator.host.blocks import ElementRounding, _quantize_rows, device_rows_kernel, fused_absmax, layout
from lowbit.simulator.kernels.rounding import Rounding

F32 = np.float32
FLT_MAX = np.finfo(np.float32).max
VARIANTS = ("nvfp4_4over6", "nvfp4_2d", "nvfp4_ue5m3", "nvfp4_mse")

# (mantissa bits, lowest normal exponent, largest value) of each format rounded here
E2M1 = (1, 0, 6.0)  # bias 1: normals from 2^0, subnormal step 0.5
E4M3 = (3, -6, 448.0)  # bias 7
UE5M3_SPEC = (3, -14, 114688.0)  # bias 15: 1.75 * 2^16 is the largest code below the NaN 0xFF


def round_float(v: np.ndarray, spec: tuple) -> np.ndarray:
    """|v| to the nearest value of a float with `man` mantissa bits (ties to an even mantissa),
    saturating at `top`, the sign of v kept; float64 holds every step exactly."""
    man, emin, top = spec
    mag = np.abs(v.astype(np.float64))
    _, exp = np.frexp(np.where(mag > 0, mag, 1.0))
    quantum = np.ldexp(1.0, np.maximum(exp - 1, emin) - man)
    rounded = np.minimum(np.rint(mag / quantum) * quantum, top)
    return np.copysign(rounded, v).astype(np.float32)


def two_level(rows: np.ndarray, tensor_amax: F32, top: float, scale: tuple, factors=(1.0,)):
    """(values, block scales) of NVFP4's two-level recipe on blocks `rows`, the block scale picked
    among `factors` by the least float64 sum of squared float32 errors (the first wins ties)."""
    s_enc = F32(1) if tensor_amax == 0 else min(F32(F32(top) * F32(6)) / tensor_amax, F32(FLT_MAX))
    post = F32(F32(1) / s_enc)
    amax = np.max(np.abs(rows), axis=1)
    c = F32(s_enc * F32(F32(1) / F32(6)))
    best = None
    for f in factors:
        dec = round_float((amax * c) * F32(f), scale)
        with np.errstate(divide="ignore"):
            enc = np.where(dec == 0, F32(0), F32(1) / (dec * post)).astype(np.float32)
        q = round_float(rows * enc[:, None], E2M1)
        values = ((q * dec[:, None]) * post).astype(np.float32)
        err = np.sum((values - rows).astype(np.float64) ** 2, axis=1)
        if best is None:
            best = [values, dec, err]
        else:
            better = err < best[2]
            best = [
                np.where(better[:, None], values, best[0]),
                np.where(better, dec, best[1]),
                np.where(better, err, best[2]),
            ]
    values, dec = best[0], best[1]
    bad = ~np.isfinite(amax)
    values[bad], dec[bad] = np.nan, np.nan
    return values, dec


def blocks_1d(x: np.ndarray) -> np.ndarray:
    r, c = x.shape
    padded = np.pad(x, ((0, 0), (0, -c % 16)))
    return padded.reshape(-1, 16)


def unblock_1d(rows: np.ndarray, shape) -> np.ndarray:
    r, c = shape
    return rows.reshape(r, -1)[:, :c]


def tiles_2d(x: np.ndarray) -> np.ndarray:
    r, c = x.shape
    padded = np.pad(x, ((0, -r % 16), (0, -c % 16)))
    pr, pc = padded.shape
    return padded.reshape(pr // 16, 16, pc // 16, 16).transpose(0, 2, 1, 3).reshape(-1, 256)


def untile_2d(rows: np.ndarray, shape) -> np.ndarray:
    r, c = shape
    pr, pc = r + (-r % 16), c + (-c % 16)
    return rows.reshape(pr // 16, pc // 16, 16, 16).transpose(0, 2, 1, 3).reshape(pr, pc)[:r, :c]


MSE_FACTORS = tuple(1 - k / 100 for k in range(51))
REFERENCE = {
    # name: (blocks, unblock, top, scale format, factors)
    "nvfp4": (blocks_1d, unblock_1d, 448.0, E4M3, (1.0,)),
    "nvfp4_4over6": (blocks_1d, unblock_1d, 256.0, E4M3, (1.0, 1.5)),
    "nvfp4_2d": (tiles_2d, untile_2d, 448.0, E4M3, (1.0,)),
    "nvfp4_ue5m3": (blocks_1d, unblock_1d, 114688.0, UE5M3_SPEC, (1.0,)),
    "nvfp4_mse": (blocks_1d, unblock_1d, 448.0, E4M3, MSE_FACTORS),
}


def reference(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, block scales) of variant `name` on a 2-D float32 x, blocks along its last axis."""
    blocks, unblock, top, scale, factors = REFERENCE[name]
    finite = np.abs(x[np.isfinite(x)])
    tensor_amax = F32(finite.max()) if finite.size else F32(0)
    values, dec = two_level(blocks(x), tensor_amax, top, scale, factors)
    return unblock(values, x.shape), dec


def heavy(shape, seed: int) -> np.ndarray:
    """N(0, 1) with outliers (0.5% of the values times 20 to 1000) and one row 10^-6 times smaller,
    whose block scales land among the scale format's subnormals."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    hit = rng.random(shape) < 0.005
    x[hit] *= rng.uniform(20, 1000, hit.sum()).astype(np.float32)
    x[1] *= F32(1e-6)
    return x


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit, every NaN alike."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a)
    return (
        a.shape == b.shape
        and np.array_equal(nan, np.isnan(b))
        and np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32))
    )


# ----- against the reference -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["nvfp4", *VARIANTS])
def test_values_match_the_reference_bit_for_bit(name):
    """~10^5 values with outliers and a row of tiny ones; the plain nvfp4 checks the reference itself."""
    x = heavy((320, 320), 1)
    want, dec = reference(x, name)
    assert same_bits(quantize(x, name), want)
    enc = encode(x, name)
    assert same_bits(decode(enc), want)
    scales = decode(enc.scales.reshape(-1), catalog[name].scale)
    assert same_bits(scales, dec)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("shape", [(37, 45), (5, 16), (16, 3), (1, 40)])
def test_padding_matches_the_reference(name, shape):
    x = heavy(shape, 2) if shape[0] > 1 else np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    want, _ = reference(x, name)
    assert same_bits(quantize(x, name), want)
    assert same_bits(decode(encode(x, name)), want)


@pytest.mark.parametrize("name", VARIANTS)
def test_nan_inf_and_zero_blocks(name):
    """A block (tile) holding NaN or Inf is NaN throughout and has a NaN scale; the others are
    finite; an all-zero block is zeros with scale code 0; an all-zero tensor is zeros."""
    x = heavy((32, 64), 3)
    x[0, 3] = np.nan
    x[20, 40] = np.inf
    x[16:32, 0:16] = 0.0
    want, _ = reference(x, name)
    got = quantize(x, name)
    assert same_bits(got, want)
    enc = encode(x, name)
    assert same_bits(decode(enc), want)
    tile = name == "nvfp4_2d"
    nan_block = got[0:16, 0:16] if tile else got[0, 0:16]
    assert np.isnan(nan_block).all() and np.isnan(got[20, 32:48]).all()
    assert (got[16:32, 0:16] == 0).all() and np.isfinite(got[16:32, 16:32]).all()
    zero_scale = enc.scales[1, 0] if tile else enc.scales[16, 0]
    assert zero_scale == 0
    assert not quantize(np.zeros((16, 32), np.float32), name).any()


# ----- hand-worked blocks ----------------------------------------------------------------------


def test_four_over_six_by_hand():
    """Tensor amax 6: S_enc = 256 * 6 / 6 = 256, so the 6-candidate's scale is 256 (E4M3 0x78) and x
    maps to itself; the 4-candidate's is 384 (0x7C) and x to 2/3 x.
    Block 0 [6, 4.5]: 6 gives 4.5 -> 4 (error 0.25), 4 gives 3 * 1.5 = 4.5 (error 0): 4 wins.
    Block 1 [6, 1]: 6 is exact, 4 gives 1 * 2/3 -> 0.5 * 1.5 = 0.75 (error 0.0625): 6 wins.
    Block 2 [6, 3]: both exact (3 * 2/3 = 2 -> 3): a tie, which 6 wins."""
    x = np.zeros((3, 16), np.float32)
    x[:, 0] = 6
    x[:, 1] = (4.5, 1.0, 3.0)
    enc = encode(x, "nvfp4_4over6")
    assert enc.tensor_scale == 1 / 256
    assert enc.scales.tolist() == [[0x7C], [0x78], [0x78]]
    assert decode(enc)[:, :2].tolist() == [[6, 4.5], [6, 1], [6, 3]]
    plain = quantize(x, "nvfp4")
    assert plain[0, 1] == 4.0  # nvfp4 (S_enc = 448 * 6 / 6) rounds the 4.5 down


def test_two_d_tiles_by_hand():
    """A 32 x 32 matrix, four 16 x 16 tiles with maxima 6, 3 (top row) and 1.5, 12 (bottom row).
    Tensor amax 12: S_enc = 448 * 6 / 12 = 224, dec = e4m3(amax * 224 / 6): 224 (0x76), 112 (0x6E),
    56 (0x66), 448 (0x7E), all exact; every tile's maximum decodes to itself (to float32's rounding)."""
    x = np.full((32, 32), 0.25, np.float32)
    x[0, 0], x[15, 31], x[31, 0], x[16, 16] = 6, 3, 1.5, 12
    enc = encode(x, "nvfp4_2d")
    assert enc.scales.shape == (2, 2)
    assert enc.scales.tolist() == [[0x76, 0x6E], [0x66, 0x7E]]
    assert lowbit.bits_per_element("nvfp4_2d") == 4 + 8 / 256
    got = decode(enc)
    # within float32's rounding of 1 / S_enc = 1/224
    np.testing.assert_allclose([got[0, 0], got[15, 31], got[31, 0], got[16, 16]], [6, 3, 1.5, 12], rtol=2e-7)
    assert same_bits(quantize(x.T, "nvfp4_2d").T, got)  # W and W^T quantize alike
    assert same_bits(quantize(x, "nvfp4_2d", axis=0), got)


def test_ue5m3_codes_by_hand():
    """UE5M3: code 0x01 = 2^-14 / 8 = 2^-17 (the smallest subnormal), 0x08 = 2^-14, 0x78 = 2^0,
    0x7F = 1.875, 0xF6 = 1.75 * 2^15, 0xFE = 1.75 * 2^16 = 114688 (the largest), 0xFF = NaN.
    NVFP4 with UE5M3 scales, tensor amax 6: S_enc = 114688, block amax 6 -> 114688 (0xFE),
    block amax 3 -> 57344 (0xF6)."""
    codes = np.array([0x01, 0x08, 0x78, 0x7F, 0xF6, 0xFE, 0xFF], np.uint8)
    values = decode(codes, UE5M3)
    assert values[:-1].tolist() == [2.0**-17, 2.0**-14, 1.0, 1.875, 57344.0, 114688.0]
    assert np.isnan(values[-1])
    x = np.zeros((2, 16), np.float32)
    x[0, 0], x[1, 0] = 6, 3
    enc = encode(x, "nvfp4_ue5m3")
    assert enc.scales.tolist() == [[0xFE], [0xF6]]
    assert enc.tensor_scale == np.float32(1 / 114688)


def test_mse_search_by_hand():
    """[6, 5] at tensor amax 6 (S_enc = 448, dec = e4m3(448 f)). Factor 1: scale 448, 5 is a tie
    between 4 and 6 and goes to 4: error 1. Factors 0.90 to 0.96 give scale 416 (E4M3 0x7D),
    x * 448/416: 6 -> 6.46 -> 6 and 5 -> 5.38 -> 6, both 6 * 416/448 = 5.571: error 0.184 + 0.327
    = 0.51. Scale 384 (x * 7/6: both -> 6 -> 5.143) errs 0.755, scale 352 more: 416 wins."""
    x = np.zeros((1, 16), np.float32)
    x[0, :2] = 6, 5
    enc = encode(x, "nvfp4_mse")
    assert enc.scales.tolist() == [[0x7D]]
    got = decode(enc)[0, :2]
    np.testing.assert_allclose(got, [6 * 416 / 448] * 2, rtol=1e-6)
    assert quantize(x, "nvfp4")[0, 1] == 4.0
    # per block the search includes factor 1, plain nvfp4's scale: never a larger error
    y = heavy((64, 64), 4)
    blocks = blocks_1d(y)
    e_plain = np.sum((blocks_1d(quantize(y, "nvfp4")) - blocks).astype(np.float64) ** 2, axis=1)
    e_mse = np.sum((blocks_1d(quantize(y, "nvfp4_mse")) - blocks).astype(np.float64) ** 2, axis=1)
    assert (e_mse <= e_plain).all() and (e_mse < e_plain).any()


# ----- layout, validation, the fused kernels and matmul ---------------------------------------


def test_two_d_tiles_need_two_dimensions():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        quantize(np.ones(32, np.float32), "nvfp4_2d")
    with pytest.raises(ValueError, match="needs a fixed block"):
        ScaledFormat(catalog["nvfp4"].element, None, block_rows=16)


def test_two_d_tiles_on_three_dimensions():
    """A stack of matrices: tiles over the last two axes of each."""
    x = heavy((3, 20, 40), 5)
    want = np.stack([reference(m, "nvfp4_2d")[0] for m in x])
    # the reference's tensor amax is per matrix; give every matrix the same largest value
    x[:, 0, 0] = 5000.0
    want = np.stack([reference(m, "nvfp4_2d")[0] for m in x])
    assert same_bits(quantize(x, "nvfp4_2d"), want)
    enc = encode(x, "nvfp4_2d")
    assert enc.scales.shape == (3, 2, 3)
    assert same_bits(decode(enc), want)


def test_variant_validation():
    nv = catalog["nvfp4"]
    with pytest.raises(ValueError, match="scale_factors"):
        ScaledFormat(nv.element, 16, scale=nv.scale, scale_factors=(1.0, 1.5))  # the absmax rule
    with pytest.raises(ValueError, match="scale_factors"):
        ScaledFormat(nv.element, 16, scale=nv.scale, rule="mse", scale_factors=(1.0, -1.0))
    with pytest.raises(ValueError, match="tensor_scale_max"):
        ScaledFormat(nv.element, 16, scale=nv.scale, tensor_scale_max=256.0)


@pytest.mark.parametrize("name", VARIANTS)
def test_fused_kernels_decline_what_they_do_not_compute(name):
    """The fused absmax kernel declines the search rules and UE5M3 scales, and computes a 2-D tile
    (one row of 256) exactly; no device kernel takes any variant (a device row is a 1-D block)."""
    fmt = catalog[name]
    x = heavy((32, 64), 6)
    rows = layout(x.shape, fmt, -1).to_rows(x)
    fused = fused_absmax(rows, fmt, ElementRounding())
    if name == "nvfp4_2d":
        assert same_bits(fused.values, _quantize_rows(rows, fmt, ElementRounding(), False).values)
    else:
        assert fused is None
    assert device_rows_kernel(fmt, Rounding.RNE, 1.0) is None
    assert device_rows_kernel(catalog["nvfp4"], Rounding.RNE, 1.0) is not None


def _exact_operand(x: np.ndarray, name: str, axis: int) -> np.ndarray:
    """The operand's values in float64 from its codes: element x block scale x tensor scale, exact."""
    enc = encode(x, name, axis=axis)
    fmt = catalog[name]
    elems = fmt.element.code_values.astype(np.float64)[enc.codes]
    scales = decode(enc.scales, fmt.scale).astype(np.float64)
    moved = elems if axis == 1 else elems.T
    rows = min(fmt.block_rows, moved.shape[0])
    per_row = np.repeat(scales, rows, axis=0)[: moved.shape[0]]
    full = np.repeat(per_row, 16, axis=1)[:, : moved.shape[1]]
    value = moved * full * float(enc.tensor_scale)
    return value if axis == 1 else value.T


@pytest.mark.parametrize("name", VARIANTS)
def test_matmul_exact_products(name):
    """matmul with an exact accumulator equals the float64 product of the operands' exact values,
    the 2-D tiles of b (blocks along its axis 0) included."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((24, 48)).astype(np.float32)
    b = rng.standard_normal((48, 40)).astype(np.float32)
    got = matmul(a, b, name, name, accumulator="exact")
    want = _exact_operand(a, name, 1) @ _exact_operand(b, name, 0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    fp32 = matmul(a, b, name, "nvfp4")
    assert np.isfinite(fp32).all() and np.abs(fp32 - a @ b).max() < 0.25 * np.abs(a @ b).max()


def test_bits_per_element():
    assert lowbit.bits_per_element("nvfp4_4over6") == 4.5
    assert lowbit.bits_per_element("nvfp4_ue5m3") == 4.5
    assert lowbit.bits_per_element("nvfp4_mse") == 4.5
    assert catalog["nvfp4_2d"].bits_per_element_in((32, 48)) == 4 + 8 / 256
    # (20, 20): 2 x 2 tiles of 8 bits over 400 elements
    assert catalog["nvfp4_2d"].bits_per_element_in((20, 20)) == 4 + 32 / 400


@pytest.mark.parametrize("name", VARIANTS)
def test_cuda_target_and_device_arrays(name):
    """target='cuda' and a CUDA device array give the CPU's bits (under the CUDA simulator in CI):
    the elements round on the device, the scales and the searches run on the host."""
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    # tiny: the simulator runs kernels at Python speed (nvfp4_mse's 51 candidates a block most of all)
    x = heavy((3, 16) if name == "nvfp4_mse" else (18, 20), 8)
    x[1, 7] = np.nan
    cpu = quantize(x, name)
    assert same_bits(quantize(x, name, target="cuda"), cpu)
    out = quantize(cuda.to_device(x), name)
    assert same_bits(out.copy_to_host() if hasattr(out, "copy_to_host") else out, cpu)


@pytest.mark.parametrize("name", ["nvfp4_4over6", "nvfp4_mse"])
def test_searches_under_stochastic_rounding(name):
    """Every candidate rounds each element with the same random number: reproducible by seed, the
    codes decode to the values, and the search still never does worse than its first candidate's
    scale would under the same numbers (nvfp4_mse: plain nvfp4's scale)."""
    x = heavy((32, 64), 9)
    a = quantize(x, name, rounding="stochastic", seed=3)
    assert same_bits(a, quantize(x, name, rounding="stochastic", seed=3))
    assert same_bits(decode(encode(x, name, rounding="stochastic", seed=3)), a)
    assert not same_bits(a, quantize(x, name, rounding="stochastic", seed=4))
    if name == "nvfp4_mse":
        plain = quantize(x, "nvfp4", rounding="stochastic", seed=3)
        blocks = blocks_1d(x)
        e_plain = np.sum((blocks_1d(plain) - blocks).astype(np.float64) ** 2, axis=1)
        e_mse = np.sum((blocks_1d(a) - blocks).astype(np.float64) ** 2, axis=1)
        assert (e_mse <= e_plain).all()


def test_matmul_batch_tiles_stay_in_their_matrix():
    # a batch runs as one (B * M, K) matrix: with M = 32 every 16 x 16 tile lies in one batch entry
    # and the product is that of the tiled 3-D quantization; with M = 20 a tile would span two
    # entries, which quantize of the 3-D array never does, so matmul refuses it
    rng = np.random.default_rng(11)
    b = rng.standard_normal((32, 8)).astype(np.float32)
    a = rng.standard_normal((2, 32, 32)).astype(np.float32)
    want = quantize(a, "nvfp4_2d").astype(np.float64) @ quantize(b, "nvfp4_2d", axis=0).astype(np.float64)
    got = matmul(a, b, "nvfp4_2d", "nvfp4_2d", accumulator="exact")  # exact products of (q * dec) * post
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # want: of float32-rounded values
    with pytest.raises(ValueError, match="a_format: 16 x 16 tiles over a batch need M a multiple of 16"):
        matmul(a[:, :20], b, "nvfp4_2d", "nvfp4")
