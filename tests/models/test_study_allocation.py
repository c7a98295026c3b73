"""A study's DP-allocated rows on MiniLM: the assignment, its bits, fidelity and cost checked against
direct computation (the models API, bits per weight by hand, the study's own uniform rows)."""

import json

import numpy as np
import pytest

from lowbit.models.fidelity import mean_cosine, quantized_linear, sentences
from lowbit.study import run_study, validate_study

# bits per weight of an (N, K) weight matrix, by hand: element bits plus scale bits over the block
BITS = {
    "nvfp4": lambda n, k: 4 + 8 / 16,  # E4M3 scale per 16
    "mxfp4": lambda n, k: 4 + 8 / 32,  # E8M0 scale per 32
    "int8_per_channel": lambda n, k: 8 + 32 / k,  # float32 scale per row
    "bitnet_b158": lambda n, k: 2 + 32 / (n * k),  # float32 scale per tensor
}
SENTENCES = 6


@pytest.fixture(scope="module")
def table(minilm, tmp_path_factory):
    study = validate_study(
        {
            "schema_version": 1,
            "name": "dp",
            "formats": [*BITS, {"format": "mxfp4", "hadamard": 32}],
            "workloads": [{"kind": "model", "sentences": SENTENCES}],
            "allocations": [
                {"budget": 3, "options": list(BITS)},
                {"budget": 5, "options": ["nvfp4", "int8_per_channel"], "name": "w5"},
                {"budget": 3, "options": ["nvfp4", "bitnet_b158"], "predictor": "measured", "calibration": 4},
            ],
            "metrics": ["fidelity", "retrieval_agreement"],
            "cost": {"node": "7nm"},
        }
    )
    return run_study(study, tmp_path_factory.mktemp("dp"), progress=False).table


def test_model_points_refuse_what_they_would_ignore(table):
    row = table[table.format == "mxfp4 hadamard=32"].iloc[0]
    assert row.status == "failed" and "model workloads take formats without 'hadamard'" in row.error
    assert (table[table.format != "mxfp4 hadamard=32"].status == "ok").all()


@pytest.mark.parametrize(
    ("name", "budget", "options"), [("dp_3b", 3, list(BITS)), ("w5", 5, ["nvfp4", "int8_per_channel"])]
)
def test_dp_row(minilm, table, name, budget, options):
    row = table[table.format == name].iloc[0]
    chosen = json.loads(row.assignment)
    assert list(chosen) == minilm.linear_names and set(chosen.values()) <= set(options)
    shapes = {n: minilm.weights[f"{n}.weight"].shape for n in chosen}
    sizes = {n: shapes[n][0] * shapes[n][1] for n in chosen}
    bits = sum(BITS[f](*shapes[n]) * sizes[n] for n, f in chosen.items()) / sum(sizes.values())
    assert row.bits_per_element == pytest.approx(bits) and bits <= budget
    s = sentences(SENTENCES)
    measured = mean_cosine(minilm.embed(s), minilm.embed(s, linear=quantized_linear(chosen)))
    assert row.fidelity == pytest.approx(measured, abs=1e-12)
    # DP maximises the prediction: no uniform option within the budget predicts better
    uniform = table[table.format.isin(options) & (table.bits_per_element <= budget)]
    assert len(uniform) and (row.predicted_fidelity >= uniform.predicted_fidelity - 1e-12).all()
    # cost: energies weighted by each format's share of the weights (so of the MACs), area the largest unit
    share = {f: sum(sizes[n] for n in chosen if chosen[n] == f) / sum(sizes.values()) for f in set(chosen.values())}
    by_format = table.set_index("format")
    energy = sum(v * by_format.loc[f, "energy_pj_per_mac"] for f, v in share.items())
    assert row.energy_pj_per_mac == pytest.approx(energy)
    assert row.area_um2 == pytest.approx(max(by_format.loc[f, "area_um2"] for f in share))


def test_uniform_rows_carry_the_prediction(table):
    ok = table[(table.status == "ok") & (table.family != "mixed")]
    assert np.isfinite(ok.predicted_fidelity).all() and (ok.predicted_fidelity <= 1).all()
    # int8 per channel barely moves the model: predicted and measured both close to 1
    int8 = ok[ok.format == "int8_per_channel"].iloc[0]
    assert int8.fidelity > 0.999 and int8.predicted_fidelity > 0.998


def test_measured_predictor_row(minilm, table):
    row = table[table.format == "dp_3b_measured"].iloc[0]
    chosen = json.loads(row.assignment)
    assert row.predictor == "measured" and set(chosen.values()) <= {"nvfp4", "bitnet_b158"}
    # 4 of the 6 sentences, evenly spaced: positions 0, 5/3, 10/3 and 5, rounded
    cal = [sentences(SENTENCES)[i] for i in (0, 2, 3, 5)]
    ref = minilm.embed(cal)

    def drop(layer, fmt):
        return 1 - mean_cosine(ref, minilm.embed(cal, linear=quantized_linear({layer: fmt})))

    drops = {(n, f): drop(n, f) for n in minilm.linear_names for f in ("nvfp4", "bitnet_b158")}
    assert row.predicted_fidelity == pytest.approx(1 - sum(drops[n, f] for n, f in chosen.items()), abs=1e-9)
    # the only uniform option within 3 bits is BitNet; the DP's predicted fidelity is at least its
    uniform = 1 - sum(drops[n, "bitnet_b158"] for n in minilm.linear_names)
    assert row.predicted_fidelity >= uniform - 1e-12
    assert row.bits_per_element <= 3 and "nvfp4" in chosen.values()
