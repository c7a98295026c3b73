"""Every shipped study runs (on workloads cut to a few rows) with no failed point and the columns
the README's comparisons read; the derived numbers are checked on hand-made tables."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lowbit.study import load_study, run_study
from lowbit.study.reports import crossover, shannon_ratio

STUDIES = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))
EXPECTED = {
    "quickstart": ["qsnr_db", "mse", "area_um2", "energy_pj_per_mac", "bits_per_element"],
    "nf4_af4_bof4": ["mse", "mae", "block"],
    "afpq": ["mse", "asymmetric", "block"],
    "int_vs_fp": ["qsnr_db", "w_crest_factor", "block"],
    "mxfp4_vs_nvfp4": ["qsnr_db", "hadamard", "area_um2"],
    "paretoq_bits": ["mse", "bits_per_element"],
    "higgs_grids": ["mse", "bits_per_element"],
    "minilm_formats": ["fidelity", "retrieval_agreement", "bits_per_element", "area_um2"],
    "torch_mlp": ["fidelity", "retrieval_agreement", "task_metric", "bits_per_element", "area_um2"],
    "scale_rules": ["scale_code_mismatch", "scale_rule_qsnr_delta_db", "saturated_fraction", "flushed_fraction"],
    "engines": ["engine_area_um2_hopper_wgmma_m64n8k32_f32_e4m3_e4m3", "fraction_bits_cdna3_mfma_f32_16x16x32_fp8_fp8"],
}
NEEDS_TORCH = {"torch_mlp"}


def test_every_study_is_covered():
    assert {p.stem for p in STUDIES} == set(EXPECTED)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_runs(path, tmp_path):
    if path.stem in NEEDS_TORCH:
        pytest.importorskip("torch")  # tests/torch's conftest makes CI fail without torch
    study = load_study(path)
    r = run_study(study.reduced(8), tmp_path, progress=False, base=path.parent)
    assert r.failed == 0, r.table[r.table.status == "failed"][["format", "error"]].to_string()
    models = sum(w.kind in ("model", "torch") for w in study.workloads)
    assert len(r.table) == len(study.format_specs()) * len(study.workloads) + len(study.allocations) * models
    for col in ["format", "workload", *EXPECTED[path.stem]]:
        assert col in r.table.columns and r.table[col].notna().all(), col


def test_crossover_by_hand():
    df = pd.DataFrame(
        {
            "format": ["FP"] * 3 + ["INT"] * 3,
            "w_crest_factor": [1.0, 2.0, 3.0] * 2,
            "qsnr_db": [10.0, 11.0, 12.0, 12.0, 11.5, 10.0],
        }
    )
    # FP - INT: -2, -0.5, +2: the sign changes between 2 and 3, at 2 + 0.5 / 2.5 = 2.2
    assert crossover(df, "FP", "INT") == pytest.approx(2.2)
    assert np.isnan(crossover(df.assign(qsnr_db=[1.0, 1, 1, 2, 2, 2]), "FP", "INT"))


def test_shannon_ratio_by_hand():
    df = pd.DataFrame({"mse": [0.1175, 0.009497], "bits_per_element": [2.0, 4.0]})
    np.testing.assert_allclose(shannon_ratio(df), [0.1175 * 16, 0.009497 * 256])
