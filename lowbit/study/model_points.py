"""Points of a study on a model workload: a format on every linear layer, or a per-layer mix chosen by
dynamic programming under a bits-per-weight budget (the linearity theorem, lowbit.models.linearity).

Model, sentences, float32 embeddings, sensitivities and each format's per-layer errors are computed
once per process and reused by every point on the same workload.
"""

from __future__ import annotations

import functools
import json
from collections import Counter

import numpy as np

from ..formats import AnyFormat
from ..models import linearity, load_minilm
from ..models.fidelity import quantized_linear, sentences
from .schema import Allocation, FormatSpec, ModelWorkload, Predictor
from .store import BITS_PER_ELEMENT, WorkloadKind, metric_columns

MODEL_K = 384  # MiniLM's hidden size: the K that per-channel scales of its layers count bits over


@functools.lru_cache(maxsize=1)
def _model():
    return load_minilm()


@functools.lru_cache(maxsize=2)
def reference(n: int):
    """The model, its first n sentences and their float32 embeddings."""
    s = sentences(n)
    return _model(), s, _model().embed(s)


@functools.lru_cache(maxsize=2)
def sensitivities(n: int, noise: tuple[float, ...]):
    """Each linear layer's sensitivity on the workload's sentences (see linearity.sensitivities)."""
    model, s, _ = reference(n)
    return linearity.sensitivities(model, s, ts=noise)


def calibration(n: int, count: int | None) -> list[str]:
    """`count` of the workload's first n sentences, evenly spaced (so that they span its topics)."""
    _, s, _ = reference(n)
    if count is None or count >= len(s):
        return s
    return [s[i] for i in np.linspace(0, len(s) - 1, count).round().astype(int)]


@functools.lru_cache(maxsize=64)
def drops(n: int, count: int | None, spec_json: str) -> dict[str, float]:
    """{layer: measured fidelity drop} of a format on each layer alone (see linearity.layer_drops)."""
    fmt = weight_format(FormatSpec.model_validate_json(spec_json))
    return linearity.layer_drops(_model(), calibration(n, count), fmt)


def weight_format(spec: FormatSpec) -> AnyFormat:
    """The format of a spec that a model's weights can take (its Hadamard and rounding fields are
    not applied to models, so a spec that sets them is refused rather than silently ignored)."""
    if spec.hadamard or spec.rounding != "rne":
        raise ValueError(f"format {spec.name}: model workloads take formats without 'hadamard' and 'rounding'")
    return spec.spec()


@functools.lru_cache(maxsize=64)
def profile(spec_json: str) -> tuple[dict[str, float], dict[str, float]]:
    """({layer: bits per weight}, {layer: relative MSE}) of a format on every linear layer."""
    fmt = weight_format(FormatSpec.model_validate_json(spec_json))
    return linearity.layer_bits(_model(), fmt), linearity.layer_errors(_model(), fmt)


def _metrics(metrics, ref: np.ndarray, emb: np.ndarray) -> dict:
    """The study's metrics: the model ones measured, the tensor and GEMM ones NaN."""
    return metric_columns(metrics, WorkloadKind.MODEL, lambda m, _: m.compute(ref, emb))


def _embed(w: ModelWorkload, weights) -> tuple[np.ndarray, np.ndarray, int]:
    model, s, ref = reference(w.sentences)
    linear = quantized_linear(weights, w.activations, w.accumulator, w.engine, w.promote_every)
    return ref, model.embed(s, linear=linear), len(s)


def uniform_row(spec: FormatSpec, w: ModelWorkload, metrics, predict: bool) -> dict:
    """Metrics of one format on every linear layer; with `predict`, the linearity theorem's prediction
    of fidelity from the weights' errors alone (activation formats are not part of it)."""
    fmt = weight_format(spec)
    ref, emb, n = _embed(w, fmt)
    bits = linearity.layer_bits(_model(), fmt)
    uniform = linearity.uniform_sensitivities(_model())
    average = linearity.average_bits(uniform, dict.fromkeys(bits, spec.name), {spec.name: bits})
    out = {"shape": f"{n} sentences", BITS_PER_ELEMENT.name: average, **_metrics(metrics, ref, emb)}
    if predict:
        errors = profile(spec.model_dump_json())[1]
        out["predicted_fidelity"] = linearity.predict(sensitivities(w.sentences, tuple(w.noise)), errors)
        out["predictor"] = Predictor.THEOREM.value
    return out


def allocation_identity(allocation: Allocation) -> dict:
    """The spec columns of an allocation's row known before it runs (so that a failed one keeps them)."""
    return {
        "format": allocation.label,
        "base_format": "dp_allocation",
        "family": "mixed",
        "block": 0,
        "scale": "mixed",
        "rule": "mixed",
        "asymmetric": False,
        "tensor_scale": "mixed",
        "rounding": "rne",
        "hadamard": 0,
        "budget_bits": allocation.budget,
        "predictor": allocation.predictor.value,
    }


def allocation_row(allocation: Allocation, specs: list[FormatSpec], w: ModelWorkload, metrics) -> tuple[dict, dict]:
    """The DP assignment's row, and the share of the model's weights (so of its MACs) in each format,
    {format spec JSON: share}, for the cost columns."""
    by_name = {s.name: s for s in specs}
    options = {name: profile(spec.model_dump_json()) for name, spec in by_name.items()}
    if allocation.predictor is Predictor.MEASURED:
        sens = linearity.uniform_sensitivities(_model())
        options = {
            name: (bits, drops(w.sentences, allocation.calibration, by_name[name].model_dump_json()))
            for name, (bits, _) in options.items()
        }
    else:
        sens = sensitivities(w.sentences, tuple(w.noise))
    chosen = linearity.allocate(sens, options, allocation.budget)
    weights = {layer: weight_format(by_name[name]) for layer, name in chosen.items()}
    ref, emb, n = _embed(w, weights)
    row, shares = allocation_columns(allocation, by_name, options, sens, chosen)
    return {**row, "shape": f"{n} sentences", **_metrics(metrics, ref, emb)}, shares


def allocation_columns(
    allocation: Allocation, by_name: dict[str, FormatSpec], options: dict, sens: linearity.Sensitivities,
    chosen: dict[str, str],
) -> tuple[dict, dict]:  # fmt: skip
    """An allocation row's columns that do not depend on the model (identity, the formats' shares, bits,
    the assignment and the predicted fidelity), and the share of the weights (so of the MACs) in each
    format, {format spec JSON: share}, for the cost columns. Model and torch workloads share it."""
    sizes = dict(zip(sens.names, sens.sizes, strict=True))
    share = Counter()
    for layer, name in chosen.items():
        share[name] += sizes[layer] / sens.sizes.sum()
    bits = {name: options[name][0] for name in by_name}
    used = [by_name[name] for name in share]
    row = {
        **allocation_identity(allocation),
        "element": ", ".join(f"{name} {share[name]:.0%}" for name in sorted(share, key=lambda k: -share[k])),
        "bits": max(int(weight_format(s).bits) for s in used),
        BITS_PER_ELEMENT.name: linearity.average_bits(sens, chosen, bits),
        "assignment": json.dumps(chosen),
        "predicted_fidelity": linearity.predict(
            sens, {layer: options[name][1][layer] for layer, name in chosen.items()}
        ),
    }
    return row, {by_name[name].model_dump_json(): float(v) for name, v in share.items()}
