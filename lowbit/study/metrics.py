"""Accuracy metrics of a quantized tensor against the original, and of an emulated GEMM.

x is the original, q the quantized-and-dequantized tensor (same shape), in float64:
  mse           mean((q - x)^2)
  relative_mse  mse / mean(x^2)
  qsnr_db       -10 log10(relative_mse) (dB)
  mae           mean(|q - x|)
  max_abs_error max(|q - x|)
  kl            KL(P || Q) of histograms of x and q over 256 equal bins spanning x's range (Q's empty
                bins get 1e-10), in nats
  gemm_relative_error  ||C - A @ B||_F / ||A @ B||_F, C the emulated product, A @ B in float64
"""

from __future__ import annotations

import numpy as np

KL_BINS = 256


def tensor_metrics(x: np.ndarray, q: np.ndarray, names) -> dict[str, float]:
    x = np.asarray(x, np.float64)
    q = np.asarray(q, np.float64)
    err = q - x
    mse = float(np.mean(err * err))
    power = float(np.mean(x * x))
    rel = mse / power if power > 0 else float("nan")
    values = {
        "mse": lambda: mse,
        "relative_mse": lambda: rel,
        "qsnr_db": lambda: float(-10 * np.log10(rel)) if rel > 0 else float("inf"),
        "mae": lambda: float(np.mean(np.abs(err))),
        "max_abs_error": lambda: float(np.max(np.abs(err))),
        "kl": lambda: kl_divergence(x, q),
    }
    return {name: values[name]() for name in names}


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


def gemm_relative_error(a: np.ndarray, b: np.ndarray, fmt, accumulator: str, chunk) -> float:
    from ..simulator import matmul

    got = matmul(a, b, fmt, fmt, accumulator, chunk=chunk)
    ref = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300))
