"""Studies over a torch model (workload kind `torch`): the rows against direct computation (the model
quantized with quantize_model, its outputs and their cosine computed here; bits per weight by hand;
the linearity theorem's prediction from noise injected here and the NumPy API's quantize), the same
columns as the MiniLM workload's rows, DP allocations within budget, errors that name the path or the
point, factories imported in worker processes, and lowbit.study not importing torch."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from lowbit import quantize  # noqa: E402
from lowbit.study import (  # noqa: E402
    StudyError,
    model_points,  # noqa: E402
    run_study,
    validate_study,
)
from lowbit.torch import Rule, quantize_model  # noqa: E402

from .factories import TRAIN, digits_mlp  # noqa: E402

ROOT = Path(__file__).parents[2]
LAYERS = {"0": (128, 64), "2": (64, 128), "4": (10, 64)}  # the MLP's linear layers: (out, in)
# bits per weight of an (N, K) weight by hand: element bits plus the scale's bits over what it spans
BITS = {
    "float8_e4m3fn": lambda k: 8.0,  # no scale
    "mxfp4": lambda k: 4 + 8 / 32,  # E8M0 scale per 32
    "nvfp4": lambda k: 4 + 8 / 16,  # E4M3 scale per 16
    "int4_per_channel": lambda k: 4 + 32 / k,  # float32 scale per row
}
BUDGET = 4.4
ALLOCATIONS = [{"budget": BUDGET}, {"budget": BUDGET, "predictor": "measured", "calibration": 2}]
METRICS = ["fidelity", "retrieval_agreement"]
STUDY_YAML = f"""\
schema_version: 1
name: torch_digits
formats: {list(BITS)}
workloads:
  - {{kind: torch, factory: "beside_the_study:build", name: mlp}}
allocations: {json.dumps(ALLOCATIONS)}
metrics: {METRICS}
cost: {{node: 7nm}}
"""


def write_study(folder: Path) -> Path:
    """The study file, and beside it the factory module it names (found through the study's folder)."""
    (folder / "beside_the_study.py").write_text("from tests.torch.factories import digits_mlp as build\n")
    path = folder / "study.yaml"
    path.write_text(STUDY_YAML)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("torch_study")
    model = digits_mlp()[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = run_study(write_study(folder), folder / "out", progress=False)
    # the factory's own model (built once per process, cached) is left as it was
    assert all(type(model[i]) is torch.nn.Linear for i in (0, 2, 4))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    return result


@pytest.fixture(scope="module")
def table(run):
    assert run.failed == 0, run.table[["format", "error"]].to_string()
    return run.table.set_index("format")


def outputs(model, batches) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(b) for b in batches]).numpy().astype(np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def nearest(e: np.ndarray) -> np.ndarray:
    sim = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (e / np.linalg.norm(e, axis=1, keepdims=True)).T
    np.fill_diagonal(sim, -np.inf)
    return np.argmax(sim, axis=1)


def direct(rules) -> tuple[np.ndarray, np.ndarray, object]:
    """Reference and quantized outputs of the factory's model under `rules`, and its metric."""
    model, batches, metric = digits_mlp()
    return outputs(model, batches), outputs(quantize_model(copy.deepcopy(model), rules), batches), metric


def hand_bits(assignment: dict[str, str]) -> float:
    sizes = {n: out * k for n, (out, k) in LAYERS.items()}
    return sum(BITS[f](LAYERS[n][1]) * sizes[n] for n, f in assignment.items()) / sum(sizes.values())


@pytest.mark.parametrize("fmt", list(BITS))
def test_uniform_row_equals_direct_computation(table, fmt):
    row = table.loc[fmt]
    ref, out, metric = direct({"*": fmt})
    assert row.fidelity == pytest.approx(cosine(ref, out), abs=1e-6)
    assert row.retrieval_agreement == pytest.approx(np.mean(nearest(ref) == nearest(out)), abs=1e-12)
    truth = load_digits().target[TRAIN:]  # the factory's metric is the accuracy on these labels
    assert row.task_metric == pytest.approx(np.mean(np.argmax(out, 1) == truth))
    assert row.task_metric_float32 == pytest.approx(np.mean(np.argmax(ref, 1) == truth))
    assert row.bits_per_element == pytest.approx(hand_bits(dict.fromkeys(LAYERS, fmt)))
    assert row["shape"] == "597 samples" and row.workload == "mlp" and row.workload_kind == "torch"


def test_predicted_fidelity_from_noise_injected_here(table):
    """1 - sum_l alpha_l relmse_l, alpha_l fitted here from Gaussian noise of relative size 0.05 and 0.1
    on each layer (the schema's default `noise`, drawn from default_rng(0)), relmse from the NumPy API."""
    model, batches, _ = digits_mlp()
    ref = outputs(model, batches)
    ts = np.array([0.05, 0.1])
    predicted = 1.0
    for name in LAYERS:
        w = model.get_submodule(name).weight.detach().numpy()
        rms = np.sqrt(np.mean(w.astype(np.float64) ** 2))
        drops = []
        for t in ts:
            noisy = copy.deepcopy(model)
            noise = (t * rms * np.random.default_rng(0).standard_normal(w.shape)).astype(np.float32)
            noisy.get_submodule(name).weight.data = torch.from_numpy(w + noise)
            drops.append(1 - cosine(ref, outputs(noisy, batches)))
        alpha = np.sum(np.array(drops) * ts**2) / np.sum(ts**4)
        q = quantize(w, "mxfp4", axis=1).astype(np.float64)
        predicted -= alpha * np.sum((q - w) ** 2) / np.sum(w.astype(np.float64) ** 2)
    assert table.loc["mxfp4"].predicted_fidelity == pytest.approx(predicted, abs=1e-6)
    assert table.loc["mxfp4"].predictor == "theorem"


@pytest.mark.parametrize("name", ["dp_4.4b", "dp_4.4b_measured"])
def test_allocation_within_budget(table, name):
    row = table.loc[name]
    chosen = json.loads(row.assignment)
    assert list(chosen) == list(LAYERS) and set(chosen.values()) <= set(BITS)
    assert row.bits_per_element == pytest.approx(hand_bits(chosen)) and row.bits_per_element <= BUDGET
    ref, out, _ = direct(chosen)
    assert row.fidelity == pytest.approx(cosine(ref, out), abs=1e-6)
    assert row.budget_bits == BUDGET and row.predictor == ("measured" if name.endswith("measured") else "theorem")
    if name == "dp_4.4b":  # DP maximises the prediction: no uniform option within the budget predicts better
        uniform = table[table.family != "mixed"]
        within = uniform[uniform.bits_per_element <= BUDGET]
        assert len(within) and (row.predicted_fidelity >= within.predicted_fidelity - 1e-12).all()


@pytest.fixture
def fake_minilm(monkeypatch):
    """model_points on a two-layer stand-in for MiniLM (the row-building code is the real one)."""
    rng = np.random.default_rng(0)

    class Fake:
        linear_names = ["a", "b"]
        weights = {f"{n}.{p}": rng.standard_normal((64, 64) if p == "weight" else 64).astype(np.float32)
                   for n in "ab" for p in ("weight", "bias")}  # fmt: skip

        def embed(self, sentences, linear=None):
            linear = linear or (lambda name, x, w, b: x @ w.T + b)
            x = np.random.default_rng(1).standard_normal((len(sentences), 64)).astype(np.float32)
            for n in self.linear_names:
                x = linear(n, x, self.weights[f"{n}.weight"], self.weights[f"{n}.bias"])
            return x

    caches = (model_points.reference, model_points.sensitivities, model_points.profile, model_points.drops)
    for c in caches:
        c.cache_clear()
    monkeypatch.setattr(model_points, "_model", Fake)
    yield
    for c in caches:
        c.cache_clear()


def test_columns_are_the_minilm_workloads(table, fake_minilm, tmp_path):
    study = validate_study({"schema_version": 1, "name": "m", "formats": list(BITS),
                            "workloads": [{"kind": "model", "sentences": 4}], "allocations": ALLOCATIONS,
                            "metrics": METRICS, "cost": {"node": "7nm"}})  # fmt: skip
    minilm = run_study(study, tmp_path, progress=False).table
    assert (minilm.status == "ok").all(), minilm.error.tolist()
    assert set(table.reset_index().columns) == set(minilm.columns) | {"task_metric", "task_metric_float32"}


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"factory": "no_colon"}, "workloads[0].factory: must be 'package.module:function'"),
        ({"factory": "pkg.mod:"}, "workloads[0].factory: must be 'package.module:function'"),
        ({"factory": "1pkg:f"}, "workloads[0].factory: must be 'package.module:function'"),
        ({"factory": "a:b:c"}, "workloads[0].factory: must be 'package.module:function'"),
        ({"factory": "pkg mod:f"}, "workloads[0].factory: must be 'package.module:function'"),
        ({}, "workloads[0].factory: required key is missing"),
        ({"factory": "m:f", "accumulator": "fp16"}, "workloads[0].accumulator: 'fp16' emulates a product"),
        ({"factory": "m:f", "activations": "mxfp8_e4m3", "chunk": 4}, "workloads[0].chunk: a chunk splits"),
        ({"factory": "m:f", "activations": "mxfp9"}, "workloads[0].activations: unknown format 'mxfp9'"),
        ({"factory": "m:f", "layer": "*"}, "workloads[0].layer: unknown key"),
        ({"factory": "m:f", "activations": "float8_e4m3fn", "promote_every": 128}, "promote_every: promotion"),
        ({"factory": "m:f", "engine": "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"}, "give `activations` too"),
        (
            {
                "factory": "m:f",
                "activations": "float8_e4m3fn",
                "engine": "hopper:wgmma.m64n8k32.f32.e4m3.e4m3",
                "accumulator": "fp32",
            },
            "engine: an engine sets the accumulation",
        ),  # fmt: skip
        (
            {
                "factory": "m:f",
                "activations": "float8_e4m3fn",
                "engine": "hopper:wgmma.m64n8k32.f32.e4m3.e4m3",
                "promote_every": 100,
            },
            "promote_every: must be a multiple",
        ),  # fmt: skip
        ({"factory": "m:f", "activations": "float8_e4m3fn", "engine": "hopper:wgmma"}, "workloads[0].engine"),
    ],
)
def test_bad_workloads_name_the_path(workload, message):
    with pytest.raises(StudyError) as err:
        validate_study({"schema_version": 1, "name": "s", "formats": ["mxfp4"],
                        "workloads": [{"kind": "torch", **workload}]})  # fmt: skip
    assert message in str(err.value)


def test_failed_points_name_the_point(tmp_path):
    factories = {
        "tests.torch.factories:broken": "RuntimeError: this factory fails on purpose",
        "no_such_module_for_lowbit:build": "cannot import module 'no_such_module_for_lowbit'",
        "tests.torch.factories:not_a_triple": "must return (model, batches, metric)",
        "tests.torch.factories:nothing_here": "has no function 'nothing_here'",
        "tests.torch.factories:digits_with_conv": "layer 'conv' is a Conv1d",
    }
    workloads = [{"kind": "torch", "factory": f} for f in factories]
    workloads.append({"kind": "torch", "factory": "tests.torch.factories:digits_mlp", "layers": "head*"})
    study = validate_study({"schema_version": 1, "name": "bad", "formats": ["mxfp4"], "workloads": workloads,
                            "allocations": [{"budget": 5}], "metrics": METRICS})  # fmt: skip
    r = run_study(study, tmp_path, progress=False, base=ROOT)
    assert r.failed == len(r.table) == 2 * len(workloads)  # a format and an allocation on each
    expected = [*factories.values(), "layers: 'head*' matches no nn.Linear of the model (its linear layers: 0, 2, 4)"]
    for i, message in enumerate(expected):
        rows = r.table[r.table.workload == f"torch {workloads[i]['factory']}" + (" layers=head*" if i == 5 else "")]
        assert len(rows) == 2 and all(message in e for e in rows.error), (message, rows.error.tolist())
        assert sorted(rows.format) == ["dp_5b", "mxfp4"]
    summary = "\n".join(r.summary())
    assert "mxfp4 on torch tests.torch.factories:broken: RuntimeError: this factory fails on purpose" in summary


def test_emulated_accumulator_tuple_batches_and_no_metric(tmp_path):
    workloads = [
        {
            "kind": "torch",
            "factory": "tests.torch.factories:digits_pair",
            "activations": "mxfp8_e4m3",
            "accumulator": "fp32",
            "name": "pair",
        },  # fmt: skip
        {"kind": "torch", "factory": "tests.torch.factories:digits_mlp_generator", "name": "generator"},
    ]
    study = validate_study({"schema_version": 1, "name": "emulated", "formats": ["nvfp4"], "workloads": workloads,
                            "metrics": METRICS})  # fmt: skip
    r = run_study(study, tmp_path, progress=False, base=ROOT)
    assert r.failed == 0, r.table.error.tolist()
    rows = r.table.set_index("workload")
    ref, out, metric = direct({"*": Rule(weight="nvfp4", activation="mxfp8_e4m3", accumulator="fp32")})
    assert rows.loc["pair"].fidelity == pytest.approx(cosine(ref, out), abs=1e-6)
    assert rows.loc["pair"].task_metric == pytest.approx(metric(out.astype(np.float32)))
    ref, out, _ = direct({"*": "nvfp4"})
    assert rows.loc["generator"].fidelity == pytest.approx(cosine(ref, out), abs=1e-6)
    assert np.isnan(rows.loc["generator"].task_metric) and np.isnan(rows.loc["generator"].task_metric_float32)


def test_engine_workload_equals_the_rule_on_the_model(tmp_path):
    engine = "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"
    workload = {"kind": "torch", "factory": "tests.torch.factories:digits_pair", "activations": "float8_e4m3fn",
                "engine": engine, "promote_every": 64, "name": "engine"}  # fmt: skip
    study = validate_study({"schema_version": 1, "name": "engine", "formats": ["float8_e4m3fn"],
                            "workloads": [workload], "metrics": METRICS})  # fmt: skip
    r = run_study(study, tmp_path, progress=False, base=ROOT)
    assert r.failed == 0, r.table.error.tolist()
    rule = Rule(weight="float8_e4m3fn", activation="float8_e4m3fn", engine=engine, promote_every=64)
    ref, out, _ = direct({"*": rule})
    assert r.table.set_index("workload").loc["engine"].fidelity == pytest.approx(cosine(ref, out), abs=1e-6)


RANDOM_MLP = """\
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
    return model, [torch.randn(16, 64) for _ in range(2)], None
"""


def test_workers_import_the_factory_from_the_study_folder(tmp_path):
    """Spawned workers start without the factory's module: they import it through the study's folder
    (a random MLP here, so that the workers need neither scikit-learn nor training)."""
    (tmp_path / "random_mlp_beside.py").write_text(RANDOM_MLP)
    (tmp_path / "study.yaml").write_text(
        "schema_version: 1\nname: w\nformats: [mxfp4, nvfp4]\nmetrics: [fidelity]\n"
        "workloads: [{kind: torch, factory: 'random_mlp_beside:build'}]\n"
    )
    spawned = run_study(tmp_path / "study.yaml", tmp_path / "spawned", workers=2, progress=False)
    here = run_study(tmp_path / "study.yaml", tmp_path / "here", progress=False)
    assert spawned.failed == here.failed == 0, spawned.table.error.tolist()
    assert spawned.table.set_index("format").fidelity.to_dict() == here.table.set_index("format").fidelity.to_dict()


def test_the_study_package_does_not_import_torch():
    code = (
        "import sys, lowbit, lowbit.study, lowbit.study.point\n"
        "print([m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('lowbit.torch')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
