"""The range diagnostics as study metrics: a tiny study in tmp_path, its columns checked against
lowbit.diagnose and lowbit.compare, and by hand on a constant workload."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

import lowbit
from lowbit.study import run_study, validate_study
from lowbit.study.store import get_metric
from lowbit.study.workloads import synthetic

DIAGNOSTICS = ["saturated_fraction", "flushed_fraction", "subnormal_fraction", "code_entropy_bits"]
DIAGNOSTICS += ["scale_entropy_bits"]
SCALE_RULE = ["scale_code_mismatch", "scale_rule_qsnr_delta_db"]


def _study(tmp_path, formats, workloads, metrics) -> pd.DataFrame:
    text = yaml.safe_dump({"schema_version": 1, "name": "diag", "formats": formats, "workloads": workloads,
                           "metrics": metrics, "output": {"dir": "out"}})  # fmt: skip
    path = tmp_path / "diag.yaml"
    path.write_text(text)
    r = run_study(validate_study(yaml.safe_load(path.read_text())), tmp_path, progress=False)
    df = pd.read_parquet(r.path)
    assert (df.status == "ok").all(), df.error.tolist()
    return df


def test_study_columns_equal_diagnose(tmp_path):
    workload = {"kind": "normal", "shape": [8, 256], "seed": 3}
    formats = [{"sweep": {"format": ["mxfp4"], "rule": ["ocp_floor", "ceil"]}}, "float8_e4m3fn", "int8_per_channel"]
    df = _study(tmp_path, formats, [workload], ["qsnr_db", *DIAGNOSTICS, *SCALE_RULE])
    x = synthetic(validate_study({"schema_version": 1, "name": "w", "formats": ["int8"],
                                  "workloads": [workload]}).workloads[0])  # fmt: skip
    mx = lowbit.get_format("mxfp4")
    specs = {"mxfp4 rule=ocp_floor": mx, "mxfp4 rule=ceil": replace(mx, rule="ceil"),
             "float8_e4m3fn": "float8_e4m3fn", "int8_per_channel": "int8_per_channel"}  # fmt: skip
    assert set(df.format) == set(specs)
    for name, fmt in specs.items():
        row = df[df.format == name].iloc[0]
        d = lowbit.diagnose(x, fmt)
        for column in DIAGNOSTICS:
            assert row[column] == pytest.approx(getattr(d, column), nan_ok=True), (name, column)
        assert row.qsnr_db == pytest.approx(d.qsnr_db)
    ceil = df[df.format == "mxfp4 rule=ceil"].iloc[0]
    c = lowbit.compare(x, mx, replace(mx, rule="ceil"))
    assert ceil.scale_code_mismatch == c.differing_fraction > 0.9  # N(0, 1) amaxes are almost never powers of 2
    assert ceil.scale_rule_qsnr_delta_db == pytest.approx(c.qsnr_delta_db) and c.qsnr_delta_db < 0
    floor = df[df.format == "mxfp4 rule=ocp_floor"].iloc[0]
    assert floor.scale_code_mismatch == 0 and floor.scale_rule_qsnr_delta_db == 0
    # no power-of-two rule: no sibling to compare with; no scale: no scale entropy
    e4m3 = df[df.format == "float8_e4m3fn"].iloc[0]
    assert np.isnan(e4m3.scale_code_mismatch) and np.isnan(e4m3.scale_entropy_bits)


def test_int8_flush_share_on_normal_data(tmp_path):
    """int8 (no scale) on N(0, 1) rounds |x| <= 0.5 to 0: a share known in closed form."""
    df = _study(tmp_path, ["int8"], [{"kind": "normal", "shape": [64, 1024], "seed": 1}], DIAGNOSTICS)
    row = df.iloc[0]
    # P(|x| <= 0.5) for N(0, 1) = erf(0.5 / sqrt(2)) = 0.38292..., within sampling error of 65536 draws
    assert row.flushed_fraction == pytest.approx(0.3829249, abs=0.006)
    assert row.saturated_fraction == pytest.approx(0.0, abs=1e-4)  # |x| >= 127.5: never
    assert row.subnormal_fraction == 0.0  # integers have none
    assert np.isnan(row.scale_entropy_bits)


def test_metrics_are_registered_for_tensors_only():
    for name in DIAGNOSTICS + SCALE_RULE:
        m = get_metric(name)
        assert m.diagnostic and {k.value for k in m.kinds} == {"tensor"}
    with pytest.raises(ValueError, match="unknown metric"):
        workloads = [{"kind": "normal", "shape": [2, 4]}]
        validate_study({"schema_version": 1, "name": "x", "formats": ["int8"], "workloads": workloads,
                        "metrics": ["saturated_fractions"]})  # fmt: skip


def test_diagnostics_use_the_points_sr_bits(tmp_path):
    """A stochastic point with sr_bits: its diagnostics are of the codes its quantizer gives."""
    workload = {"kind": "normal", "shape": [16, 128], "seed": 2}
    fmt = {"format": "int8_per_channel", "rounding": "stochastic", "seed": 5, "sr_bits": 1}
    df = _study(tmp_path, [fmt], [workload], ["qsnr_db", "flushed_fraction"])
    row = df.iloc[0]
    x = synthetic(validate_study({"schema_version": 1, "name": "w", "formats": ["int8"],
                                  "workloads": [workload]}).workloads[0])  # fmt: skip
    q = lowbit.quantize(x, "int8_per_channel", rounding="stochastic", seed=5, sr_bits=1).astype(np.float64)
    x64 = np.asarray(x, np.float64)
    assert row.qsnr_db == pytest.approx(-10 * np.log10(np.sum((q - x64) ** 2) / np.sum(x64**2)))
    # the share flushed, counted here from the quantizer's own output
    assert row.flushed_fraction == np.count_nonzero((q == 0) & (x64 != 0)) / x64.size
