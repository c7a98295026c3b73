"""The arithmetic of the built-in accuracy metrics (lowbit.study.store names and registers them).

x is the original, q the quantized-and-dequantized tensor (same shape), in float64:
  mse           mean((q - x)^2)
  relative_mse  mse / mean(x^2)
  qsnr_db       -10 log10(relative_mse) (dB)
  mae           mean(|q - x|)
  max_abs_error max(|q - x|)
  kl            KL(P || Q) of histograms of x and q over 256 equal bins spanning x's range (Q's empty
                bins get 1e-10), in nats
  gemm_relative_error  ||C - A @ B||_F / ||A @ B||_F, C the emulated product, A @ B in float64
                (lowbit.simulator.MatmulError.relative_error)
  gemm_accumulation_error  ||C - Aq @ Bq||_F / ||Aq @ Bq||_F, Aq and Bq the quantized operands: the
                accumulation's error alone (MatmulError.relative_accumulation_error), which tells
                matrix engines apart where the formats' rounding dominates gemm_relative_error
  overflow_fraction    the share (0 to 1) of C's outputs that are Inf or NaN where the float64
                reference A @ B is finite: the accumulator (or a format) overflowed on finite inputs
"""

from __future__ import annotations

import numpy as np

from ..simulator import MatmulError

KL_BINS = 256


def mse(x: np.ndarray, q: np.ndarray) -> float:
    err = q - x
    return float(np.mean(err * err))


def relative_mse(x: np.ndarray, q: np.ndarray) -> float:
    power = float(np.mean(x * x))
    return mse(x, q) / power if power > 0 else float("nan")


def qsnr_db(x: np.ndarray, q: np.ndarray) -> float:
    rel = relative_mse(x, q)
    # an all-zero tensor (rel NaN) or an exact one (rel 0) has no noise to speak of: +inf
    return float(-10 * np.log10(rel)) if rel > 0 else float("inf")


def mae(x: np.ndarray, q: np.ndarray) -> float:
    return float(np.mean(np.abs(q - x)))


def max_abs_error(x: np.ndarray, q: np.ndarray) -> float:
    return float(np.max(np.abs(q - x)))


def kl_divergence(x: np.ndarray, q: np.ndarray) -> float:
    lo, hi = float(np.min(x)), float(np.max(x))
    if not hi > lo:
        return 0.0
    p_counts, edges = np.histogram(x, bins=KL_BINS, range=(lo, hi))
    q_counts, _ = np.histogram(np.clip(q, lo, hi), bins=edges)
    p = p_counts / p_counts.sum()
    qq = np.maximum(q_counts / max(q_counts.sum(), 1), 1e-10)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / qq[nz])))


def gemm_relative_error(err: MatmulError) -> float:
    return err.relative_error


def gemm_accumulation_error(err: MatmulError) -> float:
    return err.relative_accumulation_error


def overflow_fraction(err: MatmulError) -> float:
    result = np.asarray(err.result)
    if result.size == 0:
        return 0.0
    # a NaN or Inf input makes the reference non-finite too: propagated, not overflowed
    overflow = ~np.isfinite(result) & np.isfinite(np.asarray(err.reference))
    return float(np.count_nonzero(overflow) / result.size)
