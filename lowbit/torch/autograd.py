"""fake_quantize: lowbit's rounding in the forward pass, a straight-through gradient in the backward.

ste          the gradient passes unchanged (Bengio et al. 2013's straight-through estimator);
clipped_ste  the gradient passes where the input lies inside what its block can represent, and is
             zero where quantizing clipped it: x above the block's largest value or below its
             smallest. The bounds are those of each block as encoded (its scale, zero point or
             separate positive and negative scales, and the tensor scale), so they hold for every
             scaled, codebook and element format of the catalog.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import torch

from .. import simulator
from ..formats import AnyFormat, ScaledFormat, VectorCodebookFormat, get_format, parse_enum
from ..simulator import Rounding
from .tensors import host_view, quantize


class Grad(enum.Enum):
    """The backward rule of `fake_quantize`."""

    STE = "ste"
    CLIPPED_STE = "clipped_ste"


def _extreme_codes(spec) -> tuple[int, int]:
    """The codes of the smallest and the largest finite element value."""
    values = np.where(np.isfinite(spec.code_values), spec.code_values, np.nan)
    return int(np.nanargmin(values)), int(np.nanargmax(values))


def block_bounds(x: np.ndarray, fmt: AnyFormat | str, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) value each element's block can represent, shaped as x (float32): a scaled
    format decodes its extreme element codes with each block's scales; an element or codebook format
    has one range for all. NaN where the block holds NaN or Inf."""
    spec = get_format(fmt)
    if isinstance(spec, VectorCodebookFormat):
        raise ValueError(f"grad: clipped_ste bounds single values; vector codebook {spec.name!r} rounds vectors")
    element = spec.element if isinstance(spec, ScaledFormat) else spec
    lo, hi = _extreme_codes(element)
    if not isinstance(spec, ScaledFormat):
        values = element.code_values
        return np.full(x.shape, values[lo], np.float32), np.full(x.shape, values[hi], np.float32)
    enc = simulator.encode(x, spec, axis=axis, nan="zero")

    def bound(code: int) -> np.ndarray:
        codes = np.full_like(np.asarray(enc.codes), code)
        return simulator.decode(dataclasses.replace(enc, codes=codes))

    return bound(lo), bound(hi)


def _inside(t: torch.Tensor, fmt, axis: int) -> torch.Tensor:
    x = host_view(t)
    x32 = np.asarray(x, np.float32)
    lo, hi = block_bounds(x32, fmt, axis)
    # scaled formats compute in float32, so their input is compared as they round it
    seen = x32 if isinstance(get_format(fmt), ScaledFormat) else x
    return torch.from_numpy((seen >= lo) & (seen <= hi)).to(t.device)


class _FakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, fmt, axis, rounding, seed, grad):
        q = quantize(t, fmt, axis=axis, rounding=rounding, seed=seed).to(t.dtype)
        ctx.save_for_backward(_inside(t, fmt, axis) if grad is Grad.CLIPPED_STE else None)
        return q

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return (g if inside is None else g * inside), None, None, None, None, None


def fake_quantize(
    t: torch.Tensor,
    fmt: AnyFormat | str,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    grad: Grad | str = "ste",
) -> torch.Tensor:
    """`lowbit.torch.quantize(t, fmt, ...)` in the forward pass, in t's dtype (float16 and bfloat16
    results are rounded once more, to nearest, from the float32 values), with the gradient `grad`:
    'ste' (default) or 'clipped_ste' (module docstring). Differentiable with respect to t only."""
    mode = parse_enum(Grad, grad, "grad")
    spec = get_format(fmt)
    rounding = parse_enum(Rounding, rounding, "rounding")
    if mode is Grad.CLIPPED_STE and isinstance(spec, VectorCodebookFormat):
        raise ValueError(f"grad: clipped_ste bounds single values; vector codebook {spec.name!r} rounds vectors")
    return _FakeQuantize.apply(t, spec, axis, rounding, seed, mode)
