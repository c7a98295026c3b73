"""Fidelity metrics by hand, and the quantized-linear hook against quantizing the weights directly."""

import numpy as np
import pytest

import lowbit
from lowbit.models.fidelity import mean_cosine, nearest, quantized_linear, retrieval_agreement, sentences


def test_metrics_by_hand():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    other = np.array([[1.0, 0.0], [0.0, -1.0], [0.1, 0.9]])
    # cosines: 1, -1, (0.09 + 0.09) / 0.82 = 0.2195...
    assert mean_cosine(ref, other) == pytest.approx((1 - 1 + 0.18 / 0.82) / 3)
    assert nearest(ref).tolist() == [2, 2, 0]
    # [0, -1] has cosine 0 with [1, 0] and -0.99 with [0.1, 0.9]: its nearest is row 0
    assert nearest(other).tolist() == [2, 0, 0]
    assert retrieval_agreement(ref, other) == pytest.approx(2 / 3)
    assert retrieval_agreement(ref, ref) == 1.0


def test_sentences_are_shipped():
    s = sentences()
    assert len(s) == 240 and len(set(s)) == 240 and sentences(10) == s[:10]


def test_quantized_weights_equal_quantizing_by_hand(minilm):
    m = minilm
    s = sentences(8)

    def by_hand(name, x, w, b):
        return x @ lowbit.quantize(w, "nvfp4", axis=1).T + b

    np.testing.assert_array_equal(m.embed(s, linear=quantized_linear("nvfp4")), m.embed(s, linear=by_hand))
    only = {m.linear_names[0]: "nvfp4"}  # one layer in NVFP4, the others float32
    e = m.embed(s, linear=quantized_linear(only))
    assert 0.99 < mean_cosine(m.embed(s), e) < 1.0
    w8a8 = m.embed(s, linear=quantized_linear("mxint8", activations="mxint8", accumulator="fp32"))
    assert mean_cosine(m.embed(s), w8a8) > 0.995


def test_an_engine_runs_each_layer_as_its_instruction(minilm):
    m = minilm
    s = sentences(2)
    engine = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")

    def by_hand(name, x, w, b):
        y = lowbit.simulator.matmul(x, w.T, "float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=128)
        return (y + b).astype(np.float32)

    linear = quantized_linear("float8_e4m3fn", "float8_e4m3fn", engine=engine, promote_every=128)
    e = m.embed(s, linear=linear)
    np.testing.assert_array_equal(e, m.embed(s, linear=by_hand))
    assert 0.99 < mean_cosine(m.embed(s), e) < 1.0
