"""Workload data: synthetic distributions drawn from their seed, tensors read from files, GEMM pairs.

Every array is float32 and 2-D (rows, K): quantization runs along the last axis. The same workload
and seed give the same array, bit for bit, on every machine (NumPy's PCG64 generator).
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.safetensors import read_tensor
from .datafiles import check_npy, check_safetensors, resolve_input
from .schema import Distribution, Gemm, ModelWorkload, NpyFile, Outliers, SafetensorsFile, StudentT, TorchWorkload


@dataclass(frozen=True)
class GemmPair:
    a: np.ndarray  # (M, K)
    b: np.ndarray  # (K, N)


def _draw(w, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(w.shape)
    if isinstance(w, StudentT):
        return rng.standard_t(w.df, shape)
    if isinstance(w, Outliers):
        if shape[-1] % w.group:
            raise ValueError(f"outliers: the last axis ({shape[-1]}) must be a multiple of group ({w.group})")
        x = rng.standard_normal(shape).reshape(-1, w.group)
        pick = rng.integers(0, w.group, x.shape[0])
        rows = np.arange(x.shape[0])
        others = np.sqrt((np.sum(x * x, axis=1) - x[rows, pick] ** 2) / (w.group - 1))
        x[rows, pick] = np.where(rng.random(x.shape[0]) < 0.5, -1.0, 1.0) * w.crest_factor * others
        return x.reshape(shape)
    if w.kind == "normal":
        return rng.standard_normal(shape) * w.sigma
    if w.kind == "laplace":
        return rng.laplace(0.0, w.sigma, shape)
    if w.kind == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0) * np.exp(rng.standard_normal(shape) * w.sigma)  # lognormal


def synthetic(w: Distribution | StudentT | Outliers) -> np.ndarray:
    x = _draw(w, np.random.default_rng(w.seed)).astype(np.float32)
    return x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x


def read_safetensors(path: Path, tensor: str) -> np.ndarray:
    """One tensor of a .safetensors file (see lowbit.models.safetensors)."""
    return read_tensor(path, tensor)


def _as_matrix(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.size == 0:
        raise ValueError(f"{what}: needs a non-empty numeric array, got dtype {x.dtype} and shape {x.shape}")
    x = x.astype(np.float32)
    return x.reshape(1, -1) if x.ndim == 1 else x.reshape(-1, x.shape[-1])


def load(w, base: Path) -> np.ndarray | GemmPair:
    """The data of a workload (paths are relative to `base`, the study file's folder)."""
    if isinstance(w, NpyFile):  # the header checked again: the file may have changed since the study loaded
        p = resolve_input(w.path, base)
        check_npy(p)
        return _as_matrix(np.load(p, allow_pickle=False), f"npy {p.name}")
    if isinstance(w, SafetensorsFile):
        p = resolve_input(w.path, base)
        check_safetensors(p, w.tensor)
        return _as_matrix(read_safetensors(p, w.tensor), f"safetensors {p.name}:{w.tensor}")
    if isinstance(w, (ModelWorkload, TorchWorkload)):
        raise ValueError(f"{w.kind} workloads have no tensor data; the runner evaluates them as models")
    if isinstance(w, Gemm):
        a, b = synthetic(w.a), synthetic(w.b)
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"gemm: a has K = {a.shape[1]} and b has K = {b.shape[1]}; they must match")
        return GemmPair(a, np.ascontiguousarray(b.T))
    return synthetic(w)


def label(w) -> str:
    """A short readable name of a workload."""
    if w.name:
        return w.name
    if isinstance(w, Gemm):
        return f"gemm({label(w.a)} x {label(w.b)})"
    if isinstance(w, (NpyFile, SafetensorsFile)):
        return Path(w.path).name + (f":{w.tensor}" if isinstance(w, SafetensorsFile) else "")
    if isinstance(w, ModelWorkload):
        acts = f" A={w.activations} acc={w.accumulator}" if w.activations else ""
        return f"{w.model} {w.sentences} sentences{acts}"
    if isinstance(w, TorchWorkload):
        layers = f" layers={w.layers}" if w.layers != "*" else ""
        acts = f" A={w.activations}" + (f" acc={w.accumulator}" if w.accumulator else "") if w.activations else ""
        return f"torch {w.factory}{layers}{acts}"
    extra = {"student_t": f" df={getattr(w, 'df', '')}", "outliers": f" crest={getattr(w, 'crest_factor', '')}"}
    return f"{w.kind}{extra.get(w.kind, '')} {'x'.join(map(str, w.shape))} seed={w.seed}"


def factory_source(factory: str, base: Path) -> Path | None:
    """The file of a torch workload's factory module, looked up (not imported) as the import would find
    it: the study's folder first, then sys.path; None when it is not a plain source file there."""
    parts = factory.partition(":")[0].split(".")
    for folder in [base, *(Path(p) for p in sys.path if p)]:
        for candidate in (folder.joinpath(*parts).with_suffix(".py"), folder.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def fingerprint(w, base: Path) -> str:
    """Content identity of a workload: its fields, plus the file's bytes for file workloads, and for
    a torch workload its factory module's bytes (so that an edited factory is evaluated again; what
    that module imports in turn is not followed)."""
    text = w.model_dump_json()
    if isinstance(w, TorchWorkload):
        source = factory_source(w.factory, base)
        with contextlib.suppress(OSError):  # unreadable: the import will say why when the point runs
            text += "" if source is None else hashlib.sha256(source.read_bytes()).hexdigest()
    if isinstance(w, (NpyFile, SafetensorsFile)):
        p = resolve_input(w.path, base)
        try:
            text += hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            text += "missing"
    return text
