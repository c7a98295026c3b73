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


MODEL_K = 384  # MiniLM's hidden size: the K that per-channel scales of its layers count bits over


def _add_cost(row: dict, cost: dict | None, fmt, k: int) -> None:
    if cost is None:
        return
    try:
        row.update(_cost(Cost.model_validate(cost), fmt, k))
    except (ValueError, TypeError) as err:
        row.update({c: math.nan for c in COST_COLUMNS})
        row["cost_error"] = str(err)


def _model_workload(workload_json: str):
    from pydantic import TypeAdapter

    from .schema import ModelWorkload, Workload

    w = TypeAdapter(Workload).validate_json(workload_json)
    return w if isinstance(w, ModelWorkload) else None


@functools.lru_cache(maxsize=2)
def _model_reference(n: int):
    """The model, its sentences and their float32 embeddings (once per process)."""
    from ..models import load_minilm
    from ..models.fidelity import sentences

    model = load_minilm()
    s = sentences(n)
    return model, s, model.embed(s)


def _evaluate_model(spec: FormatSpec, fmt, w, metrics) -> dict:
    """Model metrics of a weight format on a model workload (tensor and GEMM metrics are NaN there)."""
    from ..models.fidelity import mean_cosine, quantized_linear, retrieval_agreement

    model, s, ref = _model_reference(w.sentences)
    emb = model.embed(s, linear=quantized_linear(fmt, w.activations, w.accumulator))
    out = _spec_columns(spec, fmt, MODEL_K)
    out["shape"] = f"{len(s)} sentences"
    for m in metrics:
        name = (
            m
            if isinstance(m, str)
            else "gemm_relative_error"
            + (f"_{m['gemm_relative_error']['accumulator']}" if "accumulator" in m["gemm_relative_error"] else "")
        )
        out[name] = math.nan
    if "fidelity" in metrics:
        out["fidelity"] = mean_cosine(ref, emb)
    if "retrieval_agreement" in metrics:
        out["retrieval_agreement"] = retrieval_agreement(ref, emb)
    return out


def evaluate(payload: dict) -> dict:
    """The row of one point. payload: {study, spec, workload, workload_json, metrics, cost, base, hash}."""
    spec = FormatSpec.model_validate(payload["spec"])
    row: dict = {
        "study": payload["study"],
        "point": payload["hash"],
        "workload": payload["workload_label"],
        "workload_kind": payload["workload_kind"],
        **payload.get("workload_params", {}),
        # the point's own inputs, as JSON, so that a viewer can rebuild the format and the data
        "format_spec": spec.model_dump_json(),
        "workload_spec": payload["workload_json"],
        "cost_spec": "" if payload["cost"] is None else json.dumps(payload["cost"]),
        "status": "ok",
        "error": "",
    }
    try:
        fmt = spec.spec()
        model = _model_workload(payload["workload_json"])
        if model is not None:
            row.update(_evaluate_model(spec, fmt, model, payload["metrics"]))
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
    """Every point of a study (workloads outer, formats inner), each with its content hash."""
    import hashlib
    import json

    from .workloads import fingerprint

    metrics = [m if isinstance(m, str) else m.model_dump() for m in study.metrics]
    cost = None if study.cost is None else study.cost.model_dump()
    out = []
    for w in study.workloads:
        wjson = w.model_dump_json()
        fp = fingerprint(w, base)
        for spec in study.format_specs():
            key = json.dumps([version, spec.model_dump(), fp, metrics, cost], sort_keys=True, default=str)
            out.append(
                {
                    "study": study.name,
                    "spec": spec.model_dump(),
                    "workload_json": wjson,
                    "workload_label": label(w),
                    "workload_kind": w.kind if not isinstance(w, Gemm) else "gemm",
                    "workload_params": _params(w),
                    "metrics": metrics,
                    "cost": cost,
                    "base": str(base),
                    "hash": hashlib.sha256(key.encode()).hexdigest()[:20],
                }
            )
    return out
