"""Codebooks lowbit computes rather than stores: Lloyd-Max grids of N(0, 1), AF4, BOF4 and BOF4-S.

The slow ones (a second or more each) are kept on disk between runs by `disk_cache`.
"""

from __future__ import annotations

import numpy as np

from ..lazy import scipy_optimize, scipy_special
from .disk_cache import cached_codebook


def lloyd_max_normal(n: int, tol: float = 1e-12, max_iter: int = 100_000) -> tuple[float, ...]:
    """The n-level MSE-optimal scalar quantizer of a standard normal (Lloyd-Max), ascending.

    Lloyd's iteration with exact cell centroids: the mean of N(0,1) on [a, b] is
    (phi(a) - phi(b)) / (Phi(b) - Phi(a)). Starts from the normal quantiles of the cell centres.
    Cached on disk (`disk_cache`).
    """
    params = {"n": n, "tol": tol, "max_iter": max_iter}
    return cached_codebook("lloyd_max_normal", params, lambda: _lloyd_max_normal(n, tol, max_iter))


def _lloyd_max_normal(n: int, tol: float, max_iter: int) -> tuple[float, ...]:
    ndtr, ndtri = scipy_special().ndtr, scipy_special().ndtri
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


class _BlockNormal:
    """x = w / max|w| over a block of B iid N(0, 1) values, for the elements that are not the max:
    given M = m, w is N(0, 1) truncated to [-m, m]; M has density B (2 Phi(m) - 1)^(B-1) 2 phi(m).
    Integrals over m use Gauss-Legendre on (0, 12]."""

    def __init__(self, block: int, nodes: int = 600) -> None:
        ndtr = scipy_special().ndtr
        if block < 2:
            raise ValueError(f"block must be at least 2, got {block}")
        g, wg = np.polynomial.legendre.leggauss(nodes)
        self.m = 6.0 * (g + 1.0)
        phi = np.exp(-0.5 * self.m**2) / np.sqrt(2 * np.pi)
        den = 2 * ndtr(self.m) - 1
        self.weight = 6.0 * wg * block * den ** (block - 1) * 2 * phi / den  # f_M(m) / (2 Phi(m) - 1)
        self._ndtr = ndtr

    def cdf(self, x: float) -> float:
        return float(np.sum(self.weight * (self._ndtr(x * self.m) - self._ndtr(-self.m))))

    def inverse_cdf(self, p: float) -> float:
        brentq = scipy_optimize().brentq
        if p >= self.cdf(1.0):
            return 1.0
        return brentq(lambda x: self.cdf(x) - p, -1.0, 1.0, xtol=1e-15)

    def moments(self, a: float, b: float, power: int) -> tuple[float, float]:
        """(E[m^power; a < x < b], E[m^power x; a < x < b])."""
        mp = self.m**power
        mass = np.sum(self.weight * mp * (self._ndtr(b * self.m) - self._ndtr(a * self.m)))
        pa, pb = (np.exp(-0.5 * (t * self.m) ** 2) / np.sqrt(2 * np.pi) for t in (a, b))
        first = np.sum(self.weight * mp * (pa - pb) / self.m)
        return float(mass), float(first)


def _median_chain(dist: _BlockNormal, t: float, n: int) -> float:
    """Last code of Yoshida's chain: c_1 = t is the median of [0, b_1]; each next code mirrors the
    previous one about the boundary that makes it its cell's median."""
    c, b = t, 0.0
    for _ in range(n):
        b = dist.inverse_cdf(2 * dist.cdf(c) - dist.cdf(b))
        c = 2 * b - c
    return c


def _shoot(dist: _BlockNormal, n: int) -> list[float]:
    brentq = scipy_optimize().brentq
    # The chain's end grows with t until it passes 1: bracket the first crossing, then solve.
    lo, t = 1e-5, 1e-5
    while _median_chain(dist, t, n) < 1.0:
        lo, t = t, t * 1.05
    t = brentq(lambda s: _median_chain(dist, s, n) - 1.0, lo, t, xtol=1e-15)
    codes, c, b = [t], t, 0.0
    for _ in range(n - 1):
        b = dist.inverse_cdf(2 * dist.cdf(c) - dist.cdf(b))
        c = 2 * b - c
        codes.append(c)
    return codes


def af4(block: int) -> tuple[float, ...]:
    """AbnormalFloat-4 for blocks of `block` elements (Yoshida 2023): {-1, 6 negative codes, 0,
    7 positive codes, 1}, each free code the median of its cell under the distribution of
    w / absmax (an L1-optimal code with -1, 0 and 1 fixed), found by a median chain from 0.
    Cached on disk (`disk_cache`)."""
    return cached_codebook("af4", {"block": block}, lambda: _af4(block))


def _af4(block: int) -> tuple[float, ...]:
    dist = _BlockNormal(block)
    pos, neg = _shoot(dist, 7), _shoot(dist, 6)
    return tuple(sorted([-1.0, *(-v for v in neg), 0.0, *pos, 1.0]))


def _lloyd(block: int, error: str, signed: bool) -> tuple[float, ...]:
    """`_lloyd_iterate`, cached on disk (`disk_cache`)."""
    construction = f"bof4{'s' if signed else ''}_{error}"
    return cached_codebook(construction, {"block": block}, lambda: _lloyd_iterate(block, error, signed))


def _lloyd_iterate(block: int, error: str, signed: bool, iters: int = 500, tol: float = 1e-12) -> tuple[float, ...]:
    """Lloyd's algorithm for the reconstruction error of w = absmax * code under the distribution
    of x = w / absmax (`_BlockNormal`). MSE: each free code is E[m^2 x | cell] / E[m^2 | cell];
    MAE: the median of its cell weighted by m. 0 and 1 are fixed, and -1 too unless `signed`
    (BOF4-S normalises by the signed absmax, so the block's extreme is always +1 and the lowest
    code is free)."""
    brentq = scipy_optimize().brentq
    dist = _BlockNormal(block)
    codes = np.array(af4(block))
    fixed = np.isin(codes, (0.0, 1.0) if signed else (-1.0, 0.0, 1.0))
    for _ in range(iters):
        edges = np.concatenate([[-1.0], (codes[1:] + codes[:-1]) / 2, [1.0]])
        new = codes.copy()
        for k in np.nonzero(~fixed)[0]:
            a, b = edges[k], edges[k + 1]
            if error == "mse":
                mass, first = dist.moments(a, b, 2)
                new[k] = first / mass
            else:
                half = dist.moments(a, b, 1)[0] / 2
                new[k] = brentq(lambda c, a=a, half=half: dist.moments(a, c, 1)[0] - half, a, b, xtol=1e-15)
        if np.max(np.abs(new - codes)) < tol:
            codes = new
            break
        codes = new
    return tuple(float(v) for v in codes)


def bof4_mse(block: int) -> tuple[float, ...]:
    """BOF4 (MSE) for blocks of `block` elements (Blumenberg et al. 2025): -1, 0 and 1 fixed,
    6 negative and 7 positive codes free (NF4's layout), optimal for the squared weight error."""
    return _lloyd(block, "mse", signed=False)


def bof4_mae(block: int) -> tuple[float, ...]:
    """BOF4 (MAE): as `bof4_mse` for the absolute weight error."""
    return _lloyd(block, "mae", signed=False)


def bof4s_mse(block: int) -> tuple[float, ...]:
    """BOF4-S (MSE): for the signed-absmax normalisation; 0 and 1 fixed, 7 negative codes (the
    lowest free) and 7 positive ones."""
    return _lloyd(block, "mse", signed=True)


def bof4s_mae(block: int) -> tuple[float, ...]:
    """BOF4-S (MAE)."""
    return _lloyd(block, "mae", signed=True)
