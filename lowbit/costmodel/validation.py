"""lowbit's cost model beside published figures (data/validation.yaml): each comparison as a row
with the published value or range, lowbit's value and whether it meets the target."""

from __future__ import annotations

from dataclasses import dataclass

from .cells import cell_costs
from .components import adder, float_adder, float_multiplier, multiplier
from .data import load
from .estimate import estimate
from .technology import Node


@dataclass(frozen=True)
class Check:
    """One published figure against lowbit's: `low` <= lowbit <= `high` is the target."""

    claim: str
    source: str
    published: str
    lowbit: float
    low: float
    high: float

    @property
    def met(self) -> bool:
        return self.low <= self.lowbit <= self.high


def _chen() -> list[Check]:
    spec = load("validation")["chen2025_table5"]
    setup = spec["setup"]
    tol = spec["tolerance"]

    def unit(name: str):
        lanes = setup["nv_lanes"] if name.startswith("nv") else setup["mx_lanes"]
        return estimate(name, name, setup["accumulator"], lanes, "40nm", setup["partial_sum_bits"])

    base = unit(spec["baseline"])
    checks = []
    for name, ratios in spec["ratios"].items():
        u = unit(name)
        area = u.area_per_lane_um2 / base.area_per_lane_um2  # at equal throughput
        energy = u.energy_pj_per_mac / base.energy_pj_per_mac
        for what, value, t in (("area", area, tol["area"]), ("energy", energy, tol["energy"])):
            pub = ratios[what]
            checks.append(
                Check(
                    f"{name} / {spec['baseline']} {what} (Chen Table 5)",
                    "chen2025_table5",
                    f"{pub:g} (±{t:.0%})",
                    value,
                    pub * (1 - t),
                    pub * (1 + t),
                )
            )
    return checks


def _fp8_over_int8() -> list[Check]:
    low, high = load("validation")["vanbaalen2023"]["fp8_over_int8_mac"]
    checks = []
    # Each MAC accumulates into its own kind of accumulator of the same width.
    for fp_acc, int_acc in (("fp16", "int16"), ("fp32", "int32")):
        fp8 = estimate("float8_e4m3fn", "float8_e4m3fn", fp_acc, lanes=1, node="45nm")
        int8 = estimate("int8", "int8", int_acc, lanes=1, node="45nm")
        for what, value in (
            ("area", fp8.area_um2 / int8.area_um2),
            ("energy", fp8.energy_pj_per_mac / int8.energy_pj_per_mac),
        ):
            checks.append(
                Check(
                    f"FP8 E4M3 MAC ({fp_acc} acc) / INT8 MAC ({int_acc} acc) {what}",
                    "vanbaalen2023",
                    f"{low:g}-{high:g}",
                    value,
                    low,
                    high,
                )
            )
    return checks


def _multipliers() -> list[Check]:
    spec = load("validation")
    costs = cell_costs(Node(45))
    mul32, add32 = multiplier(32, 32), adder(32)
    low, high = spec["multiplier_over_adder_area_32bit"]["range"]
    target = spec["multiplier_energy_8_over_32bit"]
    ratio = multiplier(32, 32).energy_pj(costs) / multiplier(8, 8).energy_pj(costs)
    t = target["tolerance"]
    return [
        Check(
            "32-bit multiplier / 32-bit adder area",
            "multiplier_over_adder_area_32bit",
            f"{low:g}-{high:g}",
            mul32.area_um2(costs) / add32.area_um2(costs),
            low,
            high,
        ),
        Check(
            "32-bit / 8-bit multiplier energy",
            "multiplier_energy_8_over_32bit",
            f"about {target['target']:g}",
            ratio,
            target["target"] * (1 - t),
            target["target"] * (1 + t),
        ),
    ]


# lowbit's circuit for each of Horowitz's operations.
_HOROWITZ_CIRCUITS = {
    "int8_add": lambda: adder(8),
    "int32_add": lambda: adder(32),
    "int8_mult": lambda: multiplier(8, 8),
    "int32_mult": lambda: multiplier(32, 32),
    "fp16_add": lambda: float_adder(5, 10, 11),
    "fp32_add": lambda: float_adder(8, 23, 24),
    "fp16_mult": lambda: float_multiplier(5, 11, 11),
    "fp32_mult": lambda: float_multiplier(8, 24, 24),
}


def horowitz_table() -> str:
    """lowbit's absolute figures at 45 nm beside Horowitz's (Markdown): the calibration is Aladdin's, so
    these differ by the factor between the two published sets."""
    h = load("horowitz_45nm")
    costs = cell_costs(Node(45))
    lines = [
        "| operation | Horowitz pJ | lowbit pJ | Horowitz um^2 | lowbit um^2 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for op, circuit in _HOROWITZ_CIRCUITS.items():
        c = circuit()
        lines.append(
            f"| {op} | {h['energy']['values'][op]:g} | {c.energy_pj(costs):.3g} | "
            f"{h['area']['values'][op]:g} | {c.area_um2(costs):.0f} |"
        )
    return "\n".join(lines)


def checks() -> list[Check]:
    """Every comparison of data/validation.yaml, in order."""
    return _chen() + _fp8_over_int8() + _multipliers()


def table() -> str:
    """The comparisons as a Markdown table (the README's)."""
    lines = ["| comparison | published | lowbit | target met |", "| --- | --- | --- | --- |"]
    for c in checks():
        lines.append(f"| {c.claim} | {c.published} | {c.lowbit:.3f} | {'yes' if c.met else 'no'} |")
    return "\n".join(lines)


__all__ = ["Check", "checks", "horowitz_table", "table"]
