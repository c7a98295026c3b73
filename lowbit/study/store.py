"""The results contract that studies and the dashboard share: which accuracy metrics and cost
columns a table has (with labels, units and which way is better), and its Parquet file with provenance.

Metrics live in one registry. The schema accepts the names registered here, the runner computes
every one a study asks for, and the dashboard offers each one present in a table. A new metric:

    register_metric(Metric("peak_error_ratio", "peak error / peak |x|", "", Better.LOWER, {"tensor"},
                           lambda x, q: float(np.max(np.abs(q - x)) / np.max(np.abs(x)))))

`compute` takes, by the workload kinds the metric applies to:
  tensor: (x, q), the tensor and its quantized copy, float64; or, for a metric with `diagnostic=True`,
          one lowbit.study.metrics.TensorCase (the tensor as the format sees it, the format and its
          lowbit.diagnose diagnosis);
  model:  (reference, embeddings), the float32 model's sentence embeddings and the quantized model's;
  gemm:   (err,), a lowbit.simulator.MatmulError; a study may name the accumulator and chunk, and the
          column is then `<name>_<accumulator>`, or a matrix engine and its promotion, and the column
          is then `<name>_<engine slug>` (`engine_slug`: 'hopper_wgmma_m64n8k32_f32_e4m3_e4m3_p128').
On other kinds of workload the metric's column is NaN. Each GEMM metric's row also gets the column
`gemm_overflow_<accumulator or engine slug>` (`overflow_column`): the share of outputs that overflowed to
Inf or NaN. With a cost section, each engine's datapath cost comes in `engine_area_um2_<slug>` (um^2),
`engine_energy_pj_per_mac_<slug>` (pJ) and `fraction_bits_<slug>` (bits), the slug without promotion;
`engine_points` turns a table into one row per engine, to put engines on one axis.
The registry is per process: a metric registered at run time reaches local worker processes or Dask
workers only if they register it too (in a module they import).
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import functools
import hashlib
import json
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._version import __version__
from ..costmodel import EngineCost, Estimate
from ..formats import AnyFormat, parse_enum
from ..formats.engines import engine_catalog
from ..models.fidelity import mean_cosine, retrieval_agreement
from . import metrics as arithmetic


class Better(enum.Enum):
    """Which way a column improves."""

    HIGHER = "higher"
    LOWER = "lower"


class WorkloadKind(enum.Enum):
    """What a metric measures: a tensor's quantization, an emulated GEMM, or a model's output."""

    TENSOR = "tensor"
    GEMM = "gemm"
    MODEL = "model"


class Mix(enum.Enum):
    """How a cost column combines over a per-layer mix of formats."""

    MAX = "max"  # a property of the unit (its area): the largest unit among them
    SHARE = "share"  # per MAC or per element: weighted by each format's share of the MACs


@dataclass(frozen=True)
class Metric:
    """An accuracy metric: its table column `name`, a plot `label`, its `unit`, which way is
    `better`, the workload `kinds` it applies to and how to `compute` it (see the module docstring).
    `log_axis`: its values span decades (plots draw them on a log scale). `diagnostic`: a tensor
    metric whose compute takes a TensorCase, not (x, q) (the range diagnostics)."""

    name: str
    label: str
    unit: str
    better: Better | str
    kinds: frozenset[WorkloadKind] | Iterable[WorkloadKind | str]
    compute: Callable[..., float] = field(compare=False)
    log_axis: bool = False
    diagnostic: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"metric name must be an identifier (a table column), got {self.name!r}")
        object.__setattr__(self, "better", parse_enum(Better, self.better, "better"))
        kinds = frozenset(parse_enum(WorkloadKind, k, "kinds") for k in self.kinds)
        if not kinds or (WorkloadKind.GEMM in kinds and len(kinds) > 1):
            # a GEMM metric's compute takes a MatmulError, the others two arrays: one signature each
            raise ValueError(f"metric {self.name}: kinds must be 'gemm' alone or some of 'tensor', 'model'")
        object.__setattr__(self, "kinds", kinds)
        if self.diagnostic and kinds != {WorkloadKind.TENSOR}:
            raise ValueError(f"metric {self.name}: a diagnostic metric applies to 'tensor' workloads only")


@dataclass(frozen=True)
class CostColumn:
    """A cost column: name, plot label, unit; `of_estimate` reads it from a cost-model Estimate
    (None: the format's storage, `storage_bits`); `mix` combines it over a per-layer mix."""

    name: str
    label: str
    unit: str
    of_estimate: Callable[[Estimate], float] | None = None
    mix: Mix = Mix.SHARE
    log_axis: bool = False


BITS_PER_ELEMENT = CostColumn("bits_per_element", "bits per element", "bits")
COST_COLUMNS: tuple[CostColumn, ...] = (
    BITS_PER_ELEMENT,
    CostColumn("area_um2", "area (um^2)", "um^2", lambda e: e.area_um2, Mix.MAX, log_axis=True),
    CostColumn("area_per_lane_um2", "area per lane (um^2)", "um^2", lambda e: e.area_per_lane_um2, Mix.MAX, True),
    CostColumn("energy_pj_per_mac", "energy (pJ/MAC)", "pJ", lambda e: e.energy_pj_per_mac, log_axis=True),
    CostColumn("sram_pj_per_element", "SRAM energy (pJ/element)", "pJ", lambda e: e.memory.a_sram_pj),
    CostColumn("dram_pj_per_element", "DRAM energy (pJ/element)", "pJ", lambda e: e.memory.a_dram_pj),
)
ESTIMATE_COLUMNS: tuple[CostColumn, ...] = tuple(c for c in COST_COLUMNS if c.of_estimate is not None)
# A matrix engine's datapath (lowbit.costmodel.engine_cost). A study whose cost section names an engine
# has `fraction_bits` beside the cost columns (area_um2 then the datapath's); its GEMM metrics' engines
# have all three per engine, suffixed by the engine's slug, and `engine_points` names them as here.
FRACTION_BITS = CostColumn("fraction_bits", "fraction bits of the engine's fused sum", "bits")
ENGINE_AREA = CostColumn("engine_area_um2", "engine datapath area (um^2)", "um^2", mix=Mix.MAX, log_axis=True)
ENGINE_ENERGY = CostColumn("engine_energy_pj_per_mac", "engine energy (pJ/MAC)", "pJ", log_axis=True)
ENGINE_COST_COLUMNS: tuple[CostColumn, ...] = (ENGINE_AREA, ENGINE_ENERGY, FRACTION_BITS)


_T, _M, _G = WorkloadKind.TENSOR, WorkloadKind.MODEL, WorkloadKind.GEMM
_L, _H = Better.LOWER, Better.HIGHER
# Registry order is the dashboard's order: its first metric present is the default accuracy axis.
_BUILTIN: tuple[Metric, ...] = (
    Metric("qsnr_db", "QSNR (dB)", "dB", _H, {_T}, arithmetic.qsnr_db),
    Metric("mse", "MSE", "", _L, {_T}, arithmetic.mse, log_axis=True),
    Metric("relative_mse", "relative MSE", "", _L, {_T}, arithmetic.relative_mse, log_axis=True),
    Metric("mae", "MAE", "", _L, {_T}, arithmetic.mae, log_axis=True),
    Metric("max_abs_error", "max |error|", "", _L, {_T}, arithmetic.max_abs_error, log_axis=True),
    Metric("kl", "KL (nats)", "nats", _L, {_T}, arithmetic.kl_divergence, log_axis=True),
    Metric("fidelity", "model fidelity (mean cosine)", "", _H, {_M}, mean_cosine),
    Metric("retrieval_agreement", "retrieval agreement", "", _H, {_M}, retrieval_agreement),
    Metric("gemm_relative_error", "GEMM relative error", "", _L, {_G}, arithmetic.gemm_relative_error, True),
    Metric(
        "gemm_accumulation_error", "GEMM accumulation error", "", _L, {_G}, arithmetic.gemm_accumulation_error, True
    ),
    # range diagnostics (lowbit.diagnose, lowbit.compare): fractions 0 to 1, entropies in bits
    *(
        Metric(name, label, unit, better, {_T}, getattr(arithmetic, name), diagnostic=True)
        for name, label, unit, better in (
            ("saturated_fraction", "saturated fraction", "", _L),
            ("flushed_fraction", "flushed-to-zero fraction", "", _L),
            ("subnormal_fraction", "subnormal fraction", "", _L),
            ("code_entropy_bits", "element code entropy (bits)", "bits", _H),
            ("scale_entropy_bits", "scale code entropy (bits)", "bits", _L),
            ("scale_code_mismatch", "scale codes differing from ocp_floor's (fraction)", "", _L),
            ("scale_rule_qsnr_delta_db", "QSNR minus ocp_floor's (dB)", "dB", _H),
        )
    ),
)
_METRICS: dict[str, Metric] = {m.name: m for m in _BUILTIN}


# ----- matrix engines in tables -----------------------------------------------------------------------
_NOT_SLUG = re.compile(r"[^0-9a-z]+")
_SHAPE = re.compile(r"m(\d+)n(\d+)k(\d+)")
_PROMOTED = re.compile(r"_p([0-9]+)$")
ENGINE = "engine"  # engine_points' columns: the engine's label and its promotion (0: none)
PROMOTE_EVERY = "promote_every"


def engine_slug(engine: str, promote_every: int | None = None) -> str:
    """The column suffix of a matrix engine ('arch:instruction') run with `promote_every` (None: no
    promotion): lower case, every run of other characters one '_', the promotion as `_p<N>`; e.g.
    'hopper_wgmma_m64n8k32_f32_e4m3_e4m3_p128'. The one function that names engine columns."""
    text = _NOT_SLUG.sub("_", engine.lower()).strip("_")
    return text + (f"_p{promote_every}" if promote_every else "")


@functools.cache
def _engines_by_slug() -> Mapping[str, str]:
    """{slug: 'arch:instruction'} of every catalogued instruction (wgmma and tcgen05 at N = 8)."""
    names = (f"{p.arch.value}:{p.instruction}" for p in engine_catalog())
    return MappingProxyType({engine_slug(name): name for name in names})


def engine_of_slug(suffix: str) -> tuple[str, int | None] | None:
    """The engine ('arch:instruction') and promotion that a column suffix names; None when it names
    none (an accumulator's suffix). wgmma and tcgen05 take any N: the catalog is read at N = 8."""
    promoted = _PROMOTED.search(suffix)
    base, every = (suffix[: promoted.start()], int(promoted[1])) if promoted else (suffix, None)
    shape = _SHAPE.search(base)
    key = base if shape is None else _SHAPE.sub(f"m{shape[1]}n8k{shape[3]}", base, count=1)
    engine = _engines_by_slug().get(key)
    if engine is None:
        return None
    return (engine if shape is None else _SHAPE.sub(shape[0], engine, count=1)), every


def engine_label(engine: str, promote_every: int | None = None) -> str:
    """'hopper wgmma.m64n8k32.f32.e4m3.e4m3, promote every 128'."""
    return engine.replace(":", " ", 1) + (f", promote every {promote_every}" if promote_every else "")


def gemm_suffix(options: Mapping[str, Any]) -> str | None:
    """The column suffix of a GEMM metric's options (as the study gave them): the engine's slug with its
    promotion, else the accumulator; None when they name neither."""
    if options.get("engine"):
        return engine_slug(options["engine"], options.get("promote_every"))
    return options.get("accumulator")


def _unit_label(suffix: str) -> str:
    """What a GEMM column's suffix names, in words: an engine, or an accumulator."""
    engine = engine_of_slug(suffix)
    return engine_label(*engine) if engine else f"{suffix} accumulator"


def _fraction_bits(cost: EngineCost) -> float:
    return math.nan if cost.fraction_bits is None else float(cost.fraction_bits)


def engine_cost_columns(cost: EngineCost, slug: str) -> dict[str, float]:
    """One engine's datapath cost columns in a table of GEMM metrics on engines: area (um^2), energy
    per MAC (pJ) and fraction bits (NaN without a cut), each suffixed by the engine's `slug`."""
    values = (cost.area_um2, cost.energy_pj_per_mac, _fraction_bits(cost))
    return {f"{c.name}_{slug}": float(v) for c, v in zip(ENGINE_COST_COLUMNS, values, strict=True)}


def engine_unit_columns(cost: EngineCost) -> dict[str, float]:
    """The cost columns when a study's cost section names an engine: its datapath is the unit, so
    area_um2 is the datapath's (um^2), area_per_lane_um2 its area per product summed, energy_pj_per_mac
    its energy per MAC (pJ), and fraction_bits its fused sum's (bits)."""
    return {"area_um2": cost.area_um2, "area_per_lane_um2": cost.area_per_product_um2,
            "energy_pj_per_mac": cost.energy_pj_per_mac, FRACTION_BITS.name: _fraction_bits(cost)}  # fmt: skip


# Every GEMM metric row also records, per accumulator, the share of outputs that overflowed: outputs whose
# float64 reference a @ b is finite but whose emulated value is Inf or NaN (a fraction from 0 to 1).
OVERFLOW_PREFIX = "gemm_overflow"
OVERFLOW_LABEL = "GEMM outputs that overflowed to Inf or NaN (fraction)"


def overflow_column(suffix: str) -> str:
    """The column of the overflow fraction of GEMM metrics computed with an accumulator (its name) or an
    engine (`gemm_suffix` of the metric's options)."""
    return f"{OVERFLOW_PREFIX}_{suffix}"


def is_overflow_column(column: str) -> bool:
    return column.startswith(OVERFLOW_PREFIX + "_")


def overflow_columns(df: pd.DataFrame) -> list[str]:
    """A table's overflow-fraction columns."""
    return [c for c in df.columns if is_overflow_column(str(c))]


def overflowed(df: pd.DataFrame) -> pd.Series:
    """Per row: whether any of its GEMM outputs overflowed to Inf or NaN (False without GEMM metrics)."""
    cols = overflow_columns(df)
    if not cols:
        return pd.Series(False, index=df.index)
    return (df[cols].apply(pd.to_numeric, errors="coerce").fillna(0) > 0).any(axis=1)


def overflow_note(row: Mapping[str, Any]) -> str:
    """'fp16 accumulator: 100% of outputs Inf/NaN' for each accumulator (or engine) that overflowed ('' if
    none)."""
    parts = []
    for column, value in row.items():
        if is_overflow_column(str(column)) and isinstance(value, (int, float)) and value > 0:
            unit = _unit_label(str(column).removeprefix(OVERFLOW_PREFIX + "_"))
            parts.append(f"{unit}: {100 * value:.3g}% of outputs Inf/NaN")
    return "; ".join(parts)


def register_metric(metric: Metric) -> Metric:
    """Add a metric to the registry (ValueError when its name is taken by a metric or a cost column, or
    starts with the overflow columns' prefix)."""
    if metric.name.startswith(OVERFLOW_PREFIX):
        raise ValueError(f"register_metric: names starting with {OVERFLOW_PREFIX!r} are the overflow columns'")
    if metric.name in _METRICS or cost_column(metric.name) is not None:
        raise ValueError(f"register_metric: the name {metric.name!r} is taken")
    _METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a registered metric (the built-in ones stay)."""
    if any(m.name == name for m in _BUILTIN):
        raise ValueError(f"unregister_metric: {name!r} is built in")
    get_metric(name)
    del _METRICS[name]


@contextlib.contextmanager
def registered_metric(metric: Metric) -> Iterator[Metric]:
    """`with registered_metric(m):` the metric is registered inside the block only."""
    register_metric(metric)
    try:
        yield metric
    finally:
        unregister_metric(metric.name)


def metrics() -> tuple[Metric, ...]:
    """Every registered metric, built-in ones first."""
    return tuple(_METRICS.values())


def get_metric(name: str) -> Metric:
    """The registered metric `name` (ValueError naming the close matches and the known names)."""
    if isinstance(name, str) and name in _METRICS:
        return _METRICS[name]
    close = difflib.get_close_matches(str(name), _METRICS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown metric {name!r}; {hint}known: {', '.join(_METRICS)}")


def metric_request(entry: str | Mapping[str, Mapping[str, Any]]) -> tuple[Metric, dict[str, Any]]:
    """A study's metric entry (a name, or {GEMM metric: {accumulator, chunk} or {engine, promote_every}})
    as (metric, options)."""
    if isinstance(entry, str):
        return get_metric(entry), {}
    ((name, options),) = entry.items()
    return get_metric(name), dict(options)


def metric_column(entry: str | Mapping[str, Mapping[str, Any]]) -> str:
    """The table column of a metric entry: its name, with `_<accumulator>` or `_<engine slug>` when the
    entry names one."""
    metric, options = metric_request(entry)
    suffix = gemm_suffix(options)
    return metric.name + (f"_{suffix}" if suffix else "")


def metric_columns(
    entries: Iterable[str | Mapping[str, Mapping[str, Any]]],
    kind: WorkloadKind,
    compute: Callable[[Metric, dict[str, Any]], float],
) -> dict[str, float]:
    """{column: value} of each entry: compute(metric, options) where the metric applies to `kind`, NaN
    where it does not."""
    out = {}
    for entry in entries:
        metric, options = metric_request(entry)
        out[metric_column(entry)] = compute(metric, options) if kind in metric.kinds else math.nan
    return out


def metric_of(column: str) -> Metric | None:
    """The metric whose values a table column holds (GEMM columns may carry an accumulator suffix)."""
    if column in _METRICS:
        return _METRICS[column]
    if is_overflow_column(column):
        return None
    gemm = [m for m in _METRICS.values() if WorkloadKind.GEMM in m.kinds and column.startswith(m.name + "_")]
    return gemm[0] if gemm else None


def workload_kind(kind: str) -> WorkloadKind:
    """The metric kind of a workload kind (the schema's `kind`: normal, npy, gemm, model, ...)."""
    return {"gemm": WorkloadKind.GEMM, "model": WorkloadKind.MODEL}.get(kind, WorkloadKind.TENSOR)


def cost_column(name: str) -> CostColumn | None:
    """The cost column `name` (an engine's, without its slug)."""
    return next((c for c in (*COST_COLUMNS, *ENGINE_COST_COLUMNS) if c.name == name), None)


def _engine_cost_of(column: str) -> tuple[CostColumn, tuple[str, int | None]] | None:
    """(cost column, engine) of a per-engine cost column such as `engine_area_um2_<slug>`."""
    for c in ENGINE_COST_COLUMNS:
        engine = engine_of_slug(column.removeprefix(c.name + "_")) if column.startswith(c.name + "_") else None
        if engine is not None:
            return c, engine
    return None


def estimate_columns(e: Estimate) -> dict[str, float]:
    """The cost columns an Estimate gives."""
    return {c.name: c.of_estimate(e) for c in ESTIMATE_COLUMNS}


def storage_bits(fmt: AnyFormat, shape: tuple[int, ...], axis: int = -1) -> float:
    """The bits_per_element column: storage bits per element of an array of `shape` quantized along
    `axis`, scales included (a per-channel scale spans the axis, a per-tensor one every element)."""
    return float(fmt.bits_per_element_in(tuple(shape), axis))


def column_label(column: str) -> str:
    """A plot label for a metric or cost column (the column's name for any other)."""
    cost = cost_column(column)
    if cost is not None:
        return cost.label
    if (engine_cost := _engine_cost_of(column)) is not None:
        return f"{engine_cost[0].label} — {engine_label(*engine_cost[1])}"
    if is_overflow_column(column):
        return f"{OVERFLOW_LABEL}, {_unit_label(column.removeprefix(OVERFLOW_PREFIX + '_'))}"
    metric = metric_of(column)
    if metric is None:
        return column
    suffix = column.removeprefix(metric.name).removeprefix("_")
    if not suffix:
        return metric.label
    engine = engine_of_slug(suffix)
    return f"{metric.label} — {engine_label(*engine)}" if engine else f"{metric.label} ({suffix} accumulator)"


def higher_is_better(column: str) -> bool:
    metric = metric_of(column)
    return metric is not None and metric.better is Better.HIGHER


def log_axis(column: str) -> bool:
    """Whether a column's values span decades (plots use a log axis)."""
    engine_cost = _engine_cost_of(column)
    found = cost_column(column) or (engine_cost[0] if engine_cost else None) or metric_of(column)
    return found is not None and found.log_axis


def _engine_column(column: str) -> bool:
    """Whether a column holds one engine's values: a GEMM metric's, an overflow or a cost column."""
    metric = metric_of(column)
    if metric is not None and column != metric.name:
        return engine_of_slug(column.removeprefix(metric.name + "_")) is not None
    if is_overflow_column(column):
        return engine_of_slug(column.removeprefix(OVERFLOW_PREFIX + "_")) is not None
    return _engine_cost_of(column) is not None


def engine_points(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A table in long form, one row per table row and engine that has a value of `metric` (a GEMM
    metric's name, or one of its columns): the row's columns that name no engine, then `engine` (its
    label), `promote_every` (0: none), `metric` holding the engine's value, the engine's cost columns
    (`engine_area_um2` in um^2, `engine_energy_pj_per_mac` in pJ, `fraction_bits`: NaN when the study had
    no cost section) and its overflow column. With it a front can run across engines: error against
    engine area. The area is the datapath's alone: promotion's float32 adds are not priced."""
    target = metric_of(metric)
    if target is None or WorkloadKind.GEMM not in target.kinds:
        raise ValueError(f"engine_points: {metric!r} is not a GEMM metric")
    own = [c for c in df.columns if not _engine_column(str(c)) and c != target.name]
    parts = []
    for column in df.columns:
        engine = (
            engine_of_slug(str(column).removeprefix(target.name + "_")) if metric_of(str(column)) is target else None
        )
        if engine is None:
            continue
        part = df[own].assign(**{ENGINE: engine_label(*engine), PROMOTE_EVERY: engine[1] or 0, target.name: df[column]})
        for c in ENGINE_COST_COLUMNS:
            part[c.name] = df.get(f"{c.name}_{engine_slug(engine[0])}", math.nan)
        overflow = overflow_column(engine_slug(*engine))
        if overflow in df.columns:
            part[overflow] = df[overflow]
        parts.append(part[part[target.name].notna()])
    columns = [*own, ENGINE, PROMOTE_EVERY, target.name, *(c.name for c in ENGINE_COST_COLUMNS)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


# A temporary file's name says which process wrote it, so that a later run removes the ones whose writer
# is gone (killed) and leaves those of a run still writing into the same folder.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.lowbit-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _create_temporary(path: Path) -> str:
    """A new empty file beside `path`, created with mode 0o666 less the umask (the mode the final file
    keeps: os.replace moves the inode)."""
    while True:
        tmp = path.parent / f".{path.name}.lowbit-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:  # 32 random bits taken: draw again
            continue
        return str(tmp)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """write(temporary path), then rename it to `path`: a kill leaves the whole file or none. The file's
    mode follows the umask (0o666 & ~umask), like any file the user creates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files that killed writers left in `folder` (those of this machine whose
    process is gone); a concurrent run's files stay. Returns the paths removed."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp"):
        m = _TEMPORARY.match(tmp.name)
        if m is None or m["host"] != _host_tag() or _alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):  # another run removed it first
            tmp.unlink()
            removed.append(tmp)
    return removed


def write_table(table: pd.DataFrame, path: Path, study: str, study_hash: str) -> None:
    """Write a results table to Parquet (atomically) with its provenance: lowbit version, study name
    and hash, creation time (UTC)."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    prov = {"lowbit_version": __version__, "study": study, "study_hash": study_hash,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    meta = {**(arrow.schema.metadata or {}), b"lowbit": json.dumps(prov).encode()}
    atomic_write(path, lambda tmp: pq.write_table(arrow.replace_schema_metadata(meta), tmp))


def read_table(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def provenance(path: str | Path) -> dict:
    """The provenance a results file carries: lowbit version, study name and hash, creation time (UTC)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"lowbit", b"{}"))
