import subprocess
import sys

import yaml

from lowbit.cli import format_table, main
from lowbit.formats import catalog


def test_catalog_table_lists_every_format_with_hand_checked_rows(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == set(catalog)
    # bits per element by hand: 4 + 8/32, 4 + 8/16, 4 + 32/64 (DESIGN.md section 3)
    assert rows["mxfp4"][5] == "4.25" and rows["nvfp4"][5] == "4.5" and rows["nf4"][5] == "4.5"
    assert rows["higgs_p2_n16"][5] == "2" and rows["int8_per_channel"][5] == "8+scale"  # 4-bit code per pair
    assert rows["float8_e4m3fn"][1:6] == ["8", "448", "0.015625", "0.00195312", "8"]
    assert rows["float4_e2m1fn"][1:6] == ["4", "6", "1", "0.5", "4"]
    assert rows["int4"][1:3] == ["4", "7"]


def test_run_prints_the_front(tmp_path, capsys):
    study = {"schema_version": 1, "name": "front", "formats": ["mxfp4", "int8_per_channel"], "metrics": ["qsnr_db"],
             "workloads": [{"kind": "normal", "shape": [1, 256], "name": "row"}]}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
    assert main(["run", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("Pareto front, QSNR (dB) against bits per element, on row:")
    # 4 + 8/32 and 8 + 32/256 bits; int8 is the more accurate, so both are on the front
    assert [line.split()[0] for line in lines[start + 1 :]] == ["4.250", "8.125"]
    assert [line.split()[2] for line in lines[start + 1 :]] == ["mxfp4", "int8_per_channel"]


def test_named_formats_and_bad_name():
    assert "e3m2" in format_table(["e3m2"])
    proc = subprocess.run([sys.executable, "-m", "lowbit.cli", "formats", "fp5"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown name 'fp5'" in proc.stderr


def test_cost_prints_the_estimate_and_its_breakdown(capsys):
    from lowbit.costmodel import estimate

    assert main(["cost", "mxfp4", "nvfp4", "--accumulator", "fp16", "--node", "16nm", "--lanes", "16"]) == 0
    out = capsys.readouterr().out
    e = estimate("mxfp4", "nvfp4", "fp16", lanes=16, node="16nm")
    assert out.splitlines()[0] == "mxfp4 x nvfp4, fp16 accumulator, 16 lanes, 16nm, partial sums 24 bits"
    assert f"area {e.area_um2:.1f} um^2" in out and f"energy {e.energy_pj_per_mac:.4f} pJ per MAC" in out
    for c in e.components:
        assert c.name in out
    assert "  mxfp4: 4.25 bits, SRAM" in out


def test_cost_bad_node(capsys):
    assert main(["cost", "mxfp4", "mxfp4", "--node", "5nm"]) == 2
    assert "node: unknown technology node '5nm'" in capsys.readouterr().err


def test_bench_runs_a_benchmark_script():
    done = subprocess.run(
        [sys.executable, "-m", "lowbit.cli", "bench", "matmul", "--extra", "--size", "64", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "## bench_matmul.py" and lines[1].startswith("M = N = K = 64")
    assert any(line.startswith("mxfp4 x mxfp4 | fp32 |") for line in lines)


def test_bench_unknown_name(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
