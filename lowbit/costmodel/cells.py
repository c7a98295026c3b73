"""The cells every component is built from, with their area and switching energy at a node.

A cell's cost is one Aladdin 40 nm operation divided into its cells (data/aladdin_40nm.yaml), then
scaled to the node (technology.py). Gate equivalents (GE) are reported in units of one `GATE` cell
(a 2-input logic gate of Aladdin's bitwise operation).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from .data import load
from .technology import Node, area_factor, energy_factor


class Cell(enum.Enum):
    ADDER_BIT = "adder_bit"  # one bit of an adder (a full adder)
    MULTIPLIER_CELL = "multiplier_cell"  # one partial-product cell of an array multiplier
    MUX_BIT = "mux_bit"  # one 2:1 multiplexer bit (barrel-shifter stages, selects)
    COMPARE_BIT = "compare_bit"  # one bit of a magnitude comparator
    GATE = "gate"  # one 2-input logic gate (XOR, AND, OR)
    REGISTER_BIT = "register_bit"  # one flip-flop


class MultiplierEnergy(enum.Enum):
    """Where the multiplier cell's energy comes from (see data/aladdin_40nm.yaml)."""

    HOROWITZ_RATIO = "horowitz_ratio"  # the adder bit's energy times Horowitz's per-cell ratio (default)
    ALADDIN = "aladdin"  # Aladdin's 32-bit multiplier energy per cell


@dataclass(frozen=True)
class CellCost:
    area_um2: float  # um^2 per cell
    energy_pj: float  # pJ per cell per operation


@functools.cache
def cell_costs(node: Node, multiplier_energy: MultiplierEnergy = MultiplierEnergy.HOROWITZ_RATIO) -> dict:
    """{Cell: CellCost} at `node`."""
    data = load("aladdin_40nm")
    ops = data["operations"]
    a = area_factor(Node(data["node_nm"]), node)
    e = energy_factor(Node(data["node_nm"]), node)
    costs = {}
    for cell in Cell:
        spec = data["cells"][cell.value]
        op = ops[spec["operation"]]
        costs[cell] = CellCost(op["area_um2"] / spec["cells"] * a, op["energy_pj"] / spec["cells"] * e)
    if multiplier_energy is MultiplierEnergy.HOROWITZ_RATIO:
        rule = data["multiplier_cell_energy_per_adder_bit"]
        h = load(rule["source"])["energy"]["values"]
        (mult, mult_cells), (add, add_bits) = rule["ratio_of"]
        ratio = (h[mult] / mult_cells) / (h[add] / add_bits)
        m = costs[Cell.MULTIPLIER_CELL]
        costs[Cell.MULTIPLIER_CELL] = CellCost(m.area_um2, costs[Cell.ADDER_BIT].energy_pj * ratio)
    return costs


def gate_equivalents(area_um2: float, node: Node) -> float:
    """Area in gate equivalents: multiples of one GATE cell at the same node."""
    return area_um2 / cell_costs(node)[Cell.GATE].area_um2
