"""What a study needs from a user's torch model (a `torch` workload of `lowbit.study`).

A factory, named `"package.module:function"`, returns `(model, batches, metric)`:
- model:   an `nn.Module`;
- batches: an iterable of inputs, each a tensor (`model(x)`) or a tuple of tensors (`model(*x)`);
- metric:  a callable(outputs: np.ndarray) -> float (say, accuracy against labels it holds), or None.

`build` runs the factory and keeps an evaluation-mode deep copy of its model, so that the factory's
own model (which it may cache) is never changed; every quantized model is a further deep copy.
`outputs` concatenates the model's outputs over the batches along dim 0, flattened to (n, features)
float32. Per matched `nn.Linear` layer, `sensitivities` measures the linearity theorem's alpha_l by
noise injection, as `lowbit.models.linearity.sensitivities` does on the NumPy MiniLM, and
`layer_bits` / `layer_errors` give bits per weight and the relative weight MSE with that module's
formulas: the allocator of `linearity.allocate` then runs on torch models unchanged.

A factory is user code, and it runs by design: `load_factory` imports its module (the study file's
folder first on sys.path) and `build` calls it, in every process that evaluates a point, just as a
study's metric registered in Python would run. Only load studies you trust.
"""

from __future__ import annotations

import copy
import fnmatch
import glob
import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..lazy import FACTORY_FORM
from ..models import linearity
from ..models.fidelity import mean_cosine
from .modules import Rule, quantize_model, unquantize_model

Metric = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Evaluation:
    """A factory's result: the model (an evaluation-mode copy), its batches and its metric."""

    model: nn.Module
    batches: tuple
    metric: Metric | None


def parse_factory(factory: str) -> tuple[str, str]:
    """'package.module:function' as (module, function); ValueError naming the string otherwise."""
    if not isinstance(factory, str) or not FACTORY_FORM.fullmatch(factory):
        raise ValueError(f"factory: must be 'package.module:function', got {factory!r}")
    module, _, function = factory.partition(":")
    return module, function


def _first_on_path(folder: Path) -> None:
    # Spawned workers and Dask workers start from their own sys.path: each process that loads a factory
    # puts the study's folder first, so that a factory module beside the study file imports everywhere.
    entry = str(folder.resolve())
    if sys.path[:1] != [entry]:
        while entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
        importlib.invalidate_caches()  # a module written after the folder's listing was cached


def load_factory(factory: str, folder: str | Path | None = None) -> Callable[[], tuple]:
    """The function a factory string names, its module imported with `folder` (the study file's) first
    on sys.path. A module already imported in this process is not imported again (from another folder
    either). ImportError or ValueError naming the factory."""
    module_name, function = parse_factory(factory)
    if folder is not None:
        _first_on_path(Path(folder))
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        where = f" (searched first: {folder})" if folder is not None else ""
        raise ImportError(f"factory {factory!r}: cannot import module {module_name!r}{where}: {err}") from err
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ValueError(f"factory {factory!r}: module {module_name!r} has no function {function!r}")
    return fn


def _batches(batches: object, factory: str) -> tuple:
    if isinstance(batches, torch.Tensor):  # iterating it would make each row a batch
        raise TypeError(f"factory {factory!r}: batches must be an iterable of inputs; wrap one tensor as [x]")
    if not isinstance(batches, Iterable):
        raise TypeError(f"factory {factory!r}: batches must be an iterable of inputs, got {type(batches).__name__}")
    out = tuple(tuple(b) if isinstance(b, list) else b for b in batches)  # a generator is read once, here
    if not out:
        raise ValueError(f"factory {factory!r}: batches is empty")
    for i, b in enumerate(out):
        if not isinstance(b, (torch.Tensor, tuple)):
            raise TypeError(f"factory {factory!r}: batch {i} is a {type(b).__name__}; give a tensor or a tuple")
    return out


def build(factory: str, folder: str | Path | None = None) -> Evaluation:
    """Run a factory (see the module docstring) and check what it returns."""
    result = load_factory(factory, folder)()
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(f"factory {factory!r}: must return (model, batches, metric), got {type(result).__name__}")
    model, batches, metric = result
    if not isinstance(model, nn.Module):
        raise TypeError(f"factory {factory!r}: model must be a torch.nn.Module, got {type(model).__name__}")
    if metric is not None and not callable(metric):
        raise TypeError(f"factory {factory!r}: metric must be a callable(outputs) -> float or None")
    return Evaluation(copy.deepcopy(model).eval(), _batches(batches, factory), metric)


def _tensor_of(out: object) -> torch.Tensor:
    """A forward's output tensor: the tensor, or the first item of a tuple, list or mapping (as
    transformers' ModelOutput: its first field)."""
    if isinstance(out, Mapping):
        out = next(iter(out.values()), None)
    elif isinstance(out, (tuple, list)):
        out = out[0] if out else None
    if not isinstance(out, torch.Tensor) or out.dim() == 0:
        raise TypeError("model outputs: each batch must give a tensor with a batch axis (or a tuple starting with one)")
    return out


def outputs(model: nn.Module, batches: Iterable) -> np.ndarray:
    """The model's outputs over the batches, under torch.no_grad(): concatenated along dim 0 and
    flattened to (n, features) float32 NumPy."""
    parts = []
    with torch.no_grad():
        for b in batches:
            y = _tensor_of(model(*b) if isinstance(b, tuple) else model(b))
            parts.append(y.detach().float().cpu().reshape(y.shape[0], -1).numpy())
    return np.concatenate(parts).astype(np.float32, copy=False)


def linear_layers(model: nn.Module, pattern: str) -> dict[str, nn.Linear]:
    """{name: layer} of the model's nn.Linear layers whose names match `pattern` (fnmatch), in
    model order; ValueError when none does."""
    linears = {name: m for name, m in model.named_modules() if name and isinstance(m, nn.Linear)}
    out = {name: m for name, m in linears.items() if fnmatch.fnmatchcase(name, pattern)}
    if not out:
        shown = ", ".join(list(linears)[:12]) + (", ..." if len(linears) > 12 else "") or "none"
        raise ValueError(f"layers: {pattern!r} matches no nn.Linear of the model (its linear layers: {shown})")
    return out


def weight_matrix(layer: nn.Linear) -> np.ndarray:
    """The layer's (out, in) weight as float32 NumPy on the host."""
    return np.ascontiguousarray(layer.weight.detach().float().cpu().numpy())


def layer_bits(layers: Mapping[str, nn.Linear], fmt) -> dict[str, float]:
    """Stored bits per weight of each layer's weight in `fmt`, scales included (linearity.bits_per_weight)."""
    return {n: linearity.bits_per_weight(fmt, tuple(m.weight.shape)) for n, m in layers.items()}


def layer_errors(layers: Mapping[str, nn.Linear], fmt) -> dict[str, float]:
    """||Q(W) - W||^2 / ||W||^2 of each layer's weight in `fmt`, along K (linearity.relative_mse)."""
    return {n: linearity.relative_mse(weight_matrix(m), fmt) for n, m in layers.items()}


def uniform_sensitivities(layers: Mapping[str, nn.Linear]) -> linearity.Sensitivities:
    """alpha_l = 1 per layer, with the layers' weight counts (for average bits and measured drops)."""
    sizes = np.array([m.weight.numel() for m in layers.values()])
    return linearity.Sensitivities(tuple(layers), np.ones(len(layers)), sizes)


def sensitivities(model: nn.Module, batches: Iterable, pattern: str, reference: np.ndarray,
                  ts=(0.05, 0.1), seed: int = 0) -> linearity.Sensitivities:  # fmt: skip
    """alpha_l of each matched layer (HIGGS' linearity theorem, Malinovskii et al. 2024): Gaussian noise
    of relative size t (t times the weight's rms, drawn from NumPy's default_rng(seed), as
    linearity.sensitivities draws it) on that layer alone, the drop of fidelity 1 - mean_cosine(reference,
    outputs) fitted against t^2 through the origin. One forward pass over the batches per layer and t;
    the model is not changed (the noise goes on a deep copy)."""
    batches = tuple(batches)
    noisy = copy.deepcopy(model)
    layers = linear_layers(noisy, pattern)
    ts = np.asarray(ts, float)
    alphas = []
    for layer in layers.values():
        w = layer.weight
        original = w.detach().clone()
        w64 = weight_matrix(layer).astype(np.float64)
        rms = np.sqrt(np.mean(w64 * w64))
        drops = []
        with torch.no_grad():
            for t in ts:
                noise = (t * rms * np.random.default_rng(seed).standard_normal(w.shape)).astype(np.float32)
                w.copy_(original + torch.from_numpy(noise).to(w.device, w.dtype))
                drops.append(1.0 - mean_cosine(reference, outputs(noisy, batches)))
            w.copy_(original)
        drops = np.array(drops)
        alphas.append(float(np.sum(drops * ts**2) / np.sum(ts**4)))
    return linearity.Sensitivities(tuple(layers), np.array(alphas), uniform_sensitivities(layers).sizes)


def layer_rules(assignment: Mapping[str, Rule], pattern: str) -> dict[str, Rule]:
    """quantize_model rules giving each named layer its own rule (names matched exactly), and `pattern`
    a rule that changes nothing: a pattern that matches a layer quantize_model cannot take then fails as
    it does with one rule for every layer."""
    return {**{glob.escape(name): rule for name, rule in assignment.items()}, pattern: Rule()}


def quantized(model: nn.Module, rules: Mapping[str, object]) -> nn.Module:
    """A deep copy of the model with quantize_model's rules applied (the model is not changed)."""
    return quantize_model(copy.deepcopy(model), rules)


def layer_drops(model: nn.Module, batches: Iterable, pattern: str, fmt) -> dict[str, float]:
    """The measured fidelity drop (1 - mean cosine to the model's own outputs) of `fmt` on each matched
    layer's weight alone, the others float32: one forward pass per layer (as linearity.layer_drops).
    The model is not changed (each layer is swapped and restored on a deep copy)."""
    batches = tuple(batches)
    reference = outputs(model, batches)
    work = copy.deepcopy(model)
    out = {}
    for name in linear_layers(work, pattern):
        quantize_model(work, {glob.escape(name): Rule(weight=fmt)})
        out[name] = 1.0 - mean_cosine(reference, outputs(work, batches))
        unquantize_model(work)
    return out
