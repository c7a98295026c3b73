"""Adversarial study files (issue I, rules 1-3): outputs stay in their folder, input is bounded, points
and workload files are counted and checked before anything runs.

Each case asserts the error type (StudyError, a ValueError) and a fragment of its message, naming the
key, the line or the workload path. Expected counts and byte sizes are worked out by hand in the case.
"""

from __future__ import annotations

import copy
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from lowbit.cli import main
from lowbit.study import StudyError, load_study, validate_study, yamlio
from lowbit.study.workloads import load

BASE = {
    "schema_version": 1,
    "name": "probe",
    "formats": ["mxfp4"],
    "workloads": [{"kind": "normal", "shape": [2, 32]}],
}


def study(**changes) -> dict:
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


def refused(data: dict, **options) -> str:
    with pytest.raises(StudyError) as err:
        validate_study(data, **options)
    return str(err.value)


def write(tmp_path: Path, text: str | bytes, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def refused_file(path: Path, **options) -> str:
    with pytest.raises(StudyError) as err:
        load_study(path, **options)
    return str(err.value)


@pytest.fixture(params=["libyaml", "python"])
def parser(request, monkeypatch):
    """Both YAML parsers the bounded loader runs on: libyaml's, and PyYAML's where libyaml is missing."""
    if request.param == "python":
        monkeypatch.setattr(yamlio, "LOADER", yamlio.PyLoader)
    elif yamlio.LOADER is yamlio.PyLoader:
        pytest.skip("libyaml is not installed")
    return request.param


def within(seconds: float, fn):
    """fn() run on a thread that must finish within `seconds` (a hang fails the test, not the suite)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the test
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return box


# ---- rule 1: outputs stay in their folder --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": "../evil"}, "name: must be a plain name, without '/' or '\\'"),
        ({"name": "../../../tmp/evil"}, "name: must be a plain name"),
        ({"name": "sub/table"}, "name: must be a plain name"),
        ({"name": "sub\\table"}, "name: must be a plain name"),
        ({"name": ".hidden"}, "name: must not start with '.'"),
        ({"name": ".."}, "name: must not start with '.'"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "   "}, "name: must not be empty"),
        ({"name": "x" * 101}, "name: must be at most 100 characters, got 101"),
        ({"name": "a\nb"}, "name: must not contain control characters"),
        ({"output": {"file": "/etc/passwd"}}, "output.file: must be a plain name"),
        ({"output": {"file": "../x.parquet"}}, "output.file: must be a plain name"),
        ({"output": {"file": ".lowbit-cache"}}, "output.file: must not start with '.'"),
        ({"output": {"file": ""}}, "output.file: must not be empty"),
        ({"output": {"dir": "/tmp/elsewhere"}}, "output.dir: must be a relative folder"),
        ({"output": {"dir": "C:\\results"}}, "output.dir: must be a relative folder"),
        ({"output": {"dir": "../up"}}, "output.dir: must not contain '..'"),
        ({"output": {"dir": "results/../../up"}}, "output.dir: must not contain '..'"),
        ({"output": {"dir": ""}}, "output.dir: must not be empty"),
    ],
)
def test_names_and_folders_that_leave_the_output_folder(changes, fragment):
    message = refused(study(**changes))
    assert fragment in message


def test_a_study_built_without_validation_cannot_aim_its_table_outside(tmp_path):
    forged = validate_study(study()).model_copy(update={"name": "../evil"})
    with pytest.raises(ValueError, match=r"output.file: must be a plain name.*got '../evil.parquet'"):
        forged.table_path(tmp_path / "out")
    assert validate_study(study()).table_path(tmp_path / "out") == tmp_path / "out" / "probe.parquet"


def test_cli_refuses_a_name_with_dot_dot_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, yaml.safe_dump(study(name="../evil")))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "name: must be a plain name" in capsys.readouterr().err
    assert not (tmp_path / "evil.parquet").exists() and not (tmp_path / "out").exists()


# ---- rule 2: study input is bounded --------------------------------------------------------------

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)  # 10^9 "lol"s once expanded, in 700 bytes


def test_alias_bomb_is_refused_within_two_seconds(tmp_path, parser):
    path = write(tmp_path, BOMB)
    box = within(2.0, lambda: load_study(path))
    assert isinstance(box.get("error"), StudyError)
    assert "an alias bomb" in str(box["error"]) and "200,000 nodes" in str(box["error"])


def test_alias_bomb_inside_a_study_key_is_refused_quickly(tmp_path, parser):
    text = "schema_version: 1\nname: bomb\n" + BOMB.replace("\n", "\n  ").replace("a: &a", "description:\n  a: &a", 1)
    box = within(2.0, lambda: load_study(write(tmp_path, text)))
    assert isinstance(box.get("error"), StudyError) and "alias bomb" in str(box["error"])


def test_aliases_of_a_long_string_are_bounded_by_characters(tmp_path, parser):
    # one 100,000-character scalar, referenced 100 times: 10^7 characters > 8 MiB = 8,388,608
    text = 'x: &x "' + "A" * 100_000 + '"\ny: [' + ",".join(["*x"] * 100) + "]\n"
    assert "8,388,608 characters" in refused_file(write(tmp_path, text))


def test_recursive_alias_is_refused(tmp_path, parser):
    message = refused_file(write(tmp_path, "schema_version: 1\nname: &n [*n]\n"))
    assert "line 2, column 7: an alias refers to a node that contains it" in message


def test_deep_block_nesting_is_refused_at_its_line(tmp_path, parser):
    text = "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(150)) + " " * 152 + "1\n"
    assert "line 100, column 100: nesting deeper than 100 levels" in refused_file(write(tmp_path, text))


def test_deep_flow_nesting_is_an_error_not_a_recursion_crash(tmp_path, parser):
    box = within(5.0, lambda: load_study(write(tmp_path, "a: " + "[" * 200_000 + "\n")))
    assert isinstance(box.get("error"), StudyError)
    assert "study.yaml: line 1, column" in str(box["error"]) and "nesting" in str(box["error"])


def test_oversize_file_is_refused_before_parsing(tmp_path):
    text = yaml.safe_dump(study()) + "#" * (1 << 20)  # a valid study, padded past 1 MiB with a comment
    assert "larger than 1,048,576 bytes (1 MiB), the cap on a study file" in refused_file(write(tmp_path, text))


def test_a_large_but_legal_file_still_loads(tmp_path):
    """What held: a valid study padded to just under the cap loads (the cap refuses size, not content)."""
    text = yaml.safe_dump(study())
    text += "#" * ((1 << 20) - len(text) - 1) + "\n"
    assert len(text.encode()) == 1 << 20
    assert load_study(write(tmp_path, text)).name == "probe"


def test_too_many_nodes_are_refused(tmp_path):
    text = "description: [" + ",".join(["1"] * 250_000) + "]\n"  # 250,001 nodes in 500 KB
    assert "line 1, column" in (message := refused_file(write(tmp_path, text)))
    assert "more than 200,000 YAML nodes" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("schema_version: 1\nname: a\nname: b\n", "line 3: duplicate key 'name' (first at line 2)"),
        (
            "schema_version: 1\nname: a\nformats: [{format: mxfp4, block: 16, block: 32}]\n",
            "line 3: duplicate key 'block' (first at line 3)",
        ),  # fmt: skip
        (
            "schema_version: 1\nname: a\nworkloads:\n  - kind: normal\n    seed: 1\n    seed: 2\n",
            "line 6: duplicate key 'seed' (first at line 5)",
        ),  # fmt: skip
    ],
)
def test_duplicate_keys_are_errors_naming_key_and_line(tmp_path, parser, text, fragment):
    assert fragment in refused_file(write(tmp_path, text))


def test_duplicate_key_and_schema_errors_come_in_one_report(tmp_path, parser):
    text = "schema_version: 1\nname: a\nname: b\nformats: [mxfp5]\nworkloads: [{kind: normal}]\nworkers: 0\n"
    message = refused_file(write(tmp_path, text))
    assert "line 3: duplicate key 'name'" in message
    assert "formats[0]: format: unknown name 'mxfp5'; did you mean 'mxfp4'" in message
    assert "workers: Input should be greater than or equal to 1" in message


def test_merge_keys_may_override_without_being_duplicates(tmp_path, parser):
    """What held: YAML merge keys (`<<`) may set a key that the mapping then overrides."""
    text = yaml.safe_dump(study()) + "cost: {<<: {node: 7nm, lanes: 8}, lanes: 16}\n"
    assert load_study(write(tmp_path, text)).cost.lanes == 16


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"schema_version: 1\nname: \x00\x01\x02\n", "line 2: a NUL byte: a binary file, not YAML text"),
        ("schema_version: 1\nname: ok\n".encode("utf-16"), "line 1: a NUL byte: a binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 3: a NUL byte"),  # PNG's signature: two newlines
        ("schema_version: 1\nname: café\n".encode("latin-1"), "line 2, column 10: not UTF-8 text (byte 0xe9)"),
        (b"schema_version: 1\nname: ok\ndescription: \xff\xfe\n", "line 3, column 14: not UTF-8 text (byte 0xff)"),
    ],
)
def test_binary_and_non_utf8_files_name_the_file_and_line(tmp_path, raw, fragment):
    path = write(tmp_path, raw)
    message = refused_file(path)
    assert message.startswith(f"{path}: ") and fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "schema_version: 1\nname: x\nformats: [mxfp4\nworkloads: []\n",
            "line 4, column 10: malformed YAML: ",  # libyaml: "did not find expected ',' or ']'"
        ),  # fmt: skip
        ("schema_version: 1\nname: x\n\tformats: [mxfp4]\n", "line 3, column 1: malformed YAML: found "),
        ("schema_version: 1\nname: x\n---\nname: y\n", "line 3, column 1: malformed YAML: but found another document"),
        ("schema_version: 1\nname: x\ndescription: \x07\n", "line 3: malformed YAML: character '\\x07' is not allowed"),
        (
            "schema_version: 1\nname: !!python/object/apply:os.system [echo]\n",
            "line 2, column 7: malformed YAML: could not determine a constructor",
        ),  # fmt: skip
        ("schema_version: 1\nname: *nowhere\n", "line 2, column 7: malformed YAML: found undefined alias"),
    ],
)
def test_yaml_syntax_errors_name_the_file_and_line(tmp_path, parser, text, fragment):
    path = write(tmp_path, text)
    message = refused_file(path)
    assert message.startswith(f"{path}: line ") and fragment in message


def test_errors_do_not_echo_an_unbounded_value():
    message = refused(study(formats=["x" * 100_000, {"format": "mxfp4", "element": "y" * 100_000}]))
    assert "formats[0]: no name lowbit knows is this long (over 80 characters), got 'xxxxxxxx" in message
    assert "formats[1].element: no name lowbit knows is this long" in message
    assert message.count("…") == 2 and len(message) < 400


def test_errors_do_not_echo_an_unbounded_key():
    message = refused(study(**{"k" * 100_000: 1}))
    assert ": unknown key" in message and "…" in message and len(message) < 300


def test_errors_do_not_echo_an_unbounded_schema_version():
    message = refused(study(schema_version="9" * 100_000))
    assert "schema_version: this lowbit reads version 1, got '999" in message and len(message) < 300


def test_a_report_of_many_problems_is_bounded():
    message = refused(study(formats=[f"bogus{i}" for i in range(500)]))
    assert "formats[49]: format: unknown name 'bogus49'" in message and "formats[50]" not in message
    assert message.endswith("... and 450 more problems")


def test_structure_and_format_spec_errors_come_in_one_report():
    # before: a format spec that makes no format was only checked once the structure validated
    message = refused(study(formats=["mxfp4", {"format": "nf4", "rule": "ceil"}], workers=0))
    assert "workers: Input should be greater than or equal to 1" in message
    assert "formats[1]: rule 'ceil'" in message


def test_structure_name_and_sweep_errors_come_in_one_report():
    message = refused(study(name="../x", executor="spark", formats=[{"sweep": {"format": ["nf4"], "rule": ["ceil"]}}]))
    assert "name: must be a plain name" in message and "executor: Input should be 'local' or 'dask'" in message
    assert "formats[0] (nf4 rule=ceil): rule 'ceil'" in message


# ---- rule 3: points counted and checked before running -------------------------------------------


def many_workloads(n: int) -> list[dict]:
    return [{"kind": "normal", "shape": [2, 32], "seed": i} for i in range(n)]


def test_a_sweep_over_the_threshold_needs_consent():
    # 2 formats x 5,001 workloads = 10,002 points > 10,000
    message = refused(study(formats=["mxfp4", "nvfp4"], workloads=many_workloads(5001)))
    assert "formats: the study has 10,002 points (5,001 workloads x 2 formats)" in message
    assert "add `allow_large: true` to the study, or pass `lowbit run --allow-large`" in message


def test_a_sweep_at_the_threshold_needs_none():
    """What held: 2 formats x 5,000 workloads = 10,000 points run without consent."""
    assert len(validate_study(study(formats=["mxfp4", "nvfp4"], workloads=many_workloads(5000))).workloads) == 5000


def test_consent_by_study_key():
    data = study(formats=["mxfp4", "nvfp4"], workloads=many_workloads(5001), allow_large=True)
    assert validate_study(data).allow_large is True


def test_consent_by_argument():
    data = study(formats=["mxfp4", "nvfp4"], workloads=many_workloads(5001))
    assert len(validate_study(data, allow_large=True).format_specs()) == 2


def test_a_sweep_is_counted_without_expanding_it():
    # 2 x 1,000 x 1,000 x 1,000 x 1,000 = 2 x 10^12 formats; expanding them would never end
    sweep = {"format": ["mxfp4", "nvfp4"], "seed": list(range(1000)), "hadamard_seed": list(range(1000)),
             "block": list(range(1, 1001)), "label": [str(i) for i in range(1000)]}  # fmt: skip
    box = within(2.0, lambda: validate_study(study(formats=[{"sweep": sweep}]), allow_large=True))
    assert isinstance(box.get("error"), StudyError)
    assert "2,000,000,000,000 points (1 workload x 2,000,000,000,000 formats), more than 1,000,000, the most" in str(
        box["error"]
    )


def test_allocation_rows_count_as_points():
    # 1 format x 10,000 model workloads + 1 allocation on each = 20,000 points
    data = study(workloads=[{"kind": "model", "sentences": 2}] * 10_000, allocations=[{"budget": 4}])
    assert "20,000 points (10,000 workloads x 1 formats, plus 10,000 allocation rows)" in refused(data)


def test_cli_flag_gives_consent(tmp_path, capsys):
    data = study(formats=["mxfp4", "nvfp4"], workloads=[*many_workloads(5000), {"kind": "npy", "path": "gone.npy"}])
    path = write(tmp_path, yaml.safe_dump(data))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "10,002 points" in err and "workloads[5000].path: 'gone.npy': cannot read" in err  # one report
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--allow-large"]) == 2  # the missing file stays
    err = capsys.readouterr().err
    assert "points" not in err and "workloads[5000].path: 'gone.npy': cannot read" in err


def npy_study(tmp_path: Path, name: str, **workload) -> Path:
    data = study(workloads=[{"kind": "normal"}, {"kind": "npy", "path": name, **workload}])
    return write(tmp_path, yaml.safe_dump(data))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


GOOD = npy_bytes(np.arange(8, dtype=np.float32).reshape(2, 4))  # header 128 bytes + 32 of data = 160


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "workloads[1].path: 'w.npy': cannot read the file at"),
        (b"", "workloads[1].path: 'w.npy': not a valid .npy file"),
        (b"just some text, not an array\n", "workloads[1].path: 'w.npy': not a valid .npy file"),
        (GOOD[:40], "workloads[1].path: 'w.npy': not a valid .npy file"),  # cut inside the header
        (GOOD[:150], "truncated: shape (2, 4) of float32 needs 160 bytes, the file has 150"),
        (GOOD[:6] + b"\x09" + GOOD[7:], "not a valid .npy file (version 9.0; NumPy writes 1.0, 2.0 and 3.0)"),
        (npy_bytes(np.array([{"a": 1}], dtype=object)), "holds Python objects (a pickled array)"),
        (npy_bytes(np.array(["abc", "de"])), "needs a numeric (float or integer) array, got dtype <U3"),
        (npy_bytes(np.array([True, False])), "needs a numeric (float or integer) array, got dtype bool"),
        (npy_bytes(np.zeros((0, 4), np.float32)), "holds an empty array (shape (0, 4))"),
        (npy_bytes(np.zeros(2, np.float32)).replace(b"(2,)", b"(9999999999,)"), "truncated: shape (9999999999,)"),
    ],
)
def test_npy_workload_files_are_checked_at_load(tmp_path, content, fragment):
    if content is not None:
        (tmp_path / "w.npy").write_bytes(content)
    assert fragment in refused_file(npy_study(tmp_path, "w.npy"))


def test_npy_path_that_is_a_folder(tmp_path):
    (tmp_path / "w.npy").mkdir()
    assert "workloads[1].path: 'w.npy': " in (message := refused_file(npy_study(tmp_path, "w.npy")))
    assert "is not a regular file" in message


def test_npy_path_that_is_a_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "w.npy")
    box = within(2.0, lambda: load_study(npy_study(tmp_path, "w.npy")))
    assert isinstance(box.get("error"), StudyError) and "is not a regular file" in str(box["error"])


def test_good_npy_files_load(tmp_path):
    """What held: sound .npy files (versions 1.0 and 2.0, float and integer) pass and load."""
    (tmp_path / "a.npy").write_bytes(GOOD)
    with open(tmp_path / "b.npy", "wb") as f:
        np.lib.format.write_array(f, np.arange(6, dtype=np.int8).reshape(3, 2), version=(2, 0))
    data = study(workloads=[{"kind": "npy", "path": "a.npy"}, {"kind": "npy", "path": "b.npy"}])
    s = load_study(write(tmp_path, yaml.safe_dump(data)))
    assert load(s.workloads[1], tmp_path).tolist() == [[0, 1], [2, 3], [4, 5]]


def safetensors(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(head) if length is None else length).to_bytes(8, "little") + head + data


W = {"w": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]}}  # 2 x 4 float32 = 32 bytes
W_DATA = np.arange(8, dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("content", "tensor", "fragment"),
    [
        (None, "w", "workloads[1].path: 'w.safetensors': cannot read the file at"),
        (b"\x01\x02\x03", "w", "fewer than the 8 of its length"),
        (safetensors(W, W_DATA, length=2**63), "w", "header length 9,223,372,036,854,775,808 is over the cap"),
        (safetensors(W, W_DATA, length=10_000), "w", "truncated: header length 10,000 runs past the end"),
        (safetensors(b"{not json" + b" " * 20), "w", "its header is not JSON"),
        (safetensors(b"[1, 2, 3]"), "w", "its header is a JSON list, not an object"),
        (safetensors(b'{"w": "\xff\xfe"}'), "w", "its header is not JSON"),
        (safetensors(W, W_DATA), "v", "workloads[1].tensor: no tensor 'v' in w.safetensors; it has ['w']"),
        (safetensors({"__metadata__": {"a": "b"}, **W}, W_DATA), "__metadata__", "workloads[1].tensor: no tensor"),
        (safetensors({"w": {**W["w"], "dtype": "BOOL"}}, W_DATA), "w", "tensor 'w': dtype 'BOOL' is not supported"),
        (safetensors({"w": {**W["w"], "shape": [2, -4]}}, W_DATA), "w", "shape [2, -4] is not a list of sizes"),
        (
            safetensors({"w": {**W["w"], "data_offsets": [0, 16]}}, W_DATA),
            "w",
            "data_offsets [0, 16] span 16 bytes; shape [2, 4] of F32 needs 32",
        ),  # fmt: skip
        (safetensors({"w": {**W["w"], "data_offsets": [8, 0]}}, W_DATA), "w", "are not [start, end]"),
        (safetensors(W, W_DATA[:20]), "w", "truncated: its data ends at byte 32 of a 20-byte data section"),
        (safetensors({"w": [1, 2]}, W_DATA), "w", "tensor 'w': its header entry is not an object"),
    ],
)
def test_safetensors_workload_files_are_checked_at_load(tmp_path, content, tensor, fragment):
    if content is not None:
        (tmp_path / "w.safetensors").write_bytes(content)
    data = study(workloads=[{"kind": "normal"}, {"kind": "safetensors", "path": "w.safetensors", "tensor": tensor}])
    assert fragment in refused_file(write(tmp_path, yaml.safe_dump(data)))


def test_every_bad_workload_file_is_named_in_one_report(tmp_path):
    (tmp_path / "p.npy").write_bytes(npy_bytes(np.array([None], dtype=object)))
    data = study(workloads=[{"kind": "npy", "path": "gone.npy"}, {"kind": "normal"}, {"kind": "npy", "path": "p.npy"}])
    message = refused_file(write(tmp_path, yaml.safe_dump(data)))
    assert "workloads[0].path: 'gone.npy': cannot read" in message
    assert "workloads[2].path: 'p.npy': holds Python objects" in message


def test_a_file_that_changes_after_loading_fails_its_points_clearly(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(safetensors(W, W_DATA))
    data = study(workloads=[{"kind": "safetensors", "path": "w.safetensors", "tensor": "w"}])
    s = load_study(write(tmp_path, yaml.safe_dump(data)))
    assert load(s.workloads[0], tmp_path).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    (tmp_path / "w.safetensors").write_bytes(safetensors(W, W_DATA[:20]))  # cut after loading
    with pytest.raises(ValueError, match="truncated: its data ends at byte 32 of a 20-byte data section"):
        load(s.workloads[0], tmp_path)
