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

Range diagnostics take a `TensorCase` (the tensor as the format's quantizer sees it, after the point's
Hadamard transform, and the format) and read `lowbit.diagnose` (its docstring defines each), under
the point's rounding, seed and sr_bits:
  saturated_fraction, flushed_fraction, subnormal_fraction   shares (0 to 1) of the elements
  code_entropy_bits, scale_entropy_bits   Shannon entropy of the element and scale codes (bits)
  scale_code_mismatch     share (0 to 1) of blocks whose scale code differs from the one the same
                format under the OCP MX rule 'ocp_floor' picks (`lowbit.compare`); NaN unless the
                format has a power-of-two scale rule
  scale_rule_qsnr_delta_db  QSNR of the format minus that of its 'ocp_floor' sibling (dB), both
                rounded to nearest; NaN as above
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..formats import ScaledFormat, ScaleRule
from ..simulator import Comparison, Diagnosis, MatmulError, compare, diagnose, hadamard

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


@dataclass(frozen=True)
class TensorCase:
    """A tensor point as its quantizer sees it: x (float32, after the point's Hadamard transform),
    the format, and the rounding mode, seed and random bits of stochastic rounding (the point's
    own, so that the diagnosis is of the codes its quantizer gives); its diagnosis and scale-rule
    comparison are computed once, when a metric first asks."""

    x: np.ndarray
    format: object
    rounding: str = "rne"
    seed: int | None = None
    sr_bits: int | None = None

    @cached_property
    def diagnosis(self) -> Diagnosis:
        return diagnose(self.x, self.format, rounding=self.rounding, seed=self.seed, sr_bits=self.sr_bits)

    @cached_property
    def against_ocp_floor(self) -> Comparison | None:
        """The format against its 'ocp_floor' sibling, or None for a format without a power-of-two rule."""
        fmt = self.format
        if not isinstance(fmt, ScaledFormat) or not fmt.rule.power_of_two:
            return None
        return compare(self.x, replace(fmt, rule=ScaleRule.OCP_FLOOR), fmt)


def tensor_case(x: np.ndarray, spec, fmt) -> TensorCase:
    """The TensorCase of a study point: x through the point's Hadamard transform (spec.hadamard,
    spec.hadamard_seed) if any, with its rounding, seed and sr_bits (a lowbit.study.schema.FormatSpec)."""
    if spec.hadamard:
        x = hadamard(x, spec.hadamard, seed=spec.hadamard_seed)
    return TensorCase(np.asarray(x, np.float32), fmt, spec.rounding, spec.seed, spec.sr_bits)


def saturated_fraction(case: TensorCase) -> float:
    return case.diagnosis.saturated_fraction


def flushed_fraction(case: TensorCase) -> float:
    return case.diagnosis.flushed_fraction


def subnormal_fraction(case: TensorCase) -> float:
    return case.diagnosis.subnormal_fraction


def code_entropy_bits(case: TensorCase) -> float:
    return case.diagnosis.code_entropy_bits


def scale_entropy_bits(case: TensorCase) -> float:
    return case.diagnosis.scale_entropy_bits


def scale_code_mismatch(case: TensorCase) -> float:
    c = case.against_ocp_floor
    return float("nan") if c is None else c.differing_fraction


def scale_rule_qsnr_delta_db(case: TensorCase) -> float:
    c = case.against_ocp_floor
    return float("nan") if c is None else c.qsnr_delta_db
