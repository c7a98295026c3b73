"""The QAT experiment (lowbit.torch.qat.run_qat), reduced for CI: the 64-256-256-10 MLP on
scikit-learn's digits with fewer epochs and bit widths 1, 2 and 4 (a few seconds on one thread)."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")
model_selection = pytest.importorskip("sklearn.model_selection")

from lowbit.torch.qat import FLOAT_BITS, run_qat  # noqa: E402

REDUCED = {"bits": (1, 2, 4), "float_epochs": 20, "qat_epochs": 10}


@pytest.fixture(scope="module")
def digits():
    d = datasets.load_digits()
    return model_selection.train_test_split(d.data / 16.0, d.target, test_size=0.3, random_state=0, stratify=d.target)


@pytest.fixture(scope="module")
def rows(digits, one_torch_thread):
    x_train, x_test, y_train, y_test = digits
    return {row.bits: row for row in run_qat(x_train, y_train, x_test, y_test, **REDUCED)}


def test_rows_and_control(rows):
    assert sorted(rows) == [1.0, 2.0, 4.0, FLOAT_BITS]
    assert [rows[b].kind for b in (1.0, 2.0, 4.0, FLOAT_BITS)] == ["binary", "seq_2bit", "lsq_int4", "float"]
    assert rows[FLOAT_BITS].relmse_init == 0.0 and rows[FLOAT_BITS].ptq_accuracy == rows[FLOAT_BITS].float_accuracy
    assert all(len(r.layer_weight_change) == 3 for r in rows.values())


def test_float_model_learns_digits(rows):
    assert rows[1.0].float_accuracy > 0.95


def test_qat_recovers_accuracy(rows):
    float_acc = rows[4.0].float_accuracy
    # 4 bits: QAT ends within 1.5 points of float
    assert rows[4.0].qat_accuracy >= float_acc - 0.015
    # 1 bit: quantizing the float model costs accuracy, and QAT wins it back
    assert rows[1.0].ptq_accuracy < float_acc - 0.03
    assert rows[1.0].qat_accuracy > rows[1.0].ptq_accuracy + 0.03
    assert rows[1.0].qat_accuracy >= float_acc - 0.02


def test_fewer_bits_move_weights_further(rows):
    """ParetoQ's direction: the lower the bit width, the further QAT moves the weights from the float
    model; the control (same fine-tuning, no quantizer) moves them least."""
    change = {b: r.weight_change for b, r in rows.items()}
    assert change[1.0] > change[2.0] > change[4.0] > change[FLOAT_BITS] > 0
    assert change[1.0] > 2 * change[4.0]


def test_weight_error_falls_with_bits(rows):
    relmse = [rows[b].relmse_init for b in (1.0, 2.0, 4.0)]
    assert relmse[0] > relmse[1] > relmse[2] > 0
    # lowbit's lsq_int4 searches the step for the least squared error: no worse than LSQ's init step
    assert rows[4.0].baseline_format == "lsq_int4" and rows[4.0].relmse_baseline <= rows[4.0].relmse_init


def test_deterministic(digits, one_torch_thread):
    x_train, x_test, y_train, y_test = digits
    small = {"bits": (2,), "hidden": (32,), "float_epochs": 2, "qat_epochs": 2, "control": False}
    first = run_qat(x_train, y_train, x_test, y_test, seed=5, **small)
    assert first == run_qat(x_train, y_train, x_test, y_test, seed=5, **small)
    other = run_qat(x_train, y_train, x_test, y_test, seed=6, **small)
    assert dataclasses.astuple(first[0]) != dataclasses.astuple(other[0])


def test_bad_arguments(digits):
    x_train, x_test, y_train, y_test = digits
    with pytest.raises(ValueError, match="bits must be one of"):
        run_qat(x_train, y_train, x_test, y_test, bits=(1, 5))
    with pytest.raises(ValueError, match="qat_epochs must be a positive integer"):
        run_qat(x_train, y_train, x_test, y_test, qat_epochs=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        run_qat(x_train, y_train, x_test, y_test, optimizer="rmsprop", float_epochs=1, bits=())
    with pytest.raises(ValueError, match="y_train must hold one non-negative integer label per sample"):
        run_qat(x_train, y_train[:-1], x_test, y_test)
    with pytest.raises(ValueError, match="x_train has 64 features, x_test 63"):
        run_qat(x_train, y_train, np.asarray(x_test)[:, :63], y_test)
