"""Rounding modes: parsed once at the API edge, passed to kernels as small integers."""

from __future__ import annotations

import enum

from . import scalar


class Rounding(enum.IntEnum):
    """How a value between two representable neighbours is rounded.

    RNE: nearest, ties by the format's tie rule (IEEE ties-to-even by default).
    RTZ: toward zero. RNA: nearest, ties away from zero. RUP: toward +Inf. RDOWN: toward -Inf.
    STOCHASTIC: up with probability equal to the distance from the lower neighbour, in units
    of the gap (62 random bits per element, counter-based: reproducible for a given seed). With
    sr_bits = r the remainder is cut to r bits first and an r-bit random number decides (see
    `scalar.round_shift`): up with probability floor(f * 2^r) / 2^r for a fraction f of the gap.
    """

    RNE = scalar.RNE
    RTZ = scalar.RTZ
    RNA = scalar.RNA
    RUP = scalar.RUP
    RDOWN = scalar.RDOWN
    STOCHASTIC = scalar.STOCHASTIC
