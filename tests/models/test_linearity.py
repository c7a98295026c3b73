"""The linearity theorem on MiniLM: predicted and measured fidelity correlate over uniform and mixed
assignments, and the DP assignment is at least as good, measured, as the best uniform one at its budget."""

import numpy as np
import pytest

import lowbit
from lowbit.models.fidelity import mean_cosine, quantized_linear, sentences
from lowbit.models.linearity import (
    Sensitivities,
    allocate,
    average_bits,
    layer_errors,
    predict,
    relative_mse,
    sensitivities,
)

FORMATS = ["int8_per_channel", "mxfp8_e4m3", "mxfp6_e2m3", "nvfp4", "mxfp4", "int4_g128", "nf4"]


@pytest.fixture(scope="module")
def setup(minilm):
    m = minilm
    s = sentences()[::10]  # 24 sentences, one in ten
    sens = sensitivities(m, s)
    errs = {f: layer_errors(m, f) for f in FORMATS}
    bits = {f: lowbit.get_format(f).bits_per_element(384) for f in FORMATS}
    return m, s, m.embed(s), sens, errs, bits


def test_relative_mse_by_hand():
    w = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    q = lowbit.quantize(w, "int8", axis=1)  # integers stay, 0.5 rounds to even 0
    assert relative_mse(w, "int8") == pytest.approx(float(np.sum((q - w) ** 2) / np.sum(w * w)))
    assert relative_mse(w, "int8") == pytest.approx(0.25 / 14.25)


def test_prediction_correlates_with_measurement(setup):
    m, s, ref, sens, errs, _ = setup
    assert np.all(sens.alpha > 0) and len(sens.alpha) == 36
    assignments = [dict.fromkeys(m.linear_names, f) for f in FORMATS]
    rng = np.random.default_rng(0)
    assignments += [{n: str(rng.choice(FORMATS)) for n in m.linear_names} for _ in range(6)]
    predicted = [predict(sens, {n: errs[a[n]][n] for n in a}) for a in assignments]
    measured = [mean_cosine(ref, m.embed(s, linear=quantized_linear(a))) for a in assignments]
    r = np.corrcoef(predicted, measured)[0, 1]
    assert len(assignments) >= 10 and r > 0.9, r


@pytest.mark.parametrize("budget", [4.5, 5.0])
def test_dp_is_at_least_as_good_as_the_best_uniform(setup, budget):
    m, s, ref, sens, errs, bits = setup
    chosen = allocate(sens, {f: (bits[f], errs[f]) for f in FORMATS}, budget)
    assert average_bits(sens, chosen, bits) <= budget
    dp = mean_cosine(ref, m.embed(s, linear=quantized_linear(chosen)))
    uniform = [mean_cosine(ref, m.embed(s, linear=quantized_linear(f))) for f in FORMATS if bits[f] <= budget]
    assert dp >= max(uniform), (dp, max(uniform))


def test_allocate_by_hand():
    sens = Sensitivities(("a", "b"), np.array([1.0, 10.0]), np.array([100, 100]))
    options = {"lo": (2.0, {"a": 0.5, "b": 0.5}), "hi": (8.0, {"a": 0.01, "b": 0.01})}
    # 5 bits on average: one layer can take 8 bits; the sensitive one (b) should
    assert allocate(sens, options, 5.0) == {"a": "lo", "b": "hi"}
    assert allocate(sens, options, 8.0) == {"a": "hi", "b": "hi"}
    with pytest.raises(ValueError, match="below every option"):
        allocate(sens, options, 1.0)
