"""The linearity theorem (HIGGS, Malinovskii et al. 2024) on a model: each linear layer l has a
sensitivity alpha_l, and a per-layer assignment of formats drops the model's fidelity by about
sum_l alpha_l * relmse_l, relmse_l = ||Q(W_l) - W_l||^2 / ||W_l||^2 the layer's relative weight error.

`sensitivities` measures alpha_l by adding Gaussian noise of relative size t to one layer at a time and
fitting the drop of fidelity (1 - mean cosine to the float32 embeddings) against t^2 through the origin.
`predict` sums the terms; `allocate` picks, by dynamic programming, the assignment that minimises the
predicted drop under an average bits-per-weight budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..formats import get_format
from ..simulator import quantize
from .fidelity import mean_cosine, quantized_linear
from .minilm import MiniLM


@dataclass(frozen=True)
class Sensitivities:
    """Per linear layer: its name, alpha (fidelity drop per unit relative MSE) and weight count."""

    names: tuple[str, ...]
    alpha: np.ndarray
    sizes: np.ndarray


def relative_mse(w: np.ndarray, fmt) -> float:
    """||Q(w) - w||^2 / ||w||^2, w quantized along its input axis (K)."""
    q = quantize(np.ascontiguousarray(w, np.float32), fmt, axis=1).astype(np.float64)
    w64 = w.astype(np.float64)
    return float(np.sum((q - w64) ** 2) / np.sum(w64 * w64))


def _noisy(layer: str, t: float, seed: int):
    def linear(name, x, w, b):
        if name == layer:
            rms = np.sqrt(np.mean(w.astype(np.float64) ** 2))
            w = w + (t * rms * np.random.default_rng(seed).standard_normal(w.shape)).astype(np.float32)
        return x @ w.T + b

    return linear


def sensitivities(model: MiniLM, sentences: list[str], ts=(0.05, 0.1), seed: int = 0) -> Sensitivities:
    """alpha_l for every linear layer (one forward pass per layer and noise level)."""
    ref = model.embed(sentences)
    ts = np.asarray(ts, float)
    alphas = []
    for name in model.linear_names:
        drops = np.array([1 - mean_cosine(ref, model.embed(sentences, linear=_noisy(name, t, seed))) for t in ts])
        alphas.append(float(np.sum(drops * ts**2) / np.sum(ts**4)))
    return Sensitivities(tuple(model.linear_names), np.array(alphas), uniform_sensitivities(model).sizes)


def bits_per_weight(fmt, shape: tuple[int, int]) -> float:
    """Stored bits per weight of a (N, K) weight matrix in `fmt`, quantized along K: element bits plus
    the scale bits shared over a block, a row (per channel) or the whole tensor (per tensor)."""
    return float(get_format(fmt).bits_per_element_in(tuple(shape), axis=1))


def layer_bits(model: MiniLM, fmt) -> dict[str, float]:
    """Bits per weight of every linear layer in `fmt`."""
    return {n: bits_per_weight(fmt, model.weights[f"{n}.weight"].shape) for n in model.linear_names}


def layer_errors(model: MiniLM, fmt) -> dict[str, float]:
    """relmse of every linear layer's weights in `fmt`."""
    return {n: relative_mse(model.weights[f"{n}.weight"], fmt) for n in model.linear_names}


def layer_drops(model: MiniLM, sentences: list[str], fmt) -> dict[str, float]:
    """The measured fidelity drop (1 - mean cosine to float32) of `fmt` on each linear layer alone, the
    others float32: one forward pass per layer. With `uniform_sensitivities`, `predict` and `allocate`
    then sum measured per-layer drops instead of alpha_l * relmse_l. That keeps the theorem's additivity
    over layers but not its error model, so it also holds for formats whose error is far from Gaussian
    noise (ternary weights, whose absmean scale shrinks a layer's output by about half)."""
    ref = model.embed(sentences)
    return {
        n: 1.0 - mean_cosine(ref, model.embed(sentences, linear=quantized_linear({n: fmt}))) for n in model.linear_names
    }


def uniform_sensitivities(model: MiniLM) -> Sensitivities:
    """alpha_l = 1 for every layer: for `predict` and `allocate` on measured drops (`layer_drops`)."""
    names = tuple(model.linear_names)
    sizes = np.array([model.weights[f"{n}.weight"].size for n in names])
    return Sensitivities(names, np.ones(len(names)), sizes)


def predict(sens: Sensitivities, errors: Mapping[str, float]) -> float:
    """Predicted fidelity (mean cosine): 1 - sum_l alpha_l * relmse_l (layers missing from `errors`
    are float32)."""
    return 1.0 - float(sum(a * errors.get(n, 0.0) for n, a in zip(sens.names, sens.alpha, strict=True)))


Bits = float | Mapping[str, float]  # bits per weight: one figure, or one per layer


def _bits(bits: Bits, name: str) -> float:
    return float(bits[name]) if isinstance(bits, Mapping) else float(bits)


def allocate(sens: Sensitivities, options: Mapping[str, tuple[Bits, Mapping[str, float]]], budget: float,
             resolution: int = 4000) -> dict[str, str]:  # fmt: skip
    """The {layer: format} that minimises the predicted drop with at most `budget` bits per weight on
    average. options: {format: (bits per weight, {layer: relmse})}, bits one figure or {layer: bits}.
    Costs are counted in `resolution` steps of the whole model's bit budget (rounded up per layer, so
    the budget always holds)."""
    names = list(sens.names)
    total = float(sens.sizes.sum())
    unit = budget * total / resolution
    fmts = list(options)

    def cost(f: str, i: int) -> int:
        return int(np.ceil(_bits(options[f][0], names[i]) * sens.sizes[i] / unit - 1e-9))

    inf = float("inf")
    best = np.full(resolution + 1, inf)
    best[0] = 0.0
    choice = []
    for i, name in enumerate(names):
        nxt = np.full(resolution + 1, inf)
        pick = np.full(resolution + 1, -1)
        for f, fmt in enumerate(fmts):
            c = cost(fmt, i)
            if c > resolution:
                continue
            cand = np.full(resolution + 1, inf)
            cand[c:] = best[: resolution + 1 - c] + sens.alpha[i] * options[fmt][1][name]
            better = cand < nxt
            nxt[better] = cand[better]
            pick[better] = f
        choice.append(pick)
        best = nxt
    if not np.isfinite(best).any():
        raise ValueError(f"budget: {budget} bits per weight is below every option")
    spent = int(np.argmin(best))
    out: dict[str, str] = {}
    for i in range(len(names) - 1, -1, -1):
        out[names[i]] = fmts[int(choice[i][spent])]
        spent -= cost(out[names[i]], i)
    return dict(reversed(list(out.items())))


def average_bits(sens: Sensitivities, assignment: Mapping[str, str], bits: Mapping[str, Bits]) -> float:
    """Bits per weight of an assignment, weighted by the layers' sizes. bits: {format: bits per weight,
    one figure or {layer: bits}}."""
    b = np.array([_bits(bits[assignment[n]], n) for n in sens.names])
    return float(np.sum(b * sens.sizes) / np.sum(sens.sizes))
