"""The factory of studies/torch_mlp.yaml: a small MLP trained on scikit-learn's digits.

`build()` returns (model, batches, metric), what a `torch` workload's factory returns: an MLP
(64 -> 256 -> 128 -> 10) trained on 1437 of the 1797 8x8 digits (they ship with scikit-learn, so
nothing is downloaded; split by a fixed random permutation), the other 360 digits as three evaluation
batches, and the accuracy on them. Training is deterministic (fixed seeds, full-batch gradient descent
with momentum, 300 steps: about a second on a CPU). The study imports this module from its own
folder; each process that evaluates points trains the model once.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

TRAIN = 1437  # digits trained on (80%); the rest are held out
BATCH = 120
STEPS = 300
LR = 0.3  # gradient descent with momentum: written out, torch.optim's first use imports torch._dynamo
MOMENTUM = 0.9
SEED = 0


@functools.cache
def _trained() -> tuple[nn.Module, torch.Tensor, np.ndarray]:
    digits = load_digits()
    order = np.random.default_rng(SEED).permutation(len(digits.target))  # the file is sorted by writer
    x = torch.tensor(digits.data[order] / 16.0, dtype=torch.float32)  # pixel values 0..16 to 0..1
    labels = digits.target[order]
    y = torch.tensor(labels, dtype=torch.int64)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    velocity = [torch.zeros_like(p) for p in model.parameters()]
    for _ in range(STEPS):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[:TRAIN]), y[:TRAIN]).backward()
        with torch.no_grad():
            for p, v in zip(model.parameters(), velocity, strict=True):
                p.sub_(LR * v.mul_(MOMENTUM).add_(p.grad))
    return model.eval(), x[TRAIN:], labels[TRAIN:]


def build():
    """(model, evaluation batches, accuracy): the metric is the share of held-out digits classified right."""
    model, x, labels = _trained()

    def accuracy(outputs: np.ndarray) -> float:
        return float(np.mean(np.argmax(outputs, axis=1) == labels))

    return model, [x[i : i + BATCH] for i in range(0, len(x), BATCH)], accuracy
