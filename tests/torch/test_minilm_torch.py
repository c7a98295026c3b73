"""all-MiniLM-L6-v2 through transformers against lowbit's NumPy MiniLM: the same float32 embeddings,
and, quantized with `quantize_model`, the same fidelity as the NumPy path's `quantized_linear` hook
(the expected values come from the NumPy path, never from lowbit.torch). The rules cover the encoder's
linear layers, `encoder_rules(fmt)`, the layers the NumPy hook runs through formats."""

import copy
import os
import socket

import numpy as np
import pytest

from ..helpers import minilm_or_skip

torch = pytest.importorskip("torch")
try:
    import transformers  # noqa: F401
except ImportError as err:  # the torch extra brings it: skip without it, except under CI=true
    if os.environ.get("CI") == "true":
        raise ImportError(f"CI=true but transformers (torch extra) is missing: {err}") from err
    pytest.skip(f"transformers is not installed ({err}); install lowbit[torch]", allow_module_level=True)

from lowbit.models.fidelity import mean_cosine, quantized_linear, retrieval_agreement, sentences  # noqa: E402
from lowbit.torch import QuantLinear, quantize_model  # noqa: E402
from lowbit.torch.minilm import Fidelity, embed, encoder_rules, fidelity, load_hf_minilm  # noqa: E402

N_SENTENCES = 48  # enough for retrieval to be non-trivial, few enough for a fast file
# NF4, MXFP4, NVFP4, INT4 in groups of 128 along K, and BitNet b1.58's ternary weights
FORMATS = ["nf4", "mxfp4", "nvfp4", "int4_g128", "bitnet_b158"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here on one torch thread (conftest's fixture)."""


@pytest.fixture(scope="module")
def numpy_minilm():
    return minilm_or_skip()


@pytest.fixture(scope="module")
def hf_minilm(numpy_minilm):
    return load_hf_minilm()


@pytest.fixture(scope="module")
def texts():
    return sentences(N_SENTENCES)


@pytest.fixture(scope="module")
def numpy_float32(numpy_minilm, texts):
    return numpy_minilm.embed(texts)


@pytest.fixture(scope="module")
def torch_float32(hf_minilm, texts):
    return embed(hf_minilm, texts)


def test_float32_embeddings_equal_numpy_path(numpy_float32, torch_float32):
    assert torch_float32.dtype == np.float32 and torch_float32.shape == (N_SENTENCES, 384)
    np.testing.assert_allclose(np.linalg.norm(torch_float32, axis=1), 1.0, atol=1e-6)
    assert np.abs(torch_float32 - numpy_float32).max() < 1e-5


def test_model_is_eager_float32_eval_without_pooler(hf_minilm):
    assert hf_minilm.config._attn_implementation == "eager"
    assert not hf_minilm.training and hf_minilm.pooler is None
    assert {p.dtype for p in hf_minilm.parameters()} == {torch.float32}


def test_batch_size_does_not_change_embeddings(hf_minilm, texts, torch_float32):
    # padding differs between batchings; masked positions must not leak into the pooled result
    np.testing.assert_allclose(embed(hf_minilm, texts, batch=20), torch_float32, atol=1e-6)


def test_encoder_rules_quantize_exactly_the_numpy_paths_linear_layers(hf_minilm, numpy_minilm):
    model = quantize_model(copy.deepcopy(hf_minilm), encoder_rules("nf4"))
    quantized = [name for name, m in model.named_modules() if isinstance(m, QuantLinear)]
    assert quantized == numpy_minilm.linear_names
    # no plain nn.Linear is left (a QuantLinear is an nn.Linear holding the original's parameters)
    plain = [name for name, m in model.named_modules() if type(m) is torch.nn.Linear]
    assert plain == []


def test_star_rule_is_refused_for_the_embedding_tables(hf_minilm):
    # why encoder_rules exists: '*' also matches nn.Embedding, which quantize_model does not support
    with pytest.raises(TypeError, match="embeddings"):
        quantize_model(copy.deepcopy(hf_minilm), {"*": "nf4"})


@pytest.mark.parametrize("fmt", FORMATS)
def test_quantized_fidelity_equals_numpy_path(fmt, hf_minilm, numpy_minilm, texts, numpy_float32, torch_float32):
    numpy_q = numpy_minilm.embed(texts, linear=quantized_linear(fmt))
    expected = Fidelity(mean_cosine(numpy_float32, numpy_q), retrieval_agreement(numpy_float32, numpy_q))
    got = fidelity(quantize_model(copy.deepcopy(hf_minilm), encoder_rules(fmt)), torch_float32, texts)
    assert expected.mean_cosine < 0.9999  # the format really changed the model
    assert got.mean_cosine == pytest.approx(expected.mean_cosine, abs=1e-5)
    assert got.retrieval_agreement == pytest.approx(expected.retrieval_agreement, abs=1e-5)


def test_fidelity_of_float32_model_is_perfect(hf_minilm, texts, torch_float32):
    got = fidelity(hf_minilm, torch_float32, texts)
    assert got.mean_cosine == pytest.approx(1.0, abs=1e-6) and got.retrieval_agreement == 1.0


def test_bad_arguments_are_named(hf_minilm, texts, torch_float32, tmp_path):
    with pytest.raises(ValueError, match="reference"):
        fidelity(hf_minilm, torch_float32[:3], texts)
    with pytest.raises(ValueError, match="batch"):
        embed(hf_minilm, texts, batch=0)
    with pytest.raises(FileNotFoundError, match="path"):
        load_hf_minilm(tmp_path)


def test_loading_fetches_nothing(numpy_minilm, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_hf_minilm tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert load_hf_minilm().config.num_hidden_layers == 6
