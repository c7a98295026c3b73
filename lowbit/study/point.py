"""One point of a study: a format on a workload, evaluated into one table row.

`evaluate(payload)` is a plain top-level function of plain data (dicts), so that local processes
and Dask workers can run it. A point that raises becomes a row with status 'failed' and its message; it
keeps its identity (format, workload and every spec column), which is set before anything can fail.
The study's name is not part of a row: the runner adds it when it assembles the table, so a cached
row serves every study that shares its point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import traceback
from pathlib import Path

import numpy as np

from ..costmodel import engine_cost
from ..formats import AnyFormat, ScaledFormat
from ..simulator import MatmulError, matmul_error
from . import torch_points
from .metrics import TensorCase, overflow_fraction, tensor_case
from .model_points import MODEL_K, allocation_identity, allocation_row, uniform_row
from .replay import quantize_point
from .schema import Allocation, Cost, FormatSpec, Gemm, GemmOptions, ModelWorkload, Study, TorchWorkload, parse_workload
from .store import (
    BITS_PER_ELEMENT,
    ESTIMATE_COLUMNS,
    FRACTION_BITS,
    Mix,
    WorkloadKind,
    engine_cost_columns,
    engine_slug,
    engine_unit_columns,
    estimate_columns,
    gemm_suffix,
    metric_columns,
    metric_request,
    overflow_column,
    storage_bits,
)
from .workloads import GemmPair, fingerprint, label, load

# Earlier tables put GEMM metrics' columns first, then tensor, then model ones: kept, so that a
# table's columns come in the same order as before.
_COLUMN_ORDER = (WorkloadKind.GEMM, WorkloadKind.TENSOR, WorkloadKind.MODEL)
MODEL_SHAPE = (MODEL_K, MODEL_K)  # a MiniLM projection: what a model row's spec columns are counted on


@functools.lru_cache(maxsize=4)
def _data(workload_json: str, base: str):
    return load(parse_workload(workload_json), Path(base))


def spec_columns(spec: FormatSpec, fmt: AnyFormat, shape: tuple[int, ...] | None) -> dict:
    """The row's spec columns, bits_per_element included, for data of `shape` quantized along its
    last axis. With the shape unknown (a failed point's file), a per-channel block and the storage of a
    per-channel or per-tensor scale are NaN, and fixed blocks count whole blocks."""
    scaled = isinstance(fmt, ScaledFormat)
    element = fmt.element if scaled else fmt
    if shape is None:
        if scaled and not fmt.block:
            return {**spec_columns(spec, fmt, (1, 1)), "block": math.nan, BITS_PER_ELEMENT.name: math.nan}
        # one whole block: the format's nominal storage (a trailing partial block would cost more)
        shape = (1, fmt.block) if scaled else (1, 1)
    return {
        "format": spec.name,
        "base_format": spec.format,
        "family": ("scaled" if scaled else element.family.value) if hasattr(element, "family") else "codebook",
        "element": element.name or element.describe(),
        "bits": int(fmt.bits),
        "block": (fmt.block or shape[-1]) if scaled else 1,
        "scale": ("fp32" if fmt.scale is None else (getattr(fmt.scale, "name", None) or fmt.scale.describe()))
        if scaled
        else "none",
        "rule": fmt.rule.value if scaled else "none",
        "asymmetric": bool(fmt.asymmetric) if scaled else False,
        "tensor_scale": fmt.tensor_scale.value if scaled else "none",
        "rounding": spec.rounding,
        "hadamard": int(spec.hadamard or 0),
        BITS_PER_ELEMENT.name: storage_bits(fmt, shape),
    }


def _add_cost(row: dict, cost: dict | None, fmt: AnyFormat, k: int) -> None:
    if cost is None:
        return
    settings = Cost.model_validate(cost)
    try:
        row.update(estimate_columns(settings.estimate(fmt, k)))
    except (ValueError, TypeError) as err:
        row.update({c.name: math.nan for c in ESTIMATE_COLUMNS})
        row["cost_error"] = str(err)
    if settings.engine is not None:  # the engine's datapath is the unit; the memory columns stay the format's
        row.update(engine_unit_columns(settings.engine_cost()))


def _add_engine_costs(row: dict, cost: dict | None, entries: list) -> None:
    """With a cost section, each engine of the GEMM metrics: its datapath's cost columns, by its slug."""
    if cost is None:
        return
    node = Cost.model_validate(cost).node
    for entry in entries:
        engine = metric_request(entry)[1].get("engine")
        if engine is not None:
            arch, _, instruction = engine.partition(":")
            row.update(engine_cost_columns(engine_cost(arch, instruction, node=node), engine_slug(engine)))


def _add_mixed_cost(row: dict, cost: dict | None, shares: dict[str, float], k: int) -> None:
    """Cost of a per-layer mix: energies weighted by each format's share of the MACs; area that of the
    largest unit among them (a lower bound for a unit that runs them all)."""
    if cost is None:
        return
    parts = []
    for spec_json, share in shares.items():
        part: dict = {}
        _add_cost(part, cost, FormatSpec.model_validate_json(spec_json).spec(), k)
        if "cost_error" in part:
            row.update(part)
            return
        parts.append((share, part))
    for c in ESTIMATE_COLUMNS:
        values = [(s, p[c.name]) for s, p in parts]
        row[c.name] = max(v for _, v in values) if c.mix is Mix.MAX else sum(s * v for s, v in values)
    if parts and FRACTION_BITS.name in parts[0][1]:  # one engine priced every part
        row[FRACTION_BITS.name] = parts[0][1][FRACTION_BITS.name]


def _model_workload(workload_json: str) -> ModelWorkload | None:
    w = parse_workload(workload_json)
    return w if isinstance(w, ModelWorkload) else None


def _torch_workload(workload_json: str) -> TorchWorkload | None:
    w = parse_workload(workload_json)
    return w if isinstance(w, TorchWorkload) else None


def _evaluate_allocation(payload: dict, row: dict) -> None:
    allocation = Allocation.model_validate(payload["allocation"])
    specs = [FormatSpec.model_validate(s) for s in payload["options"]]
    torch_w = _torch_workload(payload["workload_json"])
    if torch_w is not None:
        base = payload["base"]
        values, shares = torch_points.allocation_row(allocation, specs, torch_w, base, payload["metrics"])
        k = torch_points.layer_shape(torch_w, base)[1]
    else:
        model = _model_workload(payload["workload_json"])
        values, shares = allocation_row(allocation, specs, model, payload["metrics"])
        k = MODEL_K
    row.update(values)
    _add_mixed_cost(row, payload["cost"], shares, k)


def _evaluate_model(payload: dict, spec: FormatSpec, fmt: AnyFormat, model: ModelWorkload, row: dict) -> None:
    row.update(spec_columns(spec, fmt, MODEL_SHAPE))
    row.update(uniform_row(spec, model, payload["metrics"], payload.get("predict", False)))
    _add_cost(row, payload["cost"], fmt, MODEL_K)


def _evaluate_torch(payload: dict, spec: FormatSpec, fmt: AnyFormat, w: TorchWorkload, row: dict) -> None:
    """A format on a torch model: spec columns counted on its first matched layer's weight."""
    base = payload["base"]
    shape = torch_points.layer_shape(w, base)
    row.update(spec_columns(spec, fmt, shape))
    row.update(torch_points.uniform_row(spec, w, base, payload["metrics"], payload.get("predict", False)))
    _add_cost(row, payload["cost"], fmt, shape[1])


def _order(entry) -> int:
    return min(_COLUMN_ORDER.index(k) for k in metric_request(entry)[0].kinds)


def _gemm_metrics(entries: list, data: GemmPair, fmt: AnyFormat, name: str) -> dict[str, float]:
    """The GEMM metrics of the format `name`, and for each accumulator or engine the share of outputs
    that overflowed (the largest over the metrics that use it). An entry that does not run on this
    format (its `formats`) leaves its column NaN."""

    @functools.cache  # one emulated product per accumulator and chunk, or engine and promotion
    def product(accumulator: str, chunk: int | None, engine: str | None, promote_every: int | None) -> MatmulError:
        if engine is not None:
            return matmul_error(data.a, data.b, fmt, fmt, engine=engine, promote_every=promote_every)
        return matmul_error(data.a, data.b, fmt, fmt, accumulator, chunk=chunk)

    def options_of(options: dict) -> GemmOptions:
        return GemmOptions.model_validate(options)  # the schema's defaults for what the study left out

    def compute(metric, options: dict) -> float:
        o = options_of(options)
        return (
            metric.compute(product(o.accumulator, o.chunk, o.engine, o.promote_every)) if o.runs_on(name) else math.nan
        )

    entries = sorted(entries, key=_order)
    out = metric_columns(entries, WorkloadKind.GEMM, compute)
    for entry in entries:
        metric, options = metric_request(entry)
        o = options_of(options)
        if WorkloadKind.GEMM in metric.kinds and o.runs_on(name):
            column = overflow_column(gemm_suffix(options) if o.engine else o.accumulator)
            err = product(o.accumulator, o.chunk, o.engine, o.promote_every)
            out[column] = max(out.get(column, 0.0), overflow_fraction(err))
    return out


def _metrics(entries: list, data: np.ndarray | GemmPair, spec: FormatSpec, fmt: AnyFormat) -> dict[str, float]:
    """The metrics of a tensor or GEMM point (those of other workload kinds NaN)."""
    if isinstance(data, GemmPair):
        return _gemm_metrics(entries, data, fmt, spec.name)
    x = np.asarray(data, np.float64)

    @functools.cache  # quantized once, and only when a tensor metric asks
    def quantized() -> np.ndarray:
        return np.asarray(quantize_point(data, spec, fmt), np.float64)

    @functools.cache  # the range diagnostics' input, built once, when a diagnostic metric asks
    def case() -> TensorCase:
        return tensor_case(data, spec, fmt)

    def compute(m, _) -> float:
        return m.compute(case()) if m.diagnostic else m.compute(x, quantized())

    return metric_columns(sorted(entries, key=_order), WorkloadKind.TENSOR, compute)


def _evaluate_data(payload: dict, spec: FormatSpec, fmt: AnyFormat, row: dict) -> None:
    data = _data(payload["workload_json"], payload["base"])
    a = data.a if isinstance(data, GemmPair) else data
    row.update(spec_columns(spec, fmt, a.shape))
    row["shape"] = "x".join(map(str, a.shape))
    row.update(_metrics(payload["metrics"], data, spec, fmt))
    _add_cost(row, payload["cost"], fmt, a.shape[1])
    if isinstance(data, GemmPair):
        _add_engine_costs(row, payload["cost"], payload["metrics"])


def _declared_shape(workload_json: str) -> tuple[int, ...] | None:
    """The shape of a workload's data as its spec declares it (synthetic data, GEMM operands, a model's
    projection); None for data read from a file."""
    w = parse_workload(workload_json)
    if isinstance(w, ModelWorkload):
        return MODEL_SHAPE
    if isinstance(w, Gemm):
        w = w.a
    shape = getattr(w, "shape", None)
    return tuple(shape) if shape else None


def _identity(payload: dict, spec: FormatSpec | None) -> dict:
    """The columns that say which point a row is: the format's spec columns (an allocation's label),
    and the declared shape."""
    if spec is None:
        return allocation_identity(Allocation.model_validate(payload["allocation"]))
    shape = _declared_shape(payload["workload_json"])
    out = spec_columns(spec, spec.spec(), shape)
    if shape is not None and _model_workload(payload["workload_json"]) is None:
        out["shape"] = "x".join(map(str, shape))
    return out


def _header(payload: dict) -> dict:
    return {
        "point": payload["hash"],
        "workload": payload["workload_label"],
        "workload_kind": payload["workload_kind"],
        **payload.get("workload_params", {}),
        # the point's own inputs, as JSON, so that a viewer can rebuild the format and the data
        "format_spec": payload["format_spec"],
        "workload_spec": payload["workload_json"],
        "cost_spec": "" if payload["cost"] is None else json.dumps(payload["cost"]),
        "status": "ok",
        "error": "",
    }


def failed_row(payload: dict, err: BaseException) -> dict:
    """The row of a point whose evaluation never returned (its worker process died, say): its identity,
    status 'failed' and the error's text."""
    spec = FormatSpec.model_validate(payload["spec"]) if "spec" in payload else None
    row = _header(payload)
    row.update(_identity(payload, spec))
    row.update(status="failed", error=f"{type(err).__name__}: {err}", traceback="")
    return row


def evaluate(payload: dict) -> dict:
    """The row of one point. payload: {study, spec, workload, workload_json, metrics, cost, base, hash}."""
    spec = FormatSpec.model_validate(payload["spec"]) if "spec" in payload else None
    row = _header(payload)
    try:
        row.update(_identity(payload, spec))
        if spec is None:
            _evaluate_allocation(payload, row)
        elif (model := _model_workload(payload["workload_json"])) is not None:
            _evaluate_model(payload, spec, spec.spec(), model, row)
        elif (torch_w := _torch_workload(payload["workload_json"])) is not None:
            _evaluate_torch(payload, spec, spec.spec(), torch_w, row)
        else:
            _evaluate_data(payload, spec, spec.spec(), row)
    except Exception as err:  # a failing point is recorded (what it has, its identity first), and the study goes on
        row.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=5))
    return row


WORKLOAD_PARAMS = ("crest_factor", "df", "sigma", "group", "seed")


def _params(w) -> dict:
    """The numeric parameters of a synthetic workload, as columns w_<name>."""
    dump = w.model_dump()
    return {f"w_{k}": dump[k] for k in WORKLOAD_PARAMS if k in dump}


def _point(study: Study, base: Path, version: str, w, fingerprint_: str, what: dict) -> dict:
    metrics = study.metric_entries()
    cost = None if study.cost is None else study.cost.model_dump()
    key = json.dumps([version, what, fingerprint_, metrics, cost], sort_keys=True, default=str)
    return {
        "study": study.name,
        **what,
        "format_spec": FormatSpec.model_validate(what["spec"]).model_dump_json() if "spec" in what else "",
        "workload_json": w.model_dump_json(),
        "workload_label": label(w),
        "workload_kind": w.kind if not isinstance(w, Gemm) else "gemm",
        "workload_params": _params(w),
        "metrics": metrics,
        "cost": cost,
        "base": str(base),
        "hash": hashlib.sha256(key.encode()).hexdigest()[:20],
    }


def payloads(study: Study, base: Path, version: str) -> list[dict]:
    """Every point of a study (workloads outer; formats, then allocations on model and torch workloads,
    inner), each with its content hash."""
    specs = study.format_specs()
    out = []
    for w in study.workloads:
        fp = fingerprint(w, base)
        model = isinstance(w, (ModelWorkload, TorchWorkload))
        predict = {"predict": True} if model and study.allocations else {}
        out += [_point(study, base, version, w, fp, {"spec": s.model_dump(), **predict}) for s in specs]
        for a in study.allocations if model else ():
            names = a.options or [s.name for s in specs]
            options = [s.model_dump() for s in specs if s.name in names]
            out.append(_point(study, base, version, w, fp, {"allocation": a.model_dump(mode="json"),
                                                            "options": options}))  # fmt: skip
    return out
