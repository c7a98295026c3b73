"""The detail view's range diagnostics: the code-histogram figure and the rows, called directly."""

import math

import numpy as np
import pytest

import lowbit
from lowbit.dashboard import designer, figures, views


def test_code_histogram_figure():
    counts = np.array([5, 5, 5, 5])
    fig = figures.code_histogram_figure(counts, np.array([0.0, 1.0, -2.0, -1.0]), 2.0, "int2")
    assert list(fig.data[0].y) == [5, 5, 5, 5] and list(fig.data[0].x) == [0, 1, 2, 3]
    assert list(fig.data[0].customdata) == [0.0, 1.0, -2.0, -1.0]
    assert fig.layout.title.text == "int2 codes: entropy 2 of 2 bits"


def test_diagnosis_rows():
    # float8_e4m3fn: 2^-11 flushes, 2^-9 is subnormal, 1000 saturates (to NaN), 1 is exact
    d = lowbit.diagnose(np.array([2.0**-11, 2.0**-9, 1000.0, 1.0]), "float8_e4m3fn")
    rows = {r["quantity"]: r["value"] for r in figures.diagnosis_rows(d)}
    assert rows["saturated"] == "25 %" and rows["flushed to zero"] == "25 %" and rows["subnormal"] == "25 %"
    assert rows["element code entropy"] == "2 bits" and rows["scale code entropy"] == "n/a"
    assert rows["QSNR"] == "-inf dB" and rows["left out (NaN/Inf)"] == "0 %"
    assert math.isnan(d.scale_entropy_bits)


def test_diagnostics_view_on_results(results):
    table = views.table_options(results)[0]
    df = views.load(results, table).table
    index = int(df.index[df.format == "mxfp4"][0])
    fig, rows = views.diagnostics_view(results, table, index)
    assert len(fig.data[0].y) == 16 and sum(fig.data[0].y) > 0  # float4_e2m1fn: 16 codes
    assert [r["quantity"] for r in rows][:3] == ["saturated", "flushed to zero", "subnormal"]
    assert views.diagnostics_view(results, table, [0]) == (views.go.Figure(), [])  # forged click data


def test_the_designer_takes_a_diagnostic_metric(results):
    table = views.table_options(results)[0]
    cands, msg = views.design_view(results, table, "normal", "saturated_fraction", "bits_per_element", "e2m1", 32,
                                   "e8m0", "ceil", [])  # fmt: skip
    # 'ceil' leaves every block's amax at most 4 times the scale, below FP4's 6: nothing saturates
    assert msg.startswith("Candidate") and cands[0]["y"] == 0.0
    cands, _ = views.design_view(results, table, "normal", "saturated_fraction", "bits_per_element", "e2m1", 32,
                                 "e8m0", "ocp_floor", [])  # fmt: skip
    assert 0 < cands[0]["y"] < 0.05  # ocp_floor: amax up to 8 times the scale, past FP4's threshold 7


def test_design_accuracy_takes_diagnostic_and_plain_metrics():
    # one MXFP4 block, amax 60: scale 8, threshold 7 * 8 = 56; 60, -58 and 56 (the tie) saturate
    x = np.zeros(32)
    x[:5] = [60, -58, 56, 52, 1]
    assert designer.design_accuracy("saturated_fraction", x, lowbit.get_format("mxfp4")) == 3 / 32
    # 1 / 8 rounds to 0: one flushed element
    assert designer.design_accuracy("flushed_fraction", x, "mxfp4") == 1 / 32
    # int8: 1.0, 2.0 exact, 0.4 -> 0: QSNR -10 log10(0.16 / 5.16)
    acc = designer.design_accuracy("qsnr_db", np.array([1.0, 2.0, 0.4]), "int8")
    assert acc == pytest.approx(-10 * math.log10(0.16 / 5.16))
    assert math.isnan(designer.design_accuracy("gemm_relative_error", x, "mxfp4"))


def test_diagnosis_rows_of_nothing_counted():
    # every element NaN: nothing counted, so no share and no QSNR
    rows = {r["quantity"]: r["value"] for r in figures.diagnosis_rows(lowbit.diagnose(np.full(4, np.nan), "int8"))}
    assert rows["saturated"] == "n/a" and rows["QSNR"] == "n/a" and rows["left out (NaN/Inf)"] == "100 %"
