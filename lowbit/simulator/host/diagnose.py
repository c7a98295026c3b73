"""Range diagnostics of a format on a tensor (`diagnose`) and the comparison of two block formats'
scales on one tensor (`compare`).

Both are built on `encode` and `decode`: the codes and values are the quantizer's own, and the
format specs say which codes are subnormal and which is the largest. Definitions (per tensor, and
per block for block-scaled formats), over the elements a block format's blocks or an element
format's elements hold, NaN and Inf left out (see `Diagnosis`):

  saturated   x beyond the range its block holds, by more than rounding explains: x >= top + (top -
              below) / 2, with top the block's largest value (decode of the element code of the
              largest finite value, with the block's scales) and below the next value under it;
              the same on the negative side. The threshold is where nearest rounding would pass
              top if the grid went on (float4_e2m1fn: 7 times the scale; int8: 127.5 steps;
              float8_e5m2: 61440, where it overflows to Inf). A tie at the threshold counts as
              saturated (float8_e4m3fn's tie at 464 is the one catalog case that rounds back to
              448, by its even rule). Rounding-independent: the same under every rounding mode.
              Only an element coded at the edge (the largest or most negative value, or Inf or
              NaN) can saturate: a block whose scale is 0 (all zero, or its scale underflowed)
              saturates nothing, its nonzero elements are flushed.
  flushed     x != 0 whose decoded value is 0.
  subnormal   element codes whose value is nonzero, finite and below the element's smallest
              normal (float elements with subnormals only: integers and codebooks have none).
  entropy     Shannon entropy, in bits, of the histogram of the codes.
  QSNR        -10 log10(sum (q - x)^2 / sum x^2), in dB; +inf where the error is zero, -inf where
              an element overflowed to Inf or NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...formats import (
    CodebookFormat,
    DoubleQuant,
    FloatFormat,
    GridFormat,
    ScaledFormat,
    TensorScale,
    VectorCodebookFormat,
    get_format,
)
from ..kernels.rounding import Rounding
from .blocks import layout
from .codec import decode, encode
from .encoded import Encoded
from .inputs import float32_host, host_float_array

MANTISSA_BINS = 16  # compare: bins of amax's mantissa over [1, 2)


@dataclass(frozen=True)
class BlockDiagnosis:
    """Per-block diagnostics of a block-scaled format, each array of the shape of `Encoded.scales`
    without its last axis of 2 (the input's shape with the block axis moved last and counted in
    blocks). Blocks holding NaN or Inf have NaN in every field; `finite` marks the others.

    saturated_fraction, flushed_fraction, subnormal_fraction: shares (0 to 1) of the block's elements.
    qsnr_db:     the block's QSNR (dB); +inf for an exact block (an all-zero one included).
    scale_codes: the block's scale codes (`Encoded.scales`, its last axis of 2 kept for asymmetric
                 formats).
    amax:        the block's largest |x| (float32, as the scale rule saw it).
    signal_power, noise_power: sum x^2 and sum (q - x)^2 over the block (float64), for the QSNR of
                 any set of blocks.
    """

    finite: np.ndarray
    saturated_fraction: np.ndarray
    flushed_fraction: np.ndarray
    subnormal_fraction: np.ndarray
    qsnr_db: np.ndarray
    scale_codes: np.ndarray
    amax: np.ndarray
    signal_power: np.ndarray
    noise_power: np.ndarray


@dataclass(frozen=True)
class Diagnosis:
    """Range diagnostics of `format` on a tensor (see the module docstring for the definitions).

    n_elements:         elements counted: those of blocks (or, for element formats, elements)
                        without NaN or Inf.
    nonfinite_fraction: share of the tensor's elements left out for NaN or Inf (a block format
                        leaves out the whole block holding one).
    saturated_fraction, flushed_fraction, subnormal_fraction: shares (0 to 1) of n_elements; NaN
                        when n_elements is 0.
    code_histogram:     counts of each element code (length: the element format's number of codes).
    scale_histogram:    counts of each scale code (length: the scale format's number of codes), each
                        block contributing its one (asymmetric: two) codes; None for element formats
                        and for exact-float32 scales (2^32 codes).
    code_entropy_bits, scale_entropy_bits: Shannon entropy of the code histograms (bits); the scale
                        entropy is NaN for element formats (no scale) and counted over the distinct
                        codes for float32 scales.
    qsnr_db:            the tensor's QSNR over n_elements (dB).
    blocks:             per-block diagnostics (`BlockDiagnosis`) of block-scaled formats; None for
                        element and codebook formats, which have no blocks.
    """

    format: object
    n_elements: int
    nonfinite_fraction: float
    saturated_fraction: float
    flushed_fraction: float
    subnormal_fraction: float
    code_histogram: np.ndarray
    scale_histogram: np.ndarray | None
    code_entropy_bits: float
    scale_entropy_bits: float
    qsnr_db: float
    blocks: BlockDiagnosis | None


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram of counts; NaN for an empty one."""
    c = np.asarray(counts, np.float64).ravel()
    total = c.sum()
    if total <= 0:
        return float("nan")
    p = c[c > 0] / total
    return float(-np.sum(p * np.log2(p)) + 0.0)


def qsnr_db(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """-10 log10(noise / signal) (dB) of summed powers; +inf where the noise is 0."""
    signal, noise = np.asarray(signal, np.float64), np.asarray(noise, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -10 * np.log10(noise / signal)
    return np.where(noise == 0, np.inf, out)


def _element_of(spec):
    return spec.element if isinstance(spec, ScaledFormat) else spec


def _edge_codes(element) -> tuple[int, int, int, int]:
    """Codes of the largest finite value, the next below it, the most negative finite value and the
    next above it."""
    v = element.code_values
    finite = np.isfinite(v)
    top, bottom = np.max(v[finite]), np.min(v[finite])

    def code(values: np.ndarray) -> int:
        return int(np.argmax(values))

    below = np.where(finite & (v < top), v, -np.inf)
    above = np.where(finite & (v > bottom), -v, -np.inf)
    return code(np.where(finite, v, -np.inf)), code(below), code(np.where(finite, -v, -np.inf)), code(above)


def _subnormal_codes(element) -> np.ndarray:
    """Whether each code of the element format is a subnormal (nonzero, below the smallest normal)."""
    v = element.code_values
    if not isinstance(element, FloatFormat) or not element.subnormals:
        return np.zeros(v.shape, bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (v != 0) & (np.abs(v) < element.min_normal)


def _decoded(enc: Encoded, codes: np.ndarray | None = None) -> np.ndarray:
    """float64 values of enc, or of `codes` in enc's place (with enc's scales)."""
    if codes is not None:
        enc = replace(enc, codes=codes.astype(enc.codes.dtype, copy=False))
    if isinstance(enc.format, ScaledFormat):
        return decode(enc).astype(np.float64)
    return decode(enc, dtype=np.float64)


def _mirrored(spec, edges: tuple[int, int, int, int]) -> bool:
    """Whether the negative edge values decode to minus the positive ones, element by element: the
    element's edge values mirror and the decode is a product of the element value with scales (no
    zero point, no separate scale for negative values), and a float product is odd in each factor."""
    v = _element_of(spec).code_values
    top, below, bottom, above = (float(v[c]) for c in edges)
    return bottom == -top and above == -below and not (isinstance(spec, ScaledFormat) and spec.asymmetric)


def _at_the_edges(codes: np.ndarray, element, edges: tuple[int, int, int, int]) -> np.ndarray:
    """Elements whose code holds the largest or the most negative finite value, or no finite value:
    the only ones that can saturate, since every rounding clamps a value past the block's range to
    the edge code (or, without saturation, to Inf or NaN)."""
    v = element.code_values
    return ((v == v[edges[0]]) | (v == v[edges[2]]) | ~np.isfinite(v))[codes]


def _saturated(x: np.ndarray, enc: Encoded) -> np.ndarray:
    """Whether each element of x (float64) is at or beyond its saturation threshold: the largest
    value its block holds plus half the gap to the value below it, or the same on the negative
    side, counted only at the edge codes (see `_at_the_edges`)."""
    codes = np.asarray(enc.codes)
    element = _element_of(enc.format)
    edges = _edge_codes(element)
    out = np.zeros(x.shape, bool)
    edge = _at_the_edges(codes, element, edges)
    if not edge.any():  # nothing at the edges: no thresholds to decode
        return out
    top, below = (_decoded(enc, np.full_like(codes, c))[edge] for c in edges[:2])
    if _mirrored(enc.format, edges):  # decoding is odd in the element value: no need to decode the negative side
        bottom, above = -top, -below
    else:
        bottom, above = (_decoded(enc, np.full_like(codes, c))[edge] for c in edges[2:])
    xe = x[edge]
    with np.errstate(invalid="ignore"):
        high = (xe >= top + (top - below) / 2) & (xe > top)
        low = (xe <= bottom - (above - bottom) / 2) & (xe < bottom)
    out[edge] = high | low
    return out


@dataclass(frozen=True)
class _Elements:
    """Per-element flags and sums, in the input's shape."""

    x: np.ndarray
    counted: np.ndarray
    saturated: np.ndarray
    flushed: np.ndarray
    subnormal: np.ndarray
    signal: np.ndarray
    noise: np.ndarray


def _elements(x: np.ndarray, enc: Encoded, counted: np.ndarray) -> _Elements:
    q = _decoded(enc)
    xd = x.astype(np.float64)
    saturated = counted & _saturated(xd, enc)
    with np.errstate(invalid="ignore", over="ignore"):
        flushed = counted & (xd != 0) & (q == 0)
        # an element that overflowed to Inf or NaN has an infinite error
        noise = np.where(counted, np.where(np.isfinite(q), (q - xd) ** 2, np.inf), 0.0)
    subnormal = counted & _subnormal_codes(_element_of(enc.format))[np.asarray(enc.codes)]
    return _Elements(xd, counted, saturated, flushed, subnormal, np.where(counted, xd * xd, 0.0), noise)


def _fraction(flags: np.ndarray, n: int) -> float:
    return float(np.count_nonzero(flags) / n) if n else float("nan")


def _scale_histogram(enc: Encoded, finite_blocks: np.ndarray) -> tuple[np.ndarray | None, float]:
    if enc.scales is None:
        return None, float("nan")
    spec = enc.format
    codes = np.asarray(enc.scales)[finite_blocks].reshape(-1).astype(np.int64)
    if spec.scale is None:  # exact float32 scales: 2^32 codes, counted over those present
        return None, entropy_bits(np.unique(codes, return_counts=True)[1])
    n_codes = spec.scale.code.n_codes if isinstance(spec.scale, DoubleQuant) else spec.scale.n_codes
    hist = np.bincount(codes, minlength=n_codes)
    return hist, entropy_bits(hist)


def _block_sums(e: _Elements, spec: ScaledFormat, axis: int, shape: tuple[int, ...]):
    """Per-block sums of each per-element quantity (rows of the layout, padding counted as not
    counted), and the block amax."""
    lay = layout(shape, spec, axis)
    rows = {k: lay.to_rows(getattr(e, k)) for k in ("counted", "saturated", "flushed", "subnormal", "signal", "noise")}
    sums = {k: v.sum(axis=1) for k, v in rows.items()}
    return lay, sums, np.abs(lay.to_rows(e.x.astype(np.float32))).max(axis=1)


def _blocks(e: _Elements, enc: Encoded, finite: np.ndarray) -> BlockDiagnosis:
    lay, s, amax = _block_sums(e, enc.format, enc.meta["axis"], tuple(enc.shape))
    finite_rows = finite.reshape(-1)
    n = np.maximum(s["counted"], 1)
    nan = np.where(finite_rows, 0.0, np.nan)

    def per_block(values: np.ndarray) -> np.ndarray:
        return (values + nan).reshape(lay.blocks_shape)

    return BlockDiagnosis(
        finite=finite,
        saturated_fraction=per_block(s["saturated"] / n),
        flushed_fraction=per_block(s["flushed"] / n),
        subnormal_fraction=per_block(s["subnormal"] / n),
        qsnr_db=per_block(qsnr_db(s["signal"], s["noise"])),
        scale_codes=np.asarray(enc.scales),
        amax=np.where(finite_rows, amax, np.float32(np.nan)).reshape(lay.blocks_shape),
        signal_power=per_block(s["signal"]),
        noise_power=per_block(s["noise"]),
    )


def _finite_blocks(x: np.ndarray, spec: ScaledFormat, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(per element: its block holds no NaN or Inf; per block, in the blocks' shape: the same)."""
    lay = layout(x.shape, spec, axis)
    rows = lay.to_rows(~np.isfinite(x))  # the padding of a short last block is False: finite
    finite_rows = ~rows.any(axis=1)
    per_element = lay.from_rows(np.repeat(finite_rows[:, None], rows.shape[1], axis=1))
    return per_element, finite_rows.reshape(lay.blocks_shape)


def _check_format(fmt):
    spec = get_format(fmt)
    if isinstance(spec, VectorCodebookFormat):
        raise TypeError(
            f"fmt: diagnose takes element, codebook and block-scaled formats; {spec.name or 'this'} is a "
            "vector codebook, whose codes stand for several elements"
        )
    return spec


def diagnose(
    x, fmt, axis: int = -1, *, rounding: Rounding | str = "rne", seed: int | None = None, sr_bits: int | None = None
) -> Diagnosis:
    """Range diagnostics of `fmt` on `x`: the shares of elements saturated, flushed to zero and in
    subnormals, the histograms and entropies (bits) of the element and scale codes, and the QSNR
    (dB), per tensor and, for block-scaled formats, per block (`Diagnosis.blocks`).

    x:        a NumPy array of real numbers (host only). NaN and Inf are left out: an element
              format's non-finite elements, a block format's blocks holding any
              (`Diagnosis.nonfinite_fraction` gives their share).
    fmt:      a format name or spec; vector codebooks (HIGGS p = 2) are refused with TypeError.
    axis:     the block axis, as `encode` takes it.
    rounding, seed, sr_bits: as `encode` takes them (the diagnostics are those of that rounding).
    """
    spec = _check_format(fmt)
    scaled = isinstance(spec, ScaledFormat)
    arr = float32_host(x) if isinstance(spec, (ScaledFormat, CodebookFormat, GridFormat)) else host_float_array(x)
    enc = encode(arr, spec, axis=axis, rounding=rounding, seed=seed, nan="zero", sr_bits=sr_bits)
    if scaled:
        counted, finite_blocks = _finite_blocks(arr, spec, enc.meta["axis"])
    else:
        counted, finite_blocks = np.isfinite(arr), None
    e = _elements(arr, enc, counted)
    n = int(np.count_nonzero(counted))
    element = _element_of(spec)
    hist = np.bincount(np.asarray(enc.codes)[counted].astype(np.int64), minlength=element.n_codes)
    scale_hist, scale_entropy = _scale_histogram(enc, finite_blocks) if scaled else (None, np.nan)
    return Diagnosis(
        format=spec,
        n_elements=n,
        nonfinite_fraction=_fraction(~counted, arr.size),
        saturated_fraction=_fraction(e.saturated, n),
        flushed_fraction=_fraction(e.flushed, n),
        subnormal_fraction=_fraction(e.subnormal, n),
        code_histogram=hist,
        scale_histogram=scale_hist,
        code_entropy_bits=entropy_bits(hist),
        scale_entropy_bits=float(scale_entropy),
        qsnr_db=float(qsnr_db(e.signal.sum(), e.noise.sum())) if n else float("nan"),
        blocks=_blocks(e, enc, finite_blocks) if scaled else None,
    )


# ----- compare ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Two block formats' scales and accuracy on one tensor (`compare`).

    n_blocks:            blocks compared (those without NaN or Inf).
    differing_fraction:  share (0 to 1) of those blocks whose scale codes differ.
    differs:             per block, whether they differ (False for blocks left out).
    amax_mantissa:       per block, amax / 2^floor(log2(amax)), in [1, 2): where amax sits between
                         two powers of two (NaN for all-zero and left-out blocks).
    mantissa_edges:      edges of the `MANTISSA_BINS` bins over [1, 2) of the next two fields.
    blocks_per_bin, differing_per_bin: counts of blocks (all compared, and those whose scales differ)
                         per mantissa bin.
    power_of_two_blocks, power_of_two_differing: blocks whose amax is an exact power of two, and
                         how many of those differ.
    code_shift:          {code_b - code_a: blocks} over the differing blocks (power-of-two scales:
                         the shift in binades).
    qsnr_db_a, qsnr_db_b, qsnr_delta_db: the tensor's QSNR (dB) under each format, and b minus a.
    differing_qsnr_db_a, differing_qsnr_db_b: the QSNR (dB) over the differing blocks only (NaN
                         when none differ).
    block_qsnr_db_a, block_qsnr_db_b: per-block QSNR (dB) under each format.
    """

    format_a: ScaledFormat
    format_b: ScaledFormat
    n_blocks: int
    differing_fraction: float
    differs: np.ndarray
    amax_mantissa: np.ndarray
    mantissa_edges: np.ndarray
    blocks_per_bin: np.ndarray
    differing_per_bin: np.ndarray
    power_of_two_blocks: int
    power_of_two_differing: int
    code_shift: dict[int, int]
    qsnr_db_a: float
    qsnr_db_b: float
    qsnr_delta_db: float
    differing_qsnr_db_a: float
    differing_qsnr_db_b: float
    block_qsnr_db_a: np.ndarray
    block_qsnr_db_b: np.ndarray


def _check_pair(a, b) -> tuple[ScaledFormat, ScaledFormat]:
    specs = tuple(get_format(f) for f in (a, b))
    for name, spec in zip(("fmt_a", "fmt_b"), specs, strict=True):
        if not isinstance(spec, ScaledFormat):
            raise TypeError(f"{name}: compare takes block-scaled formats, got {spec.name or spec!r}")
    sa, sb = specs
    if _layout_of(sa) != _layout_of(sb):
        raise ValueError(
            f"fmt_b: compare needs the same block layout; {sa.name or 'fmt_a'} has {_layout_text(sa)}, "
            f"{sb.name or 'fmt_b'} has {_layout_text(sb)}"
        )
    if _scale_stage(sa) != _scale_stage(sb):
        raise ValueError(
            "fmt_b: compare needs the same scale format and tensor scale, so that scale codes mean the same "
            f"values; {sa.name or 'fmt_a'} has {_scale_text(sa)}, {sb.name or 'fmt_b'} has {_scale_text(sb)}"
        )
    return sa, sb


def _layout_of(spec: ScaledFormat) -> tuple:
    return spec.block, spec.block_rows, spec.asymmetric


def _layout_text(spec: ScaledFormat) -> str:
    rows = f" x {spec.block_rows} rows" if spec.block_rows != 1 else ""
    return f"block {spec.block}{rows}{' (asymmetric)' if spec.asymmetric else ''}"


def _scale_stage(spec: ScaledFormat) -> tuple:
    """What a scale code's value depends on besides the code: the scale format and the tensor scale
    (NVFP4's maps the tensor's amax to tensor_scale_max times the element's max)."""
    if spec.tensor_scale is TensorScale.NONE:
        return spec.scale, spec.tensor_scale
    return spec.scale, spec.tensor_scale, spec.tensor_scale_max, float(np.nanmax(spec.element.code_values))


def _scale_text(spec: ScaledFormat) -> str:
    scale = f"scale {getattr(spec.scale, 'name', None) or spec.scale!r}"
    if spec.tensor_scale is TensorScale.NONE:
        return scale
    return (
        f"{scale} under tensor scale {spec.tensor_scale.value!r} (tensor_scale_max "
        f"{spec.tensor_scale_max}, element max {float(np.nanmax(spec.element.code_values))})"
    )


def _mantissa(amax: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(amax.astype(np.float64))
    return np.where(amax > 0, 2 * m, np.nan)


def _masked_qsnr(blocks: BlockDiagnosis, mask: np.ndarray) -> float:
    """QSNR (dB) over the blocks in `mask`; NaN for none."""
    if not mask.any():
        return float("nan")
    return float(qsnr_db(blocks.signal_power[mask].sum(), blocks.noise_power[mask].sum()))


def compare(x, fmt_a, fmt_b, axis: int = -1) -> Comparison:
    """Where two block formats with the same block layout and scale format (say MXFP4 under the
    'ocp_floor' and the 'ceil' rule) choose different scale codes on `x`, where those blocks' amax
    lies relative to the power-of-two grid, and what it does to the accuracy (QSNR, dB).

    x: a NumPy array (host); blocks holding NaN or Inf are left out. axis: the block axis.
    TypeError for a format that is not block-scaled; ValueError for two block layouts (block, rows,
    asymmetry) or scale stages (scale format, tensor scale) that differ: their codes would not mean the
    same scales.
    """
    sa, sb = _check_pair(fmt_a, fmt_b)
    arr = float32_host(x)
    da, db = diagnose(arr, sa, axis), diagnose(arr, sb, axis)
    finite = da.blocks.finite
    ca, cb = da.blocks.scale_codes.astype(np.int64), db.blocks.scale_codes.astype(np.int64)
    if sa.asymmetric:
        differs = finite & (ca != cb).any(axis=-1)
        shift = (cb - ca)[..., 0][differs]
    else:
        differs = finite & (ca != cb)
        shift = (cb - ca)[differs]
    mantissa = _mantissa(da.blocks.amax)
    edges = np.linspace(1.0, 2.0, MANTISSA_BINS + 1)
    ok = finite & np.isfinite(mantissa)
    n = int(np.count_nonzero(finite))
    power = ok & (mantissa == 1.0)
    values, counts = np.unique(shift, return_counts=True)
    return Comparison(
        format_a=sa,
        format_b=sb,
        n_blocks=n,
        differing_fraction=float(np.count_nonzero(differs) / n) if n else float("nan"),
        differs=differs,
        amax_mantissa=mantissa,
        mantissa_edges=edges,
        blocks_per_bin=np.histogram(mantissa[ok], edges)[0],
        differing_per_bin=np.histogram(mantissa[ok & differs], edges)[0],
        power_of_two_blocks=int(np.count_nonzero(power)),
        power_of_two_differing=int(np.count_nonzero(power & differs)),
        code_shift={int(v): int(c) for v, c in zip(values, counts, strict=True)},
        qsnr_db_a=da.qsnr_db,
        qsnr_db_b=db.qsnr_db,
        qsnr_delta_db=db.qsnr_db - da.qsnr_db,
        differing_qsnr_db_a=_masked_qsnr(da.blocks, differs),
        differing_qsnr_db_b=_masked_qsnr(db.blocks, differs),
        block_qsnr_db_a=da.blocks.qsnr_db,
        block_qsnr_db_b=db.blocks.qsnr_db,
    )
