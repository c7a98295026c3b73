"""Accumulator formats: what a dot-product unit adds its partial sums into.

Accumulators are wider than element formats (FP32, a 1-8-13 "fp22", INT32), so they have a spec
of their own: a float with `exp_bits` and `man_bits` (round to nearest even, IEEE-style bias),
a two's-complement integer of `bits`, or `exact` (no rounding at all; a reference, not hardware).
Names are parsed once, at the edge, by `get_accumulator`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .enums import parse_enum
from .spec import _set_int


class AccumulatorKind(enum.Enum):
    FLOAT = "float"
    INT = "int"
    EXACT = "exact"


@dataclass(frozen=True)
class Accumulator:
    """kind FLOAT: exp_bits and man_bits (1 sign bit besides); INT: bits (two's complement)."""

    kind: AccumulatorKind
    exp_bits: int = 0
    man_bits: int = 0
    bits: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_enum(AccumulatorKind, self.kind, "kind"))
        for argument in ("exp_bits", "man_bits", "bits"):
            _set_int(self, argument, 0, 1 << 10)
        if self.kind is AccumulatorKind.FLOAT:
            if not (2 <= self.exp_bits <= 11 and 1 <= self.man_bits <= 52):
                raise ValueError(
                    f"accumulator: a float accumulator needs 2 to 11 exponent bits and 1 to 52 mantissa bits, "
                    f"got e{self.exp_bits}m{self.man_bits}"
                )
            object.__setattr__(self, "bits", 1 + self.exp_bits + self.man_bits)
        elif self.kind is AccumulatorKind.INT and not 2 <= self.bits <= 128:
            raise ValueError(f"accumulator: an integer accumulator needs 2 to 128 bits, got {self.bits}")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind is AccumulatorKind.FLOAT:
            return f"e{self.exp_bits}m{self.man_bits}"
        return f"int{self.bits}" if self.kind is AccumulatorKind.INT else "exact"


ACCUMULATORS = {
    "fp32": Accumulator(AccumulatorKind.FLOAT, 8, 23, name="fp32"),
    "fp16": Accumulator(AccumulatorKind.FLOAT, 5, 10, name="fp16"),
    "bf16": Accumulator(AccumulatorKind.FLOAT, 8, 7, name="bf16"),
    # The 1-8-13 accumulation that FP8 tensor cores behave like (about 22 bits).
    "fp22": Accumulator(AccumulatorKind.FLOAT, 8, 13, name="fp22"),
    "tf32": Accumulator(AccumulatorKind.FLOAT, 8, 10, name="tf32"),
    "fp64": Accumulator(AccumulatorKind.FLOAT, 11, 52, name="fp64"),
    "int32": Accumulator(AccumulatorKind.INT, bits=32, name="int32"),
    "exact": Accumulator(AccumulatorKind.EXACT, name="exact"),
}
_ALIASES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def get_accumulator(acc: str | Accumulator) -> Accumulator:
    """An Accumulator from a name: fp32, fp16, bf16, fp22 (1-8-13), tf32, fp64, eXmY, intN, exact."""
    if isinstance(acc, Accumulator):
        return acc
    if not isinstance(acc, str):
        raise TypeError(f"accumulator must be a name or an Accumulator, got {type(acc).__name__}")
    key = _ALIASES.get(acc.lower(), acc.lower())
    if key in ACCUMULATORS:
        return ACCUMULATORS[key]
    if m := re.fullmatch(r"e(\d+)m(\d+)", key):
        return Accumulator(AccumulatorKind.FLOAT, int(m[1]), int(m[2]), name=key)
    if m := re.fullmatch(r"int(\d+)", key):
        return Accumulator(AccumulatorKind.INT, bits=int(m[1]), name=key)
    raise ValueError(
        f"accumulator: unknown name {acc!r}; use one of {', '.join(ACCUMULATORS)}, an 'eXmY' float or an 'intN'"
    )
