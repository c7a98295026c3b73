"""The study schema: one test per class of error, each naming the path; a valid study expands."""

import copy
from pathlib import Path

import numpy as np
import pytest

from lowbit.study import StudyError, load_study, validate_study, yamlio
from lowbit.study.datafiles import MAX_SAFETENSORS_HEADER
from lowbit.study.errors import ECHO_CHARS
from lowbit.study.paths import NAME_CHARS
from lowbit.study.schema import LARGE_STUDY, MAX_POINTS

BASE = {
    "schema_version": 1,
    "name": "t",
    "formats": [
        "mxfp4",
        {"format": "nvfp4", "hadamard": 16},
        {"sweep": {"format": ["mxfp4", "mxint8"], "block": [16, 32]}},
    ],
    "workloads": [{"kind": "normal", "shape": [4, 64]}],
    "metrics": ["mse", {"gemm_relative_error": {"accumulator": "fp16"}}],
    "cost": {"node": "7nm"},
}


def problems(mutate) -> str:
    d = copy.deepcopy(BASE)
    mutate(d)
    with pytest.raises(StudyError) as err:
        validate_study(d)
    return str(err.value)


def test_valid_study_expands_sweeps():
    study = validate_study(copy.deepcopy(BASE))
    names = [s.name for s in study.format_specs()]
    assert names == ["mxfp4", "nvfp4 hadamard=16", "mxfp4 block=16", "mxfp4 block=32", "mxint8 block=16",
                     "mxint8 block=32"]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),  # unknown top-level key
        (lambda d: d["formats"].append({"format": "mxfp4", "blok": 64}), "formats[3].blok: unknown key"),  # typo
        (
            lambda d: d["formats"].append({"format": "mxfp4", "block": 0}),
            "formats[3].block: must be a positive integer, got 0",
        ),
        (
            lambda d: d["formats"].append({"format": "mxfp4", "block": "big"}),
            "formats[3].block: Input should be a valid integer",
        ),
        (
            lambda d: d["formats"].append({"format": "mxfp4", "hadamard": 12}),
            "formats[3].hadamard: must be a power of two",
        ),
        (lambda d: d["formats"].append("mxfp5"), "formats[3]: format: unknown name 'mxfp5'; did you mean 'mxfp4'"),
        (
            lambda d: d["formats"].append({"sweep": {"format": ["nf4"], "rule": ["ceil"]}}),
            "formats[3] (nf4 rule=ceil): rule 'ceil'",
        ),
        (
            lambda d: d["formats"].append({"sweep": {"format": ["mxfp4"], "blocks": [1]}}),
            "formats[3].sweep: unknown field(s) ['blocks']",
        ),
        (
            lambda d: d["formats"].append({"sweep": {"format": ["mxfp4"], "rounding": ["rne", "bogus"]}}),
            "formats[3].sweep: rounding: Input should be 'rne', 'rtz', 'rna', 'rup', 'rdown' or 'stochastic', "
            "got 'bogus'",
        ),
        (lambda d: d["workloads"].append({"kind": "gaussian"}), "workloads[1]: Input tag 'gaussian'"),
        (lambda d: d["workloads"].append({"kind": "student_t"}), "workloads[1].df: required key is missing"),
        (
            lambda d: d["workloads"].append({"kind": "outliers", "crest_factor": 0.5}),
            "workloads[1].crest_factor: Input should be greater than 1",
        ),
        (
            lambda d: d["workloads"].append({"kind": "normal", "shape": [0, 4]}),
            "workloads[1].shape[0]: Input should be greater than or equal to 1",
        ),
        (lambda d: d["metrics"].append("msee"), "metrics[2]: unknown metric 'msee'; did you mean 'mse'?"),
        (
            lambda d: d["metrics"].append({"gemm_relative_error": {"accumulator": "fp31"}}),
            "metrics[2].gemm_relative_error.accumulator: unknown accumulator 'fp31'",
        ),
        (
            lambda d: d["metrics"].append({"gemm_relative_error": {"acumulator": "fp16"}}),
            "metrics[2].gemm_relative_error.acumulator: unknown key",
        ),
        (lambda d: d["metrics"].append({"mse": {}}), "metrics[2].mse: metric 'mse' takes no options"),
        (lambda d: d["cost"].update(lanes=0), "cost.lanes: Input should be greater than or equal to 1, got 0"),
        (lambda d: d.update(schema_version=2), "schema_version: this lowbit reads version 1, got 2"),
        (lambda d: d.pop("name"), "name: required key is missing"),
        (lambda d: d.update(formats=[]), "formats: List should have at least 1 item"),
        (lambda d: d.update(executor="spark"), "executor: Input should be 'local' or 'dask'"),
        (lambda d: d.update(allocations=[{"budget": 4}]), "allocations: need a workload of kind 'model'"),
        (lambda d: d.update(allocations=[{"budget": 0}]), "allocations[0].budget: Input should be greater than 0"),
        (
            lambda d: d.update(workloads=[{"kind": "model"}], allocations=[{"budget": 4, "options": ["mxfp4", "nf5"]}]),
            "allocations[0].options[1]: not a format of this study",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model"}], allocations=[{"budget": 4}, {"budget": 4.0}]),
            "allocations[1]: its name 'dp_4b' is taken",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model"}], allocations=[{"budget": 4, "predictor": "exact"}]),
            "allocations[0].predictor: Input should be 'theorem' or 'measured'",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model", "noise": [0.1, 0]}]),
            "workloads[0].noise[1]: Input should be greater than 0",
        ),
    ],
)
def test_errors_name_the_path(mutate, message):
    assert message in problems(mutate)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["cost"].update(accumulator="fp23"), "cost.accumulator: unknown accumulator 'fp23'"),
        (lambda d: d["cost"].update(node="3nm"), "cost.node: unknown technology node '3nm'"),
        (lambda d: d["cost"].update(b_format="mxfp5"), "cost.b_format: unknown format 'mxfp5'; did you mean 'mxfp4'"),
        (
            lambda d: d.update(workloads=[{"kind": "model", "accumulator": "fp23"}]),
            "workloads[0].accumulator: unknown accumulator 'fp23'",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model", "activations": "mxfp5"}]),
            "workloads[0].activations: unknown format 'mxfp5'",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model", "engine": "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"}]),
            "workloads[0]: engine: an engine multiplies two formats; give `activations` too",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model", "activations": "float8_e4m3fn", "engine": "volta:x"}]),
            "workloads[0].engine: instruction 'x'",
        ),
        (
            lambda d: d.update(
                workloads=[
                    {
                        "kind": "model",
                        "activations": "float8_e4m3fn",
                        "accumulator": "fp16",
                        "engine": "hopper:wgmma.m64n8k32.f32.e4m3.e4m3",
                    }
                ]  # fmt: skip
            ),
            "engine: an engine sets the accumulation itself",
        ),
        (
            lambda d: d.update(workloads=[{"kind": "model", "activations": "float8_e4m3fn", "promote_every": 128}]),
            "promote_every: promotion applies to a matrix engine",
        ),
    ],
)
def test_every_name_is_checked_at_load(mutate, message):
    """Names the runner would only meet mid-run (cost settings, a model's formats) fail at load, at their path."""
    assert message in problems(mutate)


def test_names_that_exist_pass():
    d = copy.deepcopy(BASE)
    d["cost"].update(accumulator="fp16", node="16nm", b_format="nvfp4")
    d["workloads"].append({"kind": "model", "activations": "mxfp8_e4m3", "accumulator": "e8m13"})
    study = validate_study(d)
    assert study.cost.b_format == "nvfp4" and study.workloads[1].accumulator == "e8m13"


def test_a_model_workload_without_an_engine_dumps_as_before_engines():
    d = copy.deepcopy(BASE)
    d["workloads"].append({"kind": "model", "activations": "mxfp8_e4m3"})
    engine = ["hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"]
    d["workloads"].append({"kind": "model", "activations": "float8_e4m3fn", "engine": engine, "promote_every": 128})
    study = validate_study(d)
    assert "engine" not in study.workloads[1].model_dump() and "promote_every" not in study.workloads[1].model_dump()
    dumped = study.workloads[2].model_dump()
    assert dumped["engine"] == "hopper:wgmma.m64n8k32.f32.e4m3.e4m3" and dumped["promote_every"] == 128


def test_file_errors(tmp_path):
    with pytest.raises(StudyError, match="cannot read the file"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nformats: [mxfp4\n")
    with pytest.raises(StudyError, match="malformed YAML"):
        load_study(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(StudyError, match=r"\(top level\): a study is a mapping"):
        load_study(bad)


def test_table_path_is_inside_the_output_folder(tmp_path):
    study = validate_study(copy.deepcopy(BASE))
    assert study.table_path() == Path("results") / "t.parquet"  # output.dir, relative to the current folder
    assert study.table_path(tmp_path) == tmp_path / "t.parquet"  # lowbit run -o
    named = validate_study({**copy.deepcopy(BASE), "output": {"dir": "out/sub", "file": "table.parquet"}})
    assert named.table_path() == Path("out/sub/table.parquet")


def test_sweep_size_counts_without_expanding():
    study = validate_study(copy.deepcopy(BASE))
    assert study.formats[2].size == 4  # 2 formats x 2 blocks
    assert len(study.format_specs()) == 1 + 1 + 4


def test_workload_files_are_checked_only_with_a_base(tmp_path):
    d = {**copy.deepcopy(BASE), "workloads": [{"kind": "npy", "path": "x.npy"}]}
    assert validate_study(d).workloads[0].path == "x.npy"  # no base: a Study built in code, files unread
    with pytest.raises(StudyError, match=r"workloads\[0\]\.path: 'x\.npy': cannot read the file at"):
        validate_study(d, base=tmp_path)
    np.save(tmp_path / "x.npy", np.ones((2, 32), np.float32))
    assert validate_study(d, base=tmp_path).workloads[0].kind == "npy"


def test_readme_states_the_limits():
    """The limits in README "Bad input" are the ones the code enforces."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = " ".join(readme[readme.index("## Bad input") : readme.index("## How it is built")].split())
    assert (yamlio.MAX_BYTES, yamlio.MAX_DEPTH) == (2**20, 100)
    assert (yamlio.MAX_NODES, yamlio.MAX_SCALAR_CHARS) == (200_000, 8 * 2**20)
    assert (LARGE_STUDY, MAX_POINTS, NAME_CHARS, ECHO_CHARS) == (10_000, 1_000_000, 100, 80)
    assert MAX_SAFETENSORS_HEADER == 16 * 2**20
    for stated in ("at most 1 MiB", "deeper than 100 levels", "more than 200,000 YAML nodes", "8 MiB of scalar text",
                   "More than 10,000 need consent", "more than 1,000,000", "at most 100 characters",
                   "at most 80 characters", "at most 16 MiB"):  # fmt: skip
        assert stated in section, stated
