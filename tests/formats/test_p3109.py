"""IEEE P3109 binaryKpP formats against the working group's interim report.

Expected values come from a decoder written here from the report's definition (not from
lowbit's spec), from the summary facts in tests/data/p3109.yaml (read from gfloat, an
independent implementation of the report), from ml_dtypes (binaryKpPsf is float8_e*fnuz value
for value), from the reference oracle, and from hand arithmetic.
"""

from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import yaml

import lowbit
from lowbit.formats import FloatFormat, Overflow, get_format, p3109
from lowbit.simulator import reference as ref
from lowbit.simulator.host.elements import saturating

FACTS = yaml.safe_load((Path(__file__).parents[1] / "data" / "p3109.yaml").read_text())["formats"]


def _names(bits: range) -> list[str]:
    return [f"binary{k}p{p}{s}{d}" for k in bits for s in "su" for p in range(1, k + (s == "u")) for d in "ef"]


EXHAUSTIVE = _names(range(3, 9))  # every allowed K and P from 3 to 8 bits


def report_decode(name: str, code: int):
    """The value of `code` by the report's definition: NaN, +-Inf, or an exact Fraction."""
    k, rest = name[len("binary") :].split("p")
    k, p, signed, extended = int(k), int(rest[:-2]), rest[-2] == "s", rest[-1] == "e"
    if signed:
        half = 1 << (k - 1)
        if code == half:
            return "nan"
        if extended and code in (half - 1, 2 * half - 1):
            return "inf" if code == half - 1 else "-inf"
        sign, mag, bias = (-1 if code >= half else 1), code % half, 2 ** (k - p - 1)
    else:
        if code == (1 << k) - 1:
            return "nan"
        if extended and code == (1 << k) - 2:
            return "inf"
        sign, mag, bias = 1, code, 2 ** (k - p)
    e, t = mag >> (p - 1), mag % (1 << (p - 1))
    frac = Fraction(t, 1 << (p - 1))
    if e == 0:
        return sign * frac * Fraction(2) ** (1 - bias)
    return sign * (1 + frac) * Fraction(2) ** (e - bias)


def _as_float(v) -> float:
    return {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[v] if isinstance(v, str) else float(v)


def test_exhaustive_list_covers_every_report_format_of_3_to_8_bits():
    # signed P in 1..K-1, unsigned P in 1..K, two domains: sum over K = 3..8 of 2 (2K - 1)
    assert len(EXHAUSTIVE) == sum(2 * (2 * k - 1) for k in range(3, 9)) == 120


@pytest.mark.parametrize("name", EXHAUSTIVE)
def test_every_code_decodes_to_the_reports_value(name):
    fmt = get_format(name)
    expected = np.array([_as_float(report_decode(name, c)) for c in range(fmt.n_codes)])
    np.testing.assert_array_equal(fmt.values, expected)
    codes = np.arange(fmt.n_codes).astype(fmt.code_dtype)
    np.testing.assert_array_equal(lowbit.decode(codes, name).astype(np.float64), expected.astype(np.float32))


@pytest.mark.parametrize("name", sorted(FACTS))
def test_summary_facts_match_gfloat(name):
    fact, fmt = FACTS[name], get_format(name)
    values = fmt.values
    assert fmt.name == name and fmt.bias == fact["bias"]
    assert fmt.max == fact["max"] and np.nanmax(values[np.isfinite(values)]) == fact["max"]
    assert fmt.min_subnormal == fact["min_positive"] and fmt.min_normal == fact["min_normal"]
    assert np.flatnonzero(np.isnan(values)).tolist() == fact["nan_codes"]
    assert np.flatnonzero(np.isinf(values)).tolist() == fact["inf_codes"]
    assert int(np.isfinite(values).sum()) == fact["finite_values"]
    assert fmt.has_negative_zero is fact["has_negative_zero"] is False
    assert fmt.nan_code(False) == fmt.nan_code(True) == fact["nan_codes"][0]


@pytest.mark.parametrize(("name", "fnuz"), [("binary8p3sf", "float8_e5m2fnuz"), ("binary8p4sf", "float8_e4m3fnuz")])
def test_signed_finite_domain_is_fnuz_value_for_value(name, fnuz):
    table = np.arange(256, dtype=np.uint8).view(getattr(ml_dtypes, fnuz)).astype(np.float64)
    np.testing.assert_array_equal(get_format(name).values, table)


# ----- conversion on hand-worked cases ---------------------------------------------------------
# binary8p4se: bias 8, 3 fraction bits; max 1.110b * 2^7 = 224 (code 0x7E, significand 14, even);
# the next significand, 15 * 2^4 = 240, would be code 0x7F (odd), which is +Inf.
# binary8p4sf: same layout, max 1.111b * 2^7 = 240 at 0x7F (odd); the virtual next value is 256.
# binary8p1se: bias 64, no fraction bits: powers of two, code = biased exponent.
HAND = [
    # (format, options, rounding, input, expected code)
    ("binary8p4se", {}, "rne", 1.0625, 0x40),  # 1 + 1/16: tie of 1.0 (T=0) and 1.125 (T=1): even 1.0
    ("binary8p4se", {}, "rne", 1.1875, 0x42),  # tie of 1.125 (T=1) and 1.25 (T=2): 1.25
    ("binary8p4se", {}, "rne", -1.1875, 0xC2),
    ("binary8p4se", {}, "rne", 2.0**-11, 0x00),  # half the smallest subnormal 2^-10: tie to 0
    ("binary8p4se", {}, "rne", 3 * 2.0**-11, 0x02),  # tie of 2^-10 (code 1) and 2^-9 (code 2)
    ("binary8p4se", {}, "rne", -(2.0**-12), 0x00),  # rounds to zero: no -0, so +0
    ("binary8p4se", {}, "rne", 232.0, 0x7E),  # tie of 224 (even) and 240: 224
    ("binary8p4se", {}, "rne", 232.5, 0x7F),  # past the tie: overflow to +Inf
    ("binary8p4se", {}, "rne", -240.0, 0xFF),  # -Inf
    ("binary8p4se", {}, "rtz", 1e6, 0x7E),  # toward zero never overflows
    ("binary8p4se", {}, "rup", 224.1, 0x7F),
    ("binary8p4se", {}, "rup", -1e6, 0xFE),  # toward +Inf from below: -max
    ("binary8p4se", {}, "rdown", -224.1, 0xFF),
    ("binary8p4se", {"overflow": "saturate"}, "rne", 240.0, 0x7E),
    ("binary8p4se", {"overflow": "saturate"}, "rne", -1e30, 0xFE),
    ("binary8p4se", {"overflow": "saturate"}, "rup", 224.1, 0x7E),
    ("binary8p4sf", {}, "rne", 248.0, 0x7F),  # the default saturates: tie past the max gives max
    ("binary8p4sf", {}, "rne", -1e30, 0xFF),
    ("binary8p4sf", {"overflow": "nan"}, "rne", 248.0, 0x80),  # 240 is odd: the tie goes up, to NaN
    ("binary8p4sf", {"overflow": "nan"}, "rne", 247.9, 0x7F),
    ("binary8p4sf", {"overflow": "nan"}, "rne", -1e30, 0x80),
    ("binary8p1se", {}, "rne", 1.5, 0x40),  # tie of 1 (exponent field 64, even) and 2 (65)
    ("binary8p1se", {}, "rne", 3.0, 0x42),  # tie of 2 (65) and 4 (66, even)
    ("binary8p1se", {}, "rne", 2.0**-64, 0x00),  # half the smallest value 2^-63: tie to 0
    ("binary8p1se", {}, "rne", 0.75 * 2.0**-63, 0x01),
    ("binary8p1se", {}, "rna", 1.5, 0x41),
    ("binary8p1se", {}, "rne", 2.0**62 * 1.5, 0x7E),  # tie of max 2^62 (field 126, even) and 2^63: max
    ("binary8p1se", {}, "rne", 2.0**62 * 1.75, 0x7F),  # past the tie: +Inf
    ("binary8p3ue", {}, "rne", 1.5, 0x82),  # bias 32, 2 fraction bits: 1.5 = 1.10b, field 32
    ("binary8p3ue", {}, "rne", -1.5, 0x00),  # negative into unsigned: 0, as the report saturates
    ("binary8p3ue", {}, "rne", 1e30, 0xFE),  # +Inf
    ("binary8p3uf", {}, "rne", -1e30, 0x00),
    ("binary8p3uf", {}, "rne", 1e30, 0xFE),  # max
    ("binary8p3uf", {"overflow": "nan"}, "rne", -1.5, 0xFF),  # NaN under the non-report NaN overflow
    ("binary3p2se", {}, "rne", 1.25, 0x02),  # 3 bits: values 0, 0.5, 1, Inf: tie of 1 (even) and 1.5
    ("binary3p2sf", {}, "rne", 1.25, 0x02),  # 0, 0.5, 1, 1.5: tie of 1 (code 2) and 1.5 (code 3)
    ("binary3p2sf", {}, "rne", 1.75, 0x03),  # the tie past 1.5 saturates
]


@pytest.mark.parametrize(("name", "options", "rounding", "x", "code"), HAND)
def test_hand_worked_conversions(name, options, rounding, x, code):
    fmt = get_format(name, **options)
    for dtype in (np.float64, np.float32):  # the general and the fast float32 path
        xs = np.array([x], dtype)
        assert xs[0] == x
        assert lowbit.encode(xs, fmt, rounding=rounding).codes.tolist() == [code]
    assert ref.encode_value(fmt, x, rounding) == code


# Results the rounding mode does not change: the report's Saturate passes +-Inf through in the
# extended domain in every mode, and the finite domain saturates in every mode.
SPECIALS = [
    # (format, options, input, expected code)
    ("binary8p3se", {}, np.inf, 0x7F),
    ("binary8p3se", {}, -np.inf, 0xFF),
    ("binary8p3se", {"overflow": "saturate"}, np.inf, 0x7F),  # SatPropagate: Inf stays Inf
    ("binary8p3se", {}, np.nan, 0x80),
    ("binary8p3se", {}, -np.nan, 0x80),  # one NaN, whatever the sign
    ("binary8p3se", {}, -0.0, 0x00),
    ("binary8p3sf", {}, np.inf, 0x7F),  # finite domain: max
    ("binary8p3sf", {}, -np.inf, 0xFF),
    ("binary8p3sf", {}, -0.0, 0x00),
    ("binary8p3ue", {}, np.inf, 0xFE),
    ("binary8p3ue", {}, -np.inf, 0x00),  # negative into unsigned: 0
    ("binary8p3ue", {}, np.nan, 0xFF),
    ("binary8p3ue", {}, -0.0, 0x00),
    ("binary8p3uf", {}, np.inf, 0xFE),  # NaN is 0xFF, max 0xFE
    ("binary8p3uf", {}, -np.inf, 0x00),
]


@pytest.mark.parametrize(("name", "options", "x", "code"), SPECIALS)
@pytest.mark.parametrize("rounding", ["rne", "rtz", "rna", "rup", "rdown"])
def test_special_inputs(name, options, x, code, rounding):
    fmt = get_format(name, **options)
    for dtype in (np.float64, np.float32):
        assert lowbit.encode(np.array([x], dtype), fmt, rounding=rounding).codes.tolist() == [code]
    assert ref.encode_value(fmt, x, rounding) == code


# SatFinite (overflow="saturate_finite"): finite overflow and +-Inf input both give +-max, in every
# rounding mode (toward zero already saturates). binary8p4se: max 224 at 0x7E, -max at 0xFE.
# binary8p3ue: 6 exponent bits, bias 32, max 1.01b * 2^31 at 0xFD (0xFE is +Inf, 0xFF NaN).
# binary8p1se: max 2^62 at 0x7E. float8_e5m2 (IEEE, the option is general): max 57344 at 0x7B.
SAT_FINITE = [
    # (format, input, expected code)
    ("binary8p4se", np.inf, 0x7E),
    ("binary8p4se", -np.inf, 0xFE),
    ("binary8p4se", 1e30, 0x7E),
    ("binary8p4se", -1e30, 0xFE),
    ("binary8p4se", 240.0, 0x7E),  # the value Inf's code would have: beyond max in every mode
    ("binary8p4se", -256.0, 0xFE),
    ("binary8p4se", np.nan, 0x80),  # NaN stays NaN
    ("binary8p4se", 224.0, 0x7E),  # max itself is exact
    ("binary8p4se", 1.0, 0x40),
    ("binary8p3ue", np.inf, 0xFD),
    ("binary8p3ue", 1e30, 0xFD),
    ("binary8p3ue", -np.inf, 0x00),  # negative into unsigned: 0
    ("binary8p1se", np.inf, 0x7E),
    ("binary8p1se", -np.inf, 0xFE),
    ("binary8p1se", 2.0**64, 0x7E),
    ("float8_e5m2", np.inf, 0x7B),
    ("float8_e5m2", -np.inf, 0xFB),
    ("float8_e5m2", 1e30, 0x7B),
]


@pytest.mark.parametrize(("name", "x", "code"), SAT_FINITE)
@pytest.mark.parametrize("rounding", ["rne", "rtz", "rna", "rup", "rdown", "stochastic"])
def test_sat_finite_saturates_overflow_and_inf_in_every_mode(name, x, code, rounding):
    fmt = get_format(name, overflow="saturate_finite")
    assert fmt.overflow is Overflow.SATURATE_FINITE and not fmt.keeps_inf
    for dtype in (np.float64, np.float32):  # the general and (rne, float32) the fast path
        assert lowbit.encode(np.array([x], dtype), fmt, rounding=rounding, seed=5).codes.tolist() == [code]
    u = Fraction(1, 2) if rounding == "stochastic" else None
    assert ref.encode_value(fmt, x, rounding, u=u) == code


def test_sat_finite_quantizes_inf_to_max_on_every_path():
    fmt = get_format("binary8p4se", overflow="saturate_finite")
    for dtype in (np.float32, np.float64):
        x = np.array([np.inf, -np.inf, 1e30, -0.0], dtype)
        for rounding in ("rne", "rup", "stochastic"):
            got = lowbit.quantize(x, fmt, rounding=rounding, seed=1)
            np.testing.assert_array_equal(got, np.array([224.0, -224.0, 224.0, 0.0], dtype))
    # decoding is unchanged: the Inf codes still read as Inf
    assert lowbit.decode(np.array([0x7F, 0xFF], np.uint8), fmt).tolist() == [np.inf, -np.inf]


def test_the_report_modes_map_to_overflow():
    # +Inf and a finite overflow (1e30) into binary8p4se under each of the report's three modes
    expected = {"OvfInf": [0x7F, 0x7F], "SatPropagate": [0x7F, 0x7E], "SatFinite": [0x7E, 0x7E]}
    assert set(p3109.REPORT_OVERFLOW) == set(expected)
    for mode, codes in expected.items():
        fmt = p3109.binary(8, 4, overflow=p3109.REPORT_OVERFLOW[mode])
        assert lowbit.encode(np.array([np.inf, 1e30]), fmt).codes.tolist() == codes


def test_sat_finite_without_inf_is_stored_as_saturate():
    # no Inf to keep: the same conversion as SATURATE, and the same format
    for name in ("binary8p4sf", "binary8p3uf", "float8_e4m3fn", "float4_e2m1fn"):
        assert get_format(name, overflow="saturate_finite") == get_format(name, overflow="saturate")
    assert FloatFormat(5, 2, overflow="SATURATE_FINITE").overflow is Overflow.SATURATE_FINITE
    with pytest.raises(ValueError, match="overflow must be one of.*'saturate_finite'"):
        get_format("binary8p4se", overflow="satfinite")


def test_nan_overflow_option_sends_inf_to_nan():
    fmt = get_format("binary8p3sf", overflow="nan")
    assert lowbit.encode(np.array([np.inf, -np.inf, 1e30]), fmt).codes.tolist() == [0x80] * 3


@pytest.mark.parametrize("name", EXHAUSTIVE)
def test_every_code_round_trips(name):
    fmt = get_format(name)
    codes = np.arange(fmt.n_codes).astype(fmt.code_dtype)
    for rounding in ("rne", "rtz", "rup", "rdown"):
        for dtype in (np.float32, np.float64):
            values = lowbit.decode(codes, fmt).astype(dtype)
            np.testing.assert_array_equal(lowbit.encode(values, fmt, rounding=rounding).codes, codes)


def _grid(fmt) -> np.ndarray:
    """Every finite value, the midpoints of neighbours and of the largest value and the next
    (overflow), a little either side of each, far overflow, Inf, and both signs."""
    vals = np.unique(fmt.values[np.isfinite(fmt.values)])
    step = 2.0 ** (np.floor(np.log2(vals[-1])) - fmt.man_bits)
    ext = np.concatenate([vals, [vals[-1] + step]])
    mids = (ext[1:] + ext[:-1]) / 2
    x = np.concatenate([vals, mids, mids * (1 + 2.0**-20), mids * (1 - 2.0**-20), [3 * vals[-1], 1e300, np.inf]])
    return np.concatenate([x, -x])


ORACLE = ["binary8p3se", "binary8p1se", "binary8p1ue", "binary8p4sf", "binary8p3uf", "binary5p2se", "binary3p3ue"]


@pytest.mark.parametrize("name", ORACLE)
@pytest.mark.parametrize("overflow", [None, "saturate", "saturate_finite", "nan"])
def test_kernels_equal_the_oracle_in_every_deterministic_mode(name, overflow):
    fmt = get_format(name) if overflow is None else get_format(name, overflow=overflow)
    x = _grid(fmt)
    for rounding in ("rne", "rtz", "rna", "rup", "rdown"):
        expected = [ref.encode_value(fmt, float(v), rounding) for v in x]
        assert lowbit.encode(x, fmt, rounding=rounding).codes.tolist() == expected
        f32 = x[(np.abs(x) < 3e38) | np.isinf(x)].astype(np.float32)
        expected32 = [ref.encode_value(fmt, float(v), rounding) for v in f32]
        assert lowbit.encode(f32, fmt, rounding=rounding).codes.tolist() == expected32


@pytest.mark.parametrize("name", ["binary8p3se", "binary8p1ue", "binary4p2sf"])
def test_stochastic_rounding_picks_a_neighbour(name):
    fmt = get_format(name)
    x = _grid(fmt)
    x = x[np.abs(x) <= fmt.max]
    got = lowbit.quantize(x, fmt, rounding="stochastic", seed=3).astype(np.float64)
    down, up = (lowbit.quantize(x, fmt, rounding=m).astype(np.float64) for m in ("rdown", "rup"))
    assert ((got == down) | (got == up)).all()
    assert (got != down).any() and (got != up).any()


def test_unknown_k_and_p_name_the_format_and_the_allowed_values():
    for name in ("binary8p8se", "binary2p1se", "binary8p9uf", "binary17p3sf", "binary12p1se"):
        with pytest.raises(ValueError, match=rf"{name}.*K from 3 to 16; P from 1 to K-1 \(signed\)"):
            get_format(name)
    assert get_format("binary8p8uf").max == 1 + 126 / 128  # unsigned allows P = K: code 0xFE, 0xFF is NaN
    assert get_format("binary11p1se").bias == 512  # the widest signed P = 1 that fits float64


def test_options_replace_fields_and_the_report_name_is_kept_without_them():
    fmt = get_format("Binary8p3se")
    assert fmt.name == "binary8p3se" and fmt.overflow is Overflow.INF
    assert get_format("binary8p3sf").overflow is Overflow.SATURATE
    sat = get_format("binary8p3se", overflow="saturate")
    assert sat.overflow is Overflow.SATURATE and sat.name is None and sat.values.tobytes() == fmt.values.tobytes()
    with pytest.raises(TypeError, match="binary8p3se"):
        get_format("binary8p3se", saturate=True)


def test_the_cost_model_prices_p3109_formats_by_their_fields():
    p4, p3 = (lowbit.costmodel.estimate(n, n) for n in ("binary8p4se", "binary8p3se"))
    assert p4.area_um2 > 0 and p4.memory.a_bits_per_element == 8
    lanes = {c.name: c.area_um2 for c in p4.components}["lane multipliers"]
    assert lanes > {c.name: c.area_um2 for c in p3.components}["lane multipliers"]  # 4 x 4 against 3 x 3
    assert lowbit.costmodel.estimate("binary8p4sf", "binary8p4sf").area_um2 == pytest.approx(
        lowbit.costmodel.estimate("float8_e4m3fnuz", "float8_e4m3fnuz").area_um2
    )
    assert lowbit.costmodel.estimate("binary4p2sf", "binary4p2sf").memory.a_bits_per_element == 4


@pytest.mark.parametrize(
    ("name", "options"),
    [("binary8p3se", {}), ("binary8p3se", {"overflow": "saturate_finite"}), ("binary8p1ue", {}), ("binary4p2sf", {})],
)
def test_cuda_simulator_equals_cpu(name, options):
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("no CUDA device and the CUDA simulator is off")
    fmt = get_format(name, **options)
    x = _grid(fmt)[::5].astype(np.float32)
    x = np.concatenate([x[np.isfinite(x)], np.array([np.inf, -np.inf, np.nan, -0.0], np.float32)])
    for rounding in ("rne", "rdown", "stochastic"):
        cpu, gpu = (lowbit.encode(x, fmt, rounding=rounding, seed=7, target=t).codes for t in ("cpu", "cuda"))
        np.testing.assert_array_equal(cpu, gpu)
        cpu, gpu = (lowbit.quantize(x, fmt, rounding=rounding, seed=7, target=t) for t in ("cpu", "cuda"))
        np.testing.assert_array_equal(cpu.view(np.uint32), gpu.view(np.uint32))


def test_block_elements_keep_sat_finite():
    # saturating() gives block elements and scales saturating overflow. SatFinite already
    # saturates, Inf input included: the format stays as it is (not SatPropagate, which keeps Inf)
    fmt = get_format("binary8p4se", overflow="saturate_finite")
    assert saturating(fmt) is fmt
    ovf = get_format("binary8p4se")
    assert saturating(ovf).overflow is Overflow.SATURATE and saturating(ovf).values.tobytes() == ovf.values.tobytes()
