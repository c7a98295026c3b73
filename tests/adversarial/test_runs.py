"""Adversarial probes of study runs (issue I, rules 4 to 7): failed rows keep their identity, the cache
guards its integrity, processes end cleanly, and overflow is visible. Also the durability guarantees:
kill -9 at several moments, a corrupted cache and a truncated table, each followed by a re-run that must
equal a fresh run.

Expected values come from hand arithmetic (bits per element, overflow fractions), from a fresh run in
another folder (the durability guarantee is equality with it), or from the operating system (file modes,
process states).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lowbit.cli import main
from lowbit.dashboard import figures, views
from lowbit.simulator import matmul_error
from lowbit.study import Metric, provenance, run_study, validate_study
from lowbit.study import point as point_module
from lowbit.study.cache import CacheWarning, checksum
from lowbit.study.metrics import overflow_fraction
from lowbit.study.point import failed_row, payloads
from lowbit.study.processes import map_local
from lowbit.study.store import column_label, metric_of, register_metric, registered_metric
from lowbit.study.workloads import GemmPair

ROOT = Path(__file__).parents[2]
CACHE = ".lowbit-cache"
NORMAL = {"kind": "normal", "shape": [4, 64], "seed": 1}
GEMM = {"kind": "gemm", "a": {"kind": "normal", "shape": [4, 64]}, "b": {"kind": "normal", "shape": [3, 64]}}
# Spec columns by hand (DESIGN.md section 3): MXFP4 is E2M1 elements with an E8M0 scale per 32, so
# 4 + 8/32 = 4.25 bits; NVFP4 E2M1 with an E4M3 scale per 16, 4 + 8/16 = 4.5 (the tensor scale is not
# counted); int8 per channel on K = 64 has one fp32 scale per row, 8 + 32/64 = 8.5.
MXFP4 = {"format": "mxfp4", "element": "float4_e2m1fn", "bits": 4, "block": 32, "scale": "float8_e8m0fnu",
         "rule": "ocp_floor", "tensor_scale": "none", "bits_per_element": 4.25}  # fmt: skip
NVFP4 = {"format": "nvfp4", "element": "float4_e2m1fn", "bits": 4, "block": 16, "scale": "float8_e4m3fn",
         "rule": "absmax", "tensor_scale": "nvfp4", "bits_per_element": 4.5}  # fmt: skip
INT8_PC = {"format": "int8_per_channel", "element": "int8 (signed, symmetric): [-127, 127], rounded and clipped",
           "bits": 8, "block": 64, "scale": "fp32", "tensor_scale": "none", "bits_per_element": 8.5}  # fmt: skip


def study(name: str = "adv", **extra) -> dict:
    return {"schema_version": 1, "name": name, "formats": ["mxfp4", "int8"], "workloads": [NORMAL],
            "metrics": ["mse"], **extra}  # fmt: skip


def cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, **kw)  # fmt: skip


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _raise(exc: BaseException):
    def compute(x, q):
        raise exc

    return compute


# ---------------------------------------------------------------------------------------------------
# Rule 4: failed rows keep their identity


def _check_identity(row: pd.Series, expected: dict) -> None:
    for column, value in expected.items():
        assert row[column] == value, (column, row[column], value)


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [(ValueError("bad data"), "ValueError: bad data"), (OSError("disk gone"), "OSError: disk gone"),
     (MemoryError("out of memory"), "MemoryError: out of memory")],
)  # fmt: skip
def test_a_workload_that_fails_to_load_keeps_every_spec_column(tmp_path, monkeypatch, exc, fragment):
    """The data fails before any spec column is computed from it: they come from the spec and the declared shape."""

    def fails(workload_json, base):
        raise exc

    monkeypatch.setattr(point_module, "_data", fails)
    s = study(formats=["mxfp4", "nvfp4", "int8_per_channel"], workloads=[{**NORMAL, "name": "w"}])
    r = run_study(validate_study(s), tmp_path, progress=False)
    assert r.failed == 3 and (r.table.status == "failed").all()
    for i, expected in enumerate((MXFP4, NVFP4, INT8_PC)):
        row = r.table.iloc[i]
        _check_identity(row, {**expected, "workload": "w", "study": "adv", "shape": "4x64", "w_seed": 1})
        assert row["error"] == fragment


def test_a_failed_allocation_keeps_its_label_and_budget(tmp_path, monkeypatch):
    def fails(*args):
        raise RuntimeError("no layers")

    monkeypatch.setattr(point_module, "allocation_row", fails)
    s = study(formats=["nf4", "int8"], workloads=[{"kind": "model", "model": "minilm", "sentences": 2}],
              metrics=["fidelity"], allocations=[{"budget": 5}])  # fmt: skip
    (allocation,) = [p for p in payloads(validate_study(s), tmp_path, "test") if "allocation" in p]
    row = point_module.evaluate(allocation)
    _check_identity(pd.Series(row), {"format": "dp_5b", "base_format": "dp_allocation", "family": "mixed",
                                     "budget_bits": 5, "predictor": "theorem", "status": "failed",
                                     "error": "RuntimeError: no layers"})  # fmt: skip


def test_a_file_that_cannot_be_read_at_run_time_keeps_the_identity(tmp_path, monkeypatch):
    np.save(tmp_path / "w.npy", np.ones((2, 64), np.float32))
    s = study(formats=["mxfp4", "int8_per_channel"], workloads=[{"kind": "npy", "path": "w.npy", "name": "w"}])
    loaded = validate_study(s)

    def vanished(workload, base):
        raise OSError("w.npy: the file went away")

    monkeypatch.setattr(point_module, "load", vanished)
    r = run_study(loaded, tmp_path / "out", progress=False, base=tmp_path)
    mx, pc = r.table.iloc[0], r.table.iloc[1]
    _check_identity(mx, {**MXFP4, "workload": "w", "error": "OSError: w.npy: the file went away"})
    # the shape was never read: what depends on it is NaN, the rest is kept
    _check_identity(pc, {k: v for k, v in INT8_PC.items() if k not in ("block", "bits_per_element")})
    assert np.isnan(pc["block"]) and np.isnan(pc["bits_per_element"])


def test_a_failed_row_keeps_the_workload_parameters(tmp_path, monkeypatch):
    def fails(workload_json, base):
        raise ValueError("no")

    monkeypatch.setattr(point_module, "_data", fails)
    w = {"kind": "outliers", "crest_factor": 6, "group": 32, "shape": [2, 64], "seed": 3}
    row = run_study(validate_study(study(formats=["mxfp4"], workloads=[w])), tmp_path, progress=False).table.iloc[0]
    assert (row.w_crest_factor, row.w_group, row.w_seed, row.status) == (6, 32, 3, "failed")
    _check_identity(row, {**MXFP4, "shape": "2x64"})


def test_a_worker_that_dies_gives_a_failed_row_not_a_crash(tmp_path):
    # os._exit(3) kills the worker process outright: the pool breaks, and each lost point is handed back
    lost = list(map_local(os._exit, [3], 1, lambda p, err: {"lost": p, "error": type(err).__name__}))
    assert lost == [{"lost": 3, "error": "BrokenProcessPool"}]
    p = payloads(validate_study(study(formats=["nvfp4"])), tmp_path, "test")[0]
    row = failed_row(p, RuntimeError("worker died"))
    _check_identity(pd.Series(row), {**NVFP4, "status": "failed", "error": "RuntimeError: worker died"})


def _all_fail_study(tmp_path: Path) -> Path:
    s = study(formats=["mxfp4", "nvfp4"], workloads=[GEMM], metrics=[{"gemm_relative_error": {"accumulator": "int32"}}])
    return write_yaml(tmp_path / "s.yaml", s)


def test_cli_all_points_fail_exit_3_and_no_traceback(tmp_path):
    done = cli("run", str(_all_fail_study(tmp_path)), "-o", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "2 point(s) failed" in done.stdout
    assert re.search(r"^  failed: mxfp4 on gemm\(.*\): ValueError: accumulator int32", done.stdout, re.M)
    assert (tmp_path / "out" / "adv.parquet").is_file()


def test_cli_all_points_fail_in_a_registered_metric(tmp_path, capsys):
    path = write_yaml(tmp_path / "s.yaml", study(metrics=["boom"]))
    with registered_metric(Metric("boom", "boom", "", "lower", {"tensor"}, _raise(RuntimeError("boom failed")))):
        code = main(["run", str(path), "-o", str(tmp_path / "out")])  # a traceback would raise here
    out = capsys.readouterr().out
    assert code == 3 and "2 point(s) failed" in out
    assert "  failed: mxfp4 on normal" in out and "RuntimeError: boom failed" in out


def test_cli_some_points_fail_exit_3(tmp_path, capsys):
    def fails_on_three_rows(x, q):
        if x.shape[0] == 3:
            raise ValueError("three rows")
        return 0.0

    s = study(workloads=[NORMAL, {**NORMAL, "shape": [3, 64]}], metrics=["picky"])
    with registered_metric(Metric("picky", "picky", "", "lower", {"tensor"}, fails_on_three_rows)):
        code = main(["run", str(write_yaml(tmp_path / "s.yaml", s)), "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 3 and "(4 computed, 0 cached, 2 failed)" in out and "ValueError: three rows" in out


def test_run_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert re.search(r"^  3 +some points failed", out, re.M) and re.search(r"^  130 +interrupted", out, re.M)


# ---------------------------------------------------------------------------------------------------
# Rule 5: the cache guards its integrity


@pytest.fixture
def cached(tmp_path):
    """A study run once into out/ (and its entries by format), and the same study fresh in fresh/."""
    s = validate_study(study())
    first = run_study(s, tmp_path / "out", progress=False)
    fresh = run_study(s, tmp_path / "fresh", progress=False)
    entries = {r.format: tmp_path / "out" / CACHE / f"{r.point}.json" for r in first.table.itertuples()}
    return s, tmp_path / "out", entries, fresh.table


def _flip_digit_after(text: str, marker: str) -> str:
    """One bit flipped in the first digit after `marker` (ASCII digits differ in bit 0 from their pair)."""
    i = text.index(marker) + len(marker)
    while not text[i].isdigit():
        i += 1
    return text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1 :]


def _rewrite(path: Path, change) -> None:
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(json.dumps(entry))


def _checksum_ok_but_other_format(path: Path, other: Path) -> None:
    entry, theirs = json.loads(path.read_text()), json.loads(other.read_text())
    entry["row"]["format_spec"] = theirs["row"]["format_spec"]
    entry["sha256"] = checksum(entry["row"])
    path.write_text(json.dumps(entry))


CORRUPTIONS = {
    "truncated JSON": (lambda p, o: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not valid JSON"),
    "empty file": (lambda p, o: p.write_bytes(b""), "not valid JSON"),
    "binary junk": (lambda p, o: p.write_bytes(bytes(range(256)) * 4), "not valid JSON"),
    "deeply nested": (lambda p, o: p.write_text("[" * 200_000), "not valid JSON"),
    "over 16 MiB": (lambda p, o: p.write_bytes(b" " * (17 << 20) + b"{}"), "larger than 16 MiB"),
    "bit flip in a value": (lambda p, o: p.write_text(_flip_digit_after(p.read_text(), '"mse": ')), "checksum"),
    "bit flip in the key": (lambda p, o: p.write_text(_flip_digit_after(p.read_text(), '"key": "')), "its key is"),
    "another point's row": (lambda p, o: p.write_bytes(o.read_bytes()), "its key is"),
    "another point's row, key rewritten": (
        lambda p, o: (p.write_text(o.read_text().replace(o.stem, p.stem, 1))), "holds the row of point"),
    "another format, checksum recomputed": (_checksum_ok_but_other_format, "format or workload is not this point's"),
    "a bare row (no key, no checksum)": (lambda p, o: p.write_text(json.dumps(json.loads(p.read_text())["row"])),
                                         "not a lowbit cache entry"),
    "a JSON list": (lambda p, o: p.write_text("[1, 2]"), "not a lowbit cache entry"),
    "checksum missing": (lambda p, o: _rewrite(p, lambda e: e.pop("sha256")), "not a lowbit cache entry"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_cache_entry_is_named_discarded_and_recomputed(cached, kind):
    s, out, entries, fresh = cached
    corrupt, fragment = CORRUPTIONS[kind]
    corrupt(entries["mxfp4"], entries["int8"])
    with pytest.warns(CacheWarning, match=re.escape(str(entries["mxfp4"]))) as caught:
        again = run_study(s, out, progress=False)
    assert [str(w.message) for w in caught if fragment in str(w.message)], [str(w.message) for w in caught]
    assert (again.computed, again.cached, again.failed) == (1, 1, 0)
    assert len(again.discarded) == 1 and fragment in again.discarded[0]
    pd.testing.assert_frame_equal(again.table, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # the entry was rewritten whole: no warning now
        third = run_study(s, out, progress=False)
    assert (third.computed, third.cached) == (0, 2)


def test_a_cache_entry_that_is_a_folder_is_a_warning_not_a_crash(cached):
    s, out, entries, fresh = cached
    entries["mxfp4"].unlink()
    entries["mxfp4"].mkdir()
    with pytest.warns(CacheWarning, match="cannot"):
        again = run_study(s, out, progress=False)
    assert (again.computed, again.cached) == (1, 1)
    pd.testing.assert_frame_equal(again.table, fresh)


def test_cli_names_the_corrupt_cache_file_in_one_line(tmp_path, capsys):
    path = write_yaml(tmp_path / "s.yaml", study())
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    entry = sorted((tmp_path / "out" / CACHE).glob("*.json"))[0]
    entry.write_text('{"key": "')
    capsys.readouterr()
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if line.startswith("lowbit: warning:")]
    assert warned == [f"lowbit: warning: {entry}: not valid JSON (JSONDecodeError: Unterminated string starting at: "
                      "line 1 column 9 (char 8)); discarded, the point is computed again"]  # fmt: skip
    assert "(1 computed, 1 cached, 0 failed)" in captured.out


def _killed_writer_leftover(folder: Path) -> Path:
    """A temporary file left by a writer killed with SIGKILL in the middle of store.atomic_write."""
    folder.mkdir(parents=True, exist_ok=True)
    script = ("import os, sys; from pathlib import Path; from lowbit.study.store import atomic_write\n"
              "def write(tmp):\n    Path(tmp).write_text('half')\n    os.kill(os.getpid(), 9)\n"
              "atomic_write(Path(sys.argv[1]), write)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script, str(folder / "x.json")], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    (leftover,) = folder.glob(".*.tmp")
    return leftover


def test_temporaries_of_killed_runs_are_removed(cached):
    s, out, entries, fresh = cached
    leftover = _killed_writer_leftover(out / CACHE)
    leftovers = [leftover, out / leftover.name]  # the same dead writer's, beside the table too
    leftovers[1].write_bytes(leftover.read_bytes())
    again = run_study(s, out, progress=False)
    assert [p.exists() for p in leftovers] == [False, False]
    assert not list(out.rglob("*.tmp")) and (again.computed, again.cached) == (0, 2)


def test_a_concurrent_writers_temporary_file_is_left_alone(cached):
    """A run still writing into the folder keeps its temporary file, and its rename still succeeds."""
    s, out, entries, fresh = cached
    script = ("import sys; from pathlib import Path; from lowbit.study.store import atomic_write\n"
              "def write(tmp):\n    Path(tmp).write_text('whole')\n    print('writing', flush=True)\n"
              "    sys.stdin.readline()\n"
              "atomic_write(Path(sys.argv[1]), write)")  # fmt: skip
    target = out / CACHE / "other.json"
    writer = subprocess.Popen([sys.executable, "-c", script, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert writer.stdout.readline() == "writing\n"
        run_study(s, out, progress=False)
        assert len(list((out / CACHE).glob(".other.json.*.tmp"))) == 1
        writer.communicate("go\n", timeout=60)
    finally:
        writer.kill()
    assert writer.returncode == 0 and target.read_text() == "whole"


def test_a_renamed_study_shows_its_new_name(tmp_path):
    run_study(validate_study(study(name="alpha")), tmp_path, progress=False)
    renamed = run_study(validate_study(study(name="beta")), tmp_path, progress=False)
    assert (renamed.computed, renamed.cached) == (0, 2)
    assert renamed.table.study.tolist() == ["beta", "beta"]
    assert pd.read_parquet(renamed.path).study.tolist() == ["beta", "beta"]
    assert provenance(renamed.path)["study"] == "beta"


def test_two_studies_sharing_a_point_show_their_own_names(tmp_path):
    run_study(validate_study(study(name="one")), tmp_path, progress=False)
    two = run_study(validate_study(study(name="two", formats=["int8", "nvfp4"])), tmp_path, progress=False)
    assert (two.computed, two.cached) == (1, 1)  # int8 on the same workload is one point, shared
    assert two.table.study.tolist() == ["two", "two"]
    assert pd.read_parquet(tmp_path / "one.parquet").study.tolist() == ["one", "one"]


# ---------------------------------------------------------------------------------------------------
# Durability: kill -9 at several moments, a truncated table


KILL_STUDY = {"schema_version": 1, "name": "killed", "formats": ["nf4", "mxfp4", "nvfp4", "int4_g128"],
              "workloads": [{"kind": "normal", "shape": [32, 4096], "seed": s} for s in range(4)],
              "metrics": ["mse", "qsnr_db"]}  # fmt: skip
KILL_POINTS = 16


@pytest.fixture(scope="module")
def kill_fresh(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    path = write_yaml(folder / "killed.yaml", KILL_STUDY)
    return path, run_study(path, folder / "fresh", progress=False).table


@pytest.mark.parametrize(("moment", "entries"), [("early", 1), ("mid", KILL_POINTS // 2), ("late", KILL_POINTS)])
def test_kill_minus_9_then_a_rerun_equals_a_fresh_run(tmp_path, kill_fresh, moment, entries):
    path, fresh = kill_fresh
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "run", str(path), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list((out / CACHE).glob("*.json"))) < entries:
        time.sleep(0.005)
    proc.kill()  # SIGKILL (a no-op when a late kill finds the run done)
    proc.wait()
    done = {p.name: p.read_bytes() for p in (out / CACHE).glob("*.json")}
    assert len(done) >= entries
    resumed = run_study(path, out, progress=False)
    assert (resumed.computed, resumed.cached) == (KILL_POINTS - len(done), len(done))
    assert {p.name: p.read_bytes() for p in (out / CACHE).glob("*.json") if p.name in done} == done
    assert not list(out.rglob("*.tmp"))
    pd.testing.assert_frame_equal(resumed.table, fresh)
    pd.testing.assert_frame_equal(pd.read_parquet(resumed.path), fresh)


@pytest.mark.parametrize("cut", ["half", "empty"])
def test_a_truncated_table_is_rewritten_by_a_rerun(cached, cut):
    s, out, entries, fresh = cached
    table = out / "adv.parquet"
    table.write_bytes(table.read_bytes()[: len(table.read_bytes()) // 2] if cut == "half" else b"")
    again = run_study(s, out, progress=False)
    assert (again.computed, again.cached) == (0, 2)
    pd.testing.assert_frame_equal(pd.read_parquet(table), fresh)
    assert provenance(table)["study"] == "adv"


# ---------------------------------------------------------------------------------------------------
# Rule 6: processes end cleanly


SLOW_STUDY = {"schema_version": 1, "name": "slow", "formats": ["nf4", "mxfp4", "nvfp4", "int4_g128"],
              "workloads": [{"kind": "normal", "shape": [64, 4096], "seed": s} for s in range(8)],
              "metrics": ["mse", "kl"]}  # fmt: skip


def _children(pid: int) -> list[int]:
    """Live child processes of `pid`, from /proc (a zombie has ended)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue
        if int(ppid) == pid and state != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def _start_slow_run(tmp_path: Path, workers: str) -> tuple[subprocess.Popen, Path]:
    path = write_yaml(tmp_path / "slow.yaml", SLOW_STUDY)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "lowbit.cli", "run", str(path), "-o", str(out), "--workers", workers]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, out


def _wait_for(condition, seconds: float = 120, poll: float = 0.01) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


@needs_proc
def test_workers_end_when_the_parent_is_killed_with_sigkill(tmp_path):
    proc, out = _start_slow_run(tmp_path, "2")
    try:
        _wait_for(lambda: len(_children(proc.pid)) >= 3)  # two workers and multiprocessing's resource tracker
        _wait_for(lambda: len(list((out / CACHE).glob("*.json"))) >= 1)  # the workers are computing
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.05)
        assert [w for w in workers if _alive(w)] == []
    finally:
        proc.kill()
        proc.communicate()


@needs_proc
@pytest.mark.parametrize(
    ("workers", "moment"), [("2", "computing"), ("2", "starting"), ("2", "spawning"), ("1", "computing")]
)
def test_ctrl_c_stops_the_run_with_one_line(tmp_path, workers, moment):
    proc, out = _start_slow_run(tmp_path, workers)
    try:
        if moment == "starting":  # workers spawned, no point finished yet
            _wait_for(lambda: len(_children(proc.pid)) >= 3)
        elif moment == "spawning":  # the first child has just appeared: a Ctrl-C mid-spawn is held, not lost
            _wait_for(lambda: len(_children(proc.pid)) >= 1, poll=0.002)
        else:
            _wait_for(lambda: len(list((out / CACHE).glob("*.json"))) >= 1)
        children = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the whole process group
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert [line for line in stderr.splitlines() if "lowbit" in line and "point/s" not in line] == [
        "lowbit: interrupted"
    ]
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(c) for c in children):
        time.sleep(0.05)
    assert [c for c in children if _alive(c)] == []


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_workers_flag_is_validated(tmp_path, capsys, value):
    path = write_yaml(tmp_path / "s.yaml", study())
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "-o", str(tmp_path / "out"), "--workers", value])
    assert stop.value.code == 2
    assert f"argument --workers: must be an integer >= 1, got {value!r}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [0, -2, True, 2.5, "2"])
def test_run_study_validates_workers(tmp_path, value):
    with pytest.raises(ValueError, match=re.escape(f"workers: must be an integer >= 1, got {value!r}")):
        run_study(validate_study(study()), tmp_path, workers=value, progress=False)


def test_formats_into_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "formats"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader went away (`| head` after its lines) before anything was written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and stderr == ""


def test_run_into_a_closed_pipe_ends_quietly(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", study())
    proc = subprocess.Popen([sys.executable, "-m", "lowbit.cli", "run", str(path), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
    assert (tmp_path / "out" / "adv.parquet").is_file()  # the table was written before the summary


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_tables_and_cache_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        r = run_study(validate_study(study()), tmp_path, progress=False)
    finally:
        os.umask(old)
    files = [r.path, *(tmp_path / CACHE).glob("*.json")]
    assert len(files) == 3
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {oct(mode)}


# ---------------------------------------------------------------------------------------------------
# Rule 7: overflow is visible

# fp16's largest finite value is 65504, and a value of 65520 or more rounds to Inf. a (3 x 2) and b (2 x 2):
#   a = [[256, 0], [1, 1], [255, 0]],  b = [[256, 1], [0, 1]]
#   a @ b = [[65536, 256], [256, 2], [65280, 255]]: 65536 >= 65520 overflows, 65280 <= 65504 does not,
# so 1 output of 6 overflows in an fp16 accumulator, none in fp32.
A = np.array([[256, 0], [1, 1], [255, 0]], np.float32)
B = np.array([[256, 1], [0, 1]], np.float32)


@pytest.mark.parametrize(
    ("a", "b", "fmt", "accumulator", "expected"),
    [
        (A, B, "float16", "fp16", 1 / 6),
        (A, B, "float16", "fp32", 0.0),
        (A, B, "float16", "bf16", 0.0),  # bf16 reaches 3.4e38
        # 2 x 2 all 256: every output is 2 x 65536 = 131072: 4 of 4
        (np.full((2, 2), 256, np.float32), np.full((2, 2), 256, np.float32), "float16", "fp16", 1.0),
        # float8_e4m3fn turns the finite 1000 into NaN (past the 464 tie): row 0 of the product is NaN, 2 of 4
        (np.array([[1000, 0], [1, 1]], np.float32), np.ones((2, 2), np.float32), "float8_e4m3fn", "fp32", 0.5),
    ],
)  # fmt: skip
def test_overflow_fraction_by_hand(a, b, fmt, accumulator, expected):
    assert overflow_fraction(matmul_error(a, b, fmt, fmt, accumulator)) == expected


def test_an_inf_input_propagates_and_is_not_counted_as_overflow():
    a = np.array([[np.inf, 0], [1, 1]], np.float32)
    err = matmul_error(a, np.ones((2, 2), np.float32), "float16", "float16", "fp16")
    assert np.isinf(err.result[0]).all() and overflow_fraction(err) == 0.0


def test_every_gemm_row_records_its_overflow_fraction(tmp_path, monkeypatch):
    """The crafted product through a study: the row's gemm_overflow_fp16 is 1/6, and 0 for fp32."""
    monkeypatch.setattr(point_module, "_data", lambda workload_json, base: GemmPair(A, B))
    metrics = [{"gemm_relative_error": {"accumulator": acc}} for acc in ("fp16", "fp32")]
    s = study(formats=["float16"], workloads=[GEMM], metrics=metrics)
    row = run_study(validate_study(s), tmp_path, progress=False).table.iloc[0]
    assert (row.gemm_overflow_fp16, row.gemm_overflow_fp32, row.status) == (1 / 6, 0.0, "ok")
    assert np.isinf(row.gemm_relative_error_fp16)


def test_nvfp4_with_an_fp16_accumulator_overflows_everywhere(tmp_path):
    # NVFP4 accumulates block-scaled products (up to (6 * 448)^2) before its tensor scale: every output overflows
    s = study(formats=["nvfp4", "mxfp4"], workloads=[GEMM], metrics=[{"gemm_relative_error": {"accumulator": "fp16"}}])
    r = run_study(validate_study(s), tmp_path, progress=False)
    assert r.table.gemm_overflow_fp16.tolist() == [1.0, 0.0] and r.overflowed == 1
    assert "  overflow: nvfp4 on gemm" in "\n".join(r.summary())


def test_the_overflow_column_is_registered_and_not_a_metric():
    assert metric_of("gemm_overflow_fp16") is None
    assert (
        column_label("gemm_overflow_fp16") == "GEMM outputs that overflowed to Inf or NaN (fraction), fp16 accumulator"
    )
    with pytest.raises(ValueError, match="overflow columns"):
        register_metric(Metric("gemm_overflow_x", "x", "", "lower", {"tensor"}, lambda x, q: 0.0))


def test_cli_flags_an_overflowed_row(tmp_path, capsys):
    s = study(formats=["nvfp4", "mxfp4"], workloads=[{**GEMM, "name": "g"}],
              metrics=[{"gemm_relative_error": {"accumulator": "fp16"}}])  # fmt: skip
    assert main(["run", str(write_yaml(tmp_path / "s.yaml", s)), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "1 point(s) overflowed: GEMM outputs Inf or NaN from finite inputs:" in out
    assert "  overflow: nvfp4 on g: fp16 accumulator: 100% of outputs Inf/NaN" in out and "mxfp4 on g" not in out


def test_dashboard_marks_an_overflowed_point(tmp_path):
    df = pd.DataFrame({"format": ["a", "b"], "bits_per_element": [4.0, 8.0], "m": [0.1, 0.2],
                       "gemm_overflow_fp16": [0.25, 0.0]})  # fmt: skip
    points = figures.pareto_figure(df, "bits_per_element", "m").data[0]
    assert list(points.marker.symbol) == ["x", "circle"]
    assert "overflow: fp16 accumulator: 25% of outputs Inf/NaN" in points.text[0] and "overflow" not in points.text[1]
    s = study(formats=["nvfp4", "mxfp4"], workloads=[{**GEMM, "name": "g"}],
              metrics=[{"gemm_relative_error": {"accumulator": "fp16"}}])  # fmt: skip
    run_study(validate_study(s), tmp_path, progress=False)
    _, rows, message = views.pareto_view(tmp_path, "adv.parquet", "g", "gemm_relative_error_fp16",
                                         "bits_per_element", {}, [])  # fmt: skip
    assert "overflowed to Inf/NaN" in message and "nvfp4" in message and [r["format"] for r in rows] == ["mxfp4"]


def test_the_readme_example_study_does_not_overflow_silently(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    example = yaml.safe_load(re.search(r"## Studies.*?```yaml\n(.*?)```", readme, re.S)[1])
    example["workloads"] = [w for w in example["workloads"] if w["kind"] != "npy"]  # its weights.npy is not shipped
    for w in example["workloads"]:  # 2 rows of each array: the same formats and accumulators, in seconds
        for array in (w["a"], w["b"]) if w["kind"] == "gemm" else (w,):
            array["shape"][0] = 2
    path = write_yaml(tmp_path / "example.yaml", example)
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    flagged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  overflow: ")]
    assert flagged and all(line.startswith("  overflow: nvfp4 hadamard=16 on gemm(") for line in flagged)
    assert "  overflow: nvfp4 hadamard=16 on gemm(normal 64x512 seed=0 x laplace 128x512 seed=0): fp16" in readme


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    path = write_yaml(tmp_path / "s.yaml", study())
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["run", str(path), "-o", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err == f"lowbit: error: out_dir: cannot make the folder {tmp_path / 'taken' / CACHE} (Not a directory)\n"
