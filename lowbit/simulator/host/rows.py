"""What the row kernels of block formats take and give: the rounding of elements, and the
blocks that come back (values, codes, scales)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels.dispatch import Target
from ..kernels.rounding import Rounding


@dataclass(frozen=True)
class Blocks:
    """The result of quantizing rows: values, element codes (or None), scale values per block
    (blocks, scales_per_block), and the tensor scale (decode direction, or None)."""

    values: np.ndarray
    codes: np.ndarray | None
    scales: np.ndarray
    tensor_scale: np.float32 | None
    # double quantization: (scale codes, absmax per group of scales, offset)
    scale_state: tuple | None = None
    # shared micro-exponents: the shift of each sub-block (blocks, sub-blocks), uint8
    micro: np.ndarray | None = None


@dataclass(frozen=True)
class ElementRounding:
    """How elements are rounded: the mode, the stochastic seed, and the target of the element
    kernels (scales are computed on the host for every target). Stochastic rounding takes sr_bits
    random bits per element (0: 62, the rule without sr_bits); random_bits, where given, holds
    each element's random number in the order of the values rounded (the rows, for block formats)."""

    mode: Rounding = Rounding.RNE
    seed: int = 0
    target: Target = Target.CPU
    sr_bits: int = 0
    random_bits: np.ndarray | None = field(default=None, compare=False)
