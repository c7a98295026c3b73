"""Whole GEMMs on a matrix engine: `matmul(..., engine=(arch, instruction), promote_every=N)`.

K is cut into the instruction's k steps (the last one zero-padded, as a tiled main loop pads its
last tile), and C is carried from step to step in the instruction's accumulator type, as CUTLASS
and cuBLAS main loops do: each step is one `mma` over every output at once (outputs do not
interact, so M and N need no tiling). With `promote_every=N` the engine restarts from C = 0 every
N elements of K and its result is added into a float32 register with round-to-nearest-even (the
promotion of DeepSeek-V3's FP8 GEMMs, DeepGEMM's main loop). Block formats feed a block-scaled
instruction with their scales; an NVFP4 tensor scale is the epilogue's alpha, rounded to float32
and applied to the float32 result with one more rounding.

The reference driver here runs the algorithms of `matrix_engines` step by step on NumPy arrays.
`run` computes the same chain in compiled code (`kernels.engine_scalar`, on the CPU or CUDA) for
the truncated fused sums (`FAST_ALGORITHMS`) where a check of the profile proves the kernels'
float arithmetic exact, and is tested to equal this driver bit for bit.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..formats import ScaledFormat, get_format
from ..formats.engines import (
    Algorithm,
    EngineProfile,
    Normalization,
    OperandType,
    SumRounding,
    get_engine,
    operand_types,
)
from .kernels import dispatch
from .kernels import engine_scalar as es
from .kernels.dispatch import Out, Suite, Target
from .matrix_engines import fits_type, run_algorithm

_STEP_ELEMENTS = 1 << 22  # products held at once by the reference driver (M_rows x N x k)


@dataclass(frozen=True)
class EngineOperands:
    """The operands as an instruction reads them, K zero-padded to a multiple of the instruction's k.

    a (M, Kp) and b (Kp, N): element values (float64) of the instruction's A and B types;
    scale_a (M, Kp / block) and scale_b (Kp / block, N): block scale values, or None for an
    instruction without block scales; alpha: the product of the tensor scales (1.0 without)."""

    a: np.ndarray
    b: np.ndarray
    scale_a: np.ndarray | None
    scale_b: np.ndarray | None
    alpha: float


# The operand types of float32, tf32 and float64 instructions, which lowbit's element formats (16
# bits at most) do not cover: (fraction bits, emin) of the values an engine format holds.
_WIDE = {"float32": (23, -126), "tf32": (10, -126), "float64": (52, -1022)}


def wide_format(fmt) -> bool:
    return isinstance(fmt, str) and fmt.strip().lower() in _WIDE


def wide_values(x: np.ndarray, fmt: str) -> np.ndarray:
    """x in a wide engine format as float64: float64 as it is, float32 converted (RNE), tf32 the
    float32 value rounded to nearest even at 10 fraction bits (and at tf32's subnormal step)."""
    name = fmt.strip().lower()
    if name == "float64":
        return np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        v = np.asarray(x, np.float32).astype(np.float64)
    if name == "float32":
        return v
    man, emin = _WIDE[name]
    with np.errstate(invalid="ignore", over="ignore"):
        c = v * (2.0 ** (52 - man) + 1.0)  # Veltkamp: the top man + 1 bits of v, rounded to nearest even
        normal = c - (c - v)
        sub = 1.5 * 2.0 ** (emin - man + 52)  # (v + C) - C: v rounded at the subnormal step
        r = np.where(np.abs(v) >= 2.0**emin, normal, np.copysign((np.abs(v) + sub) - sub, v))
        r = np.where(np.isfinite(v), r, v)
    return np.where(np.abs(r) > np.finfo(np.float32).max, np.copysign(np.inf, r), r)


def parse_engine(engine) -> tuple[str, str]:
    """`engine` as (arch, instruction): a pair, or a string 'arch:instruction'."""
    if isinstance(engine, str) and ":" in engine:
        arch, instruction = engine.split(":", 1)
        return arch.strip(), instruction.strip()
    if isinstance(engine, (tuple, list)) and len(engine) == 2 and all(isinstance(x, str) for x in engine):
        return engine[0], engine[1]
    raise ValueError(f"engine must be (arch, instruction) or 'arch:instruction', got {engine!r}")


def _scale_name(spec) -> str | None:
    """The instruction scale type ('ue8m0', 'ue4m3') a block format's scale format is."""
    scale = getattr(spec, "scale", None)
    name = getattr(scale, "name", None)
    for t in operand_types().values():
        if t.fmt is not None and t.fmt == name and t.name.startswith("u"):
            return t.name
    return None


def resolve(engine, a_spec, b_spec, a_block: int | None) -> EngineProfile:
    """The profile of `engine`, a block-scaled kind's block and scale type taken from the formats."""
    arch, instruction = parse_engine(engine)
    scale = _scale_name(a_spec) or _scale_name(b_spec)
    return get_engine(arch, instruction, block=a_block, scale=scale)


def _table(fmt) -> np.ndarray | None:
    """Every element value a lowbit format can give (its code table, times an MXINT step), or None
    where the elements are not a fixed table (wide formats, zero points)."""
    if fmt is None or wide_format(fmt):
        return None
    spec = get_format(fmt)
    if getattr(spec, "asymmetric", False):
        return None
    element = getattr(spec, "element", spec)
    table = getattr(element, "code_values", None)
    return None if table is None else np.asarray(table, np.float64) * getattr(spec, "element_step", 1.0)


def table_fits(fmt, t: OperandType) -> bool | None:
    """Whether every finite element value `fmt` can give is a value of type t; None where the format
    has no fixed table (wide formats, zero points), so that only its data can tell."""
    table = _table(fmt)
    if table is None:
        return None
    return bool(fits_type(table[np.isfinite(table)], t).all())


def cannot_read(p: EngineProfile, fmt) -> str | None:
    """Why instruction p cannot run a GEMM whose two operands take `fmt`, from the format alone; None
    when it can (a NaN or Inf the data holds may still be refused when the operands are checked)."""
    spec = None if wide_format(fmt) else get_format(fmt)
    scaled = isinstance(spec, ScaledFormat)
    if scaled and spec.micro is not None:
        return "it has no micro-exponent (sub-block shift) stage"
    if p.block_scaled and not (scaled and spec.block == p.block_size and _scale_name(spec) == p.scale_type.name):
        return f"it reads blocks of {p.block_size} elements with {p.scale_type.label} scales"
    if scaled and not p.block_scaled:
        return "it takes no scales (element formats only)"
    for t in dict.fromkeys((p.a_type, p.b_type)):
        if table_fits(fmt, t) is False:
            name = getattr(spec, "name", None) or str(fmt)
            return f"it reads {t.label} elements, and {name} has values that {t.label} does not hold"
    return None


def _check_values(values: np.ndarray, t: OperandType, what: str, fmt=None) -> None:
    """Every value is one of t's; a format whose whole table is passes without looking at the values."""
    # quantize keeps a NaN (or Inf) that a format has no code for: only finite values come from the table
    specials_fit = t.has_nan and t.has_inf
    if table_fits(fmt, t) and (specials_fit or np.isfinite(values).all()):
        return
    bad = ~fits_type(values, t)
    if bad.any():
        raise ValueError(f"{what}: {float(values[bad][0])!r} is not a {t.label} value, which the instruction reads")


def check_promote(promote_every, p: EngineProfile) -> int | None:
    """promote_every as an int multiple of the instruction's k, or None."""
    if promote_every is None:
        return None
    ok = isinstance(promote_every, (int, np.integer)) and not isinstance(promote_every, (bool, np.bool_))
    if not ok or promote_every < 1 or promote_every % p.k:
        raise ValueError(
            f"promote_every must be a positive multiple of the instruction's k = {p.k} elements of K, "
            f"got {promote_every!r}"
        )
    return int(promote_every)


def _padded(x: np.ndarray, cols: int, fill: float) -> np.ndarray:
    if x.shape[1] == cols:
        return np.ascontiguousarray(x, np.float64)
    out = np.full((x.shape[0], cols), fill, np.float64)
    out[:, : x.shape[1]] = x
    return out


def engine_operands(p: EngineProfile, fa, fb, a_format, b_format) -> EngineOperands:
    """The quantized operands (`gemm.Factors`: a along K, b transposed along K) as the instruction
    reads them; a ValueError names the format that the instruction cannot read."""
    k = fa.elements.shape[1]
    kp = -(-k // p.k) * p.k
    sides = ((fa, a_format, p.a_type), (fb, b_format, p.b_type))
    for f, fmt, t in sides:
        name = f"{'a' if f is fa else 'b'}_format {fmt!r}"
        if p.block_scaled and f.nominal_block != p.block_size:
            raise ValueError(
                f"{name}: {p.instruction} scales blocks of {p.block_size} elements along K; the format needs that block"
            )
        if not p.block_scaled and (f.finite_block or not np.all(f.scales == 1.0)):
            raise ValueError(f"{name}: {p.instruction} takes no block scales; use an element format")
        _check_values(f.elements, t, name, fmt)
        if p.block_scaled:
            _check_values(f.scales, p.scale_type, f"{name} scales")
    if not p.block_scaled and (fa.tensor != 1.0 or fb.tensor != 1.0):
        raise ValueError(f"a_format, b_format: {p.instruction} takes no tensor scales")
    a = _padded(fa.elements, kp, 0.0)
    b = np.ascontiguousarray(_padded(fb.elements, kp, 0.0).T)
    sa = sb = None
    if p.block_scaled:
        blocks = kp // p.block_size
        sa = _padded(fa.scales, blocks, 1.0)
        sb = np.ascontiguousarray(_padded(fb.scales, blocks, 1.0).T)
    alpha = float(np.float32(np.float32(fa.tensor) * np.float32(fb.tensor)))
    return EngineOperands(a, b, sa, sb, alpha)


# ----- the reference driver ------------------------------------------------------------------
def _segment_reference(p: EngineProfile, ops: EngineOperands, k0: int, k1: int) -> np.ndarray:
    """The engine's result over K columns k0..k1 from C = 0: one instruction per k step, rows in
    blocks that bound the memory of the (rows, N, k) products."""
    m, n = ops.a.shape[0], ops.b.shape[1]
    rows = max(1, _STEP_ELEMENTS // max(1, n * p.k))
    out = np.zeros((m, n))
    per_block = p.block_size or 1
    for r0 in range(0, m, rows):
        r1 = min(m, r0 + rows)
        shaped = dataclasses.replace(p, m=r1 - r0, n=n)
        c = np.zeros((r1 - r0, n))
        for s in range(k0, k1, p.k):
            cols = slice(s, s + p.k)
            scales = None
            if p.block_scaled:
                bcols = slice(s // per_block, (s + p.k) // per_block)
                scales = (ops.scale_a[r0:r1, bcols], ops.scale_b[bcols])
            c = run_algorithm(shaped, ops.a[r0:r1, cols], ops.b[cols], c, scales)
        out[r0:r1] = c
    return out


def reference(p: EngineProfile, ops: EngineOperands, promote_every: int | None) -> np.ndarray:
    """The GEMM by the reference driver (float64 holding the result's values)."""
    return promoted(p, ops, promote_every, _segment_reference)


def promoted(p: EngineProfile, ops: EngineOperands, promote_every: int | None, segment: Callable) -> np.ndarray:
    """The engine's segments over K, each added into a float32 register with RNE when promoting,
    then the epilogue's alpha."""
    kp = ops.a.shape[1]
    if promote_every is None:
        out = segment(p, ops, 0, kp)
    else:
        acc = np.zeros((ops.a.shape[0], ops.b.shape[1]), np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            for k0 in range(0, kp, promote_every):
                acc += segment(p, ops, k0, min(kp, k0 + promote_every)).astype(np.float32)
        out = acc.astype(np.float64)
    if ops.alpha != 1.0:
        with np.errstate(invalid="ignore", over="ignore"):
            out = (out.astype(np.float32) * np.float32(ops.alpha)).astype(np.float64)
    return out


FAST_ALGORITHMS = frozenset({Algorithm.T_FDPA, Algorithm.ST_FDPA, Algorithm.GST_FDPA})


def run(p: EngineProfile, ops: EngineOperands, promote_every: int | None, target: Target) -> np.ndarray:
    """The GEMM on `target` (a `Target`): compiled kernels for the fused-sum algorithms where
    `_plan` proves them exact, the reference driver for the others. Float64 holding the result."""
    plan = _plan(p)
    if plan is None or ops.a.shape[0] == 0 or ops.b.shape[1] == 0:
        return reference(p, ops, promote_every)
    kernel = _Compiled.build(plan, p, ops, target)
    return promoted(p, ops, promote_every, kernel.segment)


# ----- the compiled driver: its plan ----------------------------------------------------------
_STRIP = 256  # columns the CPU drivers vectorise over (a strip of B, contiguous); fewer for a small N

# The output of each fused sum: fraction bits, smallest normal exponent, largest exponent, RNE.
_OUTPUTS = {
    Normalization.RZ_FP32: (23, -126, 127, 0),
    Normalization.RZ_E8M13: (13, -126, 127, 0),
    Normalization.RNE_FP16: (10, -14, 15, 1),
}
# Per element dtype: the factor's exponent range (its normal range) and its significand bits.
_FLOATS = ((np.float32, -126, 127, 24), (np.float64, -1022, 1023, 53))
_EXACT = 2**53  # float64 and int64 hold every integer up to this exactly


class _Kernel(enum.Enum):
    FDPA = "fdpa"  # T_FDPA and ST_FDPA
    GST = "gst"


@dataclass(frozen=True)
class _Plan:
    """How the compiled kernels run a profile: the kernel, the element values' dtype, the
    exponents' dtype and their zero marker, and the configuration vector (`engine_scalar.C_*`)."""

    kernel: _Kernel
    dtype: type
    exp_dtype: type
    left_out: int
    cfg: np.ndarray


def _top_exponent(t: OperandType) -> int:
    return int(np.floor(np.log2(t.max_value)))


def _step(t: OperandType) -> float:
    """The finest step of the type's values (its smallest subnormal)."""
    return 2.0 ** (t.emin - t.man_bits)


def _plan(p: EngineProfile) -> _Plan | None:
    """The compiled kernels' plan for p, or None where the reference must run: each condition of
    `engine_scalar`'s exactness proof checked on the profile."""
    common = (
        p.algorithm in FAST_ALGORITHMS
        and p.sum_rounding is SumRounding.TRUNCATE
        and p.normalization in _OUTPUTS
        and p.fraction_bits is not None
        and p.zero_exponent is not None
        and {p.c_type.name, p.d_type.name} <= {"f16", "f32"}
        and p.zero_exponent <= min(p.c_type.emin, p.d_type.emin)  # zero products never set the maximum
    )
    if not common:
        return None
    cfg = _common_cfg(p)
    if p.algorithm is Algorithm.GST_FDPA:
        return _gst_plan(p, cfg)
    return _fdpa_plan(p, cfg)


def _common_cfg(p: EngineProfile) -> np.ndarray:
    cfg = np.zeros(es.C_COUNT, np.int64)
    man, emin, emax, rne = _OUTPUTS[p.normalization]
    c, d = p.c_type, p.d_type
    values = {
        es.C_BITS: p.fraction_bits,
        es.C_ZERO: p.zero_exponent,
        es.C_GROUP: p.group_size,
        es.C_SPLIT: p.split_k,
        es.C_MAN: man,
        es.C_EMIN: emin,
        es.C_EMAX: emax,
        es.C_RNE: rne,
        es.C_NARROW: int(c.man_bits < d.man_bits or c.emin > d.emin),
        es.C_C_MAN: c.man_bits,
        es.C_C_EMIN: c.emin,
        es.C_D_EMIN: d.emin,
    }
    for index, value in values.items():
        cfg[index] = value
    return cfg


def _fdpa_plan(p: EngineProfile, cfg: np.ndarray) -> _Plan | None:
    """T_FDPA / ST_FDPA: the narrowest float in which every product and term is exact (module
    doc of `engine_scalar`, points 1 to 3), int8 exponents and int32 sums where they fit."""
    ta, tb, bits, group = p.a_type, p.b_type, p.fraction_bits, p.group_size
    if p.block_scaled and (p.scale_type.man_bits != 0 or p.block_size % group):
        return None  # ST_FDPA's scales must be powers of two, one pair per fused sum
    if group * 2.0 ** (bits + 2) + 2.0 ** (bits + 1) > _EXACT:
        return None
    sig_bits = ta.man_bits + tb.man_bits + 2
    pair_min = ta.emin + tb.emin  # the smallest alignment exponent of a nonzero product
    biggest = math.log2(ta.max_value * tb.max_value)  # log2 of the largest product
    for dtype, lo, hi, width in _FLOATS:  # noqa: B007 (the loop picks dtype)
        tiny = 2.0 ** (lo - width + 1)  # the dtype's smallest subnormal
        elements = all(t.man_bits < width and _step(t) >= tiny and t.max_value < 2.0**hi for t in (ta, tb))
        fits = elements and sig_bits <= width and _step(ta) * _step(tb) >= tiny
        if fits and bits - pair_min <= hi and biggest + lo < 0 and biggest < hi + 1:
            break
    else:
        return None
    top = max(_top_exponent(ta), _top_exponent(tb))
    small = dtype is np.float32 and es.LEFT_OUT8 + top <= es.LEFT_OUT8 // 2 < pair_min and 2 * top < 127
    left = es.LEFT_OUT8 if small else es.LEFT_OUT16
    if not (left + top <= left // 2 < pair_min and 2 * top < 2**15):
        return None
    cfg[es.C_LO], cfg[es.C_HI], cfg[es.C_NONE], cfg[es.C_SMALL] = lo, hi, left // 2, small
    cfg[es.C_SUM32] = dtype is np.float32 and group * 2.0 ** (bits + 2) < 2.0**31
    return _Plan(_Kernel.FDPA, dtype, np.int8 if small else np.int16, left, cfg)


def _gst_plan(p: EngineProfile, cfg: np.ndarray) -> _Plan | None:
    """GST_FDPA: elements in fixed point in int8 (`matrix_engines._fixed`), subgroup sums in int16,
    their scaled terms below 2^53 (module doc of `engine_scalar`)."""
    ta, tb, ts, sub, bits = p.a_type, p.b_type, p.scale_type, p.subgroup, p.fraction_bits
    fixed_a, fixed_b = ta.max_value / _step(ta), tb.max_value / _step(tb)  # the largest fixed-point values
    largest_sum = sub * ta.max_value * tb.max_value
    term = largest_sum * 4.0 * 2.0**bits
    ok = (
        max(fixed_a, fixed_b) <= 127
        and sub * fixed_a * fixed_b < 2**15
        and 15 + 2 * (ts.man_bits + 1) <= 53
        and _step(ts) ** 2 >= 2.0**-1022
        and p.group_size % sub == 0
        and p.block_size % sub == 0
        and (p.group_size // sub) * term + 2.0 ** (bits + 1) <= _EXACT
    )
    if not ok:
        return None
    cfg[es.C_SUB], cfg[es.C_BLOCK] = sub, p.block_size
    cfg[es.C_FIX] = ta.man_bits - ta.emin + tb.man_bits - tb.emin
    return _Plan(_Kernel.GST, np.int8, np.int8, 0, cfg)


# ----- the compiled driver: operands and segments ---------------------------------------------
def _operand(x: np.ndarray, plan: _Plan, emin: int, left: int, strips: bool, scale: float = 1.0) -> tuple:
    """Finite values of x (NaN and Inf zeroed) times scale in the plan's dtype, and their alignment
    exponents (`matrix_engines._split`: floor(log2|x|), at least emin; `left` for a zero); B's in
    strips of columns for the CPU drivers."""
    if strips:
        k, n = x.shape
        w = _strip_width(n)
        shape = (-(-n // w), k, w)
    else:
        shape = x.shape
    vals, exps = np.empty(shape, plan.dtype), np.empty(shape, plan.exp_dtype)
    name = "operand_strips" if strips else "operand"
    dispatch.run(name, Target.CPU, x.size, x, scale, emin, left, Out(vals), Out(exps), suite=Suite.ENGINE)
    return vals, exps


def _finite(x: np.ndarray, dtype, fill: float = 0.0) -> np.ndarray:
    return np.ascontiguousarray(np.where(np.isfinite(x), x, fill), dtype)


def _strip_width(n: int) -> int:
    """Columns a strip: _STRIP, or N rounded up to 32 (a vector's int8 lanes) when it is smaller."""
    return min(_STRIP, -(-n // 32) * 32)


def _pad_cols(x: np.ndarray, fill) -> np.ndarray:
    """x (rows, N) with N padded with fill to whole strips."""
    n = x.shape[1]
    w = _strip_width(n)
    out = np.full((x.shape[0], -(-n // w) * w), fill, x.dtype)
    out[:, :n] = x
    return out


def _scale_exponents(s: np.ndarray, t: OperandType) -> np.ndarray:
    """The exponents `_split` gives finite block scales (at least the type's emin)."""
    return np.maximum(np.frexp(s)[1] - 1, t.emin).astype(np.int16)


def _fdpa_args(plan: _Plan, p: EngineProfile, ops: EngineOperands, cpu: bool) -> tuple:
    """(a, ea, b, eb, xa, xb) of `engine_scalar.fdpa_loop` (cpu: B's side in strips) or `fdpa_one`."""
    a, ea = _operand(ops.a, plan, p.a_type.emin, plan.left_out, False)
    b, eb = _operand(ops.b, plan, p.b_type.emin, plan.left_out, cpu)
    groups, n = a.shape[1] // p.group_size, ops.b.shape[1]
    if p.block_scaled:  # one scale pair per fused sum (checked by _fdpa_plan)
        per_block = p.block_size // p.group_size
        xa = np.repeat(_scale_exponents(_finite(ops.scale_a, np.float64, 1.0), p.scale_type), per_block, axis=1)
        xb = np.repeat(_scale_exponents(_finite(ops.scale_b, np.float64, 1.0), p.scale_type), per_block, axis=0)
    else:
        xa, xb = np.zeros((a.shape[0], groups), np.int16), np.zeros((groups, n), np.int16)
    return a, ea, b, eb, xa, _pad_cols(xb, 0) if cpu else xb


def _gst_args(plan: _Plan, p: EngineProfile, ops: EngineOperands, cpu: bool) -> tuple:
    """(a, nza, b, nzb, sa, xa, sb, xb) of `engine_scalar.gst_loop` (cpu: B's side in strips) or
    `gst_one`: the elements in fixed point (units of the type's smallest subnormal,
    `matrix_engines._fixed`), and flags positive for a nonzero element, 0 for a zero one (their
    exponents clamped to at least 1)."""
    ta, tb = p.a_type, p.b_type
    a, nza = _operand(ops.a, plan, 1, 0, False, 2.0 ** (ta.man_bits - ta.emin))
    b, nzb = _operand(ops.b, plan, 1, 0, cpu, 2.0 ** (tb.man_bits - tb.emin))
    sa, sb = _finite(ops.scale_a, np.float64), _finite(ops.scale_b, np.float64)
    xa, xb = _scale_exponents(sa, p.scale_type), _scale_exponents(sb, p.scale_type)
    if cpu:
        return a, nza, b, nzb, sa, xa, _pad_cols(sb, 0.0), _pad_cols(xb, 0)
    return a, nza, b, nzb, sa, xa, sb, xb


@dataclass(frozen=True)
class _Compiled:
    """A GEMM's operands prepared once for the compiled kernels (values with NaN and Inf zeroed,
    alignment exponents, zero flags, scale exponents; on the CPU, B's side in strips of columns).

    args: the kernel's arrays before (k0, k1, cfg, out); cols: output columns the kernel writes;
    n: the GEMM's N."""

    plan: _Plan
    target: Target
    args: tuple
    cols: int
    n: int

    @classmethod
    def build(cls, plan: _Plan, p: EngineProfile, ops: EngineOperands, target: Target) -> _Compiled:
        cpu = target is not Target.CUDA
        make = _fdpa_args if plan.kernel is _Kernel.FDPA else _gst_args
        args = make(plan, p, ops, cpu)
        n = ops.b.shape[1]
        return cls(plan, target, args, args[2].shape[0] * args[2].shape[2] if cpu else n, n)

    def segment(self, p: EngineProfile, ops: EngineOperands, k0: int, k1: int) -> np.ndarray:
        """The engine's result over K columns k0..k1 from C = 0 (the `segment` of `promoted`):
        the kernel on the finite operands, then the outputs whose operands hold NaN or Inf by
        the reference driver."""
        m = ops.a.shape[0]
        out = np.empty((m, self.cols))  # the kernels write every element
        name = self.plan.kernel.value
        if self.target is not Target.CUDA and self.plan.cfg[es.C_SMALL]:
            name += "_small"  # the CPU build with int8 exponent lanes
        dispatch.run(name, self.target, m * self.cols, *self.args, k0, k1, self.plan.cfg, Out(out), suite=Suite.ENGINE)
        out = np.ascontiguousarray(out[:, : self.n])
        _patch_nonfinite(p, ops, k0, k1, out)
        return out


def _patch_nonfinite(p: EngineProfile, ops: EngineOperands, k0: int, k1: int, out: np.ndarray) -> None:
    """Outputs whose row of A or column of B (or their scales) holds NaN or Inf in k0..k1, by the
    reference driver on those rows and columns alone (the kernels ran on zeroed values)."""
    rows = ~np.isfinite(ops.a[:, k0:k1]).all(axis=1)
    cols = ~np.isfinite(ops.b[k0:k1]).all(axis=0)
    if p.block_scaled:
        blocks = slice(k0 // p.block_size, -(-k1 // p.block_size))
        rows |= ~np.isfinite(ops.scale_a[:, blocks]).all(axis=1)
        cols |= ~np.isfinite(ops.scale_b[blocks]).all(axis=0)
    if rows.any():
        sub = dataclasses.replace(ops, a=ops.a[rows], scale_a=None if ops.scale_a is None else ops.scale_a[rows])
        out[rows] = _segment_reference(p, sub, k0, k1)
    if cols.any():
        sub = dataclasses.replace(ops, b=ops.b[:, cols], scale_b=None if ops.scale_b is None else ops.scale_b[:, cols])
        out[:, cols] = _segment_reference(p, sub, k0, k1)
