"""The results contract: a metric registered once is accepted by the schema, computed into the table
by the runner and offered by the dashboard; labels, directions and the Parquet provenance."""

import numpy as np
import pandas as pd
import pytest

import lowbit
from lowbit.dashboard import figures, views
from lowbit.study import StudyError, requantize, run_study, store, validate_study
from lowbit.study.store import Better, Metric, registered_metric


def peak_error_ratio(x: np.ndarray, q: np.ndarray) -> float:
    return float(np.max(np.abs(q - x)) / np.max(np.abs(x)))


PEAK = Metric("peak_error_ratio", "peak error / peak |x|", "", Better.LOWER, {"tensor"}, peak_error_ratio)


def peak_study() -> dict:
    return {
        "schema_version": 1,
        "name": "peak",
        "formats": ["int8"],
        "workloads": [
            {"kind": "npy", "path": "x.npy", "name": "x"},
            {"kind": "gemm", "a": {"kind": "normal", "shape": [2, 32]}, "b": {"kind": "normal", "shape": [2, 32]}},
        ],
        "metrics": ["mse", "peak_error_ratio", "gemm_relative_error"],
    }


def test_a_registered_metric_reaches_the_schema_the_table_and_the_dashboard(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.3, 1.0, -2.0, 4.0]], np.float32))
    with pytest.raises(StudyError, match=r"metrics\[1\]: unknown metric 'peak_error_ratio'"):
        validate_study(peak_study())
    out = tmp_path / "out"
    with registered_metric(PEAK):
        r = run_study(validate_study(peak_study()), out, progress=False, base=tmp_path)
        assert r.failed == 0
        x_row, gemm_row = pd.read_parquet(r.path).iloc[0], pd.read_parquet(r.path).iloc[1]
        # int8 rounds to integers: q = [0, 1, -2, 4]; |q - x| peaks at 0.3 (x's float32 0.3), |x| at 4
        assert x_row.peak_error_ratio == pytest.approx(0.3 / 4) and x_row.mse == pytest.approx(0.3**2 / 4)
        assert np.isnan(gemm_row.peak_error_ratio) and gemm_row.gemm_relative_error > 0
        assert np.isnan(x_row.gemm_relative_error)  # a GEMM metric on a tensor workload
        c = views.choices(out, "peak.parquet")
        assert c["metric"] == ["mse", "gemm_relative_error", "peak_error_ratio"]  # registry order
        assert {"label": "peak error / peak |x|", "value": "peak_error_ratio"} in views.dropdowns(c)[2]
        fig = figures.pareto_figure(r.table, "bits_per_element", "peak_error_ratio")
        assert fig.layout.yaxis.title.text == "peak error / peak |x|"
    assert "peak_error_ratio" not in [m.name for m in store.metrics()]
    with pytest.raises(StudyError, match="unknown metric 'peak_error_ratio'"):
        validate_study(peak_study())


def test_registering_refuses_taken_names_and_mixed_kinds():
    with pytest.raises(ValueError, match="'mse' is taken"):
        store.register_metric(Metric("mse", "MSE", "", "lower", {"tensor"}, peak_error_ratio))
    with pytest.raises(ValueError, match="'area_um2' is taken"):
        store.register_metric(Metric("area_um2", "area", "", "lower", {"tensor"}, peak_error_ratio))
    with pytest.raises(ValueError, match="'gemm' alone"):
        Metric("both", "both", "", "lower", {"gemm", "tensor"}, peak_error_ratio)
    with pytest.raises(ValueError, match="better must be one of 'higher', 'lower'"):
        Metric("sideways", "s", "", "sideways", {"tensor"}, peak_error_ratio)
    with pytest.raises(ValueError, match="built in"):
        store.unregister_metric("qsnr_db")


def test_labels_directions_and_axes():
    assert store.column_label("qsnr_db") == "QSNR (dB)" and store.column_label("bits_per_element") == "bits per element"
    assert store.column_label("gemm_relative_error_fp16") == "GEMM relative error (fp16 accumulator)"
    assert store.column_label("w_seed") == "w_seed"
    assert store.higher_is_better("qsnr_db") and store.higher_is_better("fidelity")
    assert not store.higher_is_better("mse") and not store.higher_is_better("gemm_relative_error_fp16")
    assert store.log_axis("mse") and store.log_axis("area_um2") and not store.log_axis("bits_per_element")
    names = [c.name for c in store.COST_COLUMNS]
    assert names == ["bits_per_element", "area_um2", "area_per_lane_um2", "energy_pj_per_mac",
                     "sram_pj_per_element", "dram_pj_per_element"]  # fmt: skip


def test_parquet_carries_its_provenance(tmp_path):
    df = pd.DataFrame({"format": ["a", "b"], "qsnr_db": [1.0, 2.0]})
    store.write_table(df, tmp_path / "t.parquet", "s", "ab" * 32)
    pd.testing.assert_frame_equal(store.read_table(tmp_path / "t.parquet"), df)
    meta = store.provenance(tmp_path / "t.parquet")
    assert meta["lowbit_version"] == lowbit.__version__ and meta["study"] == "s" and meta["study_hash"] == "ab" * 32
    assert meta["created"].endswith("Z") and list(tmp_path.iterdir()) == [tmp_path / "t.parquet"]  # no temp left


def test_requantize_replays_a_row(tmp_path):
    study = {"schema_version": 1, "name": "replay", "formats": [{"format": "mxfp4", "hadamard": 32}],
             "workloads": [{"kind": "normal", "shape": [4, 64], "seed": 3}], "metrics": ["mse"]}  # fmt: skip
    row = run_study(validate_study(study), tmp_path, progress=False).table.iloc[0]
    r = requantize(row, rows=None)
    np.testing.assert_array_equal(r.x, np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32))
    assert np.mean((r.q.astype(np.float64) - r.x) ** 2) == row.mse and r.spec.hadamard == 32
    assert requantize(row, rows=2).x.shape == (2, 64)
