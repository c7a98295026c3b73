"""Accumulator names parse into specs; bad names and widths get errors that name the argument."""

import pytest

from lowbit.formats.accumulator import Accumulator, AccumulatorKind, get_accumulator


@pytest.mark.parametrize(
    ("name", "kind", "exp_bits", "man_bits", "bits"),
    [
        ("fp32", AccumulatorKind.FLOAT, 8, 23, 32),
        ("float32", AccumulatorKind.FLOAT, 8, 23, 32),
        ("FP16", AccumulatorKind.FLOAT, 5, 10, 16),
        ("bf16", AccumulatorKind.FLOAT, 8, 7, 16),
        ("fp22", AccumulatorKind.FLOAT, 8, 13, 22),
        ("e6m9", AccumulatorKind.FLOAT, 6, 9, 16),
        ("int32", AccumulatorKind.INT, 0, 0, 32),
        ("int48", AccumulatorKind.INT, 0, 0, 48),
    ],
)
def test_names(name, kind, exp_bits, man_bits, bits):
    acc = get_accumulator(name)
    assert (acc.kind, acc.exp_bits, acc.man_bits, acc.bits) == (kind, exp_bits, man_bits, bits)


def test_exact_and_specs_pass_through():
    assert get_accumulator("exact").kind is AccumulatorKind.EXACT
    spec = Accumulator(AccumulatorKind.FLOAT, 4, 3)
    assert get_accumulator(spec) is spec and spec.label == "e4m3"


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        ("fp31", ValueError, "accumulator: unknown name 'fp31'"),
        ("e1m5", ValueError, "2 to 11 exponent bits"),
        ("int1", ValueError, "2 to 128 bits"),
        (32, TypeError, "accumulator must be a name"),
    ],
)
def test_bad(bad, error, match):
    with pytest.raises(error, match=match):
        get_accumulator(bad)
