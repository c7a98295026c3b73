"""Quantize throughput of every catalog format family against memory copy, on three shapes.

Each figure is out/copy, taken in one run: np.copyto of the array into an existing one against
lowbit.quantize of the same array into an existing one (`quantize(x, fmt, out=buf)`), each the
best of --repeat calls after a first call that is not timed (kernels compile or load there), with
copy timed again beside every figure because the machine may be shared. The data are 2^n-log2
float32 values, normal with a power-of-two magnitude per 1024 values, in three shapes: a square
matrix with blocks (and per-channel scales) along its rows, the flat 1-D array, and rows of 32.

Every catalog format is shown except the 2-D vector codebooks (higgs_p2_*), which quantize pairs
of coordinates rather than elements, plus the 16-value codebooks AF4 and BOF4 (built by name, not
catalog entries). A shape a format cannot take is "n/a" (nvfp4_2d scales 16 x 16 tiles: 1-D input
has none). Each row carries the target of its family; a figure below it is marked with "!".
Run: python benchmarks/bench_blocks.py [--n-log2 24] [--repeat 3] [--formats nvfp4,nf4]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

import lowbit
from lowbit.formats import (
    CodebookFormat,
    DoubleQuant,
    GridFormat,
    IntFormat,
    ScaledFormat,
    ScaleRule,
    TensorScale,
    VectorCodebookFormat,
    catalog,
)

# Formats of the targeted families that the catalog builds by name rather than lists.
EXTRA = ("af4", "bof4")
# The targets (fractions of copy) of each family, as the performance goals state them.
TARGETS = {
    "element": 0.5,
    "MX": 0.5,
    "INT per group": 0.5,
    "ternary": 0.5,
    "NVFP4": 0.45,
    "codebook": 0.45,
    "zero-point": 0.3,
    "AFPQ": 0.3,
    "MSE-searched": 0.3,
    "double-quantized": 0.3,
    "TWN": 0.3,
    "E8M0": 0.3,
}
SHAPES = ("matrix", "1-D", "rows of 32")


def family(name: str) -> str:
    """The family of a format, which sets its target (a key of TARGETS)."""
    spec = lowbit.get_format(name)
    if not isinstance(spec, ScaledFormat):
        if isinstance(spec, (CodebookFormat, GridFormat)):
            return "codebook"
        return "E8M0" if name == "float8_e8m0fnu" else "element"
    if spec.rule is ScaleRule.TWN:
        return "TWN"
    if isinstance(spec.scale, DoubleQuant):
        return "double-quantized"
    if spec.rule is ScaleRule.MSE:
        return "MSE-searched"
    if spec.asymmetric:
        return "zero-point" if isinstance(spec.element, IntFormat) else "AFPQ"
    if spec.tensor_scale is TensorScale.NVFP4 or name.startswith("nvfp4"):
        return "NVFP4"
    if spec.rule.power_of_two:
        return "MX"
    if spec.rule is ScaleRule.ABSMEAN or isinstance(spec.element, GridFormat):
        return "ternary"  # BitNet b1.58 and ParetoQ's 1-bit and SEQ grids
    if isinstance(spec.element, CodebookFormat):
        return "codebook"
    return "INT per group"


def formats(only: list[str] | None) -> list[str]:
    """Every catalog format but the vector codebooks, then EXTRA; or `only`, in its order."""
    if only:
        return only
    names = [n for n in catalog if not isinstance(catalog[n], VectorCodebookFormat)]
    return names + list(EXTRA)


def shapes(n_log2: int) -> dict[str, np.ndarray]:
    """The three arrays of 2^n_log2 float32 values (one buffer, three views)."""
    n = 1 << n_log2
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-4, 4, max(n // 1024, 1))).repeat(1024)[:n]).astype(np.float32)
    side = 1 << (n_log2 // 2)
    return {"matrix": x.reshape(-1, side), "1-D": x, "rows of 32": x.reshape(-1, min(32, n))}


def applies(name: str, x: np.ndarray) -> bool:
    """Whether the format takes an array of x's shape (2-D tiles need two dimensions)."""
    spec = lowbit.get_format(name)
    return getattr(spec, "block_rows", 1) == 1 or x.ndim >= 2


def out_over_copy(name: str, x: np.ndarray, repeat: int) -> float:
    """Quantize into an existing array as a fraction of np.copyto into it, timed side by side."""
    out = np.empty_like(x)
    quantize = best_seconds(lambda: lowbit.quantize(x, name, out=out), repeat)
    copy = best_seconds(lambda: np.copyto(out, x), repeat)
    return copy / quantize


def cell(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}" + (" !" if ratio < target else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-log2", type=int, default=24, help="2^n float32 values (default 24)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timed calls (default 3)")
    parser.add_argument("--formats", default="", help="comma-separated format names (default: every family)")
    args = parser.parse_args()
    arrays = shapes(args.n_log2)
    side = arrays["matrix"].shape
    print(f"n = 2^{args.n_log2} float32, {os.cpu_count()} cores; out/copy, best of {args.repeat} after a warm call")
    print(f"shapes: matrix {side[0]} x {side[1]} (blocks along rows), 1-D, rows of 32; '!' marks a figure below target")
    print()
    print("| format | family | target | " + " | ".join(SHAPES) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in SHAPES) + " |")
    for name in formats([f for f in args.formats.split(",") if f]):
        fam = family(name)
        target = TARGETS[fam]
        ratios = [out_over_copy(name, x, args.repeat) if applies(name, x) else None for x in arrays.values()]
        print(f"| {name} | {fam} | {target} | " + " | ".join(cell(r, target) for r in ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
