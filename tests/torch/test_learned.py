"""Learnable-scale quantizers (lowbit.torch.learned): forward values against lowbit's NumPy formats,
gradients against numbers worked by hand, LSQ's equation 3 and finite differences of the
straight-through surrogate, initial scales, and errors."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lowbit  # noqa: E402
from lowbit.torch.learned import (  # noqa: E402
    LearnedKind,
    LearnedScale,
    init_scale,
    kind_bits,
    kind_for_bits,
    learned_quantize,
    learned_quantizer,
)

# Upstream gradient used by the hand-worked cases: dL/dq for the four elements of one row.
UPSTREAM = [1.0, 2.0, -1.0, 3.0]


def _grads(kind, w, s, upstream=UPSTREAM):
    """(q, dL/dw, dL/ds) for L = sum(upstream * q), in float64 for comparison."""
    w = torch.tensor(w, dtype=torch.float32, requires_grad=True)
    s = torch.tensor(s, dtype=torch.float32, requires_grad=True)
    q = learned_quantize(w, s, kind)
    (q * torch.tensor(upstream, dtype=torch.float32)).sum().backward()
    return q.detach().double().numpy(), w.grad.double().numpy(), s.grad.double().numpy()


# Hand-worked cases. One row of K = 4 elements, so LSQ's gradient scale is g = 1/sqrt(4 * Qp);
# Qp = 1 for binary and SEQ (g = 0.5), 3 for int3.


def test_seq_ternary_by_hand():
    # s = 2: u = w / s = [0.9, -0.2, 0.5, -1.2]; 1.5u = [1.35, -0.3, 0.75, -1.8] rounds to k = [1, 0, 1, -2],
    # k clipped to [-1, 1]: Q(u) = [2/3, 0, 2/3, -2/3]; q = s Q(u). Only u = -1.2 lies outside [-1, 1].
    q, gw, gs = _grads("seq_ternary", [[1.8, -0.4, 1.0, -2.4]], [[2.0]])
    np.testing.assert_allclose(q, [[4 / 3, 0.0, 4 / 3, -4 / 3]], rtol=1e-6)
    np.testing.assert_array_equal(gw, [[1.0, 2.0, -1.0, 0.0]])
    # dq/ds = Q(u) - u inside, Q(u) outside: [2/3 - 0.9, 0.2, 2/3 - 0.5, -2/3]
    # sum(upstream * dq/ds) = -0.233333 + 0.4 - 0.166667 - 2 = -2.0; times g = 0.5: -1.0
    np.testing.assert_allclose(gs, [[-1.0]], rtol=1e-6)


def test_seq_2bit_by_hand():
    # s = 1: 2u - 0.5 = [1.3, -0.9, -0.3, -2.9] rounds to k = [1, -1, 0, -3], clipped to [-2, 1];
    # Q(u) = (k + 0.5) / 2 = [0.75, -0.25, 0.25, -0.75]; u = -1.2 lies outside [-1, 1].
    q, gw, gs = _grads("seq_2bit", [[0.9, -0.2, 0.1, -1.2]], [[1.0]])
    np.testing.assert_allclose(q, [[0.75, -0.25, 0.25, -0.75]], rtol=1e-7)
    np.testing.assert_array_equal(gw, [[1.0, 2.0, -1.0, 0.0]])
    # dq/ds = [0.75 - 0.9, -0.25 + 0.2, 0.25 - 0.1, -0.75] = [-0.15, -0.05, 0.15, -0.75]
    # sum(upstream * dq/ds) = -0.15 - 0.1 - 0.15 - 2.25 = -2.65; times 0.5: -1.325
    np.testing.assert_allclose(gs, [[-1.325]], rtol=1e-6)


def test_binary_by_hand():
    # s = 0.5: q = 0.5 sign(w); u = [0.6, -1.6, 3.0, -0.2], so dq/dw = 1 where |w| <= s: [1, 0, 0, 1].
    q, gw, gs = _grads("binary", [[0.3, -0.8, 1.5, -0.1]], [[0.5]])
    np.testing.assert_array_equal(q, [[0.5, -0.5, 0.5, -0.5]])
    np.testing.assert_array_equal(gw, [[1.0, 0.0, 0.0, 3.0]])
    # ParetoQ: dq/ds = sign(w) everywhere: sum = 1 - 2 - 1 - 3 = -5; times 0.5: -2.5
    np.testing.assert_allclose(gs, [[-2.5]], rtol=1e-7)


def test_lsq_int3_by_hand():
    # int3 is two's complement [-4, 3] (LSQ's Qn = 4, Qp = 3). s = 0.2: u = [1.75, -4.5, 3.5, 0.25];
    # round(u) = [2, ., ., 0]; -4.5 and 3.5 lie outside [-4, 3] and clip to -4 and 3.
    q, gw, gs = _grads("lsq_int3", [[0.35, -0.9, 0.7, 0.05]], [[0.2]])
    np.testing.assert_allclose(q, [[0.4, -0.8, 0.6, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(gw, [[1.0, 0.0, 0.0, 3.0]])
    # dq/ds = [2 - 1.75, -4, 3, 0 - 0.25]; sum(upstream * .) = 0.25 - 8 - 3 - 0.75 = -11.5;
    # g = 1/sqrt(4 * 3)
    np.testing.assert_allclose(gs, [[-11.5 / math.sqrt(12.0)]], rtol=1e-5)


def test_lsq_equation_3():
    """LSQ (Esser et al. 2020) eq. 3: dv^/ds = -v/s + round(v/s) for -Qn < v/s < Qp, -Qn below,
    Qp above; with one element per scale (N = 1) times g = 1/sqrt(Qp)."""
    s = 0.25
    for kind, qn, qp in (("lsq_int3", 4, 3), ("lsq_int4", 8, 7)):
        v = np.linspace(-(qn + 2) * s, (qp + 2) * s, 97)
        v = v[np.abs(np.abs(v / s) % 1 - 0.5) > 1e-3]  # no round-half ties
        ratio = v / s
        expected = np.where(ratio <= -qn, -qn, np.where(ratio >= qp, qp, -ratio + np.round(ratio)))
        w = torch.tensor(v[:, None], dtype=torch.float32, requires_grad=True)
        scale = torch.full((len(v), 1), s, requires_grad=True)
        learned_quantize(w, scale, kind).sum().backward()
        np.testing.assert_allclose(scale.grad.numpy()[:, 0], expected / math.sqrt(qp), atol=1e-5)
        # LSQ's weight gradient (eq. 5): 1 inside the clip range, 0 outside
        np.testing.assert_array_equal(w.grad.numpy()[:, 0], ((ratio >= -qn) & (ratio <= qp)).astype(np.float32))


def _surrogate(kind, w0, s0, lo, hi, qp):
    """The straight-through surrogate at (w0, s0), in float64: the codes Q(u0) held fixed and the
    rounding replaced by the identity, s * (Q(u0) + clip(w/s) - clip(u0)). Its exact gradient is
    the straight-through one; LSQ's gradient scale multiplies the scale's."""
    u0 = w0 / s0
    q0 = learned_quantize(torch.tensor(w0, dtype=torch.float32), torch.tensor(s0, dtype=torch.float32), kind)
    c0 = q0.double().numpy() / s0

    def f(w, s, upstream):
        return float(np.sum(upstream * s * (c0 + np.clip(w / s, lo, hi) - np.clip(u0, lo, hi))))

    return f, 1.0 / math.sqrt(w0.shape[1] * qp)


@pytest.mark.parametrize(
    ("kind", "lo", "hi", "qp"),
    [("seq_ternary", -1, 1, 1), ("seq_2bit", -1, 1, 1), ("lsq_int3", -4, 3, 3), ("lsq_int4", -8, 7, 7)],
)
def test_gradients_are_finite_differences_of_the_surrogate(kind, lo, hi, qp):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((3, 6))
    s0 = np.array([[0.8], [0.3], [1.1]]) if "seq" in kind else np.array([[0.4], [0.1], [0.5]])
    w0 = w0.astype(np.float32).astype(np.float64)
    upstream = rng.standard_normal((3, 6))
    f, g = _surrogate(kind, w0, s0, lo, hi, qp)
    u0 = w0 / s0
    assert np.any((u0 < lo) | (u0 > hi)) and np.any((u0 > lo) & (u0 < hi))  # both regions exercised
    h = 1e-6
    fd_w = np.zeros_like(w0)
    for idx in np.ndindex(w0.shape):
        d = np.zeros_like(w0)
        d[idx] = h
        fd_w[idx] = (f(w0 + d, s0, upstream) - f(w0 - d, s0, upstream)) / (2 * h)
    fd_s = np.zeros_like(s0)
    for r in range(3):
        d = np.zeros_like(s0)
        d[r] = h
        fd_s[r] = (f(w0, s0 + d, upstream) - f(w0, s0 - d, upstream)) / (2 * h) * g
    _, gw, gs = _grads(kind, w0.astype(np.float32), s0.astype(np.float32), upstream.astype(np.float32))
    np.testing.assert_allclose(gw, fd_w, atol=1e-5)
    np.testing.assert_allclose(gs, fd_s, rtol=1e-4, atol=1e-5)


def test_binary_scale_gradient_is_finite_difference_of_forward():
    # q = s sign(w) is linear in s, so finite differences of the real forward give dq/ds exactly.
    rng = np.random.default_rng(4)
    w = rng.standard_normal((2, 5)).astype(np.float32)
    upstream = rng.standard_normal((2, 5)).astype(np.float32)
    s = np.array([[0.7], [1.3]], dtype=np.float32)

    def f(scale):
        q = learned_quantize(torch.from_numpy(w), torch.from_numpy(scale.astype(np.float32)), "binary")
        return float((q.double().numpy() * upstream).sum())

    h = 1e-2
    fd = [(f(s + h * e) - f(s - h * e)) / (2 * h) for e in np.eye(2)[:, :, None]]
    _, _, gs = _grads("binary", w, s, upstream)
    np.testing.assert_allclose(gs[:, 0], np.array(fd) / math.sqrt(5), rtol=1e-4)


# Forward values: lowbit's NumPy formats with the same scale.


@pytest.mark.parametrize(("bits", "name"), [(1.58, "paretoq_ternary"), (2, "paretoq_2bit")])
def test_seq_with_absmax_scale_is_lowbit_format(bits, name):
    w = np.random.default_rng(5).standard_normal((16, 48)).astype(np.float32)
    quantizer = learned_quantizer(bits, torch.from_numpy(w))  # alpha = max|w| per row
    np.testing.assert_array_equal(quantizer.scale.detach().numpy()[:, 0], np.abs(w).max(axis=1))
    got = quantizer(torch.from_numpy(w)).detach().numpy()
    np.testing.assert_array_equal(got, lowbit.quantize(w, name, axis=-1))


@pytest.mark.parametrize(
    ("kind", "name"), [("binary", "paretoq_1bit"), ("lsq_int3", "lsq_int3"), ("lsq_int4", "lsq_int4")]
)
def test_with_the_format_scale_is_lowbit_format(kind, name):
    """With the scale lowbit's format picks (absmean for 1 bit, the MSE-searched step for LSQ),
    passed in as the initial scale, the quantizer gives the format's values bit for bit."""
    w = np.random.default_rng(6).standard_normal((16, 48)).astype(np.float32)
    scale = lowbit.encode(w, name, axis=-1).scales.view(np.float32).reshape(16, 1)
    quantizer = LearnedScale(kind, torch.from_numpy(w), scale=torch.from_numpy(scale.copy()))
    got = quantizer(torch.from_numpy(w)).detach().numpy()
    np.testing.assert_array_equal(got, lowbit.quantize(w, name, axis=-1))


def test_lsq_grid_is_twos_complement():
    w = torch.tensor([[-10.0, -8.4, -7.6, 0.4, 6.6, 7.4, 10.0]])
    q = learned_quantize(w, torch.ones(1, 1), "lsq_int4")
    np.testing.assert_array_equal(q.numpy(), [[-8, -8, -8, 0, 7, 7, 7]])
    q = learned_quantize(w, torch.full((1, 1), 2.0), "lsq_int3")  # steps of 2, k in [-4, 3]
    np.testing.assert_array_equal(q.numpy(), [[-8, -8, -8, 0, 6, 6, 6]])


# Initial scales, worked by hand for rows [1, -2, 3, -4] and [0.5, 0.5, -0.5, 0.5].


def test_init_scales():
    w = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.5, -0.5, 0.5]])
    expected = {
        "binary": [2.5, 0.5],  # mean|w|
        "seq_ternary": [4.0, 0.5],  # max|w|
        "seq_2bit": [4.0, 0.5],
        "lsq_int3": [5 / math.sqrt(3), 1 / math.sqrt(3)],  # 2 mean|w| / sqrt(Qp)
        "lsq_int4": [5 / math.sqrt(7), 1 / math.sqrt(7)],
    }
    for kind, values in expected.items():
        scale = init_scale(kind, w)
        assert scale.shape == (2, 1) and scale.dtype == torch.float32
        np.testing.assert_allclose(scale.numpy()[:, 0], values, rtol=1e-6)
        module = LearnedScale(kind, w)
        assert isinstance(module.scale, torch.nn.Parameter)
        np.testing.assert_allclose(module.scale.detach().numpy()[:, 0], values, rtol=1e-6)


def test_bits_map_to_kinds():
    assert [kind_for_bits(b) for b in (1, 1.58, math.log2(3), 2, 3, 4)] == [
        LearnedKind.BINARY,
        LearnedKind.SEQ_TERNARY,
        LearnedKind.SEQ_TERNARY,
        LearnedKind.SEQ_2BIT,
        LearnedKind.LSQ_INT3,
        LearnedKind.LSQ_INT4,
    ]
    assert kind_bits("seq_ternary") == 1.58
    assert learned_quantizer(3, torch.ones(2, 3)).kind is LearnedKind.LSQ_INT3


@pytest.mark.parametrize("bits", [0, 1.5, 5, 8, float("nan"), True, "2"])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="bits must be one of 1, 1.58, 2, 3, 4"):
        learned_quantizer(bits, torch.ones(2, 3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        LearnedScale("int4", torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"weight must be a \(rows, K\) matrix"):
        LearnedScale("binary", torch.ones(6))
    with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
        init_scale("binary", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"scale must have shape \(2, 1\)"):
        LearnedScale("binary", torch.ones(2, 3), scale=torch.ones(2))
    with pytest.raises(ValueError, match=r"scale must be a \(2, 1\) tensor"):
        learned_quantize(torch.ones(2, 3), torch.ones(1, 1), "binary")


def test_training_moves_the_scale_and_keeps_dtype():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(0)).bfloat16().requires_grad_()
    quantizer = learned_quantizer(2, w.detach().float())
    q = quantizer(w)
    assert q.dtype == torch.bfloat16
    q.float().pow(2).sum().backward()
    assert w.grad is not None and w.grad.dtype == torch.bfloat16
    before = quantizer.scale.detach().clone()
    torch.optim.SGD(quantizer.parameters(), lr=0.1).step()
    assert not torch.equal(before, quantizer.scale.detach())


def test_zero_scale_stays_finite():
    w = torch.randn(2, 5, requires_grad=True)
    s = torch.zeros(2, 1, requires_grad=True)
    q = learned_quantize(w, s, "seq_ternary")
    q.sum().backward()
    assert torch.isfinite(q).all() and torch.isfinite(s.grad).all() and torch.isfinite(w.grad).all()


def test_clip_bounds_are_inside():
    """The clip range includes its bounds (ParetoQ's convention): at u = -8 and u = 7 for int4,
    dq/dw = 1 and dq/ds = round(u) - u = 0; at u = +-1 for SEQ ternary, dq/ds = Q(u) - u = -+1/3."""
    _, gw, gs = _grads("lsq_int4", [[-8.0, 7.0, 7.0, -8.0]], [[1.0]])
    np.testing.assert_array_equal(gw, [UPSTREAM])
    np.testing.assert_array_equal(gs, [[0.0]])
    _, gw, gs = _grads("seq_ternary", [[1.0, -1.0, 1.0, 1.0]], [[1.0]])
    np.testing.assert_array_equal(gw, [UPSTREAM])
    # dq/ds = [-1/3, 1/3, -1/3, -1/3]: sum(upstream * .) = -1/3 + 2/3 + 1/3 - 1 = -1/3; times 0.5
    np.testing.assert_allclose(gs, [[-1 / 6]], rtol=1e-6)
