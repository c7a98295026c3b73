"""Factories for the torch-workload study tests (`factory: "tests.torch.factories:<name>"`).

`digits_mlp` is a small MLP (64 -> 128 -> 64 -> 10) trained on scikit-learn's digits (it ships with
the package) with a fixed seed, by full-batch gradient descent with momentum for 150 steps (under a
second on an idle CPU; written out rather than torch.optim, whose first use imports torch._dynamo,
seconds more in every worker process), and evaluated on the 597 held-out digits in three batches; its
metric is the accuracy. The trained model is built once per process and returned as is: the study must
not change it (a test checks).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

TRAIN = 1200  # digits trained on; the other 597 are the evaluation batches
BATCH = 200
STEPS = 150
LR = 0.3
MOMENTUM = 0.9


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


@functools.cache
def _trained() -> tuple[nn.Module, torch.Tensor, np.ndarray]:
    """The trained MLP, the held-out inputs (float32, pixel values / 16) and their labels."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    torch.manual_seed(0)
    model = _mlp()
    velocity = [torch.zeros_like(p) for p in model.parameters()]
    for _ in range(STEPS):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[:TRAIN]), y[:TRAIN]).backward()
        with torch.no_grad():
            for p, v in zip(model.parameters(), velocity, strict=True):
                p.sub_(LR * v.mul_(MOMENTUM).add_(p.grad))
    return model.eval(), x[TRAIN:], digits.target[TRAIN:]


def accuracy_of(labels: np.ndarray):
    """The metric: the share of rows whose largest output is the label."""

    def accuracy(outputs: np.ndarray) -> float:
        return float(np.mean(np.argmax(outputs, axis=1) == labels))

    return accuracy


def batches(x: torch.Tensor) -> list[torch.Tensor]:
    return [x[i : i + BATCH] for i in range(0, len(x), BATCH)]


def digits_mlp():
    """(model, batches, accuracy): the trained MLP on the held-out digits."""
    model, x, labels = _trained()
    return model, batches(x), accuracy_of(labels)


def digits_mlp_generator():
    """As digits_mlp, its batches a generator (read once) and no metric."""
    model, x, _ = _trained()
    return model, (b for b in batches(x)), None


class _Pair(nn.Module):
    """Two inputs, (x, scale): the MLP of scale * x."""

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.mlp(x * scale)
        return y, y.sum()  # the first item is the output


def digits_pair():
    """A model called as model(*batch) on (inputs, scale) tuples, returning a tuple."""
    model, x, labels = _trained()
    one = torch.ones(())
    return _Pair(model), [(b, one) for b in batches(x)], accuracy_of(labels)


class _WithConv(nn.Module):
    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 1)
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.conv(x[:, None, :])[:, 0, :])


def digits_with_conv():
    """The MLP behind a Conv1d: a layer pattern '*' matches a layer quantize_model refuses."""
    model, x, labels = _trained()
    return _WithConv(model), batches(x), accuracy_of(labels)


def broken():
    raise RuntimeError("this factory fails on purpose")


def not_a_triple():
    return _trained()[0]
