"""Running a study: points evaluated (local processes or Dask), cached by content hash, and the
tidy table written to Parquet with its provenance.

Each finished point is written at once to `<output dir>/.lowbit-cache/<point hash>.json` (write to
a temporary file, then rename: a kill leaves either the whole file or none). A re-run evaluates only
the points without a cache file, so a killed run resumes where it stopped. Failed points are
recorded in the table (status 'failed' and the message) and not cached, so a re-run tries them again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .._version import __version__
from ..lazy import dask_distributed
from .point import evaluate, payloads
from .schema import Study, load_study
from .store import atomic_write, write_table


@dataclass(frozen=True)
class RunResult:
    """The table, where it was written, and how many points were computed, cached and failed."""

    table: pd.DataFrame
    path: Path
    computed: int
    cached: int
    failed: int


def _write_json(path: Path, row: dict) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(row, f, default=float)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def _local(todo: list[dict], workers: int) -> Iterator[dict]:
    if workers <= 1:
        for p in todo:
            yield evaluate(p)
        return
    # spawn, not fork: forking a process whose Numba kernels started OpenMP threads aborts it
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in as_completed([pool.submit(evaluate, p) for p in todo]):
            yield future.result()


def _dask(todo: list[dict], workers: int, scheduler: str | None) -> Iterator[dict]:
    try:
        distributed = dask_distributed()
    except ImportError:
        raise RuntimeError("the Dask executor needs the 'dask' extra: pip install 'lowbit[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    client = distributed.Client(scheduler or cluster)
    try:
        for future in distributed.as_completed(client.map(evaluate, todo, pure=False)):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def study_hash(study: Study) -> str:
    """Content hash of what a study computes: its name, every expanded format, workloads, metrics, cost."""
    content = {
        "name": study.name,
        "formats": [s.model_dump() for s in study.format_specs()],
        "workloads": [w.model_dump() for w in study.workloads],
        "metrics": study.metric_entries(),
        "cost": None if study.cost is None else study.cost.model_dump(),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def _rows(study: Study, todo: list[dict], cache: Path, workers: int, dask: bool, scheduler, progress: bool) -> dict:
    """Evaluate the points to do, caching each finished one at once; {point hash: row}."""
    rows = _dask(todo, workers, scheduler) if dask else _local(todo, workers)
    fresh: dict[str, dict] = {}
    with tqdm(total=len(todo), desc=study.name, unit="point", disable=not progress or not todo) as bar:
        for row in rows:
            if row["status"] == "ok":
                _write_json(cache / f"{row['point']}.json", row)
            fresh[row["point"]] = row
            bar.update()
    return fresh


def _cached(cache: Path, point: str) -> dict:
    with open(cache / f"{point}.json", encoding="utf-8") as f:
        return json.load(f)


def run_study(
    study: Study | str | Path,
    out_dir: str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: str | None = None,
    progress: bool = True,
    base: str | Path | None = None,
) -> RunResult:
    """Evaluate every point of a study (a Study or a YAML path) and write its table.

    out_dir:   where the Parquet file and the point cache go (default: the study's output.dir,
               relative to the current folder).
    workers:   local processes (default: the study's `workers`).
    scheduler: a Dask scheduler address (tcp://host:port); implies the Dask executor.
    executor:  'local' or 'dask' (default: the study's).
    base:      folder that workload paths are relative to (default: the study file's folder).
    """
    if not isinstance(study, Study):
        base = base or Path(study).resolve().parent
        study = load_study(study)
    base = Path(base or ".").resolve()
    out = Path(out_dir or study.output.dir)
    cache = out / ".lowbit-cache"
    points = payloads(study, base, __version__)
    todo = [p for p in points if not (cache / f"{p['hash']}.json").exists()]
    use_dask = scheduler is not None or (executor or study.executor) == "dask"
    fresh = _rows(study, todo, cache, workers or study.workers, use_dask, scheduler, progress)
    table = pd.DataFrame([fresh.get(p["hash"]) or _cached(cache, p["hash"]) for p in points])
    path = out / (study.output.file or f"{study.name}.parquet")
    write_table(table, path, study.name, study_hash(study))
    failed = int((table["status"] == "failed").sum()) if len(table) else 0
    return RunResult(table, path, len(todo), len(points) - len(todo), failed)
