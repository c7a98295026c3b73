import re
import shlex
import subprocess
import sys

import pytest
import yaml

from lowbit._version import __version__
from lowbit.cli import format_table, main
from lowbit.formats import catalog


def test_catalog_table_lists_every_format_with_hand_checked_rows(capsys):
    assert main(["formats", "--wide"]) == 0
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


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"lowbit {__version__}" and re.fullmatch(r"lowbit \d+\.\d+\.\d+", out)


def test_the_catalog_fits_100_columns_and_wide_has_the_rest(capsys):
    assert main(["formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[0].split() == ["name", "bits/elem", "max", "min", "normal", "semantics"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == set(catalog)
    # hand-checked: 4 + 8/32 bits; 1.75 * 2^8 and 2^-6 for OCP FP8 E4M3
    assert rows["mxfp4"].split()[1:3] == ["4.25", "6"]
    assert rows["float8_e4m3fn"].split()[1:4] == ["8", "448", "0.015625"]
    assert any(line.endswith("...") for line in lines)  # some semantics are cut to fit
    assert main(["formats", "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert "min subnormal" in wide[0] and max(len(line) for line in wide) > 100
    assert not any(line.endswith("...") for line in wide)


def test_a_long_name_still_fits(capsys):
    assert main(["formats", "e5m2", "binary8p3se"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 100


COMMANDS = ["formats", "cost", "bench", "run", "dashboard"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "\nexamples:\n" in out
    examples = [line.strip() for line in out.split("\nexamples:\n")[1].splitlines() if line.startswith("  lowbit ")]
    assert examples and all(e.startswith(f"lowbit {command or ''}".strip()) for e in examples if command)


def _examples(command: str, capsys) -> list[list[str]]:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out.split("\nexamples:\n")[1]
    # an example's words, up to the two spaces before its description
    return [shlex.split(re.split(r"\s{2,}", line.strip())[0])[1:] for line in text.splitlines() if "lowbit" in line]


@pytest.mark.parametrize("command", ["formats", "cost"])
def test_the_quick_examples_run(command, capsys):
    for argv in _examples(command, capsys):
        assert main(argv) == 0, argv
        assert capsys.readouterr().out.strip(), argv


def _tiny_study(tmp_path, points: int = 3):
    study = {"schema_version": 1, "name": "tiny", "formats": ["int8", "int4", "float8_e4m3fn"][:points],
             "metrics": ["qsnr_db"], "workloads": [{"kind": "normal", "shape": [1, 64], "name": "row"}]}  # fmt: skip
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
    return str(tmp_path / "s.yaml")


def test_run_progress_as_log_lines_and_as_a_bar(tmp_path, capsys):
    path = _tiny_study(tmp_path)
    assert main(["run", path, "-o", str(tmp_path / "log"), "--progress", "log"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == "tiny: 3 points to compute"
    # a line per tenth of 3 points is a line per point
    assert [line.split(",")[0] for line in lines[1:]] == [f"tiny: {i}/3 points ({p}%)" for i, p in
                                                          ((1, 33), (2, 67), (3, 100))]  # fmt: skip
    assert all(re.fullmatch(r".*, \d+\.\d s", line) for line in lines[1:])
    assert main(["run", path, "-o", str(tmp_path / "bar"), "--progress", "bar"]) == 0
    bar = capsys.readouterr().err
    assert "\r" in bar and "3/3" in bar


def test_run_no_progress_and_auto_off_a_terminal(tmp_path, capsys):
    path = _tiny_study(tmp_path, points=2)
    assert main(["run", path, "-o", str(tmp_path / "quiet"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "2 points (2 computed" in captured.out
    assert main(["run", path, "-o", str(tmp_path / "auto")]) == 0  # capsys' stderr is not a terminal: log lines
    err = capsys.readouterr().err
    assert err.startswith("tiny: 2 points to compute\n") and "\r" not in err


def test_run_progress_refuses_other_values(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "s.yaml", "--progress", "fancy"])
    assert done.value.code == 2
    assert "--progress: must be one of auto, bar, log, none, got 'fancy'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "s.yaml", "--progress", "log", "--no-progress"])
    assert "not allowed with argument" in capsys.readouterr().err
