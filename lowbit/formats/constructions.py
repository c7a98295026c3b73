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
