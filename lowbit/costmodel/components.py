"""The component library: each component as counts of cells (structure only; costs come from
`cells.py`). Widths are in bits. Every function returns a `Counts`, which adds and scales."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .cells import Cell, CellCost


@dataclass(frozen=True)
class Counts:
    """How many of each cell a circuit holds (fractional counts are averages)."""

    cells: Mapping[Cell, float] = field(default_factory=dict)

    def __add__(self, other: Counts) -> Counts:
        out = dict(self.cells)
        for cell, n in other.cells.items():
            out[cell] = out.get(cell, 0.0) + n
        return Counts(out)

    def __mul__(self, k: float) -> Counts:
        return Counts({cell: n * k for cell, n in self.cells.items()})

    __rmul__ = __mul__

    def area_um2(self, costs: Mapping[Cell, CellCost]) -> float:
        """Area of the circuit (um^2) with the given cell costs."""
        return sum(n * costs[cell].area_um2 for cell, n in self.cells.items())

    def energy_pj(self, costs: Mapping[Cell, CellCost]) -> float:
        """Energy of one operation of the circuit (pJ), every cell switching once."""
        return sum(n * costs[cell].energy_pj for cell, n in self.cells.items())


NOTHING = Counts()


def _one(cell: Cell, n: float) -> Counts:
    return Counts({cell: float(n)}) if n > 0 else NOTHING


def gates(n: float) -> Counts:
    """n plain logic gates (NAND2 equivalents): sign handling, sticky ORs, selects of single bits."""
    return _one(Cell.GATE, n)


def log2_ceil(n: float) -> int:
    """ceil(log2(n)), at least 1 for n > 1 (0 otherwise): the stages of a shifter over n positions."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 0


def multiplier(a: int, b: int) -> Counts:
    """An array multiplier of an a-bit by a b-bit operand: a x b partial-product cells."""
    return _one(Cell.MULTIPLIER_CELL, a * b)


def adder(width: float, prefix: bool = False) -> Counts:
    """A ripple-carry adder of `width` bits, or a parallel-prefix one (Sklansky: width/2 x log2(width)
    prefix cells of two gates each on top of the bit adders)."""
    counts = _one(Cell.ADDER_BIT, width)
    if prefix:
        counts += _one(Cell.GATE, width * log2_ceil(width))
    return counts


def barrel_shifter(width: float, positions: float) -> Counts:
    """Shifts a `width`-bit word by up to `positions`: width x log2(positions) 2:1 mux bits."""
    return _one(Cell.MUX_BIT, width * log2_ceil(positions))


def aligner(width: float) -> Counts:
    """Aligns a product into a `width`-bit fixed-point field: width x log2(width) mux bits, as Chen
    et al. (2025) Table 6 count it (the log is not rounded up there)."""
    return _one(Cell.MUX_BIT, width * math.log2(width)) if width > 1 else NOTHING


def leading_zero_counter(width: float) -> Counts:
    """A tree of OR gates and position muxes: about two gates per bit."""
    return _one(Cell.GATE, 2 * width)


def comparator(width: float) -> Counts:
    """A magnitude comparator of two `width`-bit words."""
    return _one(Cell.COMPARE_BIT, width)


def register(width: float) -> Counts:
    """`width` flip-flops."""
    return _one(Cell.REGISTER_BIT, width)


def mux(width: float, inputs: int = 2) -> Counts:
    """Selects one of `inputs` words of `width` bits: (inputs - 1) 2:1 mux bits per bit."""
    return _one(Cell.MUX_BIT, width * (inputs - 1))


def lookup_table(entries: int, width: int) -> Counts:
    """A programmable table of `entries` words (registers) and the mux tree that reads one."""
    return register(entries * width) + mux(width, entries)


def conditional_negate(width: float, zero: bool) -> Counts:
    """Passes, negates (XOR and increment) or, for ternary, zeroes a `width`-bit operand: the
    multiplier of a sign-only format."""
    counts = _one(Cell.GATE, width) + _one(Cell.ADDER_BIT, width / 2)
    return counts + _one(Cell.GATE, width) if zero else counts


def float_adder(exp_bits: int, man_bits: int, addend_bits: int) -> Counts:
    """A floating-point adder of an (exp_bits, man_bits) accumulator and an addend of `addend_bits`
    significand bits, with its result register: exponent difference, swap, alignment, the wide add,
    leading-zero count, normalisation, rounding and exponent update."""
    w = max(man_bits + 1, addend_bits) + 3  # guard, round and sticky bits
    counts = adder(exp_bits + 1) + mux(w) + barrel_shifter(w, w) + adder(w)
    counts += leading_zero_counter(w) + barrel_shifter(w, w) + adder((man_bits + 1) / 2) + adder(exp_bits)
    return counts + register(1 + exp_bits + man_bits)


def float_multiplier(exp_bits: int, a_sig: int, b_sig: int) -> Counts:
    """A floating-point multiplier of a_sig- by b_sig-bit significands: the array, the exponent add,
    and a one-position normalising shift."""
    return multiplier(a_sig, b_sig) + adder(exp_bits + 1) + mux(a_sig + b_sig)
