"""Running studies: the table and its provenance, caching, a kill -9 mid-run, Dask against the local
executor, reproducibility from the seed, failed points, and the quickstart's Pareto front."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowbit.study import pareto_front, provenance, run_study, validate_study
from lowbit.study.workloads import synthetic

ROOT = Path(__file__).parents[2]


def small_study(**extra) -> dict:
    study = {
        "schema_version": 1,
        "name": "small",
        "formats": [
            "mxfp4",
            "nvfp4",
            "int8",
            {"format": "float8_e4m3fn", "rounding": "stochastic", "seed": 5},
            {"format": "mxfp4", "hadamard": 32, "hadamard_seed": 1},
        ],  # fmt: skip
        "workloads": [
            {"kind": "normal", "shape": [8, 256], "seed": 1},
            {"kind": "outliers", "crest_factor": 6, "shape": [8, 256], "seed": 2},
            {"kind": "gemm", "a": {"kind": "normal", "shape": [8, 64]}, "b": {"kind": "laplace", "shape": [4, 64]}},
        ],
        "metrics": ["mse", "qsnr_db", "kl", {"gemm_relative_error": {"accumulator": "fp16"}}],
        "cost": {"node": "16nm"},
    }
    study.update(extra)
    return study


def test_table_columns_and_provenance(tmp_path):
    r = run_study(validate_study(small_study()), tmp_path, progress=False)
    assert (r.computed, r.cached, r.failed) == (15, 0, 0)
    df = pd.read_parquet(r.path)
    columns = ["format", "element", "block", "scale", "rule", "rounding", "hadamard", "bits_per_element", "workload"]
    columns += ["mse", "qsnr_db", "kl", "gemm_relative_error_fp16", "area_um2", "energy_pj_per_mac", "status"]
    assert set(columns) <= set(df.columns)
    assert len(df) == 15 and (df.status == "ok").all()
    gemm = df[df.workload_kind == "gemm"]
    assert gemm.mse.isna().all() and (gemm.gemm_relative_error_fp16 > 0).all()
    assert df[df.workload_kind != "gemm"].gemm_relative_error_fp16.isna().all()
    # QSNR by hand from MSE: -10 log10(mse / mean(x^2))
    x = synthetic(validate_study(small_study()).workloads[0]).astype(np.float64)
    row = df[(df.format == "mxfp4") & (df.workload_kind == "normal")].iloc[0]
    assert row.qsnr_db == pytest.approx(-10 * np.log10(row.mse / np.mean(x * x)))
    meta = provenance(r.path)
    assert meta["study"] == "small" and len(meta["study_hash"]) == 64 and meta["lowbit_version"]


def test_rerun_uses_the_cache_and_recomputes_changes(tmp_path):
    run_study(validate_study(small_study()), tmp_path, progress=False)
    again = run_study(validate_study(small_study()), tmp_path, progress=False)
    assert (again.computed, again.cached) == (0, 15)
    changed = small_study()
    changed["formats"].append("mxfp6_e2m3")
    r = run_study(validate_study(changed), tmp_path, progress=False)
    assert (r.computed, r.cached) == (3, 15)


def test_reproducible_from_the_seed(tmp_path):
    a = run_study(validate_study(small_study()), tmp_path / "a", progress=False).table
    b = run_study(validate_study(small_study()), tmp_path / "b", progress=False).table
    metrics = ["mse", "qsnr_db", "kl", "gemm_relative_error_fp16"]
    np.testing.assert_array_equal(a[metrics].to_numpy(), b[metrics].to_numpy())  # NaN equal, bits equal
    w = validate_study(small_study()).workloads[0]
    np.testing.assert_array_equal(synthetic(w), np.random.default_rng(1).standard_normal((8, 256)).astype(np.float32))


def test_a_failing_point_is_recorded_and_the_run_goes_on(tmp_path):
    study = small_study(workloads=[{"kind": "normal", "shape": [4, 256]}, {"kind": "npy", "path": "missing.npy"}])
    r = run_study(validate_study(study), tmp_path, progress=False, base=tmp_path)
    assert r.failed == 5 and (r.table.status == "ok").sum() == 5
    failed = r.table[r.table.status == "failed"]
    assert failed.error.str.contains("missing.npy").all()
    np.save(tmp_path / "missing.npy", np.ones((2, 64), np.float32))
    again = run_study(validate_study(study), tmp_path, progress=False, base=tmp_path)
    assert (again.computed, again.failed) == (5, 0)  # failures are not cached: fixed, they run again


def test_file_workloads(tmp_path):
    from lowbit.study.workloads import read_safetensors

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    header = b'{"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}}'
    (tmp_path / "t.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + x.tobytes())
    np.testing.assert_array_equal(read_safetensors(tmp_path / "t.safetensors", "w"), x)
    with pytest.raises(ValueError, match="no tensor 'v'"):
        read_safetensors(tmp_path / "t.safetensors", "v")
    study = small_study(workloads=[{"kind": "safetensors", "path": "t.safetensors", "tensor": "w"}], formats=["int8"])
    r = run_study(validate_study(study), tmp_path / "out", progress=False, base=tmp_path)
    assert r.table.status.tolist() == ["ok"] and r.table.mse.iloc[0] == 0.0  # integers 0..11 are int8 values


def test_kill_minus_9_then_resume(tmp_path):
    study = small_study(
        name="killed",
        workloads=[{"kind": "normal", "shape": [64, 4096], "seed": s} for s in range(12)],
        formats=["nf4", "mxfp4", "nvfp4", "int4_g128"],
        metrics=["mse", "kl"],
    )
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    cache = out / ".lowbit-cache"
    proc = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "run", str(path), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.glob("*.json"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name: p.read_bytes() for p in cache.glob("*.json")}
    assert 5 <= len(done) < 48, len(done)
    resumed = run_study(path, out, progress=False)
    assert resumed.computed == 48 - len(done) and resumed.cached == len(done)
    for name, content in done.items():
        assert (cache / name).read_bytes() == content  # finished points were not recomputed
    fresh = run_study(path, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(resumed.table, fresh.table)


def test_dask_local_cluster_equals_the_local_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    study = validate_study(small_study())
    local = run_study(study, tmp_path / "local", progress=False).table
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = run_study(study, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False).table
    pd.testing.assert_frame_equal(local, dask)


def test_local_processes_equal_one_process(tmp_path):
    study = validate_study(small_study())
    one = run_study(study, tmp_path / "one", progress=False).table
    two = run_study(study, tmp_path / "two", workers=2, progress=False).table
    pd.testing.assert_frame_equal(one, two)


def test_quickstart_pareto_front_is_not_dominated(tmp_path):
    r = run_study(ROOT / "studies" / "quickstart.yaml", tmp_path, progress=False)
    assert r.failed == 0
    for _, group in r.table.groupby("workload"):
        front = pareto_front(group, "bits_per_element", "qsnr_db")
        assert len(front) > 0
        for _, p in front.iterrows():
            better = group[(group.bits_per_element <= p.bits_per_element) & (group.qsnr_db >= p.qsnr_db)
                           & ((group.bits_per_element < p.bits_per_element) | (group.qsnr_db > p.qsnr_db))]  # fmt: skip
            assert better.empty, (p.format, better.format.tolist())
        rest = group.drop(front.index)
        for _, p in rest.iterrows():  # everything off the front is dominated by a front point
            assert ((front.bits_per_element <= p.bits_per_element) & (front.qsnr_db >= p.qsnr_db)).any()


def test_pareto_front_by_hand():
    df = pd.DataFrame({"cost": [1, 2, 2, 3, 4, 4, np.nan], "acc": [1.0, 3.0, 2.0, 3.0, 5.0, 5.0, 9.0]})
    front = pareto_front(df, "cost", "acc")
    assert front.index.tolist() == [0, 1, 4, 5]
    low = pareto_front(df, "cost", "acc", minimize_y=True)
    assert low.index.tolist() == [0]
    with pytest.raises(KeyError, match="no column 'area'"):
        pareto_front(df, "area", "acc")


def test_a_ctrl_c_inside_a_finalizer_is_noted_not_lost():
    # Python prints and drops a KeyboardInterrupt raised in __del__; the run's handler only notes it there,
    # and raises it everywhere else
    import signal
    import sys

    from lowbit.study.runner import _interrupts

    class Finalized:
        def __del__(self):  # the handler runs on this frame, as it would in a GC finalizer
            seen.append(handler(signal.SIGINT, sys._getframe()))

    seen = []
    with _interrupts() as noted:
        handler = signal.getsignal(signal.SIGINT)
        Finalized()  # dropped at once: __del__ runs here
        assert seen == [None] and noted == [signal.SIGINT]
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, sys._getframe())
    assert signal.getsignal(signal.SIGINT) is not handler  # restored


def test_a_ctrl_c_inside_an_llvm_callback_is_noted_not_raised():
    # LLVM's C code calls back into llvmlite's Python (its object cache while Numba compiles); a
    # KeyboardInterrupt raised there left LLVM a broken buffer and crashed the process (SIGSEGV)
    import os
    import signal
    import sys

    from lowbit.study.runner import _interrupts

    source = "def callback(handler):\n    return handler(SIGINT, _getframe())\n"
    where = os.path.join(os.sep, "site-packages", "llvmlite", "binding", "executionengine.py")
    space = {"SIGINT": signal.SIGINT, "_getframe": sys._getframe}
    exec(compile(source, where, "exec"), space)  # a function whose frame is llvmlite's, as in the callback
    with _interrupts() as noted:
        handler = signal.getsignal(signal.SIGINT)
        assert space["callback"](handler) is None and noted == [signal.SIGINT]
