"""Formats and emulated accumulators on a model's linear layers.

`quantize_model(model, rules)` swaps each `nn.Linear` whose name matches a rule for a `QuantLinear`
(in place); `unquantize_model` puts the original modules back; `summary` lists the formats and bits
per weight.

A `QuantLinear` quantizes its weight along the input axis (K), once, and again whenever the weight
changes (its version counter moves, as an optimizer step moves it). Its forward:
- without an accumulator: torch's float32 `F.linear` on the quantized weight and the quantized input
  (when the rule has an activation format, quantized along K);
- with an accumulator or a matrix engine: `lowbit.simulator.matmul(x, W^T, activation, weight,
  accumulator, chunk)` (or `engine=..., promote_every=...`), bit for bit, plus the bias, added in
  float64 and rounded once to x's dtype. Its backward is that of the float32 product of the
  quantized operands (straight-through).
Weights and inputs pass the rounding's gradient straight through.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from .. import simulator
from ..formats import Accumulator, get_accumulator, get_format
from ..simulator.engine_gemm import check_promote, parse_engine, resolve
from .autograd import fake_quantize
from .tensors import host_view, quantize


@dataclass(frozen=True)
class Rule:
    """What a matched layer computes in.

    weight:      the weights' format (None: float32 weights).
    activation:  the inputs' format (None: float32 inputs).
    accumulator: an emulated accumulator (any of `lowbit.simulator.matmul`'s: fp32, fp16, bf16,
                 int32, eXmY, exact ...); None multiplies in torch's float32. An emulated accumulator
                 needs both formats.
    chunk:       products summed exactly before each accumulation (matmul's chunk).
    engine:      a matrix engine, (arch, instruction) or 'arch:instruction' (`lowbit.simulator.engines()`),
                 in place of an accumulator: the product runs as that instruction over K.
    promote_every: with an engine, its partial results go into float32 every this many elements of K.
    """

    weight: object = None
    activation: object = None
    accumulator: str | Accumulator | None = None
    chunk: int | None = None
    engine: tuple[str, str] | str | None = None
    promote_every: int | None = None

    def __post_init__(self) -> None:
        for field in ("weight", "activation"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, get_format(value))
        if self.accumulator is not None:
            object.__setattr__(self, "accumulator", get_accumulator(self.accumulator))
            if self.weight is None or self.activation is None:
                raise ValueError(
                    f"Rule: accumulator {self.accumulator.label!r} emulates a product of two formats; "
                    "give both weight and activation formats"
                )
        self._check_engine()
        if self.chunk is not None and (self.accumulator is None or isinstance(self.chunk, bool)
                                       or not isinstance(self.chunk, int) or self.chunk < 1):  # fmt: skip
            raise ValueError(f"Rule: chunk must be a positive integer with an accumulator, got {self.chunk!r}")

    def _check_engine(self) -> None:
        if self.engine is None:
            if self.promote_every is not None:
                raise ValueError("Rule: promote_every applies to a matrix engine; give engine too")
            return
        object.__setattr__(self, "engine", parse_engine(self.engine))
        if self.accumulator is not None or self.chunk is not None:
            raise ValueError("Rule: an engine sets the accumulation itself; give engine or accumulator, not both")
        if self.weight is None or self.activation is None:
            raise ValueError("Rule: an engine multiplies two formats; give both weight and activation formats")
        block = getattr(self.activation, "block", None)
        # the formats fill in a block-scaled name's block and scale type, as matmul does (ValueError if unknown)
        profile = resolve(self.engine, self.activation, self.weight, block or None)
        check_promote(self.promote_every, profile)

    @property
    def emulated(self) -> bool:
        """Whether products run through `lowbit.simulator.matmul` (an accumulator or an engine)."""
        return self.accumulator is not None or self.engine is not None

    def unit(self) -> dict:
        """matmul's arguments for the emulated product."""
        if self.engine is not None:
            return {"engine": self.engine, "promote_every": self.promote_every}
        return {"accumulator": self.accumulator, "chunk": self.chunk}


class _EmulatedLinear(torch.autograd.Function):
    """y = matmul(x, W^T) on the emulated accumulator; the gradient of x_q @ W_q^T."""

    @staticmethod
    def forward(ctx, x, weight, wq, operand, rule):
        x2 = host_view(x).reshape(-1, x.shape[-1])
        y = simulator.matmul(x2, operand, rule.activation, rule.weight, **rule.unit())
        # the backward's operands: quantized again only when a weight gradient needs them
        xq = quantize(x, rule.activation, axis=-1).to(x.dtype) if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(xq, wq)
        return torch.from_numpy(y).reshape(*x.shape[:-1], y.shape[1]).to(x.device)  # float64, as matmul gives

    @staticmethod
    def backward(ctx, g):
        xq, wq = ctx.saved_tensors
        gx = (g.to(wq.dtype) @ wq) if ctx.needs_input_grad[0] else None
        gw = None
        if xq is not None:
            gw = (g.to(xq.dtype).reshape(-1, g.shape[-1]).T @ xq.reshape(-1, xq.shape[-1])).to(wq.dtype)
        return gx, gw, None, None, None


class QuantLinear(nn.Linear):
    """An `nn.Linear` computing in a `Rule`'s formats (module docstring). It holds the original
    layer's own `weight` and `bias` Parameters under the same names, so training updates them and
    state_dict keys do not change; `unquantize_model` puts the original module back."""

    def __init__(self, linear: nn.Linear, rule: Rule):
        nn.Module.__init__(self)  # not nn.Linear's: the parameters are the original layer's
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.register_parameter("bias", linear.bias)
        self.rule = rule
        self.__dict__["original"] = linear  # kept out of the module tree (and of state_dict)
        self._cache: tuple | None = None  # (weight version key, quantized weight, matmul operand)

    def refresh(self) -> None:
        """Quantize the weight again at the next forward. Needed only after writing the weight in a
        way its version counter does not see (through `.data`); optimizers need no call."""
        self._cache = None

    def _quantized(self) -> tuple[torch.Tensor, object]:
        w = self.weight
        key = (w._version, w.data_ptr(), tuple(w.shape), w.device)
        if self._cache is None or self._cache[0] != key:
            with torch.inference_mode(False):  # a cache made under inference_mode must still train
                fmt = self.rule.weight
                wq = w.detach() if fmt is None else quantize(w, fmt, axis=-1).to(w.dtype)
                operand = simulator.operand(host_view(w).T, fmt) if self.rule.emulated else None
            self._cache = (key, wq, operand)
        return self._cache[1], self._cache[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wq, operand = self._quantized()
        w = self.weight
        if self.rule.emulated:
            y = _EmulatedLinear.apply(x, w, wq, operand, self.rule)
            # the bias added in float64, then one rounding to x's dtype (as lowbit's NumPy models do)
            return (y if self.bias is None else y + self.bias.double()).to(x.dtype)
        w_eff = w + (wq - w).detach()  # the cached values, with the straight-through gradient
        if self.rule.activation is not None:
            x = fake_quantize(x, self.rule.activation, axis=-1)
        return functional.linear(x, w_eff, self.bias)

    def extra_repr(self) -> str:
        r = self.rule
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}"]
        parts += [f"weight={_name(r.weight)}", f"activation={_name(r.activation)}"]
        if r.accumulator is not None:
            parts.append(f"accumulator={r.accumulator.label}" + (f", chunk={r.chunk}" if r.chunk else ""))
        if r.engine is not None:
            parts.append(
                f"engine={':'.join(r.engine)}" + (f", promote_every={r.promote_every}" if r.promote_every else "")
            )
        return ", ".join(parts)


def _name(fmt) -> str:
    return "float32" if fmt is None else (fmt.name or repr(fmt))


def _rule(value) -> Rule:
    return value if isinstance(value, Rule) else Rule(weight=value)


def _unsupported(module: nn.Module) -> bool:
    """A layer with a weight matrix that QuantLinear cannot stand in for."""
    if isinstance(module, nn.MultiheadAttention):  # its forward reads its projections' weights directly
        return True
    weight = getattr(module, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() >= 2 and not isinstance(module, nn.Linear)


def _matches(name: str, rules: Mapping[str, Rule]) -> Rule | None:
    return next((rule for pattern, rule in rules.items() if fnmatch.fnmatchcase(name, pattern)), None)


def quantize_model(model: nn.Module, rules: Mapping[str, object]) -> nn.Module:
    """Swap each `nn.Linear` whose name matches a rule for a `QuantLinear` (in place; returns model).

    rules: {module-name pattern (fnmatch, e.g. 'encoder.layer.*.output.dense', '*'): Rule or a
    weight format}, the first matching pattern winning. A pattern matching a layer of another kind
    with a weight matrix (Conv, Embedding, MultiheadAttention, transformers' Conv1D ...) raises
    TypeError naming the layer and its type; norms, activations and containers are passed over.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(rules, Mapping) or not rules:
        raise TypeError("rules must be a non-empty mapping {module-name pattern: Rule or format}")
    if isinstance(model, nn.Linear):
        raise TypeError("model: quantize_model swaps the layers inside a model; wrap a lone nn.Linear in a container")
    parsed = {str(p): _rule(v) for p, v in rules.items()}
    swaps = []
    for name, module in model.named_modules():
        rule = _matches(name, parsed) if name else None
        if rule is None or isinstance(module, QuantLinear):
            continue
        if _unsupported(module):
            raise TypeError(
                f"layer {name!r} is a {type(module).__name__}, which quantize_model does not support "
                "(only nn.Linear); narrow the rule's pattern"
            )
        if isinstance(module, nn.Linear):
            swaps.append((name, QuantLinear(module, rule)))
    for name, new in swaps:
        _set(model, name, new)
    return model


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def unquantize_model(model: nn.Module) -> nn.Module:
    """Put back the original `nn.Linear` of every `QuantLinear` (in place; returns model)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, QuantLinear):
            _set(model, name, module.original)
    return model


@dataclass(frozen=True)
class LayerSummary:
    """One linear layer in `summary`: its name, weight count, formats, accumulator, and stored bits per
    weight (scale bits included, spread over the elements that share them; bits)."""

    name: str
    weights: int
    weight_format: str
    activation_format: str
    accumulator: str
    bits_per_weight: float


def layer_summaries(model: nn.Module) -> list[LayerSummary]:
    """One row per linear layer, quantized or not (an unquantized one at its dtype's bits)."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, QuantLinear):
            w, r = module.weight, module.rule
            bits = r.weight.bits_per_element_in(tuple(w.shape), axis=1) if r.weight else 8.0 * w.element_size()
            acc = "float32 (torch)" if r.accumulator is None else r.accumulator.label
            if r.engine is not None:
                acc = " ".join(r.engine) + (f" (promote every {r.promote_every})" if r.promote_every else "")
            rows.append(LayerSummary(name, w.numel(), _name(r.weight), _name(r.activation), acc, float(bits)))
        elif isinstance(module, nn.Linear):
            w = module.weight
            dtype = str(w.dtype).removeprefix("torch.")
            rows.append(LayerSummary(name, w.numel(), dtype, dtype, "float32 (torch)", 8.0 * w.element_size()))
    return rows


def summary(model: nn.Module) -> str:
    """Print, and return, each linear layer's formats and bits per weight, and the model's average
    (weighted by weight count)."""
    rows = layer_summaries(model)
    head = f"{'layer':<40} {'weights':>10} {'weight format':<20} {'activations':<16} {'accumulator':<16} {'bits/w':>7}"
    lines = [head, "-" * len(head)]
    lines += [
        f"{r.name:<40} {r.weights:>10} {r.weight_format:<20} {r.activation_format:<16} {r.accumulator:<16} "
        f"{r.bits_per_weight:>7.3f}"
        for r in rows
    ]
    total = sum(r.weights for r in rows)
    average = sum(r.weights * r.bits_per_weight for r in rows) / total if total else float("nan")
    lines.append(f"{'average over ' + str(len(rows)) + ' linear layers':<40} {total:>10} {'':<54} {average:>7.3f}")
    text = "\n".join(lines)
    print(text)
    return text
