"""Cost model: area and energy of MAC and dot-product units, scale handling and memory traffic.

`estimate(a_format, b_format, ...)` gives a unit's area (um^2), energy per MAC (pJ), the breakdown by
component and the operands' memory energy, at a technology node. `engine_cost(arch, instruction)` gives
the same for one fused dot-product-add datapath of a tensor-core or matrix-core instruction. The
component library counts cells (`components`), whose area and energy are calibrated to Aladdin's 40 nm
figures (`cells`, data/) and scaled across nodes (`technology`). `validation` compares the model with
published figures. `encode_cost(format)` gives the area and energy per element of the unit that encodes
float32 values into a format (`encoder`): the encode side, where `estimate` is the MAC side.
"""

from .encoder import EncodeComponent, EncodeCost, encode_cost
from .engines import EngineCost, engine_cost
from .estimate import Component, Estimate, Memory, estimate
from .technology import NAMED_NODES, Node, get_node

__all__ = [
    "NAMED_NODES",
    "Component",
    "EncodeComponent",
    "EncodeCost",
    "EngineCost",
    "Estimate",
    "Memory",
    "Node",
    "encode_cost",
    "engine_cost",
    "estimate",
    "get_node",
]
