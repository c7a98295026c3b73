"""Element formats off the float32 fast path (E8M0, unsigned, ties away, P = 1, directed modes)
round on float32 bit patterns (`kernels.element_scalar`), and equal the general path of record
(`scalar.quantize_loop`) bit for bit, ml_dtypes where it has the type, and the pure-Python oracle."""

import numpy as np
import pytest

import lowbit
from lowbit.formats import catalog, get_format
from lowbit.simulator import Target
from lowbit.simulator import reference as ref
from lowbit.simulator.host.elements import bits_kind, bits_params
from lowbit.simulator.kernels.dispatch import Out, run
from lowbit.simulator.kernels.params import kernel_params
from lowbit.simulator.kernels.rounding import Rounding

from ..helpers import all_float16, f32_bits, grid_inputs, ml_dtype, random_f32

SLOW = ["float8_e8m0fnu", "ue5m3fn", "binary8p1se", "binary8p1ue", "binary4p1ue", "binary8p2uf", "binary6p3ue"]
SLOW += ["binary8p3se", "e3m0", "ue4m0"]
MODES = [Rounding.RNE, Rounding.RNA, Rounding.RTZ, Rounding.RUP, Rounding.RDOWN]


def general(x: np.ndarray, fmt, mode: Rounding, target: Target = Target.CPU) -> np.ndarray:
    """x rounded by the general integer path (`quantize_loop`): today's results, the oracle here."""
    out = np.empty_like(x)
    table = np.asarray(fmt.values, np.float64)
    args = (x.view(np.int32), 23, 8, kernel_params(fmt), int(mode), 0, 0, np.zeros(0, np.int64), table)
    run("quantize", target, x.size, *args, Out(out))
    return out


def inputs(fmt, seed: int = 0) -> np.ndarray:
    """Every float16 value, the format's values, midpoints and their float32 neighbours, random
    float32 bit patterns (subnormals included), float32 subnormals around 2^-127 and 2^-149, NaN
    with payloads and both signs, +-Inf, +-0 and +-FLT_MAX."""
    rng = np.random.default_rng(seed)
    sub = np.concatenate([np.arange(0x3FFFF0, 0x400010), np.arange(0x5FFFF0, 0x600010), np.arange(0, 16)])
    nans = np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0xFF812345], np.uint32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 3.4028235e38, -3.4028235e38], np.float32)
    x = [all_float16(), grid_inputs(fmt), random_f32(1 << 16, seed), sub.astype(np.uint32).view(np.float32)]
    x += [nans.view(np.float32), special]
    x = np.concatenate(x).astype(np.float32)
    return np.concatenate([x, -x, rng.permutation(x)])


def same_bits(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(f32_bits(a), f32_bits(b))


def formats_with_names(names):
    return [pytest.param(get_format(n), id=n) for n in names]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name.lower())
@pytest.mark.parametrize("fmt", formats_with_names(SLOW))
def test_bits_path_equals_general_path(fmt, mode):
    assert bits_params(fmt, mode) is not None
    x = inputs(fmt)
    same_bits(lowbit.quantize(x, fmt, rounding=mode.name.lower()), general(x, fmt, mode))


@pytest.mark.parametrize("mode", MODES[1:], ids=lambda m: m.name.lower())
@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "bfloat16", "float8_e4m3fnuz"])
def test_directed_modes_of_fast_formats_equal_general_path(name, mode):
    """The fast path rounds rne only; the other modes of its formats take the bit path."""
    fmt = catalog[name]
    x = inputs(fmt, seed=1)
    same_bits(lowbit.quantize(x, name, rounding=mode.name.lower()), general(x, fmt, mode))


def test_every_catalog_float_format_is_served():
    """Every float format of the catalog takes the bit path in every mode but stochastic."""
    floats = [f for f in catalog.values() if isinstance(f, lowbit.formats.FloatFormat)]
    assert floats
    for fmt in floats:
        assert all(bits_params(fmt, m) is not None for m in MODES), fmt.name
        assert bits_params(fmt, Rounding.STOCHASTIC) is None


def test_e8m0_equals_ml_dtypes():
    """ml_dtypes' float8_e8m0fnu, away from its documented differences (the subnormal band
    (2^-127, 1.5 * 2^-127), see test_ml_dtypes; NaN payloads; zero and negative input, which
    lowbit sends to NaN: E8M0 has neither zero nor negatives)."""
    x = inputs(catalog["float8_e8m0fnu"])
    keep = (x > 0) & ~((x > 2.0**-127) & (x < 1.5 * 2.0**-127)) & ~np.isnan(x)
    x = x[keep]
    expected = x.astype(ml_dtype("float8_e8m0fnu")).astype(np.float32)
    same_bits(lowbit.quantize(x, "float8_e8m0fnu"), expected)
    assert np.isnan(lowbit.quantize(np.array([0.0, -0.0, -1.0, -np.inf, np.nan], np.float32), "float8_e8m0fnu")).all()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name.lower())
@pytest.mark.parametrize("name", ["float8_e8m0fnu", "ue5m3fn", "binary8p1se", "binary4p1ue"])
def test_bits_path_equals_python_oracle(name, mode):
    fmt = get_format(name)
    rng = np.random.default_rng(3)
    x = np.concatenate([grid_inputs(fmt), rng.choice(inputs(fmt), 300)]).astype(np.float32)
    x = x[~np.isnan(x)]
    got = lowbit.quantize(x, fmt, rounding=mode.name.lower())
    codes = [ref.encode_value(fmt, float(v), mode) for v in x]
    expected = np.array([np.nan if c is None else ref.value_of(fmt, c) for c in codes], np.float64)
    same_bits(got, expected.astype(np.float32))


def test_ties_of_p1_formats_go_to_the_even_code():
    """P = 1: neighbouring values are powers of two, and a tie (1.5 * 2^e) goes to the even code,
    which is not the even float32 exponent (binary8p1se: code = e + 64)."""
    fmt = get_format("binary8p1se")
    x = np.array([1.5, 3.0, 6.0, 0.75], np.float32)
    # codes of 0.5, 1, 2, 4, 8 are 63, 64, 65, 66, 67: the ties go to 1, 4, 4 and 1
    np.testing.assert_array_equal(lowbit.quantize(x, fmt), np.array([1.0, 4.0, 4.0, 1.0], np.float32))


@pytest.mark.parametrize("name", ["float8_e8m0fnu", "ue5m3fn", "binary8p1se"])
def test_bits_path_cuda_simulator(name):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = get_format(name)
    x = np.random.default_rng(4).choice(inputs(fmt), 48).astype(np.float32)
    for mode in (Rounding.RNE, Rounding.RUP):
        out = np.empty_like(x)
        args = (x.view(np.int32), bits_params(fmt, mode), bits_kind(fmt, mode), Out(out.view(np.int32)))
        run("quantize_bits", Target.CUDA, x.size, *args)
        same_bits(out, general(x, fmt, mode))
        same_bits(lowbit.quantize(x, fmt, rounding=mode.name.lower(), target="cuda"), out)


def test_declined_cases_keep_the_general_path():
    """Stochastic rounding, float64 input and formats whose values float32 cannot hold run as before."""
    e8m0 = catalog["float8_e8m0fnu"]
    assert bits_params(e8m0, Rounding.STOCHASTIC) is None
    wide = lowbit.formats.FloatFormat(exp_bits=9, man_bits=2)  # emax 255: past float32
    assert bits_params(wide, Rounding.RNE) is None
    x = np.array([1.25, 3.0, 2.0**-130], np.float64)
    np.testing.assert_array_equal(lowbit.quantize(x, e8m0), np.array([1.0, 4.0, 2.0**-127]))
