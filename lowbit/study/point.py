"""One point of a study: a format on a workload, evaluated into one table row.

`evaluate(payload)` is a plain top-level function of plain data (dicts), so that local processes
and Dask workers can run it. A point that raises becomes a row with status 'failed' and its message.
"""

from __future__ import annotations

import functools
import json
import math
import traceback
from pathlib import Path

import numpy as np

from .metrics import gemm_relative_error, tensor_metrics
from .schema import MODEL_METRICS, TENSOR_METRICS, Cost, FormatSpec, Gemm, Study
from .workloads import GemmPair, label, load

COST_COLUMNS = ("area_um2", "area_per_lane_um2", "energy_pj_per_mac", "sram_pj_per_element", "dram_pj_per_element")


@functools.lru_cache(maxsize=4)
def _data(workload_json: str, base: str):
    from pydantic import TypeAdapter

    from .schema import Workload

    w = TypeAdapter(Workload).validate_json(workload_json)
    return load(w, Path(base))


def _quantize(x: np.ndarray, spec: FormatSpec, fmt) -> np.ndarray:
    import lowbit
    from lowbit.simulator import hadamard

    if spec.hadamard:
        y = hadamard(x, spec.hadamard, seed=spec.hadamard_seed).astype(np.float32)
        q = lowbit.quantize(y, fmt, rounding=spec.rounding, seed=spec.seed)
        return hadamard(q, spec.hadamard, seed=spec.hadamard_seed, inverse=True)
    return lowbit.quantize(x, fmt, rounding=spec.rounding, seed=spec.seed)


def _spec_columns(spec: FormatSpec, fmt, k: int) -> dict:
    from lowbit.formats import ScaledFormat

    element = fmt.element if isinstance(fmt, ScaledFormat) else fmt
    scaled = isinstance(fmt, ScaledFormat)
    cols = {
        "format": spec.name,
        "base_format": spec.format,
        "family": ("scaled" if scaled else element.family.value) if hasattr(element, "family") else "codebook",
        "element": element.name or element.describe(),
        "bits": int(fmt.bits),
        "block": (fmt.block or k) if scaled else 1,
        "scale": ("fp32" if fmt.scale is None else (getattr(fmt.scale, "name", None) or fmt.scale.describe()))
        if scaled
        else "none",
        "rule": fmt.rule.value if scaled else "none",
        "asymmetric": bool(fmt.asymmetric) if scaled else False,
        "tensor_scale": fmt.tensor_scale.value if scaled else "none",
        "rounding": spec.rounding,
        "hadamard": int(spec.hadamard or 0),
    }
    cols["bits_per_element"] = (
        float(fmt.bits_per_element(k)) if scaled else float(getattr(fmt, "bits_per_element", fmt.bits))
    )
    return cols


def _cost(cost: Cost, fmt, k: int) -> dict:
    from lowbit.costmodel import estimate

    e = estimate(
        fmt, cost.b_format or fmt, cost.accumulator, cost.lanes, cost.node, cost.partial_sum_bits, reduction_length=k
    )
    return {
        "area_um2": e.area_um2,
        "area_per_lane_um2": e.area_per_lane_um2,
        "energy_pj_per_mac": e.energy_pj_per_mac,
        "sram_pj_per_element": e.memory.a_sram_pj,
        "dram_pj_per_element": e.memory.a_dram_pj,
    }


def _add_cost(row: dict, cost: dict | None, fmt, k: int) -> None:
    if cost is None:
        return
    try:
        row.update(_cost(Cost.model_validate(cost), fmt, k))
    except (ValueError, TypeError) as err:
        row.update({c: math.nan for c in COST_COLUMNS})
        row["cost_error"] = str(err)


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
    for c in COST_COLUMNS:
        row[c] = max(p[c] for _, p in parts) if c.startswith("area") else sum(s * p[c] for s, p in parts)


def _model_workload(workload_json: str):
    from pydantic import TypeAdapter

    from .schema import ModelWorkload, Workload

    w = TypeAdapter(Workload).validate_json(workload_json)
    return w if isinstance(w, ModelWorkload) else None


def _evaluate_allocation(payload: dict, row: dict) -> None:
    from .model_points import MODEL_K, allocation_row
    from .schema import Allocation

    allocation = Allocation.model_validate(payload["allocation"])
    specs = [FormatSpec.model_validate(s) for s in payload["options"]]
    values, shares = allocation_row(allocation, specs, _model_workload(payload["workload_json"]), payload["metrics"])
    row.update(values)
    _add_mixed_cost(row, payload["cost"], shares, MODEL_K)


def evaluate(payload: dict) -> dict:
    """The row of one point. payload: {study, spec, workload, workload_json, metrics, cost, base, hash}."""
    spec = FormatSpec.model_validate(payload["spec"]) if "spec" in payload else None
    row: dict = {
        "study": payload["study"],
        "point": payload["hash"],
        "workload": payload["workload_label"],
        "workload_kind": payload["workload_kind"],
        **payload.get("workload_params", {}),
        # the point's own inputs, as JSON, so that a viewer can rebuild the format and the data
        "format_spec": "" if spec is None else spec.model_dump_json(),
        "workload_spec": payload["workload_json"],
        "cost_spec": "" if payload["cost"] is None else json.dumps(payload["cost"]),
        "status": "ok",
        "error": "",
    }
    try:
        if spec is None:
            _evaluate_allocation(payload, row)
            return row
        fmt = spec.spec()
        model = _model_workload(payload["workload_json"])
        if model is not None:
            from .model_points import MODEL_K, uniform_row

            row.update(_spec_columns(spec, fmt, MODEL_K))
            row.update(uniform_row(spec, model, payload["metrics"], payload.get("predict", False)))
            _add_cost(row, payload["cost"], fmt, MODEL_K)
            return row
        data = _data(payload["workload_json"], payload["base"])
        k = (data.a if isinstance(data, GemmPair) else data).shape[1]
        row.update(_spec_columns(spec, fmt, k))
        row["shape"] = "x".join(map(str, data.a.shape if isinstance(data, GemmPair) else data.shape))
        for m in payload["metrics"]:
            if isinstance(m, dict):
                opts = m["gemm_relative_error"]
                name = "gemm_relative_error" + (f"_{opts['accumulator']}" if "accumulator" in opts else "")
                row[name] = (
                    gemm_relative_error(data.a, data.b, fmt, opts.get("accumulator", "fp32"), opts.get("chunk"))
                    if isinstance(data, GemmPair)
                    else math.nan
                )
            elif m == "gemm_relative_error":
                row[m] = (
                    gemm_relative_error(data.a, data.b, fmt, "fp32", None) if isinstance(data, GemmPair) else math.nan
                )
        names = [m for m in payload["metrics"] if isinstance(m, str) and m in TENSOR_METRICS]
        if isinstance(data, GemmPair):
            row.update({n: math.nan for n in names})
        else:
            row.update(tensor_metrics(data, _quantize(data, spec, fmt), names))
        row.update({m: math.nan for m in payload["metrics"] if isinstance(m, str) and m in MODEL_METRICS})
        _add_cost(row, payload["cost"], fmt, k)
    except Exception as err:  # a failing point is recorded, and the study goes on
        row["status"] = "failed"
        row["error"] = f"{type(err).__name__}: {err}"
        row["traceback"] = traceback.format_exc(limit=5)
    return row


WORKLOAD_PARAMS = ("crest_factor", "df", "sigma", "group", "seed")


def _params(w) -> dict:
    """The numeric parameters of a synthetic workload, as columns w_<name>."""
    dump = w.model_dump()
    return {f"w_{k}": dump[k] for k in WORKLOAD_PARAMS if k in dump}


def payloads(study: Study, base: Path, version: str) -> list[dict]:
    """Every point of a study (workloads outer; formats, then allocations on model workloads, inner),
    each with its content hash."""
    import hashlib
    import json

    from .schema import ModelWorkload
    from .workloads import fingerprint

    metrics = [m if isinstance(m, str) else m.model_dump() for m in study.metrics]
    cost = None if study.cost is None else study.cost.model_dump()
    specs = study.format_specs()
    out = []

    def point(w, wjson: str, fp: str, what: dict) -> dict:
        key = json.dumps([version, what, fp, metrics, cost], sort_keys=True, default=str)
        return {
            "study": study.name,
            **what,
            "workload_json": wjson,
            "workload_label": label(w),
            "workload_kind": w.kind if not isinstance(w, Gemm) else "gemm",
            "workload_params": _params(w),
            "metrics": metrics,
            "cost": cost,
            "base": str(base),
            "hash": hashlib.sha256(key.encode()).hexdigest()[:20],
        }

    for w in study.workloads:
        wjson = w.model_dump_json()
        fp = fingerprint(w, base)
        model = isinstance(w, ModelWorkload)
        predict = model and bool(study.allocations)
        for spec in specs:
            out.append(point(w, wjson, fp, {"spec": spec.model_dump(), **({"predict": True} if predict else {})}))
        for a in study.allocations if model else ():
            names = a.options or [s.name for s in specs]
            options = [s.model_dump() for s in specs if s.name in names]
            out.append(point(w, wjson, fp, {"allocation": a.model_dump(mode="json"), "options": options}))
    return out
