"""Uniform grids with a gain and an offset: the element rule of ParetoQ's SEQ quantizers and of
sign-based binary formats, written as data.

    k     = clip(rint(v * gain - offset), kmin, kmax)   (float32, round half to even)
    value = (k + offset) / gain                          (float32)

ParetoQ ternary SEQ is gain 1.5, offset 0, k in [-1, 1]; ParetoQ 2-bit SEQ is gain 2, offset 0.5,
k in [-2, 1]. (sign(v) is not a grid: v * gain - offset rounds away tiny |v|; it is the codebook
{-1, +1}.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .spec import ElementStorage, Family, _require_real, _set_int


@dataclass(frozen=True)
class GridFormat(ElementStorage):
    """Values (k + offset) / gain for integers k in [kmin, kmax]; see the module docstring.

    range: the |v| that a block's absmax maps to under the absmax rule (ParetoQ divides by
    max|w|, so 1); defaults to the largest |value|.
    """

    gain: float
    offset: float = 0.0
    kmin: int = -1
    kmax: int = 1
    range: float | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for arg in ("gain", "offset"):
            object.__setattr__(self, arg, _require_real(getattr(self, arg), arg))
        if self.gain <= 0:
            raise ValueError(f"gain must be positive, got {self.gain}")
        _set_int(self, "kmin", -(1 << 15), 1 << 15)
        _set_int(self, "kmax", self.kmin + 1, self.kmin + (1 << 16) - 1)
        if self.range is not None:
            object.__setattr__(self, "range", _require_real(self.range, "range"))
            if not self.range > 0:
                raise ValueError(f"range must be positive, got {self.range}")

    family = Family.CODEBOOK

    @property
    def n_codes(self) -> int:
        return self.kmax - self.kmin + 1

    @property
    def bits(self) -> int:
        return max(1, (self.n_codes - 1).bit_length())

    @property
    def code_values(self) -> np.ndarray:
        """The value each code decodes to (the float32 table), as float64."""
        return self.table.astype(np.float64)

    @cached_property
    def table(self) -> np.ndarray:
        """Value of each code (k - kmin), float32 as the rounding computes it."""
        k = np.arange(self.kmin, self.kmax + 1, dtype=np.float32)
        t = (k + np.float32(self.offset)) / np.float32(self.gain)
        t.setflags(write=False)
        return t

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.table)

    @property
    def max(self) -> float:
        if self.range is not None:
            return float(self.range)
        return float(np.max(np.abs(self.table)))

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def round(self, v: np.ndarray) -> np.ndarray:
        """Codes (k - kmin) of float32 elements v (NaN gives code 0; its block is NaN anyway)."""
        t = np.rint(v * np.float32(self.gain) - np.float32(self.offset))
        t = np.nan_to_num(t, nan=self.kmin, posinf=self.kmax, neginf=self.kmin)
        return (np.clip(t, self.kmin, self.kmax) - self.kmin).astype(np.int64)

    def describe(self) -> str:
        return f"grid (k + {self.offset:g}) / {self.gain:g}, k in [{self.kmin}, {self.kmax}]"
