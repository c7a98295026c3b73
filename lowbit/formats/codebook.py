"""Codebook formats: a sorted list of values, nearest value wins (ties to the lower code), or
one of the two neighbours under stochastic rounding.

The code of a value is its index in ascending order (bitsandbytes' NF4 layout: code 7 is 0.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .spec import ElementStorage, Family


@dataclass(frozen=True)
class CodebookFormat(ElementStorage):
    """A format whose codes index `values` (ascending, finite, distinct).

    Rounding ('rne', the default) is to the nearest value; an input exactly halfway between two
    neighbours takes the lower code (bitsandbytes' rule), except at a midpoint of exactly 0, where
    +0 goes up and -0 down. rounding='stochastic' (with or without sr_bits) picks one of the two
    neighbouring values: the one farther from zero with probability f, cut to sr_bits bits, where
    f is the input's distance from the one nearer zero in units of their gap
    (lowbit.simulator.host.stochastic). Other modes are refused. Inputs beyond the ends clip to
    the end values. NaN stays NaN in `quantize`.
    source: where the values come from (a citation or the construction), shown in tables.
    """

    values: tuple[float, ...]
    source: str = ""
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        vals = tuple(float(v) for v in self.values)
        if len(vals) < 2 or len(vals) > 1 << 16:
            raise ValueError(f"values: a codebook needs 2 to 65536 values, got {len(vals)}")
        if not all(math.isfinite(v) for v in vals):
            raise ValueError("values: every codebook value must be finite")
        if any(b <= a for a, b in zip(vals, vals[1:], strict=False)):
            raise ValueError("values must be strictly ascending (the code of a value is its index)")
        object.__setattr__(self, "values", vals)

    family = Family.CODEBOOK

    @property
    def n_codes(self) -> int:
        return len(self.values)

    @property
    def bits(self) -> int:
        return max(1, (self.n_codes - 1).bit_length())

    @property
    def max(self) -> float:
        """Largest magnitude: the value a block scale maps the block's absmax to."""
        return max(abs(self.values[0]), abs(self.values[-1]))

    @property
    def min(self) -> float:
        return self.values[0]

    @property
    def signed(self) -> bool:
        return self.values[0] < 0

    @property
    def has_nan(self) -> bool:
        return False

    @property
    def code_values(self) -> np.ndarray:
        """The value each code decodes to (the float32 table), as float64."""
        return self.table.astype(np.float64)

    @cached_property
    def table(self) -> np.ndarray:
        """The values as float32, the precision the kernels compute in."""
        t = np.asarray(self.values, dtype=np.float32)
        t.setflags(write=False)
        return t

    @cached_property
    def midpoints(self) -> np.ndarray:
        """Exact midpoints of neighbouring float32 values (float64 holds them exactly)."""
        t = self.table.astype(np.float64)
        m = (t[1:] + t[:-1]) / 2
        m.setflags(write=False)
        return m

    @property
    def zero_midpoint(self) -> int | None:
        """Index of a midpoint that is exactly 0, or None. An input of 0 there is a tie, which the
        sign of the zero decides (+0 up, -0 down), so that a value that underflowed to zero when
        scaled keeps its sign."""
        hits = np.nonzero(self.midpoints == 0)[0]
        return int(hits[0]) if hits.size else None

    @cached_property
    def thresholds(self) -> np.ndarray:
        """For each midpoint m, the smallest float32 above it: for float32 v, m < v exactly when
        threshold <= v, so kernels compare in float32 and still round as the exact midpoints say."""
        m = self.midpoints
        t = m.astype(np.float32)
        t = np.where(t.astype(np.float64) > m, t, np.nextafter(t, np.float32(np.inf))).astype(np.float32)
        t.setflags(write=False)
        return t

    @cached_property
    def search_thresholds(self) -> np.ndarray:
        """`thresholds` padded with +Inf to a multiple of 4 entries (at least 2^k - 1), for
        kernels that compare four thresholds per pass or search in k steps."""
        size = (1 << (self.n_codes - 1).bit_length()) - 1
        size += (-size) % 4
        t = np.full(size, np.inf, dtype=np.float32)
        t[: self.n_codes - 1] = self.thresholds
        t.setflags(write=False)
        return t

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def describe(self) -> str:
        return f"codebook of {self.n_codes} values in [{self.values[0]:g}, {self.values[-1]:g}]"


@dataclass(frozen=True)
class VectorCodebookFormat(ElementStorage):
    """A codebook of points in `dim` dimensions: consecutive groups of `dim` elements along the
    axis are replaced by the nearest point (squared distance, ties to the lower code). One code
    per group; an axis whose length is not a multiple of `dim` is zero-padded."""

    points: tuple[tuple[float, ...], ...]
    source: str = ""
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[0] < 2 or pts.shape[1] < 1 or pts.shape[0] > 1 << 16:
            raise ValueError(f"points must be 2 to 65536 points of one dimension, got shape {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("points must be finite")
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in pts))

    family = Family.CODEBOOK
    axis = -1

    @property
    def dim(self) -> int:
        return len(self.points[0])

    @property
    def block(self) -> int:
        return self.dim

    @property
    def n_codes(self) -> int:
        return len(self.points)

    @property
    def bits(self) -> int:
        """Bits of one code (one code per `dim` elements)."""
        return max(1, (self.n_codes - 1).bit_length())

    @property
    def elements_per_code(self) -> int:
        return self.dim

    @property
    def max(self) -> float:
        return float(np.max(np.abs(self.points)))

    @property
    def code_values(self) -> np.ndarray:
        """The point each code decodes to, shape (n_codes, dim), as float64."""
        return self.table.astype(np.float64)

    @cached_property
    def table(self) -> np.ndarray:
        t = np.asarray(self.points, dtype=np.float32)
        t.setflags(write=False)
        return t

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    def nearest(self, groups: np.ndarray) -> np.ndarray:
        """Codes of float32 groups, shape (n, dim): the least squared distance in float64, ties to
        the lowest code. Far from the grid, |g - p|^2 loses the differences between points to
        rounding, so such groups compare |p|^2 - 2 g.p instead (the same order, with g.p exact)."""
        g = groups.astype(np.float64)
        p = self.table.astype(np.float64)
        d = np.zeros((g.shape[0], p.shape[0]))
        for j in range(self.dim):
            d += (g[:, j : j + 1] - p[None, :, j]) ** 2
        far = np.max(np.abs(g), axis=1) > 2.0**20 * max(self.max, 1e-30)
        if far.any():
            d[far] = np.sum(p**2, axis=1)[None, :] - 2 * (g[far] @ p.T)
        return np.argmin(d, axis=1)

    def describe(self) -> str:
        return f"{self.dim}-D codebook of {self.n_codes} points, {self.bits_per_element():g} bits per element"
