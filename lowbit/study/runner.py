"""Running a study: points evaluated (local processes or Dask), cached by content hash, and the
tidy table written to Parquet with its provenance.

Each finished point is written at once to `<output dir>/.lowbit-cache/<point hash>.json` (see
cache.py: an entry carries its key and a checksum, and a bad one is discarded and recomputed). A re-run
evaluates only the points without a sound cache entry, so a killed run resumes where it stopped, and
removes the temporary files a killed run left. Failed points are recorded in the table (status
'failed', their identity and the message) and not cached, so a re-run tries them again. The study's
name is applied when the table is assembled, so a renamed study, or another study that shares a
point, shows its own name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import numbers
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._version import __version__
from ..lazy import dask_distributed
from . import cache as point_cache
from .point import evaluate, failed_row, payloads
from .processes import map_local
from .progress import Progress, reporter
from .schema import Study, load_study
from .store import overflow_note, overflowed, remove_stale_temporaries, write_table

SUMMARY_LINES = 20  # failures (and overflows) listed by name in a run's summary; the table has them all
ERROR_CHARS = 240  # of an error's first line in the summary


@dataclass(frozen=True)
class RunResult:
    """The table, where it was written, how many points were computed, cached and failed, how many
    rows had GEMM outputs overflow to Inf or NaN, and the cache files discarded as corrupt."""

    table: pd.DataFrame
    path: Path
    computed: int
    cached: int
    failed: int
    overflowed: int = 0
    discarded: tuple[str, ...] = field(default=())

    def summary(self) -> list[str]:
        """Lines that report the run: the counts, then each failed point and each overflowed one."""
        lines = [f"{self.path}: {len(self.table)} points ({self.computed} computed, {self.cached} cached, "
                 f"{self.failed} failed)"]  # fmt: skip
        if self.failed:
            failed = self.table[self.table["status"] == "failed"]
            lines.append(f"{self.failed} point(s) failed (their rows have status 'failed' and the error):")
            lines += _listed(failed, "failed", lambda r: _first_line(r.get("error")))
        if self.overflowed:
            lines.append(f"{self.overflowed} point(s) overflowed: GEMM outputs Inf or NaN from finite inputs:")
            lines += _listed(self.table[overflowed(self.table)], "overflow", overflow_note)
        return lines


def _listed(rows: pd.DataFrame, tag: str, what) -> list[str]:
    lines = [f"  {tag}: {_name(r)}: {what(r)}" for _, r in rows.head(SUMMARY_LINES).iterrows()]
    return lines + ([f"  ... and {len(rows) - SUMMARY_LINES} more"] if len(rows) > SUMMARY_LINES else [])


def _name(row: pd.Series) -> str:
    return f"{row.get('format', '?')} on {row.get('workload', '?')}"


def _first_line(text) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def _local(todo: list[dict], workers: int) -> Iterator[dict]:
    if workers <= 1:
        for p in todo:
            yield evaluate(p)
        return
    yield from map_local(evaluate, todo, workers, failed_row)


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
        futures = client.map(evaluate, todo, pure=False)
        payload_of = {f.key: p for f, p in zip(futures, todo, strict=True)}
        for future in distributed.as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # a worker lost (KilledWorker, ...): the point fails, the run goes on
                yield failed_row(payload_of[future.key], err)
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


def _from_llvm(frame) -> bool:
    """Whether the frame runs llvmlite's Python code, which LLVM calls back into from C."""
    return f"{os.sep}llvmlite{os.sep}" in frame.f_code.co_filename


@contextlib.contextmanager
def _interrupts() -> Iterator[list]:
    """Ctrl-C noted as well as raised. Python prints and drops a KeyboardInterrupt raised inside a
    finalizer (`__del__`, which Numba's LLVM objects run at any moment), and one raised inside a
    callback from LLVM's C code (llvmlite's object cache, while Numba compiles) leaves that code a
    broken buffer, which crashed the process. There the handler only notes it, and the caller
    raises it at its next point. Main thread only (signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    noted: list[int] = []

    def handler(signum, frame) -> None:
        noted.append(signum)
        while frame is not None:
            if frame.f_code.co_name == "__del__" or _from_llvm(frame):
                return
            frame = frame.f_back
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def _rows(study: Study, todo: list[dict], cache: Path, workers: int, dask: bool, scheduler, progress: Progress) -> dict:
    """Evaluate the points to do, caching each finished one at once; {point hash: row}."""
    rows = _dask(todo, workers, scheduler) if dask else _local(todo, workers)
    fresh: dict[str, dict] = {}
    # closing: a Ctrl-C or an error here stops the workers at once, not when the generator is collected
    with _interrupts() as noted, contextlib.closing(rows), reporter(progress, len(todo), study.name) as bar:
        for row in rows:
            row = point_cache.plain_row(row)  # as a cache read gives it back: fresh and resumed tables are equal
            if row["status"] == "ok":
                point_cache.write_entry(cache, row)
            fresh[row["point"]] = row
            bar.update()
            if noted:  # a Ctrl-C that landed in a finalizer
                raise KeyboardInterrupt
    return fresh


def _load_cache(cache: Path, points: list[dict]) -> tuple[dict[str, dict], tuple[str, ...]]:
    """The sound cache entries, and the warnings that name the discarded ones (also passed on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", point_cache.CacheWarning)
        cached = point_cache.load(cache, points)
    for w in caught:  # passed on to the caller's filters
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return cached, tuple(str(w.message) for w in caught if issubclass(w.category, point_cache.CacheWarning))


def _workers(value) -> int | None:
    """The `workers` argument: None (the study's) or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"workers: must be an integer >= 1, got {value!r}")
    return int(value)


def run_study(
    study: Study | str | Path,
    out_dir: str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: str | None = None,
    progress: Progress | str | bool = True,
    base: str | Path | None = None,
) -> RunResult:
    """Evaluate every point of a study (a Study or a YAML path) and write its table.

    out_dir:   where the Parquet file and the point cache go (default: the study's output.dir,
               relative to the current folder).
    workers:   local processes (default: the study's `workers`).
    scheduler: a Dask scheduler address (tcp://host:port); implies the Dask executor.
    executor:  'local' or 'dask' (default: the study's).
    progress:  Progress.BAR, LOG or NONE, or their names; True or 'auto' (the default) is a bar on a
               terminal and log lines elsewhere (a file, a pipe), False is none. Written to stderr.
    base:      folder that workload paths are relative to (default: the study file's folder).
    """
    if not isinstance(study, Study):
        base = base or Path(study).resolve().parent
        study = load_study(study)
    workers = _workers(workers)
    progress = Progress.parse(progress)
    base = Path(base or ".").resolve()
    out = Path(out_dir or study.output.dir)
    path = study.table_path(out)  # checked before anything runs: inside the output folder
    cache = out / point_cache.CACHE_DIR
    try:  # before anything runs: a folder that cannot be made is an error now, not after the points
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out_dir: cannot make the folder {cache} ({err.strerror or err})") from None
    for folder in (cache, out):  # what killed runs left
        remove_stale_temporaries(folder)
    points = payloads(study, base, __version__)
    cached, discarded = _load_cache(cache, points)
    todo = [p for p in points if p["hash"] not in cached]
    use_dask = scheduler is not None or (executor or study.executor) == "dask"
    fresh = _rows(study, todo, cache, workers or study.workers, use_dask, scheduler, progress)
    # the study-level columns are the study's, not the cache's: applied here
    table = pd.DataFrame([{"study": study.name, **(fresh.get(p["hash"]) or cached[p["hash"]])} for p in points])
    write_table(table, path, study.name, study_hash(study))
    failed = int((table["status"] == "failed").sum()) if len(table) else 0
    n_over = int(overflowed(table).sum()) if len(table) else 0
    return RunResult(table, path, len(todo), len(points) - len(todo), failed, n_over, discarded)
