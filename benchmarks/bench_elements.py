"""Element-format quantize throughput against memory-copy bandwidth and ml_dtypes.

Every figure is a ratio taken in the same run on the same 2^24-element float32 array:
  lowbit quantize  (x -> nearest value, float32 out) vs ml_dtypes round trip x.astype(T).astype(float32)
  lowbit encode    (x -> codes)                      vs ml_dtypes x.astype(T)
  both against np.copyto of the same float32 array (read 4 B + write 4 B per element).
Integer formats are compared with ml_dtypes/numpy casts, which truncate and wrap rather than round
and clip, so those ratios compare speed only.
Run: python benchmarks/bench_elements.py [--n-log2 24] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os

import ml_dtypes
import numpy as np
from timing import best_seconds  # benchmarks/ is on sys.path when a script runs

import lowbit
from lowbit.formats import catalog


def best_rate(fn, n: int, repeat: int) -> float:
    """Elements per second of the fastest of `repeat` runs (after one warm-up run)."""
    return n / best_seconds(fn, repeat)


def ml_dtype(name: str):
    return np.float16 if name == "float16" else getattr(ml_dtypes, name, None) or np.dtype(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-log2", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = 1 << args.n_log2
    x = (np.random.default_rng(0).standard_normal(n) * 4).astype(np.float32)
    out = np.empty_like(x)
    copy = best_rate(lambda: np.copyto(out, x), n, args.repeat)
    print(f"n = 2^{args.n_log2} float32, {os.cpu_count()} cores, np.copyto {copy / 1e9:.2f} Gelem/s at the start")
    head = (
        "format",
        "quantize G/s",
        "ml rt G/s",
        "q/ml rt",
        "q/copy",
        "encode G/s",
        "ml astype G/s",
        "enc/ml",
        "enc/copy",
    )
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name in (*catalog.family("float"), *catalog.family("int")):
        dt = ml_dtype(name)
        q = best_rate(lambda name=name: lowbit.quantize(x, name), n, args.repeat)
        e = best_rate(lambda name=name: lowbit.encode(x, name), n, args.repeat)
        mrt = best_rate(lambda dt=dt: x.astype(dt).astype(np.float32), n, args.repeat)
        mast = best_rate(lambda dt=dt: x.astype(dt), n, args.repeat)
        # Copy bandwidth again beside each row: the machine is shared, and a ratio of figures
        # taken seconds apart is steadier than one against a figure from the start of the run.
        copy = best_rate(lambda: np.copyto(out, x), n, args.repeat)
        cells = (name, q / 1e9, mrt / 1e9, q / mrt, q / copy, e / 1e9, mast / 1e9, e / mast, e / copy)
        print(" | ".join([cells[0]] + [f"{c:.2f}" for c in cells[1:]]))


if __name__ == "__main__":
    main()
