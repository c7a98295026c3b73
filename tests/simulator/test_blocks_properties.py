"""Properties every block-scaled and codebook format keeps, on random data and hypothesis
examples: idempotence, decode(encode(x)) == quantize(x), finite scales for finite input, and
the CUDA element kernels (simulator in CI) giving the CPU's bits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lowbit
from lowbit.formats import DoubleQuant, GridFormat, VectorCodebookFormat, catalog
from lowbit.simulator.host.scales import dq_values

SCALED = list(catalog.family("scaled"))
CODEBOOKS = list(catalog.family("codebook"))
F32 = np.float32


def data(shape=(6, 256), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(F32) * np.exp2(rng.integers(-6, 6, shape[0]))[:, None].astype(F32)
    x[0, :64] = 0
    x[1, 5] *= 50  # an outlier
    return x


# Not idempotent by construction, so left out of that check (README, "Block formats"):
# - absmean scales (BitNet): the mean |w| of ternary values is smaller than the scale that made them;
# - a zero point: zp = rint(-min / s) shifts the grid, so the output's range, and with it the
#   recomputed scale, differs from the input's;
# - double quantization: the requantized blocks' absmax values are the double-quantized ones, whose
#   mean and group maxima differ from the first pass's;
# - ParetoQ SEQ: alpha = max|w|, but the largest output is 2/3 (ternary) or 3/4 (2-bit) of alpha;
# - LSQ with the MSE step search: the searched grid is relative to the block's amax, which changes.
NOT_IDEMPOTENT = {"bitnet_b158", "int8_per_channel_asym", "int4_g128_asym", "nf4_dq", "paretoq_ternary"}
NOT_IDEMPOTENT |= {"paretoq_2bit"}
NOT_IDEMPOTENT |= {"lsq_int3", "lsq_int4"}
# NVFP4's two levels: the output's largest value is the input's to within an ulp, not exactly, so
# S_enc and with it every value can move by an ulp when the output is quantized again.
WITHIN_AN_ULP = {"nvfp4", "nvint4"}
IDEMPOTENT = [n for n in SCALED + CODEBOOKS if n not in NOT_IDEMPOTENT]


@pytest.mark.parametrize("name", SCALED + CODEBOOKS)
def test_decode_of_encode_is_quantize(name):
    x = data()
    y = lowbit.quantize(x, name)
    np.testing.assert_array_equal(lowbit.decode(lowbit.encode(x, name)).view(np.uint32), y.view(np.uint32))


@pytest.mark.parametrize("name", IDEMPOTENT)
def test_idempotent(name):
    y = lowbit.quantize(data(), name)
    np.testing.assert_array_equal(lowbit.quantize(y, name), y)


def test_not_idempotent_ones_stay_close_or_keep_their_codes():
    y = lowbit.quantize(data(), "int8_per_channel_asym")
    step = np.abs(np.diff(np.unique(y[2]))).min()  # one quantization step of a row
    assert np.abs(lowbit.quantize(y, "int8_per_channel_asym")[2] - y[2]).max() <= step
    w = data()
    codes = lowbit.encode(lowbit.quantize(w, "bitnet_b158"), "bitnet_b158").codes
    np.testing.assert_array_equal(codes, lowbit.encode(w, "bitnet_b158").codes)


@pytest.mark.parametrize("name", SCALED)
def test_scales_finite_for_finite_input(name):
    enc = lowbit.encode(data(seed=1), name)
    fmt = catalog[name]
    if fmt.scale is None:
        vals = np.asarray(enc.scales, dtype=np.uint32).view(F32)
    elif isinstance(fmt.scale, DoubleQuant):
        vals = dq_values(enc.scales.reshape(-1), enc.meta["dq_absmax"], enc.meta["dq_offset"], fmt.scale)
    else:
        vals = lowbit.decode(np.asarray(enc.scales), fmt.scale)
    assert np.isfinite(vals).all()


finite = st.floats(-(2.0**100), 2.0**100, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float32, st.integers(1, 80), elements=finite), name=st.sampled_from(SCALED + CODEBOOKS))
def test_hypothesis_properties(x, name):
    y = lowbit.quantize(x, name)
    assert not np.isnan(y).any()
    np.testing.assert_array_equal(lowbit.decode(lowbit.encode(x, name)).view(np.uint32), y.view(np.uint32))
    # Vector codebooks pad an odd axis with 0, and the padded pair of the output is another pair,
    # so idempotence holds for whole groups only (test_idempotent checks that).
    if name in WITHIN_AN_ULP:
        np.testing.assert_allclose(lowbit.quantize(y, name), y, rtol=3e-7, atol=0)
    elif name not in NOT_IDEMPOTENT and not isinstance(catalog[name], VectorCodebookFormat):
        np.testing.assert_array_equal(lowbit.quantize(y, name), y)
    # The sign never flips; except in ParetoQ 2-bit, whose formula in float32 computes
    # w/alpha * 2 - 0.5 = -0.5 for a tiny negative w and rounds that half to the even 0, i.e. +0.25;
    # and in 2-D grids, whose nearest point need not share each coordinate's sign.
    if name != "paretoq_2bit" and not isinstance(catalog[name], VectorCodebookFormat):
        assert not np.any((y > 0) & (x < 0)) and not np.any((y < 0) & (x > 0))


cuda = pytest.importorskip("numba.cuda")


@pytest.mark.skipif(not cuda.is_available(), reason="no CUDA device and the CUDA simulator is off")
@pytest.mark.parametrize(
    "name",
    [
        "mxfp4",
        "mxfp8_e4m3",
        "mxint8",
        "nvfp4",
        "nf4",
        "int4_g128_asym",
        "bitnet_b158",
        "afpq_fp4_g128",
        "lsq_int4",
        "twn",
    ],
)
def test_cuda_equals_cpu(name):
    # an MSE search tries 51 candidates per row, which the CUDA simulator runs at Python speed
    x = data(shape=(2, 32) if name == "lsq_int4" else (2, 128), seed=3)
    # TWN's threshold rounds to nearest only; the others also take stochastic element rounding
    # (codebook and grid elements round on the host, their random numbers drawn on the target).
    modes = ("rne",) if catalog[name].rule.value == "twn" else ("rne", "stochastic")
    for mode in modes:
        cpu = lowbit.quantize(x, name, rounding=mode, seed=5, target="cpu")
        gpu = lowbit.quantize(x, name, rounding=mode, seed=5, target="cuda")
        np.testing.assert_array_equal(cpu.view(np.uint32), gpu.view(np.uint32))


def test_bad_block_arguments_name_themselves():
    with pytest.raises(ValueError, match="rule"):
        lowbit.get_format("mxfp4", rule="floor")
    with pytest.raises(ValueError, match="block"):
        lowbit.get_format("mxfp4", block=-1)
    with pytest.raises(ValueError, match="rounding"):
        lowbit.quantize(np.ones(64, F32), "nf4", rounding="rtz")
    with pytest.raises(TypeError, match="Encoded"):
        lowbit.decode(np.zeros(32, np.uint8), "mxfp4")
    with pytest.raises(ValueError, match="codebook"):
        lowbit.get_format("mxfp4", element=catalog["nf4_codebook"])
    with pytest.raises(ValueError, match="NaN"):
        lowbit.encode(np.array([np.nan, 1.0], F32), "nf4_codebook")
    with pytest.raises(ValueError, match="per-channel"):
        lowbit.bits_per_element("int8_per_channel")
    assert lowbit.bits_per_element("int8_per_channel", block_elems=4096) == 8 + 32 / 4096


@pytest.mark.parametrize("name", ["twn", "higgs_p2_n16"])
def test_nearest_only_formats_refuse_other_rounding_by_name(name):
    # TWN's threshold and a vector codebook's nearest point have no stochastic form
    with pytest.raises(ValueError, match="rounding.*(twn|vector codebooks).*'stochastic'"):
        lowbit.quantize(np.ones(64, F32), name, rounding="stochastic")


@pytest.mark.parametrize("name", ["nf4", "paretoq_2bit", "nf4_codebook", "paretoq_ternary"])
def test_codebook_and_grid_elements_round_stochastically(name):
    # a value between two neighbours lands on one of them, on both over 64 random numbers; the block's
    # absmax lands where nearest rounding puts it (a table end: a table value stays, one past it clamps)
    x = np.tile(np.array([1.0, 0.3], F32), 64)
    bits = np.arange(128) % 64
    y = lowbit.quantize(x, name, rounding="stochastic", sr_bits=6, random_bits=bits)
    nearest = lowbit.quantize(x, name)
    assert np.all(y[0::2] == nearest[0::2])
    table = catalog[name].table if not hasattr(catalog[name], "element") else catalog[name].element.table
    scale = y[0] / table.max()
    assert len(set(y[1::2].tolist())) == 2 and set((y[1::2] / scale).tolist()) <= set(table.tolist())


@pytest.mark.parametrize("name", ["mxfp4", "nvfp4", "nf4", "bitnet_b158", "nf4_codebook", "higgs_p2_n16"])
@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0,)])
def test_empty_arrays(name, shape):
    z = np.zeros(shape, F32)
    assert lowbit.quantize(z, name).shape == shape
    enc = lowbit.encode(z, name)
    assert lowbit.decode(enc).shape == shape
    assert enc.codes.size == 0


def test_zero_d_input_is_one_block():
    # floor(log2 3.3) - emax(E2M1) = 1 - 2 = -1: 3.3 / 2^-1 = 6.6 saturates to 6, and 6 * 2^-1 = 3
    assert lowbit.quantize(np.float32(3.3), "mxfp4") == 3.0
    enc = lowbit.encode(np.float32(3.3), "mxfp4")
    assert enc.scales.tolist() == [126] and lowbit.decode(enc) == 3.0


@pytest.mark.parametrize("fmt", ["nf4_codebook", "ternary_codebook", "higgs_p1_n4"])
def test_nan_stays_nan_in_unscaled_codebooks(fmt):
    y = lowbit.quantize(np.array([np.nan, 0.3, -np.nan, 0.0], F32), fmt)
    assert np.isnan(y[[0, 2]]).all() and not np.isnan(y[[1, 3]]).any()


def test_nan_makes_its_pair_nan_in_a_2d_grid():
    y = lowbit.quantize(np.array([np.nan, 0.3, 0.5, 0.0], F32), "higgs_p2_n16")
    assert np.isnan(y[:2]).all() and not np.isnan(y[2:]).any()


def test_nan_stays_nan_in_a_grid():
    y = lowbit.quantize(np.array([np.nan, 0.3], F32), GridFormat(1.5))
    assert np.isnan(y[0]) and y[1] == 0.0  # 0.3 * 1.5 = 0.45 rounds to 0
