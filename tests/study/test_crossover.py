"""The INT/FP crossover by Chen et al.'s method: crest factors, binning and per-bin QSNR by hand, the
crossover interpolation on a hand-made table, the closed form against the paper's published
crossovers, and the sign of INT - FP on small seeded runs of the 4-bit pairs."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowbit import IntFormat, get_format, quantize
from lowbit.study.crossover import (
    PAPER_PAIRS,
    _scale_max_to,
    binned_qsnr,
    crest_factor_crossover,
    crest_factors,
    find_crossover,
    model_qsnr_fp,
    model_qsnr_int,
)

ROOT = Path(__file__).parents[2]
# INT v.s. FP (Chen et al. 2025), crossovers of the theoretical QSNR model (the authors' released code)
PUBLISHED = yaml.safe_load((ROOT / "tests/data/published.yaml").read_text())["paper_tables"][
    "int_vs_fp_crossover_crest_factor"
]


def test_crest_factors_by_hand():
    blocks = np.array([[3.0, 0, 0, 0], [1.0, -1, 1, -1], [2.0, 1, 1, 0], [0.0, 0, 0, 0]])
    # [3,0,0,0]: rms sqrt(9/4) = 1.5, crest 2; all equal: 1; [2,1,1,0]: rms sqrt(6/4), crest 2/sqrt(1.5)
    got = crest_factors(blocks)
    assert got[:3] == pytest.approx([2.0, 1.0, 2.0 / math.sqrt(1.5)])
    assert np.isnan(got[3])


def test_binned_qsnr_by_hand():
    crest = np.array([1.1, 1.2, 2.5, 2.6, 3.5, 0.5])
    err_int = np.array([1.0, 3.0, 2.0, 2.0, 9.0, 9.0])
    err_fp = np.array([2.0, 2.0, 1.0, 1.0, 9.0, 9.0])
    signal = np.array([100.0, 300.0, 10.0, 30.0, 9.0, 9.0])
    t = binned_qsnr(crest, err_int, err_fp, signal, np.array([1.0, 2.0, 3.0, 4.0]), min_blocks=2)
    # [1, 2): INT 4/400 and FP 4/400 -> 20 dB each; [2, 3): INT 4/40 -> 10 dB, FP 2/40 -> 13.01 dB;
    # [3, 4) has one block (under min_blocks) and 0.5 lies below the first edge: both left out
    assert t["crest_lo"].tolist() == [1.0, 2.0]
    assert t["blocks"].tolist() == [2, 2]
    assert t["crest_factor"].tolist() == pytest.approx([1.15, 2.55])
    assert t["qsnr_int_db"].tolist() == pytest.approx([20.0, 10.0])
    assert t["qsnr_fp_db"].tolist() == pytest.approx([20.0, 10 * math.log10(20)])
    assert t["int_minus_fp_db"].tolist() == pytest.approx([0.0, -10 * math.log10(2)])


def test_binned_qsnr_of_quantized_blocks_by_hand():
    """Two blocks of 32 through lowbit's MXINT4 and MXFP4 with rounded-up E8M0 scales."""
    int4, fp4 = PAPER_PAIRS[2].formats()
    x = np.zeros((2, 32), np.float32)
    x[0, :2] = [7.0, 1.2]  # crest 7 / sqrt(50.44 / 32) = 5.576
    x[1, :] = 1.0
    x[1, 0] = 1.5  # crest 1.5 / sqrt(33.25 / 32) = 1.4715
    # block 0, INT: scale 2^ceil(log2(7 / 1.75)) = 4; 7 exact, 1.2 / 4 = 0.3 -> 0.25 -> 1.0: err 0.04
    #          FP:  scale 2^ceil(log2(7 / 6)) = 2; 3.5 ties to 4 (even) -> 8: err 1; 0.6 -> 0.5 -> 1.0: err 0.04
    # block 1, INT: scale 1; 1.5 -> 1.5 exact, 1.0 exact: err 0.  FP: scale 1; all exact: err 0.
    err = [np.sum((quantize(x, f).astype(np.float64) - x) ** 2, axis=-1) for f in (int4, fp4)]
    signal = np.sum(x.astype(np.float64) ** 2, axis=-1)
    t = binned_qsnr(crest_factors(x), *err, signal, np.array([1.0, 2.0, 6.0]), min_blocks=1)
    assert t["crest_factor"].tolist() == pytest.approx([1.5 / math.sqrt(33.25 / 32), 7 / math.sqrt(50.44 / 32)])
    assert t["qsnr_int_db"].iloc[0] == np.inf and t["qsnr_fp_db"].iloc[0] == np.inf
    assert t["qsnr_int_db"].iloc[1] == pytest.approx(-10 * math.log10(0.04 / 50.44), abs=1e-4)
    assert t["qsnr_fp_db"].iloc[1] == pytest.approx(-10 * math.log10(1.04 / 50.44), abs=1e-4)


def test_find_crossover_by_hand():
    # +2, +1, -1, -3: the sign changes between 2 and 3, at 2 + 1 / 2 = 2.5
    assert find_crossover([1, 2, 3, 4], [2, 1, -1, -3]) == pytest.approx(2.5)
    assert find_crossover([1, 2, 3], [1, 0, -1]) == pytest.approx(2.0)  # 0 counts as INT still level
    assert find_crossover([1, 2, 3, 4], [1, -1, 1, -1]) == pytest.approx(1.5)  # the first change
    assert np.isnan(find_crossover([1, 2, 3], [-1, -2, -3]))  # FP ahead throughout
    assert np.isnan(find_crossover([1, 2, 3], [3, 2, 1]))


def test_closed_form_by_hand():
    # INT: relative error (rho kappa)^2 / (12 * 4^(b-1)); b = 8, rho = kappa = 1: 10 log10(12 * 128^2)
    assert model_qsnr_int(1.0, 8, rho=1.0) == pytest.approx(10 * math.log10(12 * 128**2))
    assert model_qsnr_int(2.0, 4, rho=1.5, levels=7) == pytest.approx(10 * math.log10(12 * 49 / 9))
    assert model_qsnr_int(2.0, 4, rho=1.0, block=16) == pytest.approx(10 * math.log10(12 * 64 / 4 / (15 / 16)))
    # FP at a tiny crest factor: every value normal, relative error 2^(-2M) / 24
    e4m3 = get_format("float8_e4m3fn")
    assert model_qsnr_fp(1e-6, e4m3, rho=1.5) == pytest.approx(10 * math.log10(24 * 4**3), abs=1e-6)


@pytest.mark.parametrize("pair", PAPER_PAIRS, ids=lambda p: p.label)
def test_closed_form_gives_the_published_crossovers(pair):
    assert pair.model() == pytest.approx(PUBLISHED["rows"][pair.label], rel=2e-3)


@pytest.mark.parametrize("index", [2, 3], ids=["MX 4-bit", "NV 4-bit"])
def test_small_run_has_the_papers_signs_for_4_bit(index):
    int_fmt, fp_fmt = PAPER_PAIRS[index].formats()
    block = int_fmt.block
    low, high = (1.5, 1.75) if block == 32 else (1.4, 1.8)
    r = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=1 << 16, bins=[low, high, 2.8, 3.3], seed=5, min_blocks=100)
    rows = r.table.set_index("crest_lo")["int_minus_fp_db"]
    assert rows[low] > 0.3  # INT leads at low crest factors
    assert rows[2.8] < -1.0  # FP leads at high ones
    assert 1.7 < r.crossover < 2.8


def test_same_seed_same_table_and_bins_count():
    int_fmt, fp_fmt = PAPER_PAIRS[2].formats()
    a = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=4096, bins=10, seed=1, min_blocks=1)
    b = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=4096, bins=10, seed=1, min_blocks=1)
    c = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=4096, bins=10, seed=2, min_blocks=1)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(c.table)
    assert a.table["blocks"].sum() == 4096  # every block of 32 has a crest factor in [1, sqrt(32)]
    assert len(np.unique(np.round(a.table["crest_hi"] - a.table["crest_lo"], 12))) == 1


def test_scaled_max_reaches_the_top_crest_factors():
    x = np.array([[3.0, 1.0, 1.0, 1.0]])
    # target 1.5: m = 1.5 sqrt(3 / (4 - 2.25)); then max m over rms sqrt((m^2 + 3) / 4) is 1.5
    assert _scale_max_to(x.copy(), np.array([1.5]))[0, 0] == pytest.approx(1.5 * math.sqrt(3 / 1.75))
    assert crest_factors(_scale_max_to(x.copy(), np.array([1.5]))) == pytest.approx([1.5])
    int_fmt, fp_fmt = PAPER_PAIRS[0].formats()
    plain = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=4096, seed=0, min_blocks=20)
    spread = crest_factor_crossover(int_fmt, fp_fmt, n_blocks=4096, seed=0, min_blocks=20, generator="scaled_max")
    assert plain.table["crest_factor"].max() < 3.5 < 5.0 < spread.table["crest_factor"].max()
    assert (spread.table["int_minus_fp_db"] > 0).all()  # MXINT8 leads wherever 32 values can reach


def test_block_overrides_both_formats():
    int_fmt, fp_fmt = PAPER_PAIRS[2].formats()
    r = crest_factor_crossover(int_fmt, fp_fmt, block=16, n_blocks=2048, bins=6, min_blocks=1)
    # 6 bins of 0.5 over [1, sqrt(16)], holding every block
    assert r.block == 16 and set(r.table["crest_lo"]) <= {1.0, 1.5, 2.0, 2.5, 3.0, 3.5}
    assert r.table["blocks"].sum() == 2048


def test_mxint6_is_the_fp6_format_with_an_int6_element():
    int6, fp6 = PAPER_PAIRS[1].formats()
    assert int6.element == IntFormat(6, symmetric=True) and int6.block == fp6.block == 32
    assert int6.scale == fp6.scale and int6.rule == fp6.rule


def test_bad_input_names_the_argument():
    int_fmt, fp_fmt = PAPER_PAIRS[2].formats()
    with pytest.raises(ValueError, match="n_blocks"):
        crest_factor_crossover(int_fmt, fp_fmt, n_blocks=0)
    with pytest.raises(ValueError, match="generator"):
        crest_factor_crossover(int_fmt, fp_fmt, n_blocks=8, generator="cauchy")
    with pytest.raises(TypeError, match="int_format"):
        crest_factor_crossover("int8", fp_fmt, n_blocks=8)
    with pytest.raises(ValueError, match="block length"):
        crest_factor_crossover(int_fmt, "nvfp4", n_blocks=8)
    with pytest.raises(ValueError, match="bins"):
        crest_factor_crossover(int_fmt, fp_fmt, n_blocks=8, bins=[2.0, 1.0])
    with pytest.raises(ValueError, match="bins"):
        crest_factor_crossover(int_fmt, fp_fmt, n_blocks=8, bins=0)


def test_shipped_script_writes_its_tables(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("int_vs_fp_crest", ROOT / "studies/int_vs_fp_crest.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    summary = script.main(["--blocks", "8192", "--quiet", "-o", str(tmp_path)])
    assert len(summary) == 2 * (3 * 2 + 1)  # two generators; MX pairs under two scale rules
    assert {"crossover", "paper", "model", "diff_pct"} <= set(summary.columns)
    bins = pd.read_parquet(tmp_path / "int_vs_fp_crest.parquet")
    assert {"pair", "generator", "rule", "qsnr_int_db", "qsnr_fp_db"} <= set(bins.columns)
    assert (tmp_path / "int_vs_fp_crest_summary.parquet").is_file()
    assert "MX 4-bit" in capsys.readouterr().out
