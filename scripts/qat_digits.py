"""ParetoQ's central finding at small scale: QAT of a 64-256-256-10 MLP on scikit-learn's digits at
1, 1.58, 2, 3 and 4 bits (lowbit.torch.qat.run_qat), printed as markdown tables.

Needs torch and scikit-learn (the digits ship with scikit-learn; nothing is downloaded):
  python scripts/qat_digits.py                      # SGD and Adam, seeds 0, 1, 2 (about a minute)
  python scripts/qat_digits.py --optimizers sgd --seeds 0

Each table averages over the seeds: test accuracy of the float model, of the float model quantized
with the initial scales (PTQ) and after QAT; the relative weight change ||W_qat - W_float|| /
||W_float|| over all Linear weights (its range over the seeds, and its ratio to the float control,
fine-tuned the same way without quantization); the weight relative MSE of the quantized weights
with the initial and the learned scales, and of lowbit's fixed-scale format at that width.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lowbit.torch.qat import FLOAT_BITS, QatRow, run_qat

#: A fixed split: 30% of the 1797 digits for testing, stratified by class.
TEST_FRACTION, SPLIT_SEED = 0.3, 0


def _digits():
    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities 0..16 to [0, 1]
    return train_test_split(x, digits.target, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=digits.target)


def _label(bits: float) -> str:
    return "float (control)" if bits == FLOAT_BITS else f"{bits:g}"


def _table(runs: list[list[QatRow]]) -> str:
    """One markdown row per bit width, averaged over the runs (one run per seed)."""
    head = (
        "| bits | quantizer | float acc | PTQ acc | QAT acc | weight change | vs control | per layer | "
        "relMSE init scale | relMSE learned scale | fixed-scale format: relMSE |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    controls = [row.weight_change for run in runs for row in run if row.bits == FLOAT_BITS]
    for i, first in enumerate(runs[0]):
        rows = [run[i] for run in runs]

        def mean(field: str, rows=rows) -> float:
            return statistics.fmean(getattr(r, field) for r in rows)

        changes = [r.weight_change for r in rows]
        layers = [
            statistics.fmean(r.layer_weight_change[k] for r in rows) for k in range(len(first.layer_weight_change))
        ]
        ratio = statistics.fmean(c / k for c, k in zip(changes, controls, strict=True)) if controls else float("nan")
        is_float = first.bits == FLOAT_BITS
        relmse = "-" if is_float else None
        lines.append(
            f"| {_label(first.bits)} | {first.kind} | {mean('float_accuracy'):.3f} | "
            f"{'-' if is_float else format(mean('ptq_accuracy'), '.3f')} | {mean('qat_accuracy'):.3f} | "
            f"{statistics.fmean(changes):.3f} ({min(changes):.3f}-{max(changes):.3f}) | {ratio:.1f}x | "
            f"{' / '.join(f'{v:.3f}' for v in layers)} | "
            f"{relmse or format(mean('relmse_init'), '.3f')} | {relmse or format(mean('relmse_learned'), '.3f')} | "
            f"{relmse or first.baseline_format + ': ' + format(mean('relmse_baseline'), '.3f')} |"
        )
    return "\n".join(lines)


def _ternary_note(runs: list[list[QatRow]]) -> str:
    rows = [row for run in runs for row in run if row.kind == "seq_ternary"]
    if not rows:
        return ""

    def mean(field: str) -> float:
        return statistics.fmean(getattr(r, field) for r in rows)

    return (
        f"Ternary SEQ: learned alpha / max|w| = {mean('scale_ratio'):.3f} (mean over rows and seeds); "
        f"weight relMSE {mean('relmse_init'):.3f} with alpha = max|w| on the float weights, "
        f"{mean('relmse_learned'):.3f} with the learned alpha on the QAT weights, "
        f"{mean('relmse_baseline'):.3f} for BitNet's absmean ternary on the float weights."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizers", default="sgd,adam", help="comma-separated: sgd, adam")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    args = parser.parse_args()
    # The matrices are small (128 x 256 per step): a second thread only adds synchronisation, and
    # ran three times slower on a busy 2-core machine.
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test = _digits()
    seeds = [int(s) for s in args.seeds.split(",")]
    for optimizer in args.optimizers.split(","):
        # Adam moves every weight by about its learning rate per step, so it runs 50x smaller rates.
        rates = {"lr": 0.1, "qat_lr": 0.05} if optimizer == "sgd" else {"lr": 2e-3, "qat_lr": 1e-3}
        start = time.perf_counter()
        runs = [run_qat(x_train, y_train, x_test, y_test, optimizer=optimizer, seed=s, **rates) for s in seeds]
        took = time.perf_counter() - start
        peak = f"peak lr {rates['lr']:g} float, {rates['qat_lr']:g} QAT"
        print(f"\n### {optimizer} ({peak}; seeds {args.seeds}; {took:.0f} s)\n")
        print(_table(runs))
        print("\n" + _ternary_note(runs))


if __name__ == "__main__":
    main()
