"""Codebooks lowbit computes rather than stores: Lloyd-Max grids of N(0, 1)."""

from __future__ import annotations

import numpy as np


def lloyd_max_normal(n: int, tol: float = 1e-12, max_iter: int = 100_000) -> tuple[float, ...]:
    """The n-level MSE-optimal scalar quantizer of a standard normal (Lloyd-Max), ascending.

    Lloyd's iteration with exact cell centroids: the mean of N(0,1) on [a, b] is
    (phi(a) - phi(b)) / (Phi(b) - Phi(a)). Starts from the normal quantiles of the cell centres.
    """
    from scipy.special import ndtr, ndtri

    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    pts = ndtri((np.arange(n) + 0.5) / n)
    for _ in range(max_iter):
        edges = np.concatenate([[-np.inf], (pts[1:] + pts[:-1]) / 2, [np.inf]])
        pdf = np.exp(-0.5 * edges**2) / np.sqrt(2 * np.pi)
        mass = ndtr(edges[1:]) - ndtr(edges[:-1])
        new = (pdf[:-1] - pdf[1:]) / mass
        new = (new - new[::-1]) / 2  # the grid is symmetric; keep it so against rounding drift
        if np.max(np.abs(new - pts)) < tol:
            pts = new
            break
        pts = new
    return tuple(float(v) for v in pts)


def dynamic_map_signed(max_exponent_bits: int = 7) -> tuple[float, ...]:
    """bitsandbytes' signed 8-bit dynamic map (Dettmers, '8-bit approximations', 2016), which
    QLoRA uses to double-quantize NF4's absmax values: for i = 0..6, the midpoints of
    2^i + 1 points evenly spaced on [0.1, 1], times 10^(i-6), with both signs; plus 0 and 1.
    Computed in float64 and rounded to float32 once (bitsandbytes rounds its float32 linspace
    steps, so single values may differ from its table in the last bit)."""
    data = [0.0, 1.0]
    for i in range(max_exponent_bits):
        bounds = np.linspace(0.1, 1.0, 2**i + 1)
        means = (bounds[:-1] + bounds[1:]) / 2 * 10.0 ** (i - (max_exponent_bits - 1))
        data += [*means, *(-means)]
    return tuple(float(v) for v in np.unique(np.asarray(data, dtype=np.float32)))
