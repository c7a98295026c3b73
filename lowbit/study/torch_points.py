"""Points of a study on a torch workload: a format on every matched nn.Linear of a user's model, or a
per-layer mix chosen by dynamic programming under a bits-per-weight budget (the linearity theorem,
lowbit.models.linearity), in the same columns as the MiniLM workload's rows (model_points), plus
`task_metric` (the factory's metric on the quantized model's outputs) and `task_metric_float32`
(on the model's own).

torch and lowbit.torch are imported when a torch point first runs (lowbit.lazy.torch_adapter), never
when lowbit.study is imported. The factory's result, the reference outputs, the sensitivities and each
format's per-layer bits and errors are computed once per process and reused by every point on the same
workload. `base` is the study file's folder: the factory's module is imported with it first on
sys.path, in whichever process evaluates the point.
"""

from __future__ import annotations

import functools
import math
from types import ModuleType

import numpy as np

from ..lazy import torch_adapter
from ..models import linearity
from .model_points import allocation_columns, weight_format
from .schema import Allocation, FormatSpec, Predictor, TorchWorkload
from .store import BITS_PER_ELEMENT, WorkloadKind, metric_columns


def _study() -> ModuleType:
    """lowbit.torch.study (ImportError naming the `torch` extra when torch is missing)."""
    return torch_adapter().study


@functools.lru_cache(maxsize=2)
def evaluation(factory: str, base: str):
    """The factory's model (an evaluation-mode copy), batches and metric (lowbit.torch.study.build)."""
    return _study().build(factory, base)


@functools.lru_cache(maxsize=2)
def reference(factory: str, base: str) -> np.ndarray:
    """The float32 model's outputs over the batches, (n, features)."""
    ev = evaluation(factory, base)
    return _study().outputs(ev.model, ev.batches)


def _layers(w: TorchWorkload, base: str) -> dict:
    return _study().linear_layers(evaluation(w.factory, base).model, w.layers)


def layer_shape(w: TorchWorkload, base: str) -> tuple[int, int]:
    """The (out, in) weight shape of the first matched layer: what a row's spec columns are counted on
    (a per-channel block is its K) and the K of the cost model's per-channel scales."""
    return tuple(next(iter(_layers(w, base).values())).weight.shape)


@functools.lru_cache(maxsize=2)
def sensitivities(factory: str, layers: str, noise: tuple[float, ...], base: str) -> linearity.Sensitivities:
    """Each matched layer's sensitivity alpha_l (see lowbit.torch.study.sensitivities)."""
    ev = evaluation(factory, base)
    return _study().sensitivities(ev.model, ev.batches, layers, reference(factory, base), ts=noise)


def _sensitivities(w: TorchWorkload, base: str) -> linearity.Sensitivities:
    return sensitivities(w.factory, w.layers, tuple(w.noise), base)


def _uniform(w: TorchWorkload, base: str) -> linearity.Sensitivities:
    return _study().uniform_sensitivities(_layers(w, base))


@functools.lru_cache(maxsize=64)
def profile(factory: str, layers: str, base: str, spec_json: str) -> tuple[dict[str, float], dict[str, float]]:
    """({layer: bits per weight}, {layer: relative MSE}) of a format on every matched layer."""
    fmt = weight_format(FormatSpec.model_validate_json(spec_json))
    matched = _study().linear_layers(evaluation(factory, base).model, layers)
    return _study().layer_bits(matched, fmt), _study().layer_errors(matched, fmt)


def _profile(w: TorchWorkload, base: str, spec: FormatSpec) -> tuple[dict[str, float], dict[str, float]]:
    return profile(w.factory, w.layers, base, spec.model_dump_json())


def calibration(batches: tuple, count: int | None) -> tuple:
    """`count` of the batches, evenly spaced (all of them when None or more than there are)."""
    if count is None or count >= len(batches):
        return batches
    return tuple(batches[i] for i in np.linspace(0, len(batches) - 1, count).round().astype(int))


@functools.lru_cache(maxsize=64)
def drops(factory: str, layers: str, base: str, count: int | None, spec_json: str) -> dict[str, float]:
    """{layer: measured fidelity drop} of a format on each matched layer alone, on `count` batches."""
    fmt = weight_format(FormatSpec.model_validate_json(spec_json))
    ev = evaluation(factory, base)
    return _study().layer_drops(ev.model, calibration(ev.batches, count), layers, fmt)


def _rule(w: TorchWorkload, fmt):
    unit = {"accumulator": w.accumulator, "chunk": w.chunk}
    if w.engine is not None:
        unit = {"engine": w.engine, "promote_every": w.promote_every}
    return torch_adapter().Rule(weight=fmt, activation=w.activations, **unit)


def _outputs(w: TorchWorkload, base: str, rules: dict) -> np.ndarray:
    ev = evaluation(w.factory, base)
    return _study().outputs(_study().quantized(ev.model, rules), ev.batches)


def _metrics(metrics, w: TorchWorkload, base: str, out: np.ndarray) -> dict:
    """The study's metrics (the model ones measured, the tensor and GEMM ones NaN) and the factory's
    task metric on the quantized and on the float32 outputs (NaN without one)."""
    ref = reference(w.factory, base)
    metric = evaluation(w.factory, base).metric
    return {
        **metric_columns(metrics, WorkloadKind.MODEL, lambda m, _: m.compute(ref, out)),
        "task_metric": math.nan if metric is None else float(metric(out)),
        "task_metric_float32": math.nan if metric is None else float(metric(ref)),
    }


def uniform_row(spec: FormatSpec, w: TorchWorkload, base: str, metrics, predict: bool) -> dict:
    """Metrics of one format on every matched layer; with `predict`, the linearity theorem's prediction
    of fidelity from the weights' errors alone (activation formats are not part of it)."""
    fmt = weight_format(spec)
    out = _outputs(w, base, {w.layers: _rule(w, fmt)})
    bits, errors = _profile(w, base, spec)
    average = linearity.average_bits(_uniform(w, base), dict.fromkeys(bits, spec.name), {spec.name: bits})
    row = {"shape": f"{out.shape[0]} samples", BITS_PER_ELEMENT.name: average, **_metrics(metrics, w, base, out)}
    if predict:
        row["predicted_fidelity"] = linearity.predict(_sensitivities(w, base), errors)
        row["predictor"] = Predictor.THEOREM.value
    return row


def allocation_row(allocation: Allocation, specs: list[FormatSpec], w: TorchWorkload, base: str,
                   metrics) -> tuple[dict, dict]:  # fmt: skip
    """The DP assignment's row, and the share of the matched layers' weights (so of their MACs) in each
    format, {format spec JSON: share}, for the cost columns."""
    by_name = {s.name: s for s in specs}
    options = {name: _profile(w, base, spec) for name, spec in by_name.items()}
    if allocation.predictor is Predictor.MEASURED:
        sens = _uniform(w, base)
        options = {
            name: (bits, drops(w.factory, w.layers, base, allocation.calibration, by_name[name].model_dump_json()))
            for name, (bits, _) in options.items()
        }
    else:
        sens = _sensitivities(w, base)
    chosen = linearity.allocate(sens, options, allocation.budget)
    rules = {layer: _rule(w, weight_format(by_name[name])) for layer, name in chosen.items()}
    out = _outputs(w, base, _study().layer_rules(rules, w.layers))
    row, shares = allocation_columns(allocation, by_name, options, sens, chosen)
    return {**row, "shape": f"{out.shape[0]} samples", **_metrics(metrics, w, base, out)}, shares
