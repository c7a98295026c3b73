"""Quantization-aware training of a small MLP at 1 to 4 bits: ParetoQ's central finding at small
scale (Liu et al. 2025, "ParetoQ: Scaling Laws in Extremely Low-bit LLM Quantization").

ParetoQ finds that during QAT at 3 and 4 bits the weights stay near their float values
("compensation"), while at 2 bits and below they move far from them ("reconstruction"). This module
measures the same on a classifier the caller supplies data for (scikit-learn's digits in
scripts/qat_digits.py; lowbit does not depend on scikit-learn):

1. train an MLP (in -> hidden... -> classes, ReLU) in float32;
2. per bit width, fine-tune a copy with every Linear weight fake-quantized through a
   `LearnedScale` (ParetoQ's binary and SEQ quantizers, LSQ at 3 and 4 bits; activations and biases
   float), the scales trained with the weights;
3. a control: the same fine-tuning without quantization, so that the weight change QAT causes can
   be told from the change that more training causes anyway.

Both trainings decay the learning rate to 0 on a cosine, so the float model ends at rest and the
control moves little. The optimizer matters to the measurement: SGD (the default) moves a weight in
proportion to its gradient, so weights move as far as the quantized loss pulls them; Adam moves
every weight by about the learning rate per step whatever its gradient's size, which gives every
bit width, and the control, a similar change.

Everything is seeded by `seed` through local torch.Generators (initial weights, batch order); the
global random state is left alone.
"""

from __future__ import annotations

import copy
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..formats import parse_enum
from .learned import LearnedScale, kind_for_bits
from .tensors import quantize

#: Bits of the control row: float32 fine-tuning with no quantizer.
FLOAT_BITS = 32.0
#: lowbit catalog formats with a fixed scale rule (no training) at each bit width, for the
#: relmse_baseline column: ParetoQ's init for 1 and 2 bits, BitNet's absmean ternary at 1.58 (the
#: README's ternary comparison), LSQ's grid with an MSE-searched step at 3 and 4.
BASELINE_FORMATS = {1.0: "paretoq_1bit", 1.58: "bitnet_b158", 2.0: "paretoq_2bit", 3.0: "lsq_int3", 4.0: "lsq_int4"}


class Optimizer(enum.Enum):
    """The optimizer of both trainings: SGD with momentum 0.9 (LSQ trains with it), or Adam
    (ParetoQ's reference training runs the transformers Trainer, whose default is AdamW)."""

    SGD = "sgd"
    ADAM = "adam"


@dataclass(frozen=True)
class QatRow:
    """One bit width of the experiment. Accuracies are fractions of the test set (0 to 1).

    bits: 1, 1.58, 2, 3, 4, or 32 for the float control (fine-tuned the same way, no quantizer).
    kind: the LearnedKind's value, or 'float'.
    ptq_accuracy: the float model quantized with the initial scales, before any fine-tuning.
    weight_change: ||W_after - W_float||_F / ||W_float||_F over all Linear weights together;
        layer_weight_change: the same per layer, input to output.
    relmse_init: sum ||Q(W) - W||^2 / sum ||W||^2 of the float weights with the initial scales.
    relmse_learned: the same for the fine-tuned weights with their learned scales.
    relmse_baseline: the float weights through lowbit's fixed-scale format `baseline_format`.
    scale_ratio: mean over rows of learned scale / initial scale.
    """

    bits: float
    kind: str
    float_accuracy: float
    ptq_accuracy: float
    qat_accuracy: float
    weight_change: float
    layer_weight_change: tuple[float, ...]
    relmse_init: float
    relmse_learned: float
    baseline_format: str
    relmse_baseline: float
    scale_ratio: float


@dataclass(frozen=True)
class _Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _as_data(x_train, y_train, x_test, y_test) -> _Data:
    xs = []
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty (samples, features) array, got shape {tuple(x.shape)}")
        xs.append(x)
    ys = []
    for name, y, x in (("y_train", y_train, xs[0]), ("y_test", y_test, xs[1])):
        y = np.asarray(y)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise ValueError(f"{name} must hold one non-negative integer label per sample ({x.shape[0]})")
        ys.append(torch.as_tensor(y, dtype=torch.long))
    if xs[0].shape[1] != xs[1].shape[1]:
        raise ValueError(f"x_train has {xs[0].shape[1]} features, x_test {xs[1].shape[1]}")
    return _Data(xs[0], ys[0], xs[1], ys[1])


def build_mlp(sizes: Sequence[int], generator: torch.Generator) -> nn.Sequential:
    """Linear layers of `sizes` (input, hidden..., classes) with ReLU between them, drawn from
    `generator`: weights normal with standard deviation 1/sqrt(fan_in) (LeCun's; bell-shaped like a
    language model's weights, where torch's default is uniform), biases uniform in +-1/sqrt(fan_in)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        bound = 1.0 / math.sqrt(n_in)
        with torch.no_grad():
            linear.weight.normal_(0.0, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _raw_weight(linear: nn.Linear) -> torch.Tensor:
    """The stored weight: the parametrization's original under QAT, else the weight."""
    if parametrize.is_parametrized(linear, "weight"):
        return linear.parametrizations.weight.original
    return linear.weight


def _optimizer(kind: Optimizer, params, lr: float) -> torch.optim.Optimizer:
    if kind is Optimizer.SGD:
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr)


def _train(model: nn.Module, data: _Data, *, epochs: int, lr: float, batch_size: int, optimizer: Optimizer,
           seed: int) -> None:  # fmt: skip
    """Cross-entropy over shuffled mini-batches (in place), the learning rate decayed from `lr` to 0
    on a cosine over all steps, so that training ends at rest; the batch order is seeded."""
    opt = _optimizer(optimizer, model.parameters(), lr)
    n = data.x_train.shape[0]
    steps = epochs * math.ceil(n / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps)))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose arg-max class is the label."""
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def attach_quantizers(model: nn.Module, bits: float) -> list[LearnedScale]:
    """Parametrize every Linear weight of `model` (in place) by a LearnedScale for `bits`, its scale
    initialised from the current weight; returns the quantizers, input to output."""
    kind = kind_for_bits(bits)
    quantizers = []
    for linear in _linears(model):
        quantizer = LearnedScale(kind, linear.weight.detach())
        parametrize.register_parametrization(linear, "weight", quantizer)
        quantizers.append(quantizer)
    return quantizers


def _relmse(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """sum ||q - w||^2 / sum ||w||^2 over (w, q) pairs, in float64."""
    err = sum(float(((q.double() - w.double()) ** 2).sum()) for w, q in pairs)
    power = sum(float((w.double() ** 2).sum()) for w, _ in pairs)
    return err / power


def _relative_change(before: Sequence[torch.Tensor], after: Sequence[torch.Tensor]) -> tuple[float, list[float]]:
    diffs = [float(torch.linalg.norm(a.double() - b.double())) for b, a in zip(before, after, strict=True)]
    norms = [float(torch.linalg.norm(b.double())) for b in before]
    overall = math.sqrt(sum(d * d for d in diffs)) / math.sqrt(sum(n * n for n in norms))
    return overall, [d / n for d, n in zip(diffs, norms, strict=True)]


def _baseline_relmse(bits: float, weights: Sequence[torch.Tensor]) -> tuple[str, float]:
    name = next(fmt for b, fmt in BASELINE_FORMATS.items() if abs(b - bits) < 0.01)
    return name, _relmse([(w, quantize(w, name, axis=-1)) for w in weights])


def _qat_row(float_model: nn.Module, data: _Data, bits: float, float_acc: float, schedule: dict) -> QatRow:
    float_weights = [w.detach().clone() for w in map(_raw_weight, _linears(float_model))]
    model = copy.deepcopy(float_model)
    quantizers = attach_quantizers(model, bits)
    init_scales = [q.scale.detach().clone() for q in quantizers]
    with torch.no_grad():
        relmse_init = _relmse([(w, q(w)) for w, q in zip(float_weights, quantizers, strict=True)])
    ptq_acc = accuracy(model, data.x_test, data.y_test)
    _train(model, data, **schedule)
    after = [_raw_weight(m).detach().clone() for m in _linears(model)]
    with torch.no_grad():
        relmse_learned = _relmse([(w, q(w)) for w, q in zip(after, quantizers, strict=True)])
    ratios = torch.cat([(q.scale.detach() / s).flatten() for q, s in zip(quantizers, init_scales, strict=True)])
    change, per_layer = _relative_change(float_weights, after)
    baseline, relmse_baseline = _baseline_relmse(bits, float_weights)
    return QatRow(
        bits=float(bits),
        kind=quantizers[0].kind.value,
        float_accuracy=float_acc,
        ptq_accuracy=ptq_acc,
        qat_accuracy=accuracy(model, data.x_test, data.y_test),
        weight_change=change,
        layer_weight_change=tuple(per_layer),
        relmse_init=relmse_init,
        relmse_learned=relmse_learned,
        baseline_format=baseline,
        relmse_baseline=relmse_baseline,
        scale_ratio=float(ratios.mean()),
    )


def _control_row(float_model: nn.Module, data: _Data, float_acc: float, schedule: dict) -> QatRow:
    before = [w.detach().clone() for w in map(_raw_weight, _linears(float_model))]
    model = copy.deepcopy(float_model)
    _train(model, data, **schedule)
    change, per_layer = _relative_change(before, [m.weight.detach() for m in _linears(model)])
    return QatRow(FLOAT_BITS, "float", float_acc, float_acc, accuracy(model, data.x_test, data.y_test), change,
                  tuple(per_layer), 0.0, 0.0, "float32", 0.0, 1.0)  # fmt: skip


def run_qat(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    bits: Sequence[float] = (1, 1.58, 2, 3, 4),
    hidden: Sequence[int] = (256, 256),
    float_epochs: int = 40,
    qat_epochs: int = 30,
    lr: float = 0.1,
    qat_lr: float = 0.05,
    batch_size: int = 128,
    optimizer: Optimizer | str = "sgd",
    control: bool = True,
    seed: int = 0,
) -> list[QatRow]:
    """Train an MLP in float32 on (x_train, y_train), then fine-tune a copy per entry of `bits` with
    ParetoQ's quantizers on every Linear weight; one QatRow per bit width (module docstring), and a
    last row for the float control (bits 32) when `control`.

    x_train, x_test: (samples, features) float arrays (already scaled; digits: pixels / 16).
    y_train, y_test: integer class labels.
    hidden: hidden layer widths. float_epochs, lr: the float training; qat_epochs, qat_lr: each
    fine-tuning and the control (peak learning rates, decayed to 0 on a cosine). batch_size:
    samples per step. optimizer: 'sgd' (momentum 0.9) or 'adam', for both trainings.
    seed: initial weights and batch order; the same seed gives the same rows.
    Speed: the defaults take about 7 s on one CPU thread; the matrices are small, and callers may
    set torch.set_num_threads(1), which was three times faster than two threads on a busy machine.
    """
    data = _as_data(x_train, y_train, x_test, y_test)
    for name, value in (("float_epochs", float_epochs), ("qat_epochs", qat_epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for b in bits:
        kind_for_bits(b)  # bad bits fail before any training
    sizes = [data.n_features, *hidden, data.n_classes]
    optimizer = parse_enum(Optimizer, optimizer, "optimizer")
    model = build_mlp(sizes, torch.Generator().manual_seed(seed))
    _train(model, data, epochs=float_epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, seed=seed)
    float_acc = accuracy(model, data.x_test, data.y_test)
    schedule = {"epochs": qat_epochs, "lr": qat_lr, "batch_size": batch_size, "optimizer": optimizer, "seed": seed + 1}
    rows = [_qat_row(model, data, b, float_acc, schedule) for b in bits]
    if control:
        rows.append(_control_row(model, data, float_acc, schedule))
    return rows
