"""Rounding modes: parsed once at the API edge, passed to kernels as small integers."""

from __future__ import annotations

import enum

from . import scalar


class Rounding(enum.IntEnum):
    """How a value between two representable neighbours is rounded.

    RNE: nearest, ties by the format's tie rule (IEEE ties-to-even by default).
    RTZ: toward zero. RNA: nearest, ties away from zero. RUP: toward +Inf. RDOWN: toward -Inf.
    STOCHASTIC: up with probability equal to the distance from the lower neighbour, in units
    of the gap (62 random bits per element, counter-based: reproducible for a given seed).
    """

    RNE = scalar.RNE
    RTZ = scalar.RTZ
    RNA = scalar.RNA
    RUP = scalar.RUP
    RDOWN = scalar.RDOWN
    STOCHASTIC = scalar.STOCHASTIC

    @classmethod
    def parse(cls, value: Rounding | str) -> Rounding:
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.lower() in cls.__members__.keys() | {m.name.lower() for m in cls}:
            return cls[value.upper()]
        allowed = ", ".join(repr(m.name.lower()) for m in cls)
        raise ValueError(f"rounding must be one of {allowed}, got {value!r}")
