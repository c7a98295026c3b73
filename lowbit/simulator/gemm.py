"""Dot-product / GEMM emulation: `matmul`, `dot` and `matmul_error`.

The unit is emulated the way hardware computes (DESIGN.md section 4):
  1. a (M, K) and b (K, N) are quantized along K to their formats; each becomes element values
     (exact, float64), a scale per block and a tensor scale (NVFP4);
  2. the products of elements are exact; the products of a chunk of `chunk` lanes (within one block
     of each operand) are summed exactly in fixed point, or, with `partial_sum_bits`, after each
     product is truncated toward zero to that many bits below the chunk's largest product;
  3. the chunk sum is multiplied by the product of the two block scales, exactly;
  4. the result is added to the accumulator, rounding once per addition to the accumulator's
     format and rounding mode (integer accumulators wrap); in K order (`sequential`) or as a
     balanced binary tree over the chunks (`pairwise`: complete subtrees of 2^j chunks, the rest
     combined from the right); `exact` never rounds;
  5. tensor scales (NVFP4) multiply the accumulator at the end as a GEMM epilogue's alpha: their
     product rounded to the accumulator, then the accumulator times alpha rounded once more
     (`exact`: both exact until the float64 result).
Results are float64 arrays holding the accumulator's values. NaN and Inf of the quantized operands
are zeroed for the exact arithmetic, and the outputs they reach take their IEEE values
(`host.specials`; the rule per accumulator is in `matmul`'s docstring).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import numpy as np

from ..formats import (
    CodebookFormat,
    DoubleQuant,
    FloatFormat,
    GridFormat,
    IntFormat,
    ScaledFormat,
    TensorScale,
    VectorCodebookFormat,
    get_format,
    parse_enum,
)
from ..formats.accumulator import Accumulator, AccumulatorKind, get_accumulator
from . import engine_gemm
from .host import specials
from .host.codec import encode, quantize
from .host.inputs import host_target
from .host.scales import dq_values, scale_values
from .kernels import dispatch
from .kernels.dispatch import Out, Suite, Target
from .kernels.dot_scalar import (
    ACC_EXACT,
    ACC_FLOAT,
    ACC_INT,
    ORDER_PAIRWISE,
    ORDER_SEQUENTIAL,
    PP_COLS,
    PP_COUNT,
    PP_DIR_A,
    PP_DIR_B,
    PP_DIRECTED,
    PP_INF,
    PP_INV2M,
    PP_MAX,
    PP_NEAR,
    PP_NEAR_SUB,
    PP_SPLIT,
    PP_SUBC,
    PP_THR,
    PP_TINY,
    PP_ULP_MIN,
    PP_ZERO,
    Q_EMIN,
    Q_MAX,
    Q_MODE,
    Q_SPLIT,
    Q_SUBC,
    Q_TINY,
    TILE32,
    round_any,
)
from .kernels.jit import threads_for
from .kernels.rounding import Rounding


class Order(enum.Enum):
    SEQUENTIAL = "sequential"
    PAIRWISE = "pairwise"


@dataclass(frozen=True)
class Factors:
    """An operand quantized along K: element values (rows, K), one scale per block (rows, blocks),
    the block length along K (at most K: a longer block holds all of K), the tensor scale, and the
    bit span of its values (log2 of the largest element over the finest step, and the scales'
    significand bits) for the float64 exactness bound."""

    elements: np.ndarray
    scales: np.ndarray
    block: int
    tensor: float
    integer: bool
    span_bits: float
    scale_bits: int
    finite_block: bool  # the format has blocks of a fixed length along K (chunks must fit in them)
    nominal_block: int = 0  # the format's block, which chunks must divide (0: none)

    @property
    def dequantized(self) -> np.ndarray:
        """The operand's values (float64): elements times their block scale times the tensor scale."""
        s = np.repeat(self.scales, self.block, axis=1)[:, : self.elements.shape[1]]
        return self.elements * s * self.tensor


def _span(values: np.ndarray) -> float:
    """log2(largest |value| / the finest step every value is a multiple of)."""
    v = np.abs(values[np.isfinite(values) & (values != 0)]).astype(np.float64)
    if v.size == 0:
        return 0.0
    mant, exp = np.frexp(v)
    # the lowest set bit of each value: its float64 significand has at most 53 bits
    sig = (mant * 2.0**53).astype(np.int64)
    low = (sig & -sig).astype(np.float64)
    step = np.min(np.ldexp(low, exp - 53))
    return float(np.log2(v.max() / step))


def _nonfinite_blocks(x: np.ndarray, block: int) -> np.ndarray:
    """(rows, blocks) mask of the blocks along K of x (rows, K) that hold NaN or Inf."""
    bad = ~np.isfinite(x)
    rows, k = bad.shape
    pad = (-k) % block
    if pad:
        bad = np.concatenate([bad, np.zeros((rows, pad), np.bool_)], axis=1)
    return bad.reshape(rows, -1, block).any(axis=2)


def _scale_bits(fmt: ScaledFormat) -> int:
    s = fmt.scale
    if s is None or isinstance(s, DoubleQuant):
        return 24
    return s.significand_bits


def factors(x: np.ndarray, fmt) -> Factors:
    """Quantize x (rows, K) along K to `fmt` and split it into elements, block scales and tensor scale."""
    spec = get_format(fmt)
    rows, k = x.shape
    if isinstance(spec, (FloatFormat, IntFormat, CodebookFormat, GridFormat, VectorCodebookFormat)):
        vals = np.asarray(quantize(x, spec, axis=1), np.float64)
        table = vals if isinstance(spec, VectorCodebookFormat) else spec.code_values
        return Factors(vals, np.ones((rows, 1)), max(k, 1), 1.0, isinstance(spec, IntFormat), _span(table), 1, False)
    if not isinstance(spec, ScaledFormat):
        raise TypeError(f"format {fmt!r}: matmul takes element, codebook and block-scaled formats")
    if spec.asymmetric and not isinstance(spec.element, IntFormat):
        raise ValueError(
            f"format {spec.name or fmt!r}: AFPQ's separate positive and negative scales make two partial sums "
            "per block; matmul emulates one scale per block"
        )
    enc = encode(x, spec, axis=1, nan="zero")
    table = spec.element.code_values
    elems = table[np.asarray(enc.codes).astype(np.int64)]
    if spec.element_step != 1.0:
        elems = elems * spec.element_step  # OCP MXINT8's fixed-point step
    if spec.micro is not None:
        # A sub-block's shift scales its products by a power of two: folded into the elements, the
        # products (and the chunk sums of a block) are the hardware's, exactly.
        elems = elems * _micro_factors(enc, spec, k)
    # one row of scales per row of x, or a single scale for a per-tensor format (broadcast below)
    scale_rows = 1 if spec.block == 0 else rows  # block 0: one scale for the whole tensor
    # a block longer than K holds all of K (encode's layout does the same): memory of K, not the block
    block = min(spec.block, max(k, 1)) if spec.block else max(k, 1)
    scale_codes = np.asarray(enc.scales)
    if spec.block_rows > 1:  # 2-D tiles: each tile's scale serves its rows (a row of scales per row of x)
        scale_codes = np.repeat(scale_codes, min(spec.block_rows, rows), axis=0)[:rows]
    scale_codes = scale_codes.reshape(scale_rows, -1, spec.scales_per_block)
    if isinstance(spec.scale, DoubleQuant):
        scales = dq_values(scale_codes.reshape(-1), enc.meta["dq_absmax"], enc.meta["dq_offset"], spec.scale)
        scales = np.asarray(scales, np.float64).reshape(scale_rows, -1)
        # no NaN scale code: the blocks holding NaN or Inf are marked here
        bad = _nonfinite_blocks(x, block) if spec.block else ~np.isfinite(x).all(keepdims=True)
        scales[bad] = np.nan
    else:
        scales = np.asarray(scale_values(scale_codes[..., 0], spec), np.float64).reshape(scale_rows, -1)
    if spec.asymmetric:  # integer elements with a zero point: (code - zero point) * scale
        zero = np.asarray(scale_values(scale_codes[..., 1], spec), np.float64).reshape(scale_rows, -1)
        elems = elems - np.repeat(zero, block, axis=1)[:, :k]
    if scales.shape[0] != rows:  # one scale for the whole tensor
        scales = np.broadcast_to(scales.reshape(1, -1)[:, :1], (rows, 1)).copy()
    tensor = float(enc.tensor_scale) if spec.tensor_scale is TensorScale.NVFP4 else 1.0
    span = _span(elems) if spec.asymmetric else _span(table)
    if spec.micro is not None:
        span += spec.micro.max_shift  # the finest step is the element's shifted down that far
    return Factors(elems, scales, block, tensor, False, span, _scale_bits(spec), bool(spec.block), spec.block or 0)


def _micro_factors(enc, spec: ScaledFormat, k: int) -> np.ndarray:
    """2^-shift of each element's sub-block, (rows, K) float64, from the encoded sub-block shifts
    (rows, blocks, sub-blocks) along K."""
    shifts = np.asarray(enc.micro)
    rows, blocks = shifts.shape[0], shifts.shape[1]
    per = np.repeat(shifts.astype(np.int64), spec.micro.block, axis=2).reshape(rows, blocks, -1)
    block = min(spec.block, max(k, 1))
    return np.ldexp(1.0, -per[:, :, :block].reshape(rows, -1)[:, :k])


def operand(b, b_format) -> Factors:
    """The right-hand operand b (K, N) quantized once along K, to pass as `matmul`'s b in place of
    the array: a model's weights, used by many products. matmul then gives exactly what it gives for
    (b, b_format), without quantizing b again."""
    return factors(np.ascontiguousarray(_check_2d(b, "b").T), b_format)


def _acc_params(acc: Accumulator, rounding: Rounding) -> np.ndarray:
    if acc.kind is AccumulatorKind.FLOAT:
        if acc.man_bits > 51:
            raise ValueError(f"accumulator: float accumulators of up to 51 mantissa bits, got {acc.label}")
        bias = (1 << (acc.exp_bits - 1)) - 1
        emax = (1 << acc.exp_bits) - 2 - bias
        largest = math.ldexp(2.0 - 2.0**-acc.man_bits, emax)
        emin = 1 - bias
        fast = (2.0 ** (52 - acc.man_bits) + 1, 2.0**emin, 1.5 * 2.0 ** (emin - acc.man_bits + 52))
        return np.array([ACC_FLOAT, acc.exp_bits, acc.man_bits, emin, largest, int(rounding), 0, *fast], np.float64)
    if acc.kind is AccumulatorKind.INT:
        if acc.bits > 53:
            raise ValueError(f"accumulator: integer accumulators of up to 53 bits, got {acc.label}")
        return np.array([ACC_INT, 0, 0, 0, 0, 0, acc.bits, 1, 1, 1], np.float64)
    return np.array([ACC_EXACT, 0, 0, 0, 0, 0, 0, 1, 1, 1], np.float64)


def _check_2d(x, name: str) -> np.ndarray:
    if hasattr(x, "copy_to_host"):
        x = x.copy_to_host()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: cannot convert to a numeric array ({err})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _chunk(chunk: int | None, fa: Factors, fb: Factors) -> int:
    """The chunk: the formats' common block by default, else `chunk`, which must divide the blocks.
    A chunk longer than K sums all of K, as a chunk of K does: it is cut to K (at least 1)."""
    blocks = [f.nominal_block for f in (fa, fb) if f.finite_block]
    if chunk is None:
        c = math.gcd(*blocks) if blocks else 1
    elif isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    else:
        c = int(chunk)
    for b in blocks:
        if b % c:
            raise ValueError(f"chunk {c} does not divide the block of {b} elements")
    return max(1, min(c, fa.elements.shape[1]))


def _exact_bits(fa: Factors, fb: Factors, chunk: int) -> float:
    """Significant bits a chunk sum times its scales can need (exact in a float of that many bits)."""
    return fa.span_bits + fb.span_bits + math.log2(max(chunk, 1)) + fa.scale_bits + fb.scale_bits


def _scales_within(fa: Factors, fb: Factors, limit: float) -> bool:
    """Whether every finite, nonzero block scale lies within 2^-limit and 2^limit (so that scale
    products, and chunk sums times them, stay clear of the float's subnormals and overflow)."""
    for f in (fa, fb):
        s = np.abs(f.scales[np.isfinite(f.scales) & (f.scales != 0)])
        if s.size and (s.min() < 2.0**-limit or s.max() > 2.0**limit):
            return False
    return True


class CpuPath(enum.Enum):
    """The CPU driver a product takes (each equals the general one bit for bit, tested)."""

    FLOAT32 = "float32"  # chunk sums times their scales exact in float32
    FLOAT64 = "float64"  # chunk sums exact in float64, their scaling carried as an exact pair
    PER_PRODUCT = "per_product"  # chunk 1: one branch-free rounding per product (`per_product_plan`)
    GENERAL = "general"  # every sum as an error-free pair


def cpu_path(s: _Setup) -> tuple[CpuPath, int]:
    """The CPU driver for a product, and the chunk it sums exactly."""
    path, chunk, _ = _cpu_plan(s)
    return path, chunk


def _cpu_plan(s: _Setup) -> tuple[CpuPath, int, PerProduct | None]:
    """`cpu_path` with the per-product driver's plan where it takes that driver."""
    plan = per_product_plan(s)
    if plan is not None:
        return CpuPath.PER_PRODUCT, 1, plan
    path, chunk = _chunk_path(s)
    return path, chunk, None


def _chunk_path(s: _Setup) -> tuple[CpuPath, int]:
    """The driver of exact chunk sums (float32, float64) or the general one, and the chunk."""
    fa, fb = s.fa, s.fb
    simple = s.order is Order.SEQUENTIAL and s.trunc == 0 and s.acc.kind is not AccumulatorKind.EXACT
    simple = simple and np.isfinite(fa.elements).all() and np.isfinite(fb.elements).all()
    if not simple:
        return CpuPath.GENERAL, s.chunk
    chunk = s.chunk
    if s.acc.kind is AccumulatorKind.INT:
        # Integer accumulators wrap modulo 2^bits, so longer exact chunks give the same result.
        room = 23 - _exact_bits(fa, fb, 1)
        chunk = max(1, min(fa.elements.shape[1], 2 ** int(max(0.0, room))))
    if _exact_bits(fa, fb, chunk) <= 23 and _scales_within(fa, fb, 40):
        return CpuPath.FLOAT32, chunk
    sums = fa.span_bits + fb.span_bits + math.log2(max(chunk, 1))
    if sums <= 52 and fa.scale_bits + fb.scale_bits <= 53 and _scales_within(fa, fb, 300):
        return CpuPath.FLOAT64, chunk
    return CpuPath.GENERAL, s.chunk


@dataclass(frozen=True)
class Grain:
    """What bounds an operand's element values: the largest magnitude, the coarsest power of two that
    every element is a multiple of (inf when all are 0), and the most significant bits of any."""

    largest: float
    step: float
    bits: int


def grain(values: np.ndarray) -> Grain:
    """The Grain of finite float64 values."""
    v = np.abs(values[values != 0])
    if v.size == 0:
        return Grain(0.0, math.inf, 0)
    mant, exp = np.frexp(v)
    sig = (mant * 2.0**53).astype(np.int64)  # the 53-bit significand, an integer
    low = sig & -sig  # its lowest set bit, 2^t: the value has 53 - t significant bits
    step = float(np.min(np.ldexp(low.astype(np.float64), exp - 53)))
    return Grain(float(v.max()), step, 54 - int(low.min()).bit_length())


@dataclass(frozen=True)
class PerProduct:
    """The per-product driver's plan: the lanes' dtype (float32 or float64), the step (PP_NEAR,
    PP_NEAR_SUB or PP_DIRECTED of `dot_scalar`) and its constants (PP_COUNT, in the lanes' dtype)."""

    dtype: type
    kind: int
    constants: np.ndarray


# (dir_a, dir_b, thr, zero) of `directed_step` per mode: away from zero where dir_a * sign(sum) + dir_b is 1
_DIRECTED = {
    Rounding.RTZ: (0.0, -1.0, 2.0**-60, 0.0),
    Rounding.RUP: (1.0, 0.0, 2.0**-60, 0.0),
    Rounding.RDOWN: (-1.0, 0.0, 2.0**-60, 0.0),
    Rounding.RNA: (0.0, 1.0, 0.5, -0.0),
}
_LANES = {np.float32: (24, -126, 127), np.float64: (53, -1022, 1023)}  # precision, emin, emax


def per_product_plan(s: _Setup, float32_lanes: bool = True) -> PerProduct | None:
    """The per-product driver for chunk 1 (sequential, a float accumulator, unscaled finite elements,
    no partial_sum_bits), or None where its conditions fail. Every accumulator value acc is a multiple
    of its subnormal step u, every product p of elements a multiple of fine (the product of the
    operands' `grain` steps), and reach (the accumulator's largest finite value plus the largest
    |p|) bounds |acc + p|; acc + p is rounded to the accumulator in one of three ways (`dot_scalar`'s
    notes prove them):
      float32 lanes, nearest even: the accumulator is binary32 itself (float32 addition is its
        rounding) or has p = man_bits + 1 <= 11 bits (24 >= 2p + 1: double rounding is innocuous),
        every product is exact in float32 with at most p bits and a multiple of u;
      float64 lanes, any mode: acc + p is exact in float64 (reach < 2^52 min(u, fine));
      float64 lanes, nearest even: p <= 26 (53 >= 2p + 1), products of at most p bits, multiples of u.
    float32_lanes=False leaves the first out (CUDA runs float64 lanes)."""
    if not _per_product_setting(s):
        return None
    ga, gb = grain(s.fa.elements), grain(s.fb.elements)
    man = s.acc.man_bits
    emin = int(s.q[Q_EMIN])
    u = math.ldexp(1.0, emin - man)
    fine = ga.step * gb.step  # a power of two (inf when an operand is all 0): exact unless it underflows
    reach = float(s.q[Q_MAX]) + ga.largest * gb.largest
    bits = ga.bits + gb.bits
    mode = Rounding(int(s.q[Q_MODE]))
    if mode is Rounding.RNE and float32_lanes and _float32_fits(ga, gb):
        if (s.acc.exp_bits, man) == (8, 23):
            return _near_plan(np.float32, s, 1.0)
        if _double_rounding(np.float32, man, u, fine, reach, bits):
            return _near_plan(np.float32, s, 2.0 ** (23 - man) + 1)
    if fine > 0 and reach < math.ldexp(min(u, fine), 52) and man <= 50 and u >= 2.0**-1022:
        if mode is not Rounding.RNE:
            return _directed_plan(s, u, mode)
        return _near_plan(np.float64, s, float(s.q[Q_SPLIT]), PP_NEAR if fine >= u else PP_NEAR_SUB)
    if mode is Rounding.RNE and _double_rounding(np.float64, man, u, fine, reach, bits):
        return _near_plan(np.float64, s, float(s.q[Q_SPLIT]))
    return None


def _per_product_setting(s: _Setup) -> bool:
    """Chunk 1, sequential, a float accumulator, no truncation, no scales, finite elements."""
    fa, fb = s.fa, s.fb
    plain = s.chunk == 1 and s.order is Order.SEQUENTIAL and s.trunc == 0 and s.acc.kind is AccumulatorKind.FLOAT
    unscaled = all(f.tensor == 1.0 and bool(np.all(f.scales == 1.0)) for f in (fa, fb))
    return plain and unscaled and bool(np.isfinite(fa.elements).all() and np.isfinite(fb.elements).all())


def _float32_fits(ga: Grain, gb: Grain) -> bool:
    """Whether every element, and every product of two, is exact and finite in float32: at most 24
    significant bits, multiples of its smallest subnormal, below 2^127."""
    elements = all(g.bits <= 24 and g.step >= 2.0**-149 and g.largest < 2.0**127 for g in (ga, gb))
    products = ga.bits + gb.bits <= 24 and ga.step * gb.step >= 2.0**-149 and ga.largest * gb.largest < 2.0**127
    return elements and products


def _double_rounding(dtype, man: int, u: float, fine: float, reach: float, bits: int) -> bool:
    """Whether the lanes' nearest-even sum rounded again to man_bits + 1 bits is the sum rounded once:
    lanes of at least 2 (man_bits + 1) + 1 bits, products of at most man_bits + 1 bits and multiples of
    u (a normal of the lanes), and no overflow in the Veltkamp split (factor 2^(precision - 1 - man) + 1)."""
    precision, lane_emin, lane_emax = _LANES[dtype]
    room = reach * (2.0 ** (precision - 1 - man) + 1) < 2.0 ** (lane_emax - 1)
    return 2 * (man + 1) + 1 <= precision and bits <= man + 1 and fine >= u >= 2.0**lane_emin and room


def _near_plan(dtype, s: _Setup, split: float, kind: int = PP_NEAR) -> PerProduct:
    c = np.zeros(PP_COUNT, np.float64)
    c[PP_SPLIT], c[PP_MAX], c[PP_INF] = split, s.q[Q_MAX], math.inf
    if kind == PP_NEAR_SUB:  # float64 lanes: the constants of `round_near`'s subnormal rounding
        c[PP_TINY], c[PP_SUBC] = s.q[Q_TINY], s.q[Q_SUBC]
    return PerProduct(dtype, kind, c.astype(dtype))


def _directed_plan(s: _Setup, u: float, mode: Rounding) -> PerProduct:
    c = np.zeros(PP_COUNT, np.float64)
    c[PP_INV2M], c[PP_ULP_MIN], c[PP_MAX], c[PP_INF] = 2.0**-s.acc.man_bits, u, s.q[Q_MAX], math.inf
    c[PP_DIR_A], c[PP_DIR_B], c[PP_THR], c[PP_ZERO] = _DIRECTED[mode]
    return PerProduct(np.float64, PP_DIRECTED, c)


@dataclass(frozen=True)
class _Setup:
    fa: Factors
    fb: Factors
    chunk: int
    q: np.ndarray
    trunc: int
    order: Order
    acc: Accumulator


def _setup(a, b, a_format, b_format, accumulator, chunk, order, partial_sum_bits, rounding) -> _Setup:
    a = _check_2d(a, "a")
    fb = b if isinstance(b, Factors) else None
    if fb is None:
        b = _check_2d(b, "b")
    _matching_k(a, b)
    acc = get_accumulator(accumulator)
    mode = parse_enum(Rounding, rounding, "rounding")
    if mode is Rounding.STOCHASTIC:
        raise ValueError("rounding: the accumulator rounds with 'rne', 'rtz', 'rna', 'rup' or 'rdown'")
    order = parse_enum(Order, order, "order")
    if partial_sum_bits is not None and (
        isinstance(partial_sum_bits, (bool, np.bool_))
        or not isinstance(partial_sum_bits, (int, np.integer))
        or not 2 <= partial_sum_bits <= 52
    ):
        raise ValueError(f"partial_sum_bits must be an integer from 2 to 52 or None, got {partial_sum_bits!r}")
    fa = factors(a, a_format)
    fb = fb or factors(np.ascontiguousarray(b.T), b_format)
    if acc.kind is AccumulatorKind.INT:
        for f, name in ((fa, a_format), (fb, b_format)):
            if not f.integer:
                raise ValueError(
                    f"accumulator {acc.label}: integer accumulation needs integer element formats without scales, "
                    f"got {name!r}"
                )
    trunc = int(partial_sum_bits or 0)
    return _Setup(fa, fb, _chunk(chunk, fa, fb), _acc_params(acc, mode), trunc, order, acc)


def _alpha(s: _Setup) -> float:
    """The epilogue's alpha (the tensor scales' product) as the accumulator applies it."""
    tscale = s.fa.tensor * s.fb.tensor
    if s.acc.kind is AccumulatorKind.FLOAT and tscale != 1.0:
        return round_any(tscale, s.q)
    return tscale


def _run(s: _Setup, target) -> np.ndarray:
    """The emulated product. NaN and Inf of the quantized operands (`specials`) are zeroed for the
    exact emulation, and the outputs they reach are then set to their IEEE values."""
    if specials.finite(s.fa.elements, s.fa.scales) and specials.finite(s.fb.elements, s.fb.scales):
        return _run_finite(s, target)
    ra, rb = (specials.classes(f.elements, f.scales, f.block, f.tensor) for f in (s.fa, s.fb))
    fa, fb = (replace(f, elements=specials.zeroed(f.elements), scales=specials.zeroed(f.scales)) for f in (s.fa, s.fb))
    out = _run_finite(replace(s, fa=fa, fb=fb), target)
    specials.overwrite(out, ra, rb, _alpha(s))
    return out


def _run_finite(s: _Setup, target) -> np.ndarray:
    fa, fb = s.fa, s.fb
    m, n = fa.elements.shape[0], fb.elements.shape[0]
    out = np.zeros((m, n), np.float64)
    flags = np.zeros((m, n), np.bool_)
    tscale = fa.tensor * fb.tensor  # exact: two float32 values
    order = ORDER_PAIRWISE if s.order is Order.PAIRWISE else ORDER_SEQUENTIAL
    args = (fa.elements, fa.scales, fa.block, fb.elements, fb.scales, fb.block, s.chunk, s.q, s.trunc, order, tscale)
    if m == 0 or n == 0:
        return out
    if host_target(target) is Target.CUDA:
        if per_product_plan(s, float32_lanes=False) is not None:  # float64 sums under the same conditions
            per_product = (fa.elements, fb.elements, s.q, Out(out))
            dispatch.run("dot_per_product", Target.CUDA, m * n, *per_product, suite=Suite.DOT)
        else:
            dispatch.run("dot", Target.CUDA, m * n, *args, Out(out), Out(flags), suite=Suite.DOT)
    else:
        _run_cpu(s, args, tscale, out, flags)
    if flags.any():
        raise ValueError(
            "the exact partial sums of these operands span more than 106 bits, beyond the emulator's exact "
            "pair arithmetic; use a partial_sum_bits cap or narrower formats"
        )
    return out


BLAS_CHUNK = 8  # shorter chunks leave too little work per BLAS product; they take the tiled loops
SUMS_BYTES = 1 << 25  # chunk sums held at once by the BLAS path


def _f32acc(s: _Setup) -> bool:
    """Whether the accumulator is FP32 with round-to-nearest-even, which float32 addition is."""
    f32 = s.acc.kind is AccumulatorKind.FLOAT and (s.acc.exp_bits, s.acc.man_bits) == (8, 23)
    return f32 and int(s.q[5]) == int(Rounding.RNE)


def _run_blas_chunks(s: _Setup, drivers, path: CpuPath, chunk: int, out: np.ndarray) -> None:
    """The float32 and float64 paths with chunk sums from NumPy's matmul in that precision. cpu_path
    has checked that every chunk sum is exact there, so every partial sum of its products is too, in
    whatever order and with or without fused multiply-adds the BLAS takes them: the sums equal the
    emulated ones. They are then scaled and accumulated in order along K (`scale_add`, `scale_add64`)."""
    fa, fb = s.fa, s.fb
    dtype = np.float32 if path is CpuPath.FLOAT32 else np.float64
    m, k = fa.elements.shape
    n = fb.elements.shape[0]
    chunks = -(-k // chunk)
    ea = np.zeros((m, chunks * chunk), dtype)
    ea[:, :k] = fa.elements
    eb = np.zeros((chunks * chunk, n), dtype)
    eb[:k] = fb.elements.T
    a3 = ea.reshape(m, chunks, chunk).transpose(1, 0, 2)
    b3 = eb.reshape(chunks, chunk, n)
    sa = np.ascontiguousarray(fa.scales, dtype)
    sbt = np.ascontiguousarray(fb.scales.T, dtype)
    f32acc = path is CpuPath.FLOAT32 and _f32acc(s)
    acc32 = np.zeros((m, n), np.float32)
    group = max(1, SUMS_BYTES // (ea.itemsize * m * n))
    for c0 in range(0, chunks, group):
        sums = np.matmul(a3[c0 : c0 + group], b3[c0 : c0 + group])
        if path is CpuPath.FLOAT32:
            drivers.scale_add(sums, c0, sa, fa.block, sbt, fb.block, chunk, s.q, f32acc, acc32, out)
        else:
            drivers.scale_add64(sums, c0, sa, fa.block, sbt, fb.block, chunk, s.q, out)
    if f32acc:
        out[...] = acc32


def _run_per_product(plan: PerProduct, s: _Setup, drivers, out: np.ndarray) -> None:
    """The per-product driver (chunk 1) in the plan's lanes; the columns padded to strips of PP_COLS."""
    fa, fb = s.fa, s.fb
    k = fa.elements.shape[1]
    n = fb.elements.shape[0]
    ebk = np.zeros((k, -(-n // PP_COLS) * PP_COLS), plan.dtype)
    ebk[:, :n] = fb.elements.T
    wide = np.empty((out.shape[0], ebk.shape[1]), np.float64)
    drivers.dot_per_product(np.ascontiguousarray(fa.elements, plan.dtype), ebk, plan.constants, plan.kind, wide)
    out[...] = wide[:, :n]


def _run_cpu(s: _Setup, args: tuple, tscale: float, out: np.ndarray, flags: np.ndarray) -> None:
    """The CPU drivers: a vectorised one where sequential chunk sums are exact in float32 or float64
    or each product can be accumulated with a rounding of its own (see `cpu_path`), else the general one."""
    fa, fb = s.fa, s.fb
    drivers = dispatch.drivers(Target.CPU, Suite.DOT)
    path, chunk, plan = _cpu_plan(s)
    if plan is not None:  # unscaled: no tensor scale to apply
        _run_per_product(plan, s, drivers, out)
        return
    if path is not CpuPath.GENERAL and chunk >= BLAS_CHUNK:
        _run_blas_chunks(s, drivers, path, chunk, out)
    elif path is CpuPath.FLOAT32:
        m, k = fa.elements.shape
        n = fb.elements.shape[0]
        kp, np_ = -(-k // chunk) * chunk, -(-n // TILE32) * TILE32
        ea = np.zeros((m, kp), np.float32)
        ea[:, :k] = fa.elements
        ebk = np.zeros((kp, np_), np.float32)
        ebk[:k, :n] = fb.elements.T
        sbt = np.ones((fb.scales.shape[1], np_), np.float32)
        sbt[:, :n] = fb.scales.T
        f32acc = _f32acc(s)
        wide = np.empty((m, np_), np.float64)
        drivers.dot_f32(ea, fa.scales.astype(np.float32), fa.block, ebk, sbt, fb.block, chunk, s.q, f32acc, wide)
        out[...] = wide[:, :n]
    elif path is CpuPath.FLOAT64:
        ebk = np.ascontiguousarray(fb.elements.T)
        drivers.dot_fast(fa.elements, fa.scales, fa.block, ebk, fb.scales, fb.block, chunk, s.q, out)
    else:
        drivers.dot(*args, out, flags)
        return
    if tscale != 1.0:
        drivers.tensor_scale(out, tscale, s.q)


def matmul(
    a,
    b,
    a_format,
    b_format,
    accumulator: str | Accumulator = "fp32",
    chunk: int | None = None,
    order: Order | str = "sequential",
    partial_sum_bits: int | None = None,
    *,
    rounding: Rounding | str = "rne",
    target=None,
    engine=None,
    promote_every: int | None = None,
) -> np.ndarray:
    """Emulated a @ b on a dot-product unit (see the module docstring for the arithmetic).

    a, b:             (M, K) and (K, N) arrays, or (B, M, K) and (K, N) for a batch (quantized as one
                      tensor). CUDA device arrays are accepted (copied to the host to quantize).
                      b may also be `operand(b, b_format)`, quantized once for many products.
    a_format, b_format: format names or specs; block formats take their blocks along K.
    accumulator:      fp32, fp16, bf16, fp22 (1-8-13), tf32, eXmY, intN (wraps on overflow) or exact.
    chunk:            lanes summed exactly before each accumulation; must divide the blocks. Default:
                      the block (the common divisor of two blocks), or 1 for formats without blocks.
    order:            'sequential' (K order) or 'pairwise'.
    partial_sum_bits: truncate each product to this many bits below the chunk's largest (None: exact).
    rounding:         the accumulator's rounding mode (rne, rtz, rna, rup, rdown).
    target:           'cpu', 'cuda' or None (CPU).
    engine:           (arch, instruction) or 'arch:instruction' of a matrix engine (`engines()` lists
                      them): the GEMM runs as that instruction over K steps, C carried in its
                      accumulator type (`engine_gemm`); accumulator, chunk, order, partial_sum_bits and
                      rounding are then the engine's and must be left at their defaults.
    promote_every:    with an engine: add the engine's result into a float32 register (RNE) every
                      this many elements of K, restarting the engine from zero (a multiple of its k).
    Returns float64 (M, N) (or (B, M, N)) holding the accumulator's values.

    NaN and Inf, as the operands' formats quantize them (a block holding either is NaN), propagate
    by IEEE rules to the outputs they reach; other outputs are as without them.
      float accumulators and exact: NaN if the dot product involves a NaN, an Inf times 0 or Inf
        products of both signs, else the Inf of the Inf products' sign (the finite products do not
        change it); times the NVFP4 epilogue's alpha by IEEE rules.
      integer accumulators: integer formats have no Inf (quantizing saturates it), and a NaN, which
        quantize keeps, makes every output it reaches NaN.
    """
    a_arr = a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)
    if a_arr.ndim == 3:
        batch, rows, k = a_arr.shape
        _check_batch_tiles(a_format, rows)
        out = matmul(
            a_arr.reshape(batch * rows, k),
            b,
            a_format,
            b_format,
            accumulator,
            chunk,
            order,
            partial_sum_bits,
            rounding=rounding,
            target=target,
            engine=engine,
            promote_every=promote_every,
        )
        return out.reshape(batch, rows, -1)
    if engine is not None or promote_every is not None:
        unit = (accumulator, chunk, order, partial_sum_bits, rounding)
        return _engine_matmul(a_arr, b, a_format, b_format, engine, promote_every, unit, target)
    if a_arr.ndim == 2 and a_arr.shape[0] == 0:  # no rows: nothing to quantize, an empty product
        return _empty_product(a_arr, b)
    s = _setup(a_arr, b, a_format, b_format, accumulator, chunk, order, partial_sum_bits, rounding)
    with threads_for(s.fa.elements.size * s.fb.elements.shape[0]):  # M K N multiply-adds
        return _run(s, target)


def _engine_matmul(a: np.ndarray, b, a_format, b_format, engine, promote_every, unit: tuple, target) -> np.ndarray:
    """matmul on a matrix engine (`engine_gemm`); unit: the dot-product unit's arguments, which an
    engine replaces."""
    if engine is None:
        raise ValueError("promote_every: promotion applies to a matrix engine; pass engine=(arch, instruction)")
    _check_engine_unit(*unit)
    a = _check_2d(a, "a")
    quantized = isinstance(b, Factors)
    n = _matching_k(a, b)
    specs = [None if f is None or engine_gemm.wide_format(f) else get_format(f) for f in (a_format, b_format)]
    if any(getattr(s, "micro", None) is not None for s in specs):
        raise ValueError(
            "a_format, b_format: matrix engines have no micro-exponent (sub-block shift) stage; MX9, MX6 and "
            "MX4 run on the dot-product unit (engine=None)"
        )
    block = getattr(specs[0], "block", None) if isinstance(specs[0], ScaledFormat) else None
    profile = engine_gemm.resolve(engine, *specs, block or None)
    every = engine_gemm.check_promote(promote_every, profile)
    if a.shape[0] == 0:
        return np.zeros((0, n))
    fa = _engine_factors(a, a_format)
    fb = b if quantized else _engine_factors(np.ascontiguousarray(_check_2d(b, "b").T), b_format)
    # a b quantized beforehand is checked by its values: b_format need not be the format it was quantized to
    ops = engine_gemm.engine_operands(profile, fa, fb, a_format, None if quantized else b_format)
    with threads_for(fa.elements.size * fb.elements.shape[0]):
        return engine_gemm.run(profile, ops, every, host_target(target))


def _check_engine_unit(accumulator, chunk, order, partial_sum_bits, rounding) -> None:
    """The dot-product unit's arguments, which an engine replaces, must be at their defaults."""
    given = {
        "accumulator": get_accumulator(accumulator) == get_accumulator("fp32"),
        "chunk": chunk is None,
        "order": parse_enum(Order, order, "order") is Order.SEQUENTIAL,
        "partial_sum_bits": partial_sum_bits is None,
        "rounding": parse_enum(Rounding, rounding, "rounding") is Rounding.RNE,
    }
    for name, default in given.items():
        if not default:
            raise ValueError(f"{name}: an engine sets the accumulation itself; leave {name} at its default")


def _engine_factors(x: np.ndarray, fmt) -> Factors:
    """x (rows, K) quantized along K for an engine: lowbit's formats, or the wide operand types of
    float32, tf32 and float64 instructions (`engine_gemm.wide_values`)."""
    if not engine_gemm.wide_format(fmt):
        return factors(x, fmt)
    rows, k = x.shape
    return Factors(engine_gemm.wide_values(x, fmt), np.ones((rows, 1)), max(k, 1), 1.0, False, 0.0, 1, False)


def _matching_k(a: np.ndarray, b) -> int:
    """b's N, once its K (rows, or a quantized operand's columns) is a's; ValueError otherwise."""
    k_b, n = (b.elements.shape[1], b.elements.shape[0]) if isinstance(b, Factors) else _check_2d(b, "b").shape
    if a.shape[1] != k_b:
        raise ValueError(f"a has K = {a.shape[1]} columns but b has {k_b} rows; they must match")
    return n


def _empty_product(a: np.ndarray, b) -> np.ndarray:
    n = _matching_k(a, b)
    return np.zeros((0, n))


def dot(x, y, x_format, y_format, accumulator: str | Accumulator = "fp32", **kwargs) -> float:
    """Emulated dot product of two 1-D arrays of equal length (see `matmul` for the options)."""
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    if x_arr.ndim != 1 or y_arr.ndim != 1:
        raise ValueError(f"x and y must be 1-D, got shapes {x_arr.shape} and {y_arr.shape}")
    return float(matmul(x_arr[None, :], y_arr[:, None], x_format, y_format, accumulator, **kwargs)[0, 0])


@dataclass(frozen=True)
class MatmulError:
    """An emulated product and its errors (float64 arrays of the output's shape).

    result:                the emulated product.
    reference:             float64 a @ b of the unquantized inputs.
    dequantized_reference: float64 a @ b of the quantized (dequantized) inputs.
    error:                 result - reference: quantization and accumulation together.
    accumulation_error:    result - dequantized_reference: the accumulation alone.
    """

    result: np.ndarray
    reference: np.ndarray
    dequantized_reference: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return self.result - self.reference

    @property
    def accumulation_error(self) -> np.ndarray:
        return self.result - self.dequantized_reference

    @property
    def relative_error(self) -> float:
        """||error|| / ||reference|| (Frobenius)."""
        return float(np.linalg.norm(self.error) / max(np.linalg.norm(self.reference), 1e-300))

    @property
    def relative_accumulation_error(self) -> float:
        return float(np.linalg.norm(self.accumulation_error) / max(np.linalg.norm(self.dequantized_reference), 1e-300))


def _check_batch_tiles(a_format, rows: int) -> None:
    """A batch runs as one (B * M, K) matrix: 2-D tiles of a_format would span two batch entries
    unless M is a multiple of the tile's rows."""
    spec = None if a_format is None or engine_gemm.wide_format(a_format) else get_format(a_format)
    tile = getattr(spec, "block_rows", 1)
    if tile > 1 and rows % tile:
        raise ValueError(
            f"a_format: {tile} x {spec.block} tiles over a batch need M a multiple of {tile}, got M = {rows}; "
            "quantize each batch entry's matrix on its own, or use a 1-D block format for a"
        )


def matmul_error(a, b, a_format, b_format, accumulator: str | Accumulator = "fp32", **kwargs) -> MatmulError:
    """`matmul` with its error against float64 products of the unquantized and of the dequantized
    inputs (2-D inputs)."""
    if kwargs.get("engine") is not None:
        result = matmul(a, b, a_format, b_format, accumulator, **kwargs)
        a64, b64 = _check_2d(a, "a").astype(np.float64), _check_2d(b, "b").astype(np.float64)
        fa, fb = _engine_factors(a64, a_format), _engine_factors(np.ascontiguousarray(b64.T), b_format)
        with np.errstate(invalid="ignore", over="ignore"):
            return MatmulError(result, a64 @ b64, fa.dequantized @ fb.dequantized.T)
    s = _setup(
        a,
        b,
        a_format,
        b_format,
        accumulator,
        kwargs.pop("chunk", None),
        kwargs.pop("order", "sequential"),
        kwargs.pop("partial_sum_bits", None),
        kwargs.pop("rounding", "rne"),
    )
    result = _run(s, kwargs.pop("target", None))
    if kwargs:
        raise TypeError(f"matmul_error: unexpected arguments {sorted(kwargs)}")
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and Inf propagate here as in `result`
        return MatmulError(result, a64 @ b64, s.fa.dequantized @ s.fb.dequantized.T)
