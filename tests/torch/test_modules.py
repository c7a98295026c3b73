"""quantize_model / QuantLinear / unquantize_model / summary against lowbit.simulator.matmul and by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lowbit  # noqa: E402
from lowbit import simulator  # noqa: E402
from lowbit.torch import QuantLinear, Rule, layer_summaries, quantize_model, summary, unquantize_model  # noqa: E402


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))


def _x(*shape, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _expected(x: np.ndarray, layer: nn.Linear, rule: Rule) -> np.ndarray:
    w = layer.weight.detach().numpy()
    x2 = x.reshape(-1, x.shape[-1])
    if rule.engine is not None:
        y = simulator.matmul(
            x2, w.T, rule.activation, rule.weight, engine=rule.engine, promote_every=rule.promote_every
        )
    else:
        y = simulator.matmul(x2, w.T, rule.activation, rule.weight, rule.accumulator, chunk=rule.chunk)
    return (y + layer.bias.detach().numpy().astype(np.float64)).astype(np.float32).reshape(*x.shape[:-1], -1)


@pytest.mark.parametrize(
    "rule",
    [
        Rule("mxfp4", "mxfp8_e4m3", "fp32"),
        Rule("nvfp4", "float8_e4m3fn", "fp16"),
        Rule("int4", "int8", "int32"),
        Rule("mxfp4", "mxfp8_e4m3", "fp16", chunk=16),
        Rule("int4_g128", "bfloat16", "bf16", chunk=8),
        Rule("float8_e4m3fn", "float8_e4m3fn", engine="hopper:wgmma.m64n8k32.f32.e4m3.e4m3", promote_every=32),
        Rule("mxfp4", "mxfp4", engine=("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.block32.f32.e2m1.e2m1.f32")),
    ],
    ids=["fp32", "fp16", "int32", "fp16_chunk16", "bf16_chunk8", "hopper_fp8", "rtx_blackwell_mxfp4"],
)
def test_quantlinear_equals_matmul_bit_for_bit(rule):
    model = _mlp()
    layer = model[0]
    quantize_model(model, {"0": rule})
    x = _x(3, 5, 64)  # a batch of sequences: matmul sees (15, 64)
    got = model[0](x).detach().numpy()
    assert np.array_equal(got.view(np.int32), _expected(x.numpy(), layer, rule).view(np.int32))


def test_exact_float32_path_is_torch_matmul_on_quantized_values():
    model = _mlp()
    w, b = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    quantize_model(model, {"0": Rule(weight="nvfp4", activation="mxfp8_e4m3")})
    x = _x(7, 64)
    wq = torch.from_numpy(lowbit.quantize(w.numpy(), "nvfp4", axis=1))
    xq = torch.from_numpy(lowbit.quantize(x.numpy(), "mxfp8_e4m3", axis=1))
    assert torch.equal(model[0](x), torch.nn.functional.linear(xq, wq, b))


def test_weights_quantized_once_and_again_after_a_step(monkeypatch):
    model = quantize_model(_mlp(), {"*": "mxfp4"})
    calls = []
    real = lowbit.torch.modules.quantize

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lowbit.torch.modules, "quantize", counting)
    x = _x(4, 64)
    model(x)
    model(x)
    assert len(calls) == 2  # two layers, once each
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x).square().sum().backward()
    opt.step()
    calls.clear()
    y = model(x)
    assert len(calls) == 2  # the step moved both weights
    w = model[2].weight.detach().numpy()
    assert torch.equal(model[2]._quantized()[0], torch.from_numpy(lowbit.quantize(w, "mxfp4", axis=1)))
    assert y.shape == (4, 8)


def test_gradients_pass_straight_through():
    model = quantize_model(_mlp(), {"0": Rule("mxfp4", "mxfp8_e4m3", "fp32"), "2": "nvfp4"})
    x = _x(4, 64).requires_grad_(True)
    model(x).sum().backward()
    for layer in (model[0], model[2]):
        assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
        assert layer.weight.grad.abs().sum() > 0
    # layer 2 is float32 torch on quantized weights: d(sum y)/dW_2 = ones^T h, h the ReLU outputs
    h = model[1](model[0](x)).detach()
    assert torch.allclose(model[2].weight.grad, torch.ones(4, 8).T @ h)


def test_unsupported_layer_is_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"'0'.*Conv2d"):
        quantize_model(model, {"*": "mxfp4"})
    emb = nn.ModuleDict({"tok": nn.Embedding(10, 4), "head": nn.Linear(4, 2)})
    with pytest.raises(TypeError, match=r"'tok'.*Embedding"):
        quantize_model(emb, {"*": "nf4"})
    mha = nn.ModuleDict({"attn": nn.MultiheadAttention(8, 2)})
    with pytest.raises(TypeError, match=r"'attn'.*MultiheadAttention"):
        quantize_model(mha, {"attn*": "nf4"})
    # a narrower pattern passes the embedding over
    quantize_model(emb, {"head": "nf4"})
    assert isinstance(emb["head"], QuantLinear)


def test_first_matching_rule_wins_and_unquantize_restores():
    model = _mlp()
    originals = [model[0], model[2]]
    quantize_model(model, {"2": "int4_g128", "*": "mxfp4"})
    assert model[0].rule.weight.name == "mxfp4" and model[2].rule.weight.name == "int4_g128"
    quantize_model(model, {"*": "nf4"})  # already quantized layers are left as they are
    assert model[0].rule.weight.name == "mxfp4"
    unquantize_model(model)
    assert model[0] is originals[0] and model[2] is originals[1]


def test_summary_by_hand(capsys):
    model = quantize_model(_mlp(), {"0": "mxfp4"})
    rows = layer_summaries(model)
    assert [(r.name, r.weights, r.bits_per_weight) for r in rows] == [("0", 2048, 4.25), ("2", 256, 32.0)]
    text = summary(model)
    assert "mxfp4" in text and "float32" in text
    average = (2048 * (4 + 8 / 32) + 256 * 32) / (2048 + 256)  # MXFP4: 4 bits + an 8-bit scale per 32
    assert f"{average:.3f}" in text
    assert text in capsys.readouterr().out


def test_rule_errors():
    with pytest.raises(ValueError, match="activation"):
        Rule("mxfp4", accumulator="fp16")
    with pytest.raises(ValueError, match="format"):
        Rule("mxfp9")
    with pytest.raises(ValueError, match="chunk"):
        Rule("mxfp4", "mxfp8_e4m3", "fp16", chunk=0)
    with pytest.raises(ValueError, match="not both"):
        Rule("float8_e4m3fn", "float8_e4m3fn", "fp16", engine="hopper:wgmma.m64n8k32.f32.e4m3.e4m3")
    with pytest.raises(ValueError, match="promote_every"):
        Rule("float8_e4m3fn", "float8_e4m3fn", promote_every=128)
    with pytest.raises(ValueError, match="promote_every"):
        Rule("float8_e4m3fn", "float8_e4m3fn", engine="hopper:wgmma.m64n8k32.f32.e4m3.e4m3", promote_every=100)
    with pytest.raises(ValueError, match="instruction"):
        Rule("float8_e4m3fn", "float8_e4m3fn", engine="hopper:wgmma.m64n8k33.f32.e4m3.e4m3")
    # a block-scaled name without its block takes it from the formats, as matmul does
    rule = Rule("nvfp4", "nvfp4", engine="rtx_blackwell:mma.m16n8k64.mxf4nvf4.f32.e2m1.e2m1.f32")
    assert rule.engine == ("rtx_blackwell", "mma.m16n8k64.mxf4nvf4.f32.e2m1.e2m1.f32")
    with pytest.raises(TypeError, match="rules"):
        quantize_model(_mlp(), {})
    with pytest.raises(TypeError, match="model"):
        quantize_model("not a model", {"*": "mxfp4"})


def test_state_dict_keys_and_values_do_not_change():
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_model(model, {"*": Rule("mxfp4", "mxfp8_e4m3", "fp32")})
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    fresh = _mlp(seed=5)
    quantize_model(fresh, {"*": "nf4"}).load_state_dict(before)  # a float checkpoint loads as it is
    assert torch.equal(fresh[0].weight, before["0.weight"])


def test_a_cache_made_under_inference_mode_still_trains():
    model = quantize_model(_mlp(), {"0": Rule("mxfp4", "mxfp8_e4m3", "fp32")})
    with torch.inference_mode():
        model(_x(2, 64))
    model(_x(4, 64)).sum().backward()
    assert model[0].weight.grad is not None


def test_refresh_after_writing_through_data():
    model = quantize_model(_mlp(), {"0": "mxfp4"})
    x = _x(3, 64)
    model[0](x)
    model[0].weight.data.mul_(0.5)  # invisible to the version counter
    model[0].refresh()
    w = model[0].weight.detach().numpy()
    expected = torch.nn.functional.linear(x, torch.from_numpy(lowbit.quantize(w, "mxfp4", axis=1)), model[0].bias)
    assert torch.equal(model[0](x), expected)


def test_emulated_backward_values():
    # the backward of the emulated product is that of x_q @ W_q^T in float32 (straight through)
    model = quantize_model(_mlp(), {"0": Rule("mxfp4", "mxfp8_e4m3", "fp16")})
    x = _x(5, 64).requires_grad_(True)
    g = _x(5, 32, seed=9)
    model[0](x).backward(g)
    w = model[0].weight.detach().numpy()
    wq = torch.from_numpy(lowbit.quantize(w, "mxfp4", axis=1))
    xq = torch.from_numpy(lowbit.quantize(x.detach().numpy(), "mxfp8_e4m3", axis=1))
    assert torch.allclose(x.grad, g @ wq, rtol=1e-6, atol=1e-6)
    assert torch.allclose(model[0].weight.grad, g.T @ xq, rtol=1e-6, atol=1e-6)
    assert torch.allclose(model[0].bias.grad, g.sum(0), rtol=1e-6, atol=1e-6)  # summed in float64


def test_float64_without_bias_is_matmul_exactly():
    # no bias and float64 input: the layer's output is matmul's float64 result itself, every bit
    layer = nn.Linear(64, 16, bias=False).double()
    model = quantize_model(nn.Sequential(layer), {"0": Rule("int4", "int8", "int32")})
    x = torch.round(_x(6, 64).double() * 40)  # integers beyond int8 are clipped by the format
    y = model[0](x)
    expected = simulator.matmul(x.numpy(), layer.weight.detach().numpy().T, "int8", "int4", "int32")
    assert y.dtype == torch.float64 and np.array_equal(y.detach().numpy(), expected)


def test_empty_batch_and_lone_linear():
    model = quantize_model(_mlp(), {"0": Rule("mxfp4", "mxfp8_e4m3", "fp32")})
    assert model[0](torch.zeros(0, 64)).shape == (0, 32)
    with pytest.raises(TypeError, match="wrap a lone nn.Linear"):
        quantize_model(nn.Linear(4, 2), {"*": "mxfp4"})
