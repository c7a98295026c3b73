"""Quantizers with a learnable scale per row: ParetoQ's binary and SEQ quantizers and LSQ.

For a weight w of shape (rows, K) and a scale s of shape (rows, 1) (an `nn.Parameter`, one value per
row, the same scale axis as lowbit's per-channel formats with `axis=-1`):

    u = w / s                 (float32, elementwise)
    q = s * Q(u)              Q: lowbit's rounding of u to the kind's element grid, which clips

Q is computed by `lowbit.torch.quantize` on the element format of the lowbit catalog entry of the
kind, so the values are lowbit's, bit for bit. The backward pass is the straight-through estimator
of LSQ (Esser et al. 2020, "Learned Step Size Quantization"; the step's gradient is its eq. 3):
rounding counts as the identity where u lies in the clip range [lo, hi] (bounds included), and the
clip is constant outside:

    dq/dw = 1 where lo <= u <= hi, 0 outside
    dq/ds = Q(u) - u inside, Q(u) outside (the clipped grid value, constant in s)

and the scale's gradient is multiplied by LSQ's gradient scale g = 1 / sqrt(N * Qp), N the
elements per scale (K) and Qp the grid's largest positive level in steps (LSQ's step size gradient
scale).

Kinds, from ParetoQ (Liu et al. 2025, "ParetoQ: Scaling Laws in Extremely Low-bit LLM Quantization",
and its reference code) and LSQ:

    kind          bits  element (lowbit)                  clip range   scale init        Qp for g
    binary        1     binary_codebook {-1, +1}          [-1, 1]      mean|w| per row   1
    seq_ternary   1.58  seq_ternary: k/1.5, k in [-1, 1]  [-1, 1]      max|w| per row    1
    seq_2bit      2     seq_2bit: (k+0.5)/2, k in [-2, 1] [-1, 1]      max|w| per row    1
    lsq_int3      3     IntFormat(3): k in [-4, 3]        [-4, 3]      2 mean|w|/sqrt 3  3
    lsq_int4      4     IntFormat(4): k in [-8, 7]        [-8, 7]      2 mean|w|/sqrt 7  7

- binary: q = s * sign(w). Q does not depend on u's magnitude, so dq/ds is sign(w) everywhere, the
  exact derivative, as ParetoQ gives it (not sign(u) - u). lowbit's binary codebook maps w = 0 to
  +s where torch.sign gives 0; trained weights are never exactly 0.
- SEQ: the clip bound is the grid's `range` (1.0; ParetoQ clips u at +-0.99 before rounding so that
  1.5 * 0.99 rounds to k = 1, and lowbit's grid clips k itself: the values are the same). Outside
  the bound dq/ds is the clipped grid value, +-2/3 for ternary and +-3/4 for 2 bits. ParetoQ's
  reference code uses +-1 for ternary there (the bound, not the grid value); this module follows the
  derivative of the forward it computes, where the two differ only for ternary.
- LSQ: lowbit's IntFormat(b) is two's complement, [-2^(b-1), 2^(b-1) - 1], LSQ's Qn = 2^(b-1),
  Qp = 2^(b-1) - 1 for signed weights. The step's init is LSQ's 2 mean|w| / sqrt(Qp); ParetoQ's
  reference code initialises it to max|w| / Qp instead (pass `scale=` for that).
- The gradient scale g is applied to every kind, with Qp = 1 for binary and SEQ, as ParetoQ's
  reference code does; ParetoQ's code takes N as the whole tensor's element count, LSQ's paper one
  step per layer; with one scale per row N here is the row length K, the elements that share the
  scale. With Adam, a constant factor on a parameter's gradient changes almost nothing.
- The scale is clamped to at least 1e-12 (units of w) in the forward pass, so that a scale driven
  to zero or below never divides by zero or flips signs; its gradient passes unchanged (ParetoQ
  clamps at 1e-5 the same way).
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ..formats import ScaledFormat, get_format, parse_enum
from ..formats.grid import GridFormat
from ..formats.spec import IntFormat
from .tensors import quantize

#: Smallest scale the forward pass divides by (units of w).
_MIN_SCALE = 1e-12
#: Computation dtypes: others (float16, bfloat16) compute in float32 and return their own dtype.
_NATIVE = (torch.float32, torch.float64)


class LearnedKind(enum.Enum):
    """A quantizer with a learnable per-row scale (module docstring)."""

    BINARY = "binary"
    SEQ_TERNARY = "seq_ternary"
    SEQ_2BIT = "seq_2bit"
    LSQ_INT3 = "lsq_int3"
    LSQ_INT4 = "lsq_int4"


class ScaleInit(enum.Enum):
    """How a kind's scale starts, per row of w."""

    ABSMEAN = "absmean"  # mean|w|
    ABSMAX = "absmax"  # max|w|
    LSQ = "lsq"  # 2 mean|w| / sqrt(Qp)


@dataclass(frozen=True)
class _KindSpec:
    """The data of one kind: lowbit's element format, its clip range in units of s, the init rule,
    LSQ's Qp for the gradient scale, and whether dq/ds is Q(u) everywhere (binary)."""

    bits: float
    catalog_name: str  # the lowbit catalog entry whose element grid Q rounds to
    init: ScaleInit
    qp: float
    exact_scale_grad: bool = False

    @property
    def element(self):
        spec = get_format(self.catalog_name)
        return spec.element if isinstance(spec, ScaledFormat) else spec

    @property
    def clip_range(self) -> tuple[float, float]:
        """(lo, hi): the u where rounding is straight-through; outside, Q(u) is clipped."""
        element = self.element
        if isinstance(element, IntFormat):
            return float(element.min), float(element.max)
        if isinstance(element, GridFormat):
            return -element.max, element.max
        return -1.0, 1.0  # the binary codebook {-1, +1}


_SPECS: dict[LearnedKind, _KindSpec] = {
    LearnedKind.BINARY: _KindSpec(1.0, "binary_codebook", ScaleInit.ABSMEAN, 1.0, exact_scale_grad=True),
    LearnedKind.SEQ_TERNARY: _KindSpec(1.58, "paretoq_ternary", ScaleInit.ABSMAX, 1.0),
    LearnedKind.SEQ_2BIT: _KindSpec(2.0, "paretoq_2bit", ScaleInit.ABSMAX, 1.0),
    LearnedKind.LSQ_INT3: _KindSpec(3.0, "lsq_int3", ScaleInit.LSQ, 3.0),
    LearnedKind.LSQ_INT4: _KindSpec(4.0, "lsq_int4", ScaleInit.LSQ, 7.0),
}


def kind_for_bits(bits: float) -> LearnedKind:
    """The kind for 1, 1.58 (or log2(3) = 1.585), 2, 3 or 4 bits per weight."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Real) or not math.isfinite(bits):
        raise ValueError(f"bits must be one of 1, 1.58, 2, 3, 4, got {bits!r}")
    for kind, spec in _SPECS.items():
        if abs(bits - spec.bits) < 0.01:
            return kind
    raise ValueError(f"bits must be one of 1, 1.58, 2, 3, 4, got {bits!r}")


def kind_bits(kind: LearnedKind | str) -> float:
    """Bits per weight of a kind (1.58 for ternary)."""
    return _SPECS[parse_enum(LearnedKind, kind, "kind")].bits


def _check_weight(weight: torch.Tensor, argument: str) -> None:
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{argument} must be a torch.Tensor, got {type(weight).__name__}")
    if weight.ndim != 2 or weight.shape[1] == 0:
        raise ValueError(f"{argument} must be a (rows, K) matrix with K >= 1, got shape {tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise TypeError(f"{argument} must be floating point, got {weight.dtype}")


def init_scale(kind: LearnedKind | str, weight: torch.Tensor) -> torch.Tensor:
    """The initial scale of `kind` for `weight` (rows, K): a (rows, 1) float32 tensor, in units of
    the weight (mean|w|, max|w| or LSQ's 2 mean|w| / sqrt(Qp) per row; module docstring)."""
    spec = _SPECS[parse_enum(LearnedKind, kind, "kind")]
    _check_weight(weight, "weight")
    a = weight.detach().float().abs()
    if spec.init is ScaleInit.ABSMAX:
        return a.amax(dim=1, keepdim=True)
    mean = a.mean(dim=1, keepdim=True)
    if spec.init is ScaleInit.ABSMEAN:
        return mean
    return 2.0 * mean / math.sqrt(spec.qp)


def _scale_grad_factor(kind: LearnedKind, per_scale: int) -> float:
    """LSQ's g = 1 / sqrt(N * Qp) for N = `per_scale` elements sharing one scale."""
    return 1.0 / math.sqrt(per_scale * _SPECS[kind].qp)


class _LearnedQuantize(torch.autograd.Function):
    """q = s * Q(w / s) with the straight-through gradients of the module docstring."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, s: torch.Tensor, kind: LearnedKind) -> torch.Tensor:
        spec = _SPECS[kind]
        dtype = w.dtype if w.dtype in _NATIVE else torch.float32
        s_eff = s.detach().to(dtype).clamp_min(_MIN_SCALE)
        u = w.detach().to(dtype) / s_eff
        qu = quantize(u, spec.element).to(dtype)
        ctx.save_for_backward(u, qu)
        ctx.kind = kind
        return (s_eff * qu).to(w.dtype)

    @staticmethod
    def backward(ctx, grad_q: torch.Tensor):
        u, qu = ctx.saved_tensors
        spec = _SPECS[ctx.kind]
        lo, hi = spec.clip_range
        g = grad_q.to(u.dtype)
        inside = (u >= lo) & (u <= hi)
        grad_w = grad_s = None
        if ctx.needs_input_grad[0]:
            grad_w = (g * inside).to(grad_q.dtype)
        if ctx.needs_input_grad[1]:
            dq_ds = qu if spec.exact_scale_grad else torch.where(inside, qu - u, qu)
            factor = _scale_grad_factor(ctx.kind, u.shape[-1])
            grad_s = (g * dq_ds).sum(dim=-1, keepdim=True) * factor
        return grad_w, grad_s, None


def learned_quantize(weight: torch.Tensor, scale: torch.Tensor, kind: LearnedKind | str) -> torch.Tensor:
    """`weight` (rows, K) fake-quantized with the per-row `scale` (rows, 1) as `kind`, differentiable
    in both (module docstring). Returns weight's dtype; float16 and bfloat16 compute in float32."""
    kind = parse_enum(LearnedKind, kind, "kind")
    _check_weight(weight, "weight")
    if not isinstance(scale, torch.Tensor) or tuple(scale.shape) != (weight.shape[0], 1):
        got = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise ValueError(f"scale must be a ({weight.shape[0]}, 1) tensor, one value per row of weight, got {got}")
    return _LearnedQuantize.apply(weight, scale, kind)


class LearnedScale(nn.Module):
    """A quantizer for one (rows, K) weight with a learnable scale per row (an `nn.Parameter` of
    shape (rows, 1)). `forward(weight)` returns the fake-quantized weight, so the module can serve
    as a `torch.nn.utils.parametrize` parametrization of a layer's weight.

    kind: a LearnedKind or its name ('binary', 'seq_ternary', 'seq_2bit', 'lsq_int3', 'lsq_int4').
    weight: the weight the scale is initialised from (module docstring); it is not stored.
    scale: an explicit initial scale (rows, 1) instead of the kind's rule.
    """

    def __init__(self, kind: LearnedKind | str, weight: torch.Tensor, *, scale: torch.Tensor | None = None) -> None:
        super().__init__()
        self.kind = parse_enum(LearnedKind, kind, "kind")
        _check_weight(weight, "weight")
        start = init_scale(self.kind, weight) if scale is None else scale.detach().float().clone()
        if tuple(start.shape) != (weight.shape[0], 1):
            raise ValueError(f"scale must have shape ({weight.shape[0]}, 1), got {tuple(start.shape)}")
        self.scale = nn.Parameter(start.to(weight.device))

    @property
    def bits(self) -> float:
        """Bits per weight element (1.58 for ternary), not counting the scale."""
        return _SPECS[self.kind].bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return learned_quantize(weight, self.scale, self.kind)

    def extra_repr(self) -> str:
        return f"kind={self.kind.value}, rows={self.scale.shape[0]}"


def learned_quantizer(bits: float, weight: torch.Tensor) -> LearnedScale:
    """The ParetoQ quantizer for `bits` (1, 1.58, 2, 3 or 4) with its scale initialised from
    `weight` (rows, K): binary, SEQ ternary, SEQ 2-bit, LSQ int3, LSQ int4."""
    return LearnedScale(kind_for_bits(bits), weight)
