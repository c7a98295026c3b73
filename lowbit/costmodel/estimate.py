"""`estimate`: area and energy of the unit that multiplies two formats, with its breakdown and the
memory energy of the operands."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..formats import get_accumulator, parse_enum
from .cells import MultiplierEnergy, cell_costs, gate_equivalents
from .data import load
from .operands import Operand, operand
from .technology import Node, energy_factor, get_node
from .units import Geometry, Part, dot_product_unit, mac_unit


@dataclass(frozen=True)
class Component:
    """One part of the unit: area (um^2, all its copies) and energy per MAC (pJ)."""

    name: str
    area_um2: float
    energy_pj_per_mac: float


def _per_mac(c) -> float:
    return c.energy_pj_per_mac


def breakdown_lines(components, area_um2: float, energy=_per_mac, energy_label: str = "pJ/MAC") -> list[str]:
    """A cost breakdown as text lines: each component's area (um^2), energy (`energy(c)`, in the
    unit `energy_label` names; default pJ per MAC) and share of the area."""
    width = max(len(c.name) for c in components)
    lines = [f"{'component'.ljust(width)}  {'area um^2':>10}  {energy_label:>9}  {'area %':>6}"]
    for c in components:
        share = 100 * c.area_um2 / area_um2 if area_um2 else 0.0
        lines.append(f"{c.name.ljust(width)}  {c.area_um2:10.2f}  {energy(c):9.5f}  {share:6.1f}")
    return lines


@dataclass(frozen=True)
class Memory:
    """Energy of moving one element of each operand (scales included, from bits per element):
    from a 32 KiB SRAM bank and from DRAM, in pJ per element."""

    a_bits_per_element: float
    b_bits_per_element: float
    sram_pj_per_bit: float
    dram_pj_per_bit: float

    @property
    def a_sram_pj(self) -> float:
        return self.a_bits_per_element * self.sram_pj_per_bit

    @property
    def b_sram_pj(self) -> float:
        return self.b_bits_per_element * self.sram_pj_per_bit

    @property
    def a_dram_pj(self) -> float:
        return self.a_bits_per_element * self.dram_pj_per_bit

    @property
    def b_dram_pj(self) -> float:
        return self.b_bits_per_element * self.dram_pj_per_bit


@dataclass(frozen=True)
class Estimate:
    """The cost of a unit that multiplies a_format by b_format.

    area_um2:          the unit's area (um^2).
    energy_pj_per_mac: energy per multiply-accumulate (pJ), scale handling and decode included.
    components:        the breakdown (their areas and energies add up to the totals).
    memory:            energy of moving the operands (pJ per element).
    """

    a_format: str
    b_format: str
    accumulator: str
    lanes: int
    node: str
    partial_sum_bits: int | None
    area_um2: float
    energy_pj_per_mac: float
    components: tuple[Component, ...]
    memory: Memory
    gate_equivalents: float

    @property
    def area_per_lane_um2(self) -> float:
        """Area per MAC per cycle (um^2): the unit's area at equal throughput."""
        return self.area_um2 / self.lanes

    def table(self) -> str:
        """A plain-text report: totals, the breakdown, memory energy."""
        cap = "none" if self.partial_sum_bits is None else f"{self.partial_sum_bits} bits"
        lines = [
            f"{self.a_format} x {self.b_format}, {self.accumulator} accumulator, {self.lanes} lanes, "
            f"{self.node}, partial sums {cap}",
            f"area {self.area_um2:.1f} um^2 ({self.gate_equivalents:.0f} GE), "
            f"{self.area_per_lane_um2:.2f} um^2 per lane; energy {self.energy_pj_per_mac:.4f} pJ per MAC",
            "",
        ]
        lines += breakdown_lines(self.components, self.area_um2)
        m = self.memory
        lines.append("")
        lines.append("memory per element:")
        for name, bits, sram, dram in (
            (self.a_format, m.a_bits_per_element, m.a_sram_pj, m.a_dram_pj),
            (self.b_format, m.b_bits_per_element, m.b_sram_pj, m.b_dram_pj),
        ):
            lines.append(f"  {name}: {bits:g} bits, SRAM {sram:.3f} pJ, DRAM {dram:.1f} pJ")
        return "\n".join(lines)


def _memory(a: Operand, b: Operand, node: Node) -> Memory:
    mem = load("horowitz_45nm")["memory"]["values"]
    sram = mem["sram_32KB"] / 64 * energy_factor(Node(45), node)
    dram = (mem["dram_low"] + mem["dram_high"]) / 2 / 64  # off-chip: not scaled with the logic node
    return Memory(a.bits_per_element, b.bits_per_element, sram, dram)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return value


def estimate(
    a_format,
    b_format,
    accumulator="fp32",
    lanes: int = 32,
    node="7nm",
    partial_sum_bits: int | None = 24,
    *,
    lane_format=None,
    decode: str = "float16",
    reuse: int = 1,
    reduction_length: int = 4096,
    multiplier_energy: str = "horowitz_ratio",
) -> Estimate:
    """Area and energy of the unit that multiplies `a_format` by `b_format`.

    a_format, b_format: format names or specs (every catalog format; see `lowbit.formats.catalog`).
    accumulator:      fp32, fp16, bf16, fp22 (1-8-13), tf32, eXmY or intN.
    lanes:            k, the products summed per cycle: k >= 2 is a dot-product unit, 1 a MAC or FMA.
    node:             technology node: '45nm', '40nm', '16nm', '7nm' (or any size from 7 to 130 nm).
    partial_sum_bits: width cap of the fixed-point adder tree (bits); None for the full width.
    lane_format:      size the lanes for this wider format and run a_format and b_format on them
                      (an FP8 lane running FP4); None sizes them for the operands.
    decode:           the float format codebook values decode to (through a lookup table).
    reuse:            MACs served by each decoded codebook value (its decode is amortised over them).
    reduction_length: elements per output that per-channel and per-tensor scales are spread over.
    multiplier_energy: 'horowitz_ratio' (default) or 'aladdin'; see data/aladdin_40nm.yaml.
    Areas are um^2 and energies pJ, at `node`.
    """
    lanes = _check_int(lanes, "lanes", 1)
    reuse = _check_int(reuse, "reuse", 1)
    reduction_length = _check_int(reduction_length, "reduction_length", 1)
    if partial_sum_bits is not None:
        partial_sum_bits = _check_int(partial_sum_bits, "partial_sum_bits", 2)
    acc = get_accumulator(accumulator)
    tech = get_node(node)
    energy_source = parse_enum(MultiplierEnergy, multiplier_energy, "multiplier_energy")
    a = operand(a_format, decode, reduction_length)
    b = operand(b_format, decode, reduction_length)
    la, lb = (a, b) if lane_format is None else _lanes_for(lane_format, a, b, decode, reduction_length)
    geo = Geometry(lanes, partial_sum_bits, reduction_length, reuse)
    parts = (dot_product_unit if lanes > 1 else mac_unit)(la, lb, acc, geo)
    costs = cell_costs(tech, energy_source)
    components = tuple(_component(p, costs) for p in parts if p.counts.cells)
    area = sum(c.area_um2 for c in components)
    return Estimate(
        a_format=a.name,
        b_format=b.name,
        accumulator=acc.label,
        lanes=lanes,
        node=tech.label,
        partial_sum_bits=partial_sum_bits,
        area_um2=area,
        energy_pj_per_mac=sum(c.energy_pj_per_mac for c in components),
        components=components,
        memory=_memory(a, b, tech),
        gate_equivalents=gate_equivalents(area, tech),
    )


def _component(part: Part, costs) -> Component:
    energy = 0.0 if math.isinf(part.macs_per_operation) else part.counts.energy_pj(costs) / part.macs_per_operation
    return Component(part.name, part.counts.area_um2(costs) * part.instances, energy)


def _lanes_for(lane_format, a: Operand, b: Operand, decode: str, reduction_length: int) -> tuple[Operand, Operand]:
    """Operands resized to a wider lane format (keeping their scales and tables)."""
    lane = operand(lane_format, decode, reduction_length)
    for op in (a, b):
        if op.sig_bits > lane.sig_bits or op.exp_bits > lane.exp_bits:
            raise ValueError(
                f"lane_format: {lane.name!r} lanes ({lane.sig_bits}-bit significand, {lane.exp_bits} exponent bits) "
                f"cannot run {op.name!r} ({op.sig_bits}-bit significand, {op.exp_bits} exponent bits)"
            )
    resized = [
        Operand(**{**op.__dict__, "sig_bits": lane.sig_bits, "exp_bits": lane.exp_bits, "sign_only": False})
        for op in (a, b)
    ]
    return resized[0], resized[1]
