"""Block formats on the device path of lowbit.torch.quantize (torch lays out the blocks, lowbit's fused CUDA
kernel rounds them), run here on a CPU tensor with target='cuda' in the CUDA simulator: bit for bit the NumPy
API's values. Sizes stay small: the simulator runs each CUDA thread in Python."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():
    pytest.skip("no CUDA device and the CUDA simulator is off", allow_module_level=True)

import lowbit  # noqa: E402
import lowbit.torch as lt  # noqa: E402
from lowbit.formats import ScaleRule  # noqa: E402
from lowbit.simulator import Rounding  # noqa: E402
from lowbit.simulator.host.blocks import device_rows_kernel  # noqa: E402

FUSED = ["mxfp4", "mxfp6_e3m2", "mxfp8_e4m3", "mxint8", "nvfp4", "nvfp4_single", "nf4", "af4_b64", "int4_g128",
         "paretoq_ternary"]  # fmt: skip
HOST = ["int4_g128_asym", "nf4_dq", "bitnet_b158", "twn"]


def _edge(shape=(5, 70), seed=0) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 10
    x[0, 3] = float("nan")
    x[1, 0] = 3e38  # the block's scale times its largest element passes float32: saturates
    x[1, 1] = -3e38
    x[2, :] = 0.0  # an all-zero block
    x[3, 5] = float("inf")
    x[4, 7] = 1e-40  # a float32 subnormal
    return x


def _bits(t) -> np.ndarray:
    return np.asarray(t).view(np.int32)


@pytest.mark.parametrize("fmt", FUSED)
def test_fused_formats_take_the_device_path(fmt):
    assert device_rows_kernel(lowbit.get_format(fmt), Rounding.RNE, 1.0) is not None


@pytest.mark.parametrize("fmt", FUSED + HOST)
@pytest.mark.parametrize("axis", [0, -1])
def test_device_path_equals_numpy(fmt, axis):
    x = _edge()
    got = lt.quantize(x, fmt, axis=axis, target="cuda")
    want = lowbit.quantize(x.numpy(), fmt, axis=axis)
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert np.array_equal(_bits(got.numpy()), _bits(want))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_device_path_dtypes(dtype):
    x = (torch.randn(3, 2, 40, generator=torch.Generator().manual_seed(1)) * 4).to(dtype)
    got = lt.quantize(x, "nvfp4", axis=1, target="cuda")
    want = lowbit.quantize(x.double().numpy() if dtype == torch.float64 else x.float().numpy(), "nvfp4", axis=1)
    assert np.array_equal(_bits(got.numpy()), _bits(want))


def test_block_longer_than_the_axis_and_1d():
    x = torch.randn(20, generator=torch.Generator().manual_seed(2))
    for fmt in ("mxfp4", "int4_g128"):  # blocks of 32 and 128 over 20 values
        assert np.array_equal(_bits(lt.quantize(x, fmt, target="cuda")), _bits(lowbit.quantize(x.numpy(), fmt)))


@pytest.mark.parametrize("fmt", lowbit.formats.known_names())
def test_every_catalog_format_with_target_cuda(fmt):
    # element formats run the CUDA element kernels, fused block formats the device path above, the others
    # their host pipeline; every one gives the CPU's bits
    x = _edge((5, 64), seed=4)
    if getattr(lowbit.get_format(fmt), "rule", None) is ScaleRule.MSE:  # up to 51 candidates a block, at Python speed
        x = x[:2, :16].contiguous()
    got = lt.quantize(x, fmt, target="cuda")
    assert np.array_equal(_bits(got.numpy()), _bits(lowbit.quantize(x.numpy(), fmt)))
