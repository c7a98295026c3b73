"""fake_quantize: forward values, and the ste / clipped_ste gradients against bounds worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lowbit  # noqa: E402
from lowbit.formats import VectorCodebookFormat  # noqa: E402
from lowbit.torch import fake_quantize  # noqa: E402
from lowbit.torch import quantize as lt_quantize  # noqa: E402


def _grad(x: torch.Tensor, fmt, upstream: torch.Tensor | None = None, **kw) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    y = fake_quantize(x, fmt, **kw)
    y.backward(torch.ones_like(y) if upstream is None else upstream)
    return x.grad


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "mxfp4", "nvfp4", "nf4", "int4_g128_asym"])
def test_forward_is_quantize_bit_for_bit(fmt):
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(1)) * 3
    y = fake_quantize(x.clone().requires_grad_(True), fmt)
    expected = lowbit.quantize(x.numpy(), fmt)
    assert np.array_equal(y.detach().numpy().view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_input_keeps_its_dtype_rounded_once_more(dtype):
    x = (torch.randn(4, 32, generator=torch.Generator().manual_seed(2)) * 2).to(dtype)
    y = fake_quantize(x, "mxfp4")
    assert y.dtype == dtype
    widened = lowbit.quantize(x.float().numpy(), "mxfp4")
    assert torch.equal(y, torch.from_numpy(widened).to(dtype))


def test_ste_passes_the_gradient_unchanged():
    x = torch.tensor([0.1, 1e6, -1e6, 3.3] + [0.0] * 28)
    upstream = torch.arange(32, dtype=torch.float32) - 7.5
    assert torch.equal(_grad(x, "mxfp4", upstream), upstream)


def test_clipped_ste_element_format_by_hand():
    # float8_e4m3fn's largest finite value is 448 = 1.75 * 2^8
    x = torch.tensor([447.0, 448.0, 449.0, 500.0, -448.0, -449.0, 0.5, 1e-9])
    assert _grad(x, "float8_e4m3fn", grad="clipped_ste").tolist() == [1, 1, 0, 0, 1, 0, 1, 1]


def test_clipped_ste_mx_block_by_hand():
    # One MXFP4 block of 32 with amax 500: shared exponent floor(log2 500) - emax(e2m1) = 8 - 2 = 6, so the
    # block holds at most 6 * 2^6 = 384; 383.9 and -384 fit, 385 and -390 are clipped, and so is 500.
    x = torch.zeros(32)
    x[:6] = torch.tensor([500.0, 383.9, 385.0, -384.0, -390.0, 1.0])
    g = _grad(x, "mxfp4", grad="clipped_ste")
    assert g[:6].tolist() == [0, 1, 0, 1, 0, 1]
    assert g[6:].tolist() == [1] * 26


def test_clipped_ste_second_block_has_its_own_bound():
    # Block 2 (amax 3): exponent floor(log2 3) - 2 = -1, bound 6 * 0.5 = 3; nothing in it is clipped,
    # while block 1 (amax 500) clips 400.
    x = torch.zeros(64)
    x[0], x[1] = 500.0, 400.0
    x[32], x[33] = 3.0, -2.9
    g = _grad(x, "mxfp4", grad="clipped_ste")
    assert g[0] == 0 and g[1] == 0 and g[32] == 1 and g[33] == 1


def test_clipped_ste_absmax_scale_exact_clips_nothing():
    # int4_g128: symmetric int4 (codes -7..7), scale absmax / 7 stored in float16. With absmax 7 * 2^3 the
    # scale is exactly 8 and the group holds [-56, 56]: nothing clips.
    x = torch.rand(256, generator=torch.Generator().manual_seed(3)) * 110 - 55
    x[0], x[200] = 56.0, -56.0
    assert torch.equal(_grad(x, "int4_g128", grad="clipped_ste"), torch.ones_like(x))


@pytest.mark.parametrize(("amax", "clipped"), [(262.5, False), (262.75, True)])
def test_clipped_ste_float16_scale_rounds_below_absmax(amax, clipped):
    # 262.5 / 7 = 37.5, a float16 (step 2^-5 in [32, 64)): the bound is 262.5. 262.75 / 7 = 37.5357... rounds
    # to 1201 * 2^-5 = 37.53125, so the bound is 7 * 37.53125 = 262.71875 and the group's absmax is clipped.
    x = torch.zeros(128)
    x[5] = amax
    assert _grad(x, "int4_g128", grad="clipped_ste")[5].item() == (0.0 if clipped else 1.0)


def test_clipped_ste_asymmetric_zero_point_by_hand():
    # int4_g128_asym: 16 unsigned codes, step (max - min) / 15, zero point round(-min / step). With min 0 and
    # max 15 the step is 1 and the zero point 0: the block holds [0, 15], so nothing clips.
    x = torch.zeros(128)
    x[0], x[1], x[2] = 15.0, 7.0, 0.0
    assert torch.equal(_grad(x, "int4_g128_asym", grad="clipped_ste"), torch.ones(128))


def test_clipped_ste_along_axis_zero():
    x = torch.zeros(32, 2)
    x[0, 0], x[1, 0] = 500.0, 385.0  # a block down column 0 with bound 384
    x[0, 1] = 385.0  # column 1's block has amax 385: exponent 8 - 2 = 6, bound 384 < 385: clipped
    g = _grad(x, "mxfp4", grad="clipped_ste", axis=0)
    assert g[0, 0] == 0 and g[1, 0] == 0 and g[0, 1] == 0 and g[2, 0] == 1


def test_bad_arguments_are_named():
    x = torch.ones(32)
    with pytest.raises(ValueError, match="grad"):
        fake_quantize(x, "mxfp4", grad="sideways")
    with pytest.raises(ValueError, match="format"):
        fake_quantize(x, "not_a_format")
    vq = [n for n in lowbit.formats.known_names() if isinstance(lowbit.get_format(n), VectorCodebookFormat)]
    assert vq, "the catalog has no vector codebook: this check would test nothing"
    with pytest.raises(ValueError, match="clipped_ste"):
        fake_quantize(torch.ones(64), vq[0], grad="clipped_ste")


def test_clipped_ste_float64_input_is_compared_as_float32():
    # MXFP4 computes in float32: 384 + 1e-9 rounds to 384.0f, inside the block's bound 384, so it is
    # neither clipped in the forward pass nor denied its gradient
    x = torch.zeros(32, dtype=torch.float64)
    x[0], x[1] = 500.0, 384.0 + 1e-9
    g = _grad(x, "mxfp4", grad="clipped_ste")
    assert g[0] == 0 and g[1] == 1


def test_float8_tensors_are_widened_exactly():
    x = torch.tensor([0.5, -3.0, 448.0, 0.001953125]).to(torch.float8_e4m3fn)
    assert torch.equal(fake_quantize(x.float(), "float4_e2m1fn"), lt_quantize(x, "float4_e2m1fn"))
