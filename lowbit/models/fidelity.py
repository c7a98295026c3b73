"""Model fidelity under emulated formats: linear layers through lowbit's formats, and how close the
quantized model's embeddings stay to float32's.

  mean_cosine         mean over sentences of cos(e_float32, e_quantized)
  retrieval_agreement fraction of sentences whose nearest other sentence (cosine) is the same under
                      both models
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..simulator import matmul, quantize
from .minilm import Linear


def sentences(limit: int | None = None) -> list[str]:
    """The 240 sentences shipped for the fidelity workload (the first `limit` of them)."""
    text = (Path(__file__).parent / "data" / "sentences.txt").read_text(encoding="utf-8")
    rows = [s for s in text.splitlines() if s and not s.startswith("#")]
    return rows[:limit] if limit else rows


def quantized_linear(
    weights: Mapping[str, object] | object | None,
    activations=None,
    accumulator: str = "fp32",
    engine=None,
    promote_every: int | None = None,
) -> Linear:
    """A `linear` hook running each layer in formats: `weights` is one format for every layer or
    {layer name: format} (layers left out stay float32); `activations` the inputs' format (None:
    float32). Weights are quantized along their input axis (K). With an activation format the product
    runs through `lowbit.simulator.matmul` with `accumulator` (or on `engine`, promoting every
    `promote_every`); the emulator needs a format on both
    sides, so a layer left out of `weights` then takes float16 weights. Without one it is a float32
    product of the quantized weights."""

    def fmt_of(name: str):
        return weights.get(name) if isinstance(weights, Mapping) else weights

    quantized: dict[str, np.ndarray] = {}  # each layer's weights, quantized once per hook

    def linear(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        wf = fmt_of(name)
        if wf is None and activations is None:
            return x @ w.T + b
        if activations is None:
            if name not in quantized:
                quantized[name] = np.ascontiguousarray(quantize(w, wf, axis=1).T)
            return x @ quantized[name] + b
        bf = wf if wf is not None else "float16"
        unit = {"engine": engine, "promote_every": promote_every}
        y = matmul(x, np.ascontiguousarray(w.T), activations, bf, accumulator, **unit)
        return (y + b).astype(np.float32)

    return linear


def mean_cosine(reference: np.ndarray, other: np.ndarray) -> float:
    num = np.sum(reference * other, axis=1)
    den = np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1)
    return float(np.mean(num / np.maximum(den, 1e-30)))


def nearest(emb: np.ndarray) -> np.ndarray:
    """Index of each row's most similar other row (cosine)."""
    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-30)
    sim = e @ e.T
    np.fill_diagonal(sim, -np.inf)
    return np.argmax(sim, axis=1)


def retrieval_agreement(reference: np.ndarray, other: np.ndarray) -> float:
    return float(np.mean(nearest(reference) == nearest(other)))
