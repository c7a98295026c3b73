"""lowbit's NumPy MiniLM against reference embeddings from sentence-transformers on PyTorch (made by
scripts/make_minilm_reference.py), and its tokenizer on hand-checked cases."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def model(minilm):
    return minilm


def test_float32_forward_pass_matches_the_reference(model):
    sentences = (DATA / "minilm_reference_sentences.txt").read_text(encoding="utf-8").split("\n")[:64]
    ref = np.load(DATA / "minilm_reference.npy")
    got = model.embed(sentences)
    assert got.shape == ref.shape == (64, 384)
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() > 0.9999, (cos.min(), sentences[int(np.argmin(cos))])


def test_tokenizer_by_hand(model):
    vocab = model.tokenizer.vocab
    tok = model.tokenizer
    ids = tok.encode("Hello, WORLD! Café")
    # [CLS] hello , world ! cafe [SEP]: lowercased, accents stripped, punctuation split off
    assert ids == [
        vocab["[CLS]"],
        vocab["hello"],
        vocab[","],
        vocab["world"],
        vocab["!"],
        vocab["cafe"],
        vocab["[SEP]"],
    ]
    # a word outside the vocabulary splits into the longest pieces, '##' inside the word
    pieces = tok.pieces("tokenization")
    assert [k for k, v in vocab.items() if v in pieces] and pieces[0] == vocab["token"]
    assert all(p in vocab.values() for p in pieces) and len(pieces) >= 2
    assert tok.pieces("x" * 101) == [vocab["[UNK]"]]
    assert len(tok.encode(" ".join(["word"] * 400))) == 256  # [CLS] + 254 + [SEP]
    assert tok.encode("") == [vocab["[CLS]"], vocab["[SEP]"]]


def test_linear_hook_sees_every_layer(model):
    seen = []

    def record(name, x, w, b):
        seen.append(name)
        return x @ w.T + b

    a = model.embed(["A hook records every linear layer."], linear=record)
    b = model.embed(["A hook records every linear layer."])
    assert seen == model.linear_names and len(seen) == 36
    np.testing.assert_array_equal(a, b)
