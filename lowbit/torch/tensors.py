"""quantize, encode and decode on torch tensors, bit-identical to lowbit's NumPy API.

CPU tensors are viewed as NumPy arrays (shared memory, no copy in or out). CUDA tensors stay on the
device for element formats and for the block formats with a fused kernel (MX, NVFP4 with one or two
levels, INT per group, NF4/AF4/BOF4, ParetoQ SEQ; nearest rounding): torch lays the blocks out, and
lowbit's CUDA kernels, given the data through `__cuda_array_interface__`, round it on torch's current
stream. The other block formats (zero points, AFPQ, MSE-searched steps, double-quantized scales,
absmean and TWN rules, per-tensor scales, stochastic rounding) and encode/decode run their host
pipeline on a host copy and return to the tensor's device.

dtypes, the rule: float32 and float64 tensors behave as NumPy arrays of the same dtype (float64 element
formats round from float64; block formats compute in float32). float16 and bfloat16 tensors are widened
to float32, which is exact, and the result stays float32: narrowing it back would round a second time
(block scales reach far past float16's range, and bfloat16 keeps 8 significant bits, too few for
float8_e5m2's neighbours scaled by a block). `fake_quantize` is where a model's dtype is kept.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.nn import functional

from .. import simulator
from ..formats import ElementFormat, ScaledFormat, get_format, parse_enum
from ..lazy import numba_cuda
from ..simulator import Encoded, Rounding, Target
from ..simulator.host.blocks import device_rows_kernel, quantize_rows_device
from ..simulator.host.inputs import check_axis, parse_target

_WIDENED = (torch.float16, torch.bfloat16)


def _check_tensor(t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t: dtype {t.dtype} is not supported; pass a floating-point or integer tensor")
    if t.layout is not torch.strided:
        raise TypeError(f"t: {t.layout} tensors are not supported; pass a dense (strided) tensor")
    return t.detach().resolve_conj().resolve_neg()


def host_view(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array sharing its memory (float16 and bfloat16 widened to float32)."""
    t = _check_tensor(t)
    if t.dtype in _WIDENED:
        t = t.float()
    return t.cpu().numpy()


def _element_on_device(t: torch.Tensor, fmt: ElementFormat, rounding, seed) -> torch.Tensor:
    cuda = numba_cuda()
    x = t.float() if t.dtype in _WIDENED else t
    if x.dtype not in (torch.float32, torch.float64):
        x = x.double()
    x = x.contiguous()
    with torch.cuda.device(x.device), cuda.gpus[x.device.index]:
        stream = cuda.external_stream(torch.cuda.current_stream(x.device).cuda_stream)
        out = simulator.quantize(cuda.as_cuda_array(x), fmt, rounding=rounding, seed=seed, stream=stream)
        return torch.as_tensor(out, device=x.device)


_FLT_MAX = float(np.finfo(np.float32).max)


def _rows(x: torch.Tensor, fmt: ScaledFormat, axis: int) -> tuple[torch.Tensor, tuple[int, ...], int]:
    """x (float32) as rows of one block each, as the host layout makes them: the block axis moved
    last and zero-padded to a whole block (a block longer than the axis holds the axis)."""
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    block = min(fmt.block or length, max(length, 1))
    padded = functional.pad(moved, (0, (-length) % block))
    return padded.contiguous().reshape(-1, block), tuple(padded.shape), length


def _finite_amax(x: torch.Tensor) -> float:
    return float(torch.where(torch.isfinite(x), x.abs(), torch.zeros_like(x)).amax()) if x.numel() else 0.0


def _blocks_on_device(t: torch.Tensor, fmt, mode: Rounding, axis: int) -> torch.Tensor | None:
    """A block-scaled format through its fused CUDA kernel, the data staying on the device (the
    layout by torch, the rounding by lowbit's kernel), or None where no fused kernel applies.
    A CPU tensor (target='cuda', also under the CUDA simulator) makes the trip to a device copy."""
    if not isinstance(fmt, ScaledFormat) or t.dim() == 0 or t.numel() == 0:
        return None
    x = t.float()  # float16 and bfloat16 exactly; float64 and integers rounded once, as on the host
    plan = device_rows_kernel(fmt, mode, _finite_amax(x))
    if plan is None:
        return None
    ax = axis % t.dim()
    rows, padded_shape, length = _rows(x, fmt, ax)
    cuda = numba_cuda()
    if t.is_cuda:
        with torch.cuda.device(t.device), cuda.gpus[t.device.index]:
            stream = cuda.external_stream(torch.cuda.current_stream(t.device).cuda_stream)
            out = torch.as_tensor(quantize_rows_device(cuda.as_cuda_array(rows), *plan, stream), device=t.device)
    else:
        out = torch.from_numpy(quantize_rows_device(cuda.to_device(rows.numpy()), *plan).copy_to_host())
    out = out.clamp(-_FLT_MAX, _FLT_MAX)  # finite blocks saturate (NaN stays NaN), as on the host
    return out.reshape(padded_shape)[..., :length].movedim(-1, ax)


def quantize(
    t: torch.Tensor,
    fmt,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    target=None,
) -> torch.Tensor:
    """`t` rounded to `fmt`, on t's device: `lowbit.quantize` on a tensor (see there for the
    arguments). Gradients do not flow through it; `fake_quantize` is the differentiable form.
    dtype: float32 and float64 as in NumPy; float16 and bfloat16 give float32 (module docstring).
    target: for a CPU tensor, 'cuda' runs the CUDA kernels on a device copy (also under the CUDA
    simulator); None runs CUDA tensors on their device and CPU tensors on the CPU."""
    t = _check_tensor(t)
    spec = get_format(fmt)
    if t.is_cuda and isinstance(spec, ElementFormat):
        return _element_on_device(t, spec, rounding, seed)
    mode = parse_enum(Rounding, rounding, "rounding")
    if t.is_cuda or parse_target(target) is Target.CUDA:
        check_axis(axis, t.dim())
        on_device = _blocks_on_device(t, spec, mode, axis)
        if on_device is not None:
            return on_device
    values = simulator.quantize(host_view(t), spec, axis=axis, rounding=rounding, seed=seed, target=target)
    return torch.from_numpy(np.asarray(values)).to(t.device)


def encode(t: torch.Tensor, fmt, *, axis: int = -1, rounding: Rounding | str = "rne", seed: int | None = None,
           nan: str = "raise") -> Encoded:  # fmt: skip
    """`lowbit.encode` of a tensor: an Encoded whose codes and scales are tensors on t's device
    (codes uint8 or uint16 as in NumPy, scales their integer codes)."""
    t = _check_tensor(t)
    enc = simulator.encode(host_view(t), fmt, axis=axis, rounding=rounding, seed=seed, nan=nan)
    return dataclasses.replace(enc, codes=_to(enc.codes, t.device), scales=_to(enc.scales, t.device))


def decode(enc: Encoded, fmt=None) -> torch.Tensor:
    """Values (float32) of an Encoded from `encode`, on the device of its codes; or of raw codes
    (a tensor) of an element or codebook format, `decode(codes, fmt)`."""
    if isinstance(enc, Encoded):
        device = enc.codes.device if isinstance(enc.codes, torch.Tensor) else torch.device("cpu")
        host = dataclasses.replace(enc, codes=_host(enc.codes), scales=_host(enc.scales))
        return torch.from_numpy(simulator.decode(host)).to(device)
    if not isinstance(enc, torch.Tensor):
        raise TypeError(f"enc must be an Encoded or a tensor of codes, got {type(enc).__name__}")
    return torch.from_numpy(simulator.decode(_host(enc), fmt)).to(enc.device)


def _to(a, device: torch.device):
    if a is None:
        return None
    return torch.from_numpy(np.asarray(a)).to(device)


def _host(a):
    if a is None or not isinstance(a, torch.Tensor):
        return a
    return a.detach().cpu().numpy()
