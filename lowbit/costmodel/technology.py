"""Technology nodes and the scaling of area and energy between them (Stillmaker & Baas 2017)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .data import load

NAMED_NODES = ("45nm", "40nm", "16nm", "7nm")


@dataclass(frozen=True)
class Node:
    """A CMOS technology node of `nm` nanometres (7 to 130)."""

    nm: float

    @property
    def label(self) -> str:
        return f"{self.nm:g}nm"


def get_node(node: str | float | Node) -> Node:
    """A Node from '7nm', '16nm', '40nm', '45nm' (or any size from 7 to 130 nm, as a number or 'Xnm')."""
    if isinstance(node, Node):
        return node
    nm = None
    if isinstance(node, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*nm\s*", node.lower())):
        nm = float(m[1])
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        nm = float(node)
    table = load("technology")["nodes_nm"]
    if nm is None or not min(table) <= nm <= max(table):
        raise ValueError(
            f"node: unknown technology node {node!r}; use one of {', '.join(NAMED_NODES)} "
            f"or any size from {min(table)} to {max(table)} nm"
        )
    return Node(nm)


def _interpolate(nm: float, values: list[float]) -> float:
    """values (one per tabulated node) at nm, linear in log(node) and log(value) between neighbours."""
    nodes = load("technology")["nodes_nm"]
    for i in range(len(nodes) - 1):
        hi, lo = nodes[i], nodes[i + 1]
        if lo <= nm <= hi:
            t = math.log(hi / nm) / math.log(hi / lo)
            return math.exp((1 - t) * math.log(values[i]) + t * math.log(values[i + 1]))
    return values[nodes.index(nm)]


def area_factor(source: Node, target: Node) -> float:
    """Area at `target` over area at `source` for the same circuit."""
    row = load("technology")["area_from_45nm"]
    return _interpolate(target.nm, row) / _interpolate(source.nm, row)


def energy_factor(source: Node, target: Node) -> float:
    """Energy per operation at `target` over that at `source`, both at the table's supply voltage."""
    tech = load("technology")
    vdd = tech["vdd"]
    per_node = [a * vdd * vdd + b * vdd + c for a, b, c in tech["energy_polynomial"]]
    return _interpolate(target.nm, per_node) / _interpolate(source.nm, per_node)
