"""quantize, encode and decode on torch tensors, bit-identical to lowbit's NumPy API.

CPU tensors are viewed as NumPy arrays (shared memory, no copy in or out). CUDA tensors stay on the
device for element formats and for the block formats with a fused kernel (MX, NVFP4 with one or two
levels, INT per group, NF4/AF4/BOF4, ParetoQ SEQ; nearest rounding): torch lays the blocks out, and
lowbit's CUDA kernels, given the data through `__cuda_array_interface__`, round it on torch's current
stream. The other block formats (zero points, AFPQ, MSE-searched steps, double-quantized scales,
absmean and TWN rules, per-tensor scales, stochastic rounding) and encode/decode run their host
pipeline on a host copy and return to the tensor's device.

dtypes, the rule: float32 and float64 tensors behave as NumPy arrays of the same dtype (float64 element
formats round from float64; block formats compute in float32). float16, bfloat16 and torch's float8
tensors are widened to float32, which is exact, and the result stays float32: narrowing it back would
round a second time (block scales reach far past float16's range, and bfloat16 keeps 8 significant bits, too few for
float8_e5m2's neighbours scaled by a block). `fake_quantize` is where a model's dtype is kept.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.nn import functional

from .. import simulator
from ..formats import AnyFormat, ElementFormat, ScaledFormat, TensorScale, get_format, parse_enum
from ..lazy import numba_cuda
from ..simulator import Encoded, Rounding, Target
from ..simulator.host.blocks import device_rows_kernel, quantize_rows_device
from ..simulator.host.inputs import check_axis, check_random_bits, check_sr_bits, parse_target


def _check_tensor(t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor, got {type(t).__name__}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t: dtype {t.dtype} is not supported; pass a floating-point or integer tensor")
    if t.layout is not torch.strided:
        raise TypeError(f"t: {t.layout} tensors are not supported; pass a dense (strided) tensor")
    return t.detach().resolve_conj().resolve_neg()


def _widened(t: torch.Tensor) -> torch.Tensor:
    """float16, bfloat16 and torch's float8 types as float32, which holds them exactly."""
    return t.float() if t.is_floating_point() and t.element_size() <= 2 else t


def host_view(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array sharing its memory (floats of 16 bits or fewer widened to float32)."""
    return _widened(_check_tensor(t)).cpu().numpy()


def _stream(cuda, device: torch.device):
    """torch's current stream on `device`, as a Numba stream."""
    return cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)


def _element_on_device(t: torch.Tensor, fmt: ElementFormat, mode: Rounding, seed: int | None, **sr) -> torch.Tensor:
    cuda = numba_cuda()
    x = _widened(t)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.double()
    x = x.contiguous()
    with torch.cuda.device(x.device), cuda.gpus[x.device.index]:
        stream = _stream(cuda, x.device)
        out = simulator.quantize(cuda.as_cuda_array(x), fmt, rounding=mode, seed=seed, stream=stream, **sr)
        return torch.as_tensor(out, device=x.device)


_FLT_MAX = float(np.finfo(np.float32).max)


def _rows(x: torch.Tensor, fmt: ScaledFormat, axis: int) -> tuple[torch.Tensor, tuple[int, ...], int]:
    """x (float32) as rows of one block each, as the host layout makes them: the block axis moved
    last and zero-padded to a whole block (a block longer than the axis holds the axis)."""
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    block = min(fmt.block or length, max(length, 1))
    pad = (-length) % block
    padded = functional.pad(moved, (0, pad)) if pad else moved
    return padded.contiguous().reshape(-1, block), tuple(padded.shape), length


def _finite_amax(x: torch.Tensor) -> float:
    """The largest finite |x| (NVFP4's tensor scale needs it)."""
    return float(torch.where(torch.isfinite(x), x.abs(), torch.zeros_like(x)).amax())


def _blocks_on_device(t: torch.Tensor, fmt, mode: Rounding, axis: int) -> torch.Tensor | None:
    """A block-scaled format through its fused CUDA kernel, the data staying on the device (the
    layout by torch, the rounding by lowbit's kernel), or None where no fused kernel applies.
    A CPU tensor (target='cuda', also under the CUDA simulator) makes the trip to a device copy."""
    if not isinstance(fmt, ScaledFormat) or t.dim() == 0 or t.numel() == 0:
        return None
    x = t.float()  # floats of 16 bits or fewer exactly; float64 and integers rounded once, as on the host
    plan = device_rows_kernel(fmt, mode, _finite_amax(x) if fmt.tensor_scale is TensorScale.NVFP4 else None)
    if plan is None:
        return None
    ax = axis % t.dim()
    rows, padded_shape, length = _rows(x, fmt, ax)
    cuda = numba_cuda()
    if t.is_cuda:
        out = torch.empty_like(rows)
        with torch.cuda.device(t.device), cuda.gpus[t.device.index]:
            stream = _stream(cuda, t.device)
            quantize_rows_device(cuda.as_cuda_array(rows), *plan, stream, cuda.as_cuda_array(out))
    else:
        out = torch.from_numpy(quantize_rows_device(cuda.to_device(rows.numpy()), *plan).copy_to_host())
    out.clamp_(-_FLT_MAX, _FLT_MAX)  # finite blocks saturate (NaN stays NaN), as on the host
    return out.reshape(padded_shape)[..., :length].movedim(-1, ax)


def quantize(
    t: torch.Tensor,
    fmt: AnyFormat | str,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    target: Target | str | None = None,
    sr_bits: int | None = None,
    random_bits=None,
) -> torch.Tensor:
    """`t` rounded to `fmt`, on t's device: `lowbit.quantize` on a tensor (see there for the
    arguments; random_bits may be a tensor or an array). Gradients do not flow through it;
    `fake_quantize` is the differentiable form.
    dtype: float32 and float64 as in NumPy; floats of 16 bits or fewer give float32 (module docstring).
    target: None runs a CUDA tensor on its device and a CPU tensor on the CPU; 'cuda' runs a CPU
    tensor through the CUDA kernels on a device copy (also under the CUDA simulator); 'cpu' runs a
    CUDA tensor through the host pipeline."""
    t = _check_tensor(t)
    spec = get_format(fmt)
    mode = parse_enum(Rounding, rounding, "rounding")
    where = parse_target(target)
    check_axis(axis, t.dim())
    # checked here, as the host checks them, before a fused kernel (nearest rounding) could skip them
    check_random_bits(_host(random_bits), tuple(t.shape), check_sr_bits(sr_bits, mode), seed, mode)
    on_device = t.is_cuda and where is not Target.CPU
    if on_device and isinstance(spec, ElementFormat):
        return _element_on_device(t, spec, mode, seed, sr_bits=sr_bits, random_bits=_host(random_bits))
    if on_device or where is Target.CUDA:
        blocks = _blocks_on_device(t, spec, mode, axis)
        if blocks is not None:
            return blocks
    host_target = Target.CPU if t.is_cuda else where
    sr = {"sr_bits": sr_bits, "random_bits": _host(random_bits)}
    values = simulator.quantize(host_view(t), spec, axis=axis, rounding=mode, seed=seed, target=host_target, **sr)
    return torch.from_numpy(np.asarray(values)).to(t.device)


def encode(
    t: torch.Tensor,
    fmt: AnyFormat | str,
    *,
    axis: int = -1,
    rounding: Rounding | str = "rne",
    seed: int | None = None,
    nan: str = "raise",
    sr_bits: int | None = None,
    random_bits=None,
) -> Encoded:
    """`lowbit.encode` of a tensor: an Encoded whose codes and scales are tensors on t's device
    (codes uint8 or uint16 as in NumPy, scales their integer codes, micro-exponents uint8)."""
    t = _check_tensor(t)
    sr = {"sr_bits": sr_bits, "random_bits": _host(random_bits)}
    enc = simulator.encode(host_view(t), fmt, axis=axis, rounding=rounding, seed=seed, nan=nan, **sr)
    moved = {k: _to(getattr(enc, k), t.device) for k in ("codes", "scales", "micro")}
    return dataclasses.replace(enc, **moved)


def decode(enc: Encoded | torch.Tensor, fmt: AnyFormat | str | None = None) -> torch.Tensor:
    """Values (float32) of an Encoded from `encode`, on the device of its codes; or of raw codes
    (a tensor) of an element or codebook format, `decode(codes, fmt)`."""
    if isinstance(enc, Encoded):
        device = enc.codes.device if isinstance(enc.codes, torch.Tensor) else torch.device("cpu")
        host = dataclasses.replace(enc, codes=_host(enc.codes), scales=_host(enc.scales), micro=_host(enc.micro))
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
