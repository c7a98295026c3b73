"""A study file's errors name the file, and the line and column where the problem is written."""

import pytest

from lowbit.cli import main
from lowbit.study import StudyError, load_study
from lowbit.study.yamlio import with_lines

HEAD = "schema_version: 1\nname: x\n"
WORKLOADS = "workloads:\n  - {kind: normal, shape: [1, 64]}\n"


def problems(path) -> list[str]:
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}: ")
    return err.value.problems


def write(folder, text: str, name: str = "study.yaml"):
    path = folder / name
    path.write_text(text)
    return path


def test_a_syntax_error_names_the_file_line_and_column(tmp_path, capsys):
    # line 4 opens a flow sequence that line 5 does not close: the parser stops on line 5
    path = write(tmp_path, HEAD + "formats:\n  - [e4m3, e5m2\n" + WORKLOADS)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lowbit: error: {path}: line 5, column ") and ": malformed YAML: " in err
    assert "while parsing a flow sequence, at line 4" in err and "<unicode string>" not in err


def test_a_bad_indent_names_its_line(tmp_path):
    # `name` at column 2 inside a mapping that started at column 1
    path = write(tmp_path, "schema_version: 1\n name: x\n")
    (problem,) = problems(path)
    assert problem.startswith("line 2, column ") and "malformed YAML" in problem


def test_schema_errors_keep_their_path_and_gain_the_line(tmp_path):
    text = HEAD + "formats:\n  - e4m3\n  - {format: mxfp4, block: -3}\n" + WORKLOADS + "colour: blue\n"
    found = problems(write(tmp_path, text))
    # formats[1] is written on line 5; `block: ` starts at column 21 (4 + len("{format: mxfp4, ") + 1)
    assert "formats[1].block: must be a positive integer, got -3 (line 5, column 21)" in found
    assert "colour: unknown key (line 8, column 1)" in found


def test_a_missing_key_is_placed_at_the_entry_that_lacks_it(tmp_path):
    text = HEAD + "formats:\n  - float8_e4m3fn\nworkloads:\n  - {shape: [1, 64]}\n"
    found = problems(write(tmp_path, text))
    # the workload's mapping starts at line 6, column 5; top-level keys that are missing have no line
    assert any(p.startswith("workloads[0]") and p.endswith("(line 6, column 5)") for p in found), found


def test_a_top_level_missing_key_has_no_line(tmp_path):
    found = problems(write(tmp_path, "name: x\nformats: [int8]\n" + WORKLOADS))
    assert "schema_version: required key is missing" in found


def test_an_error_under_a_merge_key_is_placed_at_the_nearest_written_key(tmp_path):
    # the merged `block` is written inside `<<`, not under `formats[0]`; the entry itself is on line 4
    text = HEAD + "formats:\n  - {<<: {block: -1}, format: mxfp4}\n" + WORKLOADS
    found = problems(write(tmp_path, text))
    assert any(p.startswith("formats[0].block: ") and p.endswith("(line 4, column 5)") for p in found), found


def test_duplicate_keys_keep_their_own_line_and_gain_nothing(tmp_path):
    found = problems(write(tmp_path, HEAD + "name: y\nformats: [int8]\n"))
    assert found[0] == "line 3: duplicate key 'name' (first at line 2)"


def test_the_file_is_named_as_given(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", HEAD + "formats: [nope8]\n" + WORKLOADS, "mine.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyError, match=r"^sub/mine\.yaml: formats\[0\]: .*'nope8'.* \(line 3, column 11\)$"):
        load_study("sub/mine.yaml")


def test_with_lines_leaves_problems_of_a_file_that_no_longer_parses(tmp_path):
    path = write(tmp_path, "a: [1\n")
    assert with_lines(path, ["formats[0]: x", "y"]) == ["formats[0]: x", "y"]
    assert with_lines(tmp_path / "gone.yaml", ["formats[0]: x"]) == ["formats[0]: x"]
