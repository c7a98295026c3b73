"""INT against FP by crest factor, the way Chen et al. (INT v.s. FP, arXiv 2510.25602) compare them.

Two measures of where FP starts to beat INT on a block-scaled format:

- By sampling (`crest_factor_crossover`): Gaussian blocks, each quantized with the INT and the FP
  format through `lowbit.quantize`, binned by their crest factor (max |x| over the block's rms).
  Each bin's QSNR is -10 log10(sum of squared errors / sum of squared values) over its blocks;
  the crossover is where QSNR_INT - QSNR_FP changes sign from positive to negative.
- By the paper's closed form (`model_qsnr_int`, `model_qsnr_fp`, `model_crossover`): a block of
  N(0, sigma^2) values whose largest magnitude is kappa sigma, its scale rho times the ideal one.

A block of n values has a crest factor of at most sqrt(n) (all of its energy in one element), so
sampled blocks of 32 stop at 5.66 and rarely pass 3.7; the closed form takes any kappa.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..formats import FloatFormat, IntFormat, ScaledFormat, ScaleRule, get_format, parse_enum
from ..lazy import scipy_special
from ..simulator import quantize

CHUNK = 1 << 16  # blocks per quantize call: a chunk of 32-element float32 blocks is 8 MiB
BIN_WIDTH = 0.05  # default bin width, in crest-factor units
MIN_BLOCKS = 500  # bins with fewer blocks are left out: their QSNR is mostly sampling noise
RHO_E8M0 = 1.5  # the paper's scale overhead of a rounded-up power-of-two scale (rho in [1, 2))
RHO_E4M3 = 1.05  # the paper's scale overhead of an E4M3 scale (within one E4M3 step of exact)
MODEL_KAPPA = np.linspace(1.0, 12.0, 22001)  # crest factors the closed-form crossover is sought on


class Generator(enum.Enum):
    """How blocks are drawn.

    GAUSSIAN:   independent N(0, 1) values; crest factors fall where they fall (block 32: 1.6 to 3.7).
    SCALED_MAX: as GAUSSIAN, then the largest magnitude is rescaled so that the block's crest factor
                is a target drawn uniformly from [1, 0.98 sqrt(block)]: every reachable crest factor
                gets blocks, and the rest of the block stays Gaussian.
    """

    GAUSSIAN = "gaussian"
    SCALED_MAX = "scaled_max"


@dataclass(frozen=True, eq=False)
class CrossoverResult:
    """A sampled crossover.

    table:     one row per bin: crest_lo, crest_hi (the bin's edges), crest_factor (the mean crest
               factor of its blocks), blocks, qsnr_int_db, qsnr_fp_db, int_minus_fp_db (dB).
    crossover: the crest factor where INT stops leading FP; NaN when the sign never changes from
               positive to negative over the bins.
    """

    int_format: str
    fp_format: str
    block: int
    generator: Generator
    table: pd.DataFrame
    crossover: float


def crest_factors(blocks: np.ndarray) -> np.ndarray:
    """Per row of `blocks` (n_blocks, block): max |x| over the row's rms, in float64 (NaN for a
    row of zeros)."""
    x = np.asarray(blocks, dtype=np.float64)
    rms = np.sqrt(np.mean(x * x, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(x), axis=-1) / rms


def qsnr_db(err_sq: np.ndarray | float, sig_sq: np.ndarray | float) -> np.ndarray | float:
    """-10 log10(sum err^2 / sum x^2), from the two sums (dB)."""
    with np.errstate(divide="ignore"):  # no error: +inf dB
        return -10.0 * np.log10(np.asarray(err_sq, dtype=np.float64) / np.asarray(sig_sq, dtype=np.float64))


def bin_edges(bins: int | Sequence[float] | None, block: int) -> np.ndarray:
    """Bin edges: a given increasing sequence, `bins` equal bins over [1, sqrt(block)], or (None)
    bins of BIN_WIDTH over that range."""
    top = math.sqrt(block)
    if bins is None:
        return np.append(np.arange(1.0, top, BIN_WIDTH), top)
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive count or a sequence of edges, got {bins}")
        return np.linspace(1.0, top, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not np.all(np.diff(edges) > 0) or not np.all(np.isfinite(edges)):
        raise ValueError(f"bins must be at least two increasing finite edges, got {bins!r}")
    return edges


def binned_qsnr(
    crest: np.ndarray,
    err_int: np.ndarray,
    err_fp: np.ndarray,
    signal: np.ndarray,
    edges: np.ndarray,
    min_blocks: int = MIN_BLOCKS,
) -> pd.DataFrame:
    """QSNR per crest-factor bin from per-block sums (squared errors of each format, squared
    values). A block falls in the bin [lo, hi); bins with fewer than `min_blocks` blocks are left
    out. Columns as `CrossoverResult.table`."""
    crest = np.asarray(crest, dtype=np.float64)
    which = np.searchsorted(edges, crest, side="right") - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    n = len(edges) - 1

    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(which[inside], weights=np.asarray(values, dtype=np.float64)[inside], minlength=n)

    count = np.bincount(which[inside], minlength=n)
    keep = count >= max(min_blocks, 1)
    ei, ef, s, c = sums(err_int)[keep], sums(err_fp)[keep], sums(signal)[keep], sums(crest)[keep]
    table = pd.DataFrame(
        {
            "crest_lo": edges[:-1][keep],
            "crest_hi": edges[1:][keep],
            "crest_factor": c / count[keep],
            "blocks": count[keep],
            "qsnr_int_db": qsnr_db(ei, s),
            "qsnr_fp_db": qsnr_db(ef, s),
        }
    )
    table["int_minus_fp_db"] = table["qsnr_int_db"] - table["qsnr_fp_db"]
    return table


def find_crossover(crest: Sequence[float], int_minus_fp: Sequence[float]) -> float:
    """The crest factor where `int_minus_fp` first goes from >= 0 to < 0, by linear interpolation
    between the two points around the change; NaN when it never does."""
    x = np.asarray(crest, dtype=np.float64)
    d = np.asarray(int_minus_fp, dtype=np.float64)
    for i in range(1, len(x)):
        if d[i - 1] >= 0 > d[i]:
            return float(x[i - 1] + (x[i] - x[i - 1]) * d[i - 1] / (d[i - 1] - d[i]))
    return float("nan")


def _scale_max_to(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rescale each row's largest magnitude m so that the row's crest factor is `target`:
    m^2 n = target^2 (m^2 + S), S the sum of squares of the others, so m = target sqrt(S / (n - target^2))."""
    n = x.shape[-1]
    rows = np.arange(len(x))
    top = np.argmax(np.abs(x), axis=-1)
    rest = np.sum(x * x, axis=-1) - x[rows, top] ** 2
    x[rows, top] = np.copysign(target * np.sqrt(rest / (n - target * target)), x[rows, top])
    return x


def _draw(rng: np.random.Generator, generator: Generator, n: int, block: int) -> np.ndarray:
    """`n` blocks by `generator`, each times 2^u (u uniform on [0, 1)): a power-of-two scale's
    overhead rho depends on where the block's max falls between two powers of two, and the paper's
    rho is an average over that position, which the factor spreads evenly."""
    x = rng.standard_normal((n, block))
    if generator is Generator.SCALED_MAX:
        x = _scale_max_to(x, rng.uniform(1.0, 0.98 * math.sqrt(block), n))
    return (x * np.exp2(rng.random((n, 1)))).astype(np.float32)


def _block_of(fmt: ScaledFormat, name: str, block: int | None) -> ScaledFormat:
    if not isinstance(fmt, ScaledFormat) or not fmt.block:
        raise TypeError(f"{name} must be a block-scaled format with a fixed block, got {fmt!r}")
    return fmt if block is None else get_format(fmt, block=block)


def _square_sums(x: np.ndarray, fmt: ScaledFormat) -> np.ndarray:
    err = quantize(x, fmt, axis=-1).astype(np.float64) - x
    return np.sum(err * err, axis=-1)


def crest_factor_crossover(
    int_format: str | ScaledFormat,
    fp_format: str | ScaledFormat,
    *,
    block: int | None = None,
    n_blocks: int = 1 << 20,
    bins: int | Sequence[float] | None = None,
    seed: int = 0,
    generator: Generator | str = Generator.GAUSSIAN,
    min_blocks: int = MIN_BLOCKS,
    progress: bool = False,
) -> CrossoverResult:
    """QSNR of an INT and an FP block format per crest-factor bin of seeded random blocks, and the
    crest factor where FP starts to beat INT.

    int_format, fp_format: block-scaled format names or specs with the same block length.
    block:      overrides both formats' block length; None keeps theirs.
    n_blocks:   blocks drawn (each `block` values, float32), in chunks of CHUNK.
    bins:       crest-factor bin edges, a count of equal bins over [1, sqrt(block)], or None (width
                BIN_WIDTH); see `bin_edges`.
    seed:       the NumPy generator's seed: the same seed gives the same table.
    generator:  'gaussian' or 'scaled_max' (see `Generator`).
    min_blocks: bins with fewer blocks are left out of the table.
    progress:   show a progress bar over the chunks.
    """
    fi = _block_of(get_format(int_format), "int_format", block)
    ff = _block_of(get_format(fp_format), "fp_format", block)
    if fi.block != ff.block:
        raise ValueError(f"int_format and fp_format must share a block length, got {fi.block} and {ff.block}")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    gen = parse_enum(Generator, generator, "generator")
    rng = np.random.default_rng(seed)
    parts = []
    for start in tqdm(range(0, n_blocks, CHUNK), desc="crest factor crossover", unit="chunk", disable=not progress):
        x = _draw(rng, gen, min(CHUNK, n_blocks - start), fi.block)
        x64 = x.astype(np.float64)
        parts.append((crest_factors(x), _square_sums(x, fi), _square_sums(x, ff), np.sum(x64 * x64, axis=-1)))
    crest, err_int, err_fp, signal = (np.concatenate(p) for p in zip(*parts, strict=True))
    table = binned_qsnr(crest, err_int, err_fp, signal, bin_edges(bins, fi.block), min_blocks)
    return CrossoverResult(
        int_format=fi.name or fi.describe(),
        fp_format=ff.name or ff.describe(),
        block=fi.block,
        generator=gen,
        table=table,
        crossover=find_crossover(table["crest_factor"], table["int_minus_fp_db"]),
    )


def model_qsnr_int(
    kappa, bits: int, *, rho: float, block: int | None = None, levels: float | None = None
) -> np.ndarray:
    """The paper's QSNR (dB) of a `bits`-bit INT block at crest factor `kappa`: uniform rounding
    noise of step rho kappa sigma / levels over N(0, sigma^2) values, so the relative error is
    (rho kappa)^2 / (12 levels^2). `levels` defaults to the paper's 2^(bits-1) (the symmetric
    range's 2^(bits-1) - 1 is the exact one). With `block` (an NV block, whose scale maps the max
    exactly) the max's share 1/block of the error is removed."""
    q = 2.0 ** (bits - 1) if levels is None else float(levels)
    rel = (rho * np.asarray(kappa, dtype=np.float64)) ** 2 / (12.0 * q * q)
    if block is not None:
        rel = rel * (1.0 - 1.0 / block)
    return -10.0 * np.log10(rel)


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def model_qsnr_fp(kappa, element: FloatFormat, *, rho: float, block: int | None = None) -> np.ndarray:
    """The paper's QSNR (dB) of a block of FP `element` values at crest factor `kappa`.

    With the scale mapping kappa sigma to max / rho, values of magnitude below the smallest
    subnormal's half-way (t0 sigma) flush to zero (error: their whole energy), values between t0 and
    the smallest normal (t1 sigma) see the subnormal step (uniform noise), and normal values a
    relative error of 2^(-2M) / 24 (M mantissa bits). t0 = rho kappa 2^(-B-M) / max and
    t1 = rho kappa 2^(1-B) / max, B the exponent bias; each share is a Gaussian integral. With
    `block` (NV) the max, which maps exactly, leaves the normal share (kappa^2 / block)."""
    ndtr = scipy_special().ndtr
    k = np.asarray(kappa, dtype=np.float64)
    m, b, qmax = element.man_bits, element.bias, float(element.max)
    s = rho * k / qmax
    t0, t1 = s * 2.0 ** (-b - m), s * 2.0 ** (1 - b)
    p_sub = 2.0 * (ndtr(t1) - ndtr(t0))  # probability of the subnormal range
    w_zero = 2.0 * ndtr(t0) - 1.0 - 2.0 * t0 * _phi(t0)  # E[x^2; |x| < t0] / sigma^2
    w_norm = 2.0 * (t1 * _phi(t1) + 1.0 - ndtr(t1))  # E[x^2; |x| > t1] / sigma^2
    if block is not None:
        w_norm = np.maximum(0.0, w_norm - k * k / block)
    sub_step_sq = 2.0 ** (2.0 * (1 - b - m)) / (qmax * qmax)  # (subnormal step / (rho kappa sigma))^2
    rel = w_norm / (24.0 * 4.0**m) + sub_step_sq / 12.0 * (rho * k) ** 2 * p_sub + w_zero
    return -10.0 * np.log10(rel)


def model_crossover(
    bits: int,
    element: FloatFormat,
    *,
    rho: float,
    block: int | None = None,
    levels: float | None = None,
    kappa: np.ndarray = MODEL_KAPPA,
) -> float:
    """The crest factor where the closed-form INT QSNR falls below the FP one (see `find_crossover`)."""
    diff = model_qsnr_int(kappa, bits, rho=rho, block=block, levels=levels) - model_qsnr_fp(
        kappa, element, rho=rho, block=block
    )
    return find_crossover(kappa, diff)


@dataclass(frozen=True)
class PaperPair:
    """One of the paper's INT/FP pairs: the FP format (catalog name) and the INT element that takes
    its place, with the same block, scale and scale rule; `rule` replaces the rule when given.

    rho:       the closed form's scale overhead (RHO_E8M0 or RHO_E4M3).
    exact_max: the scale maps each block's max exactly (an NV format's E4M3 scale), which the
               closed form counts by the block length.
    paper:     the paper's crossover crest factor.
    """

    label: str
    fp_format: str
    int_element: IntFormat
    rho: float
    exact_max: bool
    paper: float
    rule: ScaleRule | None = None

    def formats(self, rule: ScaleRule | str | None = None) -> tuple[ScaledFormat, ScaledFormat]:
        """(INT format, FP format), with scale rule `rule` (default: the pair's, else the catalog's)."""
        rule = self.rule if rule is None else rule
        fp = get_format(self.fp_format) if rule is None else get_format(self.fp_format, rule=rule)
        return get_format(fp, element=self.int_element), fp

    def model(self, levels: float | None = None) -> float:
        """The closed-form crossover; `levels` as `model_qsnr_int`."""
        fmt = get_format(self.fp_format)
        block = fmt.block if self.exact_max else None
        return model_crossover(self.int_element.bits, fmt.element, rho=self.rho, block=block, levels=levels)


# The paper rounds an E8M0 scale up (no value clips; lowbit's RCEIL rule) and gives INT the
# symmetric range; NV formats keep their E4M3 absmax scale.
PAPER_PAIRS = (
    PaperPair("MX 8-bit", "mxfp8_e4m3", IntFormat(8, symmetric=True), RHO_E8M0, False, 7.546, ScaleRule.RCEIL),
    PaperPair("MX 6-bit", "mxfp6_e2m3", IntFormat(6, symmetric=True), RHO_E8M0, False, 1.959, ScaleRule.RCEIL),
    PaperPair("MX 4-bit", "mxfp4", IntFormat(4, symmetric=True), RHO_E8M0, False, 2.042, ScaleRule.RCEIL),
    PaperPair("NV 4-bit", "nvfp4", IntFormat(4, symmetric=True), RHO_E4M3, True, 2.39),
)
